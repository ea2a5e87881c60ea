"""A real Celery worker killed in the middle of an operation.

The workers run as subprocesses on Redis and on the test database, with a
three-second lease. The first is SIGKILLed while the simulated head is slowly
powering the machine on; a second worker, with beat running the lease reaper,
must then finish the operation: retried and succeeded, never left running,
and the machine's recorded power the same as the head's.
"""

import os
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest
import redis
from django.db import connection

from machines.hypervisors.base import PowerState
from machines.models import Operation
from panel.celery import app
from tests.machines.simulated_cluster import make_cluster, make_machine

REDIS_URL = os.environ.get("CORRAL_TEST_REDIS_URL", "redis://127.0.0.1:6379/11")
ROOT = Path(__file__).resolve().parents[2]
LEASE_SECONDS = 3
# Each slow step of the simulated head takes this long.
SLOW_SECONDS = 3
DEADLINE_SECONDS = 60


def _database_url() -> str:
    db = connection.settings_dict
    password = f":{db['PASSWORD']}" if db.get("PASSWORD") else ""
    host = db.get("HOST") or "127.0.0.1"
    port = db.get("PORT") or 5432
    return f"postgresql://{db['USER']}{password}@{host}:{port}/{db['NAME']}"


def _worker(tmp_path: Path, name: str, queue: str, beat: bool = False):
    env = {
        **os.environ,
        "DATABASE_URL": _database_url(),
        "CELERY_BROKER_URL": REDIS_URL,
        "CORRAL_VAR_DIR": str(tmp_path / "var"),
        "CORRAL_OPERATION_LEASE_SECONDS": str(LEASE_SECONDS),
        "CORRAL_OPERATION_RETRY_SECONDS": "0",
        "CORRAL_REAP_SECONDS": "1",
        "CORRAL_WORKER_ALL_HEADS": "false",
    }
    command = [
        sys.executable,
        "-m",
        "celery",
        "-A",
        "panel",
        "worker",
        "--pool=solo",
        "--without-gossip",
        "--without-mingle",
        "--loglevel=INFO",
        f"--hostname={name}@%h",
        "-Q",
        f"celery,{queue}",
    ]
    if beat:
        command += ["-B", f"--schedule={tmp_path / 'beat-schedule'}"]
    log = open(tmp_path / f"{name}.log", "w")  # noqa: SIM115 - closed with the process
    process = subprocess.Popen(  # noqa: S603 - our own interpreter and arguments
        command, cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT,
        start_new_session=True,
    )  # fmt: skip
    process.log = log
    return process


def _stop(process, sig=signal.SIGTERM) -> None:
    if process.poll() is None:
        os.killpg(process.pid, sig)
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()
    process.log.close()


def _wait_for(condition, what: str, tmp_path: Path):
    deadline = time.monotonic() + DEADLINE_SECONDS
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(0.1)
    logs = "\n".join(p.read_text()[-3000:] for p in tmp_path.glob("*.log"))
    pytest.fail(f"timed out waiting for {what}\n{logs}")


@pytest.mark.django_db(transaction=True, serialized_rollback=True)
def test_an_operation_survives_its_worker_being_killed(tmp_path):
    label = f"fault-{uuid.uuid4().hex[:8]}"
    cluster = make_cluster(tmp_path / "heads", label=label, delay=SLOW_SECONDS)
    vm = make_machine(cluster, desired_power_on=True)
    op = Operation.objects.create(
        kind="create",
        virtual_machine=vm,
        head=cluster.head,
        params={"power_on": True, "reimage": {"distribution": "none"}},
    )
    queue = cluster.head.queue
    broker = redis.Redis.from_url(REDIS_URL)
    uuid_ = str(vm.uuid)

    first = _worker(tmp_path, "first", queue)
    second = None
    try:
        with app.connection_for_write(REDIS_URL) as conn:
            app.send_task(
                "machines.tasks.run_operation",
                args=[op.pk],
                queue=queue,
                connection=conn,
            )

        # Killed while the head powers the defined machine on.
        def powering_on():
            op.refresh_from_db()
            defined = cluster.driver.state(uuid_) is PowerState.SHUT_OFF
            return op.status == "running" and defined

        _wait_for(powering_on, "the first attempt to reach the power-on", tmp_path)
        _stop(first, signal.SIGKILL)
        op.refresh_from_db()
        assert (op.status, op.attempts) == ("running", 1)

        second = _worker(tmp_path, "second", queue, beat=True)

        def finished():
            op.refresh_from_db()
            return op.status in ("succeeded", "failed")

        _wait_for(finished, "the operation to finish", tmp_path)
    finally:
        _stop(first, signal.SIGKILL)
        if second is not None:
            _stop(second)
        broker.delete(queue)

    vm.refresh_from_db()
    assert (op.status, op.attempts, op.progress) == ("succeeded", 2, 100)
    assert op.lease_expires_at is None
    assert vm.power_on is True
    assert cluster.driver.state(uuid_) is PowerState.RUNNING
