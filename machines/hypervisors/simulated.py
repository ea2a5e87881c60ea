"""A pretend head for the embedded default and fast tests.

The state lives in one JSON file per head so that the web process and the
Celery worker, which are different processes, see the same machines. Every
change happens under an exclusive fcntl lock and is written to a temporary
file that replaces the old one, so a reader never sees half a file.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import logging
import math
import os
import tempfile
import time
from collections.abc import Iterator, Sequence
from dataclasses import asdict
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

from machines.hypervisors import keys as sendkeys
from machines.hypervisors.base import (
    DomainSpec,
    Driver,
    HypervisorError,
    NotFound,
    PowerState,
    SeedSpec,
    ShutdownResult,
    VolumeRef,
)
from machines.hypervisors.seed import build_seed_iso

logger = logging.getLogger(__name__)

DEFAULT_DIRECTORY = Path(__file__).resolve().parents[2] / "var" / "simulated-heads"

# Enough history for tests and the dashboard without letting the file grow.
_KEPT_KEY_PRESSES = 20

State = dict[str, Any]


class SimulatedDriver(Driver):
    """A head kept in `<directory>/<head>.json`.

    `delay` seconds pass in each slow operation (power changes, copies), which
    makes the panel's progress reporting visible; tests use 0.
    """

    def __init__(
        self,
        directory: Path | str = DEFAULT_DIRECTORY,
        head: str = "default",
        delay: float = 0.0,
    ) -> None:
        self.directory = Path(directory)
        self.head = head
        self.delay = delay

    @classmethod
    def from_uri(cls, uri: str) -> SimulatedDriver:
        """`simulated://HEAD/ABSOLUTE/DIR?delay=SECONDS`; all parts optional."""
        parts = urlsplit(uri)
        if parts.scheme != "simulated":
            raise ValueError(f"not a simulated URI: {uri!r}")

        delay = float(parse_qs(parts.query).get("delay", ["0.2"])[0])
        directory = Path(parts.path) if parts.path not in ("", "/") else None
        return cls(
            directory or DEFAULT_DIRECTORY, head=parts.netloc or "default", delay=delay
        )

    @property
    def path(self) -> Path:
        return self.directory / f"{self.head}.json"

    # Domains.

    def define(self, spec: DomainSpec) -> None:
        with self._state() as state:
            for uuid, domain in state["domains"].items():
                if domain["spec"]["name"] == spec.name and uuid != spec.uuid:
                    raise HypervisorError(f"domain name {spec.name} is taken")

            domain = state["domains"].setdefault(spec.uuid, _new_domain())
            domain["spec"] = asdict(spec)
        logger.info("simulated %s: defined %s (%s)", self.head, spec.name, spec.uuid)

    def undefine(self, uuid: str) -> None:
        with self._state() as state:
            domain = state["domains"].get(uuid)
            if domain is None:
                return
            if domain["power"] == PowerState.RUNNING:
                raise HypervisorError(f"domain {uuid} must be stopped to undefine")
            del state["domains"][uuid]
        logger.info("simulated %s: undefined %s", self.head, uuid)

    def state(self, uuid: str) -> PowerState:
        with self._state(write=False) as state:
            domain = state["domains"].get(uuid)
        return PowerState(domain["power"]) if domain else PowerState.ABSENT

    def start(self, uuid: str) -> None:
        self._pause()
        with self._state() as state:
            domain = _domain(state, uuid)
            for disc in domain["spec"]["discs"]:
                _volume(state, disc["pool"], disc["volume"])
            domain["power"] = PowerState.RUNNING
        logger.info("simulated %s: started %s", self.head, uuid)

    def stop(self, uuid: str) -> None:
        with self._state() as state:
            _domain(state, uuid)["power"] = PowerState.SHUT_OFF
        logger.info("simulated %s: stopped %s", self.head, uuid)

    def shutdown(self, uuid: str, grace_seconds: float) -> ShutdownResult:
        with self._state(write=False) as state:
            domain = _domain(state, uuid)
        if domain["power"] != PowerState.RUNNING:
            return ShutdownResult(True, PowerState.SHUT_OFF, 0.0)

        # The pretend guest takes `delay` to power off, if it listens at all.
        honours = domain["honours_acpi"] and self.delay <= grace_seconds
        waited = self.delay if honours else grace_seconds
        time.sleep(waited)
        if honours:
            self.stop(uuid)

        logger.info("simulated %s: powerdown %s, off=%s", self.head, uuid, honours)
        return ShutdownResult(honours, self.state(uuid), waited)

    def reset(self, uuid: str) -> None:
        with self._state() as state:
            domain = _running_domain(state, uuid)
            domain["resets"] += 1
        logger.info("simulated %s: reset %s", self.head, uuid)

    def send_keys(self, uuid: str, keys: Sequence[str]) -> None:
        sendkeys.keycodes(keys)
        with self._state() as state:
            presses = _running_domain(state, uuid)["keys_sent"]
            presses.append(list(keys))
            del presses[:-_KEPT_KEY_PRESSES]
        logger.info("simulated %s: sent keys %s to %s", self.head, keys, uuid)

    def set_honours_acpi(self, uuid: str, honours: bool) -> None:
        """Make the pretend guest ignore (or obey) the ACPI power button."""
        with self._state() as state:
            _domain(state, uuid)["honours_acpi"] = honours

    def domain(self, uuid: str) -> State:
        """The stored record of a domain, for tests and the dashboard."""
        with self._state(write=False) as state:
            return _domain(state, uuid)

    # Volumes.

    def create_volume(self, pool: str, name: str, size_mib: int) -> None:
        VolumeRef(pool, name)
        with self._state() as state:
            volumes = state["pools"].setdefault(pool, {})
            volumes.setdefault(name, _new_volume(size_mib))
        logger.info("simulated %s: volume %s/%s", self.head, pool, name)

    def volume_size_mib(self, pool: str, name: str) -> int:
        return self.volume(pool, name)["size_mib"]

    def volume(self, pool: str, name: str) -> State:
        """The stored record of a volume, for tests and the dashboard."""
        with self._state(write=False) as state:
            return _volume(state, pool, name)

    def grow_volume(
        self, pool: str, name: str, size_mib: int, running_uuid: str | None = None
    ) -> None:
        with self._state() as state:
            volume = _volume(state, pool, name)
            if size_mib < volume["size_mib"]:
                raise HypervisorError(f"volume {pool}/{name} cannot shrink")
            volume["size_mib"] = size_mib
        logger.info(
            "simulated %s: grew %s/%s to %s MiB", self.head, pool, name, size_mib
        )

    def delete_volume(self, pool: str, name: str) -> None:
        with self._state() as state:
            state["pools"].get(pool, {}).pop(name, None)
        logger.info("simulated %s: deleted %s/%s", self.head, pool, name)

    def copy_volume(self, source: VolumeRef, target: VolumeRef) -> None:
        self._pause()
        with self._state() as state:
            copied = dict(_volume(state, source.pool, source.volume))
            copied["copied_from"] = f"{source.pool}/{source.volume}"
            state["pools"].setdefault(target.pool, {})[target.volume] = copied
        logger.info("simulated %s: copied %s to %s", self.head, source, target)

    def image_volume(self, pool: str, name: str, base_image: Path) -> None:
        if not Path(base_image).is_file():
            raise NotFound(f"base image {base_image} does not exist")

        self._pause()
        with self._state() as state:
            _volume(state, pool, name)["image"] = Path(base_image).stem
        logger.info("simulated %s: imaged %s/%s", self.head, pool, name)

    def write_seed(self, target: VolumeRef, seed: SeedSpec) -> None:
        # Building the real ISO keeps the simulated path as strict as the real one.
        iso = build_seed_iso(seed)
        record = _new_volume(math.ceil(len(iso) / 2**20))
        record["seed"] = {
            "instance_id": seed.instance_id,
            "hostname": seed.hostname,
            "ssh_keys": len(seed.ssh_keys),
            "firstboot_script": bool(seed.firstboot_script),
        }
        with self._state() as state:
            state["pools"].setdefault(target.pool, {})[target.volume] = record
        logger.info("simulated %s: seed %s for %s", self.head, target, seed.hostname)

    # Storage of the state.

    @contextlib.contextmanager
    def _state(self, write: bool = True) -> Iterator[State]:
        self.directory.mkdir(parents=True, exist_ok=True)
        lock_path = self.directory / f"{self.head}.lock"
        with open(lock_path, "a") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX if write else fcntl.LOCK_SH)
            try:
                state = self._load()
                yield state
                if write:
                    self._save(state)
            finally:
                fcntl.flock(lock, fcntl.LOCK_UN)

    def _load(self) -> State:
        try:
            text = self.path.read_text()
        except FileNotFoundError:
            return {"domains": {}, "pools": {}}
        return json.loads(text)

    def _save(self, state: State) -> None:
        fd, temp = tempfile.mkstemp(dir=self.directory, prefix=f".{self.head}.")
        try:
            with os.fdopen(fd, "w") as out:
                json.dump(state, out, indent=1, sort_keys=True)
            os.replace(temp, self.path)
        except BaseException:
            os.unlink(temp)
            raise

    def _pause(self) -> None:
        if self.delay:
            time.sleep(self.delay)


def _new_domain() -> State:
    return {
        "power": PowerState.SHUT_OFF.value,
        "honours_acpi": True,
        "resets": 0,
        "keys_sent": [],
    }


def _new_volume(size_mib: int) -> State:
    if size_mib <= 0:
        raise HypervisorError("volume size must be positive")
    return {"size_mib": size_mib, "image": None, "seed": None}


def _domain(state: State, uuid: str) -> State:
    try:
        return state["domains"][uuid]
    except KeyError:
        raise NotFound(f"no domain {uuid}") from None


def _running_domain(state: State, uuid: str) -> State:
    domain = _domain(state, uuid)
    if domain["power"] != PowerState.RUNNING:
        raise HypervisorError(f"domain {uuid} is not running")
    return domain


def _volume(state: State, pool: str, name: str) -> State:
    try:
        return state["pools"][pool][name]
    except KeyError:
        raise NotFound(f"no volume {pool}/{name}") from None
