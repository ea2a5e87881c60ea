"""Privilege levels, highest first, and what each one targets."""

from django.db import models


class Level(models.TextChoices):
    CLUSTER_SU = "cluster_su"
    CLUSTER_ADMIN = "cluster_admin"
    ACCOUNT_ADMIN = "account_admin"
    GROUP_ADMIN = "group_admin"
    VM_ADMIN = "vm_admin"
    VM_CONSOLE = "vm_console"


RANK = {
    Level.CLUSTER_SU: 6,
    Level.CLUSTER_ADMIN: 5,
    Level.ACCOUNT_ADMIN: 4,
    Level.GROUP_ADMIN: 3,
    Level.VM_ADMIN: 2,
    Level.VM_CONSOLE: 1,
}

# The BigV client accepts these names too.
ALIASES = {
    "server_admin": Level.VM_ADMIN,
    "server_console": Level.VM_CONSOLE,
    "console": Level.VM_CONSOLE,
}

CLUSTER_LEVELS = {Level.CLUSTER_SU, Level.CLUSTER_ADMIN}

# The one target field each level needs ("" for cluster levels).
TARGET_FIELD = {
    Level.CLUSTER_SU: "",
    Level.CLUSTER_ADMIN: "",
    Level.ACCOUNT_ADMIN: "account",
    Level.GROUP_ADMIN: "group",
    Level.VM_ADMIN: "virtual_machine",
    Level.VM_CONSOLE: "virtual_machine",
}


def rank(level: str | None) -> int:
    return RANK.get(level, 0) if level else 0


def parse_level(value: str) -> str | None:
    value = (value or "").strip()
    if value in RANK:
        return Level(value)
    return ALIASES.get(value)
