import json
import multiprocessing
import uuid

import pytest

from machines.hypervisors.base import (
    DiscSpec,
    DomainSpec,
    HypervisorError,
    NotFound,
    PowerState,
    SeedSpec,
    VolumeRef,
)
from machines.hypervisors.simulated import SimulatedDriver


@pytest.fixture
def driver(tmp_path):
    return SimulatedDriver(tmp_path, head="head1")


def _spec(name="vm", discs=1):
    return DomainSpec(
        uuid=str(uuid.uuid4()),
        name=name,
        cores=1,
        memory_mib=512,
        discs=[DiscSpec(f"disc-{n}", "sata", f"{name}-{n}", 100) for n in range(discs)],
    )


def _created(driver, spec):
    for disc in spec.discs:
        driver.create_volume(disc.pool, disc.volume, disc.size_mib)
    driver.define(spec)
    return spec


def test_it_runs_a_machine_through_its_power_states(driver):
    spec = _created(driver, _spec())

    assert driver.state(spec.uuid) is PowerState.SHUT_OFF
    driver.start(spec.uuid)
    driver.start(spec.uuid)
    assert driver.state(spec.uuid) is PowerState.RUNNING

    driver.send_keys(spec.uuid, ["ctrl", "alt", "delete"])
    driver.reset(spec.uuid)
    record = driver.domain(spec.uuid)
    assert record["keys_sent"] == [["ctrl", "alt", "delete"]]
    assert record["resets"] == 1

    driver.stop(spec.uuid)
    driver.stop(spec.uuid)
    assert driver.state(spec.uuid) is PowerState.SHUT_OFF


def test_it_refuses_reset_and_keys_when_off(driver):
    spec = _created(driver, _spec())

    with pytest.raises(HypervisorError):
        driver.reset(spec.uuid)
    with pytest.raises(HypervisorError):
        driver.send_keys(spec.uuid, ["ctrl"])


def test_it_reports_missing_domains(driver):
    missing = str(uuid.uuid4())

    assert driver.state(missing) is PowerState.ABSENT
    with pytest.raises(NotFound):
        driver.start(missing)


def test_it_refuses_to_start_without_its_discs(driver):
    spec = _spec()
    driver.define(spec)

    with pytest.raises(NotFound):
        driver.start(spec.uuid)


def test_it_powers_off_a_guest_that_honours_acpi(driver):
    spec = _created(driver, _spec())
    driver.start(spec.uuid)

    result = driver.shutdown(spec.uuid, grace_seconds=1)

    assert result.powered_off
    assert driver.state(spec.uuid) is PowerState.SHUT_OFF


def test_it_leaves_a_guest_that_ignores_acpi_running(driver):
    spec = _created(driver, _spec())
    driver.start(spec.uuid)
    driver.set_honours_acpi(spec.uuid, False)

    result = driver.shutdown(spec.uuid, grace_seconds=0.05)

    assert not result.powered_off
    assert result.state is PowerState.RUNNING
    assert driver.state(spec.uuid) is PowerState.RUNNING


def test_it_grows_but_never_shrinks_volumes(driver):
    driver.create_volume("sata", "v", 100)
    driver.create_volume("sata", "v", 50)
    driver.grow_volume("sata", "v", 300)

    assert driver.volume_size_mib("sata", "v") == 300
    with pytest.raises(HypervisorError):
        driver.grow_volume("sata", "v", 200)


def test_it_backs_up_and_restores_a_disc(driver):
    driver.create_volume("sata", "v", 100)
    driver.copy_volume(VolumeRef("sata", "v"), VolumeRef("iceberg", "v-backup"))
    driver.grow_volume("sata", "v", 200)
    driver.copy_volume(VolumeRef("iceberg", "v-backup"), VolumeRef("sata", "v"))

    assert driver.volume_size_mib("iceberg", "v-backup") == 100
    assert driver.volume("sata", "v")["copied_from"] == "iceberg/v-backup"
    assert driver.volume_size_mib("sata", "v") == 100


def test_it_reimages_with_a_seed_and_keeps_no_password(driver, tmp_path):
    image = tmp_path / "stretch.qcow2"
    image.write_bytes(b"QFI\xfb")
    spec = _created(driver, _spec())
    seed = SeedSpec("i-1", "vm.example", "s3cret-pass", ssh_keys=("ssh-ed25519 k",))

    imaged = driver.reimage(spec, image, seed)

    assert imaged.seed == VolumeRef("sata", f"{spec.uuid}-cidata.iso")
    assert driver.volume("sata", spec.discs[0].volume)["image"] == "stretch"
    assert driver.volume("sata", imaged.seed.volume)["seed"]["ssh_keys"] == 1
    assert "s3cret-pass" not in driver.path.read_text()


def test_it_refuses_to_reimage_a_running_machine(driver, tmp_path):
    spec = _created(driver, _spec())
    driver.start(spec.uuid)

    with pytest.raises(HypervisorError):
        driver.reimage(spec, tmp_path / "x.qcow2", SeedSpec("i", "h", "p"))


def test_it_purges_domain_discs_and_seed(driver, tmp_path):
    image = tmp_path / "stretch.qcow2"
    image.write_bytes(b"QFI\xfb")
    spec = _created(driver, _spec(discs=2))
    imaged = driver.reimage(spec, image, SeedSpec("i", "h", "p"))
    driver.start(spec.uuid)

    driver.purge(imaged)
    driver.purge(imaged)

    assert driver.state(spec.uuid) is PowerState.ABSENT
    assert json.loads(driver.path.read_text())["pools"] == {"sata": {}}


def test_it_shares_state_between_driver_instances(tmp_path):
    spec = _spec()
    _created(SimulatedDriver(tmp_path, head="h"), spec)
    SimulatedDriver(tmp_path, head="h").start(spec.uuid)

    assert SimulatedDriver(tmp_path, head="h").state(spec.uuid) is PowerState.RUNNING
    assert SimulatedDriver(tmp_path, head="other").state(spec.uuid) == "absent"


def _churn(directory, worker, rounds):
    driver = SimulatedDriver(directory, head="busy")
    for n in range(rounds):
        name = f"w{worker}-{n}"
        driver.create_volume("sata", name, 10)
        driver.grow_volume("sata", name, 20)
        spec = DomainSpec(
            uuid=str(uuid.uuid4()),
            name=name,
            cores=1,
            memory_mib=64,
            discs=[DiscSpec("disc-1", "sata", name, 20)],
        )
        driver.define(spec)
        driver.start(spec.uuid)


def test_two_processes_change_state_without_losing_updates(tmp_path):
    rounds = 40
    context = multiprocessing.get_context("spawn")
    workers = [
        context.Process(target=_churn, args=(tmp_path, worker, rounds))
        for worker in range(2)
    ]
    for process in workers:
        process.start()
    for process in workers:
        process.join(timeout=60)

    assert [p.exitcode for p in workers] == [0, 0]
    state = json.loads((tmp_path / "busy.json").read_text())
    assert len(state["domains"]) == 2 * rounds
    assert {d["power"] for d in state["domains"].values()} == {"running"}
    assert len(state["pools"]["sata"]) == 2 * rounds
    assert {v["size_mib"] for v in state["pools"]["sata"].values()} == {20}
