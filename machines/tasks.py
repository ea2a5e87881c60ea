"""Celery tasks. Each takes ids, re-reads and locks its rows, and is safe to
run twice."""

from celery import shared_task


@shared_task(acks_late=True)
def run_operation(operation_id: int) -> None:
    from machines.worker import execute

    execute(operation_id)
