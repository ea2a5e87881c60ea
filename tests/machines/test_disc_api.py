import pytest

from accounts.models import Account
from machines.models import Backup, BackupSchedule, Disc, Operation
from machines.serializers import MAX_DISC_SIZE
from tests.factories import grant
from tests.machines.conftest import built_vm, check_access, finish

pytestmark = pytest.mark.django_db


def discs_path(world) -> str:
    return f"{world.vm_path}/discs"


def first_disc(world) -> Disc:
    return world.vm.discs.get()


@pytest.mark.parametrize(
    ("method", "suffix", "body", "write"),
    [
        ("get", "/discs", None, False),
        ("post", "/discs", {"size": 1024}, True),
        ("get", "/discs/disc-1", None, False),
        ("put", "/discs/disc-1", {"size": 30000}, True),
        ("delete", "/discs/disc-1?purge=true", None, True),
        ("get", "/discs/disc-1/backups", None, False),
        ("post", "/discs/disc-1/backups", None, True),
        ("post", "/discs/disc-1/backup_schedules",
         {"start_at": "00:00", "interval_seconds": 86400, "capacity": 0}, True),
    ],
)  # fmt: skip
def test_disc_endpoints_apply_the_policy(world, method, suffix, body, write):
    check_access(world, method, world.vm_path + suffix, body, write=write)

    disc = first_disc(world)
    assert disc.size == 25600 and not disc.backups.exists()


def test_disc_by_id_applies_the_policy(world):
    disc = first_disc(world)

    check_access(world, "get", f"/discs/{disc.pk}", write=False)
    check_access(world, "put", f"/discs/{disc.pk}", {"size": 30000})


def test_adding_a_disc_places_it_in_a_pool_of_its_grade(world):
    response = world.api.post(
        discs_path(world), {"label": "disc-2", "storage_grade": "ssd", "size": 2048}
    )

    assert response.status_code == 202
    body = response.json()
    assert body["storage_grade"] == "ssd" and body["size"] == 2048
    assert body["storage_pool"] == world.infra.pools["ssd"].label
    assert body["operation"]["kind"] == "disc_create"
    assert body["virtual_machine_id"] == world.vm.pk


def test_an_unlabelled_disc_gets_the_next_disc_number(world):
    world.api.post(discs_path(world), {"label": "disk-5", "size": 100})
    finish(Operation.objects.get(kind="disc_create"))

    response = world.api.post(discs_path(world), {"size": 100})

    assert response.json()["label"] == "disc-6"


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"size": MAX_DISC_SIZE + 1}, "size"),
        ({"size": 0}, "size"),
        ({"size": 100, "storage_grade": "gold"}, "storage_grade"),
        ({"size": 100, "label": "disc-1"}, "label"),
        ({"size": 100, "label": "Bad Label"}, "label"),
    ],
)
def test_bad_discs_answer_400(world, body, field):
    response = world.api.post(discs_path(world), body)

    assert response.status_code == 400
    assert field in response.json()
    assert world.vm.discs.count() == 1


def test_a_machine_has_at_most_eight_discs(world):
    for _ in range(7):
        world.api.post(discs_path(world), {"size": 10})
        finish(Operation.objects.get(kind="disc_create", status="queued"))

    response = world.api.post(discs_path(world), {"size": 10})

    assert response.status_code == 400
    assert world.vm.discs.count() == 8


def test_a_disc_goes_where_there_is_room(world):
    world.infra.pools["archive"].size = 100
    world.infra.pools["archive"].save()

    response = world.api.post(
        discs_path(world), {"storage_grade": "archive", "size": 101}
    )

    assert response.status_code == 400
    assert "no archive pool" in str(response.json())


def test_resizing_only_grows(world):
    shrink = world.api.put(f"{discs_path(world)}/disc-1", {"size": 100})
    assert shrink.status_code == 400

    grow = world.api.put(f"{discs_path(world)}/disc-1", {"size": 35})
    assert grow.status_code == 400

    grow = world.api.put(f"{discs_path(world)}/disc-1", {"size": 30000})
    assert grow.status_code == 202
    op = Operation.objects.get(kind="resize")
    assert op.params == {"disc_id": first_disc(world).pk, "from": 25600, "to": 30000}
    assert first_disc(world).size == 30000


def test_deleting_a_disc_needs_purge(world):
    refused = world.api.delete(f"{discs_path(world)}/disc-1")
    assert refused.status_code == 400
    assert world.vm.discs.exists()

    response = world.api.delete(f"/discs/{first_disc(world).pk}?purge=true")

    assert response.status_code == 202
    assert response.json()["kind"] == "disc_delete"
    assert not world.vm.discs.exists()


def test_moving_a_disc_to_another_machine_of_the_account(world):
    other = built_vm(world.group, world.owner, name="other")
    disc = first_disc(world)

    response = world.api.put(
        f"{discs_path(world)}/disc-1", {"virtual_machine_id": other.pk}
    )

    assert response.status_code == 200
    disc.refresh_from_db()
    assert disc.virtual_machine_id == other.pk
    assert disc.label == "disc-2"


def test_a_disc_cannot_move_to_another_account(world):
    foreign = Account.objects.exclude(pk=world.account.pk).first()
    target = built_vm(foreign.groups.get(), world.owner, name="foreign")
    grant(world.owner, "vm_admin", target)

    response = world.api.put(
        f"{discs_path(world)}/disc-1", {"virtual_machine_id": target.pk}
    )

    assert response.status_code == 400
    assert "same account" in response.json()["virtual_machine_id"][0]
    assert first_disc(world).virtual_machine_id == world.vm.pk


def test_discs_of_a_deleted_machine_cannot_change(world):
    world.api.delete(world.vm_path)

    responses = [
        world.api.post(discs_path(world), {"size": 100}),
        world.api.put(f"{discs_path(world)}/disc-1", {"size": 30000}),
        world.api.delete(f"{discs_path(world)}/disc-1?purge=true"),
    ]

    assert [r.status_code for r in responses] == [400, 400, 400]
    assert first_disc(world).size == 25600


def test_a_backup_is_a_copy_in_a_backup_pool(world):
    response = world.api.post(f"{discs_path(world)}/disc-1/backups")

    assert response.status_code == 202
    body = response.json()
    assert body["parent_disc_id"] == first_disc(world).pk
    assert body["manual"] is True
    assert body["storage_pool"] == world.infra.backup_pool.label
    assert body["storage_grade"] == "sata"
    backup = Backup.objects.get()
    finish(Operation.objects.get(kind="backup"))
    Backup.objects.filter(pk=backup.pk).update(complete=True)

    listed = world.api.get(f"{discs_path(world)}/disc-1/backups").json()

    assert listed[0]["storage_grade"] == "iceberg"
    assert listed[0]["label"] == backup.label


def test_restoring_and_deleting_a_backup(world):
    world.api.post(f"{discs_path(world)}/disc-1/backups")
    finish(Operation.objects.get(kind="backup"))
    backup = Backup.objects.get()
    Backup.objects.filter(pk=backup.pk).update(complete=True)
    path = f"{discs_path(world)}/disc-1/backups/{backup.label}"

    restore = world.api.put(path, {"restore": True})
    assert restore.status_code == 202
    assert Operation.objects.get(kind="restore").params == {"backup_id": backup.pk}
    finish(Operation.objects.get(kind="restore"))

    assert world.api.delete(path).status_code == 400
    assert world.api.delete(f"{path}?purge=true").status_code == 202
    assert not Backup.objects.exists()


def test_a_backup_schedule_as_the_client_sends_it(world):
    response = world.api.post(
        f"{discs_path(world)}/disc-1/backup_schedules",
        {"start_at": "2026-12-04 00:00:00 GMT", "interval_seconds": 3306,
         "capacity": 0},
    )  # fmt: skip

    assert response.status_code == 201
    body = response.json()
    assert body["start_at"] == "2026-12-04 00:00:00"
    assert body["interval_seconds"] == 3306 and body["capacity"] == 0
    disc = world.api.get(f"{discs_path(world)}/disc-1").json()
    assert disc["backups_enabled"] is True
    assert disc["backup_schedules"][0]["id"] == body["id"]

    deleted = world.api.delete(
        f"{discs_path(world)}/disc-1/backup_schedules/{body['id']}"
    )
    assert deleted.status_code == 204
    assert not BackupSchedule.objects.exists()


@pytest.mark.parametrize(
    "body",
    [
        {"start_at": "tomorrowish", "interval_seconds": 86400},
        {"start_at": "00:00"},
        {"start_at": "00:00", "interval_seconds": 1.5},
    ],
)
def test_bad_backup_schedules_answer_400(world, body):
    response = world.api.post(f"{discs_path(world)}/disc-1/backup_schedules", body)

    assert response.status_code == 400
    assert not BackupSchedule.objects.exists()
