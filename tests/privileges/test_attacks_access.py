"""Attacks on access: reaching other tenants, raising one's own level,
abusing grants to strangers, and API keys reaching further than their owner."""

import ipaddress

import pytest
from django.test import Client

from groups.models import Group
from machines.models import Operation
from privileges.models import Privilege
from tests.factories import (
    PASSWORD,
    Api,
    SimulatedYubikey,
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


def session_token(user) -> str:
    response = Api().post("/session", {"username": user.username, "password": PASSWORD})
    assert response.status_code == 200, response.content
    return response.content.decode()


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


# Held ground: attacks the panel resists -----------------------------------------


def test_it_answers_hidden_objects_exactly_like_missing_ones(tenants):

    alice, bob, _alpha, bravo, vm = tenants
    op = (
        Operation.objects.create(virtual_machine=vm, kind="power_on", actor=bob)
        if hasattr(Operation, "kind")
        else None
    )
    api = as_user(alice)
    g = default_group(bravo)
    bob_priv = Privilege.objects.get(user=bob, account=bravo)
    bob_key, _ = make_api_key(bob, label="bobkey")
    pairs = [
        ("/accounts/bravo", "/accounts/nosuch"),
        (f"/accounts/{bravo.pk}", "/accounts/999999"),
        ("/accounts/bravo/groups", "/accounts/nosuch/groups"),
        ("/accounts/bravo/groups/default", "/accounts/bravo/groups/nosuch"),
        ("/accounts/bravo/privileges", "/accounts/nosuch/privileges"),
        (f"/groups/{g.pk}", "/groups/999999"),
        ("/groups?account_id=bravo", "/groups?account_id=nosuch"),
        (f"/groups?account_id={bravo.pk}", "/groups?account_id=999999"),
        (f"/virtual_machines/{vm.pk}", "/virtual_machines/999999"),
        (
            f"/virtual_machines/{vm.pk}/operations",
            "/virtual_machines/999999/operations",
        ),
        (
            f"/virtual_machines/{vm.pk}/privileges",
            "/virtual_machines/999999/privileges",
        ),
        (
            "/accounts/bravo/groups/default/virtual_machines/secretvm",
            "/accounts/bravo/groups/default/virtual_machines/nosuch",
        ),
        (f"/privileges/{bob_priv.pk}", "/privileges/999999"),
        ("/privileges?user_id=bob", "/privileges?user_id=nosuch"),
        (f"/privileges?user_id={bob.pk}", "/privileges?user_id=999999"),
        ("/users/bob", "/users/nosuch"),
        (f"/users/{bob.pk}", "/users/999999"),
        ("/users/bob/privileges", "/users/nosuch/privileges"),
        (f"/api_keys/{bob_key.pk}", "/api_keys/999999"),
        ("/api_keys/bobkey", "/api_keys/nosuch"),
    ]
    pairs.append((f"/operations/{op.pk}", "/operations/999999"))
    for hidden, missing in pairs:
        a, b = api.get(hidden), api.get(missing)
        assert a.status_code == b.status_code == 404, (
            hidden,
            a.status_code,
            b.status_code,
        )
        assert a.content == b.content, hidden
        assert sorted(k for k in a.headers) == sorted(k for k in b.headers), hidden
    # Writes too.
    for method, path, body in [
        ("put", f"/virtual_machines/{vm.pk}", {"power_on": True}),
        ("delete", f"/virtual_machines/{vm.pk}?purge=true", None),
        ("post", f"/virtual_machines/{vm.pk}/signal", {"signal": "reset"}),
        ("put", f"/privileges/{bob_priv.pk}", {"yubikey_required": False}),
        ("delete", f"/privileges/{bob_priv.pk}", None),
        ("post", "/accounts/bravo/groups", {"name": "evil"}),
        ("put", "/accounts/bravo", {"require_second_factor": True}),
        ("put", "/users/bob", {"password": "hijacked password 123"}),
        ("delete", f"/api_keys/{bob_key.pk}", None),
    ]:
        r = (
            getattr(api, method)(path, body)
            if body is not None
            else getattr(api, method)(path)
        )
        assert r.status_code == 404, (method, path, r.status_code)
    # Listings hold nothing of bravo.
    assert (
        "bravo"
        not in api.get("/accounts?view=overview&include_deleted=true").content.decode()
    )
    assert "secretvm" not in api.get("/groups?view=overview").content.decode()
    assert "bob" not in api.get("/users").content.decode()
    assert api.get("/api_keys").json() == []
    # Grants on bob's objects: same answer as a missing target.
    a = api.post(
        "/users/alice/privileges", {"level": "vm_admin", "virtual_machine_id": vm.pk}
    )
    b = api.post(
        "/users/alice/privileges", {"level": "vm_admin", "virtual_machine_id": 999999}
    )
    assert a.status_code == b.status_code == 400 and a.json() == b.json()
    # Swap IPs / disc move into bob's VM.
    r = api.post(
        "/ips/swap_virtual_machine_ips",
        {"virtual_machine_1_id": vm.pk, "virtual_machine_2_id": vm.pk},
    )
    assert r.status_code == 404


def test_it_refuses_every_privilege_escalation(tenants):
    alice, bob, alpha, _bravo, _vm = tenants
    friend = make_user("friend")
    api = as_user(alice)
    g = default_group(alpha)
    assert (
        api.post(
            "/users/friend/privileges",
            {"level": "account_admin", "account_id": alpha.pk},
        ).status_code
        == 403
    )
    assert (
        api.post(
            "/users/alice/privileges",
            {"level": "account_admin", "account_id": alpha.pk},
        ).status_code
        == 403
    )
    assert (
        api.post("/users/friend/privileges", {"level": "cluster_admin"}).status_code
        == 403
    )
    assert (
        api.post("/users/alice/privileges", {"level": "cluster_su"}).status_code == 403
    )
    # PUT may not change level or target.
    r = api.post("/users/friend/privileges", {"level": "group_admin", "group_id": g.pk})
    assert r.status_code == 201
    pid = r.json()["id"]
    api.put(
        f"/privileges/{pid}",
        {
            "level": "account_admin",
            "account_id": alpha.pk,
            "group_id": None,
            "user": "alice",
        },
    )
    p = Privilege.objects.get(pk=pid)
    assert p.level == "group_admin" and p.group_id == g.pk and p.user_id == friend.pk
    # A group admin cannot see or revoke the account admin's privilege.
    fapi = as_user(friend)
    apriv = Privilege.objects.get(user=alice, account=alpha)
    assert fapi.delete(f"/privileges/{apriv.pk}").status_code == 404
    assert (
        fapi.put(f"/privileges/{apriv.pk}", {"yubikey_required": True}).status_code
        == 404
    )
    # ...nor grant group_admin to himself on another group or vm_admin elsewhere.
    assert (
        fapi.post(
            "/users/friend/privileges", {"level": "group_admin", "group_id": g.pk}
        ).status_code
        == 403
    )
    assert fapi.post("/accounts/alpha/groups", {"name": "mine"}).status_code == 403
    # A co-admin cannot revoke another account admin.
    grant(bob, "account_admin", alpha)
    bpriv = Privilege.objects.get(user=bob, account=alpha)
    assert api.delete(f"/privileges/{bpriv.pk}").status_code == 403
    # Own API key above own level is refused; a key cannot raise itself.
    key, secret = make_api_key(alice)
    assert (
        api.post(
            "/users/alice/privileges", {"level": "cluster_admin", "api_key_id": key.pk}
        ).status_code
        == 403
    )
    r = api.post(
        "/users/alice/privileges",
        {"level": "group_admin", "group_id": g.pk, "api_key_id": key.pk},
    )
    assert r.status_code == 201
    kapi = Api(bearer_api_key(secret))
    assert (
        kapi.post(
            "/users/alice/privileges",
            {"level": "account_admin", "account_id": alpha.pk, "api_key_id": key.pk},
        ).status_code
        == 403
    )
    # Suspending needs a cluster admin.
    assert api.put("/accounts/alpha", {"suspended": True}).status_code == 403
    assert api.delete("/accounts/alpha").status_code == 403


def test_it_enforces_yubikey_conditions_on_every_credential(tenants):
    alice, bob, alpha, _bravo, _vm = tenants
    Privilege.objects.filter(user=alice, account=alpha).update(yubikey_required=True)
    akey = SimulatedYubikey(alice)
    bkey = SimulatedYubikey(bob)
    old = akey.otp()
    new = akey.otp()
    # No OTP: 403 naming the YubiKey.
    r = as_user(alice).get("/accounts/alpha")
    assert r.status_code == 403 and "YubiKey" in r.json()["detail"]
    # Bob's OTP for alice: refused.
    assert as_user(alice, HTTP_X_YUBIKEY_OTP=bkey.otp()).get(
        "/accounts/alpha"
    ).status_code in (401, 403)
    # New OTP works; then the older one is refused.
    assert (
        as_user(alice, HTTP_X_YUBIKEY_OTP=new).get("/accounts/alpha").status_code == 200
    )
    assert as_user(alice, HTTP_X_YUBIKEY_OTP=old).get(
        "/accounts/alpha"
    ).status_code in (401, 403)
    # Session without yubikey: condition unmet; step-up with bob's OTP refused.
    token = session_token(alice)
    assert Api(f"Bearer {token}").get("/accounts/alpha").status_code == 403
    assert (
        Api(f"Bearer {token}", HTTP_X_YUBIKEY_OTP=bkey.otp())
        .get("/accounts/alpha")
        .status_code
        == 401
    )
    # Garbage OTP header.
    assert (
        Api(f"Bearer {token}", HTTP_X_YUBIKEY_OTP="x" * 5000)
        .get("/accounts/alpha")
        .status_code
        == 401
    )
    # Browser session without step-up: condition unmet.
    browser = Client()
    browser.force_login(alice)
    assert (
        browser.get("/accounts/alpha", HTTP_ACCEPT="application/json").status_code
        == 403
    )
    # Browser step-up with bob's OTP refused.
    r = browser.post("/panel/step-up", {"otp": bkey.otp(), "next": "/panel/"})
    assert (
        browser.get("/accounts/alpha", HTTP_ACCEPT="application/json").status_code
        == 403
    )


def test_it_keeps_a_suspended_account_read_only(tenants):
    alice, bob, alpha, bravo, vm = tenants
    friend = make_user("friend")
    fpriv = grant(friend, "vm_admin", vm)
    grant(alice, "vm_admin", vm)
    bravo.suspended = True
    bravo.save()
    api = as_user(bob)
    assert api.get("/accounts/bravo").status_code == 200
    for method, path, body in [
        ("post", "/accounts/bravo/groups", {"name": "more"}),
        ("put", "/accounts/bravo/groups/default", {"name": "renamed"}),
        ("put", "/accounts/bravo", {"require_second_factor": True}),
        ("put", f"/virtual_machines/{vm.pk}", {"cores": 2}),
        ("post", f"/virtual_machines/{vm.pk}/signal", {"signal": "reset"}),
        ("delete", f"/virtual_machines/{vm.pk}", None),
        (
            "post",
            "/users/friend/privileges",
            {"level": "vm_console", "virtual_machine_id": vm.pk},
        ),
        ("put", f"/privileges/{fpriv.pk}", {"yubikey_required": True}),
        ("delete", f"/privileges/{fpriv.pk}", None),
        (
            "post",
            f"/virtual_machines/{vm.pk}/discs",
            {"label": "d", "size": 1024, "storage_grade": "sata"},
        ),
    ]:
        r = (
            getattr(api, method)(path, body)
            if body is not None
            else getattr(api, method)(path)
        )
        assert r.status_code == 403, (method, path, r.status_code)
    # A member with access elsewhere cannot move the machine out either.
    r = as_user(alice).put(
        f"/virtual_machines/{vm.pk}", {"group_id": default_group(alpha).pk}
    )
    assert r.status_code in (400, 403), r.status_code


def test_it_gives_an_api_key_only_its_own_privileges(tenants):
    alice, _bob, _alpha, _bravo, _vm = tenants
    _, secret = make_api_key(alice)
    api = Api(bearer_api_key(secret))
    assert api.get("/accounts").json() == []
    assert api.get("/accounts/alpha").status_code == 404
