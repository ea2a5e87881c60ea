"""Discs, backups and backup schedules of a machine (contract §2.5, §2.7)."""

from drf_spectacular.utils import OpenApiResponse
from rest_framework import exceptions, status
from rest_framework.response import Response

from machines import actions
from machines.models import Backup, BackupSchedule, Disc, VirtualMachine
from machines.openapi import (
    BAD_INPUT,
    CONFLICT,
    PURGE,
    BackupChangeSerializer,
    BackupRestoreSerializer,
    DiscChangeSerializer,
    accepted,
    json_only,
)
from machines.serializers import (
    BackupScheduleSerializer,
    BackupScheduleSpecSerializer,
    BackupSerializer,
    DiscSerializer,
    DiscSpecSerializer,
    DiscUpdateSerializer,
    OperationSerializer,
    disc_queryset,
    with_operation,
)
from machines.vm_views import ACCEPTED, MachineView
from panel.api import is_id, lookup, query_flag
from panel.openapi import api_doc
from privileges.levels import Level


class DiscView(MachineView):
    """Finds the disc a path names: `…/virtual_machines/{vm}/discs/{disc}`
    (label or id) or `/discs/{id}`."""

    def disc(self) -> Disc:
        if "disc_id" in self.kwargs:
            spec = self.kwargs["disc_id"]
            disc = Disc.objects.filter(pk=int(spec)).first() if is_id(spec) else None
            if disc is None:
                raise exceptions.NotFound()
            self.kwargs["vm_id"] = str(disc.virtual_machine_id)
            vm = self.vm()
        else:
            vm = self.vm()
            disc = lookup(
                Disc.objects.filter(virtual_machine=vm), self.kwargs["disc"], "label"
            )
            if disc is None:
                raise exceptions.NotFound()
        disc = disc_queryset(Disc.objects.filter(pk=disc.pk)).get()
        disc.virtual_machine = vm
        return disc

    def changeable_disc(self) -> Disc:
        disc = self.disc()
        self.policy.require(disc.virtual_machine, Level.VM_ADMIN)
        return disc

    def disc_response(self, disc, op=None, code=status.HTTP_200_OK) -> Response:
        fresh = disc_queryset(Disc.objects.filter(pk=disc.pk)).get()
        return Response(with_operation(DiscSerializer(fresh).data, op), status=code)


class DiscList(DiscView):
    @api_doc(responses=DiscSerializer(many=True))
    def get(self, request, **kwargs):
        vm = self.vm()
        discs = disc_queryset(Disc.objects.filter(virtual_machine=vm)).order_by("id")
        return Response(DiscSerializer(discs, many=True).data)

    @api_doc(
        request=json_only(DiscSpecSerializer),
        responses={202: accepted(DiscChangeSerializer, "The disc"), 409: CONFLICT},
    )
    def post(self, request, **kwargs):
        vm = self.changeable_vm()
        spec = self.body(DiscSpecSerializer)
        disc, op = actions.add_disc(vm, spec, actor=request.user, address=self.address)
        return self.disc_response(disc, op, ACCEPTED)


class DiscDetail(DiscView):
    @api_doc(responses=DiscSerializer)
    def get(self, request, **kwargs):
        return Response(DiscSerializer(self.disc()).data)

    @api_doc(
        request=DiscUpdateSerializer,
        responses={
            200: OpenApiResponse(
                DiscSerializer, description="Changed; no operation needed."
            ),
            202: accepted(DiscChangeSerializer, "The resize"),
            409: CONFLICT,
        },
        description="Growing `size` answers 202 with the resize operation; "
        "`virtual_machine_id` moves the disc to another machine (both off); "
        "`iops_limit` needs cluster_admin.",
    )
    def put(self, request, **kwargs):
        disc = self.changeable_disc()
        changes = self.body(DiscUpdateSerializer)
        if "iops_limit" in changes:
            self.policy.require_cluster(Level.CLUSTER_ADMIN)
        target = self.target_vm(changes.get("virtual_machine_id"))
        disc, op = actions.update_disc(
            disc, changes, actor=request.user, target_vm=target, address=self.address
        )
        return self.disc_response(disc, op, ACCEPTED if op else status.HTTP_200_OK)

    def target_vm(self, vm_id: int | None):
        """The machine a disc moves to: one the caller may change."""
        if vm_id is None:
            return None
        target = VirtualMachine.objects.select_related("group__account")
        target = target.filter(pk=vm_id).first()
        if target is None or not self.policy.scope.sees(target):
            raise actions.invalid("virtual_machine_id", "no such machine")
        self.policy.require(target, Level.VM_ADMIN)
        return target

    @api_doc(
        responses={
            202: accepted(OperationSerializer, "The deletion"),
            400: BAD_INPUT,
            409: CONFLICT,
        },
        parameters=[PURGE],
    )
    def delete(self, request, **kwargs):
        disc = self.changeable_disc()
        if not query_flag(request, "purge"):
            raise actions.invalid("purge", "discs are only deleted with purge=true")
        op = actions.delete_disc(disc, actor=request.user, address=self.address)
        return Response(OperationSerializer(op).data, status=ACCEPTED)


class BackupView(DiscView):
    def backup(self, disc: Disc) -> Backup:
        backup = lookup(
            Backup.objects.filter(disc=disc).select_related("storage_pool"),
            self.kwargs["backup"],
            "label",
        )
        if backup is None:
            raise exceptions.NotFound()
        backup.disc = disc
        return backup


class BackupList(BackupView):
    @api_doc(responses=BackupSerializer(many=True))
    def get(self, request, **kwargs):
        disc = self.disc()
        backups = Backup.objects.filter(disc=disc).select_related(
            "storage_pool", "disc"
        )
        return Response(BackupSerializer(backups.order_by("id"), many=True).data)

    @api_doc(
        request=None,
        responses={
            202: accepted(BackupChangeSerializer, "The backup"),
            400: BAD_INPUT,
            409: CONFLICT,
        },
        description="Takes a backup of the disc now. No body.",
    )
    def post(self, request, **kwargs):
        disc = self.changeable_disc()
        backup, op = actions.create_backup(
            disc, actor=request.user, address=self.address
        )
        return Response(
            with_operation(BackupSerializer(backup).data, op), status=ACCEPTED
        )


class BackupDetail(BackupView):
    @api_doc(responses=BackupSerializer)
    def get(self, request, **kwargs):
        return Response(BackupSerializer(self.backup(self.disc())).data)

    @api_doc(
        request=BackupRestoreSerializer,
        responses={
            200: OpenApiResponse(BackupSerializer, description="Nothing changed."),
            202: accepted(BackupChangeSerializer, "The restore"),
            409: CONFLICT,
        },
    )
    def put(self, request, **kwargs):
        disc = self.changeable_disc()
        backup = self.backup(disc)
        if not isinstance(request.data, dict):
            raise exceptions.ParseError("The body must be a JSON object.")
        restore = request.data.get("restore", False)
        if not isinstance(restore, bool):
            raise actions.invalid("restore", "must be true or false")
        if not restore:
            return Response(BackupSerializer(backup).data)
        op = actions.restore_backup(backup, actor=request.user, address=self.address)
        return Response(
            with_operation(BackupSerializer(backup).data, op), status=ACCEPTED
        )

    @api_doc(
        responses={
            202: accepted(OperationSerializer, "The deletion"),
            400: BAD_INPUT,
            409: CONFLICT,
        },
        parameters=[PURGE],
    )
    def delete(self, request, **kwargs):
        disc = self.changeable_disc()
        backup = self.backup(disc)
        if not query_flag(request, "purge"):
            raise actions.invalid("purge", "backups are only deleted with purge=true")
        op = actions.delete_backup(backup, actor=request.user, address=self.address)
        return Response(OperationSerializer(op).data, status=ACCEPTED)


class BackupScheduleList(DiscView):
    @api_doc(responses=BackupScheduleSerializer(many=True))
    def get(self, request, **kwargs):
        disc = self.disc()
        schedules = BackupSchedule.objects.filter(disc=disc).order_by("id")
        return Response(BackupScheduleSerializer(schedules, many=True).data)

    @api_doc(
        request=BackupScheduleSpecSerializer,
        responses={201: BackupScheduleSerializer},
    )
    def post(self, request, **kwargs):
        disc = self.changeable_disc()
        spec = self.body(BackupScheduleSpecSerializer)
        schedule = actions.create_backup_schedule(disc, spec, actor=request.user)
        return Response(
            BackupScheduleSerializer(schedule).data, status=status.HTTP_201_CREATED
        )


class BackupScheduleDetail(DiscView):
    def schedule(self, disc: Disc) -> BackupSchedule:
        spec = self.kwargs["schedule"]
        found = (
            BackupSchedule.objects.filter(disc=disc, pk=int(spec)).first()
            if is_id(spec)
            else None
        )
        if found is None:
            raise exceptions.NotFound()
        found.disc = disc
        return found

    @api_doc(responses=BackupScheduleSerializer)
    def get(self, request, **kwargs):
        return Response(BackupScheduleSerializer(self.schedule(self.disc())).data)

    @api_doc(responses={204: None})
    def delete(self, request, **kwargs):
        disc = self.changeable_disc()
        actions.delete_backup_schedule(self.schedule(disc), actor=request.user)
        return Response(status=status.HTTP_204_NO_CONTENT)
