"""The panel's browser pages: sign-in, sign-out and the landing page.

Sign-in takes two steps when the user has or needs a second factor: the
password, then a one-time code. Both steps go through accounts.signin, so the
lockout and the audit records are the same as for the API.
"""

from __future__ import annotations

from datetime import timedelta

from django.contrib.auth import login, logout
from django.shortcuts import redirect, render
from django.utils import timezone
from django.utils.dateparse import parse_datetime
from django.utils.http import url_has_allowed_host_and_scheme
from django.views.decorators.http import require_http_methods, require_POST

from accounts import signin
from accounts.models import User
from accounts.otp import has_second_factor, second_factor_required
from accounts.selfservice import SESSION_ADDRESS, SESSION_SIGNED_IN_AT
from panel import audit
from panel.context import client_address
from panel.models import AuditEvent

# Between the two steps the session remembers whose password was verified.
PENDING_USER = "corral_pending_user"
PENDING_AT = "corral_pending_at"
PENDING_NEXT = "corral_pending_next"
PENDING_FOR = timedelta(minutes=5)

BACKEND = "django.contrib.auth.backends.ModelBackend"


def _page(request, step: str, error: str = "", status: int = 200, **context):
    context = {"step": step, "error": error, **context}
    return render(request, "panel/login.html", context, status=status)


def _refused(request, step: str, refused: signin.SignInRefused, **context):
    status = 403 if refused.code in signin.FORBIDDING else 200
    return _page(request, step, str(refused), status=status, **context)


def _next_url(request, candidate: str) -> str:
    if candidate and url_has_allowed_host_and_scheme(
        candidate, allowed_hosts={request.get_host()}, require_https=request.is_secure()
    ):
        return candidate
    return "/panel/"


@require_http_methods(["GET", "POST"])
def login_password(request):
    if request.user.is_authenticated:
        return redirect("/panel/")
    next_url = request.POST.get("next") or request.GET.get("next", "")
    if request.method == "GET":
        _forget_pending(request)
        return _page(request, "password", next=next_url)

    username = request.POST.get("username", "").strip()
    password = request.POST.get("password", "")
    if not username or not password:
        return _page(
            request, "password", "Enter your username and password.", next=next_url
        )
    try:
        user, _ = signin.verify_password(request, username, password, method="browser")
    except signin.SignInRefused as refused:
        return _refused(request, "password", refused, username=username, next=next_url)

    if has_second_factor(user) or second_factor_required(user):
        if not has_second_factor(user):
            return _page(
                request,
                "password",
                "Your sign-in needs a second factor, but none is enrolled. "
                "Ask your administrator to enrol one.",
                status=403,
            )
        request.session[PENDING_USER] = user.pk
        request.session[PENDING_AT] = timezone.now().isoformat()
        request.session[PENDING_NEXT] = next_url
        return redirect("/panel/login/code")
    return _complete(request, signin.SignInResult(user=user), next_url)


@require_http_methods(["GET", "POST"])
def login_code(request):
    user = _pending_user(request)
    if user is None:
        return redirect("/panel/login")
    if request.method == "GET":
        return _page(request, "code")

    code = request.POST.get("code", "").strip()
    if not code:
        return _page(request, "code", "Enter the code from your device.")
    try:
        result = signin.verify_factors(
            request, user, second_factor=code, method="browser"
        )
    except signin.SignInRefused as refused:
        if refused.code in signin.FORBIDDING:
            _forget_pending(request)
            return _refused(request, "password", refused)
        return _refused(request, "code", refused)
    return _complete(request, result, request.session.get(PENDING_NEXT, ""))


def _complete(request, result: signin.SignInResult, next_url: str):
    # login() sends user_logged_in, which resets the failure counters.
    signin.finish(request, result, method="browser", announce=False)
    _forget_pending(request)
    login(request, result.user, backend=BACKEND)
    request.session[signin.SESSION_FACTORS] = result.factors
    # Shown on the profile page, so the user can tell their sessions apart.
    request.session[SESSION_SIGNED_IN_AT] = timezone.now().isoformat()
    request.session[SESSION_ADDRESS] = client_address(request) or ""
    if result.yubikey_verified_at is not None:
        request.session[signin.SESSION_YUBIKEY_AT] = (
            result.yubikey_verified_at.isoformat()
        )
    return redirect(_next_url(request, next_url))


def _pending_user(request) -> User | None:
    user_id = request.session.get(PENDING_USER)
    started = parse_datetime(request.session.get(PENDING_AT) or "")
    if user_id is None or started is None:
        return None
    if timezone.now() - started > PENDING_FOR:
        _forget_pending(request)
        return None
    return User.objects.filter(pk=user_id, is_active=True, approved=True).first()


def _forget_pending(request) -> None:
    for key in (PENDING_USER, PENDING_AT, PENDING_NEXT):
        request.session.pop(key, None)


@require_POST
def logout_view(request):
    if request.user.is_authenticated:
        audit.record(
            AuditEvent.Kind.SIGN_OUT,
            actor=request.user,
            address=client_address(request),
            via="browser",
        )
    logout(request)
    return redirect("/panel/login")
