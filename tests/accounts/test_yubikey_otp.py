"""YubiKey OTPs validated locally, with real OTPs made by the yubiotp library."""

import os
from datetime import timedelta

import pytest
from django.utils import timezone
from yubiotp.modhex import modhex
from yubiotp.otp import OTP, encode_otp

from accounts.models import LocalYubikey
from accounts.otp import OtpRejected, verify_yubikey_otp
from tests.factories import SimulatedYubikey, make_user

pytestmark = pytest.mark.django_db


@pytest.fixture
def user():
    return make_user()


@pytest.fixture
def key(user):
    return SimulatedYubikey(user)


def test_it_accepts_a_valid_otp_and_advances_the_counter(user, key):
    before = timezone.now()

    verified_at = verify_yubikey_otp(user, key.otp())

    device = LocalYubikey.objects.get(pk=key.device.pk)
    assert before <= verified_at <= timezone.now()
    assert device.last_verified_at == verified_at
    assert (device.session, device.counter) == (1, 0)


def test_it_stores_only_a_digest_of_the_newest_otp(user, key):
    otp = key.otp()

    verify_yubikey_otp(user, otp)

    device = LocalYubikey.objects.get(pk=key.device.pk)
    assert device.last_otp_hash
    assert otp not in device.last_otp_hash


def test_it_accepts_each_new_otp_in_turn(user, key):
    first = verify_yubikey_otp(user, key.otp())
    second = verify_yubikey_otp(user, key.otp())

    assert second > first
    assert LocalYubikey.objects.get(pk=key.device.pk).counter == 1


def test_it_refuses_an_otp_encrypted_with_another_aes_key(user, key):
    forged = encode_otp(
        OTP(key.private_id, 5, 0x1234, 0, 0x99), os.urandom(16), key.public_id.encode()
    ).decode()

    with pytest.raises(OtpRejected):
        verify_yubikey_otp(user, forged)


def test_it_refuses_an_otp_with_another_private_id(user, key):
    forged = encode_otp(
        OTP(os.urandom(6), 5, 0x1234, 0, 0x99), key.aes_key, key.public_id.encode()
    ).decode()

    with pytest.raises(OtpRejected):
        verify_yubikey_otp(user, forged)


def test_it_refuses_a_public_id_not_enrolled_for_the_user(user, key):
    stranger = SimulatedYubikey(make_user())

    with pytest.raises(OtpRejected, match="public id"):
        verify_yubikey_otp(user, stranger.otp())


def test_it_refuses_an_otp_for_a_user_with_no_yubikey():
    otp = "cccccccccccb" + modhex(os.urandom(16)).decode()

    with pytest.raises(OtpRejected):
        verify_yubikey_otp(make_user(), otp)


@pytest.mark.parametrize(
    "value",
    ["", "123456", "not a yubikey otp at all, really not one", "ccccccccccc", None],
)
def test_it_refuses_malformed_otps(user, key, value):
    with pytest.raises(OtpRejected, match="not a YubiKey OTP"):
        verify_yubikey_otp(user, value)


def test_it_refuses_an_otp_whose_ciphertext_was_tampered_with(user, key):
    otp = key.otp()
    tampered = otp[:-1] + ("c" if otp[-1] != "c" else "b")

    with pytest.raises(OtpRejected):
        verify_yubikey_otp(user, tampered)

    assert LocalYubikey.objects.get(pk=key.device.pk).last_verified_at is None


def test_a_replay_of_the_newest_otp_returns_the_first_verification_time(user, key):
    otp = key.otp()
    first = verify_yubikey_otp(user, otp)

    assert verify_yubikey_otp(user, otp) == first
    assert verify_yubikey_otp(user, otp) == first


def test_a_replay_is_refused_beyond_the_replay_max_age(user, key, settings):
    settings.CORRAL_OTP_REPLAY_MAX_AGE = 600
    otp = key.otp()
    verify_yubikey_otp(user, otp)
    LocalYubikey.objects.filter(pk=key.device.pk).update(
        last_verified_at=timezone.now() - timedelta(seconds=601)
    )

    with pytest.raises(OtpRejected, match="expired"):
        verify_yubikey_otp(user, otp)


def test_a_replay_is_accepted_just_within_the_replay_max_age(user, key, settings):
    settings.CORRAL_OTP_REPLAY_MAX_AGE = 600
    otp = key.otp()
    verify_yubikey_otp(user, otp)
    earlier = timezone.now() - timedelta(seconds=590)
    LocalYubikey.objects.filter(pk=key.device.pk).update(last_verified_at=earlier)

    assert verify_yubikey_otp(user, otp) == earlier


def test_an_otp_older_than_the_newest_verified_one_is_refused(user, key):
    older, newer = key.otp(), key.otp()
    verify_yubikey_otp(user, newer)

    with pytest.raises(OtpRejected):
        verify_yubikey_otp(user, older)


def test_an_earlier_verified_otp_is_no_longer_replayable(user, key):
    first, second = key.otp(), key.otp()
    verify_yubikey_otp(user, first)
    verify_yubikey_otp(user, second)

    with pytest.raises(OtpRejected):
        verify_yubikey_otp(user, first)


def test_an_otp_from_an_earlier_session_is_refused(user, key):
    old_session = key.otp()
    key.button.session += 1
    key.button.counter = 0
    verify_yubikey_otp(user, key.otp())

    with pytest.raises(OtpRejected):
        verify_yubikey_otp(user, old_session)


def test_a_fresh_otp_works_after_the_replay_window_closed(user, key, settings):
    settings.CORRAL_OTP_REPLAY_MAX_AGE = 60
    verify_yubikey_otp(user, key.otp())
    an_hour_ago = timezone.now() - timedelta(hours=1)
    LocalYubikey.objects.filter(pk=key.device.pk).update(last_verified_at=an_hour_ago)

    verified_at = verify_yubikey_otp(user, key.otp())

    assert verified_at > an_hour_ago
    assert LocalYubikey.objects.get(pk=key.device.pk).last_verified_at == verified_at


def test_an_unconfirmed_key_is_not_used(user, key):
    LocalYubikey.objects.filter(pk=key.device.pk).update(confirmed=False)

    with pytest.raises(OtpRejected):
        verify_yubikey_otp(user, key.otp())
