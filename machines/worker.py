"""Carrying out operations on a worker, and reaping those whose worker died.

`execute(operation_id)` runs one attempt of an operation: it claims the row
under a lease, does the work through the driver of the machine's head (outside
any database transaction, renewing the lease as it goes), and records the
outcome. A transient hypervisor error sends the operation back to its queue
with a growing delay, up to CORRAL_OPERATION_MAX_ATTEMPTS attempts; any other
error fails it with a message saying why. An operation is never left running:
if its worker dies, `reap_expired_leases` retries or fails it once the lease
lapses.

Params each kind expects (`Operation.params`), set by whoever starts it:

- create: `{"power_on": bool, "reimage": IMAGE | null}` (`power_on_after` is
  read as `power_on`; IMAGE may also be given flat). The machine's discs,
  NICs and head come from the database. Powers on once built when `power_on`.
- image: IMAGE plus `"power_on"` (default true). Reinstalls the first disc
  and ends powered on with autoreboot off.
  IMAGE is `{"distribution": name, "root_password_hash": crypt(3) hash
  (the API hashes the password on arrival; a plain `root_password` is also
  read), "ssh_public_key": str, "firstboot_script": str}`. Neither is ever
  logged, and both are removed from params as soon as the image is written
  (and when the operation ends in any way). Distribution `none` builds blank discs.
- power_on, power_off, reboot: `{}`. power_on and reboot define the domain
  from the database first, so spec changes made while it ran take effect.
  power_off pulls the plug; reboot is power_off then power_on.
- signal: `{"signal": "powerdown" | "reset" | "sendkey", "data":
  "ctrl-alt-delete"}`; powerdown also takes `"grace_seconds"` (default
  CORRAL_POWERDOWN_GRACE_SECONDS). A guest that ignores the powerdown is no
  error: the operation succeeds with `result.note` saying so and the machine
  stays on.
- resize: the disc (`Operation.disc` or `"disc_id"`) and `{"to": MiB}` (or
  `"size"`). Grows live when the machine runs.
- disc_create: the disc (`Operation.disc` or `"disc_id"`): creates its volume
  and attaches it.
- disc_delete: `{"volumes": [{"pool": libvirt pool, "volume": name}, ...]}`
  and/or a disc row still present (`Operation.disc`, deleted here). The
  domain is redefined without it.
- backup: the disc and `{"backup_id": n, "keep": k}`; copies the disc into the
  backup's pool and marks it complete; with `keep`, only the k newest
  scheduled backups of the disc remain.
- restore: the disc and `{"backup_id": n}`; the machine must be off.
- purge: `{"uuid": str, "volumes": [...]}` when the machine's row is already
  gone; otherwise the row's domain and volumes, and the row goes too.
- reconcile: `{}`: defines the domain from the database and powers it on if
  autoreboot wants it on.

Every kind is safe to run twice: driver calls are idempotent, and the steps
that are not (imaging) are recorded in `result.done` and skipped on a retry.
"""

from __future__ import annotations

import contextlib
import logging
import threading
from collections.abc import Iterator
from datetime import timedelta
from typing import Any

from django.conf import settings
from django.db import DatabaseError, connection, connections, transaction
from django.db.models import Q
from django.utils import timezone

from machines import executors
from machines.executors import Job, Outcome, driver_for_head, forget_secrets
from machines.hypervisors.base import (
    Driver,
    HypervisorError,
    PowerState,
    TransientHypervisorError,
)
from machines.models import Disc, Operation, VirtualMachine
from machines.operations import enqueue

logger = logging.getLogger(__name__)

Status = Operation.Status


class LeaseLost(Exception):
    """Another worker (or the reaper) has taken the operation over."""


def lease_seconds() -> int:
    return settings.CORRAL_OPERATION_LEASE_SECONDS


def retry_delay(attempt: int) -> int:
    base = settings.CORRAL_OPERATION_RETRY_SECONDS
    return min(base * 2 ** max(attempt - 1, 0), base * 10)


def execute(operation_id: int) -> None:
    """Run one attempt of an operation, if it is there and nobody holds it."""
    op = _claim(operation_id)
    if op is None:
        return

    lease = Lease(op.pk, op.attempts)
    driver: Driver | None = None
    try:
        with lease.kept_alive():
            driver = driver_for_head(_head(op))
            job = Job(op, op.virtual_machine, driver, lease.report)
            job.done = list(op.result.get("done", []))
            outcome = executors.run(job)
    except LeaseLost:
        logger.warning("operation %s: lease lost; another attempt owns it", op.pk)
    except TransientHypervisorError as exc:
        _retry_or_fail(op, driver, str(exc))
    except HypervisorError as exc:
        _fail(op, driver, str(exc))
    except Exception as exc:
        logger.exception("operation %s (%s) crashed", op.pk, op.kind)
        _fail(op, driver, f"internal error ({type(exc).__name__}); see the logs")
    else:
        _succeed(op, job.machine, outcome)
    finally:
        if driver is not None:
            driver.close()


def _head(op: Operation):
    head = op.head or (op.virtual_machine.head if op.virtual_machine else None)
    if head is None:
        raise executors.OperationError("the machine has no head to run on")
    return head


# Claiming.


def _claim(operation_id: int) -> Operation | None:
    now = timezone.now()
    with transaction.atomic():
        op = (
            Operation.objects.select_for_update(of=("self",))
            .filter(pk=operation_id)
            .select_related("virtual_machine__group__account", "head")
            .first()
        )
        if op is None or op.status in (Status.SUCCEEDED, Status.FAILED):
            return None
        if op.status == Status.RUNNING:
            if op.lease_expires_at is not None and op.lease_expires_at > now:
                return None
            # Its worker died without the reaper noticing yet.
            if op.attempts >= settings.CORRAL_OPERATION_MAX_ATTEMPTS:
                _give_up(op, "the worker was lost")
                return None

        op.status = Status.RUNNING
        op.attempts += 1
        op.started_at = op.started_at or now
        op.lease_expires_at = now + timedelta(seconds=lease_seconds())
        op.save(update_fields=["status", "attempts", "started_at", "lease_expires_at"])
    logger.info(
        "operation %s (%s) on vm %s: attempt %s",
        op.pk,
        op.kind,
        op.virtual_machine_id,
        op.attempts,
    )
    return op


class Lease:
    """The claim of one attempt on its operation, renewed while it works.

    A thread renews it while the driver works, however long a call takes.
    Inside an outer transaction (eager mode, tests) another connection could
    not see the row, so the lease is only renewed when progress is reported.
    """

    def __init__(self, operation_id: int, attempt: int) -> None:
        self.operation_id = operation_id
        self.attempt = attempt
        self.lost = False

    def renew(self, **fields: Any) -> None:
        expires = timezone.now() + timedelta(seconds=lease_seconds())
        updated = self._mine().update(lease_expires_at=expires, **fields)
        if not updated:
            self.lost = True
            raise LeaseLost

    def report(self, progress: int, done: list[str], params: dict) -> None:
        """Record progress, the steps done and the params as they stand (the
        password gone once used), renewing the lease."""
        if self.lost:
            raise LeaseLost
        self.renew(progress=progress, result={"done": done}, params=params)

    def _mine(self):
        return Operation.objects.filter(
            pk=self.operation_id, status=Status.RUNNING, attempts=self.attempt
        )

    @contextlib.contextmanager
    def kept_alive(self) -> Iterator[None]:
        if connection.in_atomic_block:
            yield
            return
        stop = threading.Event()
        beat = threading.Thread(target=self._beat, args=(stop,), daemon=True)
        beat.start()
        try:
            yield
        finally:
            stop.set()
            beat.join()

    def _beat(self, stop: threading.Event) -> None:
        interval = max(lease_seconds() / 3, 0.2)
        try:
            while not stop.wait(interval):
                try:
                    self.renew()
                except LeaseLost:
                    return
                except DatabaseError:
                    logger.warning(
                        "operation %s: lease renewal failed", self.operation_id
                    )
        finally:
            connections.close_all()


# Outcomes.


def _succeed(op: Operation, vm: VirtualMachine | None, outcome: Outcome) -> None:
    fields = outcome.machine if vm is not None else {}
    _finish(op, Status.SUCCEEDED, result=outcome.result, machine=fields)


def _fail(op: Operation, driver: Driver | None, error: str) -> None:
    _finish(
        op,
        Status.FAILED,
        error=error,
        machine=_actual_power(op, driver),
        disc_size=_actual_disc_size(op, driver),
    )


def _retry_or_fail(op: Operation, driver: Driver | None, error: str) -> None:
    if op.attempts >= settings.CORRAL_OPERATION_MAX_ATTEMPTS:
        _fail(op, driver, f"gave up after {op.attempts} attempts: {error}")
        return

    delay = retry_delay(op.attempts)
    # Until a worker takes the retry, the lease marks when the reaper should
    # resend it, in case the message is lost.
    not_after = timezone.now() + timedelta(seconds=delay + lease_seconds())
    with transaction.atomic():
        updated = Operation.objects.filter(
            pk=op.pk, status=Status.RUNNING, attempts=op.attempts
        ).update(
            status=Status.QUEUED,
            lease_expires_at=not_after,
            error=f"attempt {op.attempts} failed, retrying in {delay} s: {error}",
        )
        if updated:
            transaction.on_commit(lambda: enqueue(op.pk, countdown=delay))
    logger.warning(
        "operation %s (%s): transient error, retry in %s s: %s",
        op.pk,
        op.kind,
        delay,
        error,
    )


def _actual_power(op: Operation, driver: Driver | None) -> dict[str, Any]:
    """The machine's actual power, so a failure leaves the row truthful."""
    vm = op.virtual_machine
    if vm is None or driver is None:
        return {}
    try:
        state = driver.state(str(vm.uuid))
    except HypervisorError:
        return {}
    return {"power_on": state is PowerState.RUNNING}


def _actual_disc_size(op: Operation, driver: Driver | None) -> int | None:
    """After a failed resize, the size the disc really has: the API recorded
    the new size when it started the operation."""
    if op.kind != Operation.Kind.RESIZE or op.disc_id is None:
        return None
    disc = Disc.objects.select_related("storage_pool").filter(pk=op.disc_id).first()
    if disc is None:
        return None
    if driver is not None:
        try:
            return driver.volume_size_mib(disc.storage_pool.libvirt_pool, disc.volume)
        except HypervisorError:
            pass
    return op.params.get("from")


def _finish(
    op: Operation,
    status: str,
    *,
    result: dict | None = None,
    error: str = "",
    machine: dict | None = None,
    disc_size: int | None = None,
) -> None:
    with transaction.atomic():
        current = (
            Operation.objects.select_for_update()
            .filter(pk=op.pk, status=Status.RUNNING, attempts=op.attempts)
            .first()
        )
        if current is None:
            logger.warning("operation %s: taken over before it finished", op.pk)
            return
        if machine and current.virtual_machine_id is not None:
            VirtualMachine.objects.filter(pk=current.virtual_machine_id).update(
                **machine
            )
        if disc_size:
            Disc.objects.filter(pk=current.disc_id).update(size=disc_size)
        _close(current, status, result=result, error=error)
    logger.info("operation %s (%s): %s %s", op.pk, op.kind, status, error)


def _close(op: Operation, status: str, *, result=None, error: str = "") -> None:
    op.status = status
    op.error = error
    op.finished_at = timezone.now()
    op.lease_expires_at = None
    if status == Status.SUCCEEDED:
        op.progress = 100
    if result is not None:
        op.result = result
    forget_secrets(op.params)
    op.save()


def _give_up(op: Operation, why: str) -> None:
    _close(op, Status.FAILED, error=f"{why} during attempt {op.attempts}; gave up")
    logger.warning("operation %s (%s): %s; failed", op.pk, op.kind, why)


# Reaping.


def reap_expired_leases() -> dict[str, int]:
    """Retry or fail running operations whose worker stopped renewing their
    lease, and resend queued ones whose message seems lost."""
    now = timezone.now()
    expired = Operation.objects.filter(status=Status.RUNNING).filter(
        Q(lease_expires_at__lt=now) | Q(lease_expires_at=None)
    )
    reaped = sum(_reap(pk, now) for pk in expired.values_list("pk", flat=True))
    resent = _resend_stale(now)
    return {"reaped": reaped, "resent": resent}


def _reap(operation_id: int, now) -> int:
    op = Operation.objects.select_related("virtual_machine", "head").get(
        pk=operation_id
    )
    machine = _power_from_head(op)

    with transaction.atomic():
        op = (
            Operation.objects.select_for_update()
            .filter(pk=operation_id, status=Status.RUNNING)
            .filter(Q(lease_expires_at__lt=now) | Q(lease_expires_at=None))
            .first()
        )
        if op is None:
            return 0
        if machine and op.virtual_machine_id is not None:
            VirtualMachine.objects.filter(pk=op.virtual_machine_id).update(**machine)
        if op.attempts >= settings.CORRAL_OPERATION_MAX_ATTEMPTS:
            _give_up(op, "the worker was lost")
            return 1

        op.status = Status.QUEUED
        op.error = f"the worker was lost during attempt {op.attempts}; retrying"
        op.lease_expires_at = now + timedelta(seconds=lease_seconds())
        op.save(update_fields=["status", "error", "lease_expires_at"])
        transaction.on_commit(lambda: enqueue(operation_id))
    logger.warning("operation %s (%s): worker lost; requeued", op.pk, op.kind)
    return 1


def _power_from_head(op: Operation) -> dict[str, Any]:
    if op.virtual_machine is None:
        return {}
    head = op.head or op.virtual_machine.head
    if head is None:
        return {}
    try:
        driver = driver_for_head(head)
    except HypervisorError:
        return {}
    try:
        return _actual_power(op, driver)
    finally:
        driver.close()


def _resend_stale(now) -> int:
    cutoff = now - timedelta(seconds=lease_seconds())
    stale = Operation.objects.filter(status=Status.QUEUED).filter(
        Q(lease_expires_at__lt=now) | Q(lease_expires_at=None, created_at__lt=cutoff)
    )
    resent = 0
    for pk in stale.values_list("pk", flat=True):
        with transaction.atomic():
            updated = (
                Operation.objects.filter(pk=pk, status=Status.QUEUED)
                .filter(Q(lease_expires_at__lt=now) | Q(lease_expires_at=None))
                .update(lease_expires_at=now + timedelta(seconds=lease_seconds()))
            )
            if updated:
                transaction.on_commit(lambda pk=pk: enqueue(pk))
                resent += 1
    return resent
