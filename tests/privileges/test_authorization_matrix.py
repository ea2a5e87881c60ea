"""Every endpoint, method and persona, and privilege conditions, in two tables.

The persona table (ROWS) gives each persona's answer without conditions; the
answers under each condition (a fresh, stale, missing or replayed OTP; an
address inside or outside the allowed networks) are derived from it by one rule,
`under_condition`, for Basic sign-in, session tokens and the browser. The
hand-written CONDITION_ROWS check the rule.

The world: account `acme` (groups `default` and `staging`, machine `web` in
`default`, `db` in `staging`) and account `bravo`. Each persona holds one
privilege in acme; the outsider is account admin of bravo only.
"""

import os
import re
import string
from binascii import unhexlify
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import pytest
from django.db import transaction
from django.utils import timezone
from django_otp.plugins.otp_static.models import StaticDevice
from yubiotp.modhex import modhex
from yubiotp.otp import YubiKey, encode_otp

from accounts import actions, signin
from accounts.models import LocalYubikey, SessionToken, User
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


def build_world() -> World:
    """Build the world described at the top of this module."""
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


@pytest.fixture(scope="module")
def shared_world(django_db_setup, django_db_blocker):
    """The world, built once for the module inside a transaction that is rolled
    back at its end; every test runs in a savepoint inside it (pytest-django's
    `db`), so what one test changes is gone before the next."""
    with django_db_blocker.unblock(), transaction.atomic():
        yield build_world()
        transaction.set_rollback(True)


@pytest.fixture
def world(shared_world, db) -> World:
    return shared_world


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
    # The placeholder naming what the answer hinges on, when it is neither the
    # body's placeholder nor the path's last one (see `target_of`).
    target: str | None = None
    # Lists: the key of an item that names its owner ("" when nothing listed
    # is anyone's own). None for everything that is not a list.
    owner_key: str | None = None

    def status_of(self, persona: str) -> int:
        return self.expected[PERSONAS.index(persona)]


ALL_SIGNED_IN = (200, 200, 200, 200, 200, 200, 401)
NOT_ALLOWED = (405, 405, 405, 405, 405, 405, 401)
NEW_USER = {"username": "newcomer", "email": "n@example.org", "password": PASSWORD}
# Targets that are no placeholder: the whole cluster; nothing at all (an answer
# that hinges on no privilege); nothing, and no credentials read either.
CLUSTER = "cluster"
OPEN = "open"
PUBLIC = "public"

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
    Row("GET", "/users", None, ALL_SIGNED_IN, owner_key="username"),
    Row("POST", "/users", NEW_USER, (201, 403, 403, 403, 403, 403, 201),
        target=CLUSTER),
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
    Row("GET", "/api_keys", None, ALL_SIGNED_IN, owner_key="username"),
    Row("GET", "/api_keys?view=overview", None, ALL_SIGNED_IN,
        owner_key="username"),
    Row("POST", "/api_keys", {"label": "ci"}, (201, 201, 201, 201, 201, 201, 401),
        target=OPEN),
    Row("GET", "/api_keys/{console_key}", None, (200, 404, 404, 404, 200, 404, 401)),
    Row("DELETE", "/api_keys/{console_key}", None,
        (204, 404, 404, 404, 204, 404, 401)),
    Row("POST", "/api_keys/{console_key}", {}, NOT_ALLOWED),
    Row("PUT", "/api_keys/{console_key}", {}, NOT_ALLOWED),
    # Privileges.
    Row("GET", "/privileges", None, ALL_SIGNED_IN, owner_key="username"),
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
    Row("GET", "/accounts", None, ALL_SIGNED_IN, owner_key=""),
    Row("GET", "/accounts?view=overview&include_deleted=true", None, ALL_SIGNED_IN,
        owner_key=""),
    Row("POST", "/accounts", {"name": "newco"}, (201, 201, 201, 201, 201, 201, 401),
        target=OPEN),
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
    Row("GET", "/groups", None, ALL_SIGNED_IN, owner_key=""),
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
    Row("GET", "/definitions", None, (200, 200, 200, 200, 200, 200, 200),
        target=PUBLIC),
    Row("POST", "/definitions", {}, (405, 405, 405, 405, 405, 405, 405)),
    Row("GET", "/definitions/{definition}", None, (200, 200, 200, 200, 200, 200, 200)),
    Row("PUT", "/definitions/{definition}", {"data": ["en-gb", "de"]},
        (200, 403, 403, 403, 403, 403, 401), target=CLUSTER),
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


# Conditions on every row ----------------------------------------------------
#
# The hand-written CONDITION_ROWS above stay as a cross-check of the rule below,
# which derives the answer under each condition for every row and persona of
# the persona table from the answer without conditions.

# What each persona reaches through its one privilege, by placeholder name.
_ACME = {"A", "A_id", "default", "default_id", "g2", "g2_id", "vm1_id", "vm2_id"}
REACHES = {
    "cluster_admin": {
        *_ACME, "B", "B_id", "console", "console_priv", "admin_priv",
        "console_key", CLUSTER,
    },
    "account_admin": {*_ACME, "console", "console_priv"},
    "group_admin": {"A", "A_id", "g2", "g2_id", "vm2_id"},
    "vm_admin": {"A", "A_id", "default", "default_id", "vm1_id", "console",
                 "console_priv"},
    "vm_console": {"A", "A_id", "default", "default_id", "vm1_id"},
    "outsider": {"B", "B_id"},
}  # fmt: skip
# What a persona reaches as itself, whatever its privileges: its own user, its
# own privileges and API keys.
OWN = {
    "vm_console": {"console", "console_priv", "console_key"},
    "account_admin": {"admin_priv"},
}
UNMET_WORD = {"otp_stale": "YubiKey", "otp_missing": "YubiKey", "ip_outside": "address"}
# Refusals that still show the object exists and the privilege reaches it.
ISSUES = (400, 403, 409)


def target_of(row: Row) -> str:
    """The placeholder naming what the row's answer hinges on: set on the row,
    else the body's placeholder (a grant's target), else the path's last."""
    if row.target is not None:
        return row.target
    for value in (row.body or {}).values():
        match = isinstance(value, str) and re.fullmatch(r"\{(\w+)\}", value)
        if match:
            return match.group(1)
    return last_placeholder(row.path) or OPEN


@dataclass(frozen=True)
class Expect:
    status: int
    word: str | None = None  # a word the body's `detail` must contain
    only_own: bool = False  # a list keeps only the caller's own items


def under_condition(row: Row, persona: str, condition: str) -> Expect:
    """What `persona` gets for `row` when its privileges carry `condition`.

    - A fresh OTP, or an address inside the allowed networks, or an endpoint
      that reads no credentials at all: as without the condition.
    - A replayed OTP older than the newest verified one: 401, whatever the
      endpoint, since signing in itself fails.
    - A stale or missing OTP, or an address outside: privileges whose condition
      fails count for nothing, so
      - 404 stays 404 (the outsider learns nothing more), 405 stays 405;
      - what the persona reaches as itself, or what needs no privilege,
        answers as without the condition;
      - a list answers 200 with only the caller's own items;
      - 2xx, 400, 403 or 409 on what only the privilege reaches becomes 403
        naming the condition (YubiKey or address);
      - anything else (a 400 or 403 about what the privilege does not reach
        either) stays as it was.
    """
    status = row.status_of(persona)
    if condition in ("otp_fresh", "ip_inside") or row.target == PUBLIC:
        return Expect(status)
    if condition == "otp_replayed_old":
        return Expect(401)
    if status in (404, 405):
        return Expect(status)
    if row.owner_key is not None:
        return Expect(200, only_own=True)
    target = target_of(row)
    if target == OPEN or target in OWN.get(persona, ()):
        return Expect(status)
    if target in REACHES[persona] and (200 <= status < 300 or status in ISSUES):
        return Expect(403, UNMET_WORD[condition])
    return Expect(status)


def test_the_reach_table_agrees_with_the_persona_table():
    """A persona never gets 404 for what REACHES says it reaches."""
    for row in ROWS:
        for persona in PERSONAS[:-1]:
            if target_of(row) in REACHES[persona] | OWN.get(persona, set()):
                assert row.status_of(persona) != 404, (row, persona)


def test_the_rule_agrees_with_the_hand_written_condition_rows():
    by_request = {(row.method, row.path): row for row in ROWS}
    compared = 0
    for hand in CONDITION_ROWS:
        row = by_request.get((hand.method, hand.path))
        if row is None or row.status_of(hand.persona) != hand.status:
            continue
        for condition in CONDITIONS:
            derived = under_condition(row, hand.persona, condition)
            assert (derived.status, derived.word) == expected_under(condition, hand)
        compared += 1
    assert compared >= 10


@contextmanager
def rolled_back():
    """Whatever happens inside is undone: each condition starts afresh."""
    with transaction.atomic():
        yield
        transaction.set_rollback(True)


def item_ids(response) -> list:
    return [item["id"] for item in response.json()]


def own_ids(baseline, row: Row, username: str) -> list:
    if not row.owner_key:
        return []
    return [item["id"] for item in baseline.json() if item[row.owner_key] == username]


def check(world, api, row, values, expect: Expect, baseline) -> None:
    response = call(
        api, row.method, fill(row.path, values), fill_body(row.body, values)
    )
    assert response.status_code == expect.status, content(response)
    if expect.word is not None:
        assert expect.word in response.json()["detail"]
    if expect.status == 401:
        assert response.has_header("WWW-Authenticate")
    if expect.status == 404:
        assert_no_leak(world, api, row, values, response)
    if baseline is not None and expect.status == 200:
        if expect.only_own:
            wanted = own_ids(baseline, row, values["me"])
        else:
            wanted = item_ids(baseline)
        assert item_ids(response) == wanted


def checked(failures: list, label: str, check_one) -> None:
    """Run `check_one` undone afterwards, noting a failure under `label`."""
    try:
        with rolled_back():
            check_one()
    except AssertionError as failure:
        failures.append(f"{label}: {failure}")


UNMET = ("otp_stale", "otp_missing", "ip_outside")


def condition_rows(personas=PERSONAS[:-1]):
    """The persona table's rows and personas the conditions apply to, with the
    conditions to try: all six where the persona reaches the object; only the
    unmet ones where it gets 404 (the others answer as the persona table and as
    any failed sign-in do), to show that they leak nothing either. Not the auth
    server's rows (their credentials travel in the body or the path, not in
    the headers conditioned here), nor 405 (answered before any lookup)."""
    for row in ROWS:
        if row.path.startswith("/session"):
            continue
        for persona in personas:
            status = row.status_of(persona)
            if status != 405:
                yield row, persona, UNMET if status == 404 else CONDITIONS


def baseline_of(world, row, persona, values):
    """A list as the persona sees it without conditions."""
    if row.owner_key is None:
        return None
    response = client_for(world, persona).get(fill(row.path, values))
    assert response.status_code == 200
    return response


@pytest.mark.parametrize(
    ("row", "persona", "conditions"),
    [
        pytest.param(
            row, persona, conditions, id=f"{row.method} {row.path} as {persona}"
        )
        for row, persona, conditions in condition_rows()
    ],
)
def test_every_row_under_every_condition(world, row, persona, conditions):
    values = {**world.values, "me": world.users[persona].username}
    baseline = baseline_of(world, row, persona, values)
    failures = []

    for condition in conditions:
        expect = under_condition(row, persona, condition)

        def check_one(condition=condition, expect=expect):
            headers = prepare_condition(world, persona, condition)
            api = client_for(world, persona, **headers)
            check(world, api, row, values, expect, baseline)

        checked(failures, condition, check_one)

    assert not failures, "\n".join(failures)


# Session tokens and the browser ---------------------------------------------
#
# The same rule, for the account admin signed in the two other ways a person
# signs in: a session token from POST /session (`yubikey` carrying the OTP),
# and the panel's browser session (/panel/login, then the OTP as the code).

STALE = timedelta(seconds=900 + 60)


def new_session(headers: dict, user: User, **fields) -> str:
    response = Api(**headers).post(
        "/session", {"username": user.username, "password": PASSWORD, **fields}
    )
    assert response.status_code == 200, response.content
    return response.content.decode()


def session_token_client(world: World, condition: str) -> Api:
    """A session token of the account admin, whose privileges carry
    `condition`; the old OTP of `otp_replayed_old` is sent to step it up."""
    user = world.users["account_admin"]
    privileges = Privilege.objects.filter(user=user)
    if condition.startswith("ip_"):
        privileges.update(ip_restrictions=ALLOWED_NETWORKS)
        token = new_session({"REMOTE_ADDR": INSIDE}, user)
        address = INSIDE if condition == "ip_inside" else OUTSIDE
        return Api(f"Bearer {token}", REMOTE_ADDR=address)
    privileges.update(yubikey_required=True)
    key = SimulatedYubikey(user)
    if condition == "otp_missing":
        return Api(f"Bearer {new_session({}, user)}")
    if condition == "otp_replayed_old":
        older, newer = key.press(), key.press()
        token = new_session({}, user, yubikey=newer)
        refused = Api().post(
            "/session",
            {"username": user.username, "password": PASSWORD, "yubikey": older},
        )
        assert refused.status_code == 403
        return Api(f"Bearer {token}", HTTP_X_YUBIKEY_OTP=older)
    token = new_session({}, user, yubikey=key.press())
    if condition == "otp_stale":
        SessionToken.objects.filter(user=user).update(
            yubikey_verified_at=timezone.now() - STALE
        )
    return Api(f"Bearer {token}")


def browser_sign_in(api: Api, user: User, code: str) -> bool:
    """Sign in through the panel's two steps; whether it worked."""
    credentials = {"username": user.username, "password": PASSWORD}
    first = api.client.post("/panel/login", credentials, **api.headers)
    assert first.status_code == 302, first.content
    api.client.post("/panel/login/code", {"code": code}, **api.headers)
    return "_auth_user_id" in api.client.session


def browser_client(world: World, condition: str) -> Api:
    """The account admin's browser, signed in with the OTP (or, for
    `otp_missing`, a recovery code) while their privileges carry `condition`;
    with `otp_replayed_old` the sign-in is refused and the browser stays
    anonymous."""
    user = world.users["account_admin"]
    privileges = Privilege.objects.filter(user=user)
    key = SimulatedYubikey(user)
    if condition.startswith("ip_"):
        privileges.update(ip_restrictions=ALLOWED_NETWORKS)
        api = Api(REMOTE_ADDR=INSIDE)
        assert browser_sign_in(api, user, key.press())
        api.headers["REMOTE_ADDR"] = INSIDE if condition == "ip_inside" else OUTSIDE
        return api
    privileges.update(yubikey_required=True)
    api = Api()
    if condition == "otp_missing":
        device = StaticDevice.objects.create(user=user, name="recovery")
        device.token_set.create(token="recovery1")
        assert browser_sign_in(api, user, "recovery1")
    elif condition == "otp_replayed_old":
        older, newer = key.press(), key.press()
        verify_yubikey_otp(user, newer)
        assert not browser_sign_in(api, user, older)
    else:
        assert browser_sign_in(api, user, key.press())
    if condition == "otp_stale":
        session = api.client.session
        verified = timezone.now() - STALE
        session[signin.SESSION_YUBIKEY_AT] = verified.isoformat()
        session.save()
    return api


SIGN_INS = {"session_token": session_token_client, "browser": browser_client}


@pytest.mark.parametrize("condition", CONDITIONS)
@pytest.mark.parametrize("sign_in", SIGN_INS)
def test_signed_in_sessions_under_every_condition(world, sign_in, condition):
    persona = "account_admin"
    values = {**world.values, "me": world.users[persona].username}
    cases = [
        (row, baseline_of(world, row, persona, values))
        for row, _, conditions in condition_rows(personas=(persona,))
        if condition in conditions
    ]
    api = SIGN_INS[sign_in](world, condition)
    failures = []

    for row, baseline in cases:
        expect = under_condition(row, persona, condition)
        if sign_in == "browser" and condition == "otp_replayed_old":
            # The refused browser is nobody: it gets what anyone gets.
            expect = Expect(row.status_of("anonymous"))

        def check_one(row=row, expect=expect, baseline=baseline):
            check(world, api, row, values, expect, baseline)

        checked(failures, f"{row.method} {row.path}", check_one)

    assert len(cases) > 40
    assert not failures, "\n".join(failures)
