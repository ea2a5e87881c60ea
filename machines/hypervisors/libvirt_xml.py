"""libvirt XML for Corral's domains and volumes, built from plain specs.

Kept apart from the driver so it can be read and tested without a connection.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from urllib.parse import urlsplit

from machines.hypervisors.base import (
    LOOPBACK,
    DiscSpec,
    DomainSpec,
    HypervisorError,
    NicSpec,
    VolumeRef,
)

# Discs are qcow2 files in libvirt storage pools: thin, and resizable offline.
DISC_FORMAT = "qcow2"
CDROM_TARGET = "hdc"
SEED_TARGET = "hdd"

_CDROM_PROTOCOLS = {"http": 80, "https": 443, "ftp": 21, "ftps": 990}


def domain_xml(spec: DomainSpec, domain_type: str, arch: str = "x86_64") -> str:
    domain = ET.Element("domain", type=domain_type)
    _text(domain, "name", spec.name)
    _text(domain, "uuid", spec.uuid)
    _text(domain, "memory", str(spec.memory_mib), unit="MiB")
    _text(domain, "currentMemory", str(spec.memory_mib), unit="MiB")
    _text(domain, "vcpu", str(spec.cores), placement="static")

    os_element = ET.SubElement(domain, "os")
    _text(os_element, "type", "hvm", arch=arch)
    ET.SubElement(os_element, "boot", dev="hd")
    ET.SubElement(os_element, "boot", dev="cdrom")

    # Without ACPI a guest cannot hear the power button, and powerdown fails.
    features = ET.SubElement(domain, "features")
    ET.SubElement(features, "acpi")
    ET.SubElement(features, "apic")

    ET.SubElement(domain, "clock", offset="utc")
    # A guest that powers off stays off; restarting it is the panel's decision
    # (autoreboot), made by the reconciler.
    _text(domain, "on_poweroff", "destroy")
    _text(domain, "on_reboot", "restart")
    _text(domain, "on_crash", "destroy")

    domain.append(_devices(spec))
    ET.indent(domain)
    return ET.tostring(domain, encoding="unicode")


def _devices(spec: DomainSpec) -> ET.Element:
    devices = ET.Element("devices")
    for index, disc in enumerate(spec.discs):
        devices.append(disc_element(disc, index))
    devices.append(cdrom_element(spec.cdrom_url))
    if spec.seed is not None:
        devices.append(seed_element(spec.seed))
    for nic in spec.nics:
        devices.append(_interface(nic))

    devices.append(_graphics(spec))
    devices.append(_serial(spec.serial_port))
    ET.SubElement(devices, "input", type="tablet", bus="usb")
    video = ET.SubElement(devices, "video")
    ET.SubElement(video, "model", type="vga")
    return devices


def disc_target(index: int) -> str:
    return "vd" + "abcdefghijklmnopqrstuvwxyz"[index]


def disc_element(disc: DiscSpec, index: int) -> ET.Element:
    element = ET.Element("disk", type="volume", device="disk")
    ET.SubElement(element, "driver", name="qemu", type=DISC_FORMAT, discard="unmap")
    ET.SubElement(element, "source", pool=disc.pool, volume=disc.volume)
    ET.SubElement(element, "target", dev=disc_target(index), bus="virtio")
    # Guests find a disc by label under /dev/disk/by-id/virtio-<label>.
    _text(element, "serial", disc.label)
    return element


def cdrom_element(url: str) -> ET.Element:
    """A CD-ROM drive, empty when there is no URL, so that media can be
    inserted into a running machine later."""
    element = ET.Element("disk", type="network" if url else "file", device="cdrom")
    ET.SubElement(element, "driver", name="qemu", type="raw")
    if url:
        element.append(_url_source(url))
    ET.SubElement(element, "target", dev=CDROM_TARGET, bus="ide")
    ET.SubElement(element, "readonly")
    return element


def cdrom_url_error(url: str) -> str | None:
    """Why a CD-ROM URL cannot be used, or None. The API checks with this too,
    so that a URL it accepts is one the head can attach."""
    # Only remote protocols: a file:// URL would hand a host file to the guest.
    parts = urlsplit(url)
    if parts.scheme not in _CDROM_PROTOCOLS or not parts.hostname or not parts.path:
        return f"must be an {', '.join(_CDROM_PROTOCOLS)} URL with a host and a path"
    try:
        port = parts.port
    except ValueError:
        port = -1
    return "has an invalid port" if port == -1 else None


def _url_source(url: str) -> ET.Element:
    if cdrom_url_error(url):
        raise HypervisorError(f"unsupported CD-ROM URL: {url!r}")

    parts = urlsplit(url)
    source = ET.Element("source", protocol=parts.scheme, name=parts.path)
    if parts.query:
        source.set("query", parts.query)
    port = parts.port or _CDROM_PROTOCOLS[parts.scheme]
    ET.SubElement(source, "host", name=parts.hostname, port=str(port))
    return source


def seed_element(seed: VolumeRef) -> ET.Element:
    element = ET.Element("disk", type="volume", device="cdrom")
    ET.SubElement(element, "driver", name="qemu", type="raw")
    ET.SubElement(element, "source", pool=seed.pool, volume=seed.volume)
    ET.SubElement(element, "target", dev=SEED_TARGET, bus="ide")
    ET.SubElement(element, "readonly")
    return element


def _interface(nic: NicSpec) -> ET.Element:
    kind = "bridge" if nic.bridge else "network"
    element = ET.Element("interface", type=kind)
    ET.SubElement(element, "mac", address=nic.mac)
    ET.SubElement(element, "source", {kind: nic.network})
    ET.SubElement(element, "model", type="virtio")
    return element


def _graphics(spec: DomainSpec) -> ET.Element:
    element = ET.Element("graphics", type="vnc", listen=LOOPBACK)
    if spec.vnc_port is None:
        element.set("autoport", "yes")
    else:
        element.set("port", str(spec.vnc_port))
        element.set("autoport", "no")
    if spec.keymap:
        element.set("keymap", spec.keymap)
    ET.SubElement(element, "listen", type="address", address=LOOPBACK)
    return element


def _serial(port: int | None) -> ET.Element:
    """A TCP serial console on loopback when a port is given, else a pty that
    libvirt's console API (virDomainOpenConsole) reaches."""
    if port is None:
        element = ET.Element("serial", type="pty")
    else:
        element = ET.Element("serial", type="tcp")
        ET.SubElement(element, "source", mode="bind", host=LOOPBACK, service=str(port))
        ET.SubElement(element, "protocol", type="telnet")
    ET.SubElement(element, "target", port="0")
    return element


def volume_xml(name: str, capacity_bytes: int, volume_format: str) -> str:
    volume = ET.Element("volume")
    _text(volume, "name", name)
    _text(volume, "capacity", str(capacity_bytes), unit="bytes")
    _text(volume, "allocation", "0", unit="bytes")
    target = ET.SubElement(volume, "target")
    ET.SubElement(target, "format", type=volume_format)
    return ET.tostring(volume, encoding="unicode")


def volume_format(volume_description: str) -> str:
    found = _parse(volume_description).find("./target/format")
    return found.get("type", "raw") if found is not None else "raw"


def attached_volumes(domain_description: str) -> dict[tuple[str, str], str]:
    """(pool, volume) -> target device of the volume discs in domain XML."""
    root = _parse(domain_description)
    attached = {}
    for disk in root.iterfind("./devices/disk[@type='volume']"):
        source, target = disk.find("source"), disk.find("target")
        if source is not None and target is not None:
            key = (source.get("pool", ""), source.get("volume", ""))
            attached[key] = target.get("dev", "")
    return attached


def cdrom_media(domain_description: str) -> dict[str, tuple[str, ...]]:
    """Target device -> what identifies the media in each CD-ROM drive."""
    root = _parse(domain_description)
    found = {}
    for disk in root.iterfind("./devices/disk[@device='cdrom']"):
        target = disk.find("target")
        if target is not None:
            found[target.get("dev", "")] = _media_key(disk.find("source"))
    return found


def _media_key(source: ET.Element | None) -> tuple[str, ...]:
    if source is None:
        return ()
    host = source.find("host")
    return (
        *(source.get(name, "") for name in ("pool", "volume", "protocol", "name")),
        source.get("query", ""),
        "" if host is None else host.get("name", ""),
        "" if host is None else host.get("port", ""),
    )


def _parse(description: str) -> ET.Element:
    # Only libvirtd's own descriptions are parsed here, never user input.
    return ET.fromstring(description)  # noqa: S314


def _text(parent: ET.Element, tag: str, text: str, **attributes: str) -> ET.Element:
    element = ET.SubElement(parent, tag, attributes)
    element.text = text
    return element
