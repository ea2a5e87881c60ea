"""`GET /definitions`: the catalogue BigV clients read without signing in,
and replacing one of its lists (the API's `PUT /definitions/{id}` and the
cluster admins' definitions page both call `replace_definition`)."""

from django.db import transaction

from machines.models import (
    Distribution,
    HardwareProfile,
    Keymap,
    SendKey,
    StorageGrade,
    Zone,
)

# id -> (model, whether it has descriptions)
CATALOGUE = {
    "distributions": Distribution,
    "storage_grades": StorageGrade,
    "zone_names": Zone,
    "hardware_profiles": HardwareProfile,
    "keymaps": Keymap,
    "sendkeys": SendKey,
}
DESCRIBED = {
    "distribution_descriptions": Distribution,
    "storage_grade_descriptions": StorageGrade,
}

DEFAULTS = {
    "distributions": [
        ("symbiosis", "Symbiosis (Debian with Bytemark's hosting tools)"),
        ("bookworm", "Debian 12 (bookworm)"),
        ("trixie", "Debian 13 (trixie)"),
        ("noble", "Ubuntu 24.04 LTS (noble)"),
        ("jammy", "Ubuntu 22.04 LTS (jammy)"),
        ("alpine", "Alpine Linux 3.20"),
        ("none", "No operating system (boot from CD-ROM)"),
    ],
    "storage_grades": [
        ("sata", "Standard storage"),
        ("ssd", "Fast solid-state storage"),
        ("archive", "Large, slow archive storage"),
    ],
    "zone_names": ["default"],
    "hardware_profiles": ["virtio2013", "compatibility2013"],
    "keymaps": ["en-gb", "en-us", "de", "fr", "es", "it", "nl"],
    "sendkeys": [
        "ctrl", "alt", "shift", "delete", "backspace", "tab", "esc", "ret",
        "spc", "f1", "f2", "f3", "f4", "f5", "f6", "f7", "f8", "f9", "f10",
        "f11", "f12", "sysrq", "print", "home", "end", "pgup", "pgdn",
        "up", "down", "left", "right", "insert",
    ],
}  # fmt: skip


def definitions() -> list[dict]:
    result = []
    for def_id, model in CATALOGUE.items():
        rows = list(model.objects.all())
        result.append({"id": def_id, "data": [row.name for row in rows]})
        for described_id, described_model in DESCRIBED.items():
            if described_model is model:
                result.append(
                    {"id": described_id, "data": {r.name: r.description for r in rows}}
                )
    return result


def seed_defaults(apps=None) -> None:
    """Fill empty definition tables with the defaults (used by a migration)."""
    for def_id, entries in DEFAULTS.items():
        model = CATALOGUE[def_id]
        if apps is not None:
            model = apps.get_model("machines", model.__name__)
        if model.objects.exists():
            continue
        for position, entry in enumerate(entries):
            name, description = entry if isinstance(entry, tuple) else (entry, None)
            fields = {"name": name, "position": position}
            if description is not None:
                fields["description"] = description
            model.objects.create(**fields)


def not_in_list(model) -> str:
    """The message for a name missing from a definition list, naming the
    valid ones. BigV clients recognise the phrase "is not included in the
    list" and rewrite it; what follows it still reaches the user."""
    names = ", ".join(model.objects.values_list("name", flat=True))
    return f"is not included in the list (one of: {names})"


class InvalidDefinition(Exception):
    """The new contents of a definition list are not acceptable."""

    def __init__(self, message: str):
        super().__init__(message)
        self.message = message


def replace_definition(definition: str, data) -> None:
    """Replace the list `definition` (an id in CATALOGUE or DESCRIBED) with
    `data`: names in order, or a mapping of existing names to descriptions."""
    if definition in DESCRIBED:
        _replace_descriptions(DESCRIBED[definition], data)
    else:
        _replace_names(CATALOGUE[definition], data)


def _replace_names(model, data) -> None:
    if not isinstance(data, list) or not all(
        isinstance(n, str) and n.strip() and len(n) <= 64 for n in data
    ):
        raise InvalidDefinition(
            "must be a list of names (strings of 1 to 64 characters)"
        )
    if not data:
        # Every list is a set of choices: an empty one leaves nothing to pick.
        raise InvalidDefinition("must name at least one")
    if len(set(data)) != len(data):
        raise InvalidDefinition("names must be unique")
    with transaction.atomic():
        model.objects.exclude(name__in=data).delete()
        for position, name in enumerate(data):
            model.objects.update_or_create(name=name, defaults={"position": position})


def _replace_descriptions(model, data) -> None:
    if not isinstance(data, dict) or not all(
        isinstance(k, str) and isinstance(v, str) and len(v) <= 200
        for k, v in data.items()
    ):
        raise InvalidDefinition("must map names to descriptions (strings)")
    unknown = sorted(set(data) - set(model.objects.values_list("name", flat=True)))
    if unknown:
        raise InvalidDefinition(f"unknown names: {', '.join(unknown)}")
    with transaction.atomic():
        for name, description in data.items():
            model.objects.filter(name=name).update(description=description)
