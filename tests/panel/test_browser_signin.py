"""The panel's browser sign-in: password, a second factor when needed, sign-out."""

from binascii import unhexlify

import pytest
from django.test import Client
from django_otp.oath import TOTP
from django_otp.plugins.otp_totp.models import TOTPDevice
from yubiotp.otp import YubiKey, encode_otp

from accounts import signin
from accounts.models import LocalYubikey
from tests.factories import PASSWORD, Api, grant, make_account, make_user

pytestmark = pytest.mark.django_db

ATTACKER = "198.51.100.7"


@pytest.fixture
def alice():
    user = make_user("alice")
    make_account("acme", owner=user)
    make_account("other", owner=make_user("bob"))
    return user


def sign_in(client, username="alice", password=PASSWORD, **fields):
    return client.post(
        "/panel/login", {"username": username, "password": password, **fields}
    )


def totp_code(device: TOTPDevice) -> str:
    token = TOTP(device.bin_key, device.step, device.t0, device.digits).token()
    return f"{token:0{device.digits}d}"


def test_the_panel_sends_strangers_to_the_sign_in_page():
    response = Client().get("/panel/")

    assert response.status_code == 302
    assert response["Location"] == "/panel/login?next=/panel/"


def test_the_sign_in_page_has_a_form_with_a_csrf_token():
    response = Client().get("/panel/login")

    assert response.status_code == 200
    page = response.content.decode()
    assert 'name="username"' in page
    assert 'name="password"' in page
    assert "csrfmiddlewaretoken" in page


def test_signing_in_shows_who_and_the_reachable_accounts(alice):
    client = Client()

    response = sign_in(client)

    assert response.status_code == 302
    assert response["Location"] == "/panel/"
    page = client.get("/panel/").content.decode()
    assert "Signed in as <strong>alice</strong>" in page
    assert "acme" in page
    assert "other" not in page
    assert client.session[signin.SESSION_FACTORS] == ["password"]


def test_the_panel_counts_only_privileges_whose_conditions_hold(alice):
    hidden = make_account("faraway")
    grant(alice, "account_admin", hidden, ip_restrictions=["192.0.2.0/24"])
    client = Client()
    sign_in(client)

    page = client.get("/panel/").content.decode()

    assert "acme" in page
    # Listed as locked with the reason, and nothing inside it is reachable.
    assert "faraway" in page
    assert "Only from allowed networks" in page
    assert "/panel/accounts/faraway/" not in page


def test_sign_in_refuses_a_post_without_the_csrf_token(alice):
    client = Client(enforce_csrf_checks=True)

    assert sign_in(client).status_code == 403

    client.get("/panel/login")
    token = client.cookies["csrftoken"].value
    response = sign_in(client, csrfmiddlewaretoken=token)
    assert response.status_code == 302


def test_a_wrong_password_is_refused(alice):
    client = Client()

    response = sign_in(client, password="wrong password")

    assert response.status_code == 200
    assert signin.BAD_CREDENTIALS in response.content.decode()
    assert client.get("/panel/").status_code == 302


def test_the_browser_is_locked_out_too(alice, settings):
    settings.AXES_FAILURE_LIMIT = 3
    client = Client(REMOTE_ADDR=ATTACKER)
    for _ in range(2):
        sign_in(client, password="wrong password")

    tripping = sign_in(client, password="wrong password")
    refused = sign_in(client)

    for response in (tripping, refused):
        assert response.status_code == 403
        assert "Try again after" in response.content.decode()
        assert signin.BAD_CREDENTIALS not in response.content.decode()
    assert client.get("/panel/").status_code == 302
    assert sign_in(Client(REMOTE_ADDR="203.0.113.9")).status_code == 302


def test_api_failures_and_browser_failures_share_one_count(alice, settings):
    settings.AXES_FAILURE_LIMIT = 3
    api = Api(REMOTE_ADDR=ATTACKER)
    for _ in range(3):
        api.post("/session", {"username": "alice", "password": "wrong password"})

    response = sign_in(Client(REMOTE_ADDR=ATTACKER))

    assert response.status_code == 403


def test_a_user_waiting_for_approval_cannot_sign_in():
    make_user("alice", approved=False)

    response = sign_in(Client())

    assert response.status_code == 403
    assert "approval" in response.content.decode()


def test_sign_out_ends_the_session(alice):
    client = Client()
    sign_in(client)

    assert client.get("/panel/logout").status_code == 405
    response = client.post("/panel/logout")

    assert response.status_code == 302
    assert response["Location"] == "/panel/login"
    assert client.get("/panel/").status_code == 302


def test_it_returns_to_a_local_next_page_only(alice):
    local = sign_in(Client(), next="/panel/accounts")
    foreign = sign_in(Client(), next="https://evil.example/")

    assert local["Location"] == "/panel/accounts"
    assert foreign["Location"] == "/panel/"


def test_a_user_with_totp_gives_a_code_after_the_password(alice, settings):
    # django-otp slows retries after a wrong code; this test retries at once.
    settings.OTP_TOTP_THROTTLE_FACTOR = 0
    device = TOTPDevice.objects.create(user=alice, name="phone", confirmed=True)
    client = Client()

    first = sign_in(client)
    assert first.status_code == 302
    assert first["Location"] == "/panel/login/code"
    assert client.get("/panel/").status_code == 302
    assert 'name="code"' in client.get("/panel/login/code").content.decode()

    wrong = client.post("/panel/login/code", {"code": "not-a-code"})
    assert wrong.status_code == 200
    assert "rejected" in wrong.content.decode()

    right = client.post("/panel/login/code", {"code": totp_code(device)})
    assert right.status_code == 302
    assert right["Location"] == "/panel/"
    assert "Signed in as" in client.get("/panel/").content.decode()
    assert set(client.session[signin.SESSION_FACTORS]) == {"password", "2fa", "totp"}


def test_a_yubikey_sign_in_stores_when_the_otp_was_verified(alice):
    LocalYubikey.objects.create(
        user=alice,
        name="yubikey",
        confirmed=True,
        private_id="5dc30490956b",
        key="fb362a0853be5e5306d5cc2483f279cb",
        session=5,
        counter=0,
        public_identity="cccccccccccb",
    )
    simulator = YubiKey(unhexlify(b"5dc30490956b"), 6, 0)
    otp = encode_otp(
        simulator.generate(),
        unhexlify(b"fb362a0853be5e5306d5cc2483f279cb"),
        b"cccccccccccb",
    ).decode()
    client = Client()
    sign_in(client)

    response = client.post("/panel/login/code", {"code": otp})

    assert response.status_code == 302
    assert "yubikey" in client.session[signin.SESSION_FACTORS]
    verified_at = signin.session_yubikey_time(client.session)
    assert verified_at is not None
    assert verified_at == LocalYubikey.objects.get().last_verified_at


def test_the_code_step_needs_a_verified_password_first(alice):
    TOTPDevice.objects.create(user=alice, name="phone", confirmed=True)

    response = Client().post("/panel/login/code", {"code": "123456"})

    assert response.status_code == 302
    assert response["Location"] == "/panel/login"


def test_wrong_codes_lock_the_browser_out(alice, settings):
    settings.AXES_FAILURE_LIMIT = 3
    settings.OTP_TOTP_THROTTLE_FACTOR = 0
    device = TOTPDevice.objects.create(user=alice, name="phone", confirmed=True)
    client = Client(REMOTE_ADDR=ATTACKER)
    sign_in(client)

    responses = [
        client.post("/panel/login/code", {"code": "not-a-code"}) for _ in range(3)
    ]
    after = client.post("/panel/login/code", {"code": totp_code(device)})

    assert responses[-1].status_code == 403
    assert "Try again after" in responses[-1].content.decode()
    assert after.status_code == 302
    assert after["Location"] == "/panel/login"
    assert client.get("/panel/").status_code == 302


def test_a_required_second_factor_without_a_device_is_refused(alice):
    alice.require_second_factor = True
    alice.save()
    client = Client()

    response = sign_in(client)

    assert response.status_code == 403
    assert "second factor" in response.content.decode()
    assert client.get("/panel/").status_code == 302


def test_the_browser_session_works_for_the_api(alice):
    client = Client()
    sign_in(client)

    response = client.get("/accounts", HTTP_ACCEPT="application/json")

    assert response.status_code == 200
    assert [a["name"] for a in response.json()] == ["acme"]
