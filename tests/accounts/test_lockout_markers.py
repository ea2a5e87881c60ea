"""With a shared cache, a clean Basic request skips the lockout query, and a
failure's marker makes the next requests check the database again."""

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from tests.factories import Api, as_user, basic, make_account, make_user

pytestmark = pytest.mark.django_db


@pytest.fixture
def shared_cache(settings):
    # The tests' cache is one process's memory, which is all these tests share.
    settings.CACHE_URL = "redis://shared"


def _lockout_queries(api, path):
    with CaptureQueriesContext(connection) as queries:
        status = api.get(path).status_code
    return status, [q for q in queries if "axes_accessattempt" in q["sql"]]


def test_a_clean_repeated_request_makes_no_lockout_query(shared_cache):
    user = make_user()
    account = make_account(owner=user)
    api = as_user(user)
    api.get(f"/accounts/{account.name}")

    status, lockout = _lockout_queries(api, f"/accounts/{account.name}")

    assert status == 200
    assert lockout == []


def test_after_a_failure_the_database_is_asked_again(shared_cache):
    user = make_user()
    account = make_account(owner=user)
    api = as_user(user)
    api.get(f"/accounts/{account.name}")
    Api(basic(user.username, "wrong guess")).get("/accounts")

    status, lockout = _lockout_queries(api, f"/accounts/{account.name}")

    assert status == 200
    assert lockout != []


def test_the_lockout_still_holds_with_markers(shared_cache, settings):
    user = make_user()
    account = make_account(owner=user)
    api = as_user(user)
    assert api.get(f"/accounts/{account.name}").status_code == 200
    intruder = Api(basic(user.username, "wrong guess"))
    for _ in range(settings.AXES_FAILURE_LIMIT):
        intruder.get("/accounts")

    response = api.get(f"/accounts/{account.name}")

    assert response.status_code == 403
    assert "locked" in response.json()["detail"]


def test_without_a_shared_cache_the_query_always_runs(settings):
    settings.CACHE_URL = ""
    user = make_user()
    account = make_account(owner=user)
    api = as_user(user)
    api.get(f"/accounts/{account.name}")

    _status, lockout = _lockout_queries(api, f"/accounts/{account.name}")

    assert lockout != []
