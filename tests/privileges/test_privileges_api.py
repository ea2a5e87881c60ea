"""Privileges: defaults, level rules, conditions-only changes, list fields."""

import pytest

from panel.models import AuditEvent
from privileges.models import Privilege
from tests.factories import as_user, grant, make_account, make_user, make_vm

pytestmark = pytest.mark.django_db

# What the BigV client matches on to find the id of a privilege to revoke.
REVOKE_KEYS = {"id", "level", "username", "yubikey_required"}
TARGET_KEY = {
    "account_admin": "account_id",
    "group_admin": "group_id",
    "vm_admin": "virtual_machine_id",
    "vm_console": "virtual_machine_id",
}


@pytest.fixture
def world():
    acme = make_account("acme")
    default = acme.groups.get(name="default")
    web = make_vm(default, "web")
    owner = make_user("owner")
    grant(owner, "account_admin", acme)
    lead = make_user("lead")
    grant(lead, "group_admin", default)
    console = make_user("console")
    grant(console, "vm_console", web, yubikey_required=True)
    make_user("newbie")
    return {"acme": acme, "default": default, "web": web, "owner": owner,
            "lead": lead, "console": console}  # fmt: skip


def test_a_grant_has_the_documented_defaults(world):
    body = {"level": "vm_admin", "virtual_machine_id": world["web"].id}

    response = as_user(world["owner"]).post("/users/newbie/privileges", body)

    assert response.status_code == 201
    data = response.json()
    assert data["username"] == "newbie"
    assert data["creating_username"] == "owner"
    assert data["password_required"] is True
    assert data["yubikey_required"] is False
    assert data["yubikey_otp_max_age"] == 900
    assert data["ip_restrictions"] is None
    assert data["virtual_machine_name"] == "web.default.acme"
    assert AuditEvent.objects.filter(kind=AuditEvent.Kind.PRIVILEGE_GRANTED).exists()


def test_a_grant_keeps_its_conditions(world):
    body = {
        "level": "vm_console",
        "virtual_machine_id": world["web"].id,
        "yubikey_required": True,
        "yubikey_otp_max_age": 300,
        "ip_restrictions": ["192.0.2.0/24", "2001:db8::/32"],
        "password_required": False,
    }

    data = as_user(world["owner"]).post("/users/newbie/privileges", body).json()

    assert {k: data[k] for k in body if k != "virtual_machine_id"} == {
        k: v for k, v in body.items() if k != "virtual_machine_id"
    }


@pytest.mark.parametrize(
    ("granter", "level", "target", "status"),
    [
        ("owner", "group_admin", "default", 201),
        ("owner", "vm_console", "web", 201),
        ("owner", "account_admin", "acme", 403),
        ("lead", "vm_admin", "web", 201),
        ("lead", "group_admin", "default", 403),
        ("lead", "account_admin", "acme", 403),
        ("console", "vm_console", "web", 403),
    ],
)
def test_grants_are_only_below_the_granters_level(
    world, granter, level, target, status
):
    key = TARGET_KEY[level]
    body = {"level": level, key: world[target].id}

    response = as_user(world[granter]).post("/users/newbie/privileges", body)

    assert response.status_code == status
    assert Privilege.objects.filter(user__username="newbie").count() == (
        1 if status == 201 else 0
    )


def test_only_a_cluster_su_grants_cluster_admin(world):
    root = make_user("root", is_superuser=True)
    admin = make_user("admin")
    grant(admin, "cluster_admin")

    refused = as_user(admin).post(
        "/users/newbie/privileges", {"level": "cluster_admin"}
    )
    granted = as_user(root).post("/users/newbie/privileges", {"level": "cluster_admin"})

    assert refused.status_code == 403
    assert granted.status_code == 201
    priv = Privilege.objects.get(user__username="newbie")
    assert (priv.account, priv.group, priv.virtual_machine) == (None, None, None)
    assert {"account_id", "group_id", "virtual_machine_id"}.isdisjoint(granted.json())


def test_the_server_aliases_of_levels_are_accepted(world):
    body = {"level": "server_admin", "virtual_machine_id": world["web"].id}

    response = as_user(world["owner"]).post("/users/newbie/privileges", body)

    assert response.status_code == 201
    assert response.json()["level"] == "vm_admin"


def test_an_own_api_key_gets_up_to_the_owners_level(world):
    owner = world["owner"]
    key = owner.api_keys.create(label="ci", key_hash="x" * 64)
    body = {"level": "account_admin", "account_id": world["acme"].id,
            "api_key_id": key.id, "password_required": True}  # fmt: skip

    response = as_user(owner).post("/users/owner/privileges", body)

    assert response.status_code == 201
    assert response.json()["api_key_id"] == key.id
    assert response.json()["password_required"] is False


def test_only_the_conditions_of_a_privilege_change(world):
    priv = Privilege.objects.get(user=world["console"])
    body = {
        "level": "account_admin",
        "account_id": world["acme"].id,
        "virtual_machine_id": None,
        "username": "owner",
        "password_required": False,
        "creating_username": "someone",
        "yubikey_required": False,
        "yubikey_otp_max_age": 120,
        "ip_restrictions": ["10.0.0.0/8"],
    }

    response = as_user(world["owner"]).put(f"/privileges/{priv.id}", body)

    assert response.status_code == 200
    priv.refresh_from_db()
    assert (priv.level, priv.user, priv.account, priv.virtual_machine) == (
        "vm_console",
        world["console"],
        None,
        world["web"],
    )
    assert (priv.password_required, priv.creating_username) == (True, "")
    assert (priv.yubikey_required, priv.yubikey_otp_max_age) == (False, 120)
    assert priv.ip_restrictions == ["10.0.0.0/8"]
    assert AuditEvent.objects.filter(kind=AuditEvent.Kind.PRIVILEGE_CHANGED).exists()


def test_ip_restrictions_can_be_lifted_with_null(world):
    priv = grant(world["console"], "vm_admin", world["web"], ip_restrictions=["::/0"])

    response = as_user(world["owner"]).put(
        f"/privileges/{priv.id}", {"ip_restrictions": None}
    )

    assert response.status_code == 200
    priv.refresh_from_db()
    assert priv.ip_restrictions is None


@pytest.mark.parametrize(
    ("revoker", "holder", "status"),
    [
        ("owner", "lead", 204),
        ("owner", "console", 204),
        ("lead", "console", 204),
        ("lead", "owner", 404),
        ("owner", "owner", 403),
        ("console", "console", 403),
    ],
)
def test_revoking_follows_the_same_level_rule(world, revoker, holder, status):
    priv = Privilege.objects.get(user=world[holder])

    response = as_user(world[revoker]).delete(f"/privileges/{priv.id}")

    assert response.status_code == status
    assert Privilege.objects.filter(pk=priv.pk).exists() == (status != 204)


def test_a_revoke_is_audited(world):
    priv = Privilege.objects.get(user=world["lead"])

    as_user(world["owner"]).delete(f"/privileges/{priv.id}")

    event = AuditEvent.objects.get(kind=AuditEvent.Kind.PRIVILEGE_REVOKED)
    assert event.detail["privilege"] == priv.id
    assert event.account == world["acme"]


@pytest.mark.parametrize(
    "path",
    [
        "/privileges",
        "/privileges?user_id=console",
        "/users/console/privileges",
        "/accounts/acme/privileges",
        "/accounts/acme/groups/default/privileges",
        "/api_keys?view=overview",
    ],
)
def test_every_list_carries_what_revoke_matches_on(world, path):
    owner = world["owner"]
    key = owner.api_keys.create(label="ci", key_hash="y" * 64)
    grant(owner, "group_admin", world["default"], api_key=key, password_required=False)
    grant(world["console"], "group_admin", world["default"])
    root = make_user("root")
    grant(root, "cluster_admin")
    api = as_user(world["console"] if path == "/privileges" else root)

    body = api.get(path).json()
    items = [p for k in body for p in k["privileges"]] if "api_keys" in path else body

    assert items
    for item in items:
        assert REVOKE_KEYS | {TARGET_KEY[item["level"]]} <= set(item), item
        priv = Privilege.objects.get(pk=item["id"])
        assert item["username"] == priv.user.username
        assert item[TARGET_KEY[item["level"]]] == (
            priv.account_id or priv.group_id or priv.virtual_machine_id
        )
        assert item["yubikey_required"] == priv.yubikey_required


def test_my_privileges_are_mine_only(world):
    body = as_user(world["lead"]).get("/privileges").json()

    assert [p["username"] for p in body] == ["lead"]
