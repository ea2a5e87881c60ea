"""The OpenAPI schema: authentication schemes, the flat error format, and the
two endpoints that are plain Django views (`/session`, `/session/{token}`).

drf-spectacular builds the rest from the API views and their `extend_schema`
annotations (see `api_doc`).
"""

from __future__ import annotations

from drf_spectacular.extensions import (
    OpenApiAuthenticationExtension,
    OpenApiSerializerExtension,
)
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework import serializers

OTP_PARAMETER = "XYubikeyOtp"


# The error format -------------------------------------------------------------


class Error(serializers.Serializer):
    """Every error but bad input: a sentence saying what went wrong."""

    detail = serializers.CharField()


class FieldErrors(serializers.Serializer):
    """Bad input: `{field: [messages]}`; `non_field_errors` for the whole body."""


class FieldErrorsSchema(OpenApiSerializerExtension):
    target_class = "panel.openapi.FieldErrors"

    def map_serializer(self, auto_schema, direction):
        return {
            "type": "object",
            "description": FieldErrors.__doc__,
            "additionalProperties": {"type": "array", "items": {"type": "string"}},
            "example": {"name": ["is already taken"]},
        }


class OptionalKeys(OpenApiSerializerExtension):
    """Response keys that are left out rather than null (the BigV client
    treats them as optional): documented as not required."""

    optional: tuple[str, ...] = ()

    def map_serializer(self, auto_schema, direction):
        schema = auto_schema._map_basic_serializer(self.target, direction)
        required = [k for k in schema.get("required", []) if k not in self.optional]
        if required:
            schema["required"] = required
        else:
            schema.pop("required", None)
        return schema


class PrivilegeKeys(OptionalKeys):
    target_class = "privileges.serializers.PrivilegeSerializer"
    optional = (
        "account_id",
        "account_name",
        "group_id",
        "group_name",
        "virtual_machine_id",
        "virtual_machine_name",
        "api_key_id",
    )


class AccountOverviewKeys(OptionalKeys):
    target_class = "accounts.serializers.AccountOverviewSerializer"
    optional = ("groups",)


ERRORS = {
    400: OpenApiResponse(FieldErrors, description="Bad input; nothing was written."),
    401: OpenApiResponse(Error, description="Missing or bad credentials."),
    403: OpenApiResponse(
        Error,
        description="Not allowed: read-only, suspended, or a privilege's "
        "condition (YubiKey, address, a second factor at sign-in) unmet, which the "
        "message names.",
    ),
    404: OpenApiResponse(
        Error, description="No such object, or one the caller cannot see."
    ),
}


def api_doc(
    *,
    request=None,
    responses,
    errors=(400, 401, 403, 404),
    auth=True,
    **kwargs,
):
    """`extend_schema` with the error responses an endpoint can give."""
    if not isinstance(responses, dict):
        responses = {200: responses}
    codes = [c for c in errors if (auth or c != 401) and c not in responses]
    if request is None:
        codes = [c for c in codes if c != 400]
    # An endpoint's own description of an error code wins over the default.
    all_responses = {**responses, **{c: ERRORS[c] for c in codes}}
    if not auth:
        kwargs["auth"] = []
    return extend_schema(request=request, responses=all_responses, **kwargs)


OVERVIEW = [
    OpenApiParameter(
        "view",
        str,
        enum=["overview"],
        description="`overview` embeds the groups and machines the caller sees.",
    ),
    OpenApiParameter(
        "include_deleted", bool, description="With `view=overview`: deleted too."
    ),
]


# Path parameters ------------------------------------------------------------------

PATH_PARAMETERS = {
    "user": "A user's id or username.",
    "key": "An API key's id or label.",
    "privilege": "A privilege's id.",
    "account": "An account's id or name.",
    "group": "A group's id or name, within the account.",
    "vm": "A virtual machine's id or name, within the group.",
    "vm_id": "A virtual machine's id.",
    "disc": "A disc's id or label, within the machine.",
    "disc_id": "A disc's id.",
    "backup": "A backup's id or label, within the disc.",
    "schedule": "A backup schedule's id, within the disc.",
    "nic": "A network interface's id, within the machine.",
    "address": "An IPv4 or IPv6 address.",
    "operation": "An operation's id.",
    "definition": "A definition list's id, such as `distributions`.",
}


def describe_path_parameters(result, generator, request, public):
    """Path parameters mean the same on every path that has them (`{vm}` is a
    machine's id or name, wherever it appears); describe them once, here.
    An operation's own description wins."""
    for operations in result["paths"].values():
        for method, operation in operations.items():
            if method == "parameters":
                continue
            for parameter in operation.get("parameters", []):
                known = PATH_PARAMETERS.get(parameter.get("name"))
                if parameter.get("in") == "path" and known:
                    parameter.setdefault("description", known)
    return result


# Authentication -------------------------------------------------------------------


class BasicOtpScheme(OpenApiAuthenticationExtension):
    target_class = "accounts.authentication.BasicOtpAuthentication"
    name = "basicAuth"

    def get_security_definition(self, auto_schema):
        return {
            "type": "http",
            "scheme": "basic",
            "description": "Username and password. Privileges that require a "
            "YubiKey also need the `X-Yubikey-Otp` header.",
        }


class BearerScheme(OpenApiAuthenticationExtension):
    target_class = "accounts.authentication.BearerAuthentication"
    name = ["sessionToken", "apiKey"]

    def get_security_requirement(self, auto_schema):
        # Either one: a session token or an API key.
        return [{"sessionToken": []}, {"apiKey": []}]

    def get_security_definition(self, auto_schema):
        return [
            {
                "type": "http",
                "scheme": "bearer",
                "description": "A token from `POST /session`: "
                "`Authorization: Bearer TOKEN`.",
            },
            {
                "type": "http",
                "scheme": "bearer",
                "description": "An API key: `Authorization: Bearer apikey.KEY`.",
            },
        ]


class BrowserSessionScheme(OpenApiAuthenticationExtension):
    target_class = "accounts.authentication.BrowserSessionAuthentication"
    name = "cookieAuth"

    def get_security_definition(self, auto_schema):
        from django.conf import settings

        return {
            "type": "apiKey",
            "in": "cookie",
            "name": settings.SESSION_COOKIE_NAME,
            "description": "The panel's signed-in browser session (writes need "
            "the CSRF token).",
        }


# Hooks ------------------------------------------------------------------------------


def add_otp_header(result, generator, request, public):
    """The optional `X-Yubikey-Otp` header on every authenticated operation."""
    components = result.setdefault("components", {})
    components.setdefault("parameters", {})[OTP_PARAMETER] = {
        "name": "X-Yubikey-Otp",
        "in": "header",
        "required": False,
        "schema": {"type": "string"},
        "description": "A YubiKey OTP, for privileges that require one "
        "(with Basic auth or a session token).",
    }
    ref = {"$ref": f"#/components/parameters/{OTP_PARAMETER}"}
    for path in result["paths"].values():
        for method, operation in path.items():
            if method == "parameters":
                continue
            if any(requirement for requirement in operation.get("security", [])):
                operation.setdefault("parameters", []).append(ref)
    return result


def _text(description: str) -> dict:
    return {
        "description": description,
        "content": {"text/plain": {"schema": {"type": "string"}}},
    }


_SESSION_REQUEST = {
    "type": "object",
    "required": ["username", "password"],
    "properties": {
        "username": {"type": "string"},
        "password": {"type": "string", "format": "password"},
        "validity": {
            "type": "string",
            "description": "Seconds the session lasts (default 1800).",
        },
        "yubikey": {"type": "string", "description": "A YubiKey OTP."},
        "2fa": {
            "type": "string",
            "description": "A second factor: YubiKey OTP, TOTP or recovery code.",
        },
    },
}

_SESSION_INFO = {
    "type": "object",
    "required": ["username", "factors", "group_memberships"],
    "properties": {
        "username": {"type": "string"},
        "factors": {"type": "array", "items": {"type": "string"}},
        "group_memberships": {"type": "array", "items": {"type": "string"}},
    },
}

_TOKEN = {
    "name": "token",
    "in": "path",
    "required": True,
    "schema": {"type": "string"},
    "description": "The session token.",
}

_NOT_FOUND = {
    "description": "No such session.",
    "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}},
}


def add_plain_endpoints(result, generator, request, public):
    """`POST /session` and `/session/{token}` are plain Django views (the BigV
    auth server answers the token as raw text); describe them by hand."""
    result["paths"]["/session"] = {
        "post": {
            "operationId": "session_create",
            "summary": "Sign in and get a session token",
            "description": "Answers the raw token as text/plain, with no newline. "
            "Failures answer text containing `Bad login credentials`, "
            "`Missing 2FA` or `Badly-formed parameters`.",
            "tags": ["session"],
            "security": [],
            "requestBody": {
                "required": True,
                "content": {"application/json": {"schema": _SESSION_REQUEST}},
            },
            "responses": {
                "200": _text("The session token."),
                "400": _text("Badly-formed parameters."),
                "403": _text("Bad login credentials, a missing second factor, "
                             "or a locked-out sign-in."),
            },
        }
    }  # fmt: skip
    result["paths"]["/session/{token}"] = {
        "get": {
            "operationId": "session_retrieve",
            "summary": "Who a session token belongs to",
            "tags": ["session"],
            "security": [],
            "responses": {
                "200": {
                    "description": "The session.",
                    "content": {"application/json": {"schema": _SESSION_INFO}},
                },
                "404": _NOT_FOUND,
            },
        },
        "post": {
            "operationId": "session_impersonate",
            "summary": "A cluster admin's session becomes one for another user",
            "tags": ["session"],
            "security": [],
            "requestBody": {
                "required": True,
                "content": {
                    "application/json": {
                        "schema": {
                            "type": "object",
                            "required": ["username"],
                            "properties": {"username": {"type": "string"}},
                        }
                    }
                },
            },
            "responses": {
                "200": _text("The new session token."),
                "400": _text("No such username."),
                "403": _text("Only cluster administrators may impersonate."),
                "404": _NOT_FOUND,
            },
        },
        "delete": {
            "operationId": "session_destroy",
            "summary": "End a session",
            "tags": ["session"],
            "security": [],
            "responses": {"204": {"description": "Ended."}, "404": _NOT_FOUND},
        },
    }
    for operation in result["paths"]["/session/{token}"].values():
        operation["parameters"] = [_TOKEN]
    result["paths"] = dict(sorted(result["paths"].items()))
    return result
