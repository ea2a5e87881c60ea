"""Overview and list endpoints cost a fixed number of queries, however much
the caller can see: an N+1 fails here, not in front of a customer."""

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from accounts import actions
from groups.models import Group
from tests.factories import (
    Api,
    as_user,
    grant,
    make_account,
    make_filled_account,
    make_user,
    make_vm,
)

pytestmark = pytest.mark.django_db

MAX_QUERIES = 12


def queries(api: Api, path: str) -> tuple[int, object]:
    """The queries of a repeated request, and its body.

    The first request signs in for real (hashing, recording the sign-in);
    BigV clients repeat their credentials on every request after it.
    """
    assert api.get(path).status_code == 200
    with CaptureQueriesContext(connection) as captured:
        response = api.get(path)
    assert response.status_code == 200, response.content
    return len(captured.captured_queries), response.json()


def owner_of(accounts: int) -> Api:
    user = make_user()
    for _ in range(accounts):
        make_filled_account(owner=user)
    return as_user(user)


def test_the_accounts_overview_costs_the_same_for_one_and_fifty_accounts():
    few, few_body = queries(owner_of(1), "/accounts?view=overview")
    many, many_body = queries(owner_of(50), "/accounts?view=overview")

    assert len(few_body) == 1
    assert len(many_body) == 50
    assert all(len(a["groups"]) == 3 for a in many_body)
    machines = [
        vm for a in many_body for g in a["groups"] for vm in g["virtual_machines"]
    ]
    assert len(machines) == 300
    assert machines[0]["hostname"].endswith(".corral.local")
    assert many == few
    assert many <= MAX_QUERIES


def test_an_account_overview_costs_the_same_for_one_and_twenty_groups():
    user = make_user()
    small = make_filled_account(owner=user, groups=0)
    large = make_filled_account(owner=user, groups=19)
    api = as_user(user)

    few, few_body = queries(api, f"/accounts/{small.name}?view=overview")
    many, many_body = queries(api, f"/accounts/{large.name}?view=overview")

    assert len(few_body["groups"]) == 1
    assert len(many_body["groups"]) == 20
    assert all(len(g["virtual_machines"]) == 2 for g in many_body["groups"])
    assert many == few
    assert many <= MAX_QUERIES


def test_the_groups_overview_costs_the_same_for_one_and_fifty_accounts():
    few, few_body = queries(owner_of(1), "/groups?view=overview")
    many, many_body = queries(owner_of(50), "/groups?view=overview")

    assert len(few_body) == 3
    assert len(many_body) == 150
    assert all(len(g["virtual_machines"]) == 2 for g in many_body)
    assert many == few
    assert many <= MAX_QUERIES


def holder_of_privileges(accounts: int) -> Api:
    """A user holding privileges of every kind of target in `accounts` accounts."""
    user = make_user()
    for _ in range(accounts):
        account = make_filled_account(groups=1, vms_per_group=1)
        group = Group.objects.filter(account=account).last()
        grant(user, "account_admin", account)
        grant(user, "group_admin", group)
        grant(user, "vm_admin", group.virtual_machines.get())
    return as_user(user)


def test_the_own_privileges_list_costs_the_same_for_three_and_150_privileges():
    few, few_body = queries(holder_of_privileges(1), "/privileges")
    many, many_body = queries(holder_of_privileges(50), "/privileges")

    assert len(few_body) == 3
    assert len(many_body) == 150
    assert {"group_name", "virtual_machine_name"} <= {k for p in many_body for k in p}
    assert many == few
    assert many <= MAX_QUERIES


def key_holder(keys: int) -> Api:
    """A user with `keys` API keys, each with privileges on every kind of target."""
    user = make_user()
    account = make_filled_account(owner=user, groups=1, vms_per_group=1)
    group = Group.objects.filter(account=account).last()
    for _ in range(keys):
        key, _secret = actions.create_api_key(
            user, label="", expires_at=None, actor=user
        )
        for level, target in (
            ("account_admin", account),
            ("group_admin", group),
            ("vm_admin", group.virtual_machines.get()),
        ):
            grant(user, level, target, api_key=key, password_required=False)
    return as_user(user)


def test_the_api_keys_overview_costs_the_same_for_one_and_twenty_keys():
    few, few_body = queries(key_holder(1), "/api_keys?view=overview")
    many, many_body = queries(key_holder(20), "/api_keys?view=overview")

    assert len(few_body) == 1
    assert len(many_body) == 20
    assert all(len(k["privileges"]) == 3 for k in many_body)
    assert many == few
    assert many <= MAX_QUERIES


def test_a_teammates_privileges_cost_the_same_for_one_and_forty_privileges():
    admin = make_user()
    account = make_account(owner=admin)
    group = Group.objects.get(account=account)
    one, forty = make_user(), make_user()
    grant(one, "vm_console", make_vm(group))
    for _ in range(20):
        grant(forty, "vm_admin", make_vm(group))
        grant(forty, "vm_console", make_vm(group))
    api = as_user(admin)

    few, few_body = queries(api, f"/users/{one.username}/privileges")
    many, many_body = queries(api, f"/users/{forty.username}/privileges")

    assert len(few_body) == 1
    assert len(many_body) == 40
    assert many == few
    assert many <= MAX_QUERIES
