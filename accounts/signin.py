"""Signing in, shared by HTTP Basic, `POST /session` and the browser.

Order matters: the lockout check comes first, so a locked-out client is
refused even when the verified-credential cache would have answered; then the
password (from the cache when these exact credentials were verified lately);
then the second factor. The browser runs the same steps in two requests
(`verify_password`, then `verify_factors` and `finish`); the API runs them in
one (`sign_in`).
"""

from __future__ import annotations

import hashlib
import hmac
import logging
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from axes.handlers.proxy import AxesProxyHandler
from axes.helpers import get_cool_off
from axes.models import AccessAttempt
from django.conf import settings
from django.contrib.auth import authenticate
from django.contrib.auth.signals import user_logged_in, user_login_failed
from django.core.cache import cache
from django.db.models import Max
from django.utils import timezone
from django.utils.dateparse import parse_datetime

from accounts.models import User, hash_secret
from accounts.otp import (
    OtpRejected,
    has_yubikey,
    second_factor_expected,
    second_factor_required,
    verify_second_factor,
    verify_yubikey_otp,
)
from panel import audit
from panel.context import client_address
from panel.models import AuditEvent

logger = logging.getLogger(__name__)

SESSION_YUBIKEY_AT = "corral_yubikey_at"
SESSION_FACTORS = "corral_factors"

BAD_CREDENTIALS = "Bad login credentials"
MISSING_2FA = "Missing 2FA"


# Refusals that are not about the credentials: asking again with the same or
# other credentials cannot help, so they answer 403, not 401 (which makes
# clients prompt for a password) nor a plain form error.
FORBIDDING = frozenset({"locked_out", "not_approved"})


class SignInRefused(Exception):
    def __init__(self, message: str, code: str):
        super().__init__(message)
        self.code = code


@dataclass
class SignInResult:
    user: User
    factors: list[str] = field(default_factory=lambda: ["password"])
    yubikey_verified_at: datetime | None = None


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
    """Check credentials and factors in one go; raise SignInRefused with a reason.

    `record_success=False` audits a success only when the password was hashed,
    so Basic requests answered from the credential cache add no records.
    """
    user, fresh = verify_password(request, username, password, method=method)
    result = _verify_factors(
        request, user, otp=otp, second_factor=second_factor, method=method
    )
    expected = (
        second_factor_required(user)
        if method == "basic"
        else second_factor_expected(user)
    )
    if "2fa" not in result.factors and expected:
        raise SignInRefused(
            f"{MISSING_2FA}: this sign-in needs a second factor.", "missing_2fa"
        )
    finish(
        request, result, method=method, record=fresh or record_success, announce=fresh
    )
    return result


def verify_password(
    request, username: str, password: str, *, method: str
) -> tuple[User, bool]:
    """The user whose password this is, and whether it was hashed just now."""
    if "\x00" in username:
        # No username holds a NUL, and the database could not even store it
        # in a failure record: plainly bad credentials.
        raise SignInRefused(f"{BAD_CREDENTIALS}.", "bad_credentials")
    refuse_if_locked(request, username, method=method)
    user, fresh = _check_password(request, username, password)
    if user is None:
        _failed(request, username, method=method, reason="bad_credentials")
        raise SignInRefused(f"{BAD_CREDENTIALS}.", "bad_credentials")
    if not user.approved:
        raise SignInRefused(
            "This account is waiting for a cluster administrator's approval.",
            "not_approved",
        )
    return user, fresh


def verify_factors(
    request, user: User, *, otp: str = "", second_factor: str = "", method: str
) -> SignInResult:
    """Check the second factors given, in a later request than the password
    (the browser's second step): the lockout applies again."""
    refuse_if_locked(request, user.username, method=method)
    return _verify_factors(
        request, user, otp=otp, second_factor=second_factor, method=method
    )


def _verify_factors(
    request, user: User, *, otp: str, second_factor: str, method: str
) -> SignInResult:
    # A rejected code counts as a failure, so nobody can guess codes for a
    # password they know without being locked out.
    result = SignInResult(user=user)
    try:
        _second_factors(result, otp, second_factor, strict=method != "basic")
    except OtpRejected as exc:
        _failed(
            request, user.username, method=method, reason="otp_rejected", actor=user
        )
        raise SignInRefused(f"Second factor rejected: {exc}.", "otp_rejected") from None
    return result


def finish(
    request,
    result: SignInResult,
    *,
    method: str,
    record: bool = True,
    announce: bool = True,
) -> None:
    """Count a successful sign-in: reset the failure counters and audit it.

    `announce=False` when Django's login() will send user_logged_in itself.
    """
    if announce:
        # Axes resets the failure count on this signal; it also stamps
        # last_login. Basic requests answered from the cache skip it.
        user_logged_in.send(sender=User, request=request, user=result.user)
    if record:
        audit.record(
            AuditEvent.Kind.SIGN_IN,
            actor=result.user,
            address=client_address(request),
            via=method,
        )


def refuse_if_locked(request, username: str, *, method: str) -> None:
    if AxesProxyHandler.is_allowed(request, {"username": username}):
        return
    audit.record(
        AuditEvent.Kind.SIGN_IN_FAILED,
        username=username,
        address=client_address(request),
        via=method,
        reason="locked_out",
    )
    raise SignInRefused(locked_out_message(request), "locked_out")


def _failed(
    request, username: str, *, method: str, reason: str, actor: User | None = None
) -> None:
    """Audit a failure; when it is the one that locks the client out, audit the
    lockout too and say when to retry instead of repeating the failure."""
    address = client_address(request)
    kind = AuditEvent.Kind.SIGN_IN_FAILED
    if reason == "otp_rejected":
        kind = AuditEvent.Kind.OTP_REJECTED
        # Password failures reach axes through authenticate(); codes do not.
        user_login_failed.send(
            sender=__name__, credentials={"username": username}, request=request
        )
    audit.record(
        kind, actor=actor, username=username, address=address, via=method, reason=reason
    )
    if not AxesProxyHandler.is_allowed(request, {"username": username}):
        audit.record(
            AuditEvent.Kind.LOCKED_OUT, username=username, address=address, via=method
        )
        raise SignInRefused(locked_out_message(request), "locked_out")


def _second_factors(
    result: SignInResult, otp: str, second_factor: str, *, strict: bool
) -> None:
    """Verify what was presented. An `X-Yubikey-Otp` header from a user with
    no YubiKey is ignored, as BigV did (strict=False); an explicit `yubikey`
    field is always checked, so a session never lacks a factor it was asked
    to carry."""
    user = result.user
    if otp and (strict or has_yubikey(user)):
        result.yubikey_verified_at = verify_yubikey_otp(user, otp)
        result.factors += ["yubikey", "2fa"]
    if second_factor:
        kind, verified_at = verify_second_factor(user, second_factor)
        if verified_at is not None:
            result.yubikey_verified_at = verified_at
        for name in ("2fa", kind):
            if name not in result.factors:
                result.factors.append(name)


# The verified-credential cache ----------------------------------------------


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
    # Keyed with SECRET_KEY: the cache never holds anything that could be
    # tested offline against guessed passwords without the key.
    digest = hmac.new(
        settings.SECRET_KEY.encode(),
        f"{username}\0{password}".encode(),
        hashlib.sha256,
    ).hexdigest()
    return f"corral:verified-credentials:{digest}"


def _remember(username: str, password: str, user: User) -> None:
    seconds = settings.CORRAL_CREDENTIAL_CACHE_SECONDS
    if seconds:
        entry = (user.pk, hash_secret(user.password))
        cache.set(_cache_key(username, password), entry, seconds)


def _cached_user(username: str, password: str) -> User | None:
    if not settings.CORRAL_CREDENTIAL_CACHE_SECONDS:
        return None
    entry = cache.get(_cache_key(username, password))
    if entry is None:
        return None
    user_id, password_digest = entry
    user = User.objects.filter(pk=user_id, is_active=True).first()
    # A changed password changes the stored hash, which voids the entry.
    if user is None or not hmac.compare_digest(
        hash_secret(user.password), password_digest
    ):
        return None
    return user


# Lockout --------------------------------------------------------------------


def retry_after(request) -> datetime:
    """When the lockout ends at the latest: the cool-off after the newest
    failure from the client's address."""
    cool_off = get_cool_off(request) or timedelta(0)
    address = client_address(request)
    # Every lockout parameter includes the address, so its newest failure
    # bounds them all.
    newest = AccessAttempt.objects.filter(ip_address=address).aggregate(
        newest=Max("attempt_time")
    )["newest"]
    return (newest or timezone.now()) + cool_off


def locked_out_message(request) -> str:
    retry_at = retry_after(request)
    return (
        "Too many failed sign-ins from your address: sign-in is locked. "
        f"Try again after {retry_at:%Y-%m-%d %H:%M:%S} UTC."
    )


def session_yubikey_time(session) -> datetime | None:
    value = session.get(SESSION_YUBIKEY_AT)
    return parse_datetime(value) if value else None
