"""API plumbing shared by every app: error bodies and typed exceptions."""

from django.core.exceptions import PermissionDenied as DjangoPermissionDenied
from django.http import Http404
from rest_framework import exceptions, serializers, status
from rest_framework.response import Response
from rest_framework.views import APIView
from rest_framework.views import exception_handler as drf_exception_handler


class ConditionUnmet(exceptions.PermissionDenied):
    """The caller holds a privilege here, but one of its conditions fails."""

    default_code = "condition_unmet"

    def __init__(self, detail=None, code=None, unmet=()):
        super().__init__(detail, code)
        # Which conditions failed ("yubikey", "ip", "password"), so the browser
        # can offer the remedy (an OTP prompt) or explain why there is none.
        self.unmet = tuple(unmet)


class Conflict(exceptions.APIException):
    status_code = status.HTTP_409_CONFLICT
    default_detail = "The resource is busy."
    default_code = "conflict"


class Suspended(exceptions.PermissionDenied):
    default_detail = "This account is suspended: it can be read but not changed."
    default_code = "suspended"


def exception_handler(exc, context):
    """Flat error bodies: {field: [messages]} for 400, {detail: text} otherwise."""
    if isinstance(exc, Http404):
        exc = exceptions.NotFound()
    elif isinstance(exc, DjangoPermissionDenied):
        exc = exceptions.PermissionDenied()
    response = drf_exception_handler(exc, context)
    if response is None:
        return None
    if isinstance(exc, exceptions.ValidationError) and not isinstance(
        response.data, dict
    ):
        response.data = {"non_field_errors": response.data}
    return response


def bad_request(field: str, message: str) -> Response:
    return Response({field: [message]}, status=status.HTTP_400_BAD_REQUEST)


def is_id(spec: str) -> bool:
    """Whether a path segment is a numeric id: ASCII digits only, since
    str.isdigit() also accepts characters such as '²' that int() refuses."""
    return spec.isascii() and spec.isdecimal()


def lookup(queryset, spec: str, field: str = "name"):
    """Find by numeric id or by name, as every BigV path segment allows.

    Returns None when nothing matches; callers answer 404 through the policy.
    """
    spec = (spec or "").strip()
    if not spec:
        return None
    if is_id(spec):
        return queryset.filter(pk=int(spec)).first()
    return queryset.filter(**{field: spec}).first()


def query_flag(request, name: str) -> bool:
    return request.query_params.get(name, "").lower() in {"1", "true", "yes"}


def is_overview(request) -> bool:
    return request.query_params.get("view") == "overview"


class CorralView(APIView):
    # Base for API views: the policy and the client's address at hand. (A
    # comment, not a docstring: the schema would show it for every endpoint.)

    @property
    def policy(self):
        from privileges.policy import Policy

        return Policy.for_request(self.request)

    @property
    def address(self) -> str:
        from panel.context import client_address

        return client_address(self.request._request)

    def validated(self, serializer_class, **kwargs) -> dict:
        """Validate the body; unknown fields are dropped silently."""
        data = self.request.data if isinstance(self.request.data, dict) else None
        if data is None and hasattr(self.request.data, "dict"):
            data = self.request.data.dict()
        if data is None:
            raise exceptions.ParseError("The body must be a JSON object.")
        serializer = serializer_class(data=data, **kwargs)
        serializer.is_valid(raise_exception=True)
        return serializer.validated_data


def check_dns_label(value: str) -> str:
    """DRF-side check of a DNS label name, with the model validator's messages."""
    from django.core.exceptions import ValidationError as DjangoValidationError

    from panel.validators import validate_dns_label

    try:
        validate_dns_label(value)
    except DjangoValidationError as exc:
        raise serializers.ValidationError(exc.messages) from None
    return value
