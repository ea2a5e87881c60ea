"""The profile pages: SSH keys, second-factor enrolment, recovery codes,
sessions, API keys, password change and the password reset by e-mail."""

import os
import re

import pytest
from django.contrib.sessions.models import Session
from django.core import mail
from django.test import Client
from django_otp.oath import totp
from django_otp.plugins.otp_static.models import StaticDevice, StaticToken
from django_otp.plugins.otp_totp.models import TOTPDevice
from yubiotp.modhex import modhex
from yubiotp.otp import YubiKey, encode_otp

from accounts import actions
from accounts.models import ApiKey, LocalYubikey, RemoteYubikey, SessionToken
from accounts.otp import set_validation_service
from panel.models import AuditEvent
from tests.accounts.test_yubikey_remote import (
    API_KEY,
    SERVICE_URL,
    FakeValidationService,
)
from tests.factories import (
    PASSWORD,
    Api,
    SimulatedYubikey,
    make_api_key,
    make_user,
    ssh_public_key,
)

pytestmark = pytest.mark.django_db

NEW_PASSWORD = "a quite different passphrase"


def browser(user, **kwargs) -> Client:
    client = Client(**kwargs)
    client.force_login(user)
    return client


def field_errors(response, field: str) -> str:
    """The text of the error list Django renders by `field`'s input."""
    match = re.search(
        rf'<ul class="errorlist" id="id_{field}_error">(.*?)</ul>', response.text, re.S
    )
    assert match, f"no error shown by {field}"
    return match[1]


def api_token(user) -> str:
    return actions.create_session(
        user, validity=600, factors=["password"], yubikey_verified_at=None
    )


def bearer_status(token: str) -> int:
    return Api(f"Bearer {token}").get("/accounts").status_code


class UnenrolledYubikey:
    """A self-programmed YubiKey's values, and its button, before enrolment."""

    def __init__(self):
        self.aes_key = os.urandom(16)
        self.private_id = os.urandom(6)
        self.public_id = modhex(os.urandom(6)).decode()
        self.button = YubiKey(uid=self.private_id, session=1)

    def otp(self, aes_key: bytes | None = None) -> str:
        token = self.button.generate()
        key = aes_key or self.aes_key
        return encode_otp(token, key, self.public_id.encode()).decode()

    def form(self, **changes) -> dict:
        data = {
            "name": "blue key",
            "public_id": self.public_id,
            "aes_key": self.aes_key.hex(),
            "private_id": self.private_id.hex(),
        }
        data["otp"] = changes.pop("otp", None) or self.otp()
        return {**data, **changes}


def totp_now(device_or_key) -> str:
    key = getattr(device_or_key, "bin_key", device_or_key)
    return f"{totp(key):06d}"


# The profile page ------------------------------------------------------------


def test_the_profile_page_lists_devices_sessions_and_keys():
    user = make_user()
    SimulatedYubikey(user)
    make_api_key(user, label="deploy")
    api_token(user)
    client = browser(user)

    response = client.get("/panel/profile/")

    assert response.status_code == 200
    html = response.content.decode()
    assert "YubiKey" in html
    assert "deploy" in html
    assert "this browser" in html
    assert 'name="viewport"' in html
    assert 'href="/panel/profile/"' in html


def test_the_profile_needs_a_signed_in_user():
    response = Client().get("/panel/profile/")

    assert response.status_code == 302
    assert response["Location"].startswith("/panel/login")


def test_ssh_keys_are_saved_and_recorded():
    user = make_user()
    keys = f"{ssh_public_key('laptop')}\n\n{ssh_public_key('desktop')}\n"

    response = browser(user).post("/panel/profile/ssh-keys", {"authorized_keys": keys})

    assert response.status_code == 302
    user.refresh_from_db()
    assert user.authorized_keys.splitlines()[1].endswith("desktop")
    assert AuditEvent.objects.filter(kind=AuditEvent.Kind.SSH_KEYS_CHANGED).exists()


def test_a_bad_ssh_key_line_is_named_by_the_field_and_nothing_is_written():
    user = make_user(authorized_keys=ssh_public_key("old"))
    before = user.authorized_keys
    keys = f"{ssh_public_key('good')}\nssh-ed25519 not-base64 oops\n"

    response = browser(user).post("/panel/profile/ssh-keys", {"authorized_keys": keys})

    assert response.status_code == 400
    assert "line 2 is not an OpenSSH public key" in field_errors(
        response, "authorized_keys"
    )
    user.refresh_from_db()
    assert user.authorized_keys == before
    assert not AuditEvent.objects.filter(kind=AuditEvent.Kind.SSH_KEYS_CHANGED).exists()


@pytest.mark.parametrize(
    ("path", "data"),
    [
        ("/panel/profile/ssh-keys", {"authorized_keys": ""}),
        ("/panel/profile/recovery-codes", {}),
        ("/panel/profile/password", {"current_password": PASSWORD}),
        ("/panel/profile/totp", {"code": "123456"}),
    ],
)
def test_every_form_needs_the_csrf_token(path, data):
    user = make_user(authorized_keys=ssh_public_key())
    client = browser(user, enforce_csrf_checks=True)

    response = client.post(path, data)

    assert response.status_code == 403
    user.refresh_from_db()
    assert user.authorized_keys
    assert not StaticDevice.objects.exists()
    assert not TOTPDevice.objects.exists()


def test_a_form_posted_with_its_csrf_token_is_accepted():
    user = make_user()
    client = browser(user, enforce_csrf_checks=True)
    page = client.get("/panel/profile/")
    token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', page.text)[1]

    response = client.post(
        "/panel/profile/recovery-codes", {"csrfmiddlewaretoken": token}
    )

    assert response.status_code == 200
    assert StaticToken.objects.filter(device__user=user).count() == 10


# YubiKeys --------------------------------------------------------------------


@pytest.fixture
def validation_service(monkeypatch):
    import base64

    set_validation_service(
        "default", url=SERVICE_URL, api_id=1, api_key=base64.b64encode(API_KEY).decode()
    )
    fake = FakeValidationService()
    monkeypatch.setattr("accounts.models.urlopen", fake)
    return fake


def test_a_yubikey_is_enrolled_by_pressing_it_once(validation_service):
    user = make_user()
    otp = "cccccccccccb" + "c" * 32

    response = browser(user).post(
        "/panel/profile/yubikey", {"name": "desk key", "otp": otp}
    )

    assert response.status_code == 302
    device = RemoteYubikey.objects.get(user=user)
    assert (device.public_id, device.name, device.confirmed) == (
        "cccccccccccb",
        "desk key",
        True,
    )
    assert validation_service.requests[0][1]["otp"] == otp
    assert AuditEvent.objects.filter(kind=AuditEvent.Kind.DEVICE_ENROLLED).exists()


def test_a_yubikey_the_service_refuses_is_not_enrolled(validation_service):
    validation_service.status = "BAD_OTP"
    user = make_user()

    response = browser(user).post(
        "/panel/profile/yubikey", {"otp": "cccccccccccb" + "c" * 32}
    )

    assert response.status_code == 400
    assert "did not accept" in field_errors(response, "otp")
    assert not RemoteYubikey.objects.exists()


def test_something_that_is_not_an_otp_is_refused_by_its_field(validation_service):
    response = browser(make_user()).post("/panel/profile/yubikey", {"otp": "12345"})

    assert response.status_code == 400
    assert "Touch your YubiKey" in field_errors(response, "otp")
    assert not validation_service.requests
    assert not RemoteYubikey.objects.exists()


def test_a_self_programmed_yubikey_is_enrolled_after_one_otp():
    user = make_user()
    key = UnenrolledYubikey()
    client = browser(user)

    response = client.post("/panel/profile/yubikey/local", key.form())

    assert response.status_code == 302
    device = LocalYubikey.objects.get(user=user)
    assert device.public_identity == key.public_id
    # The OTP used for enrolment is spent; the next one signs in.
    client.post("/panel/logout")
    client.post("/panel/login", {"username": user.username, "password": PASSWORD})
    response = client.post("/panel/login/code", {"code": key.otp()})
    assert response.status_code == 302
    assert client.get("/panel/profile/").status_code == 200


def test_a_self_programmed_yubikey_whose_otp_does_not_match_is_not_kept():
    user = make_user()
    key = UnenrolledYubikey()

    response = browser(user).post(
        "/panel/profile/yubikey/local", key.form(otp=key.otp(aes_key=os.urandom(16)))
    )

    assert response.status_code == 400
    assert "does not decode" in field_errors(response, "otp")
    assert not LocalYubikey.objects.exists()
    assert not AuditEvent.objects.filter(kind=AuditEvent.Kind.DEVICE_ENROLLED).exists()


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("aes_key", "abc", "the AES key must be 32 hexadecimal digits"),
        ("private_id", "zz" * 6, "the private id must be 12 hexadecimal digits"),
        ("public_id", "xyz", "the public id must be 2 to 32 modhex characters"),
    ],
)
def test_a_bad_yubikey_value_is_shown_by_its_field(field, value, message):
    key = UnenrolledYubikey()

    response = browser(make_user()).post(
        "/panel/profile/yubikey/local", key.form(**{field: value})
    )

    assert response.status_code == 400
    assert message in field_errors(response, field)
    assert not LocalYubikey.objects.exists()


# TOTP ------------------------------------------------------------------------


def _pending_totp_key(client) -> bytes:
    from accounts.profile_views import PENDING_TOTP_KEY

    return bytes.fromhex(client.session[PENDING_TOTP_KEY])


def test_an_authenticator_app_is_enrolled_by_qr_code_and_one_code():
    user = make_user()
    client = browser(user)
    page = client.get("/panel/profile/totp")
    assert page.status_code == 200
    assert "<svg" in page.text
    assert page["Cache-Control"] == "no-store"
    key = _pending_totp_key(client)

    response = client.post(
        "/panel/profile/totp", {"name": "phone", "code": totp_now(key)}
    )

    assert response.status_code == 302
    device = TOTPDevice.objects.get(user=user)
    assert device.confirmed and device.bin_key == key and device.name == "phone"


def test_a_wrong_totp_code_enrols_nothing_and_keeps_the_secret():
    user = make_user()
    client = browser(user)
    client.get("/panel/profile/totp")
    key = _pending_totp_key(client)
    wrong = f"{(int(totp_now(key)) + 1) % 1000000:06d}"

    response = client.post("/panel/profile/totp", {"code": wrong})

    assert response.status_code == 400
    assert "does not match" in field_errors(response, "code")
    assert not TOTPDevice.objects.exists()
    assert _pending_totp_key(client) == key


def test_the_code_that_enrolled_the_app_cannot_sign_in():
    user = make_user()
    client = browser(user)
    client.get("/panel/profile/totp")
    code = totp_now(_pending_totp_key(client))
    client.post("/panel/profile/totp", {"code": code})
    client.post("/panel/logout")

    client.post("/panel/login", {"username": user.username, "password": PASSWORD})
    response = client.post("/panel/login/code", {"code": code})

    assert response.status_code == 200
    assert "_auth_user_id" not in client.session


# Recovery codes --------------------------------------------------------------


def test_recovery_codes_are_shown_once_and_each_signs_in_once():
    user = make_user()
    SimulatedYubikey(user)
    client = browser(user)

    response = client.post("/panel/profile/recovery-codes")

    assert response["Cache-Control"] == "no-store"
    codes = re.findall(r"<li>([a-z0-9]+)</li>", response.text)
    assert len(codes) == 10
    assert codes[0] not in client.get("/panel/profile/recovery-codes").text
    signed_in = Client()
    signed_in.post("/panel/login", {"username": user.username, "password": PASSWORD})
    assert signed_in.post("/panel/login/code", {"code": codes[0]}).status_code == 302
    again = Client()
    again.post("/panel/login", {"username": user.username, "password": PASSWORD})
    assert again.post("/panel/login/code", {"code": codes[0]}).status_code == 200


def test_making_recovery_codes_again_replaces_the_old_ones():
    user = make_user()
    client = browser(user)
    first = re.findall(
        r"<li>([a-z0-9]+)</li>", client.post("/panel/profile/recovery-codes").text
    )

    client.post("/panel/profile/recovery-codes")

    tokens = set(StaticToken.objects.values_list("token", flat=True))
    assert len(tokens) == 10
    assert not tokens & set(first)
    assert StaticDevice.objects.filter(user=user).count() == 1


# Devices ---------------------------------------------------------------------


def test_a_device_can_be_removed():
    user = make_user()
    key = SimulatedYubikey(user)

    response = browser(user).post(
        f"/panel/profile/devices/yubikey-local/{key.device.pk}/remove"
    )

    assert response.status_code == 302
    assert not LocalYubikey.objects.exists()
    assert AuditEvent.objects.filter(kind=AuditEvent.Kind.DEVICE_REMOVED).exists()


def test_the_last_factor_of_a_user_who_needs_one_stays():
    user = make_user(require_second_factor=True)
    key = SimulatedYubikey(user)

    response = browser(user).post(
        f"/panel/profile/devices/yubikey-local/{key.device.pk}/remove"
    )

    assert response.status_code == 403
    assert "needs a second factor" in response.text
    assert LocalYubikey.objects.filter(pk=key.device.pk).exists()


# Sessions and API keys -------------------------------------------------------


def test_revoking_an_api_session_makes_its_bearer_token_fail():
    user = make_user()
    token = api_token(user)
    assert bearer_status(token) == 200
    row = SessionToken.objects.get(user=user)

    response = browser(user).post(f"/panel/profile/sessions/api/{row.pk}/revoke")

    assert response.status_code == 302
    assert bearer_status(token) == 401


def test_revoking_a_browser_session_signs_that_browser_out():
    from accounts.selfservice import browser_session_id

    user = make_user()
    elsewhere = browser(user)
    here = browser(user)
    session_id = browser_session_id(elsewhere.session.session_key)

    response = here.post(f"/panel/profile/sessions/browser/{session_id}/revoke")

    assert response.status_code == 302
    assert elsewhere.get("/panel/profile/").status_code == 302
    assert here.get("/panel/profile/").status_code == 200


def test_revoking_an_api_key_deletes_it():
    user = make_user()
    key, _ = make_api_key(user)

    response = browser(user).post(f"/panel/profile/api-keys/{key.pk}/revoke")

    assert response.status_code == 302
    assert not ApiKey.objects.exists()


def test_another_users_devices_sessions_and_keys_answer_404():
    from accounts.selfservice import browser_session_id

    owner = make_user()
    yubikey = SimulatedYubikey(owner)
    key, _ = make_api_key(owner)
    api_token(owner)
    token = SessionToken.objects.get(user=owner)
    owner_session = browser_session_id(browser(owner).session.session_key)
    intruder = browser(make_user())

    paths = [
        f"/panel/profile/devices/yubikey-local/{yubikey.device.pk}/remove",
        f"/panel/profile/sessions/api/{token.pk}/revoke",
        f"/panel/profile/sessions/browser/{owner_session}/revoke",
        f"/panel/profile/api-keys/{key.pk}/revoke",
        "/panel/profile/devices/no-such-kind/1/remove",
    ]
    for path in paths:
        assert intruder.post(path).status_code == 404, path
    assert LocalYubikey.objects.exists()
    assert ApiKey.objects.exists()
    assert SessionToken.objects.exists()
    assert Session.objects.count() == 2


# Password change -------------------------------------------------------------


def _change(client, **fields):
    data = {
        "current_password": PASSWORD,
        "new_password": NEW_PASSWORD,
        "new_password_again": NEW_PASSWORD,
        **fields,
    }
    return client.post("/panel/profile/password", data)


def test_a_password_change_needs_the_current_password():
    user = make_user()

    response = _change(browser(user), current_password="not it")

    assert response.status_code == 400
    assert "not your current password" in field_errors(response, "current_password")
    user.refresh_from_db()
    assert user.check_password(PASSWORD)


def test_a_password_change_needs_the_new_password_twice_alike():
    user = make_user()

    response = _change(browser(user), new_password_again="something else entirely")

    assert response.status_code == 400
    assert "differ" in field_errors(response, "new_password_again")
    user.refresh_from_db()
    assert user.check_password(PASSWORD)


def test_a_password_change_needs_a_fresh_second_factor():
    user = make_user()
    key = SimulatedYubikey(user)
    client = browser(user)

    missing = _change(client)
    wrong = _change(client, code="cccccccccccb" + "c" * 32)

    for response in (missing, wrong):
        assert response.status_code == 400
        field_errors(response, "code")
    user.refresh_from_db()
    assert user.check_password(PASSWORD)
    assert _change(client, code=key.otp()).status_code == 302
    user.refresh_from_db()
    assert user.check_password(NEW_PASSWORD)


def test_a_replayed_otp_is_not_a_fresh_factor():
    from datetime import timedelta

    from django.utils import timezone

    user = make_user()
    key = SimulatedYubikey(user)
    otp = key.otp()
    from accounts.otp import verify_yubikey_otp

    verify_yubikey_otp(user, otp)
    LocalYubikey.objects.update(last_verified_at=timezone.now() - timedelta(minutes=5))

    response = _change(browser(user), code=otp)

    assert response.status_code == 400
    assert "used before" in field_errors(response, "code")


def test_a_password_change_ends_other_sessions_but_keeps_this_one():
    user = make_user()
    device = TOTPDevice.objects.create(user=user, name="app", key=os.urandom(20).hex())
    token = api_token(user)
    elsewhere = browser(user)
    here = browser(user)

    response = _change(here, code=totp_now(device))

    assert response.status_code == 302
    assert here.get("/panel/profile/").status_code == 200
    assert elsewhere.get("/panel/profile/").status_code == 302
    assert bearer_status(token) == 401
    assert AuditEvent.objects.filter(kind=AuditEvent.Kind.PASSWORD_CHANGED).exists()


# Password reset --------------------------------------------------------------


def test_the_reset_page_answers_alike_for_known_and_unknown_addresses():
    user = make_user()

    known = Client().post("/panel/password-reset", {"email": user.email})
    unknown = Client().post("/panel/password-reset", {"email": "nobody@example.org"})

    assert known.status_code == unknown.status_code == 302
    assert known["Location"] == unknown["Location"]
    assert len(mail.outbox) == 1
    assert mail.outbox[0].to == [user.email]


def test_a_bad_address_is_shown_by_its_field_and_nothing_is_sent():
    response = Client().post("/panel/password-reset", {"email": "not an address"})

    assert response.status_code == 200
    assert field_errors(response, "email")
    assert not mail.outbox


def test_the_reset_link_sets_a_new_password_and_ends_every_session():
    user = make_user()
    token = api_token(user)
    signed_in = browser(user)
    Client().post("/panel/password-reset", {"email": user.email})
    link = re.search(
        r"https?://[^/\s]+(/panel/password-reset/\S+)", mail.outbox[0].body
    )
    client = Client()

    form = client.get(link[1], follow=True)
    assert form.status_code == 200
    set_url = form.redirect_chain[-1][0]
    bad = client.post(set_url, {"new_password1": "x", "new_password2": "y"})
    assert bad.status_code == 200
    user.refresh_from_db()
    assert user.check_password(PASSWORD)
    done = client.post(
        set_url, {"new_password1": NEW_PASSWORD, "new_password2": NEW_PASSWORD}
    )

    assert done.status_code == 302
    user.refresh_from_db()
    assert user.check_password(NEW_PASSWORD)
    assert bearer_status(token) == 401
    assert signed_in.get("/panel/profile/").status_code == 302
    # The link works once.
    assert "expired" in Client().get(link[1], follow=True).text
