"""Privileges with `yubikey_required` and `yubikey_otp_max_age`, through Basic
with X-Yubikey-Otp, a session made with a YubiKey, and Bearer step-up."""

from datetime import timedelta

import pytest
from django.utils import timezone

from accounts.models import LocalYubikey, SessionToken
from tests.factories import (
    PASSWORD,
    Api,
    SimulatedYubikey,
    as_user,
    grant,
    make_account,
    make_user,
)

pytestmark = pytest.mark.django_db

MAX_AGE = 300


@pytest.fixture
def user():
    return make_user()


@pytest.fixture
def key(user):
    return SimulatedYubikey(user)


@pytest.fixture
def account(user):
    account = make_account()
    grant(user, "account_admin", account, yubikey_required=True,
          yubikey_otp_max_age=MAX_AGE)  # fmt: skip
    return account


def age_the_otp(key, seconds):
    LocalYubikey.objects.filter(pk=key.device.pk).update(
        last_verified_at=timezone.now() - timedelta(seconds=seconds)
    )


def assert_needs_the_yubikey(response):
    assert response.status_code == 403, response.content
    assert "YubiKey" in response.json()["detail"]
    assert "name" not in response.json()


def session_token(user, **fields) -> str:
    response = Api().post(
        "/session", {"username": user.username, "password": PASSWORD, **fields}
    )
    assert response.status_code == 200, response.content
    return response.content.decode()


# Basic with X-Yubikey-Otp -------------------------------------------------


def test_basic_with_a_fresh_otp_is_allowed(user, key, account):
    response = as_user(user, HTTP_X_YUBIKEY_OTP=key.otp()).get(
        f"/accounts/{account.name}"
    )

    assert response.status_code == 200
    assert response.json()["name"] == account.name


def test_basic_with_an_otp_verified_too_long_ago_is_refused(user, key, account):
    api = as_user(user, HTTP_X_YUBIKEY_OTP=key.otp())
    assert api.get(f"/accounts/{account.name}").status_code == 200
    age_the_otp(key, MAX_AGE + 1)

    assert_needs_the_yubikey(api.get(f"/accounts/{account.name}"))


def test_basic_replaying_the_otp_within_the_max_age_is_allowed(user, key, account):
    api = as_user(user, HTTP_X_YUBIKEY_OTP=key.otp())
    assert api.get(f"/accounts/{account.name}").status_code == 200
    age_the_otp(key, MAX_AGE - 10)

    assert api.get(f"/accounts/{account.name}").status_code == 200


def test_basic_without_an_otp_is_refused(user, key, account):
    assert_needs_the_yubikey(as_user(user).get(f"/accounts/{account.name}"))


def test_basic_with_an_otp_older_than_the_newest_is_unauthenticated(user, key, account):
    older, newer = key.otp(), key.otp()
    assert (
        as_user(user, HTTP_X_YUBIKEY_OTP=newer)
        .get(f"/accounts/{account.name}")
        .status_code
        == 200
    )

    response = as_user(user, HTTP_X_YUBIKEY_OTP=older).get(f"/accounts/{account.name}")

    assert response.status_code == 401
    assert response["WWW-Authenticate"]


def test_an_unmet_yubikey_condition_hides_the_account_from_lists(user, key, account):
    listed = as_user(user).get("/accounts").json()

    assert account.name not in [a["name"] for a in listed]


def test_a_privilege_without_the_condition_needs_no_otp(user, key):
    account = make_account()
    grant(user, "account_admin", account)

    assert as_user(user).get(f"/accounts/{account.name}").status_code == 200


# A session made with a YubiKey -------------------------------------------


def test_a_session_made_with_a_fresh_otp_is_allowed(user, key, account):
    token = session_token(user, yubikey=key.otp())

    response = Api(f"Bearer {token}").get(f"/accounts/{account.name}")

    assert response.status_code == 200


def test_a_session_whose_otp_has_aged_is_refused(user, key, account):
    token = session_token(user, yubikey=key.otp())
    SessionToken.objects.update(
        yubikey_verified_at=timezone.now() - timedelta(seconds=MAX_AGE + 1)
    )

    assert_needs_the_yubikey(Api(f"Bearer {token}").get(f"/accounts/{account.name}"))


def test_a_session_made_without_an_otp_is_refused(user, key, account):
    token = session_token(user)

    assert_needs_the_yubikey(Api(f"Bearer {token}").get(f"/accounts/{account.name}"))


def test_a_session_made_with_a_replayed_otp_carries_its_first_time(user, key, account):
    otp = key.otp()
    assert as_user(user, HTTP_X_YUBIKEY_OTP=otp).get("/accounts").status_code == 200
    age_the_otp(key, MAX_AGE + 1)

    token = session_token(user, yubikey=otp)

    assert_needs_the_yubikey(Api(f"Bearer {token}").get(f"/accounts/{account.name}"))


def test_a_session_with_an_old_otp_is_refused_at_sign_in(user, key, account):
    older, newer = key.otp(), key.otp()
    session_token(user, yubikey=newer)

    response = Api().post(
        "/session", {"username": user.username, "password": PASSWORD, "yubikey": older}
    )

    assert response.status_code == 403
    assert "Second factor rejected" in response.content.decode()


# Bearer with X-Yubikey-Otp step-up ---------------------------------------


def test_bearer_step_up_with_a_fresh_otp_is_allowed(user, key, account):
    token = session_token(user)

    response = Api(f"Bearer {token}", HTTP_X_YUBIKEY_OTP=key.otp()).get(
        f"/accounts/{account.name}"
    )

    assert response.status_code == 200


def test_bearer_step_up_with_an_aged_otp_is_refused(user, key, account):
    token = session_token(user)
    api = Api(f"Bearer {token}", HTTP_X_YUBIKEY_OTP=key.otp())
    assert api.get(f"/accounts/{account.name}").status_code == 200
    age_the_otp(key, MAX_AGE + 1)

    assert_needs_the_yubikey(api.get(f"/accounts/{account.name}"))


def test_bearer_step_up_with_an_otp_older_than_the_newest_is_unauthenticated(
    user, key, account
):
    token = session_token(user)
    older, newer = key.otp(), key.otp()
    Api(f"Bearer {token}", HTTP_X_YUBIKEY_OTP=newer).get("/accounts")

    response = Api(f"Bearer {token}", HTTP_X_YUBIKEY_OTP=older).get(
        f"/accounts/{account.name}"
    )

    assert response.status_code == 401
    assert response["WWW-Authenticate"]
