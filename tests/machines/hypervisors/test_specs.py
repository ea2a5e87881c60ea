import pytest

from machines.hypervisors import keys
from machines.hypervisors.base import (
    DiscSpec,
    DomainSpec,
    HypervisorError,
    ImageStore,
    NicSpec,
    NotFound,
    SeedSpec,
    driver_for_uri,
    vlan_network,
)
from machines.hypervisors.libvirt_driver import LibvirtDriver
from machines.hypervisors.simulated import SimulatedDriver

UUID = "0f0e0d0c-0b0a-4908-8706-050403020100"


def test_it_freezes_lists_into_tuples():
    spec = DomainSpec(
        uuid=UUID,
        name="vm",
        cores=1,
        memory_mib=512,
        discs=[DiscSpec("disc-1", "pool", "vol", 10)],
        nics=[NicSpec("52:54:00:AB:CD:EF", vlan_network(7))],
    )

    assert isinstance(spec.discs, tuple)
    assert spec.nics[0].mac == "52:54:00:ab:cd:ef"
    assert spec.nics[0].network == "corral-vlan-7"
    assert hash(spec)


@pytest.mark.parametrize(
    "changes",
    [
        {"uuid": "not-a-uuid"},
        {"name": "../etc"},
        {"cores": 0},
        {"discs": [DiscSpec("a", "p", f"v{n}", 1) for n in range(2)]},
        {"discs": [DiscSpec(f"d{n}", "p", f"v{n}", 1) for n in range(9)]},
    ],
)
def test_it_refuses_bad_specs(changes):
    values = {"uuid": UUID, "name": "vm", "cores": 1, "memory_mib": 1} | changes

    with pytest.raises(ValueError):
        DomainSpec(**values)


def test_it_refuses_bad_macs_and_volume_names():
    with pytest.raises(ValueError):
        NicSpec("52:54:00:00:00", "net")
    with pytest.raises(ValueError):
        DiscSpec("disc", "pool", "a/b", 1)


def test_it_hides_the_root_password_from_repr():
    seed = SeedSpec("id", "vm.example", "hunter2", ssh_keys="ssh-a x\n\nssh-b y")

    assert "hunter2" not in repr(seed)
    assert seed.ssh_keys == ("ssh-a x", "ssh-b y")


def test_it_maps_sendkeys_to_linux_codes():
    assert keys.keycodes(["ctrl", "alt", "delete"]) == [29, 56, 111]
    assert keys.keycodes(["F1", "a", "0", "ret"]) == [59, 30, 11, 28]
    assert "sysrq" in keys.SENDKEYS


def test_it_refuses_unknown_or_too_many_keys():
    with pytest.raises(HypervisorError, match="bogus"):
        keys.keycodes(["ctrl", "bogus"])
    with pytest.raises(HypervisorError):
        keys.keycodes(["a"] * 17)


def test_it_finds_base_images_by_distribution(tmp_path):
    (tmp_path / "stretch.qcow2").write_bytes(b"QFI\xfb")
    store = ImageStore(tmp_path)

    assert store.path_for("stretch") == tmp_path / "stretch.qcow2"
    assert store.distributions() == ["stretch"]
    with pytest.raises(NotFound):
        store.path_for("symbiosis")
    with pytest.raises(ValueError):
        store.path_for("../stretch")


def test_it_picks_the_driver_from_the_uri(tmp_path):
    simulated = driver_for_uri(f"simulated://head7{tmp_path}?delay=0")
    real = driver_for_uri("test:///default")

    assert isinstance(simulated, SimulatedDriver)
    assert (simulated.head, simulated.directory, simulated.delay) == (
        "head7",
        tmp_path,
        0.0,
    )
    assert isinstance(real, LibvirtDriver)
