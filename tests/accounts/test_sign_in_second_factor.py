"""A second factor: at every sign-in when the user asks for it; for the
privileges of an account that demands it."""

import os

import pytest
from django_otp.oath import totp
from django_otp.plugins.otp_totp.models import TOTPDevice

from accounts.models import SessionToken
from panel.models import AuditEvent
from tests.factories import (
    PASSWORD,
    Api,
    SimulatedYubikey,
    as_user,
    bearer_api_key,
    grant,
    make_account,
    make_api_key,
    make_user,
    make_vm,
)

pytestmark = pytest.mark.django_db


def sign_in(user, **fields):
    return Api().post(
        "/session", {"username": user.username, "password": PASSWORD, **fields}
    )


def factors_of(response) -> list[str]:
    assert response.status_code == 200, response.content
    token = response.content.decode()
    return Api().get(f"/session/{token}").json()["factors"]


def add_totp(user) -> bytes:
    secret = os.urandom(20)
    TOTPDevice.objects.create(user=user, name="phone", key=secret.hex())
    return secret


def totp_code(secret: bytes) -> str:
    return f"{totp(secret):06d}"


@pytest.fixture
def strict_user():
    return make_user(require_second_factor=True)


def test_a_sign_in_without_the_factor_is_missing_2fa(strict_user):
    SimulatedYubikey(strict_user)

    response = sign_in(strict_user)

    assert response.status_code == 403
    assert "Missing 2FA" in response.content.decode()
    assert "Bad login credentials" not in response.content.decode()
    assert not SessionToken.objects.exists()


def demanding_account(member):
    account = make_account(owner=member)
    account.require_second_factor = True
    account.save()
    return account


def test_an_accounts_demand_does_not_gate_the_sign_in():
    member = make_user()
    demanding_account(member)

    response = sign_in(member)

    assert factors_of(response) == ["password"]


def test_an_accounts_privileges_need_a_second_factor_at_sign_in():
    member = make_user()
    account = demanding_account(member)
    token = sign_in(member).content.decode()

    response = Api(f"Bearer {token}").get(f"/accounts/{account.name}")

    assert response.status_code == 403
    assert "a second factor at sign-in" in response.json()["detail"]
    assert Api(f"Bearer {token}").get("/accounts").json() == []


def test_a_member_with_a_device_is_asked_for_it_so_the_client_prompts():
    member = make_user()
    demanding_account(member)
    secret = add_totp(member)

    refused = sign_in(member)
    retried = sign_in(member, **{"2fa": totp_code(secret)})

    assert refused.status_code == 403
    assert "Missing 2FA" in refused.content.decode()
    assert retried.status_code == 200
    assert "2fa" in factors_of(retried)


def test_basic_is_not_held_at_the_door_by_an_accounts_demand():
    member = make_user()
    account = demanding_account(member)
    add_totp(member)

    response = as_user(member).get(f"/accounts/{account.name}")

    assert response.status_code == 403
    assert "a second factor at sign-in" in response.json()["detail"]


def test_a_sign_in_with_a_second_factor_meets_the_accounts_demand():
    member = make_user()
    account = demanding_account(member)
    secret = add_totp(member)
    token = sign_in(member, **{"2fa": totp_code(secret)}).content.decode()

    response = Api(f"Bearer {token}").get(f"/accounts/{account.name}")

    assert response.status_code == 200


def test_basic_with_a_yubikey_otp_meets_the_accounts_demand():
    member = make_user()
    account = demanding_account(member)
    key = SimulatedYubikey(member)

    without = as_user(member).get(f"/accounts/{account.name}")
    with_otp = as_user(member, HTTP_X_YUBIKEY_OTP=key.otp()).get(
        f"/accounts/{account.name}"
    )

    assert without.status_code == 403
    assert with_otp.status_code == 200


def test_the_accounts_demand_covers_its_groups_and_machines():
    owner = make_user()
    account = demanding_account(owner)
    member = make_user()
    group = account.groups.get()
    vm = make_vm(group)
    grant(member, "vm_admin", vm)

    response = as_user(member).get(f"/virtual_machines/{vm.pk}")

    assert response.status_code == 403
    assert "a second factor at sign-in" in response.json()["detail"]


def test_the_accounts_demand_leaves_other_accounts_alone():
    member = make_user()
    demanding_account(member)
    relaxed = make_account(owner=member)

    response = as_user(member).get(f"/accounts/{relaxed.name}")

    assert response.status_code == 200


def test_api_key_privileges_are_exempt_from_the_accounts_demand():
    member = make_user()
    account = demanding_account(member)
    key, secret = make_api_key(member)
    grant(member, "account_admin", account, api_key=key)

    response = Api(bearer_api_key(secret)).get(f"/accounts/{account.name}")

    assert response.status_code == 200


def test_other_users_sign_in_with_the_password_alone():
    user = make_user()
    make_account(owner=user)

    assert factors_of(sign_in(user)) == ["password"]


def test_a_yubikey_otp_in_2fa_satisfies_it(strict_user):
    key = SimulatedYubikey(strict_user)

    factors = factors_of(sign_in(strict_user, **{"2fa": key.otp()}))

    assert "2fa" in factors
    assert "yubikey" in factors
    assert SessionToken.objects.get().yubikey_verified_at is not None


def test_a_yubikey_otp_in_yubikey_satisfies_it(strict_user):
    key = SimulatedYubikey(strict_user)

    factors = factors_of(sign_in(strict_user, yubikey=key.otp()))

    assert {"password", "yubikey", "2fa"} <= set(factors)


def test_the_client_retry_after_missing_2fa_succeeds(strict_user):
    key = SimulatedYubikey(strict_user)
    assert sign_in(strict_user, validity="1800").status_code == 403

    retry = sign_in(strict_user, validity="1800", **{"2fa": key.otp()})

    assert "2fa" in factors_of(retry)


def test_a_totp_code_satisfies_it(strict_user):
    secret = add_totp(strict_user)

    factors = factors_of(sign_in(strict_user, **{"2fa": totp_code(secret)}))

    assert "2fa" in factors
    assert "yubikey" not in factors
    assert SessionToken.objects.get().yubikey_verified_at is None


def test_a_totp_code_is_spent_once(strict_user):
    secret = add_totp(strict_user)
    code = totp_code(secret)
    assert sign_in(strict_user, **{"2fa": code}).status_code == 200

    response = sign_in(strict_user, **{"2fa": code})

    assert response.status_code == 403
    assert SessionToken.objects.count() == 1


def test_a_wrong_code_is_refused_and_recorded(strict_user):
    add_totp(strict_user)

    response = sign_in(strict_user, **{"2fa": "000000x"})

    assert response.status_code == 403
    assert "Bad login credentials" not in response.content.decode()
    assert AuditEvent.objects.filter(kind=AuditEvent.Kind.OTP_REJECTED).exists()
    assert not SessionToken.objects.exists()


def test_a_wrong_password_is_refused_before_the_otp_is_spent(strict_user):
    key = SimulatedYubikey(strict_user)
    otp = key.otp()

    response = Api().post(
        "/session",
        {"username": strict_user.username, "password": "wrong", "yubikey": otp},
    )

    assert "Bad login credentials" in response.content.decode()
    key.device.refresh_from_db()
    assert key.device.last_verified_at is None


def test_a_yubikey_field_is_refused_for_a_user_without_a_yubikey():
    user = make_user()

    response = sign_in(user, yubikey="cccccccccccb" + "c" * 32)

    assert response.status_code == 403
    assert not SessionToken.objects.exists()


def test_basic_without_the_otp_header_is_missing_2fa(strict_user):
    SimulatedYubikey(strict_user)

    response = as_user(strict_user).get("/accounts")

    assert response.status_code == 401
    assert "Missing 2FA" in response.json()["detail"]
    assert response["WWW-Authenticate"].startswith("Basic")


def test_basic_with_the_otp_header_passes(strict_user):
    key = SimulatedYubikey(strict_user)

    response = as_user(strict_user, HTTP_X_YUBIKEY_OTP=key.otp()).get("/accounts")

    assert response.status_code == 200


def test_basic_keeps_working_with_the_replayed_otp(strict_user):
    key = SimulatedYubikey(strict_user)
    api = as_user(strict_user, HTTP_X_YUBIKEY_OTP=key.otp())

    assert api.get("/accounts").status_code == 200
    assert api.get("/accounts").status_code == 200


def test_basic_ignores_the_otp_header_of_a_user_without_a_yubikey():
    user = make_user()

    response = as_user(user, HTTP_X_YUBIKEY_OTP="cccccccccccb" + "c" * 32).get(
        "/accounts"
    )

    assert response.status_code == 200
