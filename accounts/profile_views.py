"""The signed-in user's own pages under /panel/profile/: SSH keys, second
factors, sessions, API keys and password; and the password reset by e-mail.

Views parse a form and call one action in accounts.selfservice or
accounts.actions. Ids of another user's devices, sessions and keys answer 404,
as missing ones do.
"""

from __future__ import annotations

from django.contrib import messages
from django.contrib.auth import update_session_auth_hash
from django.contrib.auth import views as auth_views
from django.contrib.auth.decorators import login_required
from django.http import Http404, HttpResponseRedirect
from django.shortcuts import render
from django.urls import reverse, reverse_lazy
from django.utils.safestring import mark_safe
from django.views.decorators.http import require_http_methods, require_POST
from django_otp.plugins.otp_static.models import StaticToken

from accounts import actions, selfservice
from accounts.models import ApiKey
from accounts.otp import BadYubikey
from accounts.profile_forms import (
    LocalYubikeyForm,
    PasswordChangeForm,
    RemoteYubikeyForm,
    ResetPasswordForm,
    SshKeysForm,
    TotpForm,
)
from panel import audit
from panel.context import client_address
from panel.models import AuditEvent

# The TOTP secret offered on the enrolment page, until a code confirms it.
PENDING_TOTP_KEY = "corral_pending_totp_key"


def _home():
    return HttpResponseRedirect(reverse("profile:home"))


def _done(request, message: str):
    messages.success(request, message)
    return _home()


def _refuse(form, exc: BadYubikey) -> None:
    field = exc.field if exc.field in form.fields else None
    form.add_error(field, str(exc))


def _render(request, template: str, context: dict, form=None, status=None):
    if status is None:
        status = 400 if form is not None and form.errors else 200
    return render(request, f"panel/profile/{template}", context, status=status)


# The profile page ------------------------------------------------------------


def _profile_context(request, ssh_form=None) -> dict:
    user = request.user
    return {
        "ssh_form": ssh_form
        or SshKeysForm(initial={"authorized_keys": user.authorized_keys}),
        "devices": selfservice.devices_of(user),
        "browser_sessions": selfservice.browser_sessions(
            user, request.session.session_key
        ),
        "api_sessions": selfservice.api_sessions(user).order_by("-created_at"),
        "api_keys": ApiKey.objects.filter(user=user).order_by("id"),
    }


@login_required
@require_http_methods(["GET"])
def profile(request):
    return _render(request, "index.html", _profile_context(request))


@login_required
@require_POST
def ssh_keys(request):
    form = SshKeysForm(request.POST)
    if not form.is_valid():
        context = _profile_context(request, ssh_form=form)
        return _render(request, "index.html", context, form)
    selfservice.set_authorized_keys(
        request.user,
        form.cleaned_data["authorized_keys"],
        address=client_address(request),
    )
    return _done(request, "Saved your SSH keys.")


@login_required
@require_POST
def remove_device(request, kind: str, device: int):
    model = selfservice.DEVICE_MODELS.get(kind)
    found = model and model.objects.filter(user=request.user, pk=device).first()
    if not found:
        raise Http404
    try:
        selfservice.remove_device(
            request.user, found, kind, address=client_address(request)
        )
    except selfservice.Refused as refused:
        messages.error(request, str(refused))
        context = {**_profile_context(request), "refusal": str(refused)}
        return _render(request, "index.html", context, status=403)
    return _done(request, f"Removed {found.name}.")


@login_required
@require_POST
def revoke_browser_session(request, session: str):
    current = selfservice.browser_session_id(request.session.session_key or "")
    if not selfservice.revoke_browser_session(
        request.user, session, address=client_address(request)
    ):
        raise Http404
    if session == current:
        return HttpResponseRedirect("/panel/login")
    return _done(request, "Ended that browser session.")


@login_required
@require_POST
def revoke_api_session(request, token: int):
    found = selfservice.api_sessions(request.user).filter(pk=token).first()
    if found is None:
        raise Http404
    selfservice.revoke_session_token(
        request.user, found, address=client_address(request)
    )
    return _done(request, "Ended that API session.")


@login_required
@require_POST
def revoke_api_key(request, key: int):
    found = ApiKey.objects.filter(user=request.user, pk=key).first()
    if found is None:
        raise Http404
    actions.delete_api_key(found, actor=request.user, address=client_address(request))
    return _done(request, f"Deleted the API key {found}.")


# Enrolment -------------------------------------------------------------------


@login_required
@require_http_methods(["GET", "POST"])
def enrol_remote_yubikey(request):
    form = RemoteYubikeyForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        try:
            device = selfservice.enrol_remote_yubikey(
                request.user,
                form.cleaned_data["otp"],
                name=form.cleaned_data["name"],
                address=client_address(request),
            )
        except BadYubikey as exc:
            _refuse(form, exc)
        else:
            return _done(request, f"Enrolled {device.name}.")
    return _render(request, "yubikey_remote.html", {"form": form}, form)


@login_required
@require_http_methods(["GET", "POST"])
def enrol_local_yubikey(request):
    form = LocalYubikeyForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        try:
            device = selfservice.enrol_local_yubikey(
                request.user, **form.cleaned_data, address=client_address(request)
            )
        except BadYubikey as exc:
            _refuse(form, exc)
        else:
            return _done(request, f"Enrolled {device.name}.")
    return _render(request, "yubikey_local.html", {"form": form}, form)


def _qr_svg(text: str) -> str:
    import qrcode
    from qrcode.image.svg import SvgPathImage

    image = qrcode.make(text, image_factory=SvgPathImage, box_size=8, border=4)
    return image.to_string(encoding="unicode")


@login_required
@require_http_methods(["GET", "POST"])
def enrol_totp(request):
    key = request.session.get(PENDING_TOTP_KEY)
    if not key:
        key = request.session[PENDING_TOTP_KEY] = selfservice.new_totp_key()
    form = TotpForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        try:
            device = selfservice.enrol_totp(
                request.user,
                key,
                form.cleaned_data["code"],
                name=form.cleaned_data["name"],
                address=client_address(request),
            )
        except BadYubikey as exc:
            _refuse(form, exc)
        else:
            request.session.pop(PENDING_TOTP_KEY, None)
            return _done(request, f"Enrolled {device.name}.")
    device = selfservice.totp_device_for(request.user, key)
    url = device.config_url
    context = {
        "form": form,
        # Made here: the secret never leaves the server for a QR service.
        "qr_svg": mark_safe(_qr_svg(url)),  # noqa: S308 (qrcode's own SVG)
        "secret": _base32(device.bin_key),
    }
    response = _render(request, "totp.html", context, form)
    response["Cache-Control"] = "no-store"
    return response


def _base32(key: bytes) -> str:
    from base64 import b32encode

    text = b32encode(key).decode()
    return " ".join(text[i : i + 4] for i in range(0, len(text), 4))


@login_required
@require_http_methods(["GET", "POST"])
def recovery_codes(request):
    codes = None
    if request.method == "POST":
        codes = selfservice.make_recovery_codes(
            request.user, address=client_address(request)
        )
    remaining = StaticToken.objects.filter(device__user=request.user).count()
    context = {"codes": codes, "remaining": remaining}
    response = _render(request, "recovery.html", context)
    # The codes are shown this once; no cache may keep the page.
    response["Cache-Control"] = "no-store"
    return response


# Password --------------------------------------------------------------------


@login_required
@require_http_methods(["GET", "POST"])
def change_password(request):
    form = PasswordChangeForm(request.user, request.POST or None)
    if request.method == "POST" and form.is_valid():
        actions.change_password(
            request.user,
            form.cleaned_data["new_password"],
            actor=request.user,
            address=client_address(request),
        )
        # Every other session has ended; this one goes on under a new key.
        update_session_auth_hash(request, request.user)
        return _done(request, "Changed your password; your other sessions ended.")
    return _render(request, "password.html", {"form": form}, form)


class PasswordReset(auth_views.PasswordResetView):
    """Answers the same whether or not the address belongs to anyone."""

    template_name = "panel/profile/reset_form.html"
    email_template_name = "panel/profile/reset_email.txt"
    subject_template_name = "panel/profile/reset_subject.txt"
    success_url = reverse_lazy("password-reset-sent")

    def form_valid(self, form):
        audit.record(
            AuditEvent.Kind.PASSWORD_RESET_SENT,
            address=client_address(self.request),
            via="browser",
        )
        return super().form_valid(form)


class PasswordResetSent(auth_views.PasswordResetDoneView):
    template_name = "panel/profile/reset_sent.html"


class PasswordResetConfirm(auth_views.PasswordResetConfirmView):
    template_name = "panel/profile/reset_confirm.html"
    form_class = ResetPasswordForm
    success_url = reverse_lazy("password-reset-done")

    def form_valid(self, form):
        form.address = client_address(self.request)
        return super().form_valid(form)


class PasswordResetDone(auth_views.PasswordResetCompleteView):
    template_name = "panel/profile/reset_done.html"
