"""Secrets never reach the logs: passwords, OTPs and session tokens."""

import logging

import pytest
from django.test import Client

from panel.logging import MaskSecretsFilter, mask
from tests.factories import PASSWORD, Api, SimulatedYubikey, make_user

TOKEN = "Zr4-kQ_9pX2vN7wLmB3sT8yHc1dFgJ6uA0eRtYiOoP5"


def server_record(request_line: str) -> logging.LogRecord:
    """A record as Django's development server writes one for a request."""
    return logging.LogRecord(
        "django.server", logging.INFO, __file__, 1, '"%s" %s %s',
        (request_line, "200", "57"), None,
    )  # fmt: skip


@pytest.mark.parametrize(
    "request_line",
    [
        f"GET /session/{TOKEN} HTTP/1.1",
        f"POST /session/{TOKEN} HTTP/1.1",
        f"DELETE //session/{TOKEN}?x=1 HTTP/1.1",
    ],
)
def test_the_filter_masks_tokens_in_access_log_lines(request_line):
    record = server_record(request_line)

    assert MaskSecretsFilter().filter(record) is True

    message = record.getMessage()
    assert TOKEN not in message
    assert "/session/***" in message
    assert message.endswith(" 200 57")


def test_the_filter_leaves_other_lines_alone():
    record = server_record("POST /session HTTP/1.1")

    MaskSecretsFilter().filter(record)

    assert record.getMessage() == '"POST /session HTTP/1.1" 200 57'


def test_bearer_credentials_are_masked_too():
    assert TOKEN not in mask(f"Authorization: Bearer {TOKEN}")


@pytest.mark.parametrize("name", ["django.server", "django.request"])
def test_the_configured_loggers_mask_before_any_handler_sees_it(name, caplog):
    logger = logging.getLogger(name)
    logger.addHandler(caplog.handler)
    try:
        logger.warning('"%s" %s %s', f"GET /session/{TOKEN} HTTP/1.1", "404", "0")
    finally:
        logger.removeHandler(caplog.handler)

    assert "/session/***" in caplog.text
    assert TOKEN not in caplog.text


@pytest.mark.django_db
def test_signing_in_and_reading_sessions_logs_no_secret(caplog):
    user = make_user()
    key = SimulatedYubikey(user)
    otp = key.otp()
    caplog.set_level(logging.DEBUG)

    token = (
        Api()
        .post(
            "/session",
            {"username": user.username, "password": PASSWORD, "yubikey": otp},
        )
        .content.decode()
    )
    assert Client().get(f"/session/{token}").status_code == 200
    Api(f"Bearer {token}", HTTP_X_YUBIKEY_OTP=otp).get("/accounts")
    Client().delete(f"/session/{token}")
    # Reading it again is a 404, which Django logs with the request's path.
    assert Client().get(f"/session/{token}").status_code == 404
    Api().post("/session", {"username": user.username, "password": PASSWORD + "x"})

    assert caplog.records, "the requests should have logged something"
    for secret in (PASSWORD, otp, token):
        assert secret not in caplog.text
