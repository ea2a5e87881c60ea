"""The driver for real heads: QEMU/KVM through libvirt.

Discs are qcow2 volumes in libvirt storage pools, so the same code works for a
local `qemu:///system` and a remote `qemu+ssh://head/system`: files travel as
libvirt streams, never as host paths.
"""

from __future__ import annotations

import contextlib
import io
import logging
import struct
import time
import xml.etree.ElementTree as ET
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path

import libvirt

from machines.hypervisors import keys as sendkeys
from machines.hypervisors import libvirt_xml
from machines.hypervisors.base import (
    DomainSpec,
    Driver,
    HypervisorError,
    NotFound,
    PowerState,
    SeedSpec,
    ShutdownResult,
    TransientHypervisorError,
    VolumeRef,
)
from machines.hypervisors.seed import build_seed_iso

logger = logging.getLogger(__name__)

MIB = 2**20
KEY_HOLD_MS = 100
_CHUNK = 4 * MIB

_NOT_FOUND = {
    libvirt.VIR_ERR_NO_DOMAIN,
    libvirt.VIR_ERR_NO_STORAGE_POOL,
    libvirt.VIR_ERR_NO_STORAGE_VOL,
    libvirt.VIR_ERR_NO_NETWORK,
}
_TRANSIENT = {
    libvirt.VIR_ERR_NO_CONNECT,
    libvirt.VIR_ERR_INVALID_CONN,
    libvirt.VIR_ERR_RPC,
    libvirt.VIR_ERR_OPERATION_TIMEOUT,
    libvirt.VIR_ERR_AUTH_UNAVAILABLE,
}
# A system error is a failed system call. Only on the way to the daemon is that
# a connection problem; a failing disc or a missing file stays failed.
_CONNECTION_DOMAINS = {libvirt.VIR_FROM_RPC, libvirt.VIR_FROM_REMOTE}
_OFF = {libvirt.VIR_DOMAIN_SHUTOFF, libvirt.VIR_DOMAIN_CRASHED}
# Drivers (libvirt's test driver among them) that know only a plain shutdown.
_UNSUPPORTED = {libvirt.VIR_ERR_INVALID_ARG, libvirt.VIR_ERR_NO_SUPPORT}

_QCOW2_MAGIC = b"QFI\xfb"

# libvirt prints every error to stderr unless told otherwise; errors reach us
# as exceptions and are logged once, at the boundary.
libvirt.registerErrorHandler(lambda _context, _error: None, None)


def translate(error: libvirt.libvirtError) -> HypervisorError:
    """The typed error for a libvirt error."""
    code, domain = error.get_error_code(), error.get_error_domain()
    message = error.get_error_message() or str(error)
    if code in _NOT_FOUND:
        return NotFound(message)
    is_connection_failure = (
        code == libvirt.VIR_ERR_SYSTEM_ERROR and domain in _CONNECTION_DOMAINS
    )
    if code in _TRANSIENT or is_connection_failure:
        return TransientHypervisorError(message)
    return HypervisorError(message)


class LibvirtDriver(Driver):
    """One libvirt connection, opened on first use and reopened after it
    breaks."""

    def __init__(self, uri: str, poll_seconds: float = 0.5) -> None:
        self.uri = uri
        self.poll_seconds = poll_seconds
        self._conn: libvirt.virConnect | None = None
        self._guest: tuple[str, str] | None = None

    # Plumbing.

    @contextlib.contextmanager
    def _calling(self, action: str, subject: object) -> Iterator[None]:
        try:
            yield
        except libvirt.libvirtError as error:
            raised = translate(error)
            if isinstance(raised, TransientHypervisorError):
                self.close()
            # Callers often look things up to see whether they exist.
            level = logging.DEBUG if isinstance(raised, NotFound) else logging.WARNING
            logger.log(
                level, "libvirt %s: %s %s failed: %s", self.uri, action, subject, raised
            )
            raise raised from error

    @property
    def conn(self) -> libvirt.virConnect:
        if self._conn is not None and self._conn.isAlive():
            return self._conn
        with self._calling("connect", self.uri):
            self._conn = libvirt.open(self.uri)
        return self._conn

    def close(self) -> None:
        conn, self._conn = self._conn, None
        with contextlib.suppress(libvirt.libvirtError):
            if conn is not None:
                conn.close()

    def guest_type(self) -> tuple[str, str]:
        """(domain type, arch) for new domains: KVM when the head has it,
        otherwise QEMU's software emulation (or whatever the driver offers)."""
        if self._guest is None:
            with self._calling("read capabilities of", self.uri):
                capabilities = self.conn.getCapabilities()
            self._guest = _best_guest(capabilities)
        return self._guest

    def _domain(self, uuid: str) -> libvirt.virDomain:
        with self._calling("look up domain", uuid):
            return self.conn.lookupByUUIDString(uuid)

    def _pool(self, pool: str) -> libvirt.virStoragePool:
        with self._calling("look up pool", pool):
            return self.conn.storagePoolLookupByName(pool)

    def _volume(self, pool: str, name: str) -> libvirt.virStorageVol:
        storage = self._pool(pool)
        with self._calling("look up volume", f"{pool}/{name}"):
            return storage.storageVolLookupByName(name)

    # Domains.

    def define(self, spec: DomainSpec) -> None:
        domain_type, arch = self.guest_type()
        description = libvirt_xml.domain_xml(spec, domain_type, arch)
        with self._calling("define", spec.name):
            domain = self.conn.defineXML(description)
            running = domain.isActive()
        logger.info("libvirt %s: defined %s (%s)", self.uri, spec.name, spec.uuid)

        if running:
            self._apply_live(domain, spec)

    def _apply_live(self, domain: libvirt.virDomain, spec: DomainSpec) -> None:
        """Change media and plug in new discs now; everything else waits for
        the next boot, as it would on real hardware."""
        with self._calling("update live", spec.name):
            live = domain.XMLDesc(0)
            media = libvirt_xml.cdrom_media(live)
            wanted = libvirt_xml.domain_xml(spec, *self.guest_type())
            for target, key in libvirt_xml.cdrom_media(wanted).items():
                if target in media and media[target] != key:
                    self._change_media(domain, wanted, target)

            attached = libvirt_xml.attached_volumes(live)
            for index, disc in enumerate(spec.discs):
                device = libvirt_xml.disc_target(index)
                if (disc.pool, disc.volume) in attached:
                    continue
                if device in attached.values():
                    logger.info("libvirt %s: %s waits for reboot", self.uri, device)
                    continue
                element = libvirt_xml.disc_element(disc, index)
                domain.attachDeviceFlags(
                    ET.tostring(element, encoding="unicode"),
                    libvirt.VIR_DOMAIN_AFFECT_LIVE,
                )

    def _change_media(
        self, domain: libvirt.virDomain, wanted: str, target: str
    ) -> None:
        root = ET.fromstring(wanted)  # noqa: S314 - our own XML
        for disk in root.iterfind("./devices/disk[@device='cdrom']"):
            found = disk.find("target")
            if found is not None and found.get("dev") == target:
                domain.updateDeviceFlags(
                    ET.tostring(disk, encoding="unicode"),
                    libvirt.VIR_DOMAIN_AFFECT_LIVE,
                )
                logger.info("libvirt %s: changed media in %s", self.uri, target)

    def undefine(self, uuid: str) -> None:
        try:
            domain = self._domain(uuid)
        except NotFound:
            return
        with self._calling("undefine", uuid):
            # libvirt would keep a running domain as a transient one; refuse.
            if domain.isActive():
                raise HypervisorError(f"domain {uuid} must be stopped to undefine")
            domain.undefine()
        logger.info("libvirt %s: undefined %s", self.uri, uuid)

    def state(self, uuid: str) -> PowerState:
        try:
            domain = self._domain(uuid)
        except NotFound:
            return PowerState.ABSENT
        with self._calling("read state of", uuid):
            state, _reason = domain.state()
        return PowerState.SHUT_OFF if state in _OFF else PowerState.RUNNING

    def start(self, uuid: str) -> None:
        domain = self._domain(uuid)
        with self._calling("start", uuid):
            if domain.isActive():
                return
            domain.create()
        logger.info("libvirt %s: started %s", self.uri, uuid)

    def stop(self, uuid: str) -> None:
        domain = self._domain(uuid)
        try:
            with self._calling("stop", uuid):
                domain.destroy()
        except HypervisorError:
            # Stopping a domain that is already off is success.
            if self.state(uuid) is not PowerState.SHUT_OFF:
                raise
        logger.info("libvirt %s: stopped %s", self.uri, uuid)

    def shutdown(self, uuid: str, grace_seconds: float) -> ShutdownResult:
        began = time.monotonic()
        if self.state(uuid) is not PowerState.RUNNING:
            return ShutdownResult(True, self.state(uuid), 0.0)

        try:
            self._press_power_button(uuid)
        except TransientHypervisorError:
            raise
        except HypervisorError:
            # The guest went off between the check and the press: that is fine.
            if self.state(uuid) is PowerState.RUNNING:
                raise
        deadline = began + grace_seconds
        while (state := self.state(uuid)) is PowerState.RUNNING:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                break
            time.sleep(min(self.poll_seconds, remaining))

        waited = time.monotonic() - began
        powered_off = state is not PowerState.RUNNING
        logger.info(
            "libvirt %s: powerdown %s, off=%s after %.1fs",
            self.uri,
            uuid,
            powered_off,
            waited,
        )
        return ShutdownResult(powered_off, state, waited)

    def _press_power_button(self, uuid: str) -> None:
        domain = self._domain(uuid)
        with self._calling("shut down", uuid):
            # ACPI only: were a guest agent ever configured, libvirt would ask
            # it instead, and the guest would not see a button press.
            try:
                domain.shutdownFlags(libvirt.VIR_DOMAIN_SHUTDOWN_ACPI_POWER_BTN)
            except libvirt.libvirtError as error:
                if error.get_error_code() not in _UNSUPPORTED:
                    raise
                domain.shutdown()

    def reset(self, uuid: str) -> None:
        domain = self._domain(uuid)
        with self._calling("reset", uuid):
            domain.reset(0)
        logger.info("libvirt %s: reset %s", self.uri, uuid)

    def send_keys(self, uuid: str, keys: Sequence[str]) -> None:
        codes = sendkeys.keycodes(keys)
        domain = self._domain(uuid)
        with self._calling("send keys to", uuid):
            domain.sendKey(
                libvirt.VIR_KEYCODE_SET_LINUX, KEY_HOLD_MS, codes, len(codes), 0
            )
        logger.info("libvirt %s: sent keys %s to %s", self.uri, keys, uuid)

    # Volumes.

    def create_volume(self, pool: str, name: str, size_mib: int) -> None:
        VolumeRef(pool, name)
        with contextlib.suppress(NotFound):
            self._volume(pool, name)
            logger.info("libvirt %s: volume %s/%s exists", self.uri, pool, name)
            return

        description = libvirt_xml.volume_xml(
            name, size_mib * MIB, libvirt_xml.DISC_FORMAT
        )
        storage = self._pool(pool)
        with self._calling("create volume", f"{pool}/{name}"):
            storage.createXML(description, 0)
        logger.info("libvirt %s: created %s/%s", self.uri, pool, name)

    def volume_size_mib(self, pool: str, name: str) -> int:
        volume = self._volume(pool, name)
        with self._calling("read size of", f"{pool}/{name}"):
            _kind, capacity, _allocation = volume.info()
        return capacity // MIB

    def grow_volume(
        self, pool: str, name: str, size_mib: int, running_uuid: str | None = None
    ) -> None:
        current = self.volume_size_mib(pool, name)
        if size_mib < current:
            raise HypervisorError(f"volume {pool}/{name} cannot shrink")
        if size_mib == current:
            return

        if running_uuid and self.state(running_uuid) is PowerState.RUNNING:
            self._grow_live(running_uuid, pool, name, size_mib)
        else:
            volume = self._volume(pool, name)
            with self._calling("resize", f"{pool}/{name}"):
                volume.resize(size_mib * MIB, 0)
        logger.info("libvirt %s: grew %s/%s to %s MiB", self.uri, pool, name, size_mib)

    def _grow_live(self, uuid: str, pool: str, name: str, size_mib: int) -> None:
        # QEMU holds the image open; only QEMU itself may resize it now.
        domain = self._domain(uuid)
        with self._calling("resize live", f"{pool}/{name}"):
            attached = libvirt_xml.attached_volumes(domain.XMLDesc(0))
            device = attached.get((pool, name))
            if device is None:
                raise HypervisorError(f"{pool}/{name} is not attached to {uuid}")
            domain.blockResize(
                device, size_mib * MIB, libvirt.VIR_DOMAIN_BLOCK_RESIZE_BYTES
            )

    def delete_volume(self, pool: str, name: str) -> None:
        try:
            volume = self._volume(pool, name)
        except NotFound:
            return
        with self._calling("delete volume", f"{pool}/{name}"):
            volume.delete(0)
        logger.info("libvirt %s: deleted %s/%s", self.uri, pool, name)

    def copy_volume(self, source: VolumeRef, target: VolumeRef) -> None:
        """Copy with qemu-img through libvirt. The source must not be in use
        by a running domain: QEMU's image lock refuses a second writer-free
        reader on qcow2."""
        original = self._volume(source.pool, source.volume)
        with self._calling("read", source):
            _kind, capacity, _allocation = original.info()
            volume_format = libvirt_xml.volume_format(original.XMLDesc(0))

        # The source stays intact, so deleting first keeps a retry safe.
        self.delete_volume(target.pool, target.volume)
        description = libvirt_xml.volume_xml(target.volume, capacity, volume_format)
        storage = self._pool(target.pool)
        with self._calling("copy", f"{source} to {target}"):
            storage.createXMLFrom(description, original, 0)
        logger.info("libvirt %s: copied %s to %s", self.uri, source, target)

    def image_volume(self, pool: str, name: str, base_image: Path) -> None:
        image_size = _qcow2_virtual_size(Path(base_image))
        capacity = self.volume_size_mib(pool, name) * MIB
        if image_size > capacity:
            raise HypervisorError(
                f"image {base_image.name} needs {image_size // MIB} MiB, "
                f"{pool}/{name} has {capacity // MIB} MiB"
            )

        self._upload(pool, name, Path(base_image))
        # The volume now has the image's smaller size; give the guest it all.
        volume = self._volume(pool, name)
        with self._calling("resize", f"{pool}/{name}"):
            if volume.info()[1] < capacity:
                volume.resize(capacity, 0)
        logger.info(
            "libvirt %s: imaged %s/%s with %s", self.uri, pool, name, base_image
        )

    def write_seed(self, target: VolumeRef, seed: SeedSpec) -> None:
        iso = build_seed_iso(seed)
        self.delete_volume(target.pool, target.volume)
        description = libvirt_xml.volume_xml(target.volume, len(iso), "raw")
        storage = self._pool(target.pool)
        with self._calling("create seed", target):
            volume = storage.createXML(description, 0)
            try:
                self._send(volume, iso)
            except libvirt.libvirtError:
                # A half-written seed would boot a guest with broken settings.
                volume.delete(0)
                raise
        logger.info("libvirt %s: seed %s for %s", self.uri, target, seed.hostname)

    def _upload(self, pool: str, name: str, path: Path) -> None:
        volume = self._volume(pool, name)
        size = path.stat().st_size
        with self._calling("upload to", f"{pool}/{name}"), path.open("rb") as source:
            stream = self.conn.newStream(0)
            volume.upload(stream, 0, size, 0)
            _pump(stream, source.read)

    def _send(self, volume: libvirt.virStorageVol, data: bytes) -> None:
        stream = self.conn.newStream(0)
        volume.upload(stream, 0, len(data), 0)
        _pump(stream, io.BytesIO(data).read)


def _pump(stream: libvirt.virStream, read: Callable[[int], bytes]) -> None:
    try:
        while chunk := read(_CHUNK):
            sent = 0
            while sent < len(chunk):
                sent += stream.send(chunk[sent:])
        stream.finish()
    except BaseException:
        with contextlib.suppress(libvirt.libvirtError):
            stream.abort()
        raise


def _qcow2_virtual_size(path: Path) -> int:
    """The disc size a qcow2 image presents, refusing anything else.

    A backing file would point the guest's disc at a path on the head, so
    images must be self-contained.
    """
    try:
        with path.open("rb") as image:
            header = image.read(32)
    except FileNotFoundError:
        raise NotFound(f"base image {path} does not exist") from None

    if len(header) < 32 or header[:4] != _QCOW2_MAGIC:
        raise HypervisorError(f"base image {path.name} is not qcow2")
    (backing_offset,) = struct.unpack(">Q", header[8:16])
    if backing_offset:
        raise HypervisorError(f"base image {path.name} has a backing file")
    (size,) = struct.unpack(">Q", header[24:32])
    return size


def _best_guest(capabilities: str) -> tuple[str, str]:
    root = ET.fromstring(capabilities)  # noqa: S314 - libvirtd's own XML
    host_arch = root.findtext("./host/cpu/arch") or "x86_64"
    offered = []
    for guest in root.iterfind("./guest"):
        arch = guest.find("arch")
        if guest.findtext("os_type") != "hvm" or arch is None:
            continue
        if arch.get("name") != host_arch:
            continue
        offered += [domain.get("type", "") for domain in arch.iterfind("domain")]

    for preferred in ("kvm", "qemu"):
        if preferred in offered:
            return preferred, host_arch
    if offered:
        return offered[0], host_arch
    raise HypervisorError(f"no hvm guest for {host_arch} on this head")
