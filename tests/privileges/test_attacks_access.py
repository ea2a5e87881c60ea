"""Attacks on access: reaching other tenants, raising one's own level,
abusing grants to strangers, and API keys reaching further than their owner."""

import ipaddress

import pytest

from groups.models import Group
from privileges.models import Privilege
from tests.factories import (
    Api,
    as_user,
    basic,
    bearer_api_key,
    grant,
    make_account,
    make_api_key,
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


# API-key privileges never outlive the owner's own ----------------------------


def test_it_drops_a_keys_privilege_when_its_owner_loses_theirs(tenants):
    alice, _, alpha, _, _ = tenants
    carol = make_user("carol")
    own = grant(carol, "group_admin", default_group(alpha))
    key, secret = make_api_key(carol)
    given = Api(basic("carol")).post(
        "/users/carol/privileges",
        {
            "level": "group_admin",
            "group_id": default_group(alpha).pk,
            "api_key_id": key.pk,
        },
    )
    assert given.status_code == 201, given.content
    key_api = Api(bearer_api_key(secret))
    assert key_api.get("/accounts/alpha/groups/default").status_code == 200

    assert as_user(alice).delete(f"/privileges/{own.pk}").status_code == 204

    assert key_api.get("/accounts/alpha/groups/default").status_code == 404
    assert key_api.get("/accounts").json() == []


def test_it_caps_a_keys_privilege_at_its_owners_level(tenants):
    alice, _, alpha, _, _ = tenants
    key, secret = make_api_key(alice)
    grant(alice, "account_admin", alpha, api_key=key)
    Privilege.objects.filter(user=alice, account=alpha, api_key=None).update(
        level="group_admin", account=None, group=default_group(alpha)
    )
    key_api = Api(bearer_api_key(secret))

    assert key_api.get("/accounts/alpha").status_code == 404
    assert (
        key_api.put("/accounts/alpha", {"require_second_factor": True}).status_code
        == 404
    )


def test_it_keeps_a_keys_privilege_covered_by_a_higher_one_of_its_owner(tenants):
    alice, _, alpha, _, _ = tenants
    key, secret = make_api_key(alice)
    vm = make_vm(default_group(alpha), "web")
    grant(alice, "vm_admin", vm, api_key=key)

    response = Api(bearer_api_key(secret)).get(f"/virtual_machines/{vm.pk}")

    assert response.status_code == 200


def test_it_ignores_conditions_of_the_owners_privilege_for_the_key(tenants):
    alice, _, alpha, _, _ = tenants
    Privilege.objects.filter(user=alice, account=alpha).update(
        ip_restrictions=["198.51.100.0/24"]
    )
    key, secret = make_api_key(alice)
    grant(alice, "account_admin", alpha, api_key=key)

    response = Api(bearer_api_key(secret)).get("/accounts/alpha")

    assert response.status_code == 200


# Address conditions ------------------------------------------------------------


def test_it_enforces_ip_restrictions_whatever_the_forwarding_headers(tenants, settings):
    alice, _, alpha, _, _ = tenants
    Privilege.objects.filter(user=alice, account=alpha).update(
        ip_restrictions=["10.0.0.0/8"]
    )
    assert (
        as_user(alice, REMOTE_ADDR="10.1.2.3").get("/accounts/alpha").status_code == 200
    )
    for extra in [
        {"REMOTE_ADDR": "203.0.113.9", "HTTP_X_FORWARDED_FOR": "10.1.2.3"},
        {"REMOTE_ADDR": "::ffff:203.0.113.9", "HTTP_X_FORWARDED_FOR": "10.1.2.3"},
        {"REMOTE_ADDR": "203.0.113.9", "HTTP_X_FORWARDED_FOR": "10.1.2.3, 10.0.0.1"},
        {"REMOTE_ADDR": "0a01:0203::"},
    ]:
        response = as_user(alice, **extra).get("/accounts/alpha")
        assert response.status_code == 403, (extra, response.status_code)

    # Through a trusted proxy, a spoofed left-most hop is ignored.
    settings.TRUSTED_PROXIES = [ipaddress.ip_network("192.0.2.1/32")]
    spoofed = as_user(
        alice, REMOTE_ADDR="192.0.2.1", HTTP_X_FORWARDED_FOR="10.1.2.3, 203.0.113.9"
    ).get("/accounts/alpha")
    assert spoofed.status_code == 403


def test_it_matches_an_ipv4_mapped_peer_against_ipv4_restrictions(tenants):
    alice, _, alpha, _, _ = tenants
    Privilege.objects.filter(user=alice, account=alpha).update(
        ip_restrictions=["10.0.0.0/8"]
    )

    inside = as_user(alice, REMOTE_ADDR="::ffff:10.1.2.3").get("/accounts/alpha")
    outside = as_user(alice, REMOTE_ADDR="::ffff:203.0.113.9").get("/accounts/alpha")

    assert inside.status_code == 200
    assert outside.status_code == 403


def test_it_matches_an_ipv4_mapped_forwarded_hop_from_a_trusted_proxy(
    tenants, settings
):
    alice, _, alpha, _, _ = tenants
    Privilege.objects.filter(user=alice, account=alpha).update(
        ip_restrictions=["10.0.0.0/8"]
    )
    settings.TRUSTED_PROXIES = [ipaddress.ip_network("192.0.2.1/32")]

    response = as_user(
        alice, REMOTE_ADDR="::ffff:192.0.2.1", HTTP_X_FORWARDED_FOR="::ffff:10.1.2.3"
    ).get("/accounts/alpha")

    assert response.status_code == 200


# Grants to other users' API keys ---------------------------------------------


def test_it_refuses_privileges_for_a_strangers_api_key_like_a_missing_one(
    mallory_and_victim,
):
    mallory, victim, evil = mallory_and_victim
    key, _ = make_api_key(victim, label="victimkey")
    api = as_user(mallory)

    def attach(api_key_id):
        vm = make_vm(default_group(evil))
        return api.post(
            "/users/victim/privileges",
            {
                "level": "vm_console",
                "virtual_machine_id": vm.pk,
                "api_key_id": api_key_id,
            },
        )

    existing, missing = attach(key.pk), attach(key.pk + 1000)

    assert existing.status_code == missing.status_code == 400
    assert (
        existing.json()
        == missing.json()
        == {"api_key_id": ["no such API key of yours"]}
    )
    assert not Privilege.objects.filter(api_key=key).exists()


def test_it_lets_a_cluster_admin_give_a_users_key_a_privilege(tenants):
    _, bob, _, bravo, _ = tenants
    root = make_user("root")
    grant(root, "cluster_admin")
    key, _ = make_api_key(bob)

    response = as_user(root).post(
        "/users/bob/privileges",
        {"level": "account_admin", "account_id": bravo.pk, "api_key_id": key.pk},
    )

    assert response.status_code == 201, response.content
    assert Privilege.objects.filter(api_key=key).count() == 1
