"""Step-up in the browser: a fresh YubiKey OTP for a privilege that asks for one.

When an action needs a privilege whose conditions fail for this session, the
page says which and why, and for the YubiKey condition asks for an OTP in
place; the OTP's verification time goes into the session, so the policy sees
the privilege as active and the action is done again.
"""

from __future__ import annotations

from django.contrib.auth.models import AnonymousUser

from accounts import signin
from accounts.otp import (
    OtpRejected,
    has_second_factor,
    has_yubikey,
    verify_yubikey_otp,
)
from panel import audit
from panel.context import AuthContext, client_address
from panel.models import AuditEvent

OTP_FIELD = "otp"


def verify_step_up(request, otp: str) -> str | None:
    """Verify `otp` for the signed-in user and remember when; return an error
    message for the OTP field, or None when it was accepted."""
    user = request.user
    if isinstance(user, AnonymousUser):
        return "Sign in first."
    try:
        verified_at = verify_yubikey_otp(user, otp)
    except OtpRejected as exc:
        audit.record(
            AuditEvent.Kind.OTP_REJECTED,
            actor=user,
            address=client_address(request),
            via="panel",
        )
        return f"The OTP was not accepted: {exc}."
    request.session[signin.SESSION_YUBIKEY_AT] = verified_at.isoformat()
    factors = list(request.session.get(signin.SESSION_FACTORS, ["password"]))
    if "yubikey" not in factors:
        request.session[signin.SESSION_FACTORS] = [*factors, "yubikey"]
    return None


def retry_target(request) -> tuple[str, list[tuple[str, str]]]:
    """Where the OTP prompt posts, and what it carries: a refused form posts
    back to itself with its fields, so the action is done once the OTP is
    verified; a refused page view goes through the step-up page and back."""
    from django.urls import reverse

    if request.method != "POST":
        return reverse("portal-step-up"), [("next", request.get_full_path())]
    carried = [
        (key, value)
        for key, values in request.POST.lists()
        if key not in {"csrfmiddlewaretoken", OTP_FIELD}
        for value in values
    ]
    return request.path, carried


def explain(unmet, ctx: AuthContext, user) -> list[str]:
    """Sentences saying what each unmet condition needs, in browser terms."""
    lines = []
    if "yubikey" in unmet:
        if has_yubikey(user):
            lines.append(
                "This needs a privilege that asks for a YubiKey OTP verified "
                "recently, and this session has none fresh enough. "
                "Touch your YubiKey to continue."
            )
        else:
            lines.append(
                "This needs a privilege that asks for a YubiKey OTP, and you have "
                "no YubiKey enrolled. Enrol one, or ask an account admin to "
                "change the privilege's conditions."
            )
    if "ip" in unmet:
        address = ctx.client_ip or "unknown"
        lines.append(
            "This needs a privilege that is only active from certain networks, "
            f"and your address ({address}) is not in them. A YubiKey cannot help "
            "with this: connect from an allowed network, or ask an account admin "
            "to change the privilege's allowed networks."
        )
    if "second_factor" in unmet:
        lines.append(
            "This account demands a second factor at sign-in, and this session "
            "was signed in without one. Sign out and sign in again with your "
            "YubiKey or authenticator code"
            + ("." if has_second_factor(user) else "; enrol one first.")
        )
    if "password" in unmet:
        lines.append("This needs a session that was signed in with a password.")
    return lines or ["This needs a privilege whose conditions are not met."]


def can_step_up(unmet, user) -> bool:
    """An OTP helps only when the YubiKey is the one thing missing."""
    return set(unmet) == {"yubikey"} and has_yubikey(user)
