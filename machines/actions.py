"""State changes for machines, discs, NICs, IPs and backups.

Each function runs in one transaction: it records the desired state, starts
the Operation that carries out any long work (enqueued for a worker when the
transaction commits) and writes the audit record where the change matters for
security. Bad input raises `Invalid` with a flat `{field: [messages]}` body;
a machine busy with another operation raises `OperationConflict`.

Operation params, as the worker reads them:
- create: {"power_on": bool, "discs": [disc ids], "reimage": image or null}
- image: {"distribution", "root_password_hash", "ssh_public_key",
  "firstboot_script", "power_on": true}; the password is only ever stored as
  a SHA-512 crypt hash, which cloud-init accepts as it is.
- power_on, power_off, reboot: {}
- signal: {"signal": "powerdown" | "reset" | "sendkey", "data": str}
- disc_create: {"disc_id"}; resize: {"disc_id", "from", "to"} (MiB)
- disc_delete: {"volumes": [{"pool": libvirt pool, "volume": name}]}
- purge: {"uuid", "name", "volumes": [...]}: the machine's rows are gone
  already, so its name and addresses are free at once.
- backup, restore: {"backup_id"}
"""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

from django.conf import settings
from django.db import IntegrityError, transaction
from django.utils import timezone

from accounts.models import User
from groups.models import Group
from machines import addressing, placement
from machines.definitions import not_in_list
from machines.hypervisors import keys as sendkeys
from machines.hypervisors.seed import hash_password
from machines.models import (
    Backup,
    BackupSchedule,
    Disc,
    HardwareProfile,
    IpAddress,
    Keymap,
    NetworkInterface,
    Operation,
    SendKey,
    StorageGrade,
    VirtualMachine,
    Zone,
)
from machines.models import Distribution as DistributionDef
from machines.operations import OperationConflict, active_operation, start_operation
from machines.serializers import MAX_DISC_SIZE, MAX_DISCS
from panel import audit
from panel.models import AuditEvent

Kind = Operation.Kind

__all__ = ["Invalid", "OperationConflict"]


class Invalid(Exception):
    """Bad input for a change: carries the flat 400 body."""

    def __init__(self, errors: dict):
        super().__init__(errors)
        self.errors = errors


def invalid(field: str, message: str) -> Invalid:
    return Invalid({field: [message]})


def _audit(vm, action: str, *, actor, address, **detail) -> None:
    audit.record(
        AuditEvent.Kind.MACHINE_CHANGED,
        actor=actor,
        address=address,
        account=vm.group.account,
        action=action,
        machine=vm.name,
        machine_id=vm.pk,
        group=vm.group.name,
        **detail,
    )


def _lock(vm: VirtualMachine) -> VirtualMachine:
    return (
        VirtualMachine.objects.select_for_update(of=("self",))
        .select_related("group__account", "head")
        .get(pk=vm.pk)
    )


def _check_definition(model, field: str, value: str) -> None:
    if value and not model.objects.filter(name=value).exists():
        raise invalid(field, not_in_list(model))


def image_params(image: dict) -> dict:
    _check_definition(DistributionDef, "distribution", image["distribution"])
    return {
        "distribution": image["distribution"],
        "root_password_hash": hash_password(image["root_password"]),
        "ssh_public_key": image.get("ssh_public_key") or "",
        "firstboot_script": image.get("firstboot_script") or "",
    }


# Machines -------------------------------------------------------------------


def _disc_errors(discs: list[dict]) -> list[dict]:
    errors: list[dict] = [{} for _ in discs]
    labels: set[str] = set()
    for index, spec in enumerate(discs):
        grade = spec.get("storage_grade") or "sata"
        if not StorageGrade.objects.filter(name=grade).exists():
            errors[index]["storage_grade"] = [not_in_list(StorageGrade)]
        label = spec.get("label") or ""
        if label and label in labels:
            errors[index]["label"] = ["is already taken on this machine"]
        labels.add(label)
    return errors


@transaction.atomic
def create_virtual_machine(
    group: Group,
    spec: dict,
    *,
    discs: list[dict] | None = None,
    reimage: dict | None = None,
    ips: dict | None = None,
    actor: User,
    address=None,
) -> tuple[VirtualMachine, Operation]:
    """Create a machine with its discs, NIC and addresses, and the operation
    that builds it (powered on afterwards when asked)."""
    discs = discs or []
    errors: dict = {}
    if VirtualMachine.objects.filter(group=group, name=spec["name"]).exists():
        errors["name"] = ["is already taken in this group"]
    if len(discs) > MAX_DISCS:
        errors["discs"] = [f"at most {MAX_DISCS} discs per machine"]
    for model, field in (
        (HardwareProfile, "hardware_profile"),
        (Keymap, "keymap"),
        (Zone, "zone_name"),
    ):
        if spec.get(field) and not model.objects.filter(name=spec[field]).exists():
            errors[field] = [not_in_list(model)]
    disc_errors = _disc_errors(discs)
    if any(disc_errors):
        errors["discs"] = disc_errors
    if errors:
        raise Invalid(errors)

    head = _place(spec)
    power = bool(spec.get("power_on") or spec.get("autoreboot_on"))
    vm = VirtualMachine(
        group=group,
        head=head,
        zone_name=spec.get("zone_name") or head.zone,
        management_address=head.cnc_address,
        desired_power_on=power,
        power_on=False,
        **{
            key: spec[key]
            for key in (
                "name",
                "cores",
                "memory",
                "autoreboot_on",
                "cdrom_url",
                "hardware_profile",
                "hardware_profile_locked",
                "keymap",
            )
            if key in spec
        },
    )
    if not vm.hardware_profile:
        first = HardwareProfile.objects.first()
        vm.hardware_profile = first.name if first else ""
    try:
        with transaction.atomic():
            vm.save()
    except IntegrityError:
        raise invalid("name", "is already taken in this group") from None

    created = [_new_disc(vm, spec) for spec in _labelled(discs)]
    _address(vm, group, ips or {})
    params = {
        "power_on": power,
        "discs": [d.pk for d in created],
        "reimage": image_params(reimage) if reimage else None,
    }
    if reimage:
        vm.last_imaged_with = reimage["distribution"]
        vm.save(update_fields=["last_imaged_with"])
    op = start_operation(vm, Kind.CREATE, actor=actor, params=params)
    _audit(vm, "created", actor=actor, address=address, operation=op.pk)
    return vm, op


def _place(spec: dict):
    try:
        return placement.choose_head(
            spec.get("zone_name") or "", spec.get("cores", 1), spec.get("memory", 1024)
        )
    except placement.NoCapacity as exc:
        raise invalid("virtual_machine", str(exc)) from None


def _address(vm: VirtualMachine, group: Group, ips: dict) -> None:
    try:
        addressing.address_machine(
            vm, group, ipv4=ips.get("ipv4") or "", ipv6=ips.get("ipv6") or ""
        )
    except addressing.NoFreeAddress as exc:
        raise invalid("ips", f"{exc}; no machine can be created there") from None
    except addressing.AddressUnavailable as exc:
        raise invalid("ips", str(exc)) from None


def _labelled(discs: list[dict]) -> list[dict]:
    """Unlabelled discs get `disc-N` by position, skipping labels given."""
    taken = {spec.get("label") for spec in discs}
    labelled, number = [], 0
    for spec in discs:
        if not spec.get("label"):
            number += 1
            while f"disc-{number}" in taken:
                number += 1
            spec = {**spec, "label": f"disc-{number}"}
        labelled.append(spec)
    return labelled


def _new_disc(vm: VirtualMachine, spec: dict) -> Disc:
    grade = spec.get("storage_grade") or "sata"
    label = spec.get("label") or next_disc_label(vm)
    try:
        pool = placement.choose_pool(grade, vm.zone_name, spec["size"])
    except placement.NoCapacity as exc:
        raise invalid("discs", str(exc)) from None
    disc = Disc.objects.create(
        virtual_machine=vm,
        label=label,
        size=spec["size"],
        storage_grade=grade,
        storage_pool=pool,
    )
    for schedule in spec.get("backup_schedules") or []:
        _new_schedule(disc, schedule)
    return disc


def next_disc_label(vm: VirtualMachine) -> str:
    """`disc-N`, N one more than the highest disc-N/disk-N and the count."""
    labels = list(vm.discs.values_list("label", flat=True))
    numbers = [
        int(m.group(1)) for lbl in labels if (m := re.fullmatch(r"dis[ck]-(\d+)", lbl))
    ]
    return f"disc-{max([len(labels), *numbers]) + 1}"


POWER_FIELDS = {"power_on", "autoreboot_on"}
SPEC_FIELDS = [
    "cores",
    "memory",
    "cdrom_url",
    "hardware_profile",
    "hardware_profile_locked",
    "keymap",
]


@transaction.atomic
def update_virtual_machine(
    vm: VirtualMachine, changes: dict, *, actor: User, address=None
) -> tuple[VirtualMachine, Operation | None]:
    """Apply a partial PUT. Specs take effect at the next power cycle; power
    changes start an operation; rename/move and restore are recorded at once."""
    vm = _lock(vm)
    if "deleted" in changes:
        _restore(vm, actor=actor, address=address)
    if vm.deleted and set(changes) - {"deleted"}:
        raise invalid("deleted", "the machine is deleted; restore it first")

    _check_specs(vm, changes)
    for key in SPEC_FIELDS:
        if key in changes:
            setattr(vm, key, changes[key])
    if "name" in changes or "group_id" in changes:
        _rename_or_move(vm, changes, actor=actor, address=address)
    op = _power(vm, changes, actor)
    vm.save()
    return vm, op


def _check_specs(vm: VirtualMachine, changes: dict) -> None:
    if vm.head_id is not None and ("cores" in changes or "memory" in changes):
        cores, memory = placement.head_room(vm)
        if changes.get("cores", 0) > cores:
            raise invalid("cores", f"the machine's head has only {cores} cores")
        if changes.get("memory", 0) > max(memory, vm.memory):
            raise invalid("memory", f"the machine's head has only {memory} MiB free")
    _check_definition(
        HardwareProfile, "hardware_profile", changes.get("hardware_profile")
    )
    _check_definition(Keymap, "keymap", changes.get("keymap"))
    profile = changes.get("hardware_profile")
    locked = changes.get("hardware_profile_locked", vm.hardware_profile_locked)
    if profile and profile != vm.hardware_profile and locked:
        raise invalid("hardware_profile", "is locked; unlock it first")


def _restore(vm: VirtualMachine, *, actor, address) -> None:
    if not vm.deleted:
        return
    grace = timedelta(days=settings.CORRAL_DELETED_VM_GRACE_DAYS)
    if vm.deleted_at is not None and timezone.now() - vm.deleted_at > grace:
        raise invalid("deleted", "the grace period for restoring has passed")
    vm.deleted = False
    vm.deleted_at = None
    _audit(vm, "restored", actor=actor, address=address)


def _rename_or_move(vm: VirtualMachine, changes: dict, *, actor, address) -> None:
    old = (vm.name, vm.group.name)
    target = vm.group
    if changes.get("group_id") not in (None, vm.group_id):
        target = Group.objects.filter(
            pk=changes["group_id"], account_id=vm.group.account_id
        ).first()
        if target is None:
            raise invalid("group_id", "no such group in this machine's account")
        if vm.power_on or vm.desired_power_on:
            raise invalid("group_id", "power the machine off before moving it")
    name = changes.get("name", vm.name)
    taken = VirtualMachine.objects.filter(group=target, name=name).exclude(pk=vm.pk)
    if taken.exists():
        raise invalid("name", "is already taken in this group")
    if target.pk != vm.group_id:
        _readdress(vm, target)
    vm.name, vm.group = name, target
    _audit(
        vm,
        "renamed",
        actor=actor,
        address=address,
        old_name=old[0],
        old_group=old[1],
    )


def _readdress(vm: VirtualMachine, target: Group) -> None:
    try:
        vlan = addressing.vlan_for_group(target)
        for nic in vm.network_interfaces.select_related("vlan"):
            if nic.vlan_id != vlan.pk:
                addressing.readdress_nic(nic, vlan, vm.zone_name)
    except addressing.NoFreeAddress as exc:
        raise invalid("group_id", str(exc)) from None


def _power(vm: VirtualMachine, changes: dict, actor) -> Operation | None:
    """start = power on + autoreboot; stop = both off; reboot = autoreboot on
    with power off. Autoreboot alone is desired state, not an operation."""
    if "autoreboot_on" in changes:
        vm.autoreboot_on = changes["autoreboot_on"]
    if "power_on" not in changes:
        return None
    running = vm.power_on or vm.desired_power_on
    if changes["power_on"]:
        kind = Kind.POWER_ON
    elif changes.get("autoreboot_on"):
        kind = Kind.REBOOT if running else Kind.POWER_ON
    else:
        kind = Kind.POWER_OFF
    wanted = kind != Kind.POWER_OFF
    if kind != Kind.REBOOT and vm.power_on == wanted and vm.desired_power_on == wanted:
        return None
    vm.desired_power_on = wanted
    return start_operation(vm, kind, actor=actor)


@transaction.atomic
def delete_virtual_machine(
    vm: VirtualMachine, *, actor: User, address=None
) -> Operation | None:
    """Soft delete: hidden, powered off, restorable within the grace period."""
    vm = _lock(vm)
    if vm.deleted:
        return None
    op = None
    if vm.power_on or vm.desired_power_on:
        op = start_operation(vm, Kind.POWER_OFF, actor=actor)
    else:
        _require_idle(vm)
    vm.deleted = True
    vm.deleted_at = timezone.now()
    vm.autoreboot_on = False
    vm.desired_power_on = False
    vm.save()
    _audit(vm, "deleted", actor=actor, address=address)
    return op


def _volumes(vm: VirtualMachine) -> list[dict]:
    volumes = []
    for disc in vm.discs.select_related("storage_pool"):
        volumes.append({"pool": disc.storage_pool.libvirt_pool, "volume": disc.volume})
        for backup in disc.backups.select_related("storage_pool"):
            volumes.append(
                {"pool": backup.storage_pool.libvirt_pool, "volume": backup.volume}
            )
    return volumes


@transaction.atomic
def purge_virtual_machine(
    vm: VirtualMachine, *, actor: User | None, address=None
) -> Operation:
    """Destroy the machine: its rows go now (freeing its name and addresses),
    and the operation tears down the domain and the volumes."""
    vm = _lock(vm)
    params = {"uuid": str(vm.uuid), "name": vm.name, "volumes": _volumes(vm)}
    op = start_operation(vm, Kind.PURGE, actor=actor, params=params)
    _audit(vm, "purged", actor=actor, address=address, operation=op.pk)
    vm.delete()
    return op


def purge_expired_deletions() -> int:
    """Purge machines deleted longer ago than the grace period; a machine busy
    with an operation waits for the next run. Returns how many were purged."""
    cutoff = timezone.now() - timedelta(days=settings.CORRAL_DELETED_VM_GRACE_DAYS)
    expired = VirtualMachine.objects.filter(deleted=True, deleted_at__lt=cutoff)
    purged = 0
    for vm_id in expired.values_list("pk", flat=True):
        try:
            with transaction.atomic():
                vm = VirtualMachine.objects.filter(pk=vm_id, deleted=True).first()
                if vm is None:
                    continue
                purge_virtual_machine(vm, actor=None)
        except OperationConflict:
            continue
        purged += 1
    return purged


def _require_idle(vm: VirtualMachine) -> None:
    holder = active_operation(vm)
    if holder is not None:
        raise OperationConflict(holder)


def _check_sendkeys(data: str) -> str:
    keys = [k for k in (data or "").strip().lower().split("-")]
    if not data or not all(keys):
        raise invalid(
            "data", "must be key names joined by dashes, like ctrl-alt-delete"
        )
    # A key must be listed and one the heads can press, or the worker fails.
    known = set(SendKey.objects.values_list("name", flat=True))
    unknown = [k for k in keys if k not in known or k not in sendkeys.KEYCODES]
    if unknown:
        raise invalid("data", f"unknown keys: {', '.join(unknown)}")
    if len(keys) > sendkeys.MAX_KEYS:
        raise invalid("data", f"at most {sendkeys.MAX_KEYS} keys at once")
    return "-".join(keys)


@transaction.atomic
def signal_virtual_machine(
    vm: VirtualMachine, signal: str, data: str = "", *, actor: User, address=None
) -> Operation:
    vm = _lock(vm)
    if vm.deleted or not vm.power_on:
        raise invalid("signal", "the machine is not running")
    params = {"signal": signal}
    if signal == "sendkey":
        params["data"] = _check_sendkeys(data)
    if signal == "powerdown":
        # An ACPI shutdown leaves the machine off unless autoreboot brings it
        # back, so the desired state follows autoreboot.
        vm.desired_power_on = vm.autoreboot_on
        vm.save(update_fields=["desired_power_on"])
    return start_operation(vm, Kind.SIGNAL, actor=actor, params=params)


@transaction.atomic
def reimage_virtual_machine(
    vm: VirtualMachine, image: dict, *, actor: User, address=None
) -> Operation:
    """Reinstall a stopped machine; it ends powered on with autoreboot off."""
    vm = _lock(vm)
    if vm.deleted:
        raise invalid("deleted", "the machine is deleted; restore it first")
    if vm.power_on or vm.desired_power_on:
        raise invalid("power_on", "stop the machine before reimaging it")
    params = {**image_params(image), "power_on": True}
    op = start_operation(vm, Kind.IMAGE, actor=actor, params=params)
    vm.autoreboot_on = False
    vm.desired_power_on = True
    vm.last_imaged_with = image["distribution"]
    vm.save()
    _audit(
        vm,
        "reimaged",
        actor=actor,
        address=address,
        distribution=image["distribution"],
        operation=op.pk,
    )
    return op


# Discs ----------------------------------------------------------------------


def _require_live(vm: VirtualMachine) -> None:
    if vm.deleted:
        raise invalid("virtual_machine", "the machine is deleted; restore it first")


@transaction.atomic
def add_disc(
    vm: VirtualMachine, spec: dict, *, actor: User, address=None
) -> tuple[Disc, Operation]:
    vm = _lock(vm)
    _require_live(vm)
    if vm.discs.count() >= MAX_DISCS:
        raise invalid("discs", f"a machine has at most {MAX_DISCS} discs")
    errors = _disc_errors([spec])[0]
    if errors:
        raise Invalid(errors)
    if spec.get("label") and vm.discs.filter(label=spec["label"]).exists():
        raise invalid("label", "is already taken on this machine")
    disc = _new_disc(vm, spec)
    op = start_operation(
        vm, Kind.DISC_CREATE, actor=actor, disc=disc, params={"disc_id": disc.pk}
    )
    return disc, op


@transaction.atomic
def update_disc(
    disc: Disc, changes: dict, *, actor: User, target_vm=None, address=None
):
    """Resize (grow only), move to another machine, or set the IOPS limit."""
    vm = _lock(disc.virtual_machine)
    disc = Disc.objects.select_for_update().get(pk=disc.pk)
    _require_live(vm)
    op = None
    if "iops_limit" in changes:
        disc.iops_limit = changes["iops_limit"]
        disc.save(update_fields=["iops_limit"])
    if "size" in changes and changes["size"] != disc.size:
        op = _resize(vm, disc, changes["size"], actor)
    if target_vm is not None and target_vm.pk != vm.pk:
        _move(vm, disc, target_vm, actor=actor, address=address)
    return disc, op


def _resize(vm, disc: Disc, size: int, actor) -> Operation:
    if size < disc.size:
        raise invalid("size", "discs can only grow")
    if size > MAX_DISC_SIZE:
        raise invalid("size", f"must be at most {MAX_DISC_SIZE} MiB (2 TiB)")
    if not placement.lock_room(disc.storage_pool, size - disc.size):
        raise invalid("size", "the disc's storage pool has no room to grow it")
    params = {"disc_id": disc.pk, "from": disc.size, "to": size}
    op = start_operation(vm, Kind.RESIZE, actor=actor, disc=disc, params=params)
    disc.size = size
    disc.save(update_fields=["size"])
    return op


def _move(vm, disc: Disc, target: VirtualMachine, *, actor, address) -> None:
    target = _lock(target)
    if target.group.account_id != vm.group.account_id:
        raise invalid("virtual_machine_id", "must be a machine of the same account")
    if target.deleted:
        raise invalid("virtual_machine_id", "the target machine is deleted")
    for machine in (vm, target):
        if machine.power_on or machine.desired_power_on:
            raise invalid("virtual_machine_id", "both machines must be powered off")
        _require_idle(machine)
    if target.discs.count() >= MAX_DISCS:
        raise invalid("virtual_machine_id", "the target machine has 8 discs already")
    if target.discs.filter(label=disc.label).exists():
        disc.label = next_disc_label(target)
    disc.virtual_machine = target
    disc.save(update_fields=["virtual_machine", "label"])
    _audit(vm, "disc_moved", actor=actor, address=address, disc=disc.pk, to=target.pk)


@transaction.atomic
def delete_disc(disc: Disc, *, actor: User, address=None) -> Operation:
    vm = _lock(disc.virtual_machine)
    _require_live(vm)
    volumes = [{"pool": disc.storage_pool.libvirt_pool, "volume": disc.volume}]
    volumes += [
        {"pool": b.storage_pool.libvirt_pool, "volume": b.volume}
        for b in disc.backups.select_related("storage_pool")
    ]
    op = start_operation(
        vm, Kind.DISC_DELETE, actor=actor, disc=disc, params={"volumes": volumes}
    )
    _audit(vm, "disc_deleted", actor=actor, address=address, disc=disc.label)
    disc.delete()
    return op


# Backups ----------------------------------------------------------------------


@transaction.atomic
def create_backup(disc: Disc, *, actor: User, address=None) -> tuple[Backup, Operation]:
    vm = _lock(disc.virtual_machine)
    _require_live(vm)
    try:
        pool = placement.choose_backup_pool(vm.zone_name, disc.size)
    except placement.NoCapacity as exc:
        raise invalid("backup", str(exc)) from None
    stamp = timezone.now().strftime("%Y%m%d%H%M%S")
    label = f"{vm.name}-{disc.label}-{stamp}"
    if disc.backups.filter(label__startswith=label).exists():
        label = f"{label}-{disc.backups.filter(label__startswith=label).count() + 1}"
    backup = Backup.objects.create(
        disc=disc, label=label, size=disc.size, storage_pool=pool, manual=True
    )
    op = start_operation(
        vm, Kind.BACKUP, actor=actor, disc=disc, params={"backup_id": backup.pk}
    )
    return backup, op


@transaction.atomic
def restore_backup(backup: Backup, *, actor: User, address=None) -> Operation:
    vm = _lock(backup.disc.virtual_machine)
    _require_live(vm)
    if not backup.complete:
        raise invalid("restore", "the backup is not complete yet")
    if vm.power_on or vm.desired_power_on:
        raise invalid("restore", "stop the machine before restoring a backup")
    op = start_operation(
        vm,
        Kind.RESTORE,
        actor=actor,
        disc=backup.disc,
        params={"backup_id": backup.pk},
    )
    _audit(vm, "backup_restored", actor=actor, address=address, backup=backup.label)
    return op


@transaction.atomic
def delete_backup(backup: Backup, *, actor: User, address=None) -> Operation:
    vm = _lock(backup.disc.virtual_machine)
    _require_live(vm)
    volumes = [{"pool": backup.storage_pool.libvirt_pool, "volume": backup.volume}]
    op = start_operation(vm, Kind.DISC_DELETE, actor=actor, params={"volumes": volumes})
    backup.delete()
    return op


_TZ_OFFSETS = {"GMT": 0, "UTC": 0, "Z": 0, "BST": 1, "CET": 1, "CEST": 2}
_TZ_OFFSETS |= {"EST": -5, "EDT": -4, "CST": -6, "CDT": -5, "PST": -8, "PDT": -7}


def parse_start_at(text: str, now: datetime | None = None) -> datetime:
    """Read a schedule start as the BigV client sends it: `00:00`, or
    `2026-12-04 00:00:00 GMT`, or ISO 8601. A bare time means the next such
    time (UTC). An unknown zone abbreviation is taken as UTC: the client
    writes the user's local abbreviation and the exact hour matters less than
    accepting the schedule."""
    now = now or timezone.now()
    text = (text or "").strip()
    offset = 0
    parts = text.rsplit(" ", 1)
    if len(parts) == 2 and parts[1].isalpha():
        text, offset = parts[0], _TZ_OFFSETS.get(parts[1].upper(), 0)
    for fmt in ("%H:%M", "%H:%M:%S"):
        try:
            t = datetime.strptime(text, fmt).time()
        except ValueError:
            continue
        start = datetime.combine(now.date(), t, tzinfo=UTC)
        return start if start >= now else start + timedelta(days=1)
    try:
        start = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise invalid(
            "start_at", "must be a time like 00:00 or 2026-12-04 00:00:00"
        ) from None
    if start.tzinfo is None:
        start = start.replace(tzinfo=UTC) - timedelta(hours=offset)
    return start


def _new_schedule(disc: Disc, spec: dict) -> BackupSchedule:
    start = parse_start_at(spec.get("start_at", "00:00"))
    interval = timedelta(seconds=spec["interval_seconds"])
    next_run = start
    now = timezone.now()
    if next_run < now:
        periods = (now - next_run) // interval + 1
        next_run = next_run + periods * interval
    return BackupSchedule.objects.create(
        disc=disc,
        start_at=start,
        interval_seconds=spec["interval_seconds"],
        capacity=spec.get("capacity", 1),
        next_run_at=next_run,
    )


@transaction.atomic
def create_backup_schedule(disc: Disc, spec: dict, *, actor: User) -> BackupSchedule:
    vm = _lock(disc.virtual_machine)
    _require_live(vm)
    return _new_schedule(disc, spec)


@transaction.atomic
def delete_backup_schedule(schedule: BackupSchedule, *, actor: User) -> None:
    _require_live(_lock(schedule.disc.virtual_machine))
    schedule.delete()


# Addresses --------------------------------------------------------------------


@transaction.atomic
def create_ips(
    nic: NetworkInterface, spec: dict, *, actor: User, address=None
) -> list[IpAddress]:
    """Extra addresses for a NIC, routed via its primary address of the same
    family (or its primary IPv4 when it has none)."""
    vm = _lock(nic.virtual_machine)
    _require_live(vm)
    via = addressing.primary(nic, spec["family"]) or addressing.primary(nic, "ipv4")
    try:
        ips = addressing.allocate(
            nic,
            spec["family"],
            count=spec["addresses"],
            contiguous=spec["contiguous"],
            routed_via=via,
            reason=spec.get("reason", ""),
            zone=vm.zone_name,
        )
    except addressing.NoFreeAddress as exc:
        raise invalid("addresses", str(exc)) from None
    _audit(
        vm,
        "ips_added",
        actor=actor,
        address=address,
        ips=[ip.address for ip in ips],
    )
    return ips


@transaction.atomic
def set_rdns(ip: IpAddress, rdns: str, *, actor: User, address=None) -> IpAddress:
    ip = IpAddress.objects.select_for_update().get(pk=ip.pk)
    ip.rdns = rdns
    ip.save(update_fields=["rdns"])
    return ip


@transaction.atomic
def swap_ips(
    vm1: VirtualMachine,
    vm2: VirtualMachine,
    *,
    move_additional: bool,
    actor: User,
    address=None,
) -> None:
    """Swap the primary addresses of two machines' first NICs (and their extra
    addresses when asked). Extra addresses that stay follow the NIC's new
    primary address."""
    if vm1.pk == vm2.pk:
        raise invalid("virtual_machine_2_id", "must be another machine")
    first, second = sorted((vm1, vm2), key=lambda v: v.pk)
    vm1, vm2 = _lock(first), _lock(second)
    for vm in (vm1, vm2):
        _require_live(vm)
    nic1, nic2 = (vm.network_interfaces.order_by("id").first() for vm in (vm1, vm2))
    if nic1 is None or nic2 is None:
        raise invalid("virtual_machine_id", "both machines need a network interface")
    if nic1.vlan_id != nic2.vlan_id:
        raise invalid("virtual_machine_id", "both machines must be on the same VLAN")
    moving = [list(_swappable(nic, move_additional)) for nic in (nic1, nic2)]
    for ips, target in ((moving[0], nic2), (moving[1], nic1)):
        IpAddress.objects.filter(pk__in=[ip.pk for ip in ips]).update(nic=target)
    for nic in (nic1, nic2):
        _reroute_extras(nic)
    for vm, other in ((vm1, vm2), (vm2, vm1)):
        _audit(vm, "ips_swapped", actor=actor, address=address, other=other.pk)


def _swappable(nic: NetworkInterface, move_additional: bool):
    ips = nic.ips.all()
    return ips if move_additional else ips.filter(routed_via__isnull=True)


def _reroute_extras(nic: NetworkInterface) -> None:
    for extra in nic.ips.filter(routed_via__isnull=False):
        via = addressing.primary(nic, extra.family) or addressing.primary(nic, "ipv4")
        if via is not None and via.pk != extra.routed_via_id:
            extra.routed_via = via
            extra.save(update_fields=["routed_via"])
