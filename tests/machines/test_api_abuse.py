"""Attackers and careless clients against the machines API, with the worker
and a simulated head behind it: never a 500, never a half-written change."""

import json
from types import SimpleNamespace

import pytest
from django.apps import apps

from machines.hypervisors.base import PowerState
from machines.models import Operation, VirtualMachine
from tests.factories import as_user, grant, make_account, make_user, snapshot
from tests.machines.e2e_site import create, image, make_site, run_answer, state

pytestmark = pytest.mark.django_db

MACHINE_TABLES = [
    "machines.Operation",
    "machines.Disc",
    "machines.Backup",
    "machines.BackupSchedule",
    "machines.NetworkInterface",
    "machines.IpAddress",
]


def rows(world) -> dict:
    """Every row an API write may touch, and the head's own state."""
    every = snapshot()
    for label in MACHINE_TABLES:
        every[label] = list(apps.get_model(label).objects.order_by("pk").values())
    every["head"] = world.site.driver.path.read_text()
    return every


@pytest.fixture
def world(tmp_path, settings):
    """Our account with a running machine `web` (two discs, a backup) and a
    stopped one `spare`; another account with its own machine; a console user
    and a vm_admin on `web`; a user who administers both accounts."""
    site = make_site(tmp_path, settings)
    web = create(site, "web", discs=[{"label": "root", "size": 2048}])
    spare = create(site, "spare", power_on=False)
    run_answer(site.api.post(f"/virtual_machines/{web.pk}/discs/root/backups"))

    stranger = make_user()
    other = make_account(owner=stranger)
    theirs_api = as_user(stranger)
    response = theirs_api.post(
        f"/accounts/{other.name}/groups/default/vm_create",
        {"virtual_machine": {"name": "theirs"}, "discs": [{"size": 1024}]},
    )
    run_answer(response)
    theirs = VirtualMachine.objects.get(pk=response.json()["id"])

    console, admin, both = make_user(), make_user(), make_user()
    grant(console, "vm_console", web)
    grant(admin, "vm_admin", web)
    grant(both, "account_admin", site.account)
    grant(both, "account_admin", other)
    world = SimpleNamespace(
        site=site,
        api=site.api,
        web=web,
        spare=spare,
        other=other,
        theirs=theirs,
        stranger=theirs_api,
        console=as_user(console),
        admin=as_user(admin),
        both=as_user(both),
        web_path=f"/virtual_machines/{web.pk}",
    )
    # Signing in stamps last_login; do it before anyone takes a snapshot.
    for api in (world.api, world.stranger, world.console, world.admin, world.both):
        assert api.get("/accounts").status_code == 200
    return world


def call(api, method, path, body=None):
    if method in ("get", "delete"):
        return getattr(api, method)(path)
    return getattr(api, method)(path, body if body is not None else {})


def refused(world, api, method, path, body=None, *, code):
    """The request is answered `code` and changes nothing anywhere."""
    before = rows(world)
    response = call(api, method, path, body)
    assert response.status_code == code, (method, path, body, response.content)
    assert rows(world) == before, (method, path, body)
    return response


def ip_of(vm) -> str:
    return vm.network_interfaces.get().ips.filter(family="ipv4").get().address


# Outsiders.


def writes(world, vm) -> list[tuple[str, str, dict | None]]:
    """Every write on a machine and its parts, by id paths."""
    path = f"/virtual_machines/{vm.pk}"
    disc = vm.discs.first()
    nic = vm.network_interfaces.get()
    backup = disc.backups.first()
    backup_label = backup.label if backup else "none"
    return [
        ("put", path, {"power_on": False}),
        ("put", path, {"cores": 2}),
        ("delete", path, None),
        ("delete", f"{path}?purge=true", None),
        ("post", f"{path}/signal", {"signal": "reset"}),
        ("post", f"{path}/reimage", image()),
        ("post", f"{path}/discs", {"size": 1024}),
        ("put", f"/discs/{disc.pk}", {"size": disc.size + 1024}),
        ("delete", f"/discs/{disc.pk}?purge=true", None),
        ("post", f"/discs/{disc.pk}/backups", None),
        ("put", f"/discs/{disc.pk}/backups/{backup_label}", {"restore": True}),
        ("delete", f"/discs/{disc.pk}/backups/{backup_label}?purge=true", None),
        (
            "post",
            f"/discs/{disc.pk}/backup_schedules",
            {"interval_seconds": 86400},
        ),
        ("post", f"{path}/nics/{nic.pk}/ip_create", {"addresses": 1}),
        ("put", f"/ips/{ip_of(vm)}", {"rdns": "evil.example.org"}),
    ]


def test_another_accounts_machine_is_not_found_for_every_write(world):
    for method, path, body in writes(world, world.web):
        refused(world, world.stranger, method, path, body, code=404)


def test_another_accounts_machine_is_not_found_for_every_read(world):
    web = world.web
    op = web.operations.first()
    for path in (
        f"/virtual_machines/{web.pk}",
        f"/virtual_machines/{web.pk}/operations",
        f"/discs/{web.discs.first().pk}",
        f"/operations/{op.pk}",
        f"/ips/{ip_of(web)}",
    ):
        assert world.stranger.get(path).status_code == 404, path
    assert world.stranger.get("/virtual_machines/999999").status_code == 404


def test_swapping_addresses_with_another_accounts_machine_is_not_found(world):
    for pair in ((world.web, world.theirs), (world.theirs, world.web)):
        body = {
            "virtual_machine_1_id": pair[0].pk,
            "virtual_machine_2_id": pair[1].pk,
        }
        refused(
            world, world.api, "post", "/ips/swap_virtual_machine_ips", body, code=404
        )


def test_a_disc_cannot_move_to_another_accounts_machine(world):
    disc = world.spare.discs.get()
    body = {"virtual_machine_id": world.theirs.pk}

    refused(world, world.api, "put", f"/discs/{disc.pk}", body, code=400)
    # Even for someone who administers both accounts.
    response = refused(world, world.both, "put", f"/discs/{disc.pk}", body, code=400)
    assert "virtual_machine_id" in response.json()


def test_a_resize_and_a_refused_move_together_change_nothing(world):
    disc = world.spare.discs.get()
    body = {"size": disc.size + 1024, "virtual_machine_id": world.theirs.pk}

    refused(world, world.both, "put", f"/discs/{disc.pk}", body, code=400)


def test_a_machine_cannot_move_to_another_accounts_group(world):
    group = world.other.groups.get()
    path = f"/virtual_machines/{world.spare.pk}"

    refused(world, world.api, "put", path, {"group_id": group.pk}, code=400)
    response = refused(world, world.both, "put", path, {"group_id": group.pk}, code=400)
    assert "group_id" in response.json()


# Users who see the machine but may not change it.


def test_a_console_user_gets_403_on_every_write_and_reads_fine(world):
    for method, path, body in writes(world, world.web):
        refused(world, world.console, method, path, body, code=403)
    assert world.console.get(world.web_path).status_code == 200
    disc = world.web.discs.first()
    assert world.console.get(f"/discs/{disc.pk}").status_code == 200
    op = world.web.operations.first()
    assert world.console.get(f"/operations/{op.pk}").status_code == 200


def test_a_vm_admin_may_not_purge_or_move_groups(world):
    refused(world, world.admin, "delete", f"{world.web_path}?purge=true", code=403)
    group = world.web.group.account.groups.create(name="other-group")
    body = {"group_id": group.pk}
    refused(world, world.admin, "put", world.web_path, body, code=403)


# Bad values.

BAD_MACHINE_VALUES = [
    ("cores", 10**9),
    ("cores", 0),
    ("cores", -1),
    ("memory", -1024),
    ("memory", 10**12),
    ("name", "Web"),
    ("name", "wéb"),
    ("name", "a" * 64),
    ("name", "-web"),
    ("name", "123"),
    ("cdrom_url", "file:///etc/shadow"),
    ("cdrom_url", "not a url"),
    ("cdrom_url", "http://example.org:99999/boot.iso"),
    ("keymap", "klingon"),
    ("hardware_profile", "nope"),
]
WRONG_TYPES = ["2", 1.5, 2.0, None, [2], {"n": 2}, True, "yes"]
# The wrong-looking values each field accepts: digit strings for numbers,
# the usual spellings of booleans, null for clearable strings.
ACCEPTED = {
    "name": ["yes"],
    "cores": [2, "2"],
    "memory": [],
    "group_id": [],
    "power_on": [True, "yes"],
    "autoreboot_on": [True, "yes"],
    "cdrom_url": [None],
    "hardware_profile_locked": [True, "yes"],
    "keymap": [None],
    "hardware_profile": [],
    "deleted": [],
}


def accepted(field, value) -> bool:
    return any(type(v) is type(value) and v == value for v in ACCEPTED[field])


@pytest.mark.parametrize(("field", "value"), BAD_MACHINE_VALUES)
def test_a_bad_value_in_put_is_400_and_changes_nothing(world, field, value):
    path = f"/virtual_machines/{world.spare.pk}"
    response = refused(world, world.api, "put", path, {field: value}, code=400)
    assert field in response.json()


@pytest.mark.parametrize(("field", "value"), BAD_MACHINE_VALUES)
def test_a_bad_value_in_create_is_400_and_creates_nothing(world, field, value):
    body = {"name": "fresh", field: value, "discs": [{"size": 1024}]}
    response = refused(world, world.api, "post", world.site.base, body, code=400)
    assert field in response.json()


@pytest.mark.parametrize("field", sorted(ACCEPTED))
def test_wrong_json_types_in_put_are_400_never_500(world, field):
    path = f"/virtual_machines/{world.spare.pk}"
    for value in WRONG_TYPES:
        if not accepted(field, value):
            refused(world, world.api, "put", path, {field: value}, code=400)


@pytest.mark.parametrize("body", [[1, 2], "text", 7, None])
def test_a_body_that_is_not_an_object_is_400(world, body):
    disc = world.web.discs.get(label="root")
    backup = disc.backups.get()
    for method, path in (
        ("put", world.web_path),
        ("post", f"{world.web_path}/signal"),
        ("post", f"{world.web_path}/reimage"),
        ("post", f"{world.web_path}/discs"),
        ("put", f"/discs/{disc.pk}"),
        ("put", f"/discs/{disc.pk}/backups/{backup.label}"),
        ("post", world.site.base),
        ("post", f"{world.site.group_path}/vm_create"),
        ("post", "/ips/swap_virtual_machine_ips"),
    ):
        before = rows(world)
        response = world.api.client.generic(
            method.upper(),
            path,
            data=json.dumps(body),
            content_type="application/json",
            **world.api.headers,
        )
        assert response.status_code == 400, (method, path, response.content)
        assert rows(world) == before


@pytest.mark.parametrize(
    "disc",
    [
        {"size": 0},
        {"size": -5},
        {"size": 2 * 1024 * 1024 + 1},
        {"size": "big"},
        {"size": 1.5},
        {"size": None},
        {"size": 1024, "label": "Data"},
        {"size": 1024, "label": "root"},
        {"size": 1024, "storage_grade": "gold"},
        {"size": 1024, "backup_schedules": [{"interval_seconds": 1}]},
        {"size": 1024, "backup_schedules": "daily"},
        {},
    ],
)
def test_a_bad_disc_is_400_and_adds_nothing(world, disc):
    refused(world, world.api, "post", f"{world.web_path}/discs", disc, code=400)


def test_a_ninth_disc_is_refused(world):
    for _ in range(7):
        run_answer(world.api.post(f"{world.web_path}/discs", {"size": 64}))
    assert world.web.discs.count() == 8

    response = refused(
        world, world.api, "post", f"{world.web_path}/discs", {"size": 64}, code=400
    )
    assert "discs" in response.json()


@pytest.mark.parametrize("size", [0, 1024, 2 * 1024 * 1024 + 1, "x", 1.5, None])
def test_a_disc_only_grows_within_2_tib(world, size):
    disc = world.web.discs.get(label="root")
    refused(world, world.api, "put", f"/discs/{disc.pk}", {"size": size}, code=400)


def test_nine_discs_at_create_are_refused(world):
    body = {"name": "many", "discs": [{"size": 64}] * 9}
    refused(world, world.api, "post", world.site.base, body, code=400)


def test_more_cores_or_memory_than_the_head_has_is_refused(world):
    head = world.web.head
    path = f"/virtual_machines/{world.spare.pk}"
    refused(world, world.api, "put", path, {"cores": head.total_cores + 1}, code=400)
    memory = head.total_memory + 1024
    refused(world, world.api, "put", path, {"memory": memory}, code=400)


# Signals and reimaging.


@pytest.mark.parametrize(
    "data",
    ["", None, "ctrl-alt-nope", "ctrl--alt", "-", "ctrl alt delete", "a" * 200,
     "-".join(["ctrl"] * 17)],
)  # fmt: skip
def test_sendkey_with_unknown_or_too_many_keys_is_400(world, data):
    body = {"signal": "sendkey", "data": data}
    refused(world, world.api, "post", f"{world.web_path}/signal", body, code=400)


@pytest.mark.parametrize("signal", ["powerdown", "reset", "sendkey", "kill", None, 3])
def test_signals_to_a_stopped_machine_are_400(world, signal):
    body = {"signal": signal, "data": "ctrl-alt-delete"}
    path = f"/virtual_machines/{world.spare.pk}/signal"
    refused(world, world.api, "post", path, body, code=400)


def test_reimaging_a_running_machine_is_400(world):
    response = refused(
        world, world.api, "post", f"{world.web_path}/reimage", image(), code=400
    )
    assert "power_on" in response.json()


@pytest.mark.parametrize(
    "body",
    [
        {"distribution": "windows", "root_password": "x"},
        {"distribution": "bookworm"},
        {"distribution": "bookworm", "root_password": ""},
        {"distribution": ["bookworm"], "root_password": "x"},
        {"distribution": "bookworm", "root_password": None},
        {"distribution": "../../etc/passwd", "root_password": "x"},
    ],
)
def test_a_bad_image_is_400(world, body):
    path = f"/virtual_machines/{world.spare.pk}/reimage"
    refused(world, world.api, "post", path, body, code=400)


# Conflicts.


def test_a_second_operation_while_one_is_queued_is_409_naming_it(world):
    path = f"/virtual_machines/{world.spare.pk}"
    first = world.api.put(path, {"power_on": True})
    assert first.status_code == 202
    holder = first.json()["operation"]

    for method, sub, body in (
        ("put", "", {"power_on": False}),
        ("post", "/discs", {"size": 1024}),
        ("put", "/discs/root", {"size": 4096}),
        ("post", "/discs/root/backups", None),
        ("delete", "?purge=true", None),
    ):
        response = refused(world, world.api, method, path + sub, body, code=409)
        assert response.json()["operation_id"] == holder["id"]
        assert "power_on" in response.json()["detail"]

    run_answer(first)
    assert state(world.site, world.spare) is PowerState.RUNNING


def test_purge_waits_for_a_running_operation(world):
    first = world.api.post(f"{world.web_path}/signal", {"signal": "reset"})
    Operation.objects.filter(pk=first.json()["id"]).update(status="running")

    refused(world, world.api, "delete", f"{world.web_path}?purge=true", code=409)

    assert world.api.get(world.web_path).status_code == 200


# A soft-deleted machine.


def test_a_soft_deleted_machine_takes_no_operations_until_restored(world):
    path = f"/virtual_machines/{world.spare.pk}"
    assert world.api.delete(path).status_code == 204
    disc = world.spare.discs.get()
    for method, sub, body in (
        ("put", "", {"power_on": True}),
        ("put", "", {"cores": 2}),
        ("post", "/signal", {"signal": "reset"}),
        ("post", "/reimage", image()),
        ("post", "/discs", {"size": 1024}),
        ("put", f"/discs/{disc.pk}", {"size": disc.size + 1}),
        ("delete", f"/discs/{disc.pk}?purge=true", None),
        ("post", f"/discs/{disc.pk}/backups", None),
    ):
        refused(world, world.api, method, path + sub, body, code=400)
    nic = world.spare.network_interfaces.get()
    ips = f"{path}/nics/{nic.pk}/ip_create"
    refused(world, world.api, "post", ips, {"addresses": 1}, code=400)

    assert world.api.put(path, {"deleted": False}).status_code == 200
    run_answer(world.api.put(path, {"power_on": True}))
    assert state(world.site, world.spare) is PowerState.RUNNING
