"""Groups: default group, unique names, renames, deletes, VLANs, read-only views."""

import pytest

from groups.models import Group
from panel.models import AuditEvent
from tests.factories import as_user, grant, make_account, make_user, make_vm

pytestmark = pytest.mark.django_db


@pytest.fixture
def acme():
    account = make_account("acme")
    Group.objects.create(account=account, name="staging")
    return account


@pytest.fixture
def owner(acme):
    user = make_user("owner")
    grant(user, "account_admin", acme)
    return as_user(user)


@pytest.fixture
def root():
    user = make_user("root")
    grant(user, "cluster_admin")
    return as_user(user)


def test_a_group_name_is_unique_in_its_account_only(acme, owner):
    bob = make_user("bob")
    grant(bob, "account_admin", make_account("bravo"))

    again = owner.post("/accounts/acme/groups", {"name": "staging"})
    elsewhere = as_user(bob).post("/accounts/bravo/groups", {"name": "staging"})

    assert again.status_code == 400
    assert again.json() == {"name": ["is already taken in this account"]}
    assert elsewhere.status_code == 201
    assert Group.objects.filter(name="staging").count() == 2


def test_a_new_group_is_created_and_audited(acme, owner):
    response = owner.post("/accounts/acme/groups", {"name": "prod"})

    assert response.status_code == 201
    assert response.json()["account_id"] == acme.id
    assert AuditEvent.objects.filter(kind=AuditEvent.Kind.GROUP_CREATED).exists()


def test_a_rename_moves_the_machines_hostnames(acme, owner):
    make_vm(acme.groups.get(name="staging"), "db")

    response = owner.put("/accounts/acme/groups/staging", {"name": "prod"})

    assert response.status_code == 200
    assert response.json()["name"] == "prod"
    group = owner.get("/accounts/acme/groups/prod?view=overview").json()
    assert group["virtual_machines"][0]["hostname"].startswith("db.prod.acme.")
    assert owner.get("/accounts/acme/groups/staging").status_code == 404


def test_a_group_admin_renames_their_group(acme):
    user = make_user("carol")
    grant(user, "group_admin", acme.groups.get(name="staging"))

    response = as_user(user).put("/accounts/acme/groups/staging", {"name": "qa"})

    assert response.status_code == 200
    assert Group.objects.filter(account=acme, name="qa").exists()


def test_the_default_group_keeps_its_name(acme, owner):
    response = owner.put("/accounts/acme/groups/default", {"name": "main"})

    assert response.status_code == 400
    assert Group.objects.filter(account=acme, name="default").exists()


def test_deleting_a_group_with_machines_fails_with_the_reason(acme, owner):
    make_vm(acme.groups.get(name="staging"), "db")

    response = owner.delete("/accounts/acme/groups/staging")

    assert response.status_code == 400
    assert "virtual machines" in response.json()["group"][0]
    assert Group.objects.filter(account=acme, name="staging").exists()


def test_deleting_a_group_with_only_deleted_machines_still_fails(acme, owner):
    make_vm(acme.groups.get(name="staging"), "db", deleted=True)

    response = owner.delete("/accounts/acme/groups/staging")

    assert response.status_code == 400
    assert Group.objects.filter(account=acme, name="staging").exists()


def test_an_empty_group_is_deleted(acme, owner):
    response = owner.delete("/accounts/acme/groups/staging")

    assert response.status_code == 204
    assert not Group.objects.filter(account=acme, name="staging").exists()
    assert AuditEvent.objects.filter(kind=AuditEvent.Kind.GROUP_DELETED).exists()


def test_the_default_group_is_not_deleted(acme, owner):
    response = owner.delete("/accounts/acme/groups/default")

    assert response.status_code == 400
    assert Group.objects.filter(account=acme, name="default").exists()


def test_a_cluster_admin_sets_a_vlan(acme, root, owner):
    response = root.put("/accounts/acme/groups/staging", {"vlan_num": 12})

    assert response.status_code == 200
    assert owner.get("/accounts/acme/groups/staging").json()["vlan_num"] == 12


def test_an_account_admin_cannot_set_a_vlan(acme, owner):
    changed = owner.put("/accounts/acme/groups/staging", {"vlan_num": 12})
    created = owner.post("/accounts/acme/groups", {"name": "prod", "vlan_num": 12})

    assert changed.status_code == 403
    assert created.status_code == 403
    assert Group.objects.get(account=acme, name="staging").vlan_num is None
    assert not Group.objects.filter(name="prod").exists()


def test_a_cluster_admin_creates_a_group_with_a_vlan(acme, root):
    response = root.post("/accounts/acme/groups", {"name": "prod", "vlan_num": 30})

    assert response.status_code == 201
    assert Group.objects.get(account=acme, name="prod").vlan_num == 30


@pytest.mark.parametrize("spec", ["acme", "id"])
def test_groups_can_be_listed_by_account_name_or_id(acme, owner, spec):
    make_account("bravo")
    spec = acme.id if spec == "id" else spec

    body = owner.get(f"/groups?account_id={spec}").json()

    assert [g["name"] for g in body] == ["default", "staging"]


def test_groups_list_only_what_the_caller_reaches(acme):
    user = make_user("carol")
    grant(user, "group_admin", acme.groups.get(name="staging"))
    make_account("bravo")

    body = as_user(user).get("/groups").json()

    assert [g["name"] for g in body] == ["staging"]


def test_a_group_is_read_by_id_with_its_machines(acme, owner):
    staging = acme.groups.get(name="staging")
    make_vm(staging, "db")
    make_vm(staging, "old", deleted=True)

    plain = owner.get(f"/groups/{staging.id}").json()
    overview = owner.get(f"/groups/{staging.id}?view=overview").json()
    everything = owner.get(f"/groups/{staging.id}?view=overview&include_deleted=1")

    assert plain == {
        "id": staging.id,
        "name": "staging",
        "account_id": acme.id,
        "vlan_num": None,
    }
    assert [vm["name"] for vm in overview["virtual_machines"]] == ["db"]
    names = [vm["name"] for vm in everything.json()["virtual_machines"]]
    assert names == ["db", "old"]
