"""Malformed input answers 4xx, never 500: odd digits and NUL bytes in paths,
deeply nested JSON, broken credentials and forwarded addresses."""

import base64
import ipaddress
import json
import logging

import pytest
from django.test import Client

from groups.models import Group
from tests.factories import PASSWORD, Api, as_user, basic, make_account, make_user

pytestmark = pytest.mark.django_db

SUPERSCRIPT_TWO = "\u00b2"  # str.isdigit() accepts it; int() does not
DEEP = "[" * 5000 + "]" * 5000  # deeper than Python's JSON decoder can go


@pytest.fixture
def alice():
    user = make_user("alice")
    make_account("alpha", owner=user)
    return user


def client() -> Client:
    return Client(raise_request_exception=False)


@pytest.mark.parametrize(
    "path",
    [
        "/accounts/%C2%B2",
        "/groups/%C2%B2",
        "/virtual_machines/%C2%B2",
        "/operations/%C2%B2",
        "/privileges/%C2%B2",
        "/discs/%C2%B2",
        "/users/%C2%B2",
        "/api_keys/%C2%B2",
        "/accounts/alpha/groups/%C2%B2",
        "/accounts/alpha/groups/default/virtual_machines/%C2%B2",
        "/accounts/%D9%A1",  # an Arabic-Indic digit one
    ],
)
def test_it_answers_404_for_non_ascii_digits_in_path_ids(alice, path):
    response = client().get(path, HTTP_AUTHORIZATION=basic("alice"))

    assert response.status_code == 404, (path, response.status_code)


@pytest.mark.parametrize(
    "path",
    [
        "/groups/99999999999999999999",
        "/virtual_machines/99999999999999999999",
        "/operations/99999999999999999999",
        "/privileges/99999999999999999999",
        "/discs/99999999999999999999",
        "/accounts/99999999999999999999",
        "/users/99999999999999999999",
    ],
)
def test_it_answers_404_for_ids_beyond_bigint(alice, path):
    response = client().get(path, HTTP_AUTHORIZATION=basic("alice"))

    assert response.status_code == 404, (path, response.status_code)


def test_it_refuses_ids_beyond_bigint_in_bodies(alice):
    make_user("bob")
    huge = 99999999999999999999
    api = Client(raise_request_exception=False, HTTP_AUTHORIZATION=basic("alice"))

    grant = api.post(
        "/users/bob/privileges",
        {"level": "vm_admin", "virtual_machine_id": huge},
        content_type="application/json",
    )
    swap = api.post(
        "/ips/swap_virtual_machine_ips",
        {"virtual_machine_1_id": huge, "virtual_machine_2_id": 1},
        content_type="application/json",
    )

    assert grant.status_code in (400, 404)
    assert swap.status_code in (400, 404)


def test_it_refuses_a_session_validity_in_non_ascii_digits(alice):
    body = {"username": "alice", "password": PASSWORD, "validity": SUPERSCRIPT_TWO}

    response = client().post("/session", body, content_type="application/json")

    assert response.status_code == 400
    assert "validity" in response.content.decode()


def test_it_answers_400_for_deeply_nested_json_on_the_api(alice):
    response = client().post(
        "/accounts",
        data=DEEP,
        content_type="application/json",
        HTTP_AUTHORIZATION=basic("alice"),
    )

    assert response.status_code == 400
    assert "nested too deeply" in response.json()["detail"]


def test_it_answers_400_for_deeply_nested_json_on_session(alice):
    response = client().post("/session", data=DEEP, content_type="application/json")

    assert response.status_code == 400
    assert "Badly-formed parameters" in response.content.decode()


def test_it_answers_400_for_bad_utf8_and_wrong_types(alice):
    make_user("bob")
    auth = {"HTTP_AUTHORIZATION": basic("alice")}
    as_json = {"content_type": "application/json"}

    on_api = client().post("/accounts", data=b"\xff\xfe{", **as_json, **auth)
    wrong_type = client().post(
        "/users/bob/privileges", data=json.dumps({"level": ["x"]}), **as_json, **auth
    )
    on_session = client().post("/session", data=b"\xff\xfe{", **as_json)

    assert on_api.status_code == wrong_type.status_code == 400
    assert on_session.status_code == 400


@pytest.mark.parametrize(
    "path",
    [
        "/accounts/alpha%00",
        "/users/alice%00",
        "/accounts/alpha/groups/def%00ault",
        "/api_keys/x%00",
        "/ips/1.2.3.4%00",
        "/panel/accounts/alpha%00/",
    ],
)
def test_it_answers_404_for_nul_bytes_in_paths(alice, path):
    response = client().get(path, HTTP_AUTHORIZATION=basic("alice"))

    assert response.status_code == 404, (path, response.status_code)


def test_it_answers_404_for_other_unicode_in_path_names(alice):
    for path in ["/accounts/br%C3%A4vo", "/ips/%C2%B2", "/users/b%C3%B6b"]:
        response = client().get(path, HTTP_AUTHORIZATION=basic("alice"))

        assert response.status_code == 404, (path, response.status_code)


def test_it_treats_a_nul_in_a_basic_username_as_bad_credentials(alice):
    raw = b"al\x00ice:" + PASSWORD.encode()
    header = "Basic " + base64.b64encode(raw).decode()

    response = client().get("/accounts", HTTP_AUTHORIZATION=header)

    assert response.status_code == 401
    assert "Bad login credentials" in response.json()["detail"]


def test_it_treats_a_nul_in_a_session_username_as_bad_credentials(alice):
    body = {"username": "al\x00ice", "password": PASSWORD}

    response = client().post("/session", body, content_type="application/json")

    assert response.status_code == 403
    assert "Bad login credentials" in response.content.decode()


@pytest.mark.parametrize(
    "header",
    [
        "Basic !!!!",
        "Basic " + base64.b64encode(b"\xff\xfe:x").decode(),
        "Basic " + base64.b64encode(b"nocolon").decode(),
        "Basic " + "A" * 20000,
        "Bearer " + "x" * 20000,
        "Bearer apikey.",
        "Bearer apikey.\x00",
    ],
)
def test_it_answers_malformed_credentials_with_401_or_403(alice, header):
    response = client().get("/accounts", HTTP_AUTHORIZATION=header)

    assert response.status_code in (401, 403), (header[:30], response.status_code)


def test_it_explains_the_api_key_form_for_an_unknown_bearer_token():
    response = Api("Bearer not-a-session").get("/accounts")

    assert response.status_code == 401
    assert "`Bearer apikey.KEY`" in response.json()["detail"]


def test_it_skips_a_non_address_forwarded_hop_from_a_trusted_proxy(alice, settings):
    settings.TRUSTED_PROXIES = [ipaddress.ip_network("192.0.2.1/32")]
    proxied = Client(raise_request_exception=False, REMOTE_ADDR="192.0.2.1")

    response = proxied.get(
        "/accounts",
        HTTP_AUTHORIZATION=basic("alice"),
        HTTP_X_FORWARDED_FOR="garbage",
    )

    assert response.status_code == 200


def test_it_refuses_browser_api_writes_without_csrf(alice):
    browser = Client(enforce_csrf_checks=True)
    browser.force_login(alice)

    as_json = browser.post(
        "/accounts", json.dumps({"name": "csrfmade"}), content_type="application/json"
    )
    as_form = browser.post("/accounts", {"name": "csrfmade2"})

    assert as_json.status_code == as_form.status_code == 403
    assert not Group.objects.filter(account__name__startswith="csrfmade").exists()


def test_it_masks_session_tokens_in_logs(alice, caplog):
    token = Api().post("/session", {"username": "alice", "password": PASSWORD})
    token = token.content.decode()

    with caplog.at_level(logging.INFO):
        Api().get(f"/session/{token}x")
        Api().get(f"/session/{token}/extra")
        Api(f"Bearer {token}").get("/nosuchpath")
        client().get(f"/groups/%C2%B2?t={token}", HTTP_AUTHORIZATION=f"Bearer {token}")

    assert token not in caplog.text
    assert as_user(alice).get("/accounts").status_code == 200
