"""Celery tasks. Each takes ids, re-reads and locks its rows, and is safe to
run twice."""

from celery import shared_task


@shared_task(acks_late=True)
def run_operation(operation_id: int) -> None:
    from machines.worker import execute

    execute(operation_id)


@shared_task
def reap_expired_leases() -> dict:
    from machines import worker

    return worker.reap_expired_leases()


@shared_task
def reconcile() -> dict:
    from machines import reconciler

    return reconciler.reconcile()


@shared_task
def run_backup_schedules() -> int:
    from machines import reconciler

    return reconciler.run_backup_schedules()


@shared_task
def purge_expired_deletions() -> int:
    from machines import actions

    return actions.purge_expired_deletions()
