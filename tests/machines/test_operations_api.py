import pytest

from machines.models import Operation
from tests.machines.conftest import check_access

pytestmark = pytest.mark.django_db


def start(world) -> dict:
    response = world.api.put(world.vm_path, {"autoreboot_on": True, "power_on": True})
    return response.json()["operation"]


def test_an_operation_is_readable_by_whoever_sees_its_machine(world):
    op = start(world)

    check_access(world, "get", f"/operations/{op['id']}", write=False)
    response = world.api.get(f"/operations/{op['id']}")

    assert response.status_code == 200
    body = response.json()
    assert body["kind"] == "power_on" and body["status"] == "queued"
    assert body["virtual_machine_id"] == world.vm.pk
    assert body["actor"] == world.owner.username
    assert body["head"] == world.infra.head.label


def test_a_machine_lists_its_operations_newest_first(world):
    op = start(world)

    response = world.api.get(f"{world.vm_path}/operations")

    assert [o["kind"] for o in response.json()] == ["power_on", "create"]
    assert response.json()[0]["id"] == op["id"]


def test_a_purged_machines_operation_stays_readable_by_its_actor(world):
    response = world.api.delete(f"{world.vm_path}?purge=true")
    op_id = response.json()["id"]

    assert world.api.get(f"/operations/{op_id}").status_code == 200
    assert world.console.get(f"/operations/{op_id}").status_code == 404
    assert Operation.objects.get(pk=op_id).virtual_machine is None


def test_unknown_operations_are_not_found(world):
    assert world.api.get("/operations/999999").status_code == 404
    assert world.api.get("/operations/nope").status_code == 404
