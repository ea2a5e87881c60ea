"""Every endpoint, method and persona, and privilege conditions, in two tables.

The world: account `acme` (groups `default` and `staging`, machine `web` in
`default`, `db` in `staging`) and account `bravo`. Each persona holds one
privilege in acme; the outsider is account admin of bravo only.
"""

import os
import re
import string
from binascii import unhexlify
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import pytest
from django.utils import timezone
from yubiotp.modhex import modhex
from yubiotp.otp import YubiKey, encode_otp

from accounts import actions
from accounts.models import LocalYubikey, User
from accounts.otp import verify_yubikey_otp
from privileges.models import Privilege
from tests.factories import (
    PASSWORD,
    Api,
    as_user,
    basic,
    grant,
    make_account,
    make_user,
    make_vm,
)

pytestmark = pytest.mark.django_db

PERSONAS = (
    "cluster_admin",
    "account_admin",
    "group_admin",
    "vm_admin",
    "vm_console",
    "outsider",
    "anonymous",
)
USERNAMES = {
    "cluster_admin": "clusteradmin",
    "account_admin": "accountadmin",
    "group_admin": "groupadmin",
    "vm_admin": "vmadmin",
    "vm_console": "vmconsole",
    "outsider": "outsider",
}

# What a path segment or body value holds when it names nothing at all.
MISSING_NAME = "nosuch"
MISSING_ID = 987654321


@dataclass
class World:
    users: dict[str, User]
    values: dict[str, Any]
    missing: dict[str, Any]


@pytest.fixture
def world() -> World:
    users = {persona: make_user(name) for persona, name in USERNAMES.items()}
    newbie = make_user("newbie")
    acme = make_account("acme")
    bravo = make_account("bravo")
    default = acme.groups.get(name="default")
    staging = acme.groups.create(name="staging")
    web = make_vm(default, "web")
    db = make_vm(staging, "db")

    grant(users["cluster_admin"], "cluster_admin")
    admin_priv = grant(users["account_admin"], "account_admin", acme)
    grant(users["group_admin"], "group_admin", staging)
    grant(users["vm_admin"], "vm_admin", web)
    console_priv = grant(users["vm_console"], "vm_console", web)
    grant(users["outsider"], "account_admin", bravo)
    actions.create_api_key(
        users["vm_console"], label="consolekey", expires_at=None, actor=newbie
    )

    values = {
        "A": acme.name,
        "A_id": acme.id,
        "B": bravo.name,
        "B_id": bravo.id,
        "default": default.name,
        "default_id": default.id,
        "g2": staging.name,
        "g2_id": staging.id,
        "vm1_id": web.id,
        "vm2_id": db.id,
        "console": users["vm_console"].username,
        "newbie": newbie.username,
        "console_priv": console_priv.id,
        "admin_priv": admin_priv.id,
        "console_key": "consolekey",
        "definition": "keymaps",
    }
    missing = {
        key: MISSING_ID if isinstance(value, int) else MISSING_NAME
        for key, value in values.items()
    }
    return World(users=users, values=values, missing=missing)


def client_for(world: World, persona: str, **headers) -> Api:
    if persona == "anonymous":
        return Api(**headers)
    return as_user(world.users[persona], **headers)


def personal_values(world: World, persona: str) -> dict:
    """Placeholders that depend on who asks: their username and a session."""
    if persona == "anonymous":
        return {"me": MISSING_NAME, "token": MISSING_NAME}
    user = world.users[persona]
    token = actions.create_session(
        user, validity=600, factors=["password"], yubikey_verified_at=None
    )
    return {"me": user.username, "token": token}


def fill(template: str, values: dict) -> str:
    return template.format_map(values)


def fill_body(body, values: dict):
    """A body value written as "{name}" becomes that placeholder's value."""
    if body is None:
        return None
    filled = {}
    for key, value in body.items():
        match = isinstance(value, str) and re.fullmatch(r"\{(\w+)\}", value)
        filled[key] = values[match.group(1)] if match else value
    return filled


def last_placeholder(template: str) -> str | None:
    names = [name for _, name, _, _ in string.Formatter().parse(template) if name]
    return names[-1] if names else None


def call(api: Api, method: str, path: str, body):
    if method in ("GET", "DELETE"):
        return getattr(api, method.lower())(path)
    return getattr(api, method.lower())(path, body)


def content(response):
    if response.get("Content-Type", "").startswith("application/json"):
        return response.json()
    return response.content


@dataclass
class Row:
    method: str
    path: str
    body: dict | None
    # One status per persona, in the order of PERSONAS.
    expected: tuple[int, ...]


ALL_SIGNED_IN = (200, 200, 200, 200, 200, 200, 401)
NOT_ALLOWED = (405, 405, 405, 405, 405, 405, 401)
NEW_USER = {"username": "newcomer", "email": "n@example.org", "password": PASSWORD}

# fmt: off
ROWS = [
    # method, path, body,                                       expected:
    #                                 cluster account group vm_adm console outsider anon
    # The auth server: credentials travel in the body, tokens in the path.
    Row("POST", "/session", {"username": "{me}", "password": PASSWORD},
        (200, 200, 200, 200, 200, 200, 403)),
    Row("GET", "/session/{token}", None, (200, 200, 200, 200, 200, 200, 404)),
    Row("POST", "/session/{token}", {"username": "{newbie}"},
        (200, 403, 403, 403, 403, 403, 404)),
    Row("DELETE", "/session/{token}", None, (204, 204, 204, 204, 204, 204, 404)),
    # Users.
    Row("GET", "/users", None, ALL_SIGNED_IN),
    Row("POST", "/users", NEW_USER, (201, 403, 403, 403, 403, 403, 201)),
    Row("GET", "/users/{console}", None, (200, 200, 404, 200, 200, 404, 401)),
    Row("PUT", "/users/{console}", {"authorized_keys": ""},
        (200, 403, 404, 403, 200, 404, 401)),
    Row("DELETE", "/users/{console}", None, (204, 403, 404, 403, 204, 404, 401)),
    Row("POST", "/users/{console}", {}, NOT_ALLOWED),
    Row("GET", "/users/{console}/privileges", None,
        (200, 200, 404, 200, 200, 404, 401)),
    Row("POST", "/users/{newbie}/privileges",
        {"level": "vm_console", "virtual_machine_id": "{vm1_id}"},
        (201, 201, 400, 201, 403, 400, 401)),
    Row("POST", "/users/{newbie}/privileges",
        {"level": "group_admin", "group_id": "{g2_id}"},
        (201, 201, 403, 400, 400, 400, 401)),
    Row("POST", "/users/{newbie}/privileges",
        {"level": "account_admin", "account_id": "{A_id}"},
        (201, 403, 403, 403, 403, 400, 401)),
    Row("POST", "/users/{newbie}/privileges", {"level": "cluster_admin"},
        (403, 403, 403, 403, 403, 403, 401)),
    Row("PUT", "/users/{newbie}/privileges", {}, NOT_ALLOWED),
    # API keys.
    Row("GET", "/api_keys", None, ALL_SIGNED_IN),
    Row("GET", "/api_keys?view=overview", None, ALL_SIGNED_IN),
    Row("POST", "/api_keys", {"label": "ci"}, (201, 201, 201, 201, 201, 201, 401)),
    Row("GET", "/api_keys/{console_key}", None, (200, 404, 404, 404, 200, 404, 401)),
    Row("DELETE", "/api_keys/{console_key}", None,
        (204, 404, 404, 404, 204, 404, 401)),
    Row("POST", "/api_keys/{console_key}", {}, NOT_ALLOWED),
    Row("PUT", "/api_keys/{console_key}", {}, NOT_ALLOWED),
    # Privileges.
    Row("GET", "/privileges", None, ALL_SIGNED_IN),
    Row("GET", "/privileges?user_id={console}", None,
        (200, 200, 404, 200, 200, 404, 401)),
    Row("POST", "/privileges", {}, NOT_ALLOWED),
    Row("GET", "/privileges/{console_priv}", None,
        (200, 200, 404, 200, 200, 404, 401)),
    Row("PUT", "/privileges/{console_priv}", {"yubikey_otp_max_age": 600},
        (200, 200, 404, 200, 403, 404, 401)),
    Row("DELETE", "/privileges/{console_priv}", None,
        (204, 204, 404, 204, 403, 404, 401)),
    Row("GET", "/privileges/{admin_priv}", None, (200, 200, 404, 404, 404, 404, 401)),
    Row("PUT", "/privileges/{admin_priv}", {"yubikey_required": True},
        (200, 403, 404, 404, 404, 404, 401)),
    Row("DELETE", "/privileges/{admin_priv}", None,
        (204, 403, 404, 404, 404, 404, 401)),
    # Accounts.
    Row("GET", "/accounts", None, ALL_SIGNED_IN),
    Row("GET", "/accounts?view=overview&include_deleted=true", None, ALL_SIGNED_IN),
    Row("POST", "/accounts", {"name": "newco"}, (201, 201, 201, 201, 201, 201, 401)),
    Row("PUT", "/accounts", {}, NOT_ALLOWED),
    Row("GET", "/accounts/{A}", None, (200, 200, 200, 200, 200, 404, 401)),
    Row("GET", "/accounts/{A_id}", None, (200, 200, 200, 200, 200, 404, 401)),
    Row("GET", "/accounts/{A}?view=overview&include_deleted=true", None,
        (200, 200, 200, 200, 200, 404, 401)),
    Row("PUT", "/accounts/{A}", {"require_second_factor": True},
        (200, 200, 403, 403, 403, 404, 401)),
    Row("PUT", "/accounts/{A}", {"suspended": True},
        (200, 403, 403, 403, 403, 404, 401)),
    Row("DELETE", "/accounts/{A}", None, (400, 403, 403, 403, 403, 404, 401)),
    Row("DELETE", "/accounts/{B}", None, (204, 404, 404, 404, 404, 403, 401)),
    Row("POST", "/accounts/{A}", {}, NOT_ALLOWED),
    Row("GET", "/accounts/{A}/privileges", None, (200, 200, 403, 403, 403, 404, 401)),
    # Groups inside an account.
    Row("GET", "/accounts/{A}/groups", None, (200, 200, 200, 200, 200, 404, 401)),
    Row("POST", "/accounts/{A}/groups", {"name": "g3"},
        (201, 201, 403, 403, 403, 404, 401)),
    Row("GET", "/accounts/{A}/groups/{default}", None,
        (200, 200, 404, 200, 200, 404, 401)),
    Row("GET", "/accounts/{A}/groups/{g2}?view=overview&include_deleted=true", None,
        (200, 200, 200, 404, 404, 404, 401)),
    Row("GET", "/accounts/{A}/groups/{g2_id}", None,
        (200, 200, 200, 404, 404, 404, 401)),
    Row("PUT", "/accounts/{A}/groups/{g2}", {"name": "renamed"},
        (200, 200, 200, 404, 404, 404, 401)),
    Row("PUT", "/accounts/{A}/groups/{g2}", {"vlan_num": 12},
        (200, 403, 403, 404, 404, 404, 401)),
    Row("PUT", "/accounts/{A}/groups/{default}", {"name": "renamed"},
        (400, 400, 404, 403, 403, 404, 401)),
    Row("DELETE", "/accounts/{A}/groups/{g2}", None,
        (400, 400, 403, 404, 404, 404, 401)),
    Row("DELETE", "/accounts/{A}/groups/{default}", None,
        (400, 400, 404, 403, 403, 404, 401)),
    Row("POST", "/accounts/{A}/groups/{g2}", {}, NOT_ALLOWED),
    Row("GET", "/accounts/{A}/groups/{default}/privileges", None,
        (200, 200, 404, 403, 403, 404, 401)),
    Row("GET", "/accounts/{A}/groups/{g2}/privileges", None,
        (200, 200, 200, 404, 404, 404, 401)),
    # Groups, the read-only non-nested endpoints.
    Row("GET", "/groups", None, ALL_SIGNED_IN),
    Row("GET", "/groups?account_id={A}", None, (200, 200, 200, 200, 200, 404, 401)),
    Row("GET", "/groups?account_id={A_id}&view=overview", None,
        (200, 200, 200, 200, 200, 404, 401)),
    Row("POST", "/groups", {"name": "g3"}, NOT_ALLOWED),
    Row("GET", "/groups/{default_id}", None, (200, 200, 404, 200, 200, 404, 401)),
    Row("GET", "/groups/{g2_id}?view=overview", None,
        (200, 200, 200, 404, 404, 404, 401)),
    Row("PUT", "/groups/{g2_id}", {"name": "renamed"}, NOT_ALLOWED),
    Row("DELETE", "/groups/{g2_id}", None, NOT_ALLOWED),
    # Definitions: readable by anyone, changed by cluster admins.
    Row("GET", "/definitions", None, (200, 200, 200, 200, 200, 200, 200)),
    Row("POST", "/definitions", {}, (405, 405, 405, 405, 405, 405, 405)),
    Row("GET", "/definitions/{definition}", None, (200, 200, 200, 200, 200, 200, 200)),
    Row("PUT", "/definitions/{definition}", {"data": ["en-gb", "de"]},
        (200, 403, 403, 403, 403, 403, 401)),
]
# fmt: on


def matrix_cases():
    for row in ROWS:
        for persona, status in zip(PERSONAS, row.expected, strict=True):
            case_id = f"{row.method} {row.path} as {persona} -> {status}"
            yield pytest.param(row, persona, status, id=case_id)


@pytest.mark.parametrize(("row", "persona", "status"), list(matrix_cases()))
def test_the_authorization_matrix(world, row, persona, status):
    values = {**world.values, **personal_values(world, persona)}
    api = client_for(world, persona)

    response = call(
        api, row.method, fill(row.path, values), fill_body(row.body, values)
    )

    assert response.status_code == status, content(response)
    if status == 401:
        assert response.has_header("WWW-Authenticate")
    if status == 404 or (persona == "outsider" and status >= 400):
        assert_no_leak(world, api, row, values, response)


# Placeholders that name the caller's own things, not account acme's.
OWN_PLACEHOLDERS = {"me", "token", "B", "B_id"}


def assert_no_leak(world, api, row, values, response):
    """The same request naming something that does not exist answers the same."""
    name = last_placeholder(row.path)
    if name is None or name in OWN_PLACEHOLDERS:
        return
    absent = {**values, name: world.missing[name]}
    other = call(api, row.method, fill(row.path, absent), fill_body(row.body, absent))
    assert (other.status_code, content(other)) == (
        response.status_code,
        content(response),
    )


# Conditions ---------------------------------------------------------------

INSIDE = "192.0.2.10"
OUTSIDE = "198.51.100.7"
ALLOWED_NETWORKS = ["192.0.2.0/24"]


class SimulatedYubikey:
    """A YubiKey enrolled for `user`, pressed by calling `press()`."""

    def __init__(self, user: User):
        self.user = user
        self.device = LocalYubikey.objects.create(
            user=user,
            name="yubikey",
            confirmed=True,
            public_identity=modhex(os.urandom(6)).decode(),
        )
        self.key = YubiKey(uid=unhexlify(self.device.private_id), session=1)

    def press(self) -> str:
        token = encode_otp(
            self.key.generate(),
            self.device.bin_key,
            self.device.public_identity.encode(),
        )
        return token.decode()

    def verified_long_ago(self, otp: str, seconds: int) -> None:
        """Verify `otp` now, then move that verification into the past."""
        verify_yubikey_otp(self.user, otp)
        LocalYubikey.objects.filter(pk=self.device.pk).update(
            last_verified_at=timezone.now() - timedelta(seconds=seconds)
        )


def prepare_condition(world: World, persona: str, condition: str) -> dict:
    """Put `condition` on the persona's privileges; return the request headers."""
    user = world.users[persona]
    privileges = Privilege.objects.filter(user=user)
    if condition.startswith("ip_"):
        privileges.update(ip_restrictions=ALLOWED_NETWORKS)
        return {"REMOTE_ADDR": INSIDE if condition == "ip_inside" else OUTSIDE}

    privileges.update(yubikey_required=True)
    key = SimulatedYubikey(user)
    if condition == "otp_missing":
        return {}
    if condition == "otp_fresh":
        return {"HTTP_X_YUBIKEY_OTP": key.press()}
    if condition == "otp_stale":
        otp = key.press()
        key.verified_long_ago(otp, seconds=900 + 60)
        return {"HTTP_X_YUBIKEY_OTP": otp}
    assert condition == "otp_replayed_old"
    older, newer = key.press(), key.press()
    verify_yubikey_otp(user, newer)
    return {"HTTP_X_YUBIKEY_OTP": older}


CONDITIONS = (
    "otp_fresh",
    "otp_stale",
    "otp_missing",
    "otp_replayed_old",
    "ip_inside",
    "ip_outside",
)


@dataclass
class ConditionRow:
    persona: str
    method: str
    path: str
    body: dict | None
    status: int  # without conditions
    reaches: bool  # whether the privilege reaches the object at all


# fmt: off
CONDITION_ROWS = [
    ConditionRow("cluster_admin", "GET", "/accounts/{B}", None, 200, True),
    ConditionRow("cluster_admin", "PUT", "/accounts/{A}", {"suspended": True},
                 200, True),
    ConditionRow("cluster_admin", "PUT", "/definitions/{definition}",
                 {"data": ["en-gb"]}, 200, True),
    ConditionRow("account_admin", "GET", "/accounts/{A}?view=overview", None,
                 200, True),
    ConditionRow("account_admin", "PUT", "/accounts/{A}",
                 {"require_second_factor": True}, 200, True),
    ConditionRow("account_admin", "GET", "/accounts/{A}/privileges", None, 200, True),
    ConditionRow("account_admin", "POST", "/accounts/{A}/groups", {"name": "g3"},
                 201, True),
    ConditionRow("account_admin", "GET", "/users/{console}", None, 200, True),
    ConditionRow("account_admin", "GET", "/privileges/{console_priv}", None,
                 200, True),
    ConditionRow("account_admin", "GET", "/privileges?user_id={console}", None,
                 200, True),
    ConditionRow("account_admin", "POST", "/users/{newbie}/privileges",
                 {"level": "vm_console", "virtual_machine_id": "{vm1_id}"}, 201, True),
    ConditionRow("account_admin", "GET", "/accounts/{B}", None, 404, False),
    ConditionRow("group_admin", "GET", "/accounts/{A}/groups/{g2}", None, 200, True),
    ConditionRow("group_admin", "GET", "/groups/{g2_id}", None, 200, True),
    ConditionRow("group_admin", "PUT", "/accounts/{A}/groups/{g2}",
                 {"name": "renamed"}, 200, True),
    ConditionRow("group_admin", "GET", "/accounts/{A}/groups/{default}", None,
                 404, False),
    ConditionRow("vm_admin", "GET", "/accounts/{A}/groups/{default}", None,
                 200, True),
    ConditionRow("vm_admin", "DELETE", "/privileges/{console_priv}", None,
                 204, True),
    ConditionRow("vm_admin", "GET", "/accounts/{A}/groups/{g2}", None, 404, False),
    ConditionRow("vm_console", "GET", "/accounts/{A}", None, 200, True),
    ConditionRow("vm_console", "GET", "/accounts/{B}", None, 404, False),
    ConditionRow("outsider", "GET", "/accounts/{B}", None, 200, True),
    ConditionRow("outsider", "GET", "/accounts/{A}", None, 404, False),
]
# fmt: on


def expected_under(condition: str, row: ConditionRow) -> tuple[int, str | None]:
    """The status, and a word the body must contain, under `condition`."""
    if condition in ("otp_fresh", "ip_inside"):
        return row.status, None
    if condition == "otp_replayed_old":
        return 401, None
    if not row.reaches:
        return 404, None
    return 403, "YubiKey" if condition.startswith("otp_") else "address"


def condition_cases():
    for row in CONDITION_ROWS:
        for condition in CONDITIONS:
            status, word = expected_under(condition, row)
            case_id = f"{row.persona} {row.method} {row.path} {condition} -> {status}"
            yield pytest.param(row, condition, status, word, id=case_id)


@pytest.mark.parametrize(
    ("row", "condition", "status", "word"), list(condition_cases())
)
def test_privilege_conditions(world, row, condition, status, word):
    headers = prepare_condition(world, row.persona, condition)
    api = client_for(world, row.persona, **headers)
    values = world.values

    response = call(
        api, row.method, fill(row.path, values), fill_body(row.body, values)
    )

    assert response.status_code == status, content(response)
    if word is not None:
        assert word in response.json()["detail"]
    if status == 401:
        assert response.has_header("WWW-Authenticate")
    if status == 404:
        assert_no_leak(world, api, row, values, response)


@pytest.mark.parametrize("condition", ["otp_missing", "otp_stale", "ip_outside"])
def test_lists_leave_out_what_only_inactive_privileges_reach(world, condition):
    headers = prepare_condition(world, "account_admin", condition)
    api = client_for(world, "account_admin", **headers)

    accounts = api.get("/accounts?view=overview").json()
    groups = api.get("/groups").json()
    privileges = api.get("/privileges").json()

    assert accounts == []
    assert groups == []
    # Their own privileges stay listed, so they can see what they lack.
    assert [p["account_name"] for p in privileges] == ["acme"]


def test_lists_show_what_active_privileges_reach(world):
    headers = prepare_condition(world, "account_admin", "otp_fresh")
    api = client_for(world, "account_admin", **headers)

    accounts = api.get("/accounts?view=overview").json()

    assert [a["name"] for a in accounts] == ["acme"]
    assert [g["name"] for g in accounts[0]["groups"]] == ["default", "staging"]


def test_the_outsider_never_sees_the_other_account_in_lists(world):
    api = client_for(world, "outsider")

    names = {a["name"] for a in api.get("/accounts?view=overview").json()}
    groups = {g["account_id"] for g in api.get("/groups").json()}
    users = {u["username"] for u in api.get("/users").json()}

    assert names == {"bravo"}
    assert groups == {world.values["B_id"]}
    assert users == {"outsider"}


def test_bad_credentials_answer_401_with_a_challenge(world):
    api = Api(basic(world.users["vm_console"].username, "not the password"))

    response = api.get("/accounts")

    assert response.status_code == 401
    assert response.has_header("WWW-Authenticate")


def test_a_django_superuser_holds_cluster_su(world):
    root = make_user("root", is_superuser=True)

    response = as_user(root).get(f"/accounts/{world.values['B']}")
    grant_admin = as_user(root).post(
        "/users/newbie/privileges", {"level": "cluster_admin"}
    )

    assert response.status_code == 200
    assert grant_admin.status_code == 201
