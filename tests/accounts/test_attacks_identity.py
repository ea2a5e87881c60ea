"""Attacks on users' identities: what a leaked API key, a teammate or a
stranger can learn or change about a user, and how sign-up can be abused."""

import pytest
from django.test import Client

from accounts.models import ApiKey, User
from groups.models import Group
from tests.factories import (
    PASSWORD,
    Api,
    as_user,
    basic,
    bearer_api_key,
    grant,
    make_account,
    make_api_key,
    make_user,
)

pytestmark = pytest.mark.django_db


def default_group(account):
    return Group.objects.get(account=account, name="default")


@pytest.fixture
def alice():
    user = make_user("alice")
    make_account("alpha", owner=user)
    return user


@pytest.fixture
def tenants(alice):
    """alice admins account `alpha`, bob admins account `bravo`."""
    bob = make_user("bob")
    return alice, bob, alice.privileges.get().account, make_account("bravo", bob)


def session_token(user) -> str:
    response = Api().post("/session", {"username": user.username, "password": PASSWORD})
    assert response.status_code == 200, response.content
    return response.content.decode()


# A leaked API key cannot take its owner over ----------------------------------


def test_it_refuses_an_api_key_changing_its_owners_password(alice):
    _, secret = make_api_key(alice)

    response = Api(bearer_api_key(secret)).put(
        "/users/alice", {"password": "taken over by the key 123"}
    )

    assert response.status_code == 403
    assert "password" in response.json()["detail"]
    assert as_user(alice).get("/accounts").status_code == 200


def test_it_refuses_an_api_key_turning_off_the_second_factor(alice):
    User.objects.filter(pk=alice.pk).update(require_second_factor=True)
    _, secret = make_api_key(alice)

    response = Api(bearer_api_key(secret)).put(
        "/users/alice", {"require_second_factor": False}
    )

    assert response.status_code == 403
    assert "require_second_factor" in response.json()["detail"]
    assert User.objects.get(pk=alice.pk).require_second_factor is True


def test_it_refuses_an_api_key_deleting_its_owner(alice):
    _, secret = make_api_key(alice)

    response = Api(bearer_api_key(secret)).delete("/users/alice")

    assert response.status_code == 403
    assert User.objects.filter(pk=alice.pk).exists()


def test_it_lets_an_api_key_read_its_owner_and_change_authorized_keys(alice):
    from tests.factories import ssh_public_key

    _, secret = make_api_key(alice)
    key_api = Api(bearer_api_key(secret))
    new_key = ssh_public_key("laptop")

    assert key_api.get("/users/alice").json()["username"] == "alice"
    response = key_api.put("/users/alice", {"authorized_keys": new_key})

    assert response.status_code == 200, response.content
    assert User.objects.get(pk=alice.pk).authorized_keys.strip() == new_key.strip()


def test_it_refuses_an_api_key_with_its_owners_password_and_keys_together(alice):
    from tests.factories import ssh_public_key

    _, secret = make_api_key(alice)
    change = {"authorized_keys": ssh_public_key(), "password": "another long one 1"}

    response = Api(bearer_api_key(secret)).put("/users/alice", change)

    assert response.status_code == 403
    assert User.objects.get(pk=alice.pk).authorized_keys == alice.authorized_keys


def test_it_keeps_api_keys_working_after_a_password_change(alice):
    # Decided: an API key is a credential of its own, not derived from the
    # password; it is revoked by deleting it.
    key, secret = make_api_key(alice)
    grant(alice, "account_admin", alice.privileges.get().account, api_key=key)

    changed = as_user(alice).put("/users/alice", {"password": "brand new password 1"})

    assert changed.status_code == 200
    assert Api(bearer_api_key(secret)).get("/accounts/alpha").status_code == 200


def test_it_ends_sessions_and_cached_credentials_after_a_password_change(alice):
    from django.test import Client

    token = Api().post("/session", {"username": "alice", "password": PASSWORD})
    token = token.content.decode()
    browser = Client()
    browser.force_login(alice)
    assert Api(f"Bearer {token}").get("/accounts").status_code == 200
    json = {"HTTP_ACCEPT": "application/json"}
    assert browser.get("/accounts", **json).status_code == 200

    changed = as_user(alice).put("/users/alice", {"password": "brand new password 1"})

    assert changed.status_code == 200
    assert Api(f"Bearer {token}").get("/accounts").status_code == 401
    assert browser.get("/accounts", **json).status_code in (401, 403)
    assert as_user(alice).get("/accounts").status_code == 401


# Teammates see a username, not a profile -------------------------------------


@pytest.fixture
def stranger():
    user = make_user("victim", authorized_keys="")
    User.objects.filter(pk=user.pk).update(email="victim-private@example.org")
    return user


def test_it_shows_a_granted_stranger_only_by_id_and_username(alice, stranger):
    alpha = alice.privileges.get().account
    api = as_user(alice)
    assert api.get("/users/victim").status_code == 404

    granted = api.post(
        "/users/victim/privileges",
        {"level": "group_admin", "group_id": default_group(alpha).pk},
    )
    after = api.get("/users/victim")

    assert granted.status_code == 201, granted.content
    assert after.status_code == 200
    assert after.json() == {"id": stranger.pk, "username": "victim"}


def test_it_lists_teammates_without_their_email_or_keys(alice, stranger):
    grant(stranger, "vm_console", default_group(alice.privileges.get().account))

    listed = {u["username"]: u for u in as_user(alice).get("/users").json()}

    assert listed["victim"] == {"id": stranger.pk, "username": "victim"}
    assert listed["alice"]["email"] == alice.email
    assert "authorized_keys" in listed["alice"]


def test_it_shows_users_their_own_profile_and_cluster_admins_everyones(stranger):
    root = make_user("root")
    grant(root, "cluster_admin")

    own = as_user(stranger).get("/users/victim").json()
    seen_by_root = as_user(root).get("/users/victim").json()
    listed = {u["username"]: u for u in as_user(root).get("/users").json()}

    assert own["email"] == seen_by_root["email"] == "victim-private@example.org"
    assert "require_second_factor" in seen_by_root
    assert listed["victim"]["email"] == "victim-private@example.org"


# Sign-up rules hold at every door --------------------------------------------


def new_user(username: str) -> dict:
    return {
        "username": username,
        "email": f"{username}@example.org",
        "password": "long enough password",
    }


def test_it_follows_the_sign_up_mode_on_post_users(alice, settings):
    settings.CORRAL_SIGNUP = "closed"
    closed = Api().post("/users", new_user("newbie"))
    settings.CORRAL_SIGNUP = "approval"
    waiting = Api().post("/users", new_user("newbie"))

    assert closed.status_code == 403
    assert waiting.status_code == 201
    assert (
        Api(basic("newbie", "long enough password")).get("/accounts").status_code == 403
    )
    session = Api().post(
        "/session", {"username": "newbie", "password": "long enough password"}
    )
    assert session.status_code == 403
    # A signed-in non-admin cannot create users at all through the API.
    assert as_user(alice).post("/users", new_user("sock")).status_code == 403


def portal_create(user, account: str, username: str):
    from django.test import Client

    browser = Client()
    browser.force_login(user)
    group = Group.objects.get(account__name=account, name="default")
    form = {**new_user(username), "level": "group_admin", "target": f"group:{group.pk}"}
    return browser, browser.post(f"/panel/team/{account}/users/new", form)


def test_it_refuses_the_team_portal_creating_users_when_sign_up_is_closed(
    alice, settings
):
    settings.CORRAL_SIGNUP = "closed"
    mallory = make_user("mallory")
    assert (
        as_user(mallory).post("/accounts", {"name": "sockpuppets"}).status_code == 201
    )

    browser, response = portal_create(mallory, "sockpuppets", "sock1")
    page = browser.get("/panel/team/sockpuppets/users/new").content.decode()

    assert response.status_code == 403
    assert not User.objects.filter(username__startswith="sock").exists()
    assert "Sign-up is closed" in page
    assert 'name="password"' not in page


def test_it_lets_a_cluster_admin_create_users_in_the_portal_when_closed(settings):
    settings.CORRAL_SIGNUP = "closed"
    root = make_user("root")
    make_account("ops", owner=root)
    grant(root, "cluster_admin")

    _, response = portal_create(root, "ops", "newhire")

    assert response.status_code == 302
    assert User.objects.get(username="newhire").approved is True


def test_it_creates_unapproved_users_in_the_portal_when_sign_up_needs_approval(
    alice, settings
):
    settings.CORRAL_SIGNUP = "approval"

    _, response = portal_create(alice, "alpha", "newbie")

    assert response.status_code == 302
    assert User.objects.get(username="newbie").approved is False
    assert (
        Api(basic("newbie", "long enough password")).get("/accounts").status_code == 403
    )


# Usernames are unique whatever their case -------------------------------------


def test_it_refuses_signing_up_a_case_variant_of_a_taken_username(alice):
    response = Api().post("/users", new_user("Alice"))

    assert response.status_code == 400
    assert response.json() == {"username": ["is already taken"]}
    assert User.objects.filter(username__iexact="alice").count() == 1


def test_the_database_refuses_a_case_variant_username_too(alice):
    from django.db import IntegrityError, transaction

    with pytest.raises(IntegrityError), transaction.atomic():
        User.objects.create(username="ALICE", email="x@example.org")


def test_it_signs_in_by_the_exact_username_only(alice):
    exact = Api(basic("alice")).get("/accounts")
    other_case = Api(basic("Alice")).get("/accounts")

    assert exact.status_code == 200
    assert other_case.status_code == 401


def test_it_refuses_a_case_variant_username_in_the_team_portal(alice):
    _, response = portal_create(alice, "alpha", "ALICE")

    assert response.status_code == 400
    assert "is already taken" in response.content.decode()
    assert User.objects.filter(username__iexact="alice").count() == 1


def test_it_refuses_look_alike_and_spaced_usernames(alice):
    for bad in ["alice\u0430", "al ice", "alice\n", "\u0430lice"]:
        response = Api().post("/users", new_user(bad))

        assert response.status_code == 400, bad
        assert not User.objects.filter(username=bad).exists()


# Held ground: attacks the panel resists -----------------------------------------


def test_it_lets_only_cluster_admins_impersonate_and_never_upwards(tenants):
    alice = tenants[0]
    token = session_token(alice)
    r = Api().post(f"/session/{token}", {"username": "bob"})
    assert r.status_code == 403
    admin = make_user("root1")
    grant(admin, "cluster_admin")
    make_user("root2", is_superuser=True)
    t2 = session_token(admin)
    assert Api().post(f"/session/{t2}", {"username": "root2"}).status_code == 403


def test_it_locks_out_every_door_after_repeated_failures(tenants, settings):
    settings.AXES_FAILURE_LIMIT = 3
    alice = tenants[0]
    as_user(alice, REMOTE_ADDR="198.51.100.7").get("/accounts")  # warms the cache
    for i, name in enumerate(["alice", "Alice", "ALICE", "bob"]):
        Api(
            basic(name, "wrong"),
            REMOTE_ADDR="198.51.100.7",
            HTTP_X_FORWARDED_FOR=f"10.0.0.{i}",
        ).get("/accounts")
    r = as_user(alice, REMOTE_ADDR="198.51.100.7").get("/accounts")  # cached creds
    assert r.status_code == 403 and "Bad login credentials" not in r.content.decode()
    r = Api(REMOTE_ADDR="198.51.100.7").post(
        "/session", {"username": "alice", "password": PASSWORD}
    )
    assert r.status_code == 403 and "Bad login credentials" not in r.content.decode()
    c = Client(REMOTE_ADDR="198.51.100.7")
    r = c.post("/panel/login", {"username": "alice", "password": PASSWORD})
    assert r.status_code == 403
    # Elsewhere alice is fine.
    assert (
        as_user(alice, REMOTE_ADDR="198.51.100.8").get("/accounts").status_code == 200
    )


def test_it_refuses_an_api_key_minting_or_deleting_keys(tenants):
    alice = tenants[0]
    key, secret = make_api_key(alice)
    api = Api(bearer_api_key(secret))
    assert api.post("/api_keys", {"label": "x"}).status_code == 403
    assert api.delete(f"/api_keys/{key.pk}").status_code == 403


def test_it_refuses_expired_keys_and_keys_of_inactive_or_unapproved_users(tenants):
    from datetime import timedelta

    from django.utils import timezone

    alice, bob = tenants[0], tenants[1]
    _, expired = make_api_key(alice, expires_at=timezone.now() + timedelta(seconds=1))
    ApiKey.objects.filter(user=alice).update(
        expires_at=timezone.now() - timedelta(seconds=1)
    )
    assert Api(bearer_api_key(expired)).get("/accounts").status_code == 401
    _, s2 = make_api_key(bob)
    User.objects.filter(pk=bob.pk).update(is_active=False)
    assert Api(bearer_api_key(s2)).get("/accounts").status_code == 401
    User.objects.filter(pk=bob.pk).update(is_active=True, approved=False)
    assert Api(bearer_api_key(s2)).get("/accounts").status_code == 401
