"""Bad input to definitions: 400 naming the field, nothing written."""

import pytest

from tests.bad_input import RAW_BODIES, assert_raw_body_rejected, assert_rejected
from tests.factories import as_user, grant, make_user

pytestmark = pytest.mark.django_db


@pytest.fixture
def admin():
    user = make_user("root")
    grant(user, "cluster_admin")
    return as_user(user)


@pytest.mark.parametrize(
    "data",
    [
        "en-gb",
        None,
        {"en-gb": "English"},
        ["en-gb", 5],
        ["en-gb", ""],
        ["en-gb", "   "],
        ["x" * 65],
        ["en-gb", "en-gb"],
        [["en-gb"]],
    ],
)
def test_a_name_list_rejects_bad_data(admin, data):
    assert_rejected(admin, "PUT", "/definitions/keymaps", {"data": data}, "data")


@pytest.mark.parametrize(
    "data",
    [
        ["symbiosis"],
        "Symbiosis",
        None,
        {"symbiosis": 5},
        {"symbiosis": ["Symbiosis"]},
        {"symbiosis": "x" * 201},
        {"not-a-distribution": "Nobody knows"},
    ],
)
def test_a_description_map_rejects_bad_data(admin, data):
    path = "/definitions/distribution_descriptions"

    assert_rejected(admin, "PUT", path, {"data": data}, "data")


def test_a_definition_needs_data(admin):
    assert_rejected(admin, "PUT", "/definitions/keymaps", {"keymaps": []}, "data")


@pytest.mark.parametrize("raw", RAW_BODIES.values(), ids=RAW_BODIES.keys())
def test_a_body_that_is_not_a_json_object_is_rejected(admin, raw):
    assert_raw_body_rejected(admin, "PUT", "/definitions/keymaps", raw)


def test_unknown_fields_are_ignored(admin):
    response = admin.put("/definitions/zone_names", {"data": ["york"], "id": "x"})

    assert response.status_code == 200
    assert response.json() == {"id": "zone_names", "data": ["york"]}
