"""Every security event writes exactly one audit record, without secrets."""

import json

import pytest
from django.test import Client
from django_otp.plugins.otp_totp.models import TOTPDevice

from panel.models import AuditEvent
from tests.factories import (
    PASSWORD,
    Api,
    as_user,
    basic,
    grant,
    make_account,
    make_api_key,
    make_user,
)

pytestmark = pytest.mark.django_db

ADDRESS = "192.0.2.44"
Kind = AuditEvent.Kind


@pytest.fixture
def alice():
    user = make_user("alice")
    make_account("acme", owner=user)
    return user


def only(kind) -> AuditEvent:
    [event] = AuditEvent.objects.filter(kind=kind)
    return event


def assert_no_secret(*secrets):
    dumped = json.dumps(list(AuditEvent.objects.values("detail", "actor_username")))
    for secret in (PASSWORD, *secrets):
        assert secret not in dumped


def test_a_sign_in_writes_one_record(alice):
    token = (
        Api(REMOTE_ADDR=ADDRESS)
        .post("/session", {"username": "alice", "password": PASSWORD})
        .content.decode()
    )

    event = only(Kind.SIGN_IN)
    assert event.actor == alice
    assert event.address == ADDRESS
    assert event.detail == {"via": "session"}
    assert_no_secret(token)


def test_repeated_basic_requests_write_one_sign_in(alice):
    api = Api(basic("alice"), REMOTE_ADDR=ADDRESS)

    for _ in range(3):
        assert api.get("/users/alice").status_code == 200

    event = only(Kind.SIGN_IN)
    assert event.detail == {"via": "basic"}


def test_a_failed_sign_in_writes_one_record():
    make_user("alice")

    Api(REMOTE_ADDR=ADDRESS).post(
        "/session", {"username": "alice", "password": "a wrong guess"}
    )

    event = only(Kind.SIGN_IN_FAILED)
    assert event.actor is None
    assert event.actor_username == "alice"
    assert event.address == ADDRESS
    assert event.detail == {"via": "session", "reason": "bad_credentials"}
    assert not AuditEvent.objects.exclude(kind=Kind.SIGN_IN_FAILED).exists()
    assert_no_secret("a wrong guess")


def test_a_lockout_writes_one_record_however_often_it_refuses(alice, settings):
    settings.AXES_FAILURE_LIMIT = 3
    api = Api(REMOTE_ADDR=ADDRESS)
    for _ in range(5):
        api.post("/session", {"username": "alice", "password": "a wrong guess"})

    event = only(Kind.LOCKED_OUT)
    assert event.actor_username == "alice"
    assert event.address == ADDRESS
    failures = AuditEvent.objects.filter(kind=Kind.SIGN_IN_FAILED)
    assert [f.detail["reason"] for f in failures.order_by("id")] == [
        "bad_credentials",
        "bad_credentials",
        "bad_credentials",
        "locked_out",
        "locked_out",
    ]
    assert_no_secret("a wrong guess")


def test_a_browser_sign_in_and_out_write_one_record_each(alice):
    client = Client(REMOTE_ADDR=ADDRESS)

    client.post("/panel/login", {"username": "alice", "password": PASSWORD})
    client.post("/panel/logout")

    signed_in = only(Kind.SIGN_IN)
    assert signed_in.actor == alice
    assert signed_in.address == ADDRESS
    assert signed_in.detail == {"via": "browser"}
    assert only(Kind.SIGN_OUT).actor == alice


@pytest.fixture
def granted(alice):
    """A group_admin privilege that alice granted to bob through the API."""
    bob = make_user("bob")
    acme = alice.privileges.get().account
    response = as_user(alice, REMOTE_ADDR=ADDRESS).post(
        "/users/bob/privileges",
        {"group_id": acme.groups.get().pk, "level": "group_admin"},
    )
    assert response.status_code == 201
    return bob.privileges.get()


def test_granting_a_privilege_writes_one_record(alice, granted):
    event = only(Kind.PRIVILEGE_GRANTED)

    assert event.actor == alice
    assert event.address == ADDRESS
    assert event.account == granted.group.account
    assert event.detail["level"] == "group_admin"
    assert event.detail["user"] == "bob"
    assert event.detail["privilege"] == granted.pk


def test_changing_a_privilege_writes_one_record(alice, granted):
    response = as_user(alice, REMOTE_ADDR=ADDRESS).put(
        f"/privileges/{granted.pk}", {"ip_restrictions": ["192.0.2.0/24"]}
    )

    assert response.status_code == 200
    event = only(Kind.PRIVILEGE_CHANGED)
    assert event.actor == alice
    assert event.address == ADDRESS
    assert event.detail["changes"] == {"ip_restrictions": ["192.0.2.0/24"]}


def test_revoking_a_privilege_writes_one_record(alice, granted):
    response = as_user(alice, REMOTE_ADDR=ADDRESS).delete(f"/privileges/{granted.pk}")

    assert response.status_code == 204
    event = only(Kind.PRIVILEGE_REVOKED)
    assert event.actor == alice
    assert event.address == ADDRESS
    assert event.detail["privilege"] == granted.pk


def test_creating_an_api_key_writes_one_record_without_the_key(alice):
    response = as_user(alice, REMOTE_ADDR=ADDRESS).post(
        "/api_keys", {"user_id": alice.pk, "label": "ci"}
    )

    event = only(Kind.API_KEY_CREATED)
    assert event.actor == alice
    assert event.address == ADDRESS
    assert event.detail == {
        "api_key": response.json()["id"],
        "label": "ci",
        "owner": "alice",
    }
    assert_no_secret(response.json()["api_key"])


def test_deleting_an_api_key_writes_one_record(alice):
    key, secret = make_api_key(alice, label="ci")
    AuditEvent.objects.all().delete()

    as_user(alice, REMOTE_ADDR=ADDRESS).delete(f"/api_keys/{key.pk}")

    event = only(Kind.API_KEY_DELETED)
    assert event.actor == alice
    assert event.address == ADDRESS
    assert event.detail["api_key"] == key.pk
    assert_no_secret(secret)


def test_a_cluster_admin_making_a_key_for_someone_is_the_actor():
    root = make_user("root")
    grant(root, "cluster_admin")
    bob = make_user("bob")

    as_user(root, REMOTE_ADDR=ADDRESS).post("/api_keys", {"user_id": bob.pk})

    event = only(Kind.API_KEY_CREATED)
    assert event.actor == root
    assert event.detail["owner"] == "bob"


def test_a_rejected_second_factor_writes_one_record(alice):
    TOTPDevice.objects.create(user=alice, name="phone", confirmed=True)
    AuditEvent.objects.all().delete()

    Api(REMOTE_ADDR=ADDRESS).post(
        "/session", {"username": "alice", "password": PASSWORD, "2fa": "not-a-code"}
    )

    event = only(Kind.OTP_REJECTED)
    assert event.actor == alice
    assert event.address == ADDRESS
    assert not AuditEvent.objects.exclude(kind=Kind.OTP_REJECTED).exists()
