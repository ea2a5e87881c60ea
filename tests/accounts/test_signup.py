import pytest
from django.contrib.auth.hashers import get_hasher
from passlib.hash import md5_crypt

from accounts.models import Account, User
from groups.models import Group
from privileges.models import Privilege
from tests.factories import (
    PASSWORD,
    Api,
    as_user,
    basic,
    grant,
    make_account,
    make_user,
    ssh_public_key,
)

pytestmark = pytest.mark.django_db


def signup(**fields):
    body = {"username": "alice", "email": "alice@example.org", "password": PASSWORD}
    body.update(fields)
    return Api().post("/users", {k: v for k, v in body.items() if v is not None})


def test_it_signs_up_with_an_account_and_makes_the_user_its_admin():
    response = signup(account_name="acme")

    assert response.status_code == 201
    assert "password" not in response.json()
    user = User.objects.get(username="alice")
    account = Account.objects.get(name="acme")
    assert Group.objects.filter(account=account, name="default").exists()
    assert Privilege.objects.filter(
        user=user, account=account, level="account_admin"
    ).exists()


def test_it_signs_up_without_an_account():
    response = signup()

    assert response.status_code == 201
    assert response.json() == {
        "id": User.objects.get(username="alice").pk,
        "username": "alice",
        "email": "alice@example.org",
        "authorized_keys": "",
    }
    assert not Account.objects.exists()
    assert not Privilege.objects.exists()


def test_the_new_account_is_first_in_the_overview():
    Api().post(
        "/users",
        {"username": "bob", "email": "b@example.org", "password": PASSWORD,
         "account_name": "bobs"},
    )  # fmt: skip

    response = Api(basic("bob")).get("/accounts?view=overview&include_deleted=true")

    assert response.status_code == 200
    body = response.json()
    assert body[0]["name"] == "bobs"
    assert body[0]["groups"][0]["name"] == "default"
    assert body[0]["groups"][0]["virtual_machines"] == []


def test_it_stores_a_hash_never_the_password():
    signup()

    user = User.objects.get(username="alice")
    assert PASSWORD not in user.password
    assert user.check_password(PASSWORD)


def test_it_ignores_unknown_fields():
    response = signup(is_superuser=True, is_staff=True, approved=False, colour="red")

    assert response.status_code == 201
    user = User.objects.get(username="alice")
    assert not user.is_superuser
    assert not user.is_staff
    assert user.approved


@pytest.mark.parametrize(
    ("fields", "field"),
    [
        ({"username": "al-ice"}, "username"),
        ({"username": "1alice"}, "username"),
        ({"username": ""}, "username"),
        ({"email": None}, "email"),
        ({"email": "not-an-address"}, "email"),
        ({"password": None}, "password"),
        ({"password": "short"}, "password"),
        ({"account_name": "Not_A_Label"}, "account_name"),
    ],
)
def test_it_rejects_bad_fields_and_writes_nothing(fields, field):
    response = signup(**fields)

    assert response.status_code == 400
    assert list(response.json()) == [field]
    assert isinstance(response.json()[field], list)
    assert not User.objects.exists()
    assert not Account.objects.exists()


def test_a_taken_username_is_400():
    make_user("alice")

    response = signup()

    assert response.status_code == 400
    assert response.json() == {"username": ["is already taken"]}


def test_a_taken_account_name_is_400_and_no_user_is_made():
    make_account("acme")

    response = signup(account_name="acme")

    assert response.status_code == 400
    assert list(response.json()) == ["account_name"]
    assert not User.objects.filter(username="alice").exists()


# CORRAL_SIGNUP ----------------------------------------------------------------


def test_closed_sign_up_refuses_strangers(settings):
    settings.CORRAL_SIGNUP = "closed"

    response = signup()

    assert response.status_code == 403
    assert "closed" in response.json()["detail"]
    assert not User.objects.exists()


def test_closed_sign_up_still_lets_a_cluster_admin_add_users(settings):
    settings.CORRAL_SIGNUP = "closed"
    admin = make_user("root")
    grant(admin, "cluster_admin")

    response = as_user(admin).post(
        "/users", {"username": "alice", "email": "a@example.org", "password": PASSWORD}
    )

    assert response.status_code == 201
    assert User.objects.get(username="alice").approved


def test_closed_sign_up_refuses_a_signed_in_user_who_is_not_admin(settings):
    settings.CORRAL_SIGNUP = "closed"
    someone = make_user("someone")

    response = as_user(someone).post(
        "/users", {"username": "alice", "email": "a@example.org", "password": PASSWORD}
    )

    assert response.status_code == 403
    assert not User.objects.filter(username="alice").exists()


def test_approval_sign_up_cannot_sign_in_until_a_cluster_admin_approves(settings):
    settings.CORRAL_SIGNUP = "approval"
    admin = make_user("root")
    grant(admin, "cluster_admin")

    assert signup(account_name="acme").status_code == 201
    waiting = Api(basic("alice")).get("/accounts")
    session = Api().post("/session", {"username": "alice", "password": PASSWORD})

    assert waiting.status_code == 403
    assert "approval" in waiting.json()["detail"]
    assert session.status_code == 403
    assert "approval" in session.content.decode()

    approved = as_user(admin).put("/users/alice", {"approved": True})

    assert approved.status_code == 200
    assert approved.json()["approved"] is True
    assert Api(basic("alice")).get("/accounts").status_code == 200


def test_only_a_cluster_admin_may_change_approval():
    user = make_user("alice")

    response = as_user(user).put("/users/alice", {"approved": False})

    assert response.status_code == 403
    user.refresh_from_db()
    assert user.approved


def test_open_sign_up_is_approved_at_once(settings):
    settings.CORRAL_SIGNUP = "open"

    signup()

    assert User.objects.get(username="alice").approved


# MD5-crypt passwords ----------------------------------------------------------


def test_an_md5_crypt_password_is_accepted_and_upgraded_at_first_sign_in():
    crypted = md5_crypt.hash("an old bigv password")

    response = signup(password=crypted)

    assert response.status_code == 201
    stored = User.objects.get(username="alice").password
    assert stored.startswith("md5_crypt$")

    signed_in = Api(basic("alice", "an old bigv password")).get("/users/alice")

    assert signed_in.status_code == 200
    upgraded = User.objects.get(username="alice").password
    assert upgraded.startswith(f"{get_hasher().algorithm}$")
    assert User.objects.get(username="alice").check_password("an old bigv password")


def test_an_md5_crypt_password_refuses_the_wrong_plaintext():
    signup(password=md5_crypt.hash("an old bigv password"))

    response = Api(basic("alice", "something else")).get("/users/alice")

    assert response.status_code == 401
    assert User.objects.get(username="alice").password.startswith("md5_crypt$")


def test_the_hash_itself_is_not_a_password():
    crypted = md5_crypt.hash("an old bigv password")
    signup(password=crypted)

    assert Api(basic("alice", crypted)).get("/users/alice").status_code == 401


def test_a_malformed_md5_crypt_string_is_treated_as_a_password():
    response = signup(password="$1$short")

    assert response.status_code == 201
    assert User.objects.get(username="alice").check_password("$1$short")


# authorized_keys --------------------------------------------------------------


def test_it_keeps_valid_keys_and_drops_blank_lines():
    first, second = ssh_public_key("me@laptop"), ssh_public_key()

    response = signup(authorized_keys=f"\n{first}\n\n   \n{second}\n")

    assert response.status_code == 201
    assert response.json()["authorized_keys"] == f"{first}\n{second}"


def test_it_accepts_rsa_and_ecdsa_keys_with_options():
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import ec, rsa

    def openssh(private):
        return (
            private.public_key()
            .public_bytes(
                serialization.Encoding.OpenSSH, serialization.PublicFormat.OpenSSH
            )
            .decode()
        )

    rsa_key = openssh(rsa.generate_private_key(public_exponent=65537, key_size=2048))
    ec_key = openssh(ec.generate_private_key(ec.SECP256R1()))
    keys = f'from="192.0.2.0/24",no-pty {rsa_key} deploy\n{ec_key}'

    response = signup(authorized_keys=keys)

    assert response.status_code == 201
    assert response.json()["authorized_keys"] == keys


def test_a_bad_key_line_is_400_naming_the_line():
    good = ssh_public_key()

    response = signup(authorized_keys=f"{good}\n\nssh-rsa not-base64 me@host")

    assert response.status_code == 400
    assert response.json() == {
        "authorized_keys": ["line 3 is not an OpenSSH public key"]
    }
    assert not User.objects.exists()


def test_a_key_whose_type_does_not_match_its_body_is_refused():
    body = ssh_public_key().split()[1]

    response = signup(authorized_keys=f"ssh-rsa {body}")

    assert response.status_code == 400
    assert "line 1" in response.json()["authorized_keys"][0]


def test_a_comment_line_is_not_a_key():
    response = signup(authorized_keys=f"# laptop\n{ssh_public_key()}")

    assert response.status_code == 400
    assert "line 1" in response.json()["authorized_keys"][0]
