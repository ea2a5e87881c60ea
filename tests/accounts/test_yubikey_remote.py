"""YubiKeys checked by a validation service; only the HTTP call is faked."""

import base64
import io
import os
from urllib.error import URLError
from urllib.parse import parse_qsl, urlsplit

import pytest
from yubiotp.client import param_signature
from yubiotp.modhex import modhex

from accounts.models import RemoteYubikey
from accounts.otp import (
    OtpRejected,
    add_remote_yubikey,
    set_validation_service,
    verify_yubikey_otp,
)
from tests.factories import make_user

pytestmark = pytest.mark.django_db

API_KEY = os.urandom(20)
SERVICE_URL = "https://validation.example.org/wsapi/2.0/verify"


class FakeValidationService:
    """Answers like a YubiKey validation server (protocol 2.0), signing its
    answers with the shared API key and checking the request's signature."""

    def __init__(self, status="OK"):
        self.status = status
        self.requests = []
        self.sign_with = API_KEY

    def __call__(self, url, timeout=None):
        assert timeout, "the service must be called with a timeout"
        parts = urlsplit(url)
        params = dict(parse_qsl(parts.query))
        self.requests.append((f"{parts.scheme}://{parts.netloc}{parts.path}", params))
        signature = params.pop("h")
        expected = param_signature(params.items(), API_KEY)
        assert base64.b64decode(signature) == expected, "unsigned request"
        fields = {
            "otp": params["otp"],
            "nonce": params["nonce"],
            "t": "2026-01-01T00:00:00Z0123",
            "status": self.status,
        }
        h = base64.b64encode(param_signature(fields.items(), self.sign_with))
        body = "\r\n".join(f"{k}={v}" for k, v in fields.items())
        return io.BytesIO(f"h={h.decode()}\r\n{body}\r\n".encode())


@pytest.fixture
def service(monkeypatch):
    fake = FakeValidationService()
    monkeypatch.setattr("accounts.models.urlopen", fake)
    return fake


@pytest.fixture
def user():
    return make_user()


@pytest.fixture
def public_id():
    return modhex(os.urandom(6)).decode()


@pytest.fixture
def device(user, public_id, settings):
    settings.CORRAL_YUBIKEY_SERVICE = "corp"
    set_validation_service(
        "corp", url=SERVICE_URL, api_id=42, api_key=base64.b64encode(API_KEY).decode()
    )
    return add_remote_yubikey(user, public_id=public_id)


def new_otp(public_id):
    return public_id + modhex(os.urandom(16)).decode()


def test_it_accepts_an_otp_the_service_vouches_for(user, device, service):
    otp = new_otp(device.public_id)

    verified_at = verify_yubikey_otp(user, otp)

    assert RemoteYubikey.objects.get(pk=device.pk).last_verified_at == verified_at
    [(url, params)] = service.requests
    assert url == SERVICE_URL
    assert params["id"] == "42"
    assert params["otp"] == otp


@pytest.mark.parametrize("status", ["REPLAYED_OTP", "BAD_OTP", "NO_SUCH_CLIENT"])
def test_it_refuses_what_the_service_refuses(user, device, service, status):
    service.status = status

    with pytest.raises(OtpRejected):
        verify_yubikey_otp(user, new_otp(device.public_id))

    assert RemoteYubikey.objects.get(pk=device.pk).last_verified_at is None


def test_it_refuses_an_answer_not_signed_with_the_api_key(user, device, service):
    service.sign_with = os.urandom(20)

    with pytest.raises(OtpRejected):
        verify_yubikey_otp(user, new_otp(device.public_id))


def test_it_refuses_when_the_service_cannot_be_reached(
    user, device, monkeypatch, caplog
):
    def unreachable(url, timeout=None):
        raise URLError(f"connection refused to {url}")

    monkeypatch.setattr("accounts.models.urlopen", unreachable)
    otp = new_otp(device.public_id)

    with pytest.raises(OtpRejected):
        verify_yubikey_otp(user, otp)

    assert "URLError" in caplog.text
    assert otp not in caplog.text


def test_a_replay_is_answered_without_asking_the_service_again(user, device, service):
    otp = new_otp(device.public_id)
    first = verify_yubikey_otp(user, otp)

    assert verify_yubikey_otp(user, otp) == first
    assert len(service.requests) == 1


def test_an_otp_of_an_unknown_public_id_never_reaches_the_service(
    user, device, service
):
    with pytest.raises(OtpRejected):
        verify_yubikey_otp(user, new_otp(modhex(os.urandom(6)).decode()))

    assert service.requests == []
