"""Second factors: YubiKey OTPs (local or remote validation) and TOTP codes.

django-otp's YubiKey plugin checks each OTP and refuses every replay. Above
it, Corral keeps the newest verified OTP of each key replayable for a while
(privileges say how long they accept it), and refuses any OTP older than that
newest one. Verification holds a row lock on the device, so ten requests
carrying the same new OTP count it once and then see it as a replay.
"""

from __future__ import annotations

import base64
import binascii
import hmac
import logging
import re
from datetime import datetime, timedelta

from django.conf import settings
from django.db import transaction
from django.db.models import Q
from django.utils import timezone
from django_otp.plugins.otp_static.models import StaticDevice
from django_otp.plugins.otp_totp.models import TOTPDevice
from otp_yubikey.models import ValidationService

from accounts.models import LocalYubikey, RemoteYubikey, User, hash_secret

logger = logging.getLogger(__name__)

_MODHEX_OTP = re.compile(r"^[cbdefghijklnrtuv]{32,64}$")


class OtpRejected(Exception):
    """The OTP is malformed, unknown, stale or refused by the validator."""


def looks_like_yubikey_otp(value: str) -> bool:
    return bool(_MODHEX_OTP.match(value or ""))


def has_yubikey(user: User) -> bool:
    return (
        LocalYubikey.objects.filter(user=user, confirmed=True).exists()
        or RemoteYubikey.objects.filter(user=user, confirmed=True).exists()
    )


def verify_yubikey_otp(user: User, otp: str) -> datetime:
    """Verify `otp` for `user`; return when it was (first) verified.

    Raises OtpRejected for anything else. The time returned for a replayed
    OTP is that of its first verification, so privileges can judge its age.
    """
    otp = (otp or "").strip()
    if not looks_like_yubikey_otp(otp):
        raise OtpRejected("not a YubiKey OTP")
    public_id = otp[:-32]
    with transaction.atomic():
        device = _locked_device(user, public_id)
        if device is None:
            raise OtpRejected("no YubiKey with this public id is enrolled")
        replayed = _replayed_at(device, otp)
        if replayed is not None:
            return replayed
        if not device.verify_token(otp):
            logger.info("YubiKey OTP refused for user %s", user.pk)
            raise OtpRejected("the OTP was refused")
        now = timezone.now()
        device.last_otp_hash = hash_secret(otp)
        device.last_verified_at = now
        device.save(update_fields=["last_otp_hash", "last_verified_at"])
        return now


def _locked_device(user: User, public_id: str):
    local = (
        LocalYubikey.objects.select_for_update()
        .filter(user=user, public_identity=public_id, confirmed=True)
        .first()
    )
    if local is not None:
        return local
    return (
        RemoteYubikey.objects.select_for_update()
        .filter(user=user, public_id=public_id, confirmed=True)
        .first()
    )


def _replayed_at(device, otp: str) -> datetime | None:
    if not device.last_otp_hash or device.last_verified_at is None:
        return None
    if not hmac.compare_digest(device.last_otp_hash, hash_secret(otp)):
        return None
    age = timezone.now() - device.last_verified_at
    if age > timedelta(seconds=settings.CORRAL_OTP_REPLAY_MAX_AGE):
        raise OtpRejected("the OTP has expired")
    return device.last_verified_at


def verify_second_factor(user: User, token: str) -> tuple[str, datetime | None]:
    """Verify a `2fa` value: a YubiKey OTP, a TOTP code or a recovery code.

    Returns the factor's name and, for a YubiKey, when it was verified.
    """
    token = (token or "").strip()
    if looks_like_yubikey_otp(token):
        return "yubikey", verify_yubikey_otp(user, token)
    if _verify_locked(TOTPDevice, user, token):
        return "totp", None
    if _verify_locked(StaticDevice, user, token):
        return "recovery", None
    raise OtpRejected("the code was refused")


def _verify_locked(model, user: User, token: str) -> bool:
    """Whether one of the user's devices of `model` accepts `token`.

    The rows are locked so that one code cannot be spent twice at once. The
    transaction ends before anything is raised, so a failure still counts
    towards the device's throttling.
    """
    with transaction.atomic():
        devices = model.objects.select_for_update().filter(user=user, confirmed=True)
        return any(device.verify_token(token) for device in devices)


def has_second_factor(user: User) -> bool:
    return (
        has_yubikey(user)
        or TOTPDevice.objects.filter(user=user, confirmed=True).exists()
    )


def second_factor_required(user: User) -> bool:
    """Whether this user asked for a second factor at every sign-in.

    An account's demand for one is not a sign-in gate but a condition on its
    privileges (see privileges.policy), so nobody can lock a user out by
    granting them a privilege.
    """
    return user.require_second_factor


def second_factor_expected(user: User) -> bool:
    """Whether an interactive sign-in (`POST /session`, the browser) should
    ask for a second factor: the user asked for one, or an account they
    belong to demands one and they have a device to give it with.

    Asking lets the BigV client prompt (it answers `Missing 2FA` with the
    code) instead of signing in to privileges that would lend nothing. A
    user without a device is never held at the door: their privileges in
    such an account simply stay inactive. HTTP Basic is not asked.
    """
    if second_factor_required(user):
        return True
    from privileges.models import Privilege

    demanding = Privilege.objects.filter(
        Q(account__require_second_factor=True)
        | Q(group__account__require_second_factor=True)
        | Q(virtual_machine__group__account__require_second_factor=True),
        user=user,
        api_key__isnull=True,
    )
    return demanding.exists() and has_second_factor(user)


# Enrolment ------------------------------------------------------------------


class BadYubikey(ValueError):
    """An enrolment value is malformed; the message names it and `field` says
    which form field it belongs to (the pages show it there)."""

    def __init__(self, message: str, field: str = ""):
        super().__init__(message)
        self.field = field


_MODHEX_ID = re.compile(r"^[cbdefghijklnrtuv]{2,32}$")
_HEX = re.compile(r"^[0-9a-f]*$")


def _check_hex(name: str, value: str, length: int, field: str = "") -> str:
    value = value.strip().lower()
    if len(value) != length or not _HEX.match(value):
        raise BadYubikey(f"{name} must be {length} hexadecimal digits", field)
    return value


def _check_public_id(public_id: str) -> str:
    public_id = public_id.strip().lower()
    if not _MODHEX_ID.match(public_id) or len(public_id) % 2:
        raise BadYubikey("the public id must be 2 to 32 modhex characters", "public_id")
    return public_id


@transaction.atomic
def add_local_yubikey(
    user: User, *, public_id: str, aes_key: str, private_id: str, name: str = ""
) -> LocalYubikey:
    """Enrol a YubiKey validated here with its AES key and private id."""
    public_id = _check_public_id(public_id)
    if LocalYubikey.objects.filter(public_identity=public_id).exists():
        raise BadYubikey(
            f"a YubiKey with public id {public_id} is already enrolled", "public_id"
        )
    return LocalYubikey.objects.create(
        user=user,
        name=name or f"YubiKey {public_id}",
        public_identity=public_id,
        key=_check_hex("the AES key", aes_key, 32, "aes_key"),
        private_id=_check_hex("the private id", private_id, 12, "private_id"),
        confirmed=True,
    )


@transaction.atomic
def add_remote_yubikey(
    user: User,
    *,
    public_id: str,
    service: ValidationService | None = None,
    name: str = "",
) -> RemoteYubikey:
    """Enrol a YubiKey checked by a validation service, by default the one
    named by CORRAL_YUBIKEY_SERVICE."""
    public_id = _check_public_id(public_id)
    if service is None:
        service = configured_service()
    return RemoteYubikey.objects.create(
        user=user,
        name=name or f"YubiKey {public_id}",
        public_id=public_id,
        service=service,
        confirmed=True,
    )


def configured_service() -> ValidationService:
    name = settings.CORRAL_YUBIKEY_SERVICE
    service = ValidationService.objects.filter(name=name).order_by("id").first()
    if service is None:
        raise BadYubikey(
            f"no YubiKey validation service is named {name!r} "
            "(CORRAL_YUBIKEY_SERVICE); add it with add_yubikey_service"
        )
    return service


@transaction.atomic
def set_validation_service(
    name: str, *, url: str, api_id: int, api_key: str
) -> ValidationService:
    """Create or update the validation service called `name`."""
    try:
        raw_key = base64.b64decode(api_key, validate=True)
    except binascii.Error:
        raise BadYubikey(
            "the API key must be base64, as the service issues it"
        ) from None
    if not raw_key:
        raise BadYubikey("the API key must not be empty: responses must be signed")
    if not url.startswith(("https://", "http://")):
        raise BadYubikey("the URL must start with https:// or http://")
    service = ValidationService.objects.filter(name=name).order_by("id").first()
    service = service or ValidationService(name=name, param_sl="", param_timeout="")
    service.base_url = url
    service.api_id = api_id
    service.api_key = api_key
    service.api_version = "2.0"
    service.save()
    return service
