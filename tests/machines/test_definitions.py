"""Definitions: public, complete, and changed only by cluster admins."""

import pytest

from machines.models import Distribution, Keymap
from tests.factories import Api, as_user, grant, make_account, make_user

pytestmark = pytest.mark.django_db

CLIENT_IDS = {
    "distributions": list,
    "distribution_descriptions": dict,
    "storage_grades": list,
    "storage_grade_descriptions": dict,
    "zone_names": list,
    "hardware_profiles": list,
    "keymaps": list,
    "sendkeys": list,
}


def definitions(api: Api | None = None) -> dict:
    response = (api or Api()).get("/definitions")
    assert response.status_code == 200
    return {entry["id"]: entry["data"] for entry in response.json()}


def test_definitions_need_no_authentication_and_hold_every_id():
    found = definitions()

    assert {key: type(found[key]) for key in CLIENT_IDS} == CLIENT_IDS
    assert "symbiosis" in found["distributions"]
    assert set(found["distribution_descriptions"]) == set(found["distributions"])
    assert set(found["storage_grade_descriptions"]) == set(found["storage_grades"])


def test_credentials_are_not_needed_even_when_wrong():
    api = Api("Basic bm9ib2R5Ondyb25n")

    assert api.get("/definitions").status_code == 200


def test_definitions_come_from_the_database():
    Distribution.objects.create(name="plan9", description="Plan 9", position=99)

    found = definitions()

    assert found["distributions"][-1] == "plan9"
    assert found["distribution_descriptions"]["plan9"] == "Plan 9"


def test_a_cluster_admin_replaces_a_list():
    root = make_user("root")
    grant(root, "cluster_admin")

    response = as_user(root).put("/definitions/keymaps", {"data": ["de", "en-gb"]})

    assert response.status_code == 200
    assert definitions()["keymaps"] == ["de", "en-gb"]
    assert Api().get("/definitions/keymaps").json() == {
        "id": "keymaps",
        "data": ["de", "en-gb"],
    }


def test_a_cluster_admin_changes_descriptions():
    root = make_user("root")
    grant(root, "cluster_admin")
    body = {"data": {"symbiosis": "Symbiosis 7 (64 bit)"}}

    response = as_user(root).put("/definitions/distribution_descriptions", body)

    assert response.status_code == 200
    found = definitions()
    assert found["distribution_descriptions"]["symbiosis"] == "Symbiosis 7 (64 bit)"
    assert "symbiosis" in found["distributions"]


def test_others_cannot_change_definitions():
    owner = make_user("owner")
    grant(owner, "account_admin", make_account("acme"))
    before = list(Keymap.objects.values_list("name", flat=True))

    response = as_user(owner).put("/definitions/keymaps", {"data": ["de"]})

    assert response.status_code == 403
    assert definitions()["keymaps"] == before


def test_an_unknown_definition_is_not_found():
    root = make_user("root")
    grant(root, "cluster_admin")

    assert Api().get("/definitions/colours").status_code == 404
    assert as_user(root).put("/definitions/colours", {"data": []}).status_code == 404
