"""What the dashboard's pages show: the fleet tree and one machine, each read
in a fixed number of queries however many machines there are."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field

from django.db.models import Prefetch, Sum

from accounts.models import Account
from groups.models import Group
from machines.dashboard.access import Gate, Panel
from machines.models import (
    Backup,
    Disc,
    IpAddress,
    NetworkInterface,
    Operation,
    VirtualMachine,
)
from privileges.levels import Level


def signature(*parts) -> str:
    """A short digest of what a live region shows: the page polls with it
    and is sent a new region only when it differs."""
    text = "|".join(str(part) for part in parts)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def power_words(vm: VirtualMachine, op: Operation | None) -> str:
    if vm.deleted:
        return "deleted"
    if op is not None and op.kind == Operation.Kind.CREATE:
        return "building"
    if vm.power_on and not vm.desired_power_on and op is not None:
        return "stopping"
    if not vm.power_on and vm.desired_power_on and op is not None:
        return "starting"
    return "running" if vm.power_on else "stopped"


def addresses(vm: VirtualMachine) -> list[str]:
    """The machine's primary addresses, IPv4 first (from prefetched NICs)."""
    ips = [
        ip
        for nic in vm.network_interfaces.all()
        for ip in nic.ips.all()
        if ip.routed_via_id is None
    ]
    return [ip.address for ip in sorted(ips, key=lambda ip: ip.family != "ipv4")]


def with_addresses(queryset):
    return queryset.prefetch_related(
        Prefetch(
            "network_interfaces",
            queryset=NetworkInterface.objects.select_related("vlan").prefetch_related(
                Prefetch("ips", queryset=IpAddress.objects.select_related("routed_via"))
            ),
        )
    )


# The fleet ------------------------------------------------------------------


@dataclass
class Row:
    vm: VirtualMachine
    locked: Gate | None = None
    op: Operation | None = None

    @property
    def state(self) -> str:
        return power_words(self.vm, self.op)

    @property
    def addresses(self) -> list[str]:
        return addresses(self.vm)


@dataclass
class GroupBlock:
    group: Group
    locked: Gate | None = None
    rows: list[Row] = field(default_factory=list)
    can_create: bool = False


@dataclass
class AccountBlock:
    account: Account
    locked: Gate | None = None
    groups: list[GroupBlock] = field(default_factory=list)
    can_add_group: bool = False


@dataclass
class Fleet:
    accounts: list[AccountBlock]
    busy: bool
    version: str
    step_up: bool  # something locked would open with a YubiKey OTP
    locks: list[str]

    @property
    def empty(self) -> bool:
        return not self.accounts


def fleet(panel: Panel) -> Fleet:
    """Accounts, their groups and machines the user can see, or would with a
    condition met (listed as locked, without their details)."""
    policy = panel.policy
    accounts = list(policy.accounts(held=True).order_by("name"))
    groups = list(
        policy.groups(held=True)
        .filter(account__in=accounts)
        .select_related("account")
        .order_by("name")
    )
    vms = list(
        with_addresses(
            policy.virtual_machines(held=True)
            .filter(group__in=groups)
            .select_related("group__account", "head")
            .annotate(disc_total=Sum("discs__size"))
            .order_by("name")
        )
    )
    ops = {
        op.virtual_machine_id: op
        for op in Operation.objects.filter(
            virtual_machine_id__in=[vm.pk for vm in vms],
            status__in=Operation.ACTIVE,
        )
    }
    return _tree(panel, accounts, groups, vms, ops)


def _lock(panel: Panel, obj) -> Gate | None:
    if panel.policy.scope.sees(obj):
        return None
    return panel.condition_gate(panel.policy.unmet_for(obj))


def _tree(panel, accounts, groups, vms, ops) -> Fleet:
    blocks = {a.pk: AccountBlock(a, _lock(panel, a)) for a in accounts}
    group_blocks = {}
    for group in groups:
        block = GroupBlock(group, _lock(panel, group))
        block.can_create = panel.is_admin_of(group, Level.GROUP_ADMIN)
        group_blocks[group.pk] = block
        blocks[group.account_id].groups.append(block)
    for vm in vms:
        row = Row(vm, _lock(panel, vm), ops.get(vm.pk))
        group_blocks[vm.group_id].rows.append(row)
    for block in blocks.values():
        block.can_add_group = panel.is_admin_of(block.account, Level.ACCOUNT_ADMIN)

    locks = [
        gate
        for block in blocks.values()
        for gate in [block.locked]
        + [g.locked for g in block.groups]
        + [r.locked for g in block.groups for r in g.rows]
        if gate is not None
    ]
    version = signature(
        *[(a.account.pk, a.account.name, a.locked is None) for a in blocks.values()],
        *[(g.group.pk, g.group.name, g.locked is None) for g in group_blocks.values()],
        *[(vm.pk, vm.name, vm.power_on, vm.desired_power_on, vm.deleted,
           vm.cores, vm.memory, vm.disc_total, addresses(vm)) for vm in vms],
        *[(op.pk, op.status, op.progress) for op in ops.values()],
    )  # fmt: skip
    return Fleet(
        accounts=list(blocks.values()),
        busy=bool(ops),
        version=version,
        step_up=any(gate.step_up for gate in locks),
        locks=sorted({gate.reason for gate in locks}),
    )


# One machine ----------------------------------------------------------------


def machine_queryset():
    return with_addresses(
        VirtualMachine.objects.select_related("group__account", "head")
    ).prefetch_related(
        Prefetch(
            "discs",
            queryset=Disc.objects.select_related("storage_pool").prefetch_related(
                Prefetch("backups", queryset=Backup.objects.order_by("-id")),
                "backup_schedules",
            ),
        )
    )


def latest_operations(vm: VirtualMachine, count: int = 5) -> list[Operation]:
    return list(
        Operation.objects.filter(virtual_machine=vm)
        .select_related("actor")
        .order_by("-id")[:count]
    )


def machine_version(vm: VirtualMachine, ops: list[Operation]) -> str:
    latest = ops[0] if ops else None
    return signature(
        vm.power_on,
        vm.desired_power_on,
        vm.deleted,
        vm.name,
        latest and (latest.pk, latest.status, latest.progress),
    )
