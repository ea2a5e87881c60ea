"""Creating machines and managing groups in the browser."""

import pytest

from groups.models import Group
from machines.models import Operation, VirtualMachine
from panel.models import AuditEvent
from tests.factories import SimulatedYubikey, grant, make_user, ssh_public_key
from tests.machines.conftest import built_vm
from tests.machines.dashboard_world import browser

pytestmark = pytest.mark.django_db


def create_form(group, **overrides) -> dict:
    return {
        "name": "api",
        "group": str(group.pk),
        "cores": "2",
        "memory": "2048",
        "disc_size": "20",
        "storage_grade": "sata",
        "extra_disc_size": "",
        "extra_storage_grade": "sata",
        "distribution": "bookworm",
        "root_password": "a long root password",
        "ssh_public_key": "",
        "firstboot_script": "",
        "zone": "",
        "power_on": "on",
        **overrides,
    }


def test_it_creates_a_machine_and_shows_its_build(fleet):
    client = browser(fleet.owner)

    response = client.post("/panel/machines/new", create_form(fleet.group))

    assert response.status_code == 303
    url = "/panel/accounts/acme/groups/default/machines/api/"
    assert response["Location"] == url
    vm = VirtualMachine.objects.get(name="api")
    assert (vm.cores, vm.memory, vm.desired_power_on) == (2, 2048, True)
    assert vm.discs.get().size == 20 * 1024
    op = Operation.objects.get(virtual_machine=vm)
    assert op.kind == "create"
    assert "a long root password" not in str(op.params)
    page = client.get(url).content.decode()
    assert "building" in page


def test_a_second_disc_and_an_ssh_key_instead_of_a_password(fleet):
    response = browser(fleet.owner).post(
        "/panel/machines/new",
        create_form(
            fleet.group,
            root_password="",
            ssh_public_key=ssh_public_key("me@laptop"),
            extra_disc_size="100",
            extra_storage_grade="archive",
        ),
    )

    assert response.status_code == 303
    vm = VirtualMachine.objects.get(name="api")
    assert [(d.size, d.storage_grade) for d in vm.discs.order_by("id")] == [
        (20 * 1024, "sata"),
        (100 * 1024, "archive"),
    ]


@pytest.mark.parametrize(
    ("overrides", "field"),
    [
        ({"name": "Not A Label"}, "name"),
        ({"cores": "0"}, "cores"),
        ({"memory": "12"}, "memory"),
        ({"disc_size": ""}, "disc_size"),
        ({"root_password": "", "ssh_public_key": ""}, "root_password"),
        ({"ssh_public_key": "ssh-rsa nonsense"}, "ssh_public_key"),
        ({"name": "web"}, "name"),  # taken: the action's own check
    ],
)
def test_bad_input_is_shown_by_the_field_and_nothing_is_written(
    fleet, overrides, field
):
    before = VirtualMachine.objects.count(), Operation.objects.count()

    response = browser(fleet.owner).post(
        "/panel/machines/new", create_form(fleet.group, **overrides)
    )

    assert response.status_code == 400
    assert field in response.context["form"].errors
    assert f'id="id_{field}_error"' in response.content.decode()
    assert (VirtualMachine.objects.count(), Operation.objects.count()) == before


def test_only_group_admins_groups_are_offered(fleet):
    teammate = make_user()
    web = Group.objects.create(account=fleet.account, name="web")
    grant(teammate, "group_admin", web)

    response = browser(teammate).get("/panel/machines/new")
    refused = browser(teammate).post("/panel/machines/new", create_form(fleet.group))

    choices = [value for value, _ in response.context["form"].fields["group"].choices]
    assert choices == [str(web.pk)]
    assert refused.status_code == 400
    assert "group" in refused.context["form"].errors


def test_creating_in_a_yubikey_group_asks_for_an_otp_then_creates(fleet):
    teammate = make_user()
    key = SimulatedYubikey(teammate)
    grant(teammate, "group_admin", fleet.group, yubikey_required=True)
    client = browser(teammate)

    asked = client.post("/panel/machines/new", create_form(fleet.group))
    assert asked.status_code == 403
    assert "Confirm with your YubiKey" in asked.content.decode()
    assert not VirtualMachine.objects.filter(name="api").exists()

    done = client.post(
        "/panel/machines/new", {**create_form(fleet.group), "otp": key.otp()}
    )
    assert done.status_code == 303
    assert VirtualMachine.objects.filter(name="api").exists()


# Groups -----------------------------------------------------------------------


def test_an_account_admin_creates_a_group(fleet):
    client = browser(fleet.owner)

    bad = client.post("/panel/accounts/acme/groups/new", {"name": "Bad Name"})
    taken = client.post("/panel/accounts/acme/groups/new", {"name": "default"})
    made = client.post("/panel/accounts/acme/groups/new", {"name": "staging"})

    assert bad.status_code == taken.status_code == 400
    assert "is already taken" in taken.content.decode()
    assert made.status_code == 303
    assert made["Location"] == "/panel/accounts/acme/groups/staging/"
    assert AuditEvent.objects.filter(kind=AuditEvent.Kind.GROUP_CREATED).count() == 1


def test_a_vm_console_user_cannot_create_groups(fleet):
    response = browser(fleet.console).post(
        "/panel/accounts/acme/groups/new", {"name": "staging"}
    )

    assert response.status_code == 403
    assert not Group.objects.filter(name="staging").exists()


def test_renaming_a_group_shows_the_new_hostnames_before_confirming(fleet):
    group = Group.objects.create(account=fleet.account, name="web")
    built_vm(group, fleet.owner, "front")
    client = browser(fleet.owner)
    url = "/panel/accounts/acme/groups/web/rename"

    asked = client.post(url, {"name": "www"})
    assert asked.status_code == 200
    assert "front.web.acme.corral.local → front.www.acme.corral.local" in (
        asked.content.decode()
    )
    assert Group.objects.filter(name="web").exists()

    done = client.post(url, {"name": "www", "confirm": "yes"})
    assert done.status_code == 303
    assert done["Location"] == "/panel/accounts/acme/groups/www/"
    assert VirtualMachine.objects.get(name="front").hostname.startswith("front.www.")


def test_the_default_group_keeps_its_name(fleet):
    response = browser(fleet.owner).post(
        "/panel/accounts/acme/groups/default/rename", {"name": "prod", "confirm": "yes"}
    )

    assert response.status_code == 400
    assert Group.objects.filter(account=fleet.account, name="default").exists()


def test_a_group_is_deleted_only_when_empty(fleet):
    group = Group.objects.create(account=fleet.account, name="web")
    vm = built_vm(group, fleet.owner, "front")
    client = browser(fleet.owner)
    url = "/panel/accounts/acme/groups/web/delete"

    page = client.get("/panel/accounts/acme/groups/web/").content.decode()
    refused = client.post(url, {"confirm": "yes"})
    assert "still holds 1 machine(s)" in page
    assert refused.status_code == 400
    assert Group.objects.filter(pk=group.pk).exists()

    vm.delete()
    done = client.post(url, {"confirm": "yes"})
    assert done.status_code == 303
    assert not Group.objects.filter(pk=group.pk).exists()


def test_an_outsider_cannot_see_a_group(fleet):
    client = browser(fleet.outsider)

    assert client.get("/panel/accounts/acme/groups/default/").status_code == 404
    assert client.post("/panel/accounts/acme/groups/default/delete").status_code == 404
