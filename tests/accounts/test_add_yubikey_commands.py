"""`manage.py add_yubikey` and `manage.py add_yubikey_service`."""

import base64
import os

import pytest
from django.core.management import CommandError, call_command
from otp_yubikey.models import ValidationService
from yubiotp.modhex import modhex
from yubiotp.otp import YubiKey, encode_otp

from accounts.models import LocalYubikey, RemoteYubikey
from accounts.otp import verify_yubikey_otp
from tests.factories import make_user

pytestmark = pytest.mark.django_db

API_KEY = base64.b64encode(os.urandom(20)).decode()


def add_service(name="default", url="https://otp.example.org/verify", api_id="7"):
    call_command(
        "add_yubikey_service", name, "--url", url, "--api-id", api_id,
        "--api-key", API_KEY,
    )  # fmt: skip


def test_it_enrols_a_local_key_whose_otps_then_verify():
    user = make_user()
    aes_key, private_id = os.urandom(16), os.urandom(6)
    public_id = modhex(os.urandom(6)).decode()

    call_command(
        "add_yubikey", user.username, "--public-id", public_id,
        "--aes-key", aes_key.hex(), "--private-id", private_id.hex(),
    )  # fmt: skip

    device = LocalYubikey.objects.get(user=user)
    assert device.public_identity == public_id
    assert device.confirmed
    otp = encode_otp(YubiKey(private_id, 1).generate(), aes_key, public_id.encode())
    assert (
        verify_yubikey_otp(user, otp.decode())
        == LocalYubikey.objects.get(pk=device.pk).last_verified_at
    )


@pytest.mark.parametrize(
    ("option", "value", "message"),
    [
        ("--aes-key", "00" * 15, "AES key"),
        ("--aes-key", "zz" * 16, "AES key"),
        ("--private-id", "00" * 5, "private id"),
        ("--public-id", "abcdef", "public id"),
    ],
)
def test_it_refuses_malformed_key_material(option, value, message):
    user = make_user()
    args = {
        "--public-id": "cccccccccccb",
        "--aes-key": "00" * 16,
        "--private-id": "00" * 6,
        option: value,
    }

    with pytest.raises(CommandError, match=message):
        call_command("add_yubikey", user.username, *sum(args.items(), ()))

    assert not LocalYubikey.objects.exists()


def test_it_refuses_a_public_id_already_enrolled():
    args = ["--public-id", "cccccccccccb", "--aes-key", "00" * 16]
    call_command("add_yubikey", make_user().username, *args, "--private-id", "1" * 12)

    with pytest.raises(CommandError, match="already enrolled"):
        call_command(
            "add_yubikey", make_user().username, *args, "--private-id", "2" * 12
        )

    assert LocalYubikey.objects.count() == 1


def test_it_refuses_an_unknown_user():
    with pytest.raises(CommandError, match="nobody"):
        call_command("add_yubikey", "nobody", "--public-id", "cccccccccccb", "--remote")


def test_a_remote_key_uses_the_service_named_by_the_setting(settings):
    settings.CORRAL_YUBIKEY_SERVICE = "corp"
    add_service("default")
    add_service("corp", url="https://corp.example.org/verify", api_id="12")
    user = make_user()

    call_command(
        "add_yubikey", user.username, "--public-id", "vvccccccccci", "--remote"
    )

    device = RemoteYubikey.objects.get(user=user)
    assert device.public_id == "vvccccccccci"
    assert device.service.name == "corp"
    client = device.service.get_client()
    assert client.base_url == "https://corp.example.org/verify"
    assert client.api_id == 12


def test_a_remote_key_needs_the_configured_service_to_exist(settings):
    settings.CORRAL_YUBIKEY_SERVICE = "missing"
    user = make_user()

    with pytest.raises(CommandError, match="missing"):
        call_command(
            "add_yubikey", user.username, "--public-id", "cccccccccccb", "--remote"
        )

    assert not RemoteYubikey.objects.exists()


def test_adding_a_service_twice_updates_it():
    add_service("default", url="https://one.example.org/verify")
    add_service("default", url="https://two.example.org/verify", api_id="9")

    service = ValidationService.objects.get(name="default")
    assert service.base_url == "https://two.example.org/verify"
    assert service.api_id == 9


@pytest.mark.parametrize(
    ("url", "api_key", "message"),
    [
        ("https://otp.example.org/verify", "not base64!", "base64"),
        ("https://otp.example.org/verify", "", "empty"),
        ("ftp://otp.example.org/verify", API_KEY, "URL"),
    ],
)
def test_it_refuses_a_malformed_service(url, api_key, message):
    with pytest.raises(CommandError, match=message):
        call_command(
            "add_yubikey_service", "default", "--url", url, "--api-id", "1",
            "--api-key", api_key,
        )  # fmt: skip

    assert not ValidationService.objects.exists()
