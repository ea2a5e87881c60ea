"""Name rules shared by accounts, groups, machines and users."""

import re

from django.core.exceptions import ValidationError

_DNS_LABEL = re.compile(r"^[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?$")
_USERNAME = re.compile(r"^[A-Za-z][A-Za-z0-9]*$")


def validate_dns_label(value: str) -> None:
    if not _DNS_LABEL.match(value or ""):
        raise ValidationError(
            "must be 1 to 63 lowercase letters, digits or hyphens, "
            "not starting or ending with a hyphen",
            code="invalid_name",
        )
    if value.isdigit():
        raise ValidationError("must not be all digits", code="invalid_name")


def validate_username(value: str) -> None:
    if not _USERNAME.match(value or ""):
        raise ValidationError(
            "must be letters and digits only, starting with a letter",
            code="invalid_username",
        )
