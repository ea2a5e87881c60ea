"""API authentication: every method ends in one AuthContext.

- HTTP Basic, with an optional `X-Yubikey-Otp` header (the original scheme).
- `Authorization: Bearer TOKEN` for sessions made by `POST /session`.
- `Authorization: Bearer apikey.KEY` for API keys.
- The browser's Django session, for the browsable API.
"""

from __future__ import annotations

import base64
import binascii
import logging

from rest_framework import authentication, exceptions

from accounts import signin
from accounts.models import ApiKey, SessionToken, hash_secret
from accounts.otp import OtpRejected, has_yubikey, verify_yubikey_otp
from panel.context import AuthContext

logger = logging.getLogger(__name__)

OTP_HEADER = "HTTP_X_YUBIKEY_OTP"


class BasicOtpAuthentication(authentication.BaseAuthentication):
    www_authenticate_realm = "Corral"

    def authenticate(self, request):
        header = request.META.get("HTTP_AUTHORIZATION", "")
        scheme, _, encoded = header.partition(" ")
        if scheme.lower() != "basic" or not encoded:
            return None
        try:
            decoded = base64.b64decode(encoded.strip(), validate=True).decode("utf-8")
        except (binascii.Error, UnicodeDecodeError):
            raise exceptions.AuthenticationFailed(
                "Malformed Basic credentials."
            ) from None
        username, sep, password = decoded.partition(":")
        if not sep:
            raise exceptions.AuthenticationFailed("Malformed Basic credentials.")
        otp = request.META.get(OTP_HEADER, "").strip()
        try:
            result = signin.sign_in(
                request._request,
                username,
                password,
                otp=otp,
                method="basic",
                record_success=False,
            )
        except signin.SignInRefused as refused:
            raise refusal(refused) from None
        ctx = AuthContext.for_request(
            request,
            result.user,
            "basic",
            password_verified=True,
            yubikey_verified_at=result.yubikey_verified_at,
            factors=result.factors,
        )
        return result.user, ctx

    def authenticate_header(self, request):
        return f'Basic realm="{self.www_authenticate_realm}"'


def refusal(refused: signin.SignInRefused) -> exceptions.APIException:
    if refused.code in signin.FORBIDDING:
        return exceptions.PermissionDenied(str(refused))
    return exceptions.AuthenticationFailed(str(refused))


class BearerAuthentication(authentication.BaseAuthentication):
    def authenticate(self, request):
        header = request.META.get("HTTP_AUTHORIZATION", "")
        scheme, _, token = header.partition(" ")
        token = token.strip()
        if scheme.lower() != "bearer" or not token:
            return None
        if token.startswith("apikey."):
            return self._api_key(request, token.removeprefix("apikey."))
        return self._session(request, token)

    def _api_key(self, request, secret):
        key = (
            ApiKey.objects.select_related("user")
            .filter(key_hash=hash_secret(secret))
            .first()
        )
        if key is None or key.is_expired() or not _may_sign_in(key.user):
            raise exceptions.AuthenticationFailed("Invalid or expired API key.")
        ctx = AuthContext.for_request(
            request, key.user, "apikey", api_key=key, factors=["apikey"]
        )
        return key.user, ctx

    def _session(self, request, token):
        session = (
            SessionToken.objects.select_related("user")
            .filter(token_hash=hash_secret(token))
            .first()
        )
        if session is None or session.is_expired() or not _may_sign_in(session.user):
            raise exceptions.AuthenticationFailed(
                "Invalid or expired session token. API keys are sent as "
                "`Bearer apikey.KEY`."
            )
        verified_at = session.yubikey_verified_at
        otp = request.META.get(OTP_HEADER, "").strip()
        if otp and has_yubikey(session.user):
            # Step-up: an OTP on a token request counts for this request. As
            # with Basic, the header is ignored for a user with no YubiKey.
            try:
                verified_at = verify_yubikey_otp(session.user, otp)
            except OtpRejected as exc:
                raise exceptions.AuthenticationFailed(
                    f"YubiKey OTP rejected: {exc}."
                ) from None
        ctx = AuthContext.for_request(
            request,
            session.user,
            "session",
            password_verified=session.password_verified,
            yubikey_verified_at=verified_at,
            factors=list(session.factors),
        )
        return session.user, ctx

    def authenticate_header(self, request):
        return 'Bearer realm="Corral"'


def _may_sign_in(user) -> bool:
    return user.is_active and user.approved


class BrowserSessionAuthentication(authentication.SessionAuthentication):
    """The panel's signed-in browser session, with CSRF checks on writes."""

    def authenticate(self, request):
        result = super().authenticate(request)
        if result is None:
            return None
        user = result[0]
        return user, browser_context(request, user)


def browser_context(request, user) -> AuthContext:
    """The context of a signed-in browser, for the API and the panel's pages."""
    session = getattr(request, "_request", request).session
    return AuthContext.for_request(
        request,
        user,
        "browser",
        password_verified=True,
        yubikey_verified_at=signin.session_yubikey_time(session),
        factors=list(session.get(signin.SESSION_FACTORS, ["password"])),
    )
