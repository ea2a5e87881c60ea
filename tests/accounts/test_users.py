import pytest
from django.contrib.sessions.models import Session
from django.test import Client

from accounts.models import SessionToken, User
from tests.factories import (
    PASSWORD,
    Api,
    as_user,
    basic,
    grant,
    make_account,
    make_user,
    make_vm,
    ssh_public_key,
)

pytestmark = pytest.mark.django_db

NEW_PASSWORD = "a different long passphrase"


@pytest.fixture
def team():
    """An account with its admin, a member, and an outsider elsewhere."""
    admin = make_user("admin")
    account = make_account("acme", owner=admin)
    member = make_user("member")
    grant(member, "vm_admin", make_vm(account.groups.get()))
    outsider = make_user("outsider")
    make_account("other", owner=outsider)
    return admin, member, outsider


def test_a_user_reads_themselves_by_name_and_by_id():
    user = make_user("alice", authorized_keys=ssh_public_key())

    by_name = as_user(user).get("/users/alice")
    by_id = as_user(user).get(f"/users/{user.pk}")

    assert by_name.status_code == 200
    assert by_name.json() == by_id.json()
    assert by_name.json()["username"] == "alice"
    assert by_name.json()["authorized_keys"] == user.authorized_keys
    assert "password" not in by_name.json()


def test_an_account_admin_sees_members_of_their_account(team):
    admin, _, _ = team

    response = as_user(admin).get("/users/member")

    assert response.status_code == 200
    assert response.json()["username"] == "member"
    # Only the user and cluster admins see the approval and 2FA settings.
    assert "approved" not in response.json()


def test_an_account_admin_cannot_see_outsiders(team):
    admin, _, outsider = team

    by_name = as_user(admin).get("/users/outsider")
    by_id = as_user(admin).get(f"/users/{outsider.pk}")
    missing = as_user(admin).get("/users/nobody")

    assert by_name.status_code == by_id.status_code == missing.status_code == 404
    assert by_name.json() == missing.json()


def test_a_member_cannot_see_their_account_admin(team):
    _, member, _ = team

    assert as_user(member).get("/users/admin").status_code == 404


def test_a_cluster_admin_sees_everyone(team):
    root = make_user("root")
    grant(root, "cluster_admin")

    response = as_user(root).get("/users")

    assert response.status_code == 200
    assert {u["username"] for u in response.json()} == {
        "admin",
        "member",
        "outsider",
        "root",
    }


def test_the_user_list_is_scoped(team):
    admin, _, outsider = team

    mine = as_user(admin).get("/users").json()
    theirs = as_user(outsider).get("/users").json()

    assert {u["username"] for u in mine} == {"admin", "member"}
    assert [u["username"] for u in theirs] == ["outsider"]


def test_users_need_credentials():
    make_user("alice")

    response = Api().get("/users/alice")

    assert response.status_code == 401
    assert "WWW-Authenticate" in response


def test_put_changes_keys_and_ignores_username_and_email():
    user = make_user("alice")
    key = ssh_public_key("laptop")

    response = as_user(user).put(
        "/users/alice",
        {
            "id": 999,
            "username": "mallory",
            "email": "mallory@example.org",
            "authorized_keys": f"{key}\n",
            "is_superuser": True,
        },
    )

    assert response.status_code == 200
    user.refresh_from_db()
    assert user.username == "alice"
    assert user.email == "alice@example.org"
    assert user.authorized_keys == key
    assert not user.is_superuser
    assert response.json()["authorized_keys"] == key


def test_put_by_id_works_like_by_name():
    user = make_user("alice")

    response = as_user(user).put(f"/users/{user.pk}", {"authorized_keys": ""})

    assert response.status_code == 200


def test_put_with_a_bad_key_is_400_and_changes_nothing():
    key = ssh_public_key()
    user = make_user("alice", authorized_keys=key)

    response = as_user(user).put(
        "/users/alice", {"authorized_keys": f"{key}\nssh-ed25519 AAAA"}
    )

    assert response.status_code == 400
    assert response.json() == {
        "authorized_keys": ["line 2 is not an OpenSSH public key"]
    }
    user.refresh_from_db()
    assert user.authorized_keys == key


def test_an_account_admin_cannot_change_a_member(team):
    admin, _, _ = team

    response = as_user(admin).put("/users/member", {"authorized_keys": ""})

    assert response.status_code == 403


def test_an_outsider_cannot_change_or_delete_a_user(team):
    _, member, outsider = team

    assert as_user(outsider).put("/users/member", {}).status_code == 404
    assert as_user(outsider).delete("/users/member").status_code == 404
    assert User.objects.filter(pk=member.pk).exists()


def test_password_is_write_only_and_changing_it_ends_sessions():
    user = make_user("alice")
    token = Api().post("/session", {"username": "alice", "password": PASSWORD})
    browser = Client()
    browser.post("/panel/login", {"username": "alice", "password": PASSWORD})
    assert browser.get("/panel/").status_code == 200

    response = as_user(user).put("/users/alice", {"password": NEW_PASSWORD})

    assert response.status_code == 200
    assert "password" not in response.json()
    assert not SessionToken.objects.filter(user=user).exists()
    assert not Session.objects.exists()
    bearer = Api(f"Bearer {token.content.decode()}").get("/users/alice")
    assert bearer.status_code == 401
    assert browser.get("/panel/").status_code == 302
    assert Api(basic("alice")).get("/users/alice").status_code == 401
    assert Api(basic("alice", NEW_PASSWORD)).get("/users/alice").status_code == 200


def test_a_too_short_password_is_refused():
    user = make_user("alice")

    response = as_user(user).put("/users/alice", {"password": "short"})

    assert response.status_code == 400
    assert list(response.json()) == ["password"]
    user.refresh_from_db()
    assert user.check_password(PASSWORD)


def test_a_cluster_admin_may_change_and_delete_anyone():
    root = make_user("root")
    grant(root, "cluster_admin")
    make_user("alice")

    changed = as_user(root).put("/users/alice", {"require_second_factor": True})
    deleted = as_user(root).delete("/users/alice")

    assert changed.status_code == 200
    assert changed.json()["require_second_factor"] is True
    assert deleted.status_code == 204
    assert not User.objects.filter(username="alice").exists()


def test_a_user_may_delete_themselves_by_id():
    user = make_user("alice")

    response = as_user(user).delete(f"/users/{user.pk}")

    assert response.status_code == 204
    assert not User.objects.filter(pk=user.pk).exists()
