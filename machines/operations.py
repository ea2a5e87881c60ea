"""Recording long-running work: one Operation row per change, at most one
unfinished per machine, handed to a Celery worker once the change commits.

Callers start an operation inside the transaction that records the change
(the desired state), so either both are written or neither is.
"""

from __future__ import annotations

from django.db import IntegrityError, transaction

from machines.models import Disc, Operation, VirtualMachine


class OperationConflict(Exception):
    """Another operation holds the machine."""

    def __init__(self, holder: Operation):
        super().__init__(f"{holder.kind} operation {holder.pk} is {holder.status}")
        self.holder = holder


def active_operation(vm: VirtualMachine) -> Operation | None:
    return (
        Operation.objects.filter(virtual_machine=vm, status__in=Operation.ACTIVE)
        .order_by("id")
        .first()
    )


def start_operation(
    vm: VirtualMachine,
    kind: str,
    *,
    actor=None,
    params: dict | None = None,
    disc: Disc | None = None,
) -> Operation:
    """Record an operation on `vm` and enqueue it when the transaction commits.

    Must run inside a transaction. Raises OperationConflict naming the
    operation that already holds the machine.
    """
    if not transaction.get_connection().in_atomic_block:
        raise RuntimeError("start_operation needs the caller's transaction")
    VirtualMachine.objects.select_for_update().filter(pk=vm.pk).first()
    holder = active_operation(vm)
    if holder is not None:
        raise OperationConflict(holder)
    try:
        with transaction.atomic():
            op = Operation.objects.create(
                kind=kind,
                virtual_machine=vm,
                disc=disc,
                head=vm.head,
                actor=actor if actor is not None and actor.pk else None,
                params=params or {},
            )
    except IntegrityError:
        # The partial unique index caught a concurrent start.
        raise OperationConflict(active_operation(vm) or Operation(kind=kind)) from None
    transaction.on_commit(lambda: enqueue(op.pk))
    return op


def enqueue(operation_id: int, countdown: float | None = None) -> None:
    """Send the operation to the queue of its machine's head."""
    from machines.tasks import run_operation

    op = Operation.objects.select_related("head").get(pk=operation_id)
    queue = op.head.queue if op.head is not None else "celery"
    run_operation.apply_async(args=[operation_id], queue=queue, countdown=countdown)
