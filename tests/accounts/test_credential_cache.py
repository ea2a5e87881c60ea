"""Repeating verified Basic credentials must not pay for hashing again."""

import pytest
from django.core.cache import cache

from accounts import actions, signin
from tests.accounts.counting_hasher import CountingHasher
from tests.factories import PASSWORD, Api, as_user, basic, make_user

pytestmark = pytest.mark.django_db

NEW_PASSWORD = "a different long passphrase"


@pytest.fixture
def counting(settings):
    settings.PASSWORD_HASHERS = [
        "tests.accounts.counting_hasher.CountingHasher",
        *settings.PASSWORD_HASHERS,
    ]
    CountingHasher.verifications = 0
    return CountingHasher


@pytest.fixture
def alice(counting):
    user = make_user("alice")
    assert user.password.startswith("counting_md5$")
    return user


def test_repeated_basic_requests_hash_once(alice, counting):
    api = as_user(alice)

    statuses = [api.get("/users/alice").status_code for _ in range(4)]

    assert statuses == [200] * 4
    assert counting.verifications == 1


def test_with_the_cache_off_every_request_hashes(alice, counting, settings):
    settings.CORRAL_CREDENTIAL_CACHE_SECONDS = 0
    api = as_user(alice)

    for _ in range(3):
        assert api.get("/users/alice").status_code == 200

    assert counting.verifications == 3


def test_a_wrong_password_never_hits_the_cache(alice, counting):
    assert as_user(alice).get("/users/alice").status_code == 200

    wrong = [
        Api(basic("alice", "wrong password")).get("/users/alice").status_code
        for _ in range(2)
    ]

    assert wrong == [401, 401]
    assert counting.verifications == 3


def test_a_password_change_voids_the_cache(alice, counting):
    assert as_user(alice).get("/users/alice").status_code == 200

    actions.change_password(alice, NEW_PASSWORD, actor=alice)
    before = counting.verifications
    old = Api(basic("alice")).get("/users/alice")

    assert old.status_code == 401
    assert counting.verifications == before + 1
    assert Api(basic("alice", NEW_PASSWORD)).get("/users/alice").status_code == 200


def test_a_password_change_through_the_api_voids_the_cache(alice):
    api = as_user(alice)
    assert api.get("/users/alice").status_code == 200

    assert api.put("/users/alice", {"password": NEW_PASSWORD}).status_code == 200

    assert api.get("/users/alice").status_code == 401


def test_a_deactivated_user_is_not_answered_from_the_cache(alice):
    api = as_user(alice)
    assert api.get("/users/alice").status_code == 200

    alice.is_active = False
    alice.save()

    assert api.get("/users/alice").status_code == 401


def test_the_cache_holds_neither_password_nor_hash(alice):
    as_user(alice).get("/users/alice")

    entry = cache.get(signin._cache_key("alice", PASSWORD))
    assert entry is not None
    assert PASSWORD not in repr(entry)
    assert alice.password not in repr(entry)
