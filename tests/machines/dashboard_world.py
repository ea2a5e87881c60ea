"""Helpers for the dashboard's tests (the `fleet` personas live in conftest)."""

import re

from django.test import Client


def without_csrf(content: bytes) -> bytes:
    # The sign-out form's token is masked afresh for every response.
    return re.sub(rb'name="csrfmiddlewaretoken" value="[^"]+"', b"", content)


def browser(user, **kwargs) -> Client:
    client = Client(**kwargs)
    client.force_login(user)
    return client
