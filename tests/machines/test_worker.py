"""The worker carrying out each kind of operation on a simulated head."""

from datetime import timedelta

import pytest
from django.utils import timezone

from machines.cluster import write_blank_qcow2
from machines.faults import plan_failures
from machines.hypervisors.base import NotFound, PowerState, seed_volume_name
from machines.models import Backup, Disc, Operation
from machines.worker import execute
from tests.machines.simulated_cluster import (
    PASSWORD,
    built,
    image,
    make_machine,
    prepared_cluster,
    run,
    start,
)


@pytest.fixture
def cluster(tmp_path, settings, db):
    return prepared_cluster(tmp_path, settings)


def _state(cluster, vm):
    return cluster.driver.state(str(vm.uuid))


def _disc(vm):
    return vm.discs.select_related("storage_pool").get()


def _exists(cluster, pool, volume):
    try:
        cluster.driver.volume(pool, volume)
    except NotFound:
        return False
    return True


def _volume(cluster, disc):
    return cluster.driver.volume(disc.storage_pool.libvirt_pool, disc.volume)


# create


def test_it_builds_images_and_powers_on_a_new_machine(cluster):
    vm = make_machine(cluster, desired_power_on=True)

    op = run(start(vm, "create", power_on=True, reimage=image()))

    vm.refresh_from_db()
    assert (op.status, op.progress, op.error) == ("succeeded", 100, "")
    assert op.finished_at is not None and op.lease_expires_at is None
    assert vm.power_on is True
    assert _state(cluster, vm) is PowerState.RUNNING
    disc = _disc(vm)
    assert _volume(cluster, disc)["image"] == "bookworm"
    seed = cluster.driver.volume("sata", seed_volume_name(str(vm.uuid)))
    assert seed["seed"]["hostname"] == vm.hostname
    assert seed["seed"]["ssh_keys"] == 1
    assert PASSWORD not in str(op.params)
    assert "root_password" not in op.params["reimage"]


def test_it_leaves_a_new_machine_off_unless_asked(cluster):
    vm = make_machine(cluster)

    op = run(start(vm, "create", power_on=False, reimage={"distribution": "none"}))

    vm.refresh_from_db()
    assert op.status == "succeeded"
    assert vm.power_on is False
    assert _state(cluster, vm) is PowerState.SHUT_OFF


def test_it_builds_blank_discs_for_distribution_none(cluster):
    vm = make_machine(cluster)

    op = run(start(vm, "create", power_on=True, reimage={"distribution": "none"}))

    assert op.status == "succeeded"
    assert _volume(cluster, _disc(vm))["image"] is None


def test_it_fails_clearly_without_a_base_image_and_forgets_the_password(cluster):
    vm = make_machine(cluster)

    op = run(start(vm, "create", power_on=True, reimage=image("alpine")))

    vm.refresh_from_db()
    assert op.status == "failed"
    assert "no base image for distribution 'alpine'" in op.error
    assert PASSWORD not in str(op.params)
    assert vm.power_on is False


def test_a_retried_create_does_not_image_the_disc_again(cluster):
    vm = built(cluster, imaged=True)
    op = vm.operations.get()
    disc = _disc(vm)
    # The guest has written to its disc since it first booted.
    guest = cluster.directory / "guest-data.qcow2"
    write_blank_qcow2(guest)
    cluster.driver.stop(str(vm.uuid))
    cluster.driver.image_volume("sata", disc.volume, guest)
    cluster.driver.start(str(vm.uuid))
    # The worker died after imaging, before it recorded the outcome.
    Operation.objects.filter(pk=op.pk).update(
        status="running",
        lease_expires_at=timezone.now() - timedelta(seconds=1),
        result={"done": ["volumes", "image"]},
    )

    op = run(op)

    assert (op.status, op.attempts) == ("succeeded", 2)
    assert _volume(cluster, disc)["image"] == "guest-data"


# Claiming.


def test_it_ignores_an_operation_another_worker_holds(cluster):
    vm = make_machine(cluster)
    op = start(vm, "power_on")
    lease = timezone.now() + timedelta(seconds=60)
    Operation.objects.filter(pk=op.pk).update(
        status="running", attempts=1, lease_expires_at=lease
    )

    op = run(op)

    assert (op.status, op.attempts, op.lease_expires_at) == ("running", 1, lease)
    assert _state(cluster, vm) is PowerState.ABSENT


def test_it_does_nothing_for_finished_or_missing_operations(cluster):
    vm = built(cluster)
    op = vm.operations.get()
    cluster.driver.stop(str(vm.uuid))

    execute(op.pk)
    execute(op.pk + 1000)

    op.refresh_from_db()
    assert op.attempts == 1
    assert _state(cluster, vm) is PowerState.SHUT_OFF


def test_it_fails_an_operation_whose_machine_has_no_head(cluster):
    vm = make_machine(cluster)
    vm.head = None
    vm.save()
    op = Operation.objects.create(kind="power_on", virtual_machine=vm)

    op = run(op)

    assert op.status == "failed"
    assert op.error == "the machine has no head to run on"


# Transient errors.


def test_it_retries_transient_hypervisor_errors(cluster):
    vm = built(cluster, power_on=False)
    plan_failures(cluster.head.label, start=1)

    op = run(start(vm, "power_on"))

    assert (op.status, op.attempts) == ("queued", 1)
    assert "retrying" in op.error and "planned failure of start" in op.error
    assert op.lease_expires_at is not None

    op = run(op)

    vm.refresh_from_db()
    assert (op.status, op.attempts, op.error) == ("succeeded", 2, "")
    assert vm.power_on is True


def test_it_gives_up_after_the_last_attempt(cluster, settings):
    vm = built(cluster, power_on=False)
    plan_failures(cluster.head.label, start=10)
    op = start(vm, "power_on")

    for _ in range(settings.CORRAL_OPERATION_MAX_ATTEMPTS):
        op = run(op)

    vm.refresh_from_db()
    assert (op.status, op.attempts) == ("failed", 3)
    assert op.error.startswith("gave up after 3 attempts: planned failure of start")
    assert op.finished_at is not None and op.lease_expires_at is None
    assert vm.power_on is False
    assert _state(cluster, vm) is PowerState.SHUT_OFF


# Power.


def test_it_powers_machines_off_and_on(cluster):
    vm = built(cluster)

    assert run(start(vm, "power_off")).status == "succeeded"
    vm.refresh_from_db()
    assert vm.power_on is False
    assert _state(cluster, vm) is PowerState.SHUT_OFF

    assert run(start(vm, "power_on")).status == "succeeded"
    vm.refresh_from_db()
    assert vm.power_on is True
    assert _state(cluster, vm) is PowerState.RUNNING


def test_a_reboot_applies_changed_cores_and_memory(cluster):
    vm = built(cluster)
    vm.cores, vm.memory = 4, 4096
    vm.save()

    op = run(start(vm, "reboot"))

    spec = cluster.driver.domain(str(vm.uuid))["spec"]
    assert op.status == "succeeded"
    assert (spec["cores"], spec["memory_mib"]) == (4, 4096)
    assert _state(cluster, vm) is PowerState.RUNNING


def test_a_powerdown_the_guest_honours_leaves_the_machine_off(cluster):
    vm = built(cluster)

    op = run(start(vm, "signal", signal="powerdown"))

    vm.refresh_from_db()
    assert op.status == "succeeded"
    assert op.result["powered_off"] is True
    assert vm.power_on is False


def test_an_ignored_powerdown_ends_with_a_note_and_stop_still_works(cluster):
    vm = built(cluster)
    cluster.driver.set_honours_acpi(str(vm.uuid), False)

    op = run(start(vm, "signal", signal="powerdown"))

    vm.refresh_from_db()
    assert (op.status, op.error) == ("succeeded", "")
    assert op.result["powered_off"] is False
    assert "ignored the powerdown" in op.result["note"]
    assert "still on" in op.result["note"]
    assert vm.power_on is True and vm.desired_power_on is True
    assert _state(cluster, vm) is PowerState.RUNNING

    assert run(start(vm, "power_off")).status == "succeeded"
    vm.refresh_from_db()
    assert vm.power_on is False
    assert _state(cluster, vm) is PowerState.SHUT_OFF


def test_it_resets_and_sends_keys(cluster):
    vm = built(cluster)

    assert run(start(vm, "signal", signal="reset")).status == "succeeded"
    keys = run(start(vm, "signal", signal="sendkey", data="ctrl-alt-delete"))

    record = cluster.driver.domain(str(vm.uuid))
    assert keys.status == "succeeded"
    assert record["resets"] == 1
    assert record["keys_sent"] == [["ctrl", "alt", "delete"]]


def test_it_fails_signals_to_a_machine_that_is_off(cluster):
    vm = built(cluster, power_on=False)

    op = run(start(vm, "signal", signal="reset"))

    assert op.status == "failed"
    assert "not running" in op.error


def test_it_fails_unknown_signals(cluster):
    vm = built(cluster)

    op = run(start(vm, "signal", signal="explode"))

    assert (op.status, op.error) == ("failed", "unknown signal 'explode'")


# Reimage.


def test_a_reimage_ends_powered_on_with_autoreboot_off(cluster):
    vm = built(cluster, power_on=False, autoreboot_on=True)

    op = run(start(vm, "image", **image("noble")))

    vm.refresh_from_db()
    assert op.status == "succeeded"
    assert (vm.power_on, vm.autoreboot_on, vm.last_imaged_with) == (
        True,
        False,
        "noble",
    )
    assert _volume(cluster, _disc(vm))["image"] == "noble"
    assert PASSWORD not in str(op.params)


# Discs and backups.


def test_it_grows_a_disc(cluster):
    vm = built(cluster)
    disc = _disc(vm)

    op = run(start(vm, "resize", disc=disc, disc_id=disc.pk, to=4096))

    disc.refresh_from_db()
    assert op.status == "succeeded"
    assert disc.size == 4096
    assert _volume(cluster, disc)["size_mib"] == 4096


def test_it_creates_and_attaches_a_new_disc(cluster):
    vm = built(cluster)
    disc = Disc.objects.create(
        virtual_machine=vm,
        label="disc-2",
        size=2048,
        storage_grade="sata",
        storage_pool=cluster.pool,
    )

    op = run(start(vm, "disc_create", disc=disc, disc_id=disc.pk))

    spec = cluster.driver.domain(str(vm.uuid))["spec"]
    assert op.status == "succeeded"
    assert [d["label"] for d in spec["discs"]] == ["disc-1", "disc-2"]
    assert _volume(cluster, disc)["size_mib"] == 2048


def test_it_deletes_a_discs_volumes_and_detaches_it(cluster):
    vm = built(cluster, power_on=False)
    disc = _disc(vm)
    volumes = [{"pool": "sata", "volume": disc.volume}]
    disc.delete()

    op = run(start(vm, "disc_delete", volumes=volumes))

    spec = cluster.driver.domain(str(vm.uuid))["spec"]
    assert op.status == "succeeded"
    assert spec["discs"] == []
    assert _exists(cluster, "sata", volumes[0]["volume"]) is False


def test_it_backs_up_a_disc_and_keeps_only_the_newest_scheduled_copies(cluster):
    vm = built(cluster)
    disc = _disc(vm)
    copies = [
        Backup.objects.create(
            disc=disc,
            label=f"auto-{n}",
            size=disc.size,
            storage_pool=cluster.backup_pool,
            manual=False,
        )
        for n in range(3)
    ]
    manual = Backup.objects.create(
        disc=disc, label="by-hand", size=disc.size, storage_pool=cluster.backup_pool
    )
    for copy in [*copies[:2], manual]:
        assert run(start(vm, "backup", disc=disc, backup_id=copy.pk)).status == (
            "succeeded"
        )

    op = run(start(vm, "backup", disc=disc, backup_id=copies[2].pk, keep=2))

    assert op.status == "succeeded"
    assert op.result["pruned"] == ["auto-0"]
    remaining = set(disc.backups.values_list("label", flat=True))
    assert remaining == {"auto-1", "auto-2", "by-hand"}
    assert all(b.complete for b in disc.backups.all())
    stored = cluster.driver.volume("backups", copies[2].volume)
    assert stored["copied_from"] == f"sata/{disc.volume}"
    assert _exists(cluster, "backups", copies[0].volume) is False


def test_it_restores_a_backup_only_onto_a_stopped_machine(cluster):
    vm = built(cluster)
    disc = _disc(vm)
    copy = Backup.objects.create(
        disc=disc, label="b", size=disc.size, storage_pool=cluster.backup_pool
    )
    run(start(vm, "backup", disc=disc, backup_id=copy.pk))

    refused = run(start(vm, "restore", disc=disc, backup_id=copy.pk))
    assert refused.status == "failed"
    assert refused.error == "stop the machine before restoring a backup"

    run(start(vm, "power_off"))
    op = run(start(vm, "restore", disc=disc, backup_id=copy.pk))

    assert op.status == "succeeded"
    restored = _volume(cluster, disc)
    assert restored["copied_from"] == f"backups/{copy.volume}"


# Purge.


def test_it_purges_a_machine_whose_row_is_gone(cluster):
    vm = built(cluster)
    disc = _disc(vm)
    uuid = str(vm.uuid)
    params = {
        "uuid": uuid,
        "name": vm.name,
        "volumes": [{"pool": "sata", "volume": disc.volume}],
    }
    op = start(vm, "purge", **params)
    vm.delete()

    op = run(op)

    assert op.status == "succeeded"
    assert op.virtual_machine is None
    assert cluster.driver.state(uuid) is PowerState.ABSENT
    assert _exists(cluster, "sata", disc.volume) is False
    assert _exists(cluster, "sata", seed_volume_name(uuid)) is False


def test_it_purges_a_machine_and_its_row(cluster):
    vm = built(cluster)
    uuid = str(vm.uuid)

    op = run(start(vm, "purge"))

    assert op.status == "succeeded"
    assert op.virtual_machine is None
    assert cluster.driver.state(uuid) is PowerState.ABSENT
