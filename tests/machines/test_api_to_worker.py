"""The machines API and the worker together: every long operation the API
starts is carried out by `machines.worker.execute` on a simulated head, and
both the API and the head then show the state that was asked for."""

import logging

import pytest

from machines.faults import plan_failures
from machines.hypervisors.base import NotFound, PowerState, seed_volume_name
from machines.models import Backup, Disc, Operation, VirtualMachine
from machines.worker import execute
from panel.models import AuditEvent
from tests.machines.e2e_site import (
    ROOT_PASSWORD,
    create,
    domain_discs,
    get,
    image,
    make_site,
    run_answer,
    state,
    volume_size,
)

pytestmark = pytest.mark.django_db


@pytest.fixture
def site(tmp_path, settings):
    return make_site(tmp_path, settings)


# Creating.


def test_vm_create_with_an_image_and_power_on_ends_running_and_imaged(site):
    vm = create(site, reimage=image())

    body = get(site, vm).json()
    assert body["power_on"] is True
    assert body["last_imaged_with"] == "bookworm"
    assert [d["size"] for d in body["discs"]] == [2048]
    assert state(site, vm) is PowerState.RUNNING
    disc = vm.discs.select_related("storage_pool").get()
    volume = site.driver.volume(disc.storage_pool.libvirt_pool, disc.volume)
    assert (volume["size_mib"], volume["image"]) == (2048, "bookworm")
    seed = site.driver.volume("sata", seed_volume_name(str(vm.uuid)))
    assert seed["seed"]["hostname"] == body["hostname"]
    spec = site.driver.domain(str(vm.uuid))["spec"]
    assert (spec["cores"], spec["memory_mib"]) == (1, 1024)


def test_post_virtual_machines_builds_a_stopped_machine_with_blank_discs(site):
    response = site.api.post(
        site.base,
        {"name": "blank", "cores": 2, "memory": 512, "discs": [{"size": 1024}]},
    )
    run_answer(response)

    vm = VirtualMachine.objects.get(pk=response.json()["id"])
    body = get(site, vm).json()
    assert body["power_on"] is False
    assert state(site, vm) is PowerState.SHUT_OFF
    disc = vm.discs.select_related("storage_pool").get()
    assert site.driver.volume(disc.storage_pool.libvirt_pool, disc.volume) == {
        "size_mib": 1024,
        "image": None,
        "seed": None,
    }
    spec = site.driver.domain(str(vm.uuid))["spec"]
    assert (spec["cores"], spec["memory_mib"]) == (2, 512)


# Power.


def test_put_start_and_stop_power_the_domain_on_and_off(site):
    vm = create(site, power_on=False)
    path = f"/virtual_machines/{vm.pk}"

    run_answer(site.api.put(path, {"power_on": True, "autoreboot_on": True}))
    assert get(site, vm).json()["power_on"] is True
    assert state(site, vm) is PowerState.RUNNING

    run_answer(site.api.put(path, {"power_on": False, "autoreboot_on": False}))
    assert get(site, vm).json()["power_on"] is False
    assert state(site, vm) is PowerState.SHUT_OFF


def test_put_reboot_restarts_with_the_new_specs(site):
    vm = create(site)
    path = f"/virtual_machines/{vm.pk}"
    assert site.api.put(path, {"cores": 2, "memory": 2048}).status_code == 200

    op = run_answer(site.api.put(path, {"power_on": False, "autoreboot_on": True}))

    assert op.kind == "reboot"
    assert get(site, vm).json()["power_on"] is True
    assert state(site, vm) is PowerState.RUNNING
    spec = site.driver.domain(str(vm.uuid))["spec"]
    assert (spec["cores"], spec["memory_mib"]) == (2, 2048)


# Signals.


def test_signal_powerdown_leaves_the_machine_off(site):
    vm = create(site)

    run_answer(
        site.api.post(f"/virtual_machines/{vm.pk}/signal", {"signal": "powerdown"})
    )

    assert get(site, vm).json()["power_on"] is False
    assert state(site, vm) is PowerState.SHUT_OFF
    assert VirtualMachine.objects.get(pk=vm.pk).desired_power_on is False


def test_signal_reset_resets_the_running_domain(site):
    vm = create(site)

    run_answer(site.api.post(f"/virtual_machines/{vm.pk}/signal", {"signal": "reset"}))

    assert get(site, vm).json()["power_on"] is True
    assert site.driver.domain(str(vm.uuid))["resets"] == 1


def test_signal_sendkey_presses_ctrl_alt_delete(site):
    vm = create(site)

    run_answer(
        site.api.post(
            f"/virtual_machines/{vm.pk}/signal",
            {"signal": "sendkey", "data": "ctrl-alt-delete"},
        )
    )

    assert site.driver.domain(str(vm.uuid))["keys_sent"] == [["ctrl", "alt", "delete"]]
    assert state(site, vm) is PowerState.RUNNING


@pytest.mark.parametrize("key", ["print", "spc", "ret", "sysrq", "pgup", "insert"])
def test_every_listed_sendkey_reaches_the_domain(site, key):
    vm = create(site, name=f"keys-{key}")

    run_answer(
        site.api.post(
            f"/virtual_machines/{vm.pk}/signal", {"signal": "sendkey", "data": key}
        )
    )

    assert site.driver.domain(str(vm.uuid))["keys_sent"] == [[key]]


# Reimaging.


def test_reimage_of_a_stopped_machine_installs_and_powers_it_on(site):
    vm = create(site, power_on=False, reimage=image())

    op = run_answer(
        site.api.post(f"/virtual_machines/{vm.pk}/reimage", image("noble", "Other-1"))
    )

    body = get(site, vm).json()
    assert (body["power_on"], body["autoreboot_on"]) == (True, False)
    assert body["last_imaged_with"] == "noble"
    assert state(site, vm) is PowerState.RUNNING
    disc = vm.discs.select_related("storage_pool").get()
    volume = site.driver.volume(disc.storage_pool.libvirt_pool, disc.volume)
    assert volume["image"] == "noble"
    seed = site.driver.volume("sata", seed_volume_name(str(vm.uuid)))
    assert seed["seed"]["instance_id"] == f"{vm.uuid}-{op.pk}"


# Discs.


def test_adding_a_disc_creates_and_attaches_its_volume(site):
    vm = create(site)

    response = site.api.post(
        f"/virtual_machines/{vm.pk}/discs", {"label": "data", "size": 4096}
    )
    run_answer(response)

    disc = Disc.objects.select_related("storage_pool").get(pk=response.json()["id"])
    body = get(site, vm).json()
    assert [(d["label"], d["size"]) for d in body["discs"]] == [
        ("root", 2048),
        ("data", 4096),
    ]
    assert volume_size(site, disc) == 4096
    assert disc.volume in domain_discs(site, vm)


def test_growing_a_disc_grows_its_volume(site):
    vm = create(site)
    disc = vm.discs.select_related("storage_pool").get()

    run_answer(site.api.put(f"/virtual_machines/{vm.pk}/discs/root", {"size": 3072}))

    assert get(site, vm).json()["discs"][0]["size"] == 3072
    assert volume_size(site, disc) == 3072


def test_a_failed_resize_leaves_the_api_showing_the_real_size(site, settings):
    settings.CORRAL_FAULT_INJECTION = True
    settings.CORRAL_FAULT_DIR = site.driver.directory.parent / "faults"
    settings.CORRAL_OPERATION_MAX_ATTEMPTS = 1
    vm = create(site)
    disc = vm.discs.select_related("storage_pool").get()
    plan_failures(site.infra.head.label, grow_volume=1)

    response = site.api.put(f"/virtual_machines/{vm.pk}/discs/root", {"size": 3072})
    execute(response.json()["operation"]["id"])

    assert Operation.objects.get(kind="resize").status == "failed"
    assert get(site, vm).json()["discs"][0]["size"] == 2048
    assert volume_size(site, disc) == 2048


def test_deleting_a_disc_with_purge_removes_its_volume_and_attachment(site):
    vm = create(site, discs=[{"label": "root", "size": 2048}, {"size": 1024}])
    extra = vm.discs.select_related("storage_pool").get(label="disc-1")

    run_answer(site.api.delete(f"/discs/{extra.pk}?purge=true"))

    assert [d["label"] for d in get(site, vm).json()["discs"]] == ["root"]
    assert volume_size(site, extra) is None
    assert extra.volume not in domain_discs(site, vm)
    assert site.api.get(f"/discs/{extra.pk}").status_code == 404


# Backups.


def test_a_backup_copies_the_disc_and_restores_onto_the_stopped_machine(site):
    vm = create(site, power_on=False)
    path = f"/virtual_machines/{vm.pk}/discs/root/backups"

    response = site.api.post(path)
    run_answer(response)

    backup = Backup.objects.select_related("storage_pool").get(pk=response.json()["id"])
    assert backup.complete is True
    assert site.api.get(f"{path}/{backup.label}").json()["storage_grade"] == "iceberg"
    copy = site.driver.volume(backup.storage_pool.libvirt_pool, backup.volume)
    assert copy["size_mib"] == 2048

    op = run_answer(site.api.put(f"{path}/{backup.label}", {"restore": True}))

    assert op.kind == "restore"
    disc = vm.discs.select_related("storage_pool").get()
    restored = site.driver.volume(disc.storage_pool.libvirt_pool, disc.volume)
    assert restored["copied_from"] == f"backup/{backup.volume}"


# Deleting.


def test_soft_delete_powers_off_and_restore_brings_it_back(site):
    vm = create(site)
    path = f"/virtual_machines/{vm.pk}"

    run_answer(site.api.delete(path))

    assert get(site, vm).status_code == 404
    assert get(site, vm, deleted=True).json()["deleted"] is True
    assert state(site, vm) is PowerState.SHUT_OFF

    response = site.api.put(path, {"deleted": False})

    assert response.status_code == 200, response.content
    body = get(site, vm).json()
    assert (body["deleted"], body["power_on"]) == (False, False)
    # Restored, it starts again like any stopped machine.
    run_answer(site.api.put(path, {"power_on": True}))
    assert state(site, vm) is PowerState.RUNNING


def test_purge_destroys_the_domain_and_volumes_and_frees_the_name(site):
    vm = create(site, reimage=image())
    discs = list(vm.discs.select_related("storage_pool"))
    backup = site.api.post(f"/virtual_machines/{vm.pk}/discs/root/backups")
    run_answer(backup)
    copy = Backup.objects.select_related("storage_pool").get(pk=backup.json()["id"])
    uuid = str(vm.uuid)

    op = run_answer(site.api.delete(f"/virtual_machines/{vm.pk}?purge=true"))

    assert op.kind == "purge"
    assert get(site, vm, deleted=True).status_code == 404
    assert site.driver.state(uuid) is PowerState.ABSENT
    assert all(volume_size(site, disc) is None for disc in discs)
    with pytest.raises(NotFound):
        site.driver.volume(copy.storage_pool.libvirt_pool, copy.volume)
    with pytest.raises(NotFound):
        site.driver.volume("sata", seed_volume_name(uuid))
    assert site.api.get(f"/operations/{op.pk}").json()["status"] == "succeeded"
    again = create(site, name=vm.name)
    assert get(site, again).json()["name"] == vm.name
    assert state(site, again) is PowerState.RUNNING


def test_ip_create_needs_no_operation(site):
    vm = create(site)
    nic = vm.network_interfaces.get()

    response = site.api.post(
        f"/virtual_machines/{vm.pk}/nics/{nic.pk}/ip_create", {"addresses": 1}
    )

    assert response.status_code == 201, response.content
    assert vm.operations.filter(status__in=Operation.ACTIVE).count() == 0
    extra = get(site, vm).json()["network_interfaces"][0]["extra_ips"]
    assert list(extra) == response.json()["ips"]


# Secrets.


def _everywhere(caplog) -> str:
    rows = [
        *Operation.objects.values_list("params", "result", "error"),
        *AuditEvent.objects.values_list("detail", "actor_username", "kind"),
    ]
    return f"{rows!r}\n{caplog.text}"


def test_the_root_password_is_stored_and_logged_nowhere(site, caplog, tmp_path):
    caplog.set_level(logging.DEBUG)
    body = {
        "virtual_machine": {"name": "secret", "power_on": True},
        "discs": [{"size": 1024}],
        "reimage": image(),
    }

    response = site.api.post(f"{site.group_path}/vm_create", body)

    assert response.status_code == 202, response.content
    assert ROOT_PASSWORD not in response.content.decode()
    assert ROOT_PASSWORD not in _everywhere(caplog)

    op = run_answer(response)

    assert ROOT_PASSWORD not in _everywhere(caplog)
    assert "root_password_hash" not in str(op.params)
    for path in (tmp_path / "heads").iterdir():
        assert ROOT_PASSWORD not in path.read_text(errors="replace")
    reimaged = site.api.post(
        f"/virtual_machines/{response.json()['id']}/reimage", image()
    )
    assert reimaged.status_code == 400  # running: stop it first
    assert ROOT_PASSWORD not in _everywhere(caplog)


def test_a_machine_whose_create_failed_can_be_stopped_and_reimaged(site):
    # No base image for trixie: the create fails after making the volumes.
    response = site.api.post(
        f"{site.group_path}/vm_create",
        {
            "virtual_machine": {"name": "broken", "power_on": True},
            "discs": [{"size": 1024}],
            "reimage": image("trixie"),
        },
    )
    execute(response.json()["operation"]["id"])
    vm = VirtualMachine.objects.get(pk=response.json()["id"])
    failed = vm.operations.get()
    assert failed.status == "failed" and "trixie" in failed.error
    assert state(site, vm) is PowerState.ABSENT
    path = f"/virtual_machines/{vm.pk}"

    run_answer(site.api.put(path, {"power_on": False}))
    run_answer(site.api.post(f"{path}/reimage", image()))

    assert get(site, vm).json()["power_on"] is True
    assert state(site, vm) is PowerState.RUNNING
    disc = vm.discs.select_related("storage_pool").get()
    volume = site.driver.volume(disc.storage_pool.libvirt_pool, disc.volume)
    assert volume["image"] == "bookworm"
