"""The interface every hypervisor driver implements, and the values it takes.

Drivers know nothing of Django models: tasks translate a machine row into a
`DomainSpec` and hand it over, so a driver can be exercised on its own.
"""

from __future__ import annotations

import abc
import enum
import re
import uuid as uuid_module
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path

MAX_DISCS = 8
LOOPBACK = "127.0.0.1"

_MAC = re.compile(r"^([0-9a-f]{2}:){5}[0-9a-f]{2}$")
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,127}$")
# Discs are qcow2, so base images must be too.
_IMAGE_SUFFIXES = (".qcow2",)


class HypervisorError(Exception):
    """The hypervisor refused or failed an operation; retrying will not help."""


class TransientHypervisorError(HypervisorError):
    """The hypervisor could not be reached or timed out; retrying may help."""


class NotFound(HypervisorError):
    """The domain, volume, pool or network does not exist."""


class PowerState(enum.StrEnum):
    RUNNING = "running"
    SHUT_OFF = "shut off"
    ABSENT = "absent"


@dataclass(frozen=True)
class VolumeRef:
    pool: str
    volume: str

    def __post_init__(self) -> None:
        _check_name("pool", self.pool)
        _check_name("volume", self.volume)

    def __str__(self) -> str:
        return f"{self.pool}/{self.volume}"


@dataclass(frozen=True)
class DiscSpec:
    label: str
    pool: str
    volume: str
    size_mib: int

    def __post_init__(self) -> None:
        _check_name("disc label", self.label)
        VolumeRef(self.pool, self.volume)
        if self.size_mib <= 0:
            raise ValueError(f"disc {self.label}: size must be positive")

    @property
    def ref(self) -> VolumeRef:
        return VolumeRef(self.pool, self.volume)


@dataclass(frozen=True)
class NicSpec:
    """A network card on a libvirt network, or on a host bridge when `bridge`."""

    mac: str
    network: str
    bridge: bool = False

    def __post_init__(self) -> None:
        object.__setattr__(self, "mac", self.mac.lower())
        if not _MAC.match(self.mac):
            raise ValueError(f"not a MAC address: {self.mac!r}")
        _check_name("network", self.network)


def vlan_network(vlan_num: int) -> str:
    """The libvirt network a head defines for a VLAN."""
    return f"corral-vlan-{vlan_num}"


@dataclass(frozen=True)
class DomainSpec:
    """Everything needed to define a machine on a head.

    Consoles always listen on the loopback address: the panel proxies them.
    Ports left as None are chosen by the hypervisor.
    """

    uuid: str
    name: str
    cores: int
    memory_mib: int
    discs: tuple[DiscSpec, ...] = ()
    nics: tuple[NicSpec, ...] = ()
    cdrom_url: str = ""
    keymap: str = ""
    seed: VolumeRef | None = None
    vnc_port: int | None = None
    serial_port: int | None = None

    def __post_init__(self) -> None:
        # Callers naturally pass lists; tuples keep the spec hashable and frozen.
        object.__setattr__(self, "discs", tuple(self.discs))
        object.__setattr__(self, "nics", tuple(self.nics))
        object.__setattr__(self, "uuid", str(uuid_module.UUID(self.uuid)))
        _check_name("domain name", self.name)
        if self.cores < 1 or self.memory_mib < 1:
            raise ValueError("cores and memory must be positive")
        if len(self.discs) > MAX_DISCS:
            raise ValueError(f"at most {MAX_DISCS} discs")
        if len({d.label for d in self.discs}) != len(self.discs):
            raise ValueError("disc labels must be unique")

    def with_seed(self, seed: VolumeRef | None) -> DomainSpec:
        return replace(self, seed=seed)


@dataclass(frozen=True)
class SeedSpec:
    """What cloud-init writes into a freshly imaged machine on first boot."""

    instance_id: str
    hostname: str
    root_password: str = field(repr=False)
    ssh_keys: tuple[str, ...] = ()
    firstboot_script: str = ""
    # A SHA-512 crypt hash made when the change was asked for (the API keeps
    # only that); used instead of hashing `root_password` when given.
    root_password_hash: str = field(default="", repr=False)

    def __post_init__(self) -> None:
        keys = self.ssh_keys
        if isinstance(keys, str):
            keys = keys.splitlines()
        object.__setattr__(self, "ssh_keys", tuple(k.strip() for k in keys if k))


@dataclass(frozen=True)
class ShutdownResult:
    """How an ACPI powerdown went. A guest may ignore it; that is no error."""

    powered_off: bool
    state: PowerState
    waited_seconds: float


class ImageStore:
    """A folder of base images, one file per distribution (`stretch.qcow2`)."""

    def __init__(self, root: Path | str) -> None:
        self.root = Path(root)

    def path_for(self, distribution: str) -> Path:
        # The name comes from users: a strict pattern keeps it inside the folder.
        _check_name("distribution", distribution)
        for suffix in _IMAGE_SUFFIXES:
            candidate = self.root / f"{distribution}{suffix}"
            if candidate.is_file():
                return candidate
        raise NotFound(f"no base image for distribution {distribution!r}")

    def distributions(self) -> list[str]:
        if not self.root.is_dir():
            return []
        files = self.root.iterdir()
        return sorted(p.stem for p in files if p.suffix in _IMAGE_SUFFIXES)


def seed_volume_name(domain_uuid: str) -> str:
    return f"{domain_uuid}-cidata.iso"


class Driver(abc.ABC):
    """One head. Methods are idempotent where the docstring says so, so that a
    retried task does no harm."""

    # Domains.

    @abc.abstractmethod
    def define(self, spec: DomainSpec) -> None:
        """Create or update the persistent definition (idempotent). A running
        domain gets CD-ROM changes and new discs at once, the rest at its next
        boot."""

    @abc.abstractmethod
    def undefine(self, uuid: str) -> None:
        """Forget the definition of a stopped domain; volumes stay
        (idempotent)."""

    @abc.abstractmethod
    def state(self, uuid: str) -> PowerState:
        """The actual power state; ABSENT when undefined."""

    @abc.abstractmethod
    def start(self, uuid: str) -> None:
        """Power on (idempotent)."""

    @abc.abstractmethod
    def stop(self, uuid: str) -> None:
        """Pull the plug (idempotent)."""

    @abc.abstractmethod
    def shutdown(self, uuid: str, grace_seconds: float) -> ShutdownResult:
        """Press the ACPI power button and wait up to `grace_seconds` for the
        guest to power off. Never forces it off."""

    @abc.abstractmethod
    def reset(self, uuid: str) -> None:
        """Press the reset button of a running domain."""

    @abc.abstractmethod
    def send_keys(self, uuid: str, keys: Sequence[str]) -> None:
        """Press BigV sendkey names together, e.g. ["ctrl", "alt", "delete"]."""

    # Volumes.

    @abc.abstractmethod
    def create_volume(self, pool: str, name: str, size_mib: int) -> None:
        """Create an empty volume; an existing one is left alone (idempotent)."""

    @abc.abstractmethod
    def volume_size_mib(self, pool: str, name: str) -> int:
        """The capacity the guest sees."""

    @abc.abstractmethod
    def grow_volume(
        self, pool: str, name: str, size_mib: int, running_uuid: str | None = None
    ) -> None:
        """Grow to `size_mib` (idempotent; shrinking is refused). Pass the uuid
        of the domain using it so a running guest is grown live."""

    @abc.abstractmethod
    def delete_volume(self, pool: str, name: str) -> None:
        """Delete a volume (idempotent)."""

    @abc.abstractmethod
    def copy_volume(self, source: VolumeRef, target: VolumeRef) -> None:
        """Copy a volume, e.g. a disc into a backup pool or a backup back over
        its disc. An existing target is replaced."""

    @abc.abstractmethod
    def image_volume(self, pool: str, name: str, base_image: Path) -> None:
        """Overwrite a volume with a base image, keeping the volume's size."""

    @abc.abstractmethod
    def write_seed(self, target: VolumeRef, seed: SeedSpec) -> None:
        """Create or replace a cloud-init NoCloud seed ISO volume."""

    # Composite steps, the same for every driver.

    def reimage(self, spec: DomainSpec, base_image: Path, seed: SeedSpec) -> DomainSpec:
        """Install a base image on the first disc of a stopped domain and
        attach a fresh seed; returns the spec now defined."""
        if not spec.discs:
            raise HypervisorError(f"{spec.name} has no disc to image")
        if self.state(spec.uuid) is PowerState.RUNNING:
            raise HypervisorError(f"{spec.name} must be stopped to reimage")

        first = spec.discs[0]
        self.image_volume(first.pool, first.volume, base_image)

        seed_ref = VolumeRef(first.pool, seed_volume_name(spec.uuid))
        self.write_seed(seed_ref, seed)

        imaged = spec.with_seed(seed_ref)
        self.define(imaged)
        return imaged

    def purge(self, spec: DomainSpec) -> None:
        """Destroy the domain and everything it stored (idempotent)."""
        if self.state(spec.uuid) is not PowerState.ABSENT:
            self.stop(spec.uuid)
            self.undefine(spec.uuid)

        for disc in spec.discs:
            self.delete_volume(disc.pool, disc.volume)
        if spec.seed is not None:
            self.delete_volume(spec.seed.pool, spec.seed.volume)

    def close(self) -> None:  # noqa: B027 - drivers without a connection keep it
        """Release the connection, if the driver holds one."""


def _check_name(what: str, value: str) -> None:
    if not _NAME.match(value):
        raise ValueError(f"invalid {what}: {value!r}")


def driver_for_uri(uri: str) -> Driver:
    """The driver for a head's URI: `simulated://...` or any libvirt URI."""
    if uri.startswith("simulated:"):
        from machines.hypervisors.simulated import SimulatedDriver

        return SimulatedDriver.from_uri(uri)

    from machines.hypervisors.libvirt_driver import LibvirtDriver

    return LibvirtDriver(uri)
