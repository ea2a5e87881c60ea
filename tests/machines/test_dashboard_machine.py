"""A machine's page in the browser: its buttons, their refusals and reasons,
the in-place YubiKey step-up, and forms that write nothing on bad input."""

import pytest
from django.test import Client

from machines.models import Disc, Operation, VirtualMachine
from tests.factories import SimulatedYubikey, grant, make_user
from tests.machines.conftest import built_vm, finish
from tests.machines.dashboard_world import browser

pytestmark = pytest.mark.django_db


def act(client, fleet, action, data=None):
    return client.post(f"{fleet.url}do/{action}", data or {})


def test_the_owner_starts_a_machine_and_is_sent_back_to_its_page(fleet):
    response = act(browser(fleet.owner), fleet, "start")

    assert response.status_code == 303
    assert response["Location"] == fleet.url
    op = Operation.objects.get(virtual_machine=fleet.vm, status="queued")
    assert op.kind == "power_on"
    fleet.vm.refresh_from_db()
    assert fleet.vm.desired_power_on and fleet.vm.autoreboot_on


def test_buttons_that_need_a_running_machine_say_so(fleet):
    text = browser(fleet.owner).get(fleet.url).content.decode()

    assert "The machine must be running." in text
    assert text.count("disabled") >= 5


def test_a_console_user_sees_disabled_buttons_and_is_refused(fleet):
    client = browser(fleet.console)

    page = client.get(fleet.url).content.decode()
    response = act(client, fleet, "start")

    assert "Not permitted: this needs a machine admin." in page
    assert response.status_code == 403
    assert not Operation.objects.filter(virtual_machine=fleet.vm, kind="power_on")


def test_an_unmet_yubikey_condition_asks_for_an_otp_in_place_then_acts(fleet):
    key = SimulatedYubikey(fleet.yubi)
    client = browser(fleet.yubi)
    client.post("/panel/step-up", {"otp": key.otp(), "next": "/panel/"})
    # The session's OTP is older than the privilege accepts.
    fleet.yubi.privileges.update(yubikey_otp_max_age=0)

    refused = act(
        client,
        fleet,
        "specs",
        {
            "specs-cores": "2",
            "specs-memory": "2048",
            "specs-hardware_profile": "virtio2013",
        },
    )
    assert refused.status_code == 403
    text = refused.content.decode()
    assert "Confirm with your YubiKey" in text
    assert 'name="specs-cores" value="2"' in text
    fleet.yubi.privileges.update(yubikey_otp_max_age=900)

    done = act(
        client,
        fleet,
        "specs",
        {
            "specs-cores": "2",
            "specs-memory": "2048",
            "specs-hardware_profile": "virtio2013",
            "otp": key.otp(),
        },
    )

    assert done.status_code == 303
    fleet.vm.refresh_from_db()
    assert (fleet.vm.cores, fleet.vm.memory) == (2, 2048)


def test_a_rejected_otp_says_why_and_changes_nothing(fleet):
    SimulatedYubikey(fleet.yubi)
    client = browser(fleet.yubi)

    response = act(client, fleet, "start", {"otp": "c" * 44})

    assert response.status_code == 403
    assert "The OTP was not accepted" in response.content.decode()
    assert not Operation.objects.filter(virtual_machine=fleet.vm, kind="power_on")


def test_bad_specs_show_the_message_by_the_field_and_write_nothing(fleet):
    response = act(
        browser(fleet.owner),
        fleet,
        "specs",
        {
            "specs-cores": "0",
            "specs-memory": "1024",
            "specs-hardware_profile": "virtio2013",
        },
    )

    assert response.status_code == 400
    errors = response.context["specs_form"].errors
    assert "cores" in errors
    assert 'id="id_specs-cores_error"' in response.content.decode()
    fleet.vm.refresh_from_db()
    assert fleet.vm.cores == 1


def test_reimage_needs_the_machine_off(fleet):
    VirtualMachine.objects.filter(pk=fleet.vm.pk).update(
        power_on=True, desired_power_on=True
    )

    text = browser(fleet.owner).get(fleet.url).content.decode()

    assert "The machine must be off." in text


def test_reimage_without_password_or_key_is_refused_by_the_field(fleet):
    response = act(
        browser(fleet.owner),
        fleet,
        "reimage",
        {"reimage-distribution": "bookworm", "reimage-confirm": "on"},
    )

    assert response.status_code == 400
    assert "root_password" in response.context["reimage_form"].errors
    assert not Operation.objects.filter(kind="image")


def test_reimage_starts_the_image_operation(fleet):
    response = act(
        browser(fleet.owner),
        fleet,
        "reimage",
        {
            "reimage-distribution": "bookworm",
            "reimage-root_password": "s3cret pass",
            "reimage-confirm": "on",
        },
    )

    assert response.status_code == 303
    op = Operation.objects.get(kind="image")
    assert "s3cret pass" not in str(op.params)


def test_a_disc_grows_but_never_shrinks(fleet):
    disc = fleet.vm.discs.get()
    client = browser(fleet.owner)

    shrink = act(
        client, fleet, "grow-disc", {"disc": disc.pk, f"grow-{disc.pk}-size": "10"}
    )
    grow = act(
        client, fleet, "grow-disc", {"disc": disc.pk, f"grow-{disc.pk}-size": "30"}
    )

    assert shrink.status_code == 400
    assert "discs can only grow" in shrink.content.decode()
    assert grow.status_code == 303
    assert Disc.objects.get(pk=disc.pk).size == 30 * 1024


def test_a_disc_is_deleted_only_with_confirmation(fleet):
    disc = fleet.vm.discs.get()
    client = browser(fleet.owner)

    unconfirmed = act(client, fleet, "delete-disc", {"disc": disc.pk})
    confirmed = act(client, fleet, "delete-disc", {"disc": disc.pk, "confirm": "yes"})

    assert unconfirmed.status_code == 400
    assert confirmed.status_code == 303
    assert not Disc.objects.filter(pk=disc.pk).exists()


def test_another_machines_disc_is_not_found(fleet):
    other = built_vm(fleet.group, fleet.owner, "other")
    stranger = make_user()
    grant(stranger, "vm_admin", fleet.vm)

    response = act(
        browser(stranger),
        fleet,
        "delete-disc",
        {"disc": other.discs.get().pk, "confirm": "yes"},
    )

    assert response.status_code == 404
    assert other.discs.exists()


def test_reverse_dns_is_checked_by_the_field(fleet):
    ip = fleet.vm.network_interfaces.get().ips.get(family="ipv4")
    client = browser(fleet.owner)

    bad = act(client, fleet, "rdns", {"ip": ip.pk, f"rdns-{ip.pk}-rdns": "not a name"})
    good = act(
        client, fleet, "rdns", {"ip": ip.pk, f"rdns-{ip.pk}-rdns": "web.example"}
    )

    assert bad.status_code == 400
    assert "must be a valid hostname" in bad.content.decode()
    assert good.status_code == 303
    ip.refresh_from_db()
    assert ip.rdns == "web.example"


def test_an_extra_ip_is_added_to_a_nic(fleet):
    nic = fleet.vm.network_interfaces.get()

    response = act(
        browser(fleet.owner),
        fleet,
        "add-ip",
        {"nic": nic.pk, f"ip-{nic.pk}-family": "ipv4", f"ip-{nic.pk}-addresses": "1"},
    )

    assert response.status_code == 303
    assert nic.ips.filter(routed_via__isnull=False).count() == 1


def test_a_busy_machine_answers_409_naming_the_operation(fleet):
    Operation.objects.create(kind="reboot", status="running", virtual_machine=fleet.vm)

    response = act(browser(fleet.owner), fleet, "start")

    assert response.status_code == 409
    assert "busy with a reboot operation" in response.content.decode()


def test_purge_asks_for_the_machines_name(fleet):
    client = browser(fleet.owner)

    wrong = act(client, fleet, "purge", {"purge-confirm_name": "nope"})
    assert wrong.status_code == 400
    assert VirtualMachine.objects.filter(pk=fleet.vm.pk).exists()

    right = act(client, fleet, "purge", {"purge-confirm_name": "web"})
    assert right.status_code == 303
    assert right["Location"] == "/panel/"
    assert not VirtualMachine.objects.filter(pk=fleet.vm.pk).exists()


def test_delete_then_restore(fleet):
    client = browser(fleet.owner)

    act(client, fleet, "delete", {"confirm": "yes"})
    fleet.vm.refresh_from_db()
    assert fleet.vm.deleted
    assert "Restore" in client.get(fleet.url).content.decode()

    act(client, fleet, "restore")
    fleet.vm.refresh_from_db()
    assert not fleet.vm.deleted


def test_the_live_region_changes_when_an_operation_finishes(fleet):
    client = browser(fleet.owner)
    act(client, fleet, "start")
    op = Operation.objects.get(kind="power_on")
    version = client.get(fleet.url).context["version"]

    unchanged = client.get(f"{fleet.url}live?v={version}")
    finish(op, power_on=True)
    changed = client.get(f"{fleet.url}live?v={version}")

    assert unchanged.status_code == 204
    assert changed.status_code == 200
    assert 'id="machine-state">running<' in changed.content.decode()


def test_forms_need_the_csrf_token(fleet):
    client = Client(enforce_csrf_checks=True)
    client.force_login(fleet.owner)

    response = client.post(f"{fleet.url}do/start")

    assert response.status_code == 403
    assert not Operation.objects.filter(kind="power_on")
