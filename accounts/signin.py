"""Signing in, shared by HTTP Basic, `POST /session` and the browser.

Order matters: the lockout check comes first, so a locked-out client is
refused even when the verified-credential cache would have answered; then the
password (from the cache when these exact credentials were verified lately);
then the second factor.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from axes.handlers.proxy import AxesProxyHandler
from django.conf import settings
from django.contrib.auth import authenticate
from django.contrib.auth.signals import user_logged_in
from django.core.cache import cache
from django.utils import timezone
from django.utils.dateparse import parse_datetime

from accounts.models import User
from accounts.otp import (
    OtpRejected,
    has_yubikey,
    second_factor_required,
    verify_second_factor,
    verify_yubikey_otp,
)
from panel import audit
from panel.context import client_address
from panel.models import AuditEvent
from privileges.models import Privilege, privileges_of

logger = logging.getLogger(__name__)

SESSION_YUBIKEY_AT = "corral_yubikey_at"
SESSION_FACTORS = "corral_factors"

BAD_CREDENTIALS = "Bad login credentials"
MISSING_2FA = "Missing 2FA"


class SignInRefused(Exception):
    def __init__(self, message: str, code: str):
        super().__init__(message)
        self.code = code


@dataclass
class SignInResult:
    user: User
    factors: list[str] = field(default_factory=lambda: ["password"])
    yubikey_verified_at: datetime | None = None
    # Every privilege of the user, loaded once for the second-factor check and
    # handed on to the request's authorization policy.
    privileges: list[Privilege] = field(default_factory=list)


def sign_in(
    request,
    username: str,
    password: str,
    *,
    otp: str = "",
    second_factor: str = "",
    method: str,
    record_success: bool = True,
) -> SignInResult:
    """Check credentials and factors; raise SignInRefused with a reason."""
    address = client_address(request)
    credentials = {"username": username}
    if not AxesProxyHandler.is_allowed(request, credentials):
        audit.record(
            AuditEvent.Kind.LOCKED_OUT, username=username, address=address, via=method
        )
        raise SignInRefused(locked_out_message(), "locked_out")

    user, fresh = _check_password(request, username, password)
    if user is None:
        audit.record(
            AuditEvent.Kind.SIGN_IN_FAILED,
            username=username,
            address=address,
            via=method,
        )
        if not AxesProxyHandler.is_allowed(request, credentials):
            audit.record(
                AuditEvent.Kind.LOCKED_OUT,
                username=username,
                address=address,
                via=method,
            )
            raise SignInRefused(locked_out_message(), "locked_out")
        raise SignInRefused(f"{BAD_CREDENTIALS}.", "bad_credentials")
    if not user.approved:
        raise SignInRefused(
            "This account is waiting for a cluster administrator's approval.",
            "not_approved",
        )

    result = SignInResult(user=user, privileges=privileges_of(user))
    try:
        _second_factors(result, otp, second_factor)
    except OtpRejected as exc:
        audit.record(
            AuditEvent.Kind.OTP_REJECTED, actor=user, address=address, via=method
        )
        raise SignInRefused(f"Second factor rejected: {exc}.", "otp_rejected") from None
    if "2fa" not in result.factors and second_factor_required(user, result.privileges):
        raise SignInRefused(
            f"{MISSING_2FA}: this sign-in needs a second factor.", "missing_2fa"
        )

    if fresh:
        # Axes resets the failure count on this signal; it also stamps
        # last_login. Repeated Basic requests answered from the cache skip it.
        user_logged_in.send(sender=User, request=request, user=user)
    if fresh or record_success:
        audit.record(AuditEvent.Kind.SIGN_IN, actor=user, address=address, via=method)
    return result


def _second_factors(result: SignInResult, otp: str, second_factor: str) -> None:
    user = result.user
    if otp and has_yubikey(user):
        result.yubikey_verified_at = verify_yubikey_otp(user, otp)
        result.factors += ["yubikey", "2fa"]
    if second_factor:
        kind, verified_at = verify_second_factor(user, second_factor)
        if verified_at is not None:
            result.yubikey_verified_at = verified_at
        for name in ("2fa", kind):
            if name not in result.factors:
                result.factors.append(name)


def _check_password(request, username: str, password: str) -> tuple[User | None, bool]:
    """The user, and whether the password was hashed for this request."""
    cached = _cached_user(username, password)
    if cached is not None:
        return cached, False
    user = authenticate(request, username=username, password=password)
    if user is None:
        return None, False
    _remember(username, password, user)
    return user, True


def _cache_key(username: str, password: str) -> str:
    digest = hmac.new(
        settings.SECRET_KEY.encode(),
        f"{username}\0{password}".encode(),
        hashlib.sha256,
    ).hexdigest()
    return f"corral:verified-credentials:{digest}"


def _remember(username: str, password: str, user: User) -> None:
    seconds = settings.CORRAL_CREDENTIAL_CACHE_SECONDS
    if seconds:
        cache.set(_cache_key(username, password), (user.pk, user.password), seconds)


def _cached_user(username: str, password: str) -> User | None:
    if not settings.CORRAL_CREDENTIAL_CACHE_SECONDS:
        return None
    entry = cache.get(_cache_key(username, password))
    if entry is None:
        return None
    user_id, password_hash = entry
    user = User.objects.filter(pk=user_id, is_active=True).first()
    # A changed password changes the stored hash, which voids the entry.
    if user is None or not hmac.compare_digest(user.password, password_hash):
        return None
    return user


def locked_out_message() -> str:
    cool_off = timedelta(hours=settings.AXES_COOLOFF_TIME)
    retry_at = timezone.now() + cool_off
    return (
        "Too many failed sign-ins: sign-in is locked. "
        f"Try again after {retry_at:%Y-%m-%d %H:%M} UTC."
    )


def session_yubikey_time(session) -> datetime | None:
    value = session.get(SESSION_YUBIKEY_AT)
    return parse_datetime(value) if value else None
