"""A small cluster on a simulated head, for the worker's tests."""

from __future__ import annotations

import itertools
from dataclasses import dataclass
from pathlib import Path

from machines.cluster import write_blank_qcow2
from machines.hypervisors.simulated import SimulatedDriver
from machines.models import (
    Disc,
    Head,
    IpRange,
    NetworkInterface,
    Operation,
    StoragePool,
    Tail,
    VirtualMachine,
    Vlan,
)
from machines.worker import execute
from tests.factories import make_account, make_vm

PASSWORD = "root password"
_macs = itertools.count(1)


@dataclass
class Cluster:
    head: Head
    pool: StoragePool
    backup_pool: StoragePool
    vlan: Vlan
    directory: Path

    @property
    def driver(self) -> SimulatedDriver:
        return SimulatedDriver(self.directory, head=self.head.label)


def make_cluster(directory: Path, label: str = "head1", delay: float = 0) -> Cluster:
    head = Head.objects.create(
        label=label, uri=f"simulated://{label}{directory}?delay={delay}"
    )
    tail = Tail.objects.create(label=f"tail-{label}")
    pool = StoragePool.objects.create(
        tail=tail, label=f"sata-{label}", libvirt_pool="sata", grade="sata", size=10**6
    )
    backup_pool = StoragePool.objects.create(
        tail=tail,
        label=f"backup-{label}",
        libvirt_pool="backups",
        grade="iceberg",
        size=10**6,
        backup=True,
    )
    vlan, _ = Vlan.objects.get_or_create(num=1)
    IpRange.objects.get_or_create(vlan=vlan, spec="10.20.0.0/24")
    return Cluster(head, pool, backup_pool, vlan, directory)


def make_machine(cluster: Cluster, **fields) -> VirtualMachine:
    group = make_account().groups.get()
    vm = make_vm(group, head=cluster.head, **fields)
    Disc.objects.create(
        virtual_machine=vm,
        label="disc-1",
        size=1024,
        storage_grade="sata",
        storage_pool=cluster.pool,
    )
    n = next(_macs)
    NetworkInterface.objects.create(
        virtual_machine=vm,
        mac=f"52:54:00:00:{n >> 8:02x}:{n & 255:02x}",
        vlan=cluster.vlan,
    )
    return vm


def start(vm: VirtualMachine, kind: str, disc: Disc | None = None, **params):
    return Operation.objects.create(
        kind=kind, virtual_machine=vm, head=vm.head, disc=disc, params=params
    )


def run(op: Operation) -> Operation:
    execute(op.pk)
    op.refresh_from_db()
    return op


def image(distribution: str = "bookworm", password: str = PASSWORD) -> dict:
    return {
        "distribution": distribution,
        "root_password": password,
        "ssh_public_key": "ssh-ed25519 AAAA alice@example.org",
        "firstboot_script": "echo hello",
    }


def built(
    cluster: Cluster, power_on: bool = True, imaged: bool = False, **fields
) -> VirtualMachine:
    """A machine created through a create operation. Imaging costs a few
    seconds (the seed hashes the root password at full strength), so only
    tests about images ask for it."""
    vm = make_machine(cluster, desired_power_on=power_on, **fields)
    reimage = image() if imaged else {"distribution": "none"}
    op = run(start(vm, "create", power_on=power_on, reimage=reimage))
    assert op.status == "succeeded", op.error
    vm.refresh_from_db()
    return vm


def prepared_cluster(tmp_path: Path, settings) -> Cluster:
    """Settings for fast, deterministic operations, base images, a cluster."""
    settings.CORRAL_IMAGE_DIR = tmp_path / "images"
    settings.CORRAL_FAULT_DIR = tmp_path / "faults"
    settings.CORRAL_FAULT_INJECTION = True
    settings.CORRAL_OPERATION_RETRY_SECONDS = 0
    settings.CORRAL_POWERDOWN_GRACE_SECONDS = 0
    settings.CORRAL_OPERATION_MAX_ATTEMPTS = 3
    settings.CORRAL_IMAGE_DIR.mkdir()
    for name in ("bookworm", "noble"):
        write_blank_qcow2(settings.CORRAL_IMAGE_DIR / f"{name}.qcow2")
    return make_cluster(tmp_path / "heads")
