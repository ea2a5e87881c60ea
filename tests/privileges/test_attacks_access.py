"""Attacks on access: reaching other tenants, raising one's own level,
abusing grants to strangers, and API keys reaching further than their owner."""

import pytest

from groups.models import Group
from tests.factories import (
    as_user,
    make_account,
    make_user,
    make_vm,
)

pytestmark = pytest.mark.django_db


def default_group(account):
    return Group.objects.get(account=account, name="default")


@pytest.fixture
def tenants():
    """alice admins account `alpha`, bob admins account `bravo` (with a VM)."""
    alice = make_user("alice")
    bob = make_user("bob")
    alpha = make_account("alpha", owner=alice)
    bravo = make_account("bravo", owner=bob)
    vm = make_vm(default_group(bravo), "secretvm")
    return alice, bob, alpha, bravo, vm


@pytest.fixture
def mallory_and_victim():
    victim = make_user("victim", authorized_keys="")
    mallory = make_user("mallory")
    evil = make_account("evil", owner=mallory)
    return mallory, victim, evil


# An account's second-factor demand is no lever against strangers -------------


def test_it_does_not_lock_a_stranger_out_through_a_second_factor_demand(
    mallory_and_victim,
):
    mallory, victim, evil = mallory_and_victim
    api = as_user(mallory)
    granted = api.post(
        "/users/victim/privileges",
        {"level": "group_admin", "group_id": default_group(evil).pk},
    )
    assert api.put("/accounts/evil", {"require_second_factor": True}).status_code == 200

    signed_in = as_user(victim).get("/accounts")
    inside = as_user(victim).get("/accounts/evil")

    assert granted.status_code == 201
    assert signed_in.status_code == 200
    assert signed_in.json() == []
    assert inside.status_code == 403
    assert "a second factor at sign-in" in inside.json()["detail"]
