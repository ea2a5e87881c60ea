"""Two sign-ups of one username at once: one wins, the other gets 400."""

import threading

import pytest
from django.db import connection, connections, transaction

from accounts.models import User
from tests.factories import PASSWORD, Api

pytestmark = [
    pytest.mark.race,
    pytest.mark.django_db(transaction=True),
]


def _sign_up(email: str, results: list) -> None:
    try:
        response = Api().post(
            "/users", {"username": "racer", "email": email, "password": PASSWORD}
        )
        results.append((response.status_code, response.json()))
    finally:
        connections.close_all()


def _waiting_on_locks() -> int:
    with connection.cursor() as cursor:
        # Inside a transaction the activity view is a snapshot; refresh it.
        cursor.execute("SELECT pg_stat_clear_snapshot()")
        cursor.execute(
            "SELECT count(*) FROM pg_stat_activity "
            "WHERE datname = current_database() AND wait_event_type = 'Lock'"
        )
        return cursor.fetchone()[0]


def _wait_until(condition, attempts: int = 500) -> None:
    # Polls a condition; nothing here asserts how long anything took.
    done = threading.Event()
    for _ in range(attempts):
        if condition():
            return
        done.wait(0.02)
    raise AssertionError("the sign-ups never reached the INSERT")


@pytest.fixture
def postgresql_only():
    if connection.vendor != "postgresql":
        pytest.skip("the race needs PostgreSQL's row locks")


def test_two_sign_ups_of_one_name_at_once_give_one_201_and_one_400(postgresql_only):
    results: list = []
    threads = [
        threading.Thread(target=_sign_up, args=(f"racer{n}@example.org", results))
        for n in (1, 2)
    ]

    # An uncommitted row holds the name: both sign-ups pass validation (they
    # cannot see it) and then queue on the unique index. Rolling it back lets
    # them race for the name itself, which is the path that must answer 400.
    with transaction.atomic():
        User.objects.create(username="racer", email="holder@example.org")
        for thread in threads:
            thread.start()
        _wait_until(lambda: _waiting_on_locks() == 2)
        transaction.set_rollback(True)
    for thread in threads:
        thread.join()

    assert sorted(status for status, _ in results) == [201, 400]
    refused = next(body for status, body in results if status == 400)
    assert refused == {"username": ["is already taken"]}
    assert User.objects.filter(username="racer").count() == 1


def test_two_sign_ups_started_together_never_give_500(postgresql_only):
    results: list = []
    barrier = threading.Barrier(2)

    def sign_up(email):
        barrier.wait()
        _sign_up(email, results)

    threads = [
        threading.Thread(target=sign_up, args=(f"racer{n}@example.org",))
        for n in (1, 2)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert sorted(status for status, _ in results) == [201, 400]
    assert User.objects.filter(username="racer").count() == 1
