"""The BigV auth endpoints: `POST /session` answers the token as plain text.

BigV clients send string values in a flat JSON object and read the raw body
as the token, so no JSON and no trailing newline on success. On failure the
body holds the phrases clients look for (`Bad login credentials`,
`Missing 2FA`, `Badly-formed parameters`).
"""

import json

from django.conf import settings
from django.http import HttpResponse, JsonResponse
from django.utils import timezone
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_http_methods

from accounts import actions, signin
from accounts.models import SessionToken, User, hash_secret
from panel.api import is_id
from panel.context import AuthContext, client_address
from privileges.policy import CLUSTER_ADMIN, Policy

DEFAULT_VALIDITY = 1800


def _text(body: str, status: int) -> HttpResponse:
    return HttpResponse(body, status=status, content_type="text/plain; charset=utf-8")


def _params(request) -> dict | None:
    if request.content_type == "application/json":
        try:
            data = json.loads(request.body or b"{}")
        except (ValueError, UnicodeDecodeError, RecursionError):
            # RecursionError: nested too deeply for the decoder.
            return None
        return data if isinstance(data, dict) else None
    return request.POST.dict()


def _string(data: dict, key: str) -> str | None:
    """The value of `key`, "" when absent, None when it is not a string: BigV
    clients send every value, even `validity`, as a string."""
    value = data.get(key, "")
    if value is None:
        return ""
    return value if isinstance(value, str) else None


def _validity(raw: str) -> int | None:
    if raw == "":
        return DEFAULT_VALIDITY
    if not is_id(raw) or int(raw) < 1:
        return None
    return min(int(raw), settings.CORRAL_SESSION_VALIDITY_MAX)


@csrf_exempt
@require_http_methods(["POST"])
def create_session(request):
    data = _params(request)
    if data is None:
        return _text("Badly-formed parameters: the body must be a JSON object.", 400)
    fields = {
        k: _string(data, k)
        for k in ("username", "password", "validity", "yubikey", "2fa")
    }
    bad = sorted(k for k, v in fields.items() if v is None)
    if bad:
        return _text(f"Badly-formed parameters: {', '.join(bad)} must be strings.", 400)
    if not fields["username"] or not fields["password"]:
        return _text(
            "Badly-formed parameters: username and password are required.", 400
        )
    validity = _validity(fields["validity"])
    if validity is None:
        return _text(
            "Badly-formed parameters: validity must be a whole number of seconds.", 400
        )
    try:
        result = signin.sign_in(
            request,
            fields["username"],
            fields["password"],
            otp=fields["yubikey"],
            second_factor=fields["2fa"],
            method="session",
        )
    except signin.SignInRefused as refused:
        return _text(str(refused), 403)
    token = actions.create_session(
        result.user,
        validity=validity,
        factors=result.factors,
        yubikey_verified_at=result.yubikey_verified_at,
        address=client_address(request),
    )
    return _text(token, 200)


def _live_session(token: str) -> SessionToken | None:
    session = (
        SessionToken.objects.select_related("user")
        .filter(token_hash=hash_secret(token))
        .first()
    )
    if session is None or session.is_expired() or not session.user.is_active:
        return None
    return session


@csrf_exempt
@require_http_methods(["GET", "POST", "DELETE"])
def session_detail(request, token):
    session = _live_session(token)
    if session is None:
        return JsonResponse({"detail": "No such session."}, status=404)
    if request.method == "GET":
        return JsonResponse(
            {
                "username": session.user.username,
                "factors": session.factors,
                "group_memberships": _memberships(session.user),
            }
        )
    if request.method == "DELETE":
        session.delete()
        return HttpResponse(status=204)
    return _impersonate(request, session)


def _memberships(user: User) -> list[str]:
    return ["staff"] if user.is_staff or user.is_superuser else []


def _impersonate(request, session: SessionToken):
    """A cluster admin's session becomes one for another user."""
    admin = Policy(_session_context(request, session))
    if admin.cluster_level < CLUSTER_ADMIN:
        return _text("Only cluster administrators may impersonate.", 403)
    data = _params(request) or {}
    username = _string(data, "username")
    target = User.objects.filter(username=username or "", is_active=True).first()
    if target is None:
        return _text("Badly-formed parameters: no such username.", 400)
    # Impersonating someone must never raise the admin's own level.
    if Policy(_held_context(request, target)).held_scope.cluster > admin.cluster_level:
        return _text("You may not impersonate a user above your own level.", 403)
    remaining = int((session.expires_at - timezone.now()).total_seconds())
    token = actions.impersonate(
        session.user,
        target,
        validity=max(remaining, 1),
        address=client_address(request),
    )
    return _text(token, 200)


def _session_context(request, session: SessionToken) -> AuthContext:
    return AuthContext.for_request(
        request,
        session.user,
        "session",
        password_verified=session.password_verified,
        yubikey_verified_at=session.yubikey_verified_at,
        factors=list(session.factors),
    )


def _held_context(request, user: User) -> AuthContext:
    return AuthContext.for_request(request, user, "session", password_verified=True)
