"""Portal forms. Field rules come from the API's serializers, so a value the
API refuses is refused here with the same message, by the same field."""

from __future__ import annotations

from django import forms
from django.utils import timezone
from rest_framework import serializers

from accounts.serializers import SignupSerializer
from privileges.levels import CLUSTER_LEVELS, RANK, TARGET_FIELD, Level
from privileges.serializers import ConditionsSerializer

TEAM_LEVELS = [lvl for lvl in Level if lvl not in CLUSTER_LEVELS]
TARGET_KINDS = {
    "account": "account_id",
    "group": "group_id",
    "vm": "virtual_machine_id",
}


class SerializerForm(forms.Form):
    """A form whose cleaned data is checked again by a DRF serializer; the
    serializer's errors land on the form field of the same name."""

    serializer_class: type[serializers.Serializer] | None = None
    # Serializer field -> form field, where the names differ.
    error_fields: dict[str, str] = {}

    def serializer_data(self) -> dict:
        return dict(self.cleaned_data)

    def clean(self):
        cleaned = super().clean()
        if self.serializer_class is None:
            return cleaned
        # Checked even when another field failed, so every problem shows at
        # once; a field that already has an error keeps only its own.
        failed = set(self.errors)
        serializer = self.serializer_class(data=self.serializer_data())
        if serializer.is_valid():
            self.validated = dict(serializer.validated_data)
            return cleaned
        for name, messages in serializer.errors.items():
            field = self.error_fields.get(name, name)
            if field in failed:
                continue
            for message in messages:
                self.add_error(field if field in self.fields else None, str(message))
        return cleaned


def networks_field() -> forms.CharField:
    return forms.CharField(
        label="Allowed networks",
        required=False,
        widget=forms.Textarea(attrs={"rows": 3}),
        help_text="One network a line, like 192.0.2.0/24 or 2001:db8::/32. "
        "Leave empty to allow any address.",
    )


def split_networks(text: str) -> list[str] | None:
    items = [n.strip() for n in text.replace(",", "\n").splitlines() if n.strip()]
    return items or None


class ConditionsForm(SerializerForm):
    serializer_class = ConditionsSerializer

    yubikey_required = forms.BooleanField(label="YubiKey required", required=False)
    yubikey_otp_max_age = forms.IntegerField(
        label="YubiKey OTP max age (seconds)",
        initial=900,
        help_text="How long a verified OTP keeps this privilege active.",
    )
    ip_restrictions = networks_field()

    def serializer_data(self) -> dict:
        data = dict(self.cleaned_data)
        if "ip_restrictions" in data:
            data["ip_restrictions"] = split_networks(data["ip_restrictions"])
        return data

    @staticmethod
    def initial_for(priv) -> dict:
        return {
            "yubikey_required": priv.yubikey_required,
            "yubikey_otp_max_age": priv.yubikey_otp_max_age,
            "ip_restrictions": "\n".join(priv.ip_restrictions or []),
        }


class TargetMixin:
    """`level` and `target` fields limited to what the actor may hand out.

    `levels` are the levels the actor may grant; `targets` are (value, label)
    pairs like ("group:7", "group default"). A level outside `levels` is
    refused by the field, naming the actor's own level.
    """

    def setup_target(self, levels, targets, own_level: str | None) -> None:
        level = self.fields["level"]
        level.choices = [(lvl.value, lvl.value) for lvl in TEAM_LEVELS]
        # The select offers only grantable levels; anything else posted is
        # still a known level, refused below with a reason.
        level.widget.choices = [(lvl, lvl) for lvl in levels]
        self.grantable = set(levels)
        self.own_level = own_level
        self.fields["target"].choices = targets

    def clean_level(self):
        value = self.cleaned_data["level"]
        if value and value not in self.grantable:
            mine = f" ({self.own_level})" if self.own_level else ""
            raise forms.ValidationError(
                f"You may only grant levels below your own{mine} here."
            )
        return value

    def grant_data(self) -> dict:
        """The `GrantSerializer` shape of the level and target."""
        kind, _, pk = self.cleaned_data["target"].partition(":")
        return {"level": self.cleaned_data["level"], TARGET_KINDS[kind]: int(pk)}

    def check_level_fits_target(self) -> None:
        level, target = self.cleaned_data.get("level"), self.cleaned_data.get("target")
        if not level or not target:
            return
        kind = target.partition(":")[0]
        wanted = {"account": "account", "group": "group", "vm": "virtual_machine"}
        if TARGET_FIELD[Level(level)] != wanted[kind]:
            needs = TARGET_FIELD[Level(level)].replace("virtual_machine", "machine")
            self.add_error("target", f"A {level} privilege is held on a {needs}.")


class GrantForm(TargetMixin, SerializerForm):
    serializer_class = ConditionsSerializer

    username = forms.CharField(max_length=150)
    level = forms.ChoiceField()
    target = forms.ChoiceField(label="On")
    yubikey_required = forms.BooleanField(label="YubiKey required", required=False)
    yubikey_otp_max_age = forms.IntegerField(
        label="YubiKey OTP max age (seconds)", initial=900
    )
    ip_restrictions = networks_field()

    def __init__(self, *args, levels, targets, own_level=None, **kwargs):
        super().__init__(*args, **kwargs)
        self.setup_target(levels, targets, own_level)

    def serializer_data(self) -> dict:
        keys = ("yubikey_required", "yubikey_otp_max_age", "ip_restrictions")
        data = {k: self.cleaned_data[k] for k in keys if k in self.cleaned_data}
        if "ip_restrictions" in data:
            data["ip_restrictions"] = split_networks(data["ip_restrictions"])
        return data

    def clean(self):
        cleaned = super().clean()
        self.check_level_fits_target()
        return cleaned


class CreateUserForm(TargetMixin, SerializerForm):
    serializer_class = SignupSerializer

    username = forms.CharField(max_length=150, help_text="Letters and digits.")
    email = forms.EmailField(max_length=254)
    password = forms.CharField(
        widget=forms.PasswordInput(render_value=False), strip=False, max_length=256
    )
    level = forms.ChoiceField()
    target = forms.ChoiceField(label="On")

    def __init__(self, *args, levels, targets, own_level=None, **kwargs):
        super().__init__(*args, **kwargs)
        self.setup_target(levels, targets, own_level)

    def serializer_data(self) -> dict:
        keys = ("username", "email", "password")
        return {k: self.cleaned_data[k] for k in keys if k in self.cleaned_data}

    def clean(self):
        cleaned = super().clean()
        self.check_level_fits_target()
        return cleaned


class ApiKeyForm(TargetMixin, forms.Form):
    label = forms.CharField(max_length=100, required=False)
    expires_at = forms.DateTimeField(
        label="Expires",
        required=False,
        widget=forms.DateTimeInput(attrs={"type": "datetime-local"}),
        help_text="UTC. Leave empty for a key that does not expire.",
    )
    level = forms.ChoiceField(required=False, label="Privilege for the key")
    target = forms.ChoiceField(required=False, label="On")

    def __init__(self, *args, levels, targets, own_level=None, **kwargs):
        super().__init__(*args, **kwargs)
        self.setup_target(levels, targets, own_level)
        self.fields["level"].widget.choices = [
            ("", "none"),
            *self.fields["level"].widget.choices,
        ]
        self.fields["level"].choices = [("", "none"), *self.fields["level"].choices]

    def clean_expires_at(self):
        value = self.cleaned_data["expires_at"]
        if value is not None and value <= timezone.now():
            raise forms.ValidationError("must be in the future")
        return value

    def clean(self):
        cleaned = super().clean()
        if cleaned.get("level") and not cleaned.get("target"):
            self.add_error("target", "Choose what the key's privilege is on.")
        self.check_level_fits_target()
        return cleaned


def levels_below(rank_held: int) -> list[str]:
    return [lvl.value for lvl in TEAM_LEVELS if RANK[lvl] < rank_held]


def levels_up_to(rank_held: int) -> list[str]:
    return [lvl.value for lvl in TEAM_LEVELS if RANK[lvl] <= rank_held]
