"""The dashboard's forms. They parse what a person types into the shapes
that machines.actions takes; the actions' own checks (names taken, no room,
machine busy) come back as errors on these forms' fields."""

from __future__ import annotations

import secrets

from django import forms
from django.core.validators import MaxValueValidator, MinValueValidator

from accounts.keys import invalid_key_lines
from machines.models import Distribution, HardwareProfile, StorageGrade, Zone
from machines.serializers import MAX_DISC_SIZE, RdnsSerializer
from panel.validators import validate_dns_label

GIB = 1024
MAX_DISC_GIB = MAX_DISC_SIZE // GIB


def _names(model) -> list[tuple[str, str]]:
    return [(row.name, str(getattr(row, "description", "") or row.name))
            for row in model.objects.all()]  # fmt: skip


class NameField(forms.CharField):
    def __init__(self, **kwargs):
        kwargs.setdefault("max_length", 63)
        kwargs.setdefault(
            "help_text", "Lowercase letters, digits and hyphens, up to 63."
        )
        super().__init__(validators=[validate_dns_label], **kwargs)

    def to_python(self, value):
        return (super().to_python(value) or "").strip()


def cores_field(**kwargs) -> forms.IntegerField:
    return forms.IntegerField(min_value=1, max_value=64, **kwargs)


def memory_field(**kwargs) -> forms.IntegerField:
    return forms.IntegerField(
        label="Memory (MiB)",
        min_value=128,
        max_value=1024 * 1024,
        help_text="For example 1024 for 1 GiB.",
        **kwargs,
    )


def disc_size_field(**kwargs) -> forms.IntegerField:
    return forms.IntegerField(
        min_value=1,
        validators=[MinValueValidator(1), MaxValueValidator(MAX_DISC_GIB)],
        max_value=MAX_DISC_GIB,
        **kwargs,
    )


class ImageFields(forms.Form):
    """Distribution, root password, SSH keys and first-boot script: what both
    a new machine and a reimage install."""

    distribution = forms.ChoiceField()
    root_password = forms.CharField(
        required=False,
        strip=False,
        max_length=200,
        widget=forms.PasswordInput(attrs={"autocomplete": "new-password"}),
        help_text="Leave empty to sign in with an SSH key only.",
    )
    ssh_public_key = forms.CharField(
        label="SSH public keys",
        required=False,
        max_length=20000,
        widget=forms.Textarea(attrs={"rows": 3, "spellcheck": "false"}),
        help_text="One OpenSSH public key per line, for root.",
    )
    firstboot_script = forms.CharField(
        label="First-boot script",
        required=False,
        strip=False,
        max_length=65536,
        widget=forms.Textarea(attrs={"rows": 3, "spellcheck": "false"}),
    )

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["distribution"].choices = _names(Distribution)

    def clean_ssh_public_key(self):
        keys = self.cleaned_data["ssh_public_key"].strip()
        problems = invalid_key_lines(keys)
        if problems:
            raise forms.ValidationError(problems)
        return keys

    def clean(self):
        data = super().clean()
        missing = not data.get("root_password") and not data.get("ssh_public_key")
        # A key that failed its own check already says what is wrong.
        if missing and "ssh_public_key" not in self.errors:
            self.add_error(
                "root_password", "Give a root password or an SSH public key."
            )
        return data

    def image(self) -> dict:
        data = self.cleaned_data
        # With keys only, root gets a random password nobody knows, so that
        # no image is ever left with an empty or default one.
        password = data["root_password"] or secrets.token_urlsafe(24)
        return {
            "distribution": data["distribution"],
            "root_password": password,
            "ssh_public_key": data["ssh_public_key"],
            "firstboot_script": data["firstboot_script"],
        }


class CreateMachineForm(ImageFields):
    field_order = ["name", "group", "cores", "memory", "disc_size", "storage_grade",
                   "extra_disc_size", "extra_storage_grade", "distribution",
                   "root_password", "ssh_public_key", "firstboot_script", "zone",
                   "power_on"]  # fmt: skip

    name = NameField()
    group = forms.ChoiceField()
    cores = cores_field(initial=1)
    memory = memory_field(initial=1024)
    disc_size = disc_size_field(label="Disc (GiB)", initial=25)
    storage_grade = forms.ChoiceField(label="Disc storage grade")
    extra_disc_size = disc_size_field(
        label="Second disc (GiB)", required=False, help_text="Optional."
    )
    extra_storage_grade = forms.ChoiceField(label="Second disc storage grade")
    zone = forms.ChoiceField(required=False)
    power_on = forms.BooleanField(
        label="Start the machine once it is built", required=False, initial=True
    )

    def __init__(self, *args, groups=(), **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["group"].choices = [
            (str(g.pk), f"{g.name} ({g.account.name})") for g in groups
        ]
        grades = _names(StorageGrade)
        self.fields["storage_grade"].choices = grades
        self.fields["extra_storage_grade"].choices = grades
        self.fields["zone"].choices = [("", "Any zone"), *_names(Zone)]

    def spec(self) -> dict:
        data = self.cleaned_data
        return {
            "name": data["name"],
            "cores": data["cores"],
            "memory": data["memory"],
            "zone_name": data["zone"],
            "power_on": data["power_on"],
            "autoreboot_on": data["power_on"],
        }

    def discs(self) -> list[dict]:
        data = self.cleaned_data
        discs = [
            {"size": data["disc_size"] * GIB, "storage_grade": data["storage_grade"]}
        ]
        if data.get("extra_disc_size"):
            discs.append({"size": data["extra_disc_size"] * GIB,
                          "storage_grade": data["extra_storage_grade"]})  # fmt: skip
        return discs

    # Where the errors of each disc (by position) are shown.
    DISC_FIELDS = [
        {"size": "disc_size", "storage_grade": "storage_grade"},
        {"size": "extra_disc_size", "storage_grade": "extra_storage_grade"},
    ]


class ReimageForm(ImageFields):
    confirm = forms.BooleanField(
        label="I understand that this erases the machine's first disc."
    )


class SpecsForm(forms.Form):
    cores = cores_field()
    memory = memory_field()
    cdrom_url = forms.URLField(
        label="CD-ROM URL",
        required=False,
        max_length=2000,
        assume_scheme="https",
        help_text="An ISO image to boot from; empty to eject.",
    )
    hardware_profile = forms.ChoiceField()

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["hardware_profile"].choices = _names(HardwareProfile)


class AddDiscForm(forms.Form):
    label = NameField(required=False, help_text="Optional; disc-N when empty.")
    size = disc_size_field(label="Size (GiB)")
    storage_grade = forms.ChoiceField()

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["storage_grade"].choices = _names(StorageGrade)

    def spec(self) -> dict:
        data = self.cleaned_data
        return {
            "label": data["label"],
            "size": data["size"] * GIB,
            "storage_grade": data["storage_grade"],
        }


class GrowDiscForm(forms.Form):
    size = disc_size_field(label="New size (GiB)")


class ScheduleForm(forms.Form):
    start_at = forms.RegexField(
        label="Start at (UTC)",
        regex=r"^([01]\d|2[0-3]):[0-5]\d$",
        initial="00:00",
        error_messages={"invalid": "Enter a time like 00:00 or 23:30."},
    )
    interval = forms.TypedChoiceField(
        coerce=int,
        choices=[(3600 * 6, "every 6 hours"), (86400, "daily"), (7 * 86400, "weekly")],
        initial=86400,
    )
    capacity = forms.IntegerField(
        label="Backups kept", min_value=1, max_value=1000, initial=7
    )

    def spec(self) -> dict:
        data = self.cleaned_data
        return {
            "start_at": data["start_at"],
            "interval_seconds": data["interval"],
            "capacity": data["capacity"],
        }


class AddIpForm(forms.Form):
    family = forms.ChoiceField(choices=[("ipv4", "IPv4"), ("ipv6", "IPv6")])
    addresses = forms.IntegerField(label="How many", min_value=1, max_value=64)
    reason = forms.CharField(
        max_length=200, required=False, help_text="Why, for the record."
    )

    def spec(self) -> dict:
        return {**self.cleaned_data, "contiguous": False}


class RdnsForm(forms.Form):
    rdns = forms.CharField(label="Reverse DNS", max_length=253, required=False)

    def clean_rdns(self):
        # The API's own rule, so both front doors accept the same names.
        serializer = RdnsSerializer(data={"rdns": self.cleaned_data["rdns"]})
        if not serializer.is_valid():
            raise forms.ValidationError([str(m) for m in serializer.errors["rdns"]])
        return serializer.validated_data["rdns"]


class PurgeForm(forms.Form):
    confirm_name = forms.CharField(
        label="Type the machine's name to confirm", max_length=63
    )

    def __init__(self, *args, vm=None, **kwargs):
        super().__init__(*args, **kwargs)
        self.vm = vm

    def clean_confirm_name(self):
        value = self.cleaned_data["confirm_name"].strip()
        if self.vm is not None and value != self.vm.name:
            raise forms.ValidationError("This is not the machine's name.")
        return value


class GroupNameForm(forms.Form):
    name = NameField(label="Group name")
