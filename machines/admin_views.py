"""Cluster administration (contract §2.11): heads, tails, storage pools, IP
ranges and VLANs. Every endpoint needs cluster_admin, even to read."""

import ipaddress

from drf_spectacular.utils import OpenApiParameter, extend_schema_view
from rest_framework import exceptions, serializers, status
from rest_framework.response import Response

from machines import addressing, cluster, placement
from machines.models import (
    Disc,
    Head,
    IpAddress,
    IpRange,
    StoragePool,
    Tail,
    VirtualMachine,
    Vlan,
)
from machines.serializers import (
    DiscSerializer,
    VirtualMachineSerializer,
    disc_queryset,
    vm_queryset,
)
from machines.vm_views import MachineView
from panel.api import is_id, lookup
from panel.openapi import ERRORS, api_doc
from privileges.levels import Level


class NullableBlank(serializers.CharField):
    """A string that reads and writes null for empty, as the client sends it."""

    def __init__(self, **kwargs):
        super().__init__(allow_blank=True, allow_null=True, required=False, **kwargs)

    def run_validation(self, data=serializers.empty):
        return "" if data is None else super().run_validation(data)

    def to_representation(self, value):
        return value or None


class HeadSerializer(serializers.ModelSerializer):
    usage_strategy = NullableBlank(max_length=32)
    free_memory = serializers.SerializerMethodField()
    used_cores = serializers.SerializerMethodField()
    virtual_machines = serializers.SerializerMethodField()
    virtual_machines_count = serializers.SerializerMethodField()
    models = serializers.SerializerMethodField()

    class Meta:
        model = Head
        fields = [
            "id",
            "uuid",
            "label",
            "uri",
            "zone",
            "arch",
            "cnc_address",
            "last_note",
            "total_memory",
            "total_cores",
            "overcommit_ratio",
            "usage_strategy",
            "models",
            "free_memory",
            "online",
            "used_cores",
            "virtual_machines_count",
            "virtual_machines",
        ]

    def get_free_memory(self, head) -> int:
        return placement.head_memory_free(head)

    def get_used_cores(self, head) -> int:
        return placement.head_cores_used(head)

    def get_virtual_machines(self, head) -> list[str]:
        return [vm.hostname for vm in vms_on(head).select_related("group__account")]

    def get_virtual_machines_count(self, head) -> int:
        return vms_on(head).count()

    def get_models(self, head) -> list[str]:
        return []


class TailSerializer(serializers.ModelSerializer):
    pools = serializers.SlugRelatedField(slug_field="label", many=True, read_only=True)

    class Meta:
        model = Tail
        fields = ["id", "uuid", "label", "cnc_address", "zone", "online", "pools"]


class StoragePoolSerializer(serializers.ModelSerializer):
    name = serializers.CharField(source="label", read_only=True)
    tail = serializers.SlugRelatedField(slug_field="label", queryset=Tail.objects)
    usage_strategy = NullableBlank(max_length=32)
    free_space = serializers.SerializerMethodField()
    ceiling = serializers.SerializerMethodField()
    alloc = serializers.SerializerMethodField()
    discs = serializers.SerializerMethodField()
    backups = serializers.SerializerMethodField()

    class Meta:
        model = StoragePool
        fields = [
            "id",
            "name",
            "label",
            "tail",
            "libvirt_pool",
            "zone",
            "size",
            "free_space",
            "ceiling",
            "alloc",
            "discs",
            "backups",
            "overcommit_ratio",
            "migration_concurrency",
            "usage_strategy",
            "grade",
            "note",
            "iops_limit",
            "backup",
        ]

    def get_free_space(self, pool) -> int:
        return placement.pool_free(pool)

    def get_ceiling(self, pool) -> int:
        return pool.size * pool.overcommit_ratio // 100

    def get_alloc(self, pool) -> int:
        return placement.pool_used(pool)

    def get_discs(self, pool) -> int:
        return pool.discs.count()

    def get_backups(self, pool) -> int:
        return pool.backups.count()


class IpRangeSerializer(serializers.ModelSerializer):
    vlan_num = serializers.IntegerField(source="vlan.num", read_only=True)
    available = serializers.SerializerMethodField()

    class Meta:
        model = IpRange
        fields = ["id", "spec", "vlan_num", "zones", "available"]

    def get_available(self, ip_range) -> int:
        network = ipaddress.ip_network(ip_range.spec, strict=False)
        used = IpAddress.objects.filter(ip_range=ip_range).count()
        return max(addressing.usable_count(network) - used, 0)


class IpRangeCreateSerializer(serializers.Serializer):
    ip_range = serializers.CharField(max_length=64)
    vlan_num = serializers.IntegerField(min_value=1, max_value=4094)
    zones = serializers.ListField(
        child=serializers.CharField(max_length=64), required=False, default=list
    )

    def validate_ip_range(self, value):
        try:
            return cluster.new_range_spec(value)
        except ValueError as exc:
            raise serializers.ValidationError(str(exc)) from None


class VlanSerializer(serializers.ModelSerializer):
    ip_ranges = IpRangeSerializer(many=True, read_only=True)

    class Meta:
        model = Vlan
        fields = ["id", "num", "usage_type", "ip_ranges"]


def vms_on(obj):
    if isinstance(obj, Head):
        return VirtualMachine.objects.filter(head=obj)
    pools = StoragePool.objects.filter(tail=obj) if isinstance(obj, Tail) else [obj]
    return VirtualMachine.objects.filter(discs__storage_pool__in=pools).distinct()


def discs_in(obj):
    if isinstance(obj, Tail):
        return Disc.objects.filter(storage_pool__tail=obj)
    return Disc.objects.filter(storage_pool=obj)


class AdminView(MachineView):
    model = None
    serializer_class = None
    queryset = None

    def initial(self, request, *args, **kwargs):
        super().initial(request, *args, **kwargs)
        self.policy.require_cluster(Level.CLUSTER_ADMIN)

    def get_queryset(self):
        return self.model.objects.all().order_by("id")

    def get_object(self, spec: str):
        found = lookup(self.get_queryset(), spec, "label")
        if found is None:
            raise exceptions.NotFound()
        return found

    def save(self, instance=None):
        try:
            saved = cluster.save_admin_record(
                self.serializer_class, self.request.data, instance
            )
        except cluster.Invalid as invalid:
            return Response(invalid.errors, status=400)
        code = status.HTTP_200_OK if instance else status.HTTP_201_CREATED
        return Response(self.serializer_class(saved).data, status=code)


def spec_parameter(description: str) -> OpenApiParameter:
    return OpenApiParameter("spec", str, OpenApiParameter.PATH, description=description)


BY_LABEL = spec_parameter("An id or label.")


def listed(serializer_class):
    """The schema of an `AdminList`: its list, and creating one."""
    return extend_schema_view(
        get=api_doc(responses=serializer_class(many=True)),
        post=api_doc(request=serializer_class, responses={201: serializer_class}),
    )


def detailed(serializer_class):
    """The schema of an `AdminDetail`: reading one, and changing only the fields
    supplied."""
    return extend_schema_view(
        get=api_doc(responses=serializer_class, parameters=[BY_LABEL]),
        put=api_doc(
            request=serializer_class(partial=True),
            responses=serializer_class,
            parameters=[BY_LABEL],
        ),
    )


class AdminList(AdminView):
    def get(self, request):
        return Response(self.serializer_class(self.get_queryset(), many=True).data)

    def post(self, request):
        return self.save()


class AdminDetail(AdminView):
    def get(self, request, spec):
        return Response(self.serializer_class(self.get_object(spec)).data)

    def put(self, request, spec):
        return self.save(self.get_object(spec))


@listed(HeadSerializer)
class HeadList(AdminList):
    model, serializer_class = Head, HeadSerializer


@detailed(HeadSerializer)
class HeadDetail(AdminDetail):
    model, serializer_class = Head, HeadSerializer


@listed(TailSerializer)
class TailList(AdminList):
    model, serializer_class = Tail, TailSerializer


@detailed(TailSerializer)
class TailDetail(AdminDetail):
    model, serializer_class = Tail, TailSerializer


@listed(StoragePoolSerializer)
class StoragePoolList(AdminList):
    model, serializer_class = StoragePool, StoragePoolSerializer


@detailed(StoragePoolSerializer)
class StoragePoolDetail(AdminDetail):
    model, serializer_class = StoragePool, StoragePoolSerializer


def hosting_parameters(models: dict) -> list:
    """`{kind}/{spec}` of the hosted-things listings: which host, by label."""
    kind = OpenApiParameter(
        "kind",
        str,
        OpenApiParameter.PATH,
        enum=[*models],
        description="What `spec` names.",
    )
    return [kind, BY_LABEL]


class HostedVirtualMachines(AdminView):
    """`GET /admin/{heads|tails|storage_pools}/{x}/virtual_machines`."""

    models = {"heads": Head, "tails": Tail, "storage_pools": StoragePool}

    @api_doc(
        responses=VirtualMachineSerializer(many=True),
        parameters=hosting_parameters(models),
    )
    def get(self, request, kind, spec):
        if kind not in self.models:
            raise exceptions.NotFound()
        self.model = self.models[kind]
        vms = vm_queryset(vms_on(self.get_object(spec)).order_by("id"))
        return Response(VirtualMachineSerializer(vms, many=True).data)


class HostedDiscs(AdminView):
    """`GET /admin/{tails|storage_pools}/{x}/discs`."""

    models = {"tails": Tail, "storage_pools": StoragePool}

    @api_doc(responses=DiscSerializer(many=True), parameters=hosting_parameters(models))
    def get(self, request, kind, spec):
        if kind not in self.models:
            raise exceptions.NotFound()
        self.model = self.models[kind]
        discs = disc_queryset(discs_in(self.get_object(spec)).order_by("id"))
        return Response(DiscSerializer(discs, many=True).data)


class IpRangeList(AdminView):
    @api_doc(
        responses={200: IpRangeSerializer(many=True), 400: ERRORS[400]},
        parameters=[
            OpenApiParameter(
                "cidr", str, description="Only the range with this network."
            )
        ],
    )
    def get(self, request):
        ranges = IpRange.objects.select_related("vlan").order_by("id")
        cidr = request.query_params.get("cidr")
        if cidr:
            try:
                cidr = str(ipaddress.ip_network(cidr, strict=False))
            except ValueError:
                return Response({"cidr": ["must be a network in CIDR form"]}, 400)
            ranges = ranges.filter(spec=cidr)
        return Response(IpRangeSerializer(ranges, many=True).data)

    @api_doc(request=IpRangeCreateSerializer, responses={201: IpRangeSerializer})
    def post(self, request):
        serializer = IpRangeCreateSerializer(data=request.data)
        if not serializer.is_valid():
            return Response(serializer.errors, status=400)
        data = serializer.validated_data
        try:
            ip_range = cluster.add_ip_range(
                data["ip_range"], data["vlan_num"], data["zones"]
            )
        except cluster.Invalid as invalid:
            return Response(invalid.errors, status=400)
        return Response(IpRangeSerializer(ip_range).data, status=201)


class IpRangeDetail(AdminView):
    @api_doc(responses=IpRangeSerializer, parameters=[spec_parameter("An id.")])
    def get(self, request, spec):
        found = IpRange.objects.filter(pk=int(spec)).first() if is_id(spec) else None
        if found is None:
            raise exceptions.NotFound()
        return Response(IpRangeSerializer(found).data)


@listed(VlanSerializer)
class VlanList(AdminList):
    model, serializer_class = Vlan, VlanSerializer

    def get_queryset(self):
        return Vlan.objects.prefetch_related("ip_ranges__vlan").order_by("num")


class VlanDetail(AdminView):
    """GET by VLAN number, DELETE by id, as the client calls them."""

    @api_doc(responses=VlanSerializer, parameters=[spec_parameter("A VLAN number.")])
    def get(self, request, spec):
        found = Vlan.objects.filter(num=int(spec)).first() if is_id(spec) else None
        if found is None:
            raise exceptions.NotFound()
        return Response(VlanSerializer(found).data)

    @api_doc(
        responses={204: None, 400: ERRORS[400]},
        parameters=[spec_parameter("A VLAN's id (not its number).")],
        description="Deletes the VLAN with its unused IP ranges; 400 while "
        "machines' network interfaces use it.",
    )
    def delete(self, request, spec):
        found = Vlan.objects.filter(pk=int(spec)).first() if is_id(spec) else None
        if found is None:
            raise exceptions.NotFound()
        try:
            cluster.delete_vlan(found)
        except cluster.VlanInUse:
            return Response(
                {"vlan": ["is still used by machines' network interfaces"]}, 400
            )
        return Response(status=status.HTTP_204_NO_CONTENT)


class RecentVirtualMachines(AdminView):
    @api_doc(responses=VirtualMachineSerializer(many=True))
    def get(self, request):
        vms = vm_queryset().order_by("-created_at", "-id")[:50]
        return Response(VirtualMachineSerializer(vms, many=True).data)


class StoppedVirtualMachines(AdminView):
    """`GET /admin/stopped_eligible_vms`: machines that are off and not
    deleted, which could be started."""

    @api_doc(responses=VirtualMachineSerializer(many=True))
    def get(self, request):
        vms = VirtualMachine.objects.filter(
            power_on=False, deleted=False, desired_power_on=False
        )
        return Response(
            VirtualMachineSerializer(vm_queryset(vms.order_by("id")), many=True).data
        )
