"""What the registration commands share."""

from contextlib import contextmanager

from django.core.management.base import CommandError

from machines.cluster import RegistrationError


@contextmanager
def as_command_error():
    try:
        yield
    except RegistrationError as exc:
        raise CommandError(str(exc)) from None


def said(created: bool) -> str:
    return "Registered" if created else "Updated"
