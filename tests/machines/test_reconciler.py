"""The periodic tasks: the reconciler, the lease reaper and backup schedules."""

from datetime import timedelta

import pytest
from django.utils import timezone

from machines.hypervisors.base import PowerState
from machines.models import Backup, BackupSchedule, Operation
from machines.reconciler import reconcile, run_backup_schedules
from machines.worker import reap_expired_leases
from tests.machines.simulated_cluster import (
    built,
    prepared_cluster,
    run,
    start,
)


@pytest.fixture
def cluster(tmp_path, settings, db):
    return prepared_cluster(tmp_path, settings)


def _records():
    return Operation.objects.filter(kind="reconcile", virtual_machine=None)


# Reconciling.


def test_it_restarts_an_autoreboot_machine_that_went_off(cluster):
    vm = built(cluster, autoreboot_on=True)
    cluster.driver.stop(str(vm.uuid))  # Behind Corral's back.

    report = reconcile()

    vm.refresh_from_db()
    restart = vm.operations.get(kind="power_on")
    assert vm.power_on is False
    assert restart.status == "queued"
    assert restart.params == {"reason": "autoreboot"}
    assert report["repaired"] == [f"{vm.hostname}: restarted (autoreboot)"]

    run(restart)

    vm.refresh_from_db()
    assert vm.power_on is True
    assert cluster.driver.state(str(vm.uuid)) is PowerState.RUNNING


def test_it_leaves_off_a_machine_without_autoreboot_whose_guest_shut_down(cluster):
    vm = built(cluster)
    cluster.driver.stop(str(vm.uuid))

    reconcile()

    vm.refresh_from_db()
    assert (vm.power_on, vm.desired_power_on) == (False, False)
    assert not vm.operations.filter(kind="power_on").exists()


def test_it_reports_a_machine_missing_from_its_head_once(cluster):
    vm = built(cluster)
    cluster.driver.stop(str(vm.uuid))
    cluster.driver.undefine(str(vm.uuid))

    reconcile()
    reconcile()

    record = _records().get()
    assert record.status == "failed"
    assert record.error == f"{vm.hostname}: not defined on its head"


def test_it_reports_a_machine_running_against_its_wish(cluster):
    vm = built(cluster, power_on=False)
    cluster.driver.start(str(vm.uuid))

    reconcile()

    vm.refresh_from_db()
    assert vm.power_on is True
    assert _records().get().error == f"{vm.hostname}: running, but asked to be off"
    assert cluster.driver.state(str(vm.uuid)) is PowerState.RUNNING


def test_it_leaves_machines_that_an_operation_holds_alone(cluster):
    vm = built(cluster, autoreboot_on=True)
    cluster.driver.stop(str(vm.uuid))
    held = start(vm, "reboot")

    reconcile()

    vm.refresh_from_db()
    assert vm.power_on is True
    assert list(vm.operations.filter(status="queued")) == [held]


def test_it_reports_an_unreachable_head(cluster):
    vm = built(cluster)
    # Nothing listens there.
    cluster.head.uri = "qemu+tcp://127.0.0.1:1/system"
    cluster.head.save()

    reconcile()

    vm.refresh_from_db()
    assert vm.power_on is True
    assert _records().get().error.startswith("head head1: unreachable")


# Reaping expired leases.


def _lost(op, attempts):
    """The state a worker leaves behind when it dies mid-operation."""
    Operation.objects.filter(pk=op.pk).update(
        status="running",
        attempts=attempts,
        started_at=timezone.now(),
        lease_expires_at=timezone.now() - timedelta(seconds=1),
    )


def test_it_requeues_an_operation_whose_worker_died(cluster):
    vm = built(cluster, power_on=False)
    op = start(vm, "power_on")
    _lost(op, attempts=1)
    cluster.driver.start(str(vm.uuid))  # It got that far.

    assert reap_expired_leases() == {"reaped": 1, "resent": 0}

    op.refresh_from_db()
    vm.refresh_from_db()
    assert op.status == "queued"
    assert op.error == "the worker was lost during attempt 1; retrying"
    assert vm.power_on is True

    op = run(op)

    assert (op.status, op.attempts) == ("succeeded", 2)


def test_it_fails_an_operation_whose_last_attempt_was_lost(cluster, settings):
    vm = built(cluster)
    op = start(vm, "power_off")
    _lost(op, attempts=settings.CORRAL_OPERATION_MAX_ATTEMPTS)

    reap_expired_leases()

    op.refresh_from_db()
    vm.refresh_from_db()
    assert op.status == "failed"
    assert op.error == "the worker was lost during attempt 3; gave up"
    assert op.finished_at is not None and op.lease_expires_at is None
    assert vm.power_on is True
    assert cluster.driver.state(str(vm.uuid)) is PowerState.RUNNING


def test_it_leaves_live_leases_alone(cluster):
    vm = built(cluster)
    op = start(vm, "power_off")
    lease = timezone.now() + timedelta(seconds=60)
    Operation.objects.filter(pk=op.pk).update(
        status="running", attempts=1, lease_expires_at=lease
    )

    assert reap_expired_leases() == {"reaped": 0, "resent": 0}

    op.refresh_from_db()
    assert (op.status, op.lease_expires_at) == ("running", lease)


def test_it_resends_queued_operations_whose_message_was_lost(cluster, settings):
    vm = built(cluster)
    op = start(vm, "power_off")
    old = timezone.now() - timedelta(seconds=settings.CORRAL_OPERATION_LEASE_SECONDS)
    Operation.objects.filter(pk=op.pk).update(created_at=old - timedelta(seconds=1))
    fresh = start(built(cluster), "power_off")

    assert reap_expired_leases() == {"reaped": 0, "resent": 1}

    op.refresh_from_db()
    fresh.refresh_from_db()
    assert op.lease_expires_at > timezone.now()
    assert fresh.lease_expires_at is None


# Backup schedules.


def _schedule(vm, capacity=2, due=True):
    now = timezone.now()
    return BackupSchedule.objects.create(
        disc=vm.discs.get(),
        start_at=now - timedelta(days=3),
        interval_seconds=86400,
        capacity=capacity,
        next_run_at=now - timedelta(hours=1) if due else now + timedelta(hours=1),
    )


def test_it_starts_backups_that_are_due_and_moves_their_schedule_on(cluster):
    vm = built(cluster)
    schedule = _schedule(vm)
    later = _schedule(built(cluster), due=False)
    was = schedule.next_run_at

    assert run_backup_schedules() == 1

    schedule.refresh_from_db()
    op = vm.operations.get(kind="backup")
    copy = Backup.objects.get()
    assert schedule.next_run_at == was + timedelta(days=1)
    assert (copy.manual, copy.storage_pool) == (False, cluster.backup_pool)
    assert op.params == {"backup_id": copy.pk, "keep": 2, "schedule_id": schedule.pk}
    assert not later.disc.backups.exists()

    assert run(op).status == "succeeded"
    copy.refresh_from_db()
    assert copy.complete is True


def test_a_schedule_of_capacity_zero_keeps_one_backup(cluster):
    vm = built(cluster)
    schedule = _schedule(vm, capacity=0)
    run_backup_schedules()
    run(vm.operations.get(kind="backup"))

    schedule.next_run_at = timezone.now() - timedelta(seconds=1)
    schedule.save()
    run_backup_schedules()
    run(vm.operations.filter(kind="backup").first())

    assert vm.discs.get().backups.count() == 1


def test_a_due_backup_waits_while_the_machine_is_busy(cluster):
    vm = built(cluster)
    schedule = _schedule(vm)
    was = schedule.next_run_at
    start(vm, "reboot")

    assert run_backup_schedules() == 0

    schedule.refresh_from_db()
    assert schedule.next_run_at == was
    assert not Backup.objects.exists()
