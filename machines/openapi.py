"""How the machine endpoints are described in the OpenAPI schema: the bodies
the views check by hand, the answers that carry an operation, and the 409 and
vm_create error formats. Nothing here validates or renders a request."""

import inspect

from drf_spectacular.extensions import OpenApiSerializerExtension
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse
from rest_framework import serializers

from machines.serializers import (
    BackupSerializer,
    DiscSerializer,
    DiscSpecSerializer,
    ImageInstallSerializer,
    IpCreateSerializer,
    IpsSpecSerializer,
    OperationSerializer,
    VirtualMachineSerializer,
    VirtualMachineSpecSerializer,
)
from panel.openapi import ERRORS

# Requests ---------------------------------------------------------------------


class VmCreateSerializer(serializers.Serializer):
    """`POST …/vm_create`: a machine with its discs, image and addresses,
    created in one transaction."""

    virtual_machine = VirtualMachineSpecSerializer()
    discs = DiscSpecSerializer(many=True, required=False)
    reimage = ImageInstallSerializer(
        required=False,
        allow_null=True,
        help_text="An image to install on the new machine.",
    )
    ips = IpsSpecSerializer(
        required=False,
        allow_null=True,
        help_text="Addresses to give the machine; free ones otherwise.",
    )


class VirtualMachineCreateSerializer(VirtualMachineSpecSerializer):
    """`POST …/virtual_machines`: the machine's fields at top level, with the
    optional `discs`, `reimage` and `ips` of vm_create beside them."""

    discs = DiscSpecSerializer(many=True, required=False)
    reimage = ImageInstallSerializer(required=False, allow_null=True)
    ips = IpsSpecSerializer(required=False, allow_null=True)


class BackupRestoreSerializer(serializers.Serializer):
    restore = serializers.BooleanField(
        required=False,
        help_text="`true` restores the disc from this backup; anything else "
        "changes nothing and answers the backup.",
    )


# Responses --------------------------------------------------------------------

OPERATION_HELP = "The operation carrying out the change; follow it at "
OPERATION_HELP += "`GET /operations/{id}`."


class VirtualMachineChangeSerializer(VirtualMachineSerializer):
    """A machine with the operation that is carrying out the change."""

    operation = OperationSerializer(help_text=OPERATION_HELP)

    class Meta(VirtualMachineSerializer.Meta):
        fields = [*VirtualMachineSerializer.Meta.fields, "operation"]


class DiscChangeSerializer(DiscSerializer):
    """A disc with the operation that is carrying out the change."""

    operation = OperationSerializer(help_text=OPERATION_HELP)

    class Meta(DiscSerializer.Meta):
        fields = [*DiscSerializer.Meta.fields, "operation"]


class BackupChangeSerializer(BackupSerializer):
    """A backup with the operation that is carrying out the change."""

    operation = OperationSerializer(help_text=OPERATION_HELP)

    class Meta(BackupSerializer.Meta):
        fields = [*BackupSerializer.Meta.fields, "operation"]


class IpCreatedSerializer(IpCreateSerializer):
    """The request's fields echoed, with the addresses given."""

    ips = serializers.ListField(child=serializers.IPAddressField())


class Conflict(serializers.Serializer):
    """Another operation holds the machine: it is named, so that the caller
    can wait for it."""

    detail = serializers.CharField()
    operation_id = serializers.IntegerField()
    operation_kind = serializers.CharField()


class VmCreateErrors(serializers.Serializer):
    """Bad vm_create input: the machine's, image's and addresses' fields at
    top level, and `discs` with one error object per disc, in order."""


_MESSAGES = {"type": "array", "items": {"type": "string"}}


class VmCreateErrorsSchema(OpenApiSerializerExtension):
    target_class = "machines.openapi.VmCreateErrors"

    def map_serializer(self, auto_schema, direction):
        per_disc = {
            "type": "object",
            "additionalProperties": _MESSAGES,
            "description": "One disc's errors; empty for a disc without any.",
        }
        return {
            "type": "object",
            "description": inspect.cleandoc(VmCreateErrors.__doc__),
            "properties": {
                "discs": {
                    "type": "array",
                    "items": {"oneOf": [per_disc, {"type": "string"}]},
                    "description": "An object per disc, or a message when "
                    "`discs` is not a list.",
                }
            },
            "additionalProperties": _MESSAGES,
            "example": {
                "name": ["is already taken in this group"],
                "discs": [{}, {"storage_grade": ["is not included in the list"]}],
            },
        }


def json_only(serializer) -> dict:
    """A body with nested objects, which only JSON can carry (a form would
    flatten them into strings)."""
    return {"application/json": serializer}


BAD_INPUT = ERRORS[400]
CONFLICT = OpenApiResponse(
    Conflict, description="Another operation holds the machine; it is named."
)
VM_CREATE_BAD_INPUT = OpenApiResponse(
    VmCreateErrors, description="Bad input; nothing was written."
)


def accepted(serializer, what: str = "The change") -> OpenApiResponse:
    return OpenApiResponse(
        serializer, description=f"{what} was accepted; an operation carries it out."
    )


# Query parameters --------------------------------------------------------------

INCLUDE_DELETED = OpenApiParameter(
    "include_deleted", bool, description="Deleted machines too."
)
PURGE_VM = OpenApiParameter(
    "purge",
    bool,
    description="`true` destroys the machine for good, with its discs "
    "(needs group_admin); otherwise it is deleted and can be restored.",
)
PURGE = OpenApiParameter(
    "purge",
    bool,
    required=True,
    description="Must be `true`: this destroys it for good.",
)
