"""Forms of the profile pages. Each refuses bad input by its field; the
actions in accounts.selfservice do the writing."""

from __future__ import annotations

from datetime import timedelta

from django import forms
from django.contrib.auth import password_validation
from django.contrib.auth.forms import SetPasswordForm
from django.utils import timezone

from accounts import actions
from accounts.keys import invalid_key_lines
from accounts.otp import OtpRejected, has_second_factor, verify_second_factor

# A YubiKey OTP counts as fresh only when it was verified just now: the newest
# OTP of a key stays replayable for a while (accounts.otp), and a replayed one
# proves only that someone saw it, not that the key is at hand.
FRESH_OTP = timedelta(seconds=30)

_OTP_ATTRS = {"autocomplete": "off", "spellcheck": "false", "autocapitalize": "none"}


def otp_field(label: str = "YubiKey OTP", **kwargs) -> forms.CharField:
    return forms.CharField(
        label=label,
        max_length=64,
        widget=forms.TextInput(attrs=_OTP_ATTRS),
        **kwargs,
    )


def name_field() -> forms.CharField:
    return forms.CharField(
        label="Name", max_length=64, required=False, help_text="Optional."
    )


class SshKeysForm(forms.Form):
    authorized_keys = forms.CharField(
        label="SSH public keys",
        required=False,
        max_length=65536,
        strip=False,
        widget=forms.Textarea(attrs={"rows": 8, "spellcheck": "false"}),
        help_text="One OpenSSH public key a line. New machines get these keys.",
    )

    def clean_authorized_keys(self):
        text = self.cleaned_data["authorized_keys"]
        problems = invalid_key_lines(text)
        if problems:
            raise forms.ValidationError(problems)
        return text


class RemoteYubikeyForm(forms.Form):
    name = name_field()
    otp = otp_field(help_text="Put the cursor here and touch your YubiKey once.")


class LocalYubikeyForm(forms.Form):
    name = name_field()
    public_id = forms.CharField(
        label="Public id",
        max_length=32,
        help_text="Modhex, as programmed (the first 12 characters of its OTPs).",
    )
    aes_key = forms.CharField(
        label="AES key", max_length=32, help_text="32 hexadecimal digits."
    )
    private_id = forms.CharField(
        label="Private id", max_length=12, help_text="12 hexadecimal digits."
    )
    otp = otp_field(help_text="Touch the key once, to prove the values match it.")


class TotpForm(forms.Form):
    name = name_field()
    code = forms.CharField(
        label="Code from the app",
        max_length=8,
        widget=forms.TextInput(
            attrs={"inputmode": "numeric", "autocomplete": "one-time-code"}
        ),
    )


class PasswordChangeForm(forms.Form):
    """The current password, the new one twice, and a fresh second factor
    when the user has one. The factor is checked last, so a form refused for
    another reason does not spend the code."""

    current_password = forms.CharField(
        label="Current password",
        strip=False,
        widget=forms.PasswordInput(attrs={"autocomplete": "current-password"}),
    )
    new_password = forms.CharField(
        label="New password",
        strip=False,
        max_length=256,
        widget=forms.PasswordInput(attrs={"autocomplete": "new-password"}),
        help_text=password_validation.password_validators_help_text_html(),
    )
    new_password_again = forms.CharField(
        label="New password again",
        strip=False,
        max_length=256,
        widget=forms.PasswordInput(attrs={"autocomplete": "new-password"}),
    )
    code = otp_field(
        label="Code from your YubiKey or authenticator app",
        help_text="A new code: touch your key, or wait for the app's next code.",
    )

    def __init__(self, user, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.user = user
        self.needs_code = has_second_factor(user)
        if not self.needs_code:
            del self.fields["code"]

    def clean_current_password(self):
        value = self.cleaned_data["current_password"]
        if not self.user.check_password(value):
            raise forms.ValidationError("This is not your current password.")
        return value

    def clean(self):
        cleaned = super().clean()
        new = cleaned.get("new_password")
        if new and cleaned.get("new_password_again") not in (None, new):
            self.add_error("new_password_again", "The two new passwords differ.")
        if new and "new_password" not in self.errors:
            try:
                password_validation.validate_password(new, self.user)
            except forms.ValidationError as exc:
                self.add_error("new_password", exc)
        if self.needs_code and not self.errors:
            self._check_code(cleaned.get("code", ""))
        return cleaned

    def _check_code(self, code: str) -> None:
        try:
            _, verified_at = verify_second_factor(self.user, code)
        except OtpRejected:
            self.add_error("code", "This code was not accepted.")
            return
        if verified_at is not None and timezone.now() - verified_at > FRESH_OTP:
            self.add_error("code", "This OTP was used before; touch your key again.")


class ResetPasswordForm(SetPasswordForm):
    """Django's reset form, saving through the action that ends every
    session of the user and records the change."""

    address = None

    def save(self, commit=True):
        password = self.cleaned_data["new_password1"]
        actions.change_password(
            self.user, password, actor=self.user, address=self.address
        )
        return self.user
