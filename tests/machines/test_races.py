"""Things that must happen once, under real concurrency on PostgreSQL."""

import threading
from concurrent.futures import ThreadPoolExecutor

import pytest
from django.db import connection

from machines import actions
from machines.models import IpAddress, NetworkInterface, Operation, VirtualMachine
from tests.machines.conftest import built_vm

pytestmark = [
    pytest.mark.race,
    pytest.mark.django_db(transaction=True, serialized_rollback=True),
]

THREADS = 50


@pytest.fixture(autouse=True)
def _postgresql_only():
    if connection.vendor != "postgresql":
        pytest.skip("race tests need PostgreSQL")


def race(count: int, work) -> list:
    """Run `work(i)` in `count` threads released together; each result is the
    return value or the exception raised."""
    barrier = threading.Barrier(count)

    def one(i):
        barrier.wait()
        try:
            return work(i)
        except Exception as exc:
            return exc
        finally:
            connection.close()

    with ThreadPoolExecutor(max_workers=count) as pool:
        return list(pool.map(one, range(count)))


def test_concurrent_ip_creates_never_share_an_address(world):
    # One NIC per thread, so that only the address allocation itself is shared.
    nics = [world.vm.network_interfaces.get()]
    nics += [
        built_vm(world.group, world.owner, name=f"m{i}").network_interfaces.get()
        for i in range(THREADS - 1)
    ]
    spec = {"addresses": 1, "family": "ipv4", "contiguous": False, "reason": ""}

    results = race(
        THREADS, lambda i: actions.create_ips(nics[i], spec, actor=world.owner)
    )

    assert [r for r in results if isinstance(r, Exception)] == []
    addresses = list(IpAddress.objects.values_list("address", flat=True))
    assert len(addresses) == len(set(addresses)) == 3 * THREADS


def test_concurrent_creations_get_distinct_names_macs_and_addresses(world):
    def create(i):
        return actions.create_virtual_machine(
            world.group,
            {"name": f"vm-{i}", "cores": 1, "memory": 512},
            discs=[{"size": 100, "storage_grade": "sata"}],
            actor=world.owner,
        )

    results = race(THREADS, create)

    assert [r for r in results if isinstance(r, Exception)] == []
    assert VirtualMachine.objects.count() == THREADS + 1
    macs = list(NetworkInterface.objects.values_list("mac", flat=True))
    assert len(macs) == len(set(macs)) == THREADS + 1
    addresses = list(IpAddress.objects.values_list("address", flat=True))
    assert len(addresses) == len(set(addresses)) == 2 * (THREADS + 1)


def test_concurrent_creations_of_one_name_succeed_once(world):
    def create(i):
        return actions.create_virtual_machine(
            world.group, {"name": "same", "cores": 1, "memory": 512}, actor=world.owner
        )

    results = race(10, create)

    created = [r for r in results if not isinstance(r, Exception)]
    refused = [r for r in results if isinstance(r, actions.Invalid)]
    assert len(created) == 1 and len(refused) == 9
    assert all("name" in r.errors for r in refused)
    assert VirtualMachine.objects.filter(name="same").count() == 1
    assert IpAddress.objects.count() == 4


def test_two_concurrent_power_operations_one_runs_one_conflicts(world):
    vm = built_vm(world.group, world.owner, name="power")
    bodies = [
        {"autoreboot_on": True, "power_on": True},
        {"autoreboot_on": True, "power_on": True},
    ]

    results = race(
        2,
        lambda i: actions.update_virtual_machine(vm, bodies[i], actor=world.owner),
    )

    ran = [r for r in results if isinstance(r, tuple)]
    conflicts = [r for r in results if isinstance(r, actions.OperationConflict)]
    assert len(ran) == 1 and len(conflicts) == 1
    assert conflicts[0].holder.pk == ran[0][1].pk
    assert Operation.objects.filter(virtual_machine=vm, kind="power_on").count() == 1
