"""Checks shared by the bad-input tests: 400 `{field: [messages]}`, no writes."""

from tests.factories import Api, snapshot

# Bodies that are not a JSON object; every write endpoint answers them 400.
RAW_BODIES = {
    "not JSON": "{name: nope",
    "a JSON array": '[{"name": "x"}]',
    "a JSON string": '"x"',
    "JSON null": "null",
    "a JSON number": "7",
}

# Names that are not DNS labels (accounts, groups, machines).
BAD_NAMES = {
    "uppercase": "Acme",
    "all digits": "12345",
    "64 characters": "a" * 64,
    "leading hyphen": "-acme",
    "trailing hyphen": "acme-",
    "underscore": "ac_me",
    "a space": "ac me",
    "a dot": "ac.me",
    "empty": "",
    "not a string": ["acme"],
    "null": None,
}


def _signed_in(api: Api) -> None:
    # Signing in stamps last_login; do it before the snapshot is taken.
    api.get("/users")


def assert_rejected(api: Api, method: str, path: str, body, field: str) -> None:
    _signed_in(api)
    before = snapshot()

    response = getattr(api, method.lower())(path, body)

    assert response.status_code == 400, response.content
    messages = response.json().get(field)
    assert isinstance(messages, list), response.json()
    assert messages, response.json()
    assert all(isinstance(m, str) and m for m in messages), response.json()
    assert snapshot() == before


def assert_raw_body_rejected(api: Api, method: str, path: str, raw: str) -> None:
    _signed_in(api)
    before = snapshot()

    response = api.client.generic(
        method, path, raw, content_type="application/json", **api.headers
    )

    assert response.status_code == 400, response.content
    assert snapshot() == before
