"""The BigV machine endpoints: create, read, change, delete, signal, reimage,
and a machine's privileges and operations."""

from drf_spectacular.utils import OpenApiResponse
from rest_framework import exceptions, status
from rest_framework.response import Response

from groups.views import get_group
from machines import actions
from machines.models import Operation, VirtualMachine
from machines.openapi import (
    CONFLICT,
    INCLUDE_DELETED,
    PURGE_VM,
    VM_CREATE_BAD_INPUT,
    VirtualMachineChangeSerializer,
    VirtualMachineCreateSerializer,
    VmCreateSerializer,
    accepted,
    json_only,
)
from machines.serializers import (
    DiscSpecSerializer,
    ImageInstallSerializer,
    IpsSpecSerializer,
    OperationSerializer,
    SignalSerializer,
    VirtualMachineSerializer,
    VirtualMachineSpecSerializer,
    VirtualMachineUpdateSerializer,
    vm_queryset,
    with_operation,
)
from panel.api import CorralView, is_id, lookup, query_flag
from panel.openapi import api_doc
from privileges.levels import Level
from privileges.models import Privilege
from privileges.policy import Policy
from privileges.serializers import PrivilegeSerializer
from privileges.views import LIST_LEVEL, listing

ACCEPTED = status.HTTP_202_ACCEPTED


def get_vm(policy: Policy, kwargs: dict, *, include_deleted: bool = True):
    """The machine a path names: `…/groups/{g}/virtual_machines/{vm}` (by name
    or id) or `/virtual_machines/{id}`. Outsiders get 404."""
    if "vm_id" in kwargs:
        spec = kwargs["vm_id"]
        vm = (
            VirtualMachine.objects.filter(pk=int(spec)).first() if is_id(spec) else None
        )
    else:
        group = get_group(policy, kwargs["account"], kwargs["group"])
        vm = lookup(VirtualMachine.objects.filter(group=group), kwargs["vm"])
    if vm is None or (vm.deleted and not include_deleted):
        raise exceptions.NotFound()
    vm = vm_queryset(VirtualMachine.objects.filter(pk=vm.pk)).get()
    policy.require_visible(vm)
    return vm


def flatten(errors) -> list[str]:
    """Nested error lists and objects as `field: message` strings, so that a
    disc's errors stay one flat object, as the client expects."""
    if isinstance(errors, dict):
        return [
            f"{key}: {message}"
            for key, value in errors.items()
            for message in flatten(value)
        ]
    if isinstance(errors, list):
        return [message for item in errors for message in flatten(item)]
    return [str(errors)]


def flat_errors(errors: dict) -> dict:
    return {
        key: [str(m) for m in value]
        if all(not isinstance(m, dict | list) for m in value)
        else flatten(value)
        for key, value in errors.items()
    }


def conflict(holder: Operation) -> Response:
    """409 naming the operation that holds the machine."""
    return Response(
        {
            "detail": f"The machine is busy with {holder.kind} operation "
            f"{holder.pk} ({holder.status}).",
            "operation_id": holder.pk,
            "operation_kind": holder.kind,
        },
        status=status.HTTP_409_CONFLICT,
    )


class MachineView(CorralView):
    """Turns the actions' typed errors into 400 and 409 answers."""

    def handle_exception(self, exc):
        if isinstance(exc, actions.Invalid):
            return Response(exc.errors, status=status.HTTP_400_BAD_REQUEST)
        if isinstance(exc, actions.OperationConflict):
            return conflict(exc.holder)
        return super().handle_exception(exc)

    def vm(self, *, include_deleted: bool = True) -> VirtualMachine:
        return get_vm(self.policy, self.kwargs, include_deleted=include_deleted)

    def changeable_vm(self, level=Level.VM_ADMIN) -> VirtualMachine:
        vm = self.vm()
        self.policy.require(vm, level)
        return vm

    def body(self, serializer_class, data=None, **kwargs) -> dict:
        data = self.request.data if data is None else data
        if not isinstance(data, dict):
            raise exceptions.ParseError("The body must be a JSON object.")
        serializer = serializer_class(data=data, **kwargs)
        if not serializer.is_valid():
            raise actions.Invalid(flat_errors(serializer.errors))
        return serializer.validated_data

    def vm_response(self, vm, op=None, code=status.HTTP_200_OK) -> Response:
        vm = vm_queryset(VirtualMachine.objects.filter(pk=vm.pk)).get()
        data = with_operation(VirtualMachineSerializer(vm).data, op)
        return Response(data, status=code)


def parse_create(view: MachineView, body: dict) -> dict:
    """Validate a vm_create body: machine errors at top level, disc errors
    as one object per disc under `discs`."""
    errors: dict = {}
    parsed: dict = {"discs": [], "reimage": None, "ips": None}
    spec = VirtualMachineSpecSerializer(data=body.get("virtual_machine") or {})
    if not spec.is_valid():
        errors.update(flat_errors(spec.errors))
    discs = body.get("discs") or []
    if not isinstance(discs, list):
        errors["discs"] = ["must be a list of discs"]
    else:
        disc_errors = []
        for disc in discs:
            one = DiscSpecSerializer(data=disc if isinstance(disc, dict) else {})
            disc_errors.append({} if one.is_valid() else flat_errors(one.errors))
            parsed["discs"].append(one.validated_data if not disc_errors[-1] else {})
        if any(disc_errors):
            errors["discs"] = disc_errors
    for key, serializer_class in (
        ("reimage", ImageInstallSerializer),
        ("ips", IpsSpecSerializer),
    ):
        if body.get(key):
            one = serializer_class(data=body[key])
            if one.is_valid():
                parsed[key] = one.validated_data
            else:
                errors.update(flat_errors(one.errors))
    if errors:
        raise actions.Invalid(errors)
    parsed["spec"] = spec.validated_data
    return parsed


class VmCreate(MachineView):
    """`POST …/groups/{g}/vm_create`: machine, discs, image and addresses in
    one transaction; 202 with the machine, visible by name at once."""

    @api_doc(
        request=json_only(VmCreateSerializer),
        responses={
            202: accepted(VirtualMachineChangeSerializer, "The machine"),
            400: VM_CREATE_BAD_INPUT,
        },
        summary="Create a machine with its discs, image and addresses",
        operation_id="vm_create",
    )
    def post(self, request, account, group):
        found = get_group(self.policy, account, group)
        self.policy.require(found, Level.GROUP_ADMIN)
        body = request.data if isinstance(request.data, dict) else {}
        return self.create(found, body)

    def create(self, group, body: dict) -> Response:
        parsed = parse_create(self, body)
        vm, op = actions.create_virtual_machine(
            group,
            parsed["spec"],
            discs=parsed["discs"],
            reimage=parsed["reimage"],
            ips=parsed["ips"],
            actor=self.request.user,
            address=self.address,
        )
        return self.vm_response(vm, op, ACCEPTED)


class VirtualMachineList(VmCreate):
    @api_doc(
        responses=VirtualMachineSerializer(many=True), parameters=[INCLUDE_DELETED]
    )
    def get(self, request, account, group):
        found = get_group(self.policy, account, group)
        vms = self.policy.virtual_machines().filter(group=found)
        if not query_flag(request, "include_deleted"):
            vms = vms.filter(deleted=False)
        vms = vm_queryset(vms.order_by("id"))
        return Response(VirtualMachineSerializer(vms, many=True).data)

    @api_doc(
        request=json_only(VirtualMachineCreateSerializer),
        responses={
            202: accepted(VirtualMachineChangeSerializer, "The machine"),
            400: VM_CREATE_BAD_INPUT,
        },
        summary="Create a machine",
    )
    def post(self, request, account, group):
        """The machine's fields at top level, with optional `discs`,
        `reimage` and `ips` beside them."""
        found = get_group(self.policy, account, group)
        self.policy.require(found, Level.GROUP_ADMIN)
        body = request.data if isinstance(request.data, dict) else {}
        extras = ("discs", "reimage", "ips")
        wrapped = {key: body[key] for key in extras if key in body}
        wrapped["virtual_machine"] = {k: v for k, v in body.items() if k not in extras}
        return self.create(found, wrapped)


class VirtualMachineDetail(MachineView):
    @api_doc(responses=VirtualMachineSerializer, parameters=[INCLUDE_DELETED])
    def get(self, request, **kwargs):
        vm = self.vm(include_deleted=query_flag(request, "include_deleted"))
        return Response(VirtualMachineSerializer(vm).data)

    @api_doc(
        request=VirtualMachineUpdateSerializer,
        responses={
            200: OpenApiResponse(
                VirtualMachineSerializer, description="Changed; no operation needed."
            ),
            202: accepted(VirtualMachineChangeSerializer),
            409: CONFLICT,
        },
        description="Only the fields supplied change. Powering on or off, and "
        "other changes the machine must carry out, answer 202 with the "
        "operation.",
    )
    def put(self, request, **kwargs):
        vm = self.changeable_vm()
        changes = self.body(VirtualMachineUpdateSerializer)
        self.require_move(vm, changes)
        vm, op = actions.update_virtual_machine(
            vm, changes, actor=request.user, address=self.address
        )
        return self.vm_response(vm, op, ACCEPTED if op else status.HTTP_200_OK)

    def require_move(self, vm, changes: dict) -> None:
        """Moving between groups needs group_admin on both of them."""
        target_id = changes.get("group_id")
        if target_id is None or target_id == vm.group_id:
            return
        self.policy.require(vm.group, Level.GROUP_ADMIN)
        target = self.policy.groups().filter(pk=target_id).first()
        if target is None:
            raise actions.invalid("group_id", "no such group in this account")
        self.policy.require(target, Level.GROUP_ADMIN)

    @api_doc(
        responses={
            202: accepted(OperationSerializer, "The deletion or purge"),
            204: OpenApiResponse(description="Deleted; nothing to carry out."),
            409: CONFLICT,
        },
        parameters=[PURGE_VM],
    )
    def delete(self, request, **kwargs):
        vm = self.vm()
        if query_flag(request, "purge"):
            self.policy.require(vm.group, Level.GROUP_ADMIN)
            op = actions.purge_virtual_machine(
                vm, actor=request.user, address=self.address
            )
            return Response(OperationSerializer(op).data, status=ACCEPTED)
        self.policy.require(vm, Level.VM_ADMIN)
        op = actions.delete_virtual_machine(
            vm, actor=request.user, address=self.address
        )
        if op is not None:
            return Response(OperationSerializer(op).data, status=ACCEPTED)
        return Response(status=status.HTTP_204_NO_CONTENT)


class VirtualMachineSignal(MachineView):
    @api_doc(
        request=SignalSerializer,
        responses={202: accepted(OperationSerializer, "The signal"), 409: CONFLICT},
    )
    def post(self, request, **kwargs):
        vm = self.changeable_vm()
        data = self.body(SignalSerializer)
        op = actions.signal_virtual_machine(
            vm,
            data["signal"],
            data.get("data") or "",
            actor=request.user,
            address=self.address,
        )
        return Response(OperationSerializer(op).data, status=ACCEPTED)


class VirtualMachineReimage(MachineView):
    @api_doc(
        request=ImageInstallSerializer,
        responses={202: accepted(OperationSerializer, "The reimage"), 409: CONFLICT},
    )
    def post(self, request, **kwargs):
        vm = self.changeable_vm()
        image = self.body(ImageInstallSerializer)
        op = actions.reimage_virtual_machine(
            vm, image, actor=request.user, address=self.address
        )
        return Response(OperationSerializer(op).data, status=ACCEPTED)


class VirtualMachinePrivileges(MachineView):
    @api_doc(responses=PrivilegeSerializer(many=True))
    def get(self, request, **kwargs):
        vm = self.vm()
        self.policy.require(vm, LIST_LEVEL[VirtualMachine], write=False)
        return listing(Privilege.objects.filter(virtual_machine=vm))


class VirtualMachineOperations(MachineView):
    @api_doc(responses=OperationSerializer(many=True))
    def get(self, request, **kwargs):
        vm = self.vm()
        ops = Operation.objects.filter(virtual_machine=vm).select_related(
            "head", "actor"
        )
        return Response(OperationSerializer(ops.order_by("-id"), many=True).data)


class OperationDetail(MachineView):
    """An operation is visible to whoever sees its machine; once the machine
    is purged, to whoever started it and to cluster admins."""

    @api_doc(responses=OperationSerializer)
    def get(self, request, operation):
        op = (
            Operation.objects.select_related("head", "actor", "virtual_machine__group")
            .filter(pk=int(operation) if is_id(operation) else 0)
            .first()
        )
        if op is None:
            raise exceptions.NotFound()
        if op.virtual_machine is not None:
            self.policy.require_visible(op.virtual_machine)
        elif op.actor_id != request.user.pk and not self.policy.is_cluster_admin():
            raise exceptions.NotFound()
        return Response(OperationSerializer(op).data)
