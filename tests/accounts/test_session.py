"""`POST /session`, `GET /session/{token}`, `Authorization: Bearer`, impersonation."""

from datetime import timedelta

import pytest
from django.apps import apps
from django.test import Client
from django.utils import timezone

from accounts import actions
from accounts.models import SessionToken
from panel.models import AuditEvent
from tests.factories import PASSWORD, Api, grant, make_account, make_user

pytestmark = pytest.mark.django_db


def sign_in(username, password=PASSWORD, **fields):
    return Api().post(
        "/session", {"username": username, "password": password, **fields}
    )


def token_of(user, **fields) -> str:
    response = sign_in(user.username, **fields)
    assert response.status_code == 200, response.content
    return response.content.decode()


def read(token):
    return Client().get(f"/session/{token}", HTTP_ACCEPT="application/json")


def bearer(token, **headers) -> Api:
    return Api(f"Bearer {token}", **headers)


# Creating sessions --------------------------------------------------------


def test_it_answers_the_token_as_the_whole_plain_text_body():
    user = make_user()

    response = sign_in(user.username, validity="1800")

    assert response.status_code == 200
    assert response["Content-Type"].startswith("text/plain")
    token = response.content.decode()
    assert token
    assert token == token.strip()
    assert SessionToken.objects.get(user=user).factors == ["password"]


def test_it_accepts_a_form_encoded_body():
    user = make_user()

    response = Client().post(
        "/session", {"username": user.username, "password": PASSWORD}
    )

    assert response.status_code == 200
    assert read(response.content.decode()).json()["username"] == user.username


def test_the_session_lasts_for_the_validity_asked_for():
    user = make_user()
    before = timezone.now()

    token_of(user, validity="120")

    after = timezone.now()
    session = SessionToken.objects.get(user=user)
    assert before + timedelta(seconds=120) <= session.expires_at
    assert session.expires_at <= after + timedelta(seconds=120)


@pytest.mark.parametrize(
    ("validity", "seconds"), [(None, 1800), ("999999", 3600), ("60", 60)]
)
def test_the_validity_defaults_to_half_an_hour_and_is_capped(
    settings, validity, seconds
):
    settings.CORRAL_SESSION_VALIDITY_MAX = 3600
    user = make_user()
    before = timezone.now()

    token_of(user, **({"validity": validity} if validity else {}))

    after = timezone.now()
    expires_at = SessionToken.objects.get(user=user).expires_at
    assert before + timedelta(seconds=seconds) <= expires_at
    assert expires_at <= after + timedelta(seconds=seconds)


def test_a_bad_password_is_refused_with_bad_login_credentials():
    user = make_user()

    response = sign_in(user.username, "wrong password")

    assert response.status_code == 403
    assert "Bad login credentials" in response.content.decode()
    assert not SessionToken.objects.exists()


def test_an_unknown_user_is_refused_with_bad_login_credentials():
    response = sign_in("nobody")

    assert response.status_code == 403
    assert "Bad login credentials" in response.content.decode()


@pytest.mark.parametrize(
    "body",
    [
        {"validity": 1800},
        {"validity": "ten minutes"},
        {"validity": "0"},
        {"password": ["a", "list"]},
        {"yubikey": 12345678},
        {"2fa": True},
        {"username": ""},
    ],
)
def test_it_refuses_badly_formed_parameters(body):
    user = make_user()

    response = Api().post(
        "/session", {"username": user.username, "password": PASSWORD, **body}
    )

    assert response.status_code == 400
    assert "Badly-formed parameters" in response.content.decode()
    assert not SessionToken.objects.exists()


def test_it_refuses_a_body_that_is_not_a_json_object():
    for body in ("[1, 2]", "{not json"):
        response = Client().post("/session", body, content_type="application/json")

        assert response.status_code == 400
        assert "Badly-formed parameters" in response.content.decode()


def test_tokens_are_stored_only_as_digests():
    user = make_user()
    token = token_of(user)

    assert SessionToken.objects.get(user=user).token_hash != token
    for model in apps.get_models():
        for row in model.objects.all().values_list():
            assert token not in repr(row), model


# Reading and using sessions -----------------------------------------------


def test_reading_a_session_answers_username_factors_and_memberships():
    user = make_user(is_staff=True)

    response = read(token_of(user))

    assert response.status_code == 200
    assert response.json() == {
        "username": user.username,
        "factors": ["password"],
        "group_memberships": ["staff"],
    }


def test_a_bearer_token_authenticates_api_requests():
    user = make_user()

    response = bearer(token_of(user)).get(f"/users/{user.username}")

    assert response.status_code == 200
    assert response.json()["username"] == user.username


def test_an_unknown_token_is_not_found_and_not_accepted():
    assert read("no-such-token").status_code == 404

    response = bearer("no-such-token").get("/accounts")

    assert response.status_code == 401
    assert response["WWW-Authenticate"]


def test_an_expired_session_is_gone():
    user = make_user()
    token = token_of(user, validity="60")
    SessionToken.objects.update(expires_at=timezone.now() - timedelta(seconds=1))

    assert read(token).status_code == 404
    response = bearer(token).get("/accounts")
    assert response.status_code == 401
    assert response["WWW-Authenticate"]


def test_deleting_a_session_ends_it():
    user = make_user()
    token = token_of(user)

    assert Client().delete(f"/session/{token}").status_code == 204

    assert read(token).status_code == 404
    assert bearer(token).get("/accounts").status_code == 401


def test_a_password_change_ends_every_session_token():
    user = make_user()
    tokens = [token_of(user), token_of(user)]
    other = token_of(make_user())

    actions.change_password(user, "a brand new passphrase", actor=user)

    for token in tokens:
        assert read(token).status_code == 404
        assert bearer(token).get("/accounts").status_code == 401
    assert read(other).status_code == 200
    assert AuditEvent.objects.filter(kind=AuditEvent.Kind.PASSWORD_CHANGED).exists()


def test_changing_the_password_through_the_api_ends_the_sessions():
    user = make_user()
    token = token_of(user)

    response = bearer(token).put(
        f"/users/{user.username}", {"password": "a brand new passphrase"}
    )

    assert response.status_code == 200
    assert read(token).status_code == 404
    assert sign_in(user.username).status_code == 403
    assert sign_in(user.username, "a brand new passphrase").status_code == 200


# Impersonation ------------------------------------------------------------


def impersonate(token, username):
    return Api().post(f"/session/{token}", {"username": username})


def test_a_cluster_admin_can_impersonate_a_user():
    admin = make_user()
    grant(admin, "cluster_admin")
    target = make_user()

    response = impersonate(token_of(admin), target.username)

    assert response.status_code == 200
    assert response["Content-Type"].startswith("text/plain")
    session = read(response.content.decode()).json()
    assert session["username"] == target.username
    assert "impersonated" in session["factors"]
    stored = SessionToken.objects.get(user=target)
    assert stored.impersonated_by == admin
    event = AuditEvent.objects.get(kind=AuditEvent.Kind.SIGN_IN, actor=admin,
                                   detail__via="impersonation")  # fmt: skip
    assert event.detail["impersonated"] == target.username


def test_the_impersonated_session_acts_as_the_target():
    admin = make_user()
    grant(admin, "cluster_admin")
    target = make_user()
    token = impersonate(token_of(admin), target.username).content.decode()

    response = bearer(token).get(f"/users/{target.username}")

    assert response.status_code == 200
    assert response.json()["username"] == target.username


def test_the_impersonated_session_ends_with_the_admins():
    admin = make_user()
    grant(admin, "cluster_admin")
    admin_token = token_of(admin, validity="300")

    impersonate(admin_token, make_user().username)

    mine, theirs = SessionToken.objects.order_by("id")
    assert theirs.expires_at <= mine.expires_at


def test_only_cluster_admins_may_impersonate():
    user = make_user()
    make_account(owner=user)
    target = make_user()

    response = impersonate(token_of(user), target.username)

    assert response.status_code == 403
    assert not SessionToken.objects.filter(user=target).exists()


def test_a_cluster_admin_may_not_impersonate_someone_above_them():
    admin = make_user()
    grant(admin, "cluster_admin")
    root = make_user(is_superuser=True)

    response = impersonate(token_of(admin), root.username)

    assert response.status_code == 403
    assert not SessionToken.objects.filter(user=root).exists()


def test_impersonating_an_unknown_user_is_badly_formed():
    admin = make_user()
    grant(admin, "cluster_admin")

    response = impersonate(token_of(admin), "nobody")

    assert response.status_code == 400
    assert "Badly-formed parameters" in response.content.decode()


def test_impersonating_with_an_expired_session_is_not_found():
    admin = make_user()
    grant(admin, "cluster_admin")
    token = token_of(admin)
    SessionToken.objects.update(expires_at=timezone.now() - timedelta(seconds=1))

    assert impersonate(token, make_user().username).status_code == 404
