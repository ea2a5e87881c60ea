from rest_framework import exceptions, serializers
from rest_framework.permissions import AllowAny, IsAuthenticatedOrReadOnly
from rest_framework.response import Response

from machines.definitions import (
    CATALOGUE,
    DESCRIBED,
    InvalidDefinition,
    definitions,
    replace_definition,
)
from panel.api import CorralView
from panel.openapi import api_doc
from privileges.levels import Level


class DefinitionSerializer(serializers.Serializer):
    data = serializers.JSONField()


class DefinitionEntrySerializer(serializers.Serializer):
    """One definition list: names, or names with descriptions."""

    id = serializers.CharField()
    data = serializers.JSONField()


class DefinitionList(CorralView):
    """Needs no authentication: BigV clients send none here."""

    authentication_classes = []
    permission_classes = [AllowAny]

    @api_doc(responses=DefinitionEntrySerializer(many=True), auth=False, errors=())
    def get(self, request):
        return Response(definitions())


class DefinitionDetail(CorralView):
    """Anyone reads one definition, as in the list; cluster admins replace it
    with `PUT /definitions/{id}`."""

    permission_classes = [IsAuthenticatedOrReadOnly]

    @api_doc(responses=DefinitionEntrySerializer)
    def get(self, request, definition):
        for entry in definitions():
            if entry["id"] == definition:
                return Response(entry)
        raise exceptions.NotFound()

    @api_doc(request=DefinitionSerializer, responses=DefinitionEntrySerializer)
    def put(self, request, definition):
        self.policy.require_cluster(Level.CLUSTER_ADMIN)
        if definition not in CATALOGUE and definition not in DESCRIBED:
            raise exceptions.NotFound()
        data = self.validated(DefinitionSerializer)["data"]
        try:
            replace_definition(definition, data)
        except InvalidDefinition as invalid:
            raise exceptions.ValidationError({"data": [invalid.message]}) from None
        return self.get(request, definition)
