import xml.etree.ElementTree as ET

import pytest

from machines.hypervisors.base import (
    DiscSpec,
    DomainSpec,
    HypervisorError,
    NicSpec,
    VolumeRef,
)
from machines.hypervisors.libvirt_xml import domain_xml

UUID = "0f0e0d0c-0b0a-4908-8706-050403020100"


def _spec(**changes):
    values = {
        "uuid": UUID,
        "name": "web",
        "cores": 3,
        "memory_mib": 1536,
        "discs": [
            DiscSpec("disc-1", "tail1-sata1", "vm1-disc-1", 25600),
            DiscSpec("archive", "tail1-sata1", "vm1-archive", 1024),
        ],
        "nics": [
            NicSpec("52:54:00:00:00:0a", "corral-vlan-10"),
            NicSpec("52:54:00:00:00:0b", "br0", bridge=True),
        ],
        "keymap": "en-gb",
    }
    return DomainSpec(**(values | changes))


def _parse(spec, domain_type="kvm"):
    return ET.fromstring(domain_xml(spec, domain_type))  # noqa: S314


def test_it_sets_identity_memory_and_cores():
    root = _parse(_spec())

    assert root.get("type") == "kvm"
    assert root.findtext("name") == "web"
    assert root.findtext("uuid") == UUID
    assert root.find("memory").attrib == {"unit": "MiB"}
    assert root.findtext("memory") == "1536"
    assert root.findtext("currentMemory") == "1536"
    assert root.findtext("vcpu") == "3"


def test_it_enables_acpi_so_powerdown_works():
    root = _parse(_spec())

    assert root.find("features/acpi") is not None
    assert root.findtext("on_poweroff") == "destroy"


def test_it_attaches_discs_as_virtio_volumes_in_order():
    disks = _parse(_spec()).findall("devices/disk[@device='disk']")

    assert [d.find("source").attrib for d in disks] == [
        {"pool": "tail1-sata1", "volume": "vm1-disc-1"},
        {"pool": "tail1-sata1", "volume": "vm1-archive"},
    ]
    assert [d.find("target").get("dev") for d in disks] == ["vda", "vdb"]
    assert {d.find("target").get("bus") for d in disks} == {"virtio"}
    assert [d.findtext("serial") for d in disks] == ["disc-1", "archive"]
    assert {d.find("driver").get("type") for d in disks} == {"qcow2"}


def test_it_gives_nics_their_macs_on_vlan_networks_or_bridges():
    interfaces = _parse(_spec()).findall("devices/interface")

    assert [i.find("mac").get("address") for i in interfaces] == [
        "52:54:00:00:00:0a",
        "52:54:00:00:00:0b",
    ]
    assert interfaces[0].get("type") == "network"
    assert interfaces[0].find("source").attrib == {"network": "corral-vlan-10"}
    assert interfaces[1].find("source").attrib == {"bridge": "br0"}
    assert interfaces[0].find("model").get("type") == "virtio"


def test_it_listens_for_consoles_on_loopback_only():
    root = _parse(_spec())
    graphics = root.find("devices/graphics")

    assert graphics.get("type") == "vnc"
    assert graphics.get("listen") == "127.0.0.1"
    assert graphics.get("autoport") == "yes"
    assert graphics.get("keymap") == "en-gb"
    assert graphics.find("listen").attrib == {
        "type": "address",
        "address": "127.0.0.1",
    }
    assert root.find("devices/serial").get("type") == "pty"


def test_it_binds_fixed_console_ports_to_loopback():
    root = _parse(_spec(vnc_port=5907, serial_port=7007))

    assert root.find("devices/graphics").get("port") == "5907"
    assert root.find("devices/graphics").get("autoport") == "no"
    source = root.find("devices/serial[@type='tcp']/source")
    assert source.attrib == {"mode": "bind", "host": "127.0.0.1", "service": "7007"}


def test_it_keeps_an_empty_cdrom_drive_without_url():
    cdrom = _parse(_spec()).find("devices/disk[@device='cdrom']")

    assert cdrom.get("type") == "file"
    assert cdrom.find("source") is None
    assert cdrom.find("readonly") is not None


def test_it_boots_the_cdrom_url_over_the_network():
    spec = _spec(cdrom_url="https://images.example.org:8443/rescue.iso?v=2")
    cdrom = _parse(spec).find("devices/disk[@device='cdrom']")

    assert cdrom.get("type") == "network"
    source = cdrom.find("source")
    assert source.attrib == {"protocol": "https", "name": "/rescue.iso", "query": "v=2"}
    assert source.find("host").attrib == {
        "name": "images.example.org",
        "port": "8443",
    }


@pytest.mark.parametrize(
    "url", ["file:///etc/shadow", "https://", "gopher://x/y", "/local.iso"]
)
def test_it_refuses_cdrom_urls_that_are_not_remote(url):
    with pytest.raises(HypervisorError):
        domain_xml(_spec(cdrom_url=url), "kvm")


def test_it_attaches_the_seed_as_a_second_readonly_cdrom():
    spec = _spec(seed=VolumeRef("tail1-sata1", f"{UUID}-cidata.iso"))
    cdroms = _parse(spec).findall("devices/disk[@device='cdrom']")

    assert [c.find("target").get("dev") for c in cdroms] == ["hdc", "hdd"]
    assert cdroms[1].find("source").get("volume") == f"{UUID}-cidata.iso"
    assert cdroms[1].find("readonly") is not None
