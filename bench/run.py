"""Corral's benchmark: `make bench` (or `.venv/bin/python bench/run.py`).

It builds a database of its own, serves Corral with gunicorn on 127.0.0.1 and
measures, with keep-alive HTTP clients:

- requests per second for `GET /accounts/{name}` with HTTP Basic (first and
  repeated), with a session token and with an API key;
- the number of SQL queries for `GET /accounts?view=overview` for a user with
  one account and for one with fifty (in-process, with Django's test client:
  counts, not speed).

Figures go to bench/results.json and bench/RESULTS.md. The exit status is 1
when a target is missed, so the command can guard against regressions.

Environment:
  BENCH_DATABASE_URL  the database to DROP and recreate
                      (default postgresql://postgres@127.0.0.1:5432/corral_bench_run)
  BENCH_CACHE_URL     the shared cache for the server; its Redis database is
                      flushed (default redis://127.0.0.1:6379/14)
  BENCH_SECONDS       seconds per measured scenario and round (default 2.5)
  BENCH_ROUNDS        rounds of the token, key and repeated Basic scenarios (6)

Other programs on the machine only ever slow a round down, so each figure is
the best of its rounds (the medians are kept too); rounds interleave the
scenarios, in a rotating order, so that a slow spell hits them alike.

The database is named by BENCH_DATABASE_URL, not DATABASE_URL, on purpose:
the run drops it, and DATABASE_URL usually names a database someone cares for.
"""

from __future__ import annotations

import base64
import json
import os
import platform
import re
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from http.client import HTTPConnection, HTTPException
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

DATABASE_URL = os.environ.get(
    "BENCH_DATABASE_URL", "postgresql://postgres@127.0.0.1:5432/corral_bench_run"
)
CACHE_URL = os.environ.get("BENCH_CACHE_URL", "redis://127.0.0.1:6379/14")
SECONDS = float(os.environ.get("BENCH_SECONDS", "2.5"))
ROUNDS = int(os.environ.get("BENCH_ROUNDS", "6"))

# Every scenario runs against the same server with the same settings.
WORKERS = 2
THREADS = 1  # a process per core: no two requests share a GIL
CLIENTS = 4  # concurrent keep-alive connections, one per client thread
MAX_REQUESTS = 50_000  # per scenario and round; the time bound usually ends it first
FIRST_BASIC_USERS = 80  # each first-Basic request signs in a user never seen
FIRST_BASIC_SECONDS = 8.0

PASSWORD = "benchmark passphrase of some length"
ONE_ACCOUNT_USER = "benchone"
FIFTY_ACCOUNTS_USER = "benchfifty"
GROUPS_PER_ACCOUNT = 3  # `default` and two more
VMS_PER_GROUP = 2

# Targets from the issue.
MAX_BASIC_TO_SESSION_RATIO = 1.2
MAX_OVERVIEW_QUERIES = 12

RESULTS_JSON = ROOT / "bench" / "results.json"
RESULTS_MD = ROOT / "bench" / "RESULTS.md"


# Setting up -----------------------------------------------------------------


def recreate_database(url: str) -> None:
    import psycopg

    parts = urlsplit(url)
    name = parts.path.lstrip("/")
    if not re.fullmatch(r"[a-z_][a-z0-9_]*", name):
        sys.exit(f"BENCH_DATABASE_URL: {name!r} is not a plain database name")
    maintenance = urlunsplit(parts._replace(path="/postgres"))
    with psycopg.connect(maintenance, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        conn.execute(f'CREATE DATABASE "{name}"')


def redis_reachable(url: str) -> bool:
    import redis

    try:
        return bool(redis.Redis.from_url(url, socket_timeout=2).ping())
    except redis.RedisError:
        return False


def server_environment(var_dir: str, cache_url: str | None) -> dict[str, str]:
    env = dict(os.environ)
    # The real password hasher: hashing cost is what the cache must avoid.
    env.pop("CORRAL_FAST_PASSWORD_HASHER", None)
    env.pop("CACHE_URL", None)
    env.update(
        DATABASE_URL=DATABASE_URL,
        DJANGO_SETTINGS_MODULE="panel.settings",
        SECRET_KEY="bench-only-secret-key-" + "x" * 40,
        DEBUG="false",
        LOG_LEVEL="WARNING",
        CORRAL_VAR_DIR=var_dir,
    )
    if cache_url:
        env["CACHE_URL"] = cache_url
    return env


def setup_django(env: dict[str, str]) -> None:
    os.environ.clear()
    os.environ.update(env)
    import django

    django.setup()

    from django.conf import settings

    hasher = settings.PASSWORD_HASHERS[0]
    assert "MD5" not in hasher, f"the bench needs the real hasher, not {hasher}"


@dataclass
class BenchData:
    account: str = ""
    session_token: str = ""
    api_key: str = ""
    fresh_users: list[str] = field(default_factory=list)
    one_user_token: str = ""
    fifty_user_token: str = ""


def create_data() -> BenchData:
    from django.contrib.auth.hashers import make_password
    from django.db import transaction

    from accounts import actions
    from accounts.models import Account, User
    from privileges.models import Privilege

    # One hash for everyone: creating eighty users must not take half a minute.
    encoded = make_password(PASSWORD)
    data = BenchData()
    with transaction.atomic():
        one = _user(ONE_ACCOUNT_USER, encoded)
        account = _account_with_machines(one, "bench-one")
        data.account = account.name

        fifty = _user(FIFTY_ACCOUNTS_USER, encoded)
        for number in range(1, 51):
            _account_with_machines(fifty, f"bench-fifty-{number:02d}")

        key, data.api_key = actions.create_api_key(
            one, label="bench", expires_at=None, actor=one
        )
        Privilege.objects.create(
            user=one,
            api_key=key,
            level="account_admin",
            account=account,
            password_required=False,
        )

        fresh = [
            User(username=f"benchfresh{n}", email=f"fresh{n}@example.org")
            for n in range(FIRST_BASIC_USERS)
        ]
        for user in fresh:
            user.password = encoded
        User.objects.bulk_create(fresh)
        Privilege.objects.bulk_create(
            Privilege(user=user, level="account_admin", account=account)
            for user in User.objects.filter(username__startswith="benchfresh")
        )
        data.fresh_users = [user.username for user in fresh]

    data.session_token = _session(one)
    data.one_user_token = data.session_token
    data.fifty_user_token = _session(fifty)
    assert Account.objects.count() == 51
    return data


def _user(username: str, encoded_password: str):
    from accounts.models import User

    return User.objects.create(
        username=username, email=f"{username}@example.org", password=encoded_password
    )


def _account_with_machines(owner, name: str):
    from accounts import actions
    from groups.models import Group
    from machines.models import VirtualMachine

    account = actions.create_account(name=name, owner=owner)
    for number in range(1, GROUPS_PER_ACCOUNT):
        Group.objects.create(account=account, name=f"group{number}")
    VirtualMachine.objects.bulk_create(
        VirtualMachine(group=group, name=f"vm{number}", cores=1, memory=1024)
        for group in Group.objects.filter(account=account)
        for number in range(1, VMS_PER_GROUP + 1)
    )
    return account


def _session(user) -> str:
    from accounts import actions

    return actions.create_session(
        user, validity=3600, factors=["password"], yubikey_verified_at=None
    )


# Query counts ---------------------------------------------------------------


def overview_query_count(token: str) -> dict:
    """Queries for `GET /accounts?view=overview`, after one warm-up request."""
    from django.db import connection
    from django.test import Client
    from django.test.utils import CaptureQueriesContext

    client = Client(HTTP_AUTHORIZATION=f"Bearer {token}")
    path = "/accounts?view=overview"
    assert client.get(path).status_code == 200
    with CaptureQueriesContext(connection) as captured:
        response = client.get(path)
    assert response.status_code == 200, response.content
    body = response.json()
    return {
        "queries": len(captured.captured_queries),
        "accounts": len(body),
        "groups": sum(len(a["groups"]) for a in body),
        "virtual_machines": sum(
            len(g["virtual_machines"]) for a in body for g in a["groups"]
        ),
    }


# The server -----------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def start_server(env: dict[str, str], port: int, log_path: Path) -> subprocess.Popen:
    command = [
        sys.executable,
        "-m",
        "gunicorn",
        "panel.wsgi:application",
        f"--bind=127.0.0.1:{port}",
        f"--workers={WORKERS}",
        # gthread workers keep connections alive; sync workers close each one.
        "--worker-class=gthread",
        f"--threads={THREADS}",
        "--keep-alive=30",
        "--log-level=warning",
    ]
    log = log_path.open("wb")
    return subprocess.Popen(  # noqa: S603 (our own interpreter, fixed arguments)
        command, cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT
    )


def wait_until_ready(port: int, server: subprocess.Popen, log_path: Path) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if server.poll() is not None:
            sys.exit(f"gunicorn stopped:\n{log_path.read_text()[-3000:]}")
        try:
            conn = HTTPConnection("127.0.0.1", port, timeout=2)
            conn.request("GET", "/definitions")
            if conn.getresponse().status == 200:
                conn.close()
                return
        except OSError:
            pass
        time.sleep(0.2)
    sys.exit(f"gunicorn did not answer in time:\n{log_path.read_text()[-3000:]}")


def stop_server(server: subprocess.Popen) -> None:
    if server.poll() is not None:
        return
    server.send_signal(signal.SIGTERM)
    try:
        server.wait(timeout=15)
    except subprocess.TimeoutExpired:
        server.kill()
        server.wait()


# Server CPU -----------------------------------------------------------------


class ServerCpu:
    """CPU time spent serving requests: gunicorn's workers and the PostgreSQL
    backends they talk to, read from /proc (so both must run on this host).

    Unlike throughput, CPU per request hardly moves when other programs
    compete for the machine, so it is the figure the cost target uses.
    """

    TICKS = os.sysconf("SC_CLK_TCK")

    def __init__(self, master_pid: int):
        self.master_pid = master_pid

    def snapshot(self) -> dict[int, tuple[str, float]]:
        return {
            pid: (kind, cpu)
            for pid, kind in self._pids().items()
            if (cpu := self._cpu(pid)) >= 0
        }

    def spent(self, before: dict[int, tuple[str, float]]) -> dict[str, float]:
        """CPU seconds since `before`, for "gunicorn" and for "postgresql"."""
        spent = {"gunicorn": 0.0, "postgresql": 0.0}
        for pid, (kind, cpu) in self.snapshot().items():
            spent[kind] += cpu - before.get(pid, (kind, 0.0))[1]
        return spent

    def _pids(self) -> dict[int, str]:
        from django.db import connection

        pids = {
            int(entry.name): "gunicorn"
            for entry in Path("/proc").iterdir()
            if entry.name.isdigit() and self._parent(int(entry.name)) == self.master_pid
        }
        with connection.cursor() as cursor:
            cursor.execute(
                "SELECT pid FROM pg_stat_activity"
                " WHERE datname = current_database() AND pid <> pg_backend_pid()"
            )
            pids.update((row[0], "postgresql") for row in cursor.fetchall())
        return pids

    @staticmethod
    def _stat(pid: int) -> list[str] | None:
        try:
            text = Path(f"/proc/{pid}/stat").read_text()
        except OSError:
            return None
        # Fields after the command name, which may itself hold spaces.
        return text.rpartition(")")[2].split()

    def _parent(self, pid: int) -> int:
        fields = self._stat(pid)
        return int(fields[1]) if fields else -1

    def _cpu(self, pid: int) -> float:
        fields = self._stat(pid)
        if fields is None:
            return -1.0
        return (int(fields[11]) + int(fields[12])) / self.TICKS


# Load -----------------------------------------------------------------------


class KeepAliveClient:
    """One persistent connection to the bench server, reopened if dropped."""

    def __init__(self, port: int):
        self.port = port
        self.conn = HTTPConnection("127.0.0.1", port, timeout=30)

    def get(self, path: str, authorization: str) -> None:
        for attempt in (1, 2):
            try:
                self.conn.request("GET", path, headers={"Authorization": authorization})
                response = self.conn.getresponse()
                body = response.read()
            except (HTTPException, ConnectionError):
                self.conn.close()
                self.conn = HTTPConnection("127.0.0.1", self.port, timeout=30)
                if attempt == 2:
                    raise
                continue
            if response.status != 200:
                raise RuntimeError(f"{path} answered {response.status}: {body[:200]!r}")
            return

    def close(self) -> None:
        self.conn.close()


def run_load(
    port: int, path: str, next_authorization, seconds: float, cpu: ServerCpu
) -> dict:
    """CLIENTS threads send requests until the time or the request budget is
    spent, or next_authorization() runs out (returns None)."""
    barrier = threading.Barrier(CLIENTS + 1)
    lock = threading.Lock()
    latencies: list[float] = []
    errors: list[BaseException] = []
    budget = [MAX_REQUESTS]
    deadline = [0.0]

    def take() -> str | None:
        with lock:
            if budget[0] <= 0 or time.monotonic() >= deadline[0]:
                return None
            budget[0] -= 1
            return next_authorization()

    def client_thread() -> None:
        client = KeepAliveClient(port)
        mine = []
        barrier.wait()
        try:
            while (authorization := take()) is not None:
                started = time.perf_counter()
                client.get(path, authorization)
                mine.append(time.perf_counter() - started)
        except BaseException as exc:  # reported by the main thread
            errors.append(exc)
        finally:
            client.close()
            with lock:
                latencies.extend(mine)

    threads = [threading.Thread(target=client_thread) for _ in range(CLIENTS)]
    for thread in threads:
        thread.start()
    cpu_before = cpu.snapshot()
    deadline[0] = time.monotonic() + seconds
    started = time.perf_counter()
    barrier.wait()
    for thread in threads:
        thread.join()
    elapsed = time.perf_counter() - started
    spent = cpu.spent(cpu_before)
    if errors:
        raise errors[0]
    return {
        "requests": len(latencies),
        "seconds": round(elapsed, 3),
        "requests_per_second": round(len(latencies) / elapsed, 1),
        "median_latency_ms": round(statistics.median(latencies) * 1000, 2),
        "server_cpu_ms_per_request": round(
            sum(spent.values()) * 1000 / len(latencies), 3
        ),
        "gunicorn_cpu_ms_per_request": round(
            spent["gunicorn"] * 1000 / len(latencies), 3
        ),
        "postgresql_cpu_ms_per_request": round(
            spent["postgresql"] * 1000 / len(latencies), 3
        ),
    }


def basic(username: str) -> str:
    token = base64.b64encode(f"{username}:{PASSWORD}".encode()).decode()
    return f"Basic {token}"


def measure(port: int, data: BenchData, cpu: ServerCpu) -> dict:
    path = f"/accounts/{data.account}"
    repeated = {
        "session_token": f"Bearer {data.session_token}",
        "api_key": f"Bearer apikey.{data.api_key}",
        "basic_repeated": basic(ONE_ACCOUNT_USER),
    }

    # Warm-up: open database connections in both workers and let the first
    # Basic request hash the password and fill the shared cache.
    warm = KeepAliveClient(port)
    for authorization in repeated.values():
        for _ in range(20):
            warm.get(path, authorization)
    warm.close()

    rounds: dict[str, list[dict]] = {name: [] for name in repeated}
    names = list(repeated)
    for number in range(ROUNDS):
        shift = number % len(names)
        for name in names[shift:] + names[:shift]:
            print(f"  round {number + 1}: {name} ...", flush=True)
            rounds[name].append(
                run_load(port, path, lambda a=repeated[name]: a, SECONDS, cpu)
            )

    fresh = iter([basic(u) for u in data.fresh_users])
    print("  basic_first ...", flush=True)
    first = run_load(port, path, lambda: next(fresh, None), FIRST_BASIC_SECONDS, cpu)

    figures = {name: summary(runs) for name, runs in rounds.items()}
    figures["basic_first"] = summary([first])
    return figures


def summary(runs: list[dict]) -> dict:
    best = max(runs, key=lambda r: r["requests_per_second"])
    return {
        "requests_per_second": best["requests_per_second"],
        "median_latency_ms": best["median_latency_ms"],
        "median_of_rounds_requests_per_second": round(
            statistics.median(r["requests_per_second"] for r in runs), 1
        ),
        "server_cpu_ms_per_request": round(
            statistics.median(r["server_cpu_ms_per_request"] for r in runs), 2
        ),
        "rounds": runs,
    }


# Reporting ------------------------------------------------------------------


def environment_facts(cache_backend: str) -> dict:
    import django
    from django.db import connection

    cpu = ""
    cpuinfo = Path("/proc/cpuinfo")
    if cpuinfo.exists():
        match = re.search(r"^model name\s*:\s*(.+)$", cpuinfo.read_text(), re.M)
        cpu = match.group(1).strip() if match else ""
    with connection.cursor() as cursor:
        cursor.execute("SHOW server_version")
        postgres = cursor.fetchone()[0]
    import gunicorn

    return {
        "date": datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "machine": {
            "platform": platform.platform(),
            "cpu": cpu or platform.processor(),
            "cpus": os.cpu_count(),
        },
        "python": platform.python_version(),
        "django": django.get_version(),
        "postgresql": postgres,
        "gunicorn": gunicorn.__version__,
        "server": (
            f"gunicorn, {WORKERS} gthread workers x {THREADS} threads, keep-alive, "
            "127.0.0.1, DEBUG off, PBKDF2 password hasher"
        ),
        "clients": f"{CLIENTS} threads, one keep-alive http.client connection each",
        "cache": cache_backend,
        "seconds_per_scenario": SECONDS,
        "rounds": ROUNDS,
    }


def verdict(figures: dict, counts: dict) -> dict:
    session, repeated = figures["session_token"], figures["basic_repeated"]

    def ratio(key: str, inverse: bool = False) -> float:
        a, b = (
            (session[key], repeated[key]) if inverse else (repeated[key], session[key])
        )
        return round(a / b, 3)

    cpu_ratio = ratio("server_cpu_ms_per_request")
    one, fifty = counts["one_account"]["queries"], counts["fifty_accounts"]["queries"]
    return {
        "repeated_basic_cost_vs_session": {
            "server_cpu_ratio": cpu_ratio,
            "throughput_ratio_best": ratio("requests_per_second", inverse=True),
            "throughput_ratio_median": ratio(
                "median_of_rounds_requests_per_second", inverse=True
            ),
            "limit": MAX_BASIC_TO_SESSION_RATIO,
            "met": cpu_ratio <= MAX_BASIC_TO_SESSION_RATIO,
        },
        "overview_queries_constant": {
            "one_account": one,
            "fifty_accounts": fifty,
            "limit": MAX_OVERVIEW_QUERIES,
            "met": one == fifty and fifty <= MAX_OVERVIEW_QUERIES,
        },
    }


LABELS = {
    "basic_first": "HTTP Basic, first request (hashes the password)",
    "basic_repeated": "HTTP Basic, repeated credentials",
    "session_token": "Bearer session token",
    "api_key": "Bearer API key",
}


def markdown(results: dict) -> str:
    env, figures = results["environment"], results["requests"]
    counts, targets = results["overview_queries"], results["targets"]
    ratio = targets["repeated_basic_cost_vs_session"]
    queries = targets["overview_queries_constant"]
    lines = [
        "# Benchmark results",
        "",
        "Written by `make bench` (`bench/run.py`); the same figures are in",
        "`bench/results.json`. Figures depend on the machine: compare runs made",
        "on the same one.",
        "",
        f"- Date: {env['date']}",
        f"- Machine: {env['machine']['cpu']}, {env['machine']['cpus']} CPUs, "
        f"{env['machine']['platform']}",
        f"- Python {env['python']}, Django {env['django']}, "
        f"PostgreSQL {env['postgresql']}, gunicorn {env['gunicorn']}",
        f"- Server: {env['server']}",
        f"- Cache: {env['cache']}",
        f"- Load: {env['clients']}; each scenario runs {env['seconds_per_scenario']}"
        f" s per round, {env['rounds']} rounds, interleaved in a rotating order",
        "",
        "## `GET /accounts/{name}`",
        "",
        "| Credentials | Requests/s (best round) | Requests/s (median) "
        "| Median latency (ms) | Server CPU per request (ms) |",
        "| --- | ---: | ---: | ---: | ---: |",
    ]
    for name in ("basic_first", "basic_repeated", "session_token", "api_key"):
        figure = figures[name]
        lines.append(
            f"| {LABELS[name]} | {figure['requests_per_second']} "
            f"| {figure['median_of_rounds_requests_per_second']} "
            f"| {figure['median_latency_ms']} "
            f"| {figure['server_cpu_ms_per_request']} |"
        )
    lines += [
        "",
        "Requests/s is the best of the rounds (other programs on the machine",
        "only ever slow a round down), with the median beside it. Server CPU",
        "is the CPU time of gunicorn's workers and of their PostgreSQL",
        "backends per request (median of the rounds; Redis, shared with other",
        "programs, is left out). It is the measure of cost the target uses: on",
        "a machine shared with other work, throughput swings from round to",
        "round while CPU per request moves much less. It still moves from run",
        "to run on a busy machine, so judge a ratio near its limit over several",
        "runs.",
        "",
        f"The first-Basic figure signs in {FIRST_BASIC_USERS} distinct users "
        "that have never",
        "signed in, once each, so every request hashes a password (PBKDF2 at",
        "Django's default strength) and records the sign-in. It stops after",
        f"{FIRST_BASIC_SECONDS:g} s or when those users run out.",
        "",
        "## `GET /accounts?view=overview`: SQL queries",
        "",
        "Counted in-process with Django's test client and a session token, after",
        "one warm-up request (counts, not speed).",
        "",
        "| User | Accounts | Groups | Machines | Queries |",
        "| --- | ---: | ---: | ---: | ---: |",
    ]
    for name, label in (("one_account", "1 account"), ("fifty_accounts", "50")):
        c = counts[name]
        lines.append(
            f"| {label} | {c['accounts']} | {c['groups']} "
            f"| {c['virtual_machines']} | {c['queries']} |"
        )
    lines += [
        "",
        "## Targets",
        "",
        f"- Repeated Basic costs at most {ratio['limit']}x a session-token "
        f"request: it takes {ratio['server_cpu_ratio']}x the server CPU "
        f"-> **{'met' if ratio['met'] else 'NOT met'}**. In throughput, "
        f"session-token requests/s over repeated-Basic requests/s is "
        f"{ratio['throughput_ratio_best']} (best rounds) and "
        f"{ratio['throughput_ratio_median']} (medians).",
        f"- The overview's query count is the same for 1 and 50 accounts and at "
        f"most {queries['limit']}: {queries['one_account']} and "
        f"{queries['fifty_accounts']} -> **{'met' if queries['met'] else 'NOT met'}**",
        "",
        "## What a repeated Basic request pays for",
        "",
        "Beyond a session-token request, a repeated Basic request asks Redis",
        "twice: for the verified credentials, and whether its username and",
        "address left lockout markers (failures leave them for the cool-off",
        "period). Only with markers present does it query the database for",
        "failures, so a locked-out client is refused even when the cache knows",
        "its password. It then loads the user by id where a token request",
        "loads the user with its session row.",
        "",
        "## Why the cache setting matters",
        "",
        "Verified Basic credentials are remembered in Django's cache. Without",
        "`CACHE_URL` that cache is per process, so each gunicorn worker hashes",
        "a user's password once before it can answer from the cache. The bench",
        "server runs with `CACHE_URL` set to a Redis database (as production",
        "should), shared by all workers; the line above says which it used.",
        "",
    ]
    return "\n".join(lines)


# Main -----------------------------------------------------------------------


def main() -> int:
    started = time.monotonic()
    var_dir = tempfile.mkdtemp(prefix="corral-bench-")
    cache_url = CACHE_URL if redis_reachable(CACHE_URL) else None
    cache_backend = (
        f"Redis ({cache_url}), shared by the workers"
        if cache_url
        else "per-process memory (Redis was not reachable): one cache per worker"
    )
    env = server_environment(var_dir, cache_url)

    print(f"Recreating {DATABASE_URL} ...", flush=True)
    recreate_database(DATABASE_URL)
    setup_django(env)
    from django.core.cache import cache
    from django.core.management import call_command

    call_command("migrate", verbosity=0)
    cache.clear()
    print("Creating data ...", flush=True)
    data = create_data()

    print("Counting overview queries ...", flush=True)
    counts = {
        "one_account": overview_query_count(data.one_user_token),
        "fifty_accounts": overview_query_count(data.fifty_user_token),
    }

    port = free_port()
    log_path = Path(var_dir) / "gunicorn.log"
    print(f"Serving on 127.0.0.1:{port} and measuring ...", flush=True)
    server = start_server(env, port, log_path)
    try:
        wait_until_ready(port, server, log_path)
        figures = measure(port, data, ServerCpu(server.pid))
    finally:
        stop_server(server)

    results = {
        "environment": environment_facts(cache_backend),
        "requests": figures,
        "overview_queries": counts,
        "targets": verdict(figures, counts),
    }
    RESULTS_JSON.write_text(json.dumps(results, indent=2) + "\n")
    RESULTS_MD.write_text(markdown(results))
    shutil.rmtree(var_dir, ignore_errors=True)

    print(markdown(results))
    print(f"Done in {time.monotonic() - started:.0f} s.")
    met = all(t["met"] for t in results["targets"].values())
    return 0 if met else 1


if __name__ == "__main__":
    sys.exit(main())
