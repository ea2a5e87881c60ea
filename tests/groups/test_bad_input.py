"""Bad input to groups: 400 naming the field, nothing written."""

import pytest

from groups.models import Group
from tests.bad_input import (
    BAD_NAMES,
    RAW_BODIES,
    assert_raw_body_rejected,
    assert_rejected,
)
from tests.factories import as_user, grant, make_account, make_user

pytestmark = pytest.mark.django_db

BAD_VLANS = {
    "zero": 0,
    "negative": -1,
    "above 4094": 4095,
    "a word": "ten",
    "a fraction": 1.5,
    "a boolean": True,
    "a list": [12],
}


@pytest.fixture
def admin():
    user = make_user("root")
    grant(user, "cluster_admin")
    account = make_account("acme")
    Group.objects.create(account=account, name="staging")
    return as_user(user)


@pytest.mark.parametrize("name", BAD_NAMES.values(), ids=BAD_NAMES.keys())
def test_a_new_group_rejects_a_bad_name(admin, name):
    assert_rejected(admin, "POST", "/accounts/acme/groups", {"name": name}, "name")


@pytest.mark.parametrize("name", ["staging", "default"])
def test_a_new_group_needs_a_name_free_in_its_account(admin, name):
    assert_rejected(admin, "POST", "/accounts/acme/groups", {"name": name}, "name")


def test_a_new_group_needs_a_name(admin):
    assert_rejected(admin, "POST", "/accounts/acme/groups", {"vlan_num": 5}, "name")


@pytest.mark.parametrize("vlan", BAD_VLANS.values(), ids=BAD_VLANS.keys())
def test_a_new_group_rejects_a_bad_vlan(admin, vlan):
    body = {"name": "g3", "vlan_num": vlan}

    assert_rejected(admin, "POST", "/accounts/acme/groups", body, "vlan_num")


@pytest.mark.parametrize("name", BAD_NAMES.values(), ids=BAD_NAMES.keys())
def test_a_rename_rejects_a_bad_name(admin, name):
    path = "/accounts/acme/groups/staging"

    assert_rejected(admin, "PUT", path, {"name": name}, "name")


@pytest.mark.parametrize("name", ["default", "renamed"])
def test_a_rename_needs_a_free_name_and_keeps_default(admin, name):
    Group.objects.create(account=Group.objects.first().account, name="renamed")
    path = "/accounts/acme/groups/staging"

    assert_rejected(admin, "PUT", path, {"name": name}, "name")


@pytest.mark.parametrize("vlan", BAD_VLANS.values(), ids=BAD_VLANS.keys())
def test_an_update_rejects_a_bad_vlan(admin, vlan):
    path = "/accounts/acme/groups/staging"

    assert_rejected(admin, "PUT", path, {"vlan_num": vlan}, "vlan_num")


@pytest.mark.parametrize(
    ("method", "path"),
    [("POST", "/accounts/acme/groups"), ("PUT", "/accounts/acme/groups/staging")],
)
@pytest.mark.parametrize("raw", RAW_BODIES.values(), ids=RAW_BODIES.keys())
def test_a_body_that_is_not_a_json_object_is_rejected(admin, method, path, raw):
    assert_raw_body_rejected(admin, method, path, raw)


def test_unknown_fields_are_ignored(admin):
    created = admin.post("/accounts/acme/groups", {"name": "g3", "colour": "blue"})
    changed = admin.put(
        "/accounts/acme/groups/g3", {"vlan_num": 7, "account_id": 987654321}
    )

    assert created.status_code == 201
    assert changed.status_code == 200
    group = Group.objects.get(name="g3")
    assert (group.account.name, group.vlan_num) == ("acme", 7)
