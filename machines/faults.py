"""Planned hypervisor failures, for tests and failure drills.

With CORRAL_FAULT_INJECTION on, the driver of head LABEL is wrapped so that
the calls planned in `<CORRAL_FAULT_DIR>/LABEL.json` fail with a transient
hypervisor error. The plan maps driver method names to how many of their next
calls fail, e.g. `{"start": 2}`; each failure uses one up. The file is shared
by every process, so a plan also reaches a separate Celery worker.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from django.conf import settings

from machines.hypervisors.base import Driver, TransientHypervisorError


def plan_path(head_label: str) -> Path:
    return Path(settings.CORRAL_FAULT_DIR) / f"{head_label}.json"


def plan_failures(head_label: str, **counts: int) -> None:
    """Make the next `count` calls of each named driver method fail."""
    with _plan(head_label) as plan:
        plan.update(counts)


def with_faults(driver: Driver, head_label: str) -> Driver:
    if not settings.CORRAL_FAULT_INJECTION:
        return driver
    return FaultyDriver(driver, head_label)  # type: ignore[return-value]


class FaultyDriver:
    """Delegates to a driver, failing the calls its head's plan names."""

    def __init__(self, driver: Driver, head_label: str) -> None:
        self._driver = driver
        self._head = head_label

    def __getattr__(self, name: str) -> Any:
        attribute = getattr(self._driver, name)
        if not callable(attribute) or name.startswith("_"):
            return attribute

        def call(*args, **kwargs):
            if _take(self._head, name):
                raise TransientHypervisorError(f"planned failure of {name}")
            return attribute(*args, **kwargs)

        return call


def _take(head_label: str, method: str) -> bool:
    if not plan_path(head_label).exists():
        return False
    with _plan(head_label) as plan:
        left = plan.get(method, 0)
        if left <= 0:
            return False
        plan[method] = left - 1
        return True


@contextlib.contextmanager
def _plan(head_label: str) -> Iterator[dict[str, int]]:
    path = plan_path(head_label)
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path.with_suffix(".lock"), "a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            plan = json.loads(path.read_text()) if path.exists() else {}
            yield plan
            path.write_text(json.dumps(plan))
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)
