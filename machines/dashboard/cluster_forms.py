"""The cluster pages' forms. They only parse what a person types; the
checks that decide (unique labels, sizes, ranges, definition names) are the
ones the API runs, in machines.cluster and machines.definitions, and their
messages come back onto these forms' fields."""

from __future__ import annotations

from django import forms

from machines import cluster
from machines.cluster import BACKUP_GRADE
from machines.models import StorageGrade, Tail

LINES = {"rows": 8, "spellcheck": "false"}


def record_errors(form: forms.Form, errors: dict) -> None:
    """Put the shared code's `{field: [messages]}` onto the form."""
    for field, problems in errors.items():
        place = field if field in form.fields else None
        form.add_error(place, [str(p) for p in problems])


def save_record(form: forms.Form, serializer_class, instance=None):
    """The saved record, or None with the errors on the form."""
    if not form.is_valid():
        return None
    try:
        return cluster.save_admin_record(serializer_class, form.cleaned_data, instance)
    except cluster.Invalid as invalid:
        record_errors(form, invalid.errors)
        return None


def integer(label: str, **kwargs) -> forms.IntegerField:
    return forms.IntegerField(label=label, **kwargs)


class HeadForm(forms.Form):
    label = forms.CharField(max_length=63, help_text="Lowercase letters, digits, -.")
    uri = forms.CharField(
        label="libvirt URI", max_length=500, help_text="Or simulated:// for tests."
    )
    zone = forms.CharField(max_length=64, initial="default")
    total_memory = integer("Memory (MiB)", initial=65536)
    total_cores = integer("Cores", initial=16)


class HeadEditForm(forms.Form):
    uri = forms.CharField(label="libvirt URI", max_length=500)
    zone = forms.CharField(max_length=64)
    total_memory = integer("Memory (MiB)")
    total_cores = integer("Cores")
    overcommit_ratio = integer("Overcommit ratio (%)")
    usage_strategy = forms.CharField(max_length=32, required=False)
    online = forms.BooleanField(required=False)


class TailForm(forms.Form):
    label = forms.CharField(max_length=63)
    zone = forms.CharField(max_length=64, initial="default")


class TailEditForm(forms.Form):
    zone = forms.CharField(max_length=64)
    online = forms.BooleanField(required=False)


def grade_choices() -> list[tuple[str, str]]:
    grades = list(StorageGrade.objects.values_list("name", flat=True))
    return [(g, g) for g in [*grades, BACKUP_GRADE]]


class PoolForm(forms.Form):
    label = forms.CharField(max_length=63)
    tail = forms.ChoiceField()
    libvirt_pool = forms.CharField(
        label="libvirt pool", max_length=100, help_text="Its name on every head."
    )
    grade = forms.ChoiceField(help_text=f"{BACKUP_GRADE} for a backup pool.")
    zone = forms.CharField(max_length=64, initial="default")
    size = integer("Size (MiB)")
    backup = forms.BooleanField(required=False, label="Holds backups only")

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        tails = Tail.objects.values_list("label", flat=True)
        self.fields["tail"].choices = [(t, t) for t in tails]
        self.fields["grade"].choices = grade_choices()


class PoolEditForm(forms.Form):
    zone = forms.CharField(max_length=64)
    size = integer("Size (MiB)")
    overcommit_ratio = integer("Overcommit ratio (%)")
    usage_strategy = forms.CharField(max_length=32, required=False)
    note = forms.CharField(max_length=500, required=False)


class IpRangeForm(forms.Form):
    ip_range = forms.CharField(
        label="Network (CIDR)", max_length=64, help_text="For example 192.0.2.0/24."
    )
    vlan_num = forms.IntegerField(
        label="VLAN number", min_value=1, max_value=4094, help_text="1 to 4094."
    )
    zones = forms.CharField(
        required=False, max_length=500, help_text="Comma-separated; empty for all."
    )

    def clean_ip_range(self) -> str:
        try:
            return cluster.new_range_spec(self.cleaned_data["ip_range"])
        except ValueError as exc:
            raise forms.ValidationError(str(exc)) from None

    def clean_zones(self) -> list[str]:
        return [z.strip() for z in self.cleaned_data["zones"].split(",") if z.strip()]


class DefinitionForm(forms.Form):
    """One definition list, a name a line; with `described`, each line may
    carry a description after the first colon."""

    names = forms.CharField(
        required=False, strip=False, widget=forms.Textarea(attrs=LINES)
    )

    def __init__(self, *args, described: bool = False, **kwargs):
        super().__init__(*args, **kwargs)
        self.described = described
        self.fields["names"].help_text = (
            "One a line, as name: description." if described else "One name a line."
        )

    def clean_names(self):
        lines = [line.strip() for line in self.cleaned_data["names"].splitlines()]
        lines = [line for line in lines if line]
        if not self.described:
            return lines, None
        pairs = [line.partition(":") for line in lines]
        names = [name.strip() for name, _, _ in pairs]
        return names, {name.strip(): text.strip() for name, _, text in pairs}
