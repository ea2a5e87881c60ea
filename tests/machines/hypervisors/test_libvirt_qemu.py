"""The libvirt driver against a real libvirtd running QEMU.

A guest without an operating system is enough: the firmware runs, devices are
real, and the guest ignores the ACPI power button, which is exactly the case
the driver must report without forcing the machine off. Run
`.ci/libvirt-setup.sh` first; without a daemon the test is skipped locally
and fails in CI (when CI is set).
"""

import os
import shutil
import subprocess
import tempfile
import uuid
import xml.etree.ElementTree as ET
from dataclasses import replace
from pathlib import Path

import libvirt
import pytest

from machines.hypervisors.base import (
    DiscSpec,
    DomainSpec,
    NicSpec,
    PowerState,
    SeedSpec,
    VolumeRef,
    seed_volume_name,
)
from machines.hypervisors.libvirt_driver import MIB, LibvirtDriver

pytestmark = pytest.mark.integration

# Another daemon (e.g. qemu+ssh://head/system) can be named for a manual run.
URI = os.environ.get("CORRAL_LIBVIRT_TEST_URI", "qemu:///system")
GRACE_SECONDS = 5


@pytest.fixture(scope="module")
def conn():
    try:
        conn = libvirt.open(URI)
    except libvirt.libvirtError as error:
        reason = f"libvirtd at {URI} is unreachable ({error.get_error_message()})"
        if os.environ.get("CI"):
            pytest.fail(f"{reason}; CI must run this test")
        pytest.skip(f"{reason}; run .ci/libvirt-setup.sh")
    yield conn
    conn.close()


@pytest.fixture(scope="module")
def workdir():
    # QEMU runs as libvirt-qemu and must reach the pools: pytest's tmp_path
    # lives under a directory only root may enter.
    path = Path(tempfile.mkdtemp(prefix="corral-it-", dir="/var/tmp"))
    path.chmod(0o755)
    yield path
    shutil.rmtree(path, ignore_errors=True)


@pytest.fixture(scope="module")
def names():
    return f"corral-it-{uuid.uuid4().hex[:8]}"


def _define_pool(conn, name, path):
    path.mkdir(mode=0o755)
    pool = conn.storagePoolDefineXML(
        f"<pool type='dir'><name>{name}</name>"
        f"<target><path>{path}</path></target></pool>"
    )
    pool.create(0)
    return pool


@pytest.fixture(scope="module")
def pools(conn, workdir, names):
    created = [
        _define_pool(conn, f"{names}-{kind}", workdir / kind)
        for kind in ("sata", "backup")
    ]
    yield [pool.name() for pool in created]
    for pool in created:
        for volume in pool.listAllVolumes():
            volume.delete(0)
        pool.destroy()
        pool.undefine()


@pytest.fixture(scope="module")
def network(conn, names):
    # Isolated: no <forward>, no addresses, so no DHCP and no firewall rules.
    net = conn.networkCreateXML(f"<network><name>{names}</name></network>")
    yield net.name()
    net.destroy()


@pytest.fixture(scope="module")
def base_image(workdir):
    path = workdir / "blank.qcow2"
    subprocess.run(  # noqa: S603 - fixed arguments
        ["qemu-img", "create", "-q", "-f", "qcow2", str(path), "64M"],  # noqa: S607
        check=True,
    )
    return path


@pytest.fixture
def domain_uuid(conn):
    """A fresh uuid whose domain is removed even when the test fails midway."""
    domain_uuid = str(uuid.uuid4())
    yield domain_uuid
    try:
        domain = conn.lookupByUUIDString(domain_uuid)
    except libvirt.libvirtError:
        return
    if domain.isActive():
        domain.destroy()
    domain.undefine()


def _volume_bytes(conn, pool, name):
    return conn.storagePoolLookupByName(pool).storageVolLookupByName(name).info()[1]


def _live_xml(conn, spec):
    description = conn.lookupByUUIDString(spec.uuid).XMLDesc(0)
    return ET.fromstring(description)  # noqa: S314


def _state(conn, spec):
    return conn.lookupByUUIDString(spec.uuid).state()[0]


def test_a_machine_through_its_life(
    conn, pools, network, base_image, names, domain_uuid
):
    sata, backup = pools
    driver = LibvirtDriver(URI)
    spec = DomainSpec(
        uuid=domain_uuid,
        name=names,
        cores=1,
        memory_mib=128,
        discs=[DiscSpec("disc-1", sata, f"{names}-disc-1", 128)],
        nics=[NicSpec("52:54:00:c0:22:01", network)],
        keymap="en-gb",
    )
    seed = SeedSpec("it-1", f"{names}.example", "pw-not-logged", ("ssh-ed25519 k",))

    # Create from the base image.
    driver.create_volume(sata, spec.discs[0].volume, 128)
    driver.define(spec)
    spec = driver.reimage(spec, base_image, seed)
    assert _volume_bytes(conn, sata, spec.discs[0].volume) == 128 * MIB
    root = _live_xml(conn, spec)
    assert root.get("type") == ("kvm" if os.path.exists("/dev/kvm") else "qemu")
    seed_disk = root.find("devices/disk[@device='cdrom']/source[@volume]")
    assert seed_disk.get("volume") == seed_volume_name(spec.uuid)

    # Start: consoles on loopback, the NIC on our network with its MAC.
    driver.start(spec.uuid)
    assert _state(conn, spec) == libvirt.VIR_DOMAIN_RUNNING
    root = _live_xml(conn, spec)
    assert root.find("devices/graphics").get("listen") == "127.0.0.1"
    assert int(root.find("devices/graphics").get("port")) >= 5900
    interface = root.find("devices/interface")
    assert interface.find("mac").get("address") == "52:54:00:c0:22:01"
    assert interface.find("source").get("network") == network

    # Keys and the reset button leave it running.
    driver.send_keys(spec.uuid, ["ctrl", "alt", "delete"])
    driver.reset(spec.uuid)
    assert _state(conn, spec) == libvirt.VIR_DOMAIN_RUNNING

    # No OS listens for the power button: reported, not forced.
    result = driver.shutdown(spec.uuid, grace_seconds=GRACE_SECONDS)
    assert not result.powered_off
    assert result.state is PowerState.RUNNING
    assert result.waited_seconds >= GRACE_SECONDS
    assert _state(conn, spec) == libvirt.VIR_DOMAIN_RUNNING

    # A new disc is plugged in live; the first grows live.
    driver.create_volume(sata, f"{names}-disc-2", 32)
    disc_2 = DiscSpec("disc-2", sata, f"{names}-disc-2", 32)
    spec = replace(spec, discs=(*spec.discs, disc_2))
    driver.define(spec)
    live_discs = _live_xml(conn, spec).findall("devices/disk[@device='disk']")
    assert [d.find("target").get("dev") for d in live_discs] == ["vda", "vdb"]
    driver.grow_volume(sata, spec.discs[0].volume, 192, running_uuid=spec.uuid)
    assert _volume_bytes(conn, sata, spec.discs[0].volume) == 192 * MIB

    # Stop, grow offline, reimage: the disc keeps its grown size.
    driver.stop(spec.uuid)
    assert _state(conn, spec) == libvirt.VIR_DOMAIN_SHUTOFF
    driver.grow_volume(sata, spec.discs[0].volume, 256)
    assert _volume_bytes(conn, sata, spec.discs[0].volume) == 256 * MIB
    spec = driver.reimage(spec, base_image, SeedSpec("it-2", "h.example", "pw2"))
    assert _volume_bytes(conn, sata, spec.discs[0].volume) == 256 * MIB

    # Back up into the backup pool and restore over the disc.
    backup_ref = VolumeRef(backup, f"{names}-disc-1-backup")
    driver.copy_volume(spec.discs[0].ref, backup_ref)
    assert _volume_bytes(conn, backup, backup_ref.volume) == 256 * MIB
    driver.copy_volume(backup_ref, spec.discs[0].ref)
    assert _volume_bytes(conn, sata, spec.discs[0].volume) == 256 * MIB
    driver.start(spec.uuid)
    assert _state(conn, spec) == libvirt.VIR_DOMAIN_RUNNING

    # Purge a running machine: domain, discs and seed all go.
    driver.purge(spec)
    with pytest.raises(libvirt.libvirtError):
        conn.lookupByUUIDString(spec.uuid)
    left = conn.storagePoolLookupByName(sata).listVolumes()
    assert not [name for name in left if names in name or spec.uuid in name]
    driver.delete_volume(backup, backup_ref.volume)
