"""Accounts: listing order, overviews, immutable names, suspension."""

import pytest

from accounts.models import Account
from groups.models import Group
from panel.models import AuditEvent
from privileges.models import Privilege
from tests.factories import as_user, grant, make_account, make_user, make_vm

pytestmark = pytest.mark.django_db


@pytest.fixture
def acme():
    account = make_account("acme")
    Group.objects.create(account=account, name="staging")
    return account


def test_the_callers_own_account_comes_first():
    user = make_user("carol")
    reached = make_account("alpha")
    grant(user, "vm_console", make_vm(reached.groups.get(), "web"))
    own = make_account("zulu")
    grant(user, "account_admin", own)
    grant(user, "account_admin", make_account("mike"))

    names = [a["name"] for a in as_user(user).get("/accounts").json()]

    assert names == ["zulu", "alpha", "mike"]


def test_without_an_account_of_their_own_the_first_reachable_leads():
    user = make_user("carol")
    for name in ("alpha", "bravo"):
        grant(user, "group_admin", make_account(name).groups.get())

    names = [a["name"] for a in as_user(user).get("/accounts").json()]

    assert names == ["alpha", "bravo"]


def test_the_overview_embeds_only_reachable_groups_and_machines(acme):
    user = make_user("carol")
    web = make_vm(acme.groups.get(name="default"), "web")
    make_vm(acme.groups.get(name="default"), "mail")
    make_vm(acme.groups.get(name="staging"), "db")
    grant(user, "vm_console", web)

    body = as_user(user).get("/accounts/acme?view=overview").json()

    assert [g["name"] for g in body["groups"]] == ["default"]
    assert [vm["name"] for vm in body["groups"][0]["virtual_machines"]] == ["web"]
    assert body["groups"][0]["virtual_machines"][0]["hostname"].startswith(
        "web.default.acme."
    )


@pytest.mark.parametrize("path", ["/accounts", "/accounts/acme"])
def test_deleted_machines_show_only_with_include_deleted(acme, path):
    admin = make_user("root")
    grant(admin, "account_admin", acme)
    make_vm(acme.groups.get(name="default"), "web")
    make_vm(acme.groups.get(name="default"), "old", deleted=True)
    api = as_user(admin)

    def machines(query):
        body = api.get(f"{path}?view=overview{query}").json()
        account = body[0] if isinstance(body, list) else body
        return [vm["name"] for vm in account["groups"][0]["virtual_machines"]]

    assert machines("") == ["web"]
    assert machines("&include_deleted=true") == ["web", "old"]


def test_a_new_account_has_a_default_group_and_its_creator_as_admin():
    user = make_user("carol")

    response = as_user(user).post("/accounts", {"name": "newco"})

    assert response.status_code == 201
    account = Account.objects.get(name="newco")
    assert list(account.groups.values_list("name", flat=True)) == ["default"]
    priv = Privilege.objects.get(account=account)
    assert (priv.user, priv.level, priv.creating_username) == (
        user,
        "account_admin",
        "carol",
    )


def test_an_account_name_never_changes(acme):
    admin = make_user("root")
    grant(admin, "cluster_admin")

    response = as_user(admin).put("/accounts/acme", {"name": "renamed"})

    assert response.status_code == 200
    assert response.json()["name"] == "acme"
    assert Account.objects.filter(name="acme").exists()


def test_only_cluster_admins_suspend_an_account(acme):
    owner = make_user("owner")
    grant(owner, "account_admin", acme)
    root = make_user("root")
    grant(root, "cluster_admin")

    refused = as_user(owner).put("/accounts/acme", {"suspended": True})
    assert refused.status_code == 403
    assert not Account.objects.get(pk=acme.pk).suspended

    accepted = as_user(root).put("/accounts/acme", {"suspended": True})
    assert accepted.status_code == 200
    assert accepted.json()["suspended"] is True
    assert AuditEvent.objects.filter(
        kind=AuditEvent.Kind.ACCOUNT_CHANGED, account=acme
    ).exists()


@pytest.fixture
def suspended(acme):
    owner = make_user("owner")
    grant(owner, "account_admin", acme)
    make_user("newbie")
    acme.suspended = True
    acme.save()
    return as_user(owner)


def test_a_suspended_account_stays_readable(suspended):
    assert suspended.get("/accounts/acme?view=overview").status_code == 200
    assert suspended.get("/accounts/acme/groups/staging").status_code == 200
    assert suspended.get("/accounts/acme/privileges").status_code == 200


@pytest.mark.parametrize(
    ("method", "path", "body"),
    [
        ("PUT", "/accounts/acme", {"require_second_factor": True}),
        ("POST", "/accounts/acme/groups", {"name": "g3"}),
        ("PUT", "/accounts/acme/groups/staging", {"name": "renamed"}),
        ("DELETE", "/accounts/acme/groups/staging", None),
        ("POST", "/users/newbie/privileges", {"level": "group_admin"}),
    ],
)
def test_a_suspended_account_refuses_changes(acme, suspended, method, path, body):
    if body and body.get("level") == "group_admin":
        body = {**body, "group_id": acme.groups.get(name="staging").id}
    before = (Group.objects.count(), Privilege.objects.count())

    if method == "DELETE":
        response = suspended.delete(path)
    else:
        response = getattr(suspended, method.lower())(path, body)

    assert response.status_code == 403
    assert "suspended" in response.json()["detail"]
    assert (Group.objects.count(), Privilege.objects.count()) == before
    assert Group.objects.filter(name="staging").exists()


def test_a_cluster_admin_lifts_a_suspension(acme):
    root = make_user("root")
    grant(root, "cluster_admin")
    acme.suspended = True
    acme.save()

    response = as_user(root).put("/accounts/acme", {"suspended": False})

    assert response.status_code == 200
    assert not Account.objects.get(pk=acme.pk).suspended


def test_an_empty_account_is_deleted_by_a_cluster_admin(acme):
    root = make_user("root")
    grant(root, "cluster_admin")

    response = as_user(root).delete("/accounts/acme")

    assert response.status_code == 204
    assert not Account.objects.filter(name="acme").exists()
    assert AuditEvent.objects.filter(kind=AuditEvent.Kind.ACCOUNT_DELETED).exists()


def test_an_account_with_machines_is_not_deleted(acme):
    root = make_user("root")
    grant(root, "cluster_admin")
    make_vm(acme.groups.get(name="staging"), "db")

    response = as_user(root).delete("/accounts/acme")

    assert response.status_code == 400
    assert "virtual machines" in response.json()["account"][0]
    assert Account.objects.filter(name="acme").exists()


def test_the_overview_embeds_each_machines_discs_and_nics(settings):
    settings.CELERY_BROKER_URL = "memory://"
    from django.db import transaction

    from machines.actions import create_virtual_machine
    from tests.factories import make_infrastructure

    make_infrastructure()
    owner = make_user()
    account = make_account(owner=owner)
    with transaction.atomic():
        create_virtual_machine(
            account.groups.get(name="default"),
            {"name": "web"},
            discs=[{"size": 25600, "storage_grade": "sata"}],
            actor=owner,
        )

    body = as_user(owner).get(f"/accounts/{account.name}?view=overview").json()

    [vm] = body["groups"][0]["virtual_machines"]
    assert [d["size"] for d in vm["discs"]] == [25600]
    [nic] = vm["network_interfaces"]
    assert len(nic["ips"]) == 2
    assert isinstance(nic["vlan_num"], int)
