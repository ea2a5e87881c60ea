"""Repeated failed sign-ins lock out per (username, address) and per address."""

import re
from datetime import UTC as utc
from datetime import datetime, timedelta

import pytest
from django.utils import timezone
from django_otp.plugins.otp_totp.models import TOTPDevice

from accounts import signin
from tests.factories import PASSWORD, Api, basic, make_user

pytestmark = pytest.mark.django_db

LIMIT = 3
ATTACKER = "198.51.100.7"
ELSEWHERE = "203.0.113.9"


@pytest.fixture(autouse=True)
def _limit(settings):
    settings.AXES_FAILURE_LIMIT = LIMIT


@pytest.fixture
def alice():
    return make_user("alice")


def session(username, password, address=ATTACKER, **fields):
    body = {"username": username, "password": password, **fields}
    return Api(REMOTE_ADDR=address).post("/session", body)


def fail(username="alice", times=LIMIT, address=ATTACKER):
    return [session(username, "wrong password", address) for _ in range(times)]


def assert_locked(response):
    text = response.content.decode()
    assert response.status_code == 403
    assert signin.BAD_CREDENTIALS not in text
    assert "Try again after" in text


def test_failures_below_the_limit_say_bad_credentials(alice):
    responses = fail(times=LIMIT - 1)

    for response in responses:
        assert response.status_code == 403
        assert signin.BAD_CREDENTIALS in response.content.decode()
    assert session("alice", PASSWORD).status_code == 200


def test_the_limit_locks_the_pair_even_with_the_right_password(alice):
    *_, last = fail()

    assert_locked(last)
    assert_locked(session("alice", PASSWORD))


def test_the_lockout_says_when_to_retry(alice, settings):
    fail()
    before = timezone.now()

    text = session("alice", PASSWORD).content.decode()

    stamp = re.search(r"Try again after (\S+ \S+) UTC", text).group(1)
    retry_at = datetime.strptime(stamp, "%Y-%m-%d %H:%M:%S").replace(tzinfo=utc)
    cool_off = timedelta(hours=settings.AXES_COOLOFF_TIME)
    assert before < retry_at <= before + cool_off


def test_the_victim_is_not_locked_out_from_elsewhere(alice):
    fail()

    response = session("alice", PASSWORD, address=ELSEWHERE)

    assert response.status_code == 200
    assert response.content


def test_failures_across_many_usernames_lock_the_address(alice):
    for name in ("bob", "carol", "dave"):
        fail(username=name, times=1)

    assert_locked(session("alice", PASSWORD))
    assert session("alice", PASSWORD, address=ELSEWHERE).status_code == 200


def test_a_success_resets_the_pairs_counter(alice):
    fail(times=LIMIT - 1)
    assert session("alice", PASSWORD).status_code == 200

    responses = fail(times=LIMIT - 1)

    assert all(r.status_code == 403 for r in responses)
    assert all(signin.BAD_CREDENTIALS in r.content.decode() for r in responses)
    assert session("alice", PASSWORD).status_code == 200


def test_basic_auth_is_locked_too_with_403_not_401(alice):
    api = Api(basic("alice", "wrong password"), REMOTE_ADDR=ATTACKER)
    statuses = [api.get("/users/alice").status_code for _ in range(LIMIT)]

    locked = Api(basic("alice"), REMOTE_ADDR=ATTACKER).get("/users/alice")

    assert statuses[:-1] == [401] * (LIMIT - 1)
    assert statuses[-1] == 403
    assert locked.status_code == 403
    assert "Try again after" in locked.json()["detail"]
    assert signin.BAD_CREDENTIALS not in locked.content.decode()


def test_cached_credentials_do_not_bypass_the_lockout(alice):
    right = Api(basic("alice"), REMOTE_ADDR=ATTACKER)
    assert right.get("/users/alice").status_code == 200

    fail()

    assert right.get("/users/alice").status_code == 403
    assert Api(basic("alice"), REMOTE_ADDR=ELSEWHERE).get(
        "/users/alice"
    ).status_code == (200)


def test_rejected_second_factor_codes_count_towards_the_lockout(alice):
    TOTPDevice.objects.create(user=alice, name="phone", confirmed=True)

    responses = [session("alice", PASSWORD, **{"2fa": "000000"}) for _ in range(LIMIT)]

    assert [r.status_code for r in responses] == [403] * LIMIT
    assert "rejected" in responses[0].content.decode()
    assert_locked(responses[-1])
    assert_locked(session("alice", PASSWORD))
