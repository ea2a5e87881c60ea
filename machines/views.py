from django.db import transaction
from rest_framework import exceptions, serializers
from rest_framework.permissions import AllowAny
from rest_framework.response import Response

from machines.definitions import CATALOGUE, DESCRIBED, definitions
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
    """Cluster admins replace one definition list with `PUT /definitions/{id}`."""

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
        if definition in DESCRIBED:
            self.replace_descriptions(DESCRIBED[definition], data)
        else:
            self.replace_names(CATALOGUE[definition], data)
        return self.get(request, definition)

    @staticmethod
    def replace_names(model, data) -> None:
        if not isinstance(data, list) or not all(
            isinstance(n, str) and n.strip() and len(n) <= 64 for n in data
        ):
            raise exceptions.ValidationError(
                {"data": ["must be a list of names (strings of 1 to 64 characters)"]}
            )
        if len(set(data)) != len(data):
            raise exceptions.ValidationError({"data": ["names must be unique"]})
        with transaction.atomic():
            model.objects.exclude(name__in=data).delete()
            for position, name in enumerate(data):
                model.objects.update_or_create(
                    name=name, defaults={"position": position}
                )

    @staticmethod
    def replace_descriptions(model, data) -> None:
        if not isinstance(data, dict) or not all(
            isinstance(k, str) and isinstance(v, str) and len(v) <= 200
            for k, v in data.items()
        ):
            raise exceptions.ValidationError(
                {"data": ["must map names to descriptions (strings)"]}
            )
        unknown = sorted(set(data) - set(model.objects.values_list("name", flat=True)))
        if unknown:
            raise exceptions.ValidationError(
                {"data": [f"unknown names: {', '.join(unknown)}"]}
            )
        with transaction.atomic():
            for name, description in data.items():
                model.objects.filter(name=name).update(description=description)
