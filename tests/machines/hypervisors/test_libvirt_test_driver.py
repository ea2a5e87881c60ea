"""The libvirt driver against libvirt's built-in `test:///default` driver.

That driver keeps everything in memory and shares it within the process, so
each test uses fresh uuids and names. It cannot resize volumes, upload into
them or change devices of a running domain; those paths are skipped here and
run by test_libvirt_qemu.py against a real daemon.
"""

import uuid
import xml.etree.ElementTree as ET
from dataclasses import replace

import libvirt
import pytest

from machines.hypervisors.base import (
    DiscSpec,
    DomainSpec,
    HypervisorError,
    NicSpec,
    NotFound,
    PowerState,
    TransientHypervisorError,
    VolumeRef,
)
from machines.hypervisors.libvirt_driver import MIB, LibvirtDriver

POOL = "default-pool"
NETWORK = "default"
NO_RESIZE = "libvirt's test driver does not implement virStorageVolResize"


@pytest.fixture
def driver():
    driver = LibvirtDriver("test:///default", poll_seconds=0.01)
    yield driver
    driver.close()


@pytest.fixture
def spec(driver):
    name = f"vm-{uuid.uuid4().hex[:8]}"
    spec = DomainSpec(
        uuid=str(uuid.uuid4()),
        name=name,
        cores=2,
        memory_mib=256,
        discs=[DiscSpec("disc-1", POOL, f"{name}-disc-1", 64)],
        nics=[NicSpec("52:54:00:12:34:56", NETWORK)],
    )
    driver.create_volume(POOL, spec.discs[0].volume, 64)
    driver.define(spec)
    yield spec
    driver.purge(spec)


def _libvirt_domain(driver, spec):
    return driver.conn.lookupByUUIDString(spec.uuid)


def test_it_defines_the_domain_libvirt_reports(driver, spec):
    description = _libvirt_domain(driver, spec).XMLDesc(0)
    root = ET.fromstring(description)  # noqa: S314

    assert root.findtext("name") == spec.name
    assert root.findtext("vcpu") == "2"
    assert root.findtext("memory") == str(256 * 1024)
    assert root.find("devices/interface/mac").get("address") == "52:54:00:12:34:56"
    assert root.find("features/acpi") is not None


def test_it_uses_the_test_drivers_own_domain_type(driver):
    assert driver.guest_type()[0] == "test"


def test_it_updates_a_stopped_definition(driver, spec):
    driver.define(replace(spec, cores=4, memory_mib=512))

    info = _libvirt_domain(driver, spec).info()
    assert info[1] == 512 * 1024
    assert info[3] == 4


def test_it_powers_on_and_off(driver, spec):
    driver.start(spec.uuid)
    driver.start(spec.uuid)
    assert _libvirt_domain(driver, spec).state()[0] == libvirt.VIR_DOMAIN_RUNNING
    assert driver.state(spec.uuid) is PowerState.RUNNING

    driver.stop(spec.uuid)
    driver.stop(spec.uuid)
    assert _libvirt_domain(driver, spec).state()[0] == libvirt.VIR_DOMAIN_SHUTOFF
    assert driver.state(spec.uuid) is PowerState.SHUT_OFF


def test_it_sends_keys_and_resets_a_running_domain(driver, spec):
    driver.start(spec.uuid)

    driver.send_keys(spec.uuid, ["ctrl", "alt", "delete"])
    driver.reset(spec.uuid)

    assert driver.state(spec.uuid) is PowerState.RUNNING


def test_it_refuses_to_reset_a_stopped_domain(driver, spec):
    with pytest.raises(HypervisorError):
        driver.reset(spec.uuid)


def test_it_reports_a_guest_that_obeys_powerdown(driver, spec):
    driver.start(spec.uuid)

    result = driver.shutdown(spec.uuid, grace_seconds=1)

    assert result.powered_off
    assert result.state is PowerState.SHUT_OFF


def test_it_reports_a_stopped_domain_as_already_off(driver, spec):
    result = driver.shutdown(spec.uuid, grace_seconds=1)

    assert result.powered_off
    assert result.waited_seconds == 0


def test_it_treats_unknown_domains_as_absent(driver):
    missing = str(uuid.uuid4())

    assert driver.state(missing) is PowerState.ABSENT
    with pytest.raises(NotFound):
        driver.start(missing)
    driver.undefine(missing)


def test_it_refuses_to_undefine_a_running_domain(driver, spec):
    driver.start(spec.uuid)

    with pytest.raises(HypervisorError):
        driver.undefine(spec.uuid)


def test_it_creates_volumes_idempotently(driver, spec):
    volume = spec.discs[0].volume
    driver.create_volume(POOL, volume, 999)

    pool = driver.conn.storagePoolLookupByName(POOL)
    assert pool.storageVolLookupByName(volume).info()[1] == 64 * MIB
    assert driver.volume_size_mib(POOL, volume) == 64


def test_it_copies_a_disc_into_a_backup_and_deletes_it(driver, spec):
    source = spec.discs[0].ref
    backup = VolumeRef(POOL, f"{source.volume}-backup")

    driver.copy_volume(source, backup)
    driver.copy_volume(source, backup)
    assert driver.volume_size_mib(POOL, backup.volume) == 64

    driver.delete_volume(POOL, backup.volume)
    driver.delete_volume(POOL, backup.volume)
    with pytest.raises(NotFound):
        driver.volume_size_mib(POOL, backup.volume)


def test_it_refuses_to_shrink_a_volume(driver, spec):
    with pytest.raises(HypervisorError, match="shrink"):
        driver.grow_volume(POOL, spec.discs[0].volume, 32)


@pytest.mark.skip(reason=NO_RESIZE)
def test_it_grows_a_volume(driver, spec):
    driver.grow_volume(POOL, spec.discs[0].volume, 128)

    assert driver.volume_size_mib(POOL, spec.discs[0].volume) == 128


def test_it_purges_the_domain_and_its_volumes(driver, spec):
    driver.start(spec.uuid)

    driver.purge(spec)
    driver.purge(spec)

    assert driver.state(spec.uuid) is PowerState.ABSENT
    with pytest.raises(NotFound):
        driver.volume_size_mib(POOL, spec.discs[0].volume)


def test_it_refuses_an_image_that_is_not_qcow2(driver, spec, tmp_path):
    image = tmp_path / "raw.qcow2"
    image.write_bytes(b"\0" * 512)

    with pytest.raises(HypervisorError, match="not qcow2"):
        driver.image_volume(POOL, spec.discs[0].volume, image)


def test_it_refuses_an_image_with_a_backing_file(driver, spec, tmp_path):
    image = tmp_path / "linked.qcow2"
    header = b"QFI\xfb" + (3).to_bytes(4, "big") + (72).to_bytes(8, "big")
    image.write_bytes(header + b"\0" * 16 + (MIB).to_bytes(8, "big"))

    with pytest.raises(HypervisorError, match="backing file"):
        driver.image_volume(POOL, spec.discs[0].volume, image)


def test_it_refuses_an_image_bigger_than_the_disc(driver, spec, tmp_path):
    image = tmp_path / "big.qcow2"
    header = b"QFI\xfb" + (3).to_bytes(4, "big") + b"\0" * 16
    image.write_bytes(header + (1024 * MIB).to_bytes(8, "big"))

    with pytest.raises(HypervisorError, match="needs 1024 MiB"):
        driver.image_volume(POOL, spec.discs[0].volume, image)


def test_it_reports_an_unreachable_daemon_as_transient(tmp_path):
    driver = LibvirtDriver(f"qemu:///system?socket={tmp_path}/nothing.sock")

    with pytest.raises(TransientHypervisorError):
        driver.state(str(uuid.uuid4()))
