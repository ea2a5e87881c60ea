"""Bad input to users, API keys and accounts: 400 naming the field, no writes."""

import pytest

from accounts.models import Account, User
from tests.bad_input import (
    BAD_NAMES,
    RAW_BODIES,
    assert_raw_body_rejected,
    assert_rejected,
)
from tests.factories import PASSWORD, Api, as_user, grant, make_account, make_user

pytestmark = pytest.mark.django_db

NEW_USER = {"username": "alice", "email": "alice@example.org", "password": PASSWORD}
KEY = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOMqqnkVzrm0SdG6UOoqKLsabgH5C9okWi0dh2l9GKJl"


@pytest.fixture
def admin():
    user = make_user("root")
    grant(user, "cluster_admin")
    make_user("member")
    make_account("acme", owner=make_user("owner"))
    return as_user(user)


BAD_SIGNUPS = [
    *(("username", value) for value in (["alice"], None, "")),
    ("username", "1alice"),
    ("username", "al ice"),
    ("username", "al-ice"),
    ("username", "a" * 151),
    ("username", "member"),
    ("email", "not-an-email"),
    ("email", "a" * 250 + "@example.org"),
    ("email", ["alice@example.org"]),
    ("password", "short"),
    ("password", ""),
    ("password", ["x" * 20]),
    ("password", "x" * 257),
    ("authorized_keys", [KEY]),
    ("authorized_keys", "not a key"),
    ("authorized_keys", f"{KEY}\nssh-rsa AAAAnotbase64"),
    *(("account_name", value) for value in BAD_NAMES.values()),
    ("account_name", "acme"),
]


@pytest.mark.parametrize(("field", "value"), BAD_SIGNUPS)
def test_sign_up_rejects_a_bad_field(admin, field, value):
    assert_rejected(Api(), "POST", "/users", {**NEW_USER, field: value}, field)


@pytest.mark.parametrize("field", ["username", "email", "password"])
def test_sign_up_needs_each_required_field(admin, field):
    body = {k: v for k, v in NEW_USER.items() if k != field}

    assert_rejected(Api(), "POST", "/users", body, field)


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("password", "short"),
        ("password", ["x" * 20]),
        ("authorized_keys", [KEY]),
        ("authorized_keys", "ssh-rsa nope"),
        ("require_second_factor", "maybe"),
        ("require_second_factor", [True]),
        ("approved", "maybe"),
        ("approved", None),
    ],
)
def test_a_user_update_rejects_a_bad_field(admin, field, value):
    assert_rejected(admin, "PUT", "/users/member", {field: value}, field)


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("user_id", "abc"),
        ("user_id", 1.5),
        ("user_id", 987654321),
        ("label", "x" * 101),
        ("label", ["ci"]),
        ("expires_at", "tomorrow"),
        ("expires_at", ["2030-01-01T00:00:00Z"]),
    ],
)
def test_an_api_key_rejects_a_bad_field(admin, field, value):
    assert_rejected(admin, "POST", "/api_keys", {"label": "ci", field: value}, field)


@pytest.mark.parametrize("name", BAD_NAMES.values(), ids=BAD_NAMES.keys())
def test_a_new_account_rejects_a_bad_name(admin, name):
    assert_rejected(admin, "POST", "/accounts", {"name": name}, "name")


def test_a_new_account_needs_a_name(admin):
    assert_rejected(admin, "POST", "/accounts", {}, "name")


def test_a_new_account_needs_a_free_name(admin):
    assert_rejected(admin, "POST", "/accounts", {"name": "acme"}, "name")


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("suspended", "maybe"),
        ("suspended", None),
        ("suspended", [True]),
        ("require_second_factor", "maybe"),
        ("require_second_factor", {"on": True}),
    ],
)
def test_an_account_update_rejects_a_bad_field(admin, field, value):
    assert_rejected(admin, "PUT", "/accounts/acme", {field: value}, field)


WRITES = [
    ("POST", "/users"),
    ("PUT", "/users/member"),
    ("POST", "/api_keys"),
    ("POST", "/accounts"),
    ("PUT", "/accounts/acme"),
]


@pytest.mark.parametrize(("method", "path"), WRITES)
@pytest.mark.parametrize("raw", RAW_BODIES.values(), ids=RAW_BODIES.keys())
def test_a_body_that_is_not_a_json_object_is_rejected(admin, method, path, raw):
    assert_raw_body_rejected(admin, method, path, raw)


@pytest.mark.parametrize("raw", RAW_BODIES.values(), ids=RAW_BODIES.keys())
def test_a_sign_up_that_is_not_a_json_object_is_rejected(admin, raw):
    assert_raw_body_rejected(Api(), "POST", "/users", raw)


@pytest.mark.parametrize("raw", RAW_BODIES.values(), ids=RAW_BODIES.keys())
def test_a_session_request_that_is_not_a_json_object_is_rejected(admin, raw):
    response = Api().client.generic(
        "POST", "/session", raw, content_type="application/json"
    )

    assert response.status_code == 400
    assert b"Badly-formed parameters" in response.content


def test_unknown_fields_are_ignored(admin):
    signup = Api().post("/users", {**NEW_USER, "colour": "blue", "is_superuser": True})
    account = admin.post("/accounts", {"name": "newco", "colour": "blue"})
    change = admin.put("/accounts/newco", {"colour": "red", "suspended": True})

    assert signup.status_code == 201
    assert not User.objects.get(username="alice").is_superuser
    assert account.status_code == 201
    assert change.status_code == 200
    assert Account.objects.get(name="newco").suspended


@pytest.mark.parametrize(
    "path", ["/accounts/99999999999999999999", "/users/99999999999999999999"]
)
def test_an_id_out_of_range_is_not_found(admin, path):
    assert admin.get(path).status_code == 404
