"""Periodic work: comparing desired and actual state, and scheduled backups.

`reconcile` reads the actual power of every machine that no operation holds,
records it, restarts machines with autoreboot that went off, and reports what
it cannot repair (a domain missing from its head, a machine running that was
asked to be off, an unreachable head) as a failed `reconcile` operation, once
per distinct set of problems.
"""

from __future__ import annotations

import logging
from datetime import datetime, timedelta
from itertools import groupby

from django.db import transaction
from django.utils import timezone

from machines.executors import driver_for_head
from machines.hypervisors.base import HypervisorError, PowerState
from machines.models import (
    Backup,
    BackupSchedule,
    Operation,
    StoragePool,
    VirtualMachine,
)
from machines.operations import OperationConflict, active_operation, start_operation

logger = logging.getLogger(__name__)

Kind = Operation.Kind
Status = Operation.Status


def reconcile() -> dict[str, list]:
    busy = Operation.objects.filter(
        status__in=Operation.ACTIVE, virtual_machine__isnull=False
    ).values("virtual_machine")
    machines = (
        VirtualMachine.objects.filter(deleted=False, head__isnull=False)
        .exclude(pk__in=busy)
        .select_related("head")
        .order_by("head_id", "id")
    )
    report: dict[str, list] = {"drift": [], "repaired": []}
    for head, group in groupby(machines, key=lambda vm: vm.head):
        _reconcile_head(head, list(group), report)
    _record(report)
    return report


def _reconcile_head(head, machines: list[VirtualMachine], report: dict) -> None:
    try:
        driver = driver_for_head(head)
        states = {vm.pk: driver.state(str(vm.uuid)) for vm in machines}
    except HypervisorError as exc:
        report["drift"].append(f"head {head.label}: unreachable ({exc})")
        return
    try:
        for vm in machines:
            _reconcile_machine(vm, states[vm.pk], report)
    finally:
        driver.close()


def _reconcile_machine(vm: VirtualMachine, state: PowerState, report: dict) -> None:
    with transaction.atomic():
        vm = VirtualMachine.objects.select_for_update().get(pk=vm.pk)
        if active_operation(vm) is not None:
            return  # An operation started meanwhile; it owns the machine.

        if state is PowerState.ABSENT:
            report["drift"].append(f"{vm.hostname}: not defined on its head")
            return
        running = state is PowerState.RUNNING
        vm.power_on = running
        if running and not vm.desired_power_on:
            # Stopping it could lose work someone started by hand; say so.
            report["drift"].append(f"{vm.hostname}: running, but asked to be off")
        elif not running and vm.desired_power_on and vm.autoreboot_on:
            start_operation(vm, Kind.POWER_ON, params={"reason": "autoreboot"})
            report["repaired"].append(f"{vm.hostname}: restarted (autoreboot)")
        elif not running and vm.desired_power_on:
            # The guest shut itself down; without autoreboot it stays off.
            vm.desired_power_on = False
        vm.save(update_fields=["power_on", "desired_power_on"])


def _record(report: dict) -> None:
    for line in report["drift"]:
        logger.warning("reconcile: %s", line)
    for line in report["repaired"]:
        logger.info("reconcile: %s", line)
    if not report["drift"] and not report["repaired"]:
        return

    last = Operation.objects.filter(kind=Kind.RECONCILE, virtual_machine=None).first()
    repeated = last is not None and last.result.get("drift") == report["drift"]
    if repeated and not report["repaired"]:
        return  # Reported already; one record per distinct problem set.

    now = timezone.now()
    Operation.objects.create(
        kind=Kind.RECONCILE,
        status=Status.FAILED if report["drift"] else Status.SUCCEEDED,
        progress=100,
        result=report,
        error="; ".join(report["drift"]),
        started_at=now,
        finished_at=now,
    )


# Backup schedules.


def run_backup_schedules(now: datetime | None = None) -> int:
    """Start a backup for every schedule that is due; returns how many."""
    now = now or timezone.now()
    due = BackupSchedule.objects.filter(
        next_run_at__lte=now, disc__virtual_machine__deleted=False
    ).values_list("pk", flat=True)
    return sum(_run_schedule(pk, now) for pk in due)


def _run_schedule(schedule_id: int, now: datetime) -> int:
    with transaction.atomic():
        schedule = (
            BackupSchedule.objects.select_for_update()
            .select_related("disc__virtual_machine")
            .filter(pk=schedule_id, next_run_at__lte=now)
            .first()
        )
        if schedule is None:
            return 0
        disc = schedule.disc
        vm = disc.virtual_machine
        pool = _backup_pool(vm.zone_name)
        if pool is None:
            logger.warning("backup schedule %s: no backup pool", schedule.pk)
            return 0

        try:
            with transaction.atomic():
                copy = Backup.objects.create(
                    disc=disc,
                    # Unique per schedule and run, however fast runs come.
                    label=f"auto-{schedule.pk}-{schedule.next_run_at:%Y%m%d-%H%M%S}",
                    size=disc.size,
                    storage_pool=pool,
                    manual=False,
                )
                params = {
                    "backup_id": copy.pk,
                    "keep": max(schedule.capacity, 1),
                    "schedule_id": schedule.pk,
                }
                start_operation(vm, Kind.BACKUP, params=params, disc=disc)
        except OperationConflict as exc:
            # Busy now: the next run of this task tries again.
            logger.info("backup schedule %s waits: %s", schedule.pk, exc)
            return 0

        schedule.next_run_at = _next_run(schedule, now)
        schedule.save(update_fields=["next_run_at"])
    return 1


def _next_run(schedule: BackupSchedule, now: datetime) -> datetime:
    # Missed runs (the panel was down) are skipped, not caught up.
    interval = timedelta(seconds=max(schedule.interval_seconds, 1))
    missed = (now - schedule.next_run_at) // interval
    return schedule.next_run_at + (missed + 1) * interval


def _backup_pool(zone: str) -> StoragePool | None:
    pools = StoragePool.objects.filter(backup=True, tail__online=True)
    return pools.filter(zone=zone).first() or pools.first()
