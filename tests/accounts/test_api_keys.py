import json
from datetime import timedelta

import pytest
from django.utils import timezone

from accounts.models import ApiKey, hash_secret
from panel.models import AuditEvent
from privileges.models import Privilege
from tests.factories import (
    Api,
    as_user,
    bearer_api_key,
    grant,
    make_account,
    make_api_key,
    make_user,
)

pytestmark = pytest.mark.django_db


@pytest.fixture
def alice():
    user = make_user("alice")
    make_account("acme", owner=user)
    return user


def create_key(user, **body):
    return as_user(user).post("/api_keys", {"user_id": user.pk, **body})


def test_the_key_is_shown_once_and_only_its_digest_is_kept(alice):
    response = create_key(alice, label="ci")

    assert response.status_code == 201
    body = response.json()
    secret = body["api_key"]
    key = ApiKey.objects.get(pk=body["id"])
    assert body["user_id"] == alice.pk
    assert body["username"] == "alice"
    assert body["label"] == "ci"
    assert key.key_hash == hash_secret(secret)
    assert secret not in json.dumps(
        list(ApiKey.objects.values()), default=str
    ) + json.dumps(list(AuditEvent.objects.values("detail")))
    for path in ("/api_keys", "/api_keys?view=overview", f"/api_keys/{key.pk}"):
        listed = as_user(alice).get(path)
        assert listed.status_code == 200
        assert secret not in listed.content.decode()
        body = listed.json()
        entries = body if isinstance(body, list) else [body]
        assert all("api_key" not in entry for entry in entries)


def test_a_key_signs_in_as_its_user(alice):
    secret = create_key(alice).json()["api_key"]

    response = Api(bearer_api_key(secret)).get("/users/alice")

    assert response.status_code == 200
    assert response.json()["username"] == "alice"


def test_an_unknown_key_is_401():
    response = Api(bearer_api_key("not-a-key")).get("/accounts")

    assert response.status_code == 401
    assert "WWW-Authenticate" in response


def test_an_expired_key_is_401(alice):
    soon = timezone.now() + timedelta(hours=1)
    body = create_key(alice, expires_at=soon.isoformat()).json()
    assert Api(bearer_api_key(body["api_key"])).get("/accounts").status_code == 200

    ApiKey.objects.filter(pk=body["id"]).update(
        expires_at=timezone.now() - timedelta(seconds=1)
    )

    response = Api(bearer_api_key(body["api_key"])).get("/accounts")
    assert response.status_code == 401
    assert "WWW-Authenticate" in response


def test_an_expiry_in_the_past_is_400(alice):
    past = timezone.now() - timedelta(minutes=1)

    response = create_key(alice, expires_at=past.isoformat())

    assert response.status_code == 400
    assert list(response.json()) == ["expires_at"]
    assert not ApiKey.objects.exists()


def test_a_key_uses_only_its_own_privileges(alice):
    key, secret = make_api_key(alice)

    bare = Api(bearer_api_key(secret)).get("/accounts")

    assert bare.status_code == 200
    assert bare.json() == []
    assert Api(bearer_api_key(secret)).get("/accounts/acme").status_code == 404

    acme = alice.privileges.get().account
    grant(alice, "group_admin", acme.groups.get(), api_key=key)

    scoped = Api(bearer_api_key(secret))
    assert [a["name"] for a in scoped.get("/accounts").json()] == ["acme"]
    # group_admin through the key, although alice is account_admin herself.
    change = {"require_second_factor": True}
    assert scoped.put("/accounts/acme", change).status_code == 403
    assert as_user(alice).put("/accounts/acme", change).status_code == 200


def test_a_cluster_admin_key_does_not_inherit_the_users_superpowers():
    root = make_user("root", is_superuser=True)
    make_account("acme")
    _, secret = make_api_key(root)

    assert Api(bearer_api_key(secret)).get("/accounts").json() == []
    assert len(as_user(root).get("/accounts").json()) == 1


def test_a_user_may_give_their_own_key_up_to_their_own_level(alice):
    key, _ = make_api_key(alice)
    acme = alice.privileges.get().account

    response = as_user(alice).post(
        "/users/alice/privileges",
        {
            "api_key_id": key.pk,
            "account_id": acme.pk,
            "level": "account_admin",
            "password_required": True,
        },
    )

    assert response.status_code == 201
    assert response.json()["api_key_id"] == key.pk
    assert response.json()["password_required"] is False
    assert Privilege.objects.get(api_key=key).password_required is False


def test_a_user_may_not_give_their_own_key_more_than_they_hold(alice):
    key, _ = make_api_key(alice)

    response = as_user(alice).post(
        "/users/alice/privileges", {"api_key_id": key.pk, "level": "cluster_admin"}
    )

    assert response.status_code == 403
    assert not Privilege.objects.filter(api_key=key).exists()


def test_only_the_keys_owner_gives_it_privileges_not_a_teammate(alice):
    bob = make_user("bob")
    key, _ = make_api_key(bob)
    acme = alice.privileges.get().account
    body = {"api_key_id": key.pk, "group_id": acme.groups.get().pk}

    response = as_user(alice).post(
        "/users/bob/privileges", {**body, "level": "group_admin"}
    )

    assert response.status_code == 400
    assert response.json() == {"api_key_id": ["no such API key of yours"]}
    assert not key.privileges.exists()


def test_a_key_of_another_user_cannot_be_named_as_yours(alice):
    bob = make_user("bob")
    key, _ = make_api_key(bob)
    acme = alice.privileges.get().account

    response = as_user(alice).post(
        "/users/alice/privileges",
        {"api_key_id": key.pk, "account_id": acme.pk, "level": "account_admin"},
    )

    assert response.status_code == 400
    assert list(response.json()) == ["api_key_id"]


def test_an_api_key_cannot_create_or_delete_api_keys(alice):
    key, secret = make_api_key(alice)

    created = Api(bearer_api_key(secret)).post("/api_keys", {"user_id": alice.pk})
    deleted = Api(bearer_api_key(secret)).delete(f"/api_keys/{key.pk}")

    assert created.status_code == 403
    assert deleted.status_code == 403
    assert ApiKey.objects.filter(user=alice).count() == 1


def test_delete_removes_the_key_and_it_stops_working(alice):
    key, secret = make_api_key(alice, label="ci")

    response = as_user(alice).delete(f"/api_keys/{key.pk}")

    assert response.status_code == 204
    assert not ApiKey.objects.filter(pk=key.pk).exists()
    assert Api(bearer_api_key(secret)).get("/accounts").status_code == 401


def test_others_keys_are_invisible(alice):
    bob = make_user("bob")
    bobs, _ = make_api_key(bob, label="bobs")
    make_api_key(alice, label="mine")

    listed = as_user(alice).get("/api_keys?view=overview")
    shown = as_user(alice).get(f"/api_keys/{bobs.pk}")
    deleted = as_user(alice).delete(f"/api_keys/{bobs.pk}")

    assert [k["label"] for k in listed.json()] == ["mine"]
    assert shown.status_code == deleted.status_code == 404
    assert ApiKey.objects.filter(pk=bobs.pk).exists()


def test_only_a_cluster_admin_makes_keys_for_others(alice):
    bob = make_user("bob")
    root = make_user("root")
    grant(root, "cluster_admin")

    refused = as_user(alice).post("/api_keys", {"user_id": bob.pk})
    made = as_user(root).post("/api_keys", {"user_id": bob.pk, "label": "for bob"})

    assert refused.status_code == 403
    assert made.status_code == 201
    assert ApiKey.objects.get().user == bob


def test_the_overview_lists_each_keys_privileges(alice):
    key, _ = make_api_key(alice, label="ci")
    acme = alice.privileges.get().account
    grant(alice, "group_admin", acme.groups.get(), api_key=key, password_required=False)

    response = as_user(alice).get("/api_keys?view=overview")

    assert response.status_code == 200
    [entry] = response.json()
    assert entry["label"] == "ci"
    assert [(p["level"], p["api_key_id"]) for p in entry["privileges"]] == [
        ("group_admin", key.pk)
    ]


def test_the_own_key_rule_holds_for_revoking_too(alice):
    acme = alice.privileges.get().account
    mine, _ = make_api_key(alice)
    bob = make_user("bob")
    bobs, _ = make_api_key(bob)
    on_mine = grant(alice, "account_admin", acme, api_key=mine, password_required=False)
    on_bobs = grant(bob, "account_admin", acme, api_key=bobs, password_required=False)

    others = as_user(alice).delete(f"/privileges/{on_bobs.pk}")
    own = as_user(alice).delete(f"/privileges/{on_mine.pk}")

    assert others.status_code == 403
    assert own.status_code == 204
    assert list(Privilege.objects.filter(api_key__isnull=False)) == [on_bobs]
