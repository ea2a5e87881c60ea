"""Bad input to privileges: 400 naming the field, nothing written."""

import pytest

from privileges.models import Privilege
from tests.bad_input import RAW_BODIES, assert_raw_body_rejected, assert_rejected
from tests.factories import as_user, grant, make_account, make_user, make_vm

pytestmark = pytest.mark.django_db

BAD_CONDITIONS = [
    ("yubikey_required", "maybe"),
    ("yubikey_required", None),
    ("yubikey_required", [True]),
    ("yubikey_otp_max_age", 0),
    ("yubikey_otp_max_age", -60),
    ("yubikey_otp_max_age", 86401),
    ("yubikey_otp_max_age", "soon"),
    ("yubikey_otp_max_age", 1.5),
    ("yubikey_otp_max_age", None),
    ("ip_restrictions", "192.0.2.0/24"),
    ("ip_restrictions", ["192.0.2.0/33"]),
    ("ip_restrictions", ["2001:db8::/129"]),
    ("ip_restrictions", ["not-a-network"]),
    ("ip_restrictions", ["192.0.2.300"]),
    ("ip_restrictions", [None]),
    ("ip_restrictions", [["192.0.2.0/24"]]),
    ("ip_restrictions", {"net": "192.0.2.0/24"}),
    ("ip_restrictions", ["x" * 65]),
    ("ip_restrictions", [f"10.0.{n}.0/24" for n in range(65)]),
]


@pytest.fixture
def world():
    root = make_user("root")
    grant(root, "cluster_admin")
    member = make_user("member")
    account = make_account("acme")
    vm = make_vm(account.groups.get(name="default"), "web")
    priv = grant(member, "vm_console", vm)
    return {
        "admin": as_user(root),
        "account_id": account.id,
        "vm_id": vm.id,
        "priv": priv.id,
    }


def grant_body(world, **fields):
    return {"level": "account_admin", "account_id": world["account_id"], **fields}


@pytest.mark.parametrize(("field", "value"), BAD_CONDITIONS)
def test_a_grant_rejects_a_bad_condition(world, field, value):
    body = grant_body(world, **{field: value})

    assert_rejected(world["admin"], "POST", "/users/member/privileges", body, field)


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("level", "root"),
        ("level", "cluster"),
        ("level", ""),
        ("level", None),
        ("level", ["account_admin"]),
        ("level", 4),
        ("account_id", "acme"),
        ("account_id", 1.5),
        ("account_id", True),
        ("account_id", [1]),
        ("account_id", 987654321),
        ("account_id", 99999999999999999999),
        ("api_key_id", "ci"),
        ("api_key_id", 987654321),
        ("password_required", "maybe"),
        ("password_required", None),
    ],
)
def test_a_grant_rejects_a_bad_field(world, field, value):
    body = grant_body(world, **{field: value})

    assert_rejected(world["admin"], "POST", "/users/member/privileges", body, field)


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({}, "level"),
        ({"level": "account_admin"}, "account_id"),
        ({"level": "group_admin", "account_id": 1}, "group_id"),
        ({"level": "vm_admin", "group_id": 1}, "virtual_machine_id"),
        ({"level": "cluster_admin", "account_id": 1}, "account_id"),
    ],
    ids=["no level", "no target", "wrong target", "another wrong", "cluster target"],
)
def test_a_grant_needs_the_target_its_level_names(world, body, field):
    if body.get("account_id"):
        body = {**body, "account_id": world["account_id"]}

    assert_rejected(world["admin"], "POST", "/users/member/privileges", body, field)


@pytest.mark.parametrize(("field", "value"), BAD_CONDITIONS)
def test_a_change_rejects_a_bad_condition(world, field, value):
    path = f"/privileges/{world['priv']}"

    assert_rejected(world["admin"], "PUT", path, {field: value}, field)


@pytest.mark.parametrize("raw", RAW_BODIES.values(), ids=RAW_BODIES.keys())
def test_a_body_that_is_not_a_json_object_is_rejected(world, raw):
    admin = world["admin"]

    assert_raw_body_rejected(admin, "POST", "/users/member/privileges", raw)
    assert_raw_body_rejected(admin, "PUT", f"/privileges/{world['priv']}", raw)


def test_unknown_fields_are_ignored_and_networks_normalised(world):
    body = grant_body(
        world, colour="blue", ip_restrictions=[" 192.0.2.7/24", "2001:db8::1/64"]
    )

    response = world["admin"].post("/users/member/privileges", body)

    assert response.status_code == 201
    priv = Privilege.objects.get(pk=response.json()["id"])
    assert priv.ip_restrictions == ["192.0.2.0/24", "2001:db8::/64"]


@pytest.mark.parametrize("path", ["/privileges/99999999999999999999", "/privileges/x"])
def test_a_privilege_id_that_cannot_exist_is_not_found(world, path):
    assert world["admin"].get(path).status_code == 404
