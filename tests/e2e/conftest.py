"""Browser tests: Debian's Chromium driven by Playwright against pytest-django's
live server, with a real Celery worker subprocess doing the operations.

The worker reads the live server's (test) database and a Redis broker of its
own (database 12 + the xdist worker number), and runs a simulated head whose
state lives in the test's temporary folder. Nothing is eager or mocked: a
machine created in the browser is built by the worker, and the page sees it
through its live polling.
"""

import os
import subprocess
import sys
import time
from pathlib import Path
from types import SimpleNamespace

import pytest
import redis
from django.db import connection

# Playwright's sync API runs an event loop in this thread; the ORM calls the
# tests make between browser steps are still synchronous.
os.environ.setdefault("DJANGO_ALLOW_ASYNC_UNSAFE", "true")

from playwright.sync_api import sync_playwright

from machines import actions
from machines.cluster import write_blank_qcow2
from machines.definitions import seed_defaults
from machines.models import Head, Operation
from panel.celery import app
from tests.factories import PASSWORD, make_infrastructure

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
ROOT = Path(__file__).resolve().parents[2]
SCREENSHOTS = ROOT / "docs" / "screenshots"
HEAD = "e2e"


def pytest_collection_modifyitems(items) -> None:
    """Browser tests run after every other database test of their process.

    Playwright's sync API switches greenlets, and Django's per-context
    connections then no longer carry the serialized copy of the migrated
    rows, so a `serialized_rollback` test after a browser test would start
    without its definitions. Run last, only browser tests follow one, and
    they seed what they need themselves (the `cluster` fixture).
    """
    browser = [item for item in items if "e2e" in item.path.parts]
    if browser:
        others = [item for item in items if "e2e" not in item.path.parts]
        items[:] = others + browser


def _redis_url() -> str:
    worker = os.environ.get("PYTEST_XDIST_WORKER", "gw0")
    number = int("".join(ch for ch in worker if ch.isdigit()) or 0)
    return f"redis://127.0.0.1:6379/{12 + number % 4}"


def _database_url() -> str:
    db = connection.settings_dict
    user = db["USER"] or "postgres"
    auth = f"{user}:{db['PASSWORD']}" if db["PASSWORD"] else user
    host = db["HOST"] or "127.0.0.1"
    port = db["PORT"] or 5432
    return f"postgresql://{auth}@{host}:{port}/{db['NAME']}"


def _use_broker(url: str) -> None:
    """Point this process's Celery app (the live server enqueues through it)
    at `url`, dropping connections made for another broker."""
    app.conf.broker_url = url
    app.conf.task_always_eager = False
    if app._pool is not None:
        app._pool.force_close_all()
        app._pool = None
    app.amqp._producer_pool = None


@pytest.fixture(scope="session")
def e2e_dirs(tmp_path_factory):
    base = tmp_path_factory.mktemp("e2e")
    dirs = SimpleNamespace(
        images=base / "images", heads=base / "heads", var=base / "var"
    )
    for folder in vars(dirs).values():
        folder.mkdir()
    write_blank_qcow2(dirs.images / "bookworm.qcow2")
    return dirs


@pytest.fixture(scope="session")
def celery_worker_process(django_db_setup, django_db_blocker, e2e_dirs):
    """One worker for the session, consuming the e2e head's queue."""
    broker = _redis_url()
    redis.Redis.from_url(broker).flushdb()
    with django_db_blocker.unblock():
        database = _database_url()
    env = {
        **os.environ,
        "DATABASE_URL": database,
        "CELERY_BROKER_URL": broker,
        "CORRAL_VAR_DIR": str(e2e_dirs.var),
        "CORRAL_IMAGE_DIR": str(e2e_dirs.images),
        "CORRAL_WORKER_ALL_HEADS": "false",
    }
    command = [sys.executable, "-m", "celery", "-A", "panel", "worker", "-P", "solo",
               "-Q", f"celery,head.{HEAD}", "--without-heartbeat", "--without-gossip",
               "--without-mingle", "-l", "INFO"]  # fmt: skip
    log = open(e2e_dirs.var / "worker.log", "wb")  # noqa: SIM115
    process = subprocess.Popen(command, cwd=ROOT, env=env, stdout=log, stderr=log)  # noqa: S603
    previous = app.conf.broker_url
    _use_broker(broker)
    yield process
    _use_broker(previous)
    process.terminate()
    try:
        process.wait(timeout=20)
    except subprocess.TimeoutExpired:
        process.kill()
    log.close()


@pytest.fixture
def cluster(transactional_db, celery_worker_process, e2e_dirs, settings):
    """A simulated head the worker serves, storage, addresses and the
    definitions (the transactional tests' flush empties their tables)."""
    assert celery_worker_process.poll() is None, "the Celery worker has died"
    seed_defaults()
    infra = make_infrastructure()
    Head.objects.filter(pk=infra.head.pk).update(
        label=HEAD, uri=f"simulated://{HEAD}{e2e_dirs.heads}?delay=0.3"
    )
    settings.CORRAL_IMAGE_DIR = e2e_dirs.images
    return infra


@pytest.fixture(scope="session")
def chromium():
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS
        )
        yield browser
        browser.close()


@pytest.fixture
def new_page(chromium, live_server):
    """Pages in fresh browser contexts (one per person signing in)."""
    contexts = []

    def make(width: int = 1280, height: int = 900):
        context = chromium.new_context(
            base_url=live_server.url, viewport={"width": width, "height": height}
        )
        context.set_default_timeout(15_000)
        contexts.append(context)
        return context.new_page()

    yield make
    for context in contexts:
        context.close()


def built_by_worker(group, owner, name: str):
    """A machine created through the action and built by the worker (off)."""
    vm, op = actions.create_virtual_machine(
        group,
        {"name": name, "cores": 1, "memory": 512},
        discs=[{"size": 1024, "storage_grade": "sata"}],
        reimage={"distribution": "bookworm", "root_password": "a root password"},
        actor=owner,
    )
    deadline = time.monotonic() + 30
    while Operation.objects.get(pk=op.pk).active:
        assert time.monotonic() < deadline, "the worker did not build the machine"
        time.sleep(0.2)
    assert Operation.objects.get(pk=op.pk).status == "succeeded"
    return vm


def sign_in(page, username: str, otp: str | None = None) -> None:
    page.goto("/panel/login")
    page.get_by_label("Username").fill(username)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    if otp is not None:
        page.get_by_label("Code from your YubiKey").fill(otp)
        page.get_by_role("button", name="Continue").click()
    page.wait_for_url("**/panel/")


def screenshot(page, name: str, folder: Path) -> None:
    """Taken on every run; written to docs/screenshots/ (for the README) only
    with CORRAL_SCREENSHOTS=1, so that test runs leave the tree unchanged."""
    if os.environ.get("CORRAL_SCREENSHOTS") == "1":
        folder = SCREENSHOTS
    folder.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=folder / f"{name}.png", full_page=True)
