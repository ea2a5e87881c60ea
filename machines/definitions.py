"""`GET /definitions`: the catalogue BigV clients read without signing in."""

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
