"""NICs, extra addresses, reverse DNS and address swaps (contract §2.6)."""

import ipaddress

from rest_framework import exceptions, status
from rest_framework.response import Response

from machines import actions
from machines.models import IpAddress, NetworkInterface, VirtualMachine
from machines.openapi import IpCreatedSerializer
from machines.serializers import (
    IpCreateSerializer,
    IpSerializer,
    NetworkInterfaceSerializer,
    RdnsSerializer,
    SwapIpsSerializer,
)
from machines.vm_views import MachineView
from panel.api import is_id
from panel.openapi import api_doc
from privileges.levels import Level


class NicList(MachineView):
    @api_doc(responses=NetworkInterfaceSerializer(many=True))
    def get(self, request, **kwargs):
        vm = self.vm()
        return Response(
            NetworkInterfaceSerializer(vm.network_interfaces.all(), many=True).data
        )


class NicView(MachineView):
    def nic(self, vm) -> NetworkInterface:
        spec = self.kwargs["nic"]
        for nic in vm.network_interfaces.all():
            if is_id(spec) and nic.pk == int(spec):
                return nic
        raise exceptions.NotFound()


class NicDetail(NicView):
    @api_doc(responses=NetworkInterfaceSerializer)
    def get(self, request, **kwargs):
        return Response(NetworkInterfaceSerializer(self.nic(self.vm())).data)


class IpCreate(NicView):
    """Answers `{"ips": [...]}` with the request's other keys echoed."""

    @api_doc(request=IpCreateSerializer, responses={201: IpCreatedSerializer})
    def post(self, request, **kwargs):
        vm = self.changeable_vm()
        nic = self.nic(vm)
        spec = self.body(IpCreateSerializer)
        ips = actions.create_ips(nic, spec, actor=request.user, address=self.address)
        return Response(
            {**spec, "ips": [ip.address for ip in ips]},
            status=status.HTTP_201_CREATED,
        )


class IpDetail(MachineView):
    def ip(self) -> IpAddress:
        try:
            address = str(ipaddress.ip_address(self.kwargs["address"]))
        except ValueError:
            raise exceptions.NotFound() from None
        ip = (
            IpAddress.objects.select_related("nic", "routed_via")
            .filter(address=address)
            .first()
        )
        if ip is None:
            raise exceptions.NotFound()
        self.kwargs["vm_id"] = str(ip.nic.virtual_machine_id)
        return ip

    @api_doc(responses=IpSerializer)
    def get(self, request, address):
        ip = self.ip()
        self.vm()
        return Response(IpSerializer(ip).data)

    @api_doc(request=RdnsSerializer, responses=IpSerializer)
    def put(self, request, address):
        ip = self.ip()
        self.changeable_vm()
        rdns = self.body(RdnsSerializer)["rdns"]
        ip = actions.set_rdns(ip, rdns, actor=request.user, address=self.address)
        return Response(IpSerializer(ip).data)


class SwapIps(MachineView):
    @api_doc(request=SwapIpsSerializer, responses={204: None})
    def post(self, request):
        data = self.body(SwapIpsSerializer)
        vms = []
        for key in ("virtual_machine_1_id", "virtual_machine_2_id"):
            vm = (
                VirtualMachine.objects.select_related("group__account")
                .filter(pk=data[key])
                .first()
            )
            if vm is None:
                raise exceptions.NotFound()
            self.policy.require(vm, Level.VM_ADMIN)
            vms.append(vm)
        actions.swap_ips(
            *vms,
            move_additional=data["move_additional_ips"],
            actor=request.user,
            address=self.address,
        )
        return Response(status=status.HTTP_204_NO_CONTENT)
