from datetime import timedelta

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from groups.models import Group
from machines.models import (
    Disc,
    IpAddress,
    IpRange,
    NetworkInterface,
    Operation,
    VirtualMachine,
    Vlan,
)
from panel.models import AuditEvent
from tests.factories import as_user, grant, make_user
from tests.machines.conftest import built_vm, check_access, finish

pytestmark = pytest.mark.django_db

CREATE_BODY = {
    "virtual_machine": {"autoreboot_on": True, "cores": 2, "memory": 2048,
                        "name": "db"},
    "discs": [
        {"label": "disc-1", "storage_grade": "sata", "size": 25600,
         "backup_schedules": [{"start_at": "2026-12-04 00:00:00 GMT",
                               "interval_seconds": 604800, "capacity": 1}]},
        {"storage_grade": "ssd", "size": 10240},
    ],
    "reimage": {"distribution": "symbiosis", "firstboot_script": "",
                "root_password": "s3cret-pass", "ssh_public_key": ""},
}  # fmt: skip


def create_path(world) -> str:
    return f"/accounts/{world.account.name}/groups/default/vm_create"


def test_vm_create_answers_202_with_the_machine_visible_by_name(world):
    response = world.api.post(create_path(world), CREATE_BODY)

    assert response.status_code == 202, response.content
    body = response.json()
    assert body["name"] == "db"
    assert body["cores"] == 2 and body["memory"] == 2048
    assert body["hostname"] == f"db.default.{world.account.name}.corral.local"
    assert body["power_on"] is False
    assert body["autoreboot_on"] is True
    assert body["head"] == world.infra.head.label
    assert body["zone_name"] == "default"
    assert body["management_address"] == "10.0.0.1"
    assert [d["label"] for d in body["discs"]] == ["disc-1", "disc-2"]
    assert body["discs"][0]["backups_enabled"] is True
    assert body["operation"]["kind"] == "create"
    again = world.api.get(f"{world.base}/db?include_deleted=true&view=overview")
    assert again.status_code == 200
    assert again.json()["id"] == body["id"]


def test_vm_create_records_the_create_operation_with_power_and_a_hashed_password(
    world,
):
    body = world.api.post(create_path(world), CREATE_BODY).json()

    vm = VirtualMachine.objects.get(pk=body["id"])
    assert vm.desired_power_on is True
    op = Operation.objects.get(virtual_machine=vm)
    assert op.kind == "create" and op.status == "queued"
    assert op.params["power_on"] is True
    assert sorted(op.params["discs"]) == sorted(vm.discs.values_list("id", flat=True))
    assert "s3cret-pass" not in str(op.params)
    assert op.params["reimage"]["root_password_hash"].startswith("$6$")
    assert "root_password_hash" not in str(body["operation"]["params"])
    assert vm.last_imaged_with == "symbiosis"


def test_every_machine_gets_a_nic_with_one_ipv4_and_one_ipv6_address(world):
    body = world.api.post(create_path(world), CREATE_BODY).json()

    (nic,) = body["network_interfaces"]
    assert nic["vlan_num"] == 1
    assert isinstance(nic["id"], int) and isinstance(nic["vlan_num"], int)
    assert nic["extra_ips"] == {}
    v4, v6 = nic["ips"]
    assert v4.startswith("192.0.2.") and v4 not in ("192.0.2.0", "192.0.2.1")
    assert v6.startswith("2001:db8::")
    assert int(nic["mac"].split(":")[0], 16) & 0x03 == 0x02


def test_vm_create_reports_machine_errors_at_top_level_and_discs_per_disc(world):
    body = {
        "virtual_machine": {"name": "Bad_Name", "memory": "lots"},
        "discs": [{"size": 100}, {"size": 0, "storage_grade": "gold"}],
    }

    response = world.api.post(create_path(world), body)

    assert response.status_code == 400
    errors = response.json()
    assert "name" in errors and "memory" in errors
    assert errors["discs"][0] == {}
    assert set(errors["discs"][1]) == {"size", "storage_grade"}
    assert not VirtualMachine.objects.filter(name="Bad_Name").exists()


def test_vm_create_refuses_a_taken_name_and_writes_nothing(world):
    body = {**CREATE_BODY, "virtual_machine": {"name": world.vm.name}}

    response = world.api.post(create_path(world), body)

    assert response.status_code == 400
    assert "name" in response.json()
    assert VirtualMachine.objects.count() == 1


def test_vm_create_says_so_when_the_vlan_has_no_free_address(world):
    Vlan.objects.create(num=7)
    IpRange.objects.create(vlan=Vlan.objects.get(num=7), spec="2001:db8:7::/64")
    Group.objects.filter(pk=world.group.pk).update(vlan_num=7)

    response = world.api.post(create_path(world), CREATE_BODY)

    assert response.status_code == 400
    assert "no free ipv4" in response.json()["ips"][0]
    assert not VirtualMachine.objects.filter(name="db").exists()
    assert Disc.objects.count() == 1


def test_post_virtual_machines_takes_the_machine_fields_at_top_level(world):
    response = world.api.post(
        world.base, {"name": "flat", "cores": 1, "memory": 512, "power_on": True}
    )

    assert response.status_code == 202
    vm = VirtualMachine.objects.get(name="flat")
    assert vm.desired_power_on is True
    assert Operation.objects.get(virtual_machine=vm).params["power_on"] is True


@pytest.mark.parametrize(
    ("method", "suffix", "body", "write"),
    [
        ("get", "", None, False),
        ("put", "", {"cores": 2}, True),
        ("delete", "", None, True),
        ("post", "/signal", {"signal": "reset"}, True),
        ("post", "/reimage", {"distribution": "trixie", "root_password": "x"}, True),
        ("get", "/privileges", None, True),
        ("get", "/operations", None, False),
    ],
)
def test_machine_endpoints_apply_the_policy(world, method, suffix, body, write):
    check_access(world, method, world.vm_path + suffix, body, write=write)

    world.vm.refresh_from_db()
    assert world.vm.cores == 1 and not world.vm.deleted


def test_creating_needs_group_admin(world):
    check_access(world, "post", create_path(world), CREATE_BODY)
    check_access(world, "post", world.base, {"name": "x"})

    assert VirtualMachine.objects.count() == 1


def test_purging_needs_group_admin(world):
    admin = make_user()
    grant(admin, "vm_admin", world.vm)

    response = as_user(admin).delete(f"{world.vm_path}?purge=true")

    assert response.status_code == 403
    assert VirtualMachine.objects.filter(pk=world.vm.pk).exists()


def test_a_suspended_account_can_be_read_but_not_changed(world):
    world.account.suspended = True
    world.account.save()

    assert world.api.get(world.vm_path).status_code == 200
    response = world.api.put(world.vm_path, {"cores": 4})

    assert response.status_code == 403
    assert "suspended" in response.json()["detail"]


def test_the_machine_is_reachable_by_id(world):
    response = world.api.get(f"/virtual_machines/{world.vm.pk}?include_deleted=true")

    assert response.status_code == 200
    assert response.json()["name"] == world.vm.name
    assert world.outsider.get(f"/virtual_machines/{world.vm.pk}").status_code == 404


def test_start_records_a_power_on_operation_and_reports_the_actual_state(world):
    response = world.api.put(world.vm_path, {"autoreboot_on": True, "power_on": True})

    assert response.status_code == 202
    assert response.json()["power_on"] is False
    assert response.json()["operation"]["kind"] == "power_on"
    world.vm.refresh_from_db()
    assert world.vm.desired_power_on is True and world.vm.autoreboot_on is True


@pytest.mark.parametrize(
    ("body", "kind", "desired"),
    [
        ({"autoreboot_on": False, "power_on": False}, "power_off", False),
        ({"autoreboot_on": True, "power_on": False}, "reboot", True),
    ],
)
def test_stop_and_reboot_of_a_running_machine(world, body, kind, desired):
    VirtualMachine.objects.filter(pk=world.vm.pk).update(
        power_on=True, desired_power_on=True
    )

    response = world.api.put(world.vm_path, body)

    assert response.status_code == 202
    op = Operation.objects.filter(virtual_machine=world.vm).first()
    assert op.kind == kind and op.status == "queued"
    world.vm.refresh_from_db()
    assert world.vm.desired_power_on is desired
    assert world.vm.power_on is True


def test_autoreboot_and_specs_alone_are_stored_without_an_operation(world):
    response = world.api.put(
        world.vm_path,
        {"autoreboot_on": True, "memory": 4096, "cores": 3, "keymap": "de",
         "cdrom_url": "https://example.org/boot.iso"},
    )  # fmt: skip

    assert response.status_code == 200
    body = response.json()
    assert body["memory"] == 4096 and body["cores"] == 3
    assert body["autoreboot_on"] is True and body["keymap"] == "de"
    assert body["cdrom_url"] == "https://example.org/boot.iso"
    assert (
        not Operation.objects.filter(virtual_machine=world.vm)
        .exclude(kind="create")
        .exists()
    )


def test_a_busy_machine_answers_409_naming_the_operation_and_changes_nothing(world):
    first = world.api.put(world.vm_path, {"autoreboot_on": True, "power_on": True})
    holder = first.json()["operation"]["id"]

    response = world.api.put(
        world.vm_path, {"autoreboot_on": False, "power_on": False, "cores": 8}
    )

    assert response.status_code == 409
    assert response.json()["operation_id"] == holder
    assert str(holder) in response.json()["detail"]
    world.vm.refresh_from_db()
    assert world.vm.cores == 1 and world.vm.desired_power_on is True


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"memory": 1.5}, "memory"),
        ({"cores": "many"}, "cores"),
        ({"keymap": "klingon"}, "keymap"),
        ({"hardware_profile": "nope"}, "hardware_profile"),
        ({"name": "UPPER"}, "name"),
        ({"deleted": True}, "deleted"),
    ],
)
def test_bad_changes_answer_400_and_write_nothing(world, body, field):
    response = world.api.put(world.vm_path, body)

    assert response.status_code == 400
    assert field in response.json()
    world.vm.refresh_from_db()
    assert world.vm.memory == 1024 and world.vm.name == "web"


def test_a_locked_hardware_profile_cannot_change(world):
    world.api.put(world.vm_path, {"hardware_profile_locked": True})

    response = world.api.put(world.vm_path, {"hardware_profile": "compatibility2013"})

    assert response.status_code == 400
    assert "locked" in response.json()["hardware_profile"][0]


def test_rename_and_move_within_the_account_while_powered_off(world):
    other = Group.objects.create(account=world.account, name="other")

    response = world.api.put(world.vm_path, {"name": "renamed", "group_id": other.pk})

    assert response.status_code == 200
    body = response.json()
    assert body["group_id"] == other.pk
    assert body["hostname"].startswith(f"renamed.other.{world.account.name}.")
    assert AuditEvent.objects.filter(detail__action="renamed").exists()


def test_moving_a_running_machine_is_refused(world):
    other = Group.objects.create(account=world.account, name="other")
    VirtualMachine.objects.filter(pk=world.vm.pk).update(
        power_on=True, desired_power_on=True
    )

    response = world.api.put(world.vm_path, {"group_id": other.pk})

    assert response.status_code == 400
    assert "power" in response.json()["group_id"][0]


def test_moving_to_a_group_on_another_vlan_readdresses_the_machine(world):
    vlan = Vlan.objects.create(num=9)
    IpRange.objects.create(vlan=vlan, spec="198.51.100.0/24")
    IpRange.objects.create(vlan=vlan, spec="2001:db8:9::/64")
    other = Group.objects.create(account=world.account, name="other", vlan_num=9)

    response = world.api.put(world.vm_path, {"group_id": other.pk})

    assert response.status_code == 200
    (nic,) = response.json()["network_interfaces"]
    assert nic["vlan_num"] == 9
    assert nic["ips"][0].startswith("198.51.100.")


def test_moving_to_another_account_is_refused(world):
    foreign = Group.objects.exclude(account=world.account).first()

    response = world.api.put(world.vm_path, {"group_id": foreign.pk})

    assert response.status_code == 400
    world.vm.refresh_from_db()
    assert world.vm.group_id == world.group.pk


def test_delete_hides_the_machine_and_restore_brings_it_back(world):
    VirtualMachine.objects.filter(pk=world.vm.pk).update(
        power_on=True, desired_power_on=True, autoreboot_on=True
    )

    response = world.api.delete(world.vm_path)

    assert response.status_code == 202
    assert response.json()["kind"] == "power_off"
    assert world.api.get(world.vm_path).status_code == 404
    shown = world.api.get(f"{world.vm_path}?include_deleted=true").json()
    assert shown["deleted"] is True and shown["autoreboot_on"] is False
    listed = world.api.get(world.base).json()
    assert listed == []
    assert world.api.put(world.vm_path, {"cores": 2}).status_code == 400

    finish(Operation.objects.get(kind="power_off"), power_on=False)
    restored = world.api.put(world.vm_path, {"deleted": False})

    assert restored.status_code == 200
    assert restored.json()["deleted"] is False


def test_restore_is_refused_after_the_grace_period(world):
    world.api.delete(world.vm_path)
    VirtualMachine.objects.filter(pk=world.vm.pk).update(
        deleted_at=timezone.now() - timedelta(days=15)
    )

    response = world.api.put(world.vm_path, {"deleted": False})

    assert response.status_code == 400
    world.vm.refresh_from_db()
    assert world.vm.deleted is True


def test_purge_destroys_the_machine_frees_its_name_and_addresses(world):
    addresses = list(IpAddress.objects.values_list("address", flat=True))
    volume = world.vm.discs.get().volume

    response = world.api.delete(f"{world.vm_path}?purge=true")

    assert response.status_code == 202
    op = Operation.objects.get(pk=response.json()["id"])
    assert op.kind == "purge" and op.virtual_machine is None
    assert op.head == world.infra.head
    assert {"pool": "sata", "volume": volume} in op.params["volumes"]
    assert not VirtualMachine.objects.exists()
    assert not Disc.objects.exists() and not NetworkInterface.objects.exists()
    again = world.api.post(world.base, {"name": "web"})
    assert again.status_code == 202
    assert sorted(again.json()["network_interfaces"][0]["ips"]) == sorted(addresses)


def test_signals_need_a_running_machine(world):
    response = world.api.post(f"{world.vm_path}/signal", {"signal": "reset"})

    assert response.status_code == 400
    assert not Operation.objects.filter(kind="signal").exists()


@pytest.mark.parametrize(
    ("body", "params"),
    [
        ({"signal": "powerdown"}, {"signal": "powerdown"}),
        ({"signal": "reset"}, {"signal": "reset"}),
        ({"signal": "sendkey", "data": "ctrl-alt-delete"},
         {"signal": "sendkey", "data": "ctrl-alt-delete"}),
    ],
)  # fmt: skip
def test_signals_on_a_running_machine_start_an_operation(world, body, params):
    VirtualMachine.objects.filter(pk=world.vm.pk).update(
        power_on=True, desired_power_on=True
    )

    response = world.api.post(f"{world.vm_path}/signal", body)

    assert response.status_code == 202
    assert response.json()["kind"] == "signal"
    assert Operation.objects.get(kind="signal").params == params


@pytest.mark.parametrize(
    "body",
    [
        {"signal": "sendkey", "data": "ctrl-alt-banana"},
        {"signal": "sendkey"},
        {"signal": "explode"},
    ],
)
def test_bad_signals_answer_400(world, body):
    VirtualMachine.objects.filter(pk=world.vm.pk).update(power_on=True)

    response = world.api.post(f"{world.vm_path}/signal", body)

    assert response.status_code == 400
    assert not Operation.objects.filter(kind="signal").exists()


def test_reimage_needs_a_stopped_machine(world):
    VirtualMachine.objects.filter(pk=world.vm.pk).update(
        power_on=True, desired_power_on=True
    )

    response = world.api.post(
        f"{world.vm_path}/reimage",
        {"distribution": "trixie", "root_password": "pw", "ssh_public_key": "",
         "firstboot_script": ""},
    )  # fmt: skip

    assert response.status_code == 400
    assert not Operation.objects.filter(kind="image").exists()


def test_reimage_ends_powered_on_with_autoreboot_off(world):
    VirtualMachine.objects.filter(pk=world.vm.pk).update(autoreboot_on=True)

    response = world.api.post(
        f"{world.vm_path}/reimage",
        {"distribution": "trixie", "root_password": "pw", "ssh_public_key": "k",
         "firstboot_script": "#!/bin/sh"},
    )  # fmt: skip

    assert response.status_code == 202
    op = Operation.objects.get(kind="image")
    assert op.params["distribution"] == "trixie" and op.params["power_on"] is True
    assert op.params["firstboot_script"] == "#!/bin/sh"
    world.vm.refresh_from_db()
    assert world.vm.autoreboot_on is False and world.vm.desired_power_on is True


def test_reimage_rejects_an_unknown_distribution(world):
    response = world.api.post(
        f"{world.vm_path}/reimage", {"distribution": "beos", "root_password": "pw"}
    )

    assert response.status_code == 400
    assert "distribution" in response.json()


def test_machine_privileges_list_the_grants_on_it(world):
    response = world.api.get(f"{world.vm_path}/privileges")

    assert response.status_code == 200
    assert sorted(p["level"] for p in response.json()) == ["vm_admin", "vm_console"]


def test_the_console_user_reads_the_machine_but_cannot_start_it(world):
    assert world.console.get(world.vm_path).status_code == 200

    response = world.console.put(
        world.vm_path, {"autoreboot_on": True, "power_on": True}
    )

    assert response.status_code == 403
    assert not Operation.objects.exclude(kind="create").exists()


def test_listing_a_group_shows_only_machines_the_caller_reaches(world):
    built_vm(world.group, world.owner, name="hidden")

    owner = world.api.get(world.base).json()
    console = world.console.get(world.base).json()

    assert sorted(vm["name"] for vm in owner) == ["hidden", "web"]
    assert [vm["name"] for vm in console] == ["web"]


def test_listing_machines_takes_the_same_queries_however_many_there_are(world):
    def queries() -> int:
        world.api.get(world.base)  # warm the credential cache
        with CaptureQueriesContext(connection) as ctx:
            assert world.api.get(world.base).status_code == 200
        return len(ctx.captured_queries)

    one = queries()
    for i in range(3):
        built_vm(world.group, world.owner, name=f"more{i}")

    assert queries() == one
