"""State changes a signed-in user makes to their own sign-in: SSH keys,
second-factor devices, recovery codes and sessions.

Each function runs in one transaction and writes its audit record. Enrolment
checks the device with one real code before anything is kept, so a mistyped
key or a wrong clock leaves no half-enrolled device behind.
"""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from datetime import datetime

from django.contrib.sessions.models import Session
from django.db import transaction
from django.utils import timezone
from django.utils.dateparse import parse_datetime
from django_otp.oath import TOTP
from django_otp.plugins.otp_static.models import StaticDevice, StaticToken
from django_otp.plugins.otp_totp.models import TOTPDevice

from accounts.keys import normalise
from accounts.models import LocalYubikey, RemoteYubikey, SessionToken, User
from accounts.otp import (
    BadYubikey,
    add_local_yubikey,
    add_remote_yubikey,
    configured_service,
    has_second_factor,
    looks_like_yubikey_otp,
    second_factor_required,
)
from panel import audit
from panel.models import AuditEvent

RECOVERY_CODES = 10
RECOVERY_DEVICE_NAME = "recovery codes"
# Browser sessions remember when and from where they were signed in.
SESSION_SIGNED_IN_AT = "corral_signed_in_at"
SESSION_ADDRESS = "corral_address"

# The devices a user can hold, by the name their URLs use.
DEVICE_MODELS = {
    "yubikey-local": LocalYubikey,
    "yubikey-remote": RemoteYubikey,
    "totp": TOTPDevice,
    "recovery": StaticDevice,
}


class Refused(Exception):
    """The request cannot be done as asked; the message says why."""


@transaction.atomic
def set_authorized_keys(user: User, text: str, *, address=None) -> None:
    """Store already-validated keys (accounts.keys.invalid_key_lines)."""
    user.authorized_keys = normalise(text)
    user.save(update_fields=["authorized_keys"])
    keys = len(user.authorized_keys.splitlines()) if user.authorized_keys else 0
    audit.record(
        AuditEvent.Kind.SSH_KEYS_CHANGED, actor=user, address=address, keys=keys
    )


def _enrolled(user: User, device, kind: str, address) -> None:
    audit.record(
        AuditEvent.Kind.DEVICE_ENROLLED,
        actor=user,
        address=address,
        device=kind,
        name=device.name,
    )


def enrol_remote_yubikey(user: User, otp: str, *, name: str = "", address=None):
    """Enrol the YubiKey that typed `otp`, checked by the configured service.

    The OTP's public id names the key; the service must accept the OTP before
    the key is kept.
    """
    otp = (otp or "").strip()
    if not looks_like_yubikey_otp(otp):
        raise BadYubikey("Touch your YubiKey to type a one-time password.", "otp")
    public_id = otp[:-32]
    service = configured_service()
    if RemoteYubikey.objects.filter(public_id=public_id, confirmed=True).exists():
        raise BadYubikey(f"The YubiKey {public_id} is already enrolled.", "otp")
    # Asked before the row exists: the service call must not hold a lock.
    if not RemoteYubikey(public_id=public_id, service=service).verify_token(otp):
        raise BadYubikey("The validation service did not accept this OTP.", "otp")
    with transaction.atomic():
        device = add_remote_yubikey(
            user, public_id=public_id, service=service, name=name
        )
        _enrolled(user, device, "yubikey-remote", address)
    return device


@transaction.atomic
def enrol_local_yubikey(
    user: User,
    *,
    public_id: str,
    aes_key: str,
    private_id: str,
    otp: str,
    name: str = "",
    address=None,
):
    """Enrol a self-programmed YubiKey once one of its OTPs decodes with the
    AES key and private id given; otherwise nothing is kept."""
    device = add_local_yubikey(
        user, public_id=public_id, aes_key=aes_key, private_id=private_id, name=name
    )
    otp = (otp or "").strip()
    if not looks_like_yubikey_otp(otp) or otp[:-32] != device.public_identity:
        transaction.set_rollback(True)
        raise BadYubikey("Touch this YubiKey to type one of its OTPs.", "otp")
    if not device.verify_token(otp):
        transaction.set_rollback(True)
        raise BadYubikey(
            "This OTP does not decode with the AES key and private id given.", "otp"
        )
    _enrolled(user, device, "yubikey-local", address)
    return device


def new_totp_key() -> str:
    """A TOTP secret as django-otp stores it (40 hex digits)."""
    return secrets.token_hex(20)


def totp_device_for(user: User, key: str, name: str = "") -> TOTPDevice:
    """An unsaved device, for its provisioning URL."""
    return TOTPDevice(user=user, key=key, name=name or "Authenticator app")


@transaction.atomic
def enrol_totp(
    user: User, key: str, code: str, *, name: str = "", address=None
) -> TOTPDevice:
    """Keep the TOTP device with secret `key` once `code` matches it.

    Checked here rather than by the device, which would save itself to count
    a failure; the code is marked spent so it cannot sign in afterwards.
    """
    device = totp_device_for(user, key, name)
    code = (code or "").strip()
    totp = TOTP(device.bin_key, device.step, device.t0, device.digits, device.drift)
    if not code.isdigit() or not totp.verify(int(code), device.tolerance):
        raise BadYubikey(
            "The code does not match; check the app's clock and try the next one.",
            "code",
        )
    device.last_t = totp.t()
    device.confirmed = True
    device.save()
    _enrolled(user, device, "totp", address)
    return device


@transaction.atomic
def make_recovery_codes(user: User, *, address=None) -> list[str]:
    """Replace the user's recovery codes with new ones; return them."""
    StaticDevice.objects.filter(user=user).delete()
    device = StaticDevice.objects.create(
        user=user, name=RECOVERY_DEVICE_NAME, confirmed=True
    )
    codes = [StaticToken.random_token() for _ in range(RECOVERY_CODES)]
    StaticToken.objects.bulk_create(
        StaticToken(device=device, token=code) for code in codes
    )
    audit.record(
        AuditEvent.Kind.RECOVERY_CODES_MADE,
        actor=user,
        address=address,
        codes=len(codes),
    )
    return codes


def devices_of(user: User) -> list[tuple[str, object]]:
    """(kind, device) for every confirmed device of `user`."""
    return [
        (kind, device)
        for kind, model in DEVICE_MODELS.items()
        for device in model.objects.filter(user=user, confirmed=True).order_by("id")
    ]


@transaction.atomic
def remove_device(user: User, device, kind: str, *, address=None) -> None:
    """Remove one of the user's devices, unless it is the last second factor
    of a user who must present one."""
    device.delete()
    if second_factor_required(user) and not has_second_factor(user):
        transaction.set_rollback(True)
        raise Refused(
            "Your sign-in needs a second factor; enrol another device before "
            "removing your last one."
        )
    audit.record(
        AuditEvent.Kind.DEVICE_REMOVED,
        actor=user,
        address=address,
        device=kind,
        name=device.name,
    )


# Sessions --------------------------------------------------------------------


@dataclass
class BrowserSession:
    """A browser session of the user, named by a digest of its key: the key
    itself is the cookie's secret and never goes into a page."""

    id: str
    expires_at: datetime
    signed_in_at: datetime | None
    address: str
    current: bool


def browser_session_id(session_key: str) -> str:
    return hashlib.sha256(session_key.encode()).hexdigest()[:32]


def _user_sessions(user: User):
    sessions = Session.objects.filter(expire_date__gt=timezone.now())
    for session in sessions.order_by("expire_date").iterator():
        data = session.get_decoded()
        if data.get("_auth_user_id") == str(user.pk):
            yield session, data


def browser_sessions(user: User, current_key: str | None) -> list[BrowserSession]:
    return [
        BrowserSession(
            id=browser_session_id(session.session_key),
            expires_at=session.expire_date,
            signed_in_at=parse_datetime(data.get(SESSION_SIGNED_IN_AT) or ""),
            address=data.get(SESSION_ADDRESS, ""),
            current=session.session_key == current_key,
        )
        for session, data in _user_sessions(user)
    ]


@transaction.atomic
def revoke_browser_session(user: User, session_id: str, *, address=None) -> bool:
    """End the user's browser session named `session_id`; False if none is."""
    for session, _ in _user_sessions(user):
        if secrets.compare_digest(browser_session_id(session.session_key), session_id):
            session.delete()
            audit.record(
                AuditEvent.Kind.SESSION_REVOKED,
                actor=user,
                address=address,
                session="browser",
            )
            return True
    return False


def api_sessions(user: User):
    return SessionToken.objects.filter(user=user, expires_at__gt=timezone.now())


@transaction.atomic
def revoke_session_token(user: User, token: SessionToken, *, address=None) -> None:
    audit.record(
        AuditEvent.Kind.SESSION_REVOKED,
        actor=user,
        address=address,
        session="api",
        session_id=token.pk,
    )
    token.delete()
