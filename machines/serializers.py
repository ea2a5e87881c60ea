"""Wire shapes of machines, discs, NICs, IPs, backups and operations (the
BigV contract §3), and the request bodies that change them."""

import ipaddress
import re

from django.db.models import Count, Prefetch
from rest_framework import serializers

from machines.definitions import not_in_list
from machines.hypervisors.libvirt_xml import cdrom_url_error
from machines.models import (
    Backup,
    BackupSchedule,
    Disc,
    IpAddress,
    NetworkInterface,
    Operation,
    StorageGrade,
    VirtualMachine,
)
from panel.api import check_dns_label, is_id

MAX_DISC_SIZE = 2 * 1024 * 1024  # MiB: 2 TiB
MAX_DISCS = 8
SCHEDULE_FORMAT = "%Y-%m-%d %H:%M:%S"


class VirtualMachineSummarySerializer(serializers.ModelSerializer):
    """A machine as embedded in account and group overviews."""

    hostname = serializers.SerializerMethodField()

    class Meta:
        model = VirtualMachine
        fields = [
            "id",
            "name",
            "hostname",
            "group_id",
            "cores",
            "memory",
            "power_on",
            "autoreboot_on",
            "cdrom_url",
            "hardware_profile",
            "hardware_profile_locked",
            "keymap",
            "zone_name",
            "deleted",
        ]

    def get_hostname(self, vm) -> str:
        return vm.hostname


# Reading ------------------------------------------------------------------


def vm_queryset(queryset=None):
    """Machines with everything their full JSON needs, in a fixed number of
    queries however many there are."""
    queryset = VirtualMachine.objects.all() if queryset is None else queryset
    return queryset.select_related("group__account", "head").prefetch_related(
        Prefetch("discs", queryset=disc_queryset()),
        Prefetch(
            "network_interfaces",
            queryset=NetworkInterface.objects.select_related("vlan").prefetch_related(
                Prefetch(
                    "ips",
                    queryset=IpAddress.objects.select_related("routed_via"),
                )
            ),
        ),
    )


def visible_vms_prefetch(policy, include_deleted: bool) -> Prefetch:
    """For group overviews: the machines of each group the caller may see,
    in full, as `group.visible_vms`."""
    vms = policy.virtual_machines()
    if not include_deleted:
        vms = vms.filter(deleted=False)
    return Prefetch(
        "virtual_machines", queryset=vm_queryset(vms), to_attr="visible_vms"
    )


def disc_queryset(queryset=None):
    queryset = Disc.objects.all() if queryset is None else queryset
    return (
        queryset.select_related("storage_pool")
        .annotate(backup_total=Count("backups", distinct=True))
        .prefetch_related("backup_schedules")
    )


class BackupScheduleSerializer(serializers.ModelSerializer):
    start_at = serializers.DateTimeField(format=SCHEDULE_FORMAT)

    class Meta:
        model = BackupSchedule
        fields = ["id", "start_at", "interval_seconds", "capacity"]


class DiscSerializer(serializers.ModelSerializer):
    storage_pool = serializers.CharField(source="storage_pool.label")
    backup_count = serializers.SerializerMethodField()
    backups_enabled = serializers.SerializerMethodField()
    backup_schedules = BackupScheduleSerializer(many=True)

    class Meta:
        model = Disc
        fields = [
            "id",
            "label",
            "size",
            "storage_grade",
            "storage_pool",
            "virtual_machine_id",
            "backup_count",
            "backups_enabled",
            "backup_schedules",
        ]

    def get_backup_count(self, disc) -> int:
        count = getattr(disc, "backup_total", None)
        return count if count is not None else disc.backups.count()

    def get_backups_enabled(self, disc) -> bool:
        return bool(disc.backup_schedules.all())


class NetworkInterfaceSerializer(serializers.ModelSerializer):
    vlan_num = serializers.IntegerField(source="vlan.num")
    ips = serializers.SerializerMethodField()
    extra_ips = serializers.SerializerMethodField()

    class Meta:
        model = NetworkInterface
        fields = ["id", "label", "mac", "vlan_num", "virtual_machine_id", "ips"]
        fields += ["extra_ips"]

    def get_ips(self, nic) -> list[str]:
        return [ip.address for ip in nic.ips.all() if ip.routed_via_id is None]

    def get_extra_ips(self, nic) -> dict[str, str]:
        return {
            ip.address: ip.routed_via.address
            for ip in nic.ips.all()
            if ip.routed_via_id is not None
        }


class VirtualMachineSerializer(VirtualMachineSummarySerializer):
    """A machine with its discs and NICs (§3.3)."""

    head = serializers.SerializerMethodField()
    discs = DiscSerializer(many=True)
    network_interfaces = NetworkInterfaceSerializer(many=True)

    class Meta(VirtualMachineSummarySerializer.Meta):
        fields = [
            *VirtualMachineSummarySerializer.Meta.fields,
            "head",
            "management_address",
            "last_imaged_with",
            "discs",
            "network_interfaces",
        ]

    def get_head(self, vm) -> str:
        return vm.head.label if vm.head_id else ""


class BackupSerializer(serializers.ModelSerializer):
    """A backup is disc-shaped; its grade reads `iceberg` once complete."""

    storage_grade = serializers.SerializerMethodField()
    storage_pool = serializers.CharField(source="storage_pool.label")
    parent_disc_id = serializers.IntegerField(source="disc_id")
    virtual_machine_id = serializers.IntegerField(source="disc.virtual_machine_id")

    class Meta:
        model = Backup
        fields = [
            "id",
            "label",
            "size",
            "storage_grade",
            "storage_pool",
            "virtual_machine_id",
            "parent_disc_id",
            "manual",
        ]

    def get_storage_grade(self, backup) -> str:
        return "iceberg" if backup.complete else backup.disc.storage_grade


class IpSerializer(serializers.ModelSerializer):
    ip = serializers.CharField(source="address")
    virtual_machine_id = serializers.IntegerField(source="nic.virtual_machine_id")
    routed_via = serializers.SerializerMethodField()

    class Meta:
        model = IpAddress
        fields = ["ip", "rdns", "family", "nic_id", "virtual_machine_id", "routed_via"]

    def get_routed_via(self, ip) -> str | None:
        return ip.routed_via.address if ip.routed_via_id else None


SECRET_PARAMS = re.compile(r"password|secret|key", re.IGNORECASE)


def _without_secrets(value):
    if isinstance(value, dict):
        return {
            k: _without_secrets(v)
            for k, v in value.items()
            if not SECRET_PARAMS.search(k)
        }
    if isinstance(value, list):
        return [_without_secrets(v) for v in value]
    return value


class OperationSerializer(serializers.ModelSerializer):
    head = serializers.SerializerMethodField()
    actor = serializers.SerializerMethodField()
    params = serializers.SerializerMethodField()

    class Meta:
        model = Operation
        fields = [
            "id",
            "kind",
            "status",
            "progress",
            "virtual_machine_id",
            "disc_id",
            "head",
            "actor",
            "params",
            "result",
            "error",
            "created_at",
            "started_at",
            "finished_at",
        ]

    def get_head(self, op) -> str:
        return op.head.label if op.head_id else ""

    def get_actor(self, op) -> str:
        return op.actor.username if op.actor_id else ""

    def get_params(self, op) -> dict:
        return _without_secrets(op.params)


def with_operation(data: dict, operation: Operation | None) -> dict:
    """A resource's JSON with the operation that is carrying out the change."""
    if operation is not None:
        data = {**data, "operation": OperationSerializer(operation).data}
    return data


# Writing ------------------------------------------------------------------


def check_cdrom_url(value):
    error = cdrom_url_error(value) if value else None
    if error:
        raise serializers.ValidationError(error)
    return value


class StrictInt(serializers.IntegerField):
    """An integer that must be a JSON number, as the BigV client sends it."""

    def to_internal_value(self, data):
        is_int = isinstance(data, int) and not isinstance(data, bool)
        if not is_int and not (isinstance(data, str) and is_id(data)):
            self.fail("invalid")
        return super().to_internal_value(data)


class VirtualMachineSpecSerializer(serializers.Serializer):
    """The `virtual_machine` of vm_create, or the body of POST virtual_machines."""

    name = serializers.CharField(max_length=63)
    cores = StrictInt(min_value=1, max_value=64, default=1)
    memory = StrictInt(min_value=128, max_value=1024 * 1024, default=1024)
    power_on = serializers.BooleanField(default=False)
    autoreboot_on = serializers.BooleanField(default=False)
    cdrom_url = serializers.CharField(
        max_length=2000, allow_blank=True, allow_null=True, default=""
    )
    hardware_profile = serializers.CharField(
        max_length=64, allow_blank=True, allow_null=True, default=""
    )
    hardware_profile_locked = serializers.BooleanField(default=False)
    keymap = serializers.CharField(
        max_length=16, allow_blank=True, allow_null=True, default=""
    )
    zone_name = serializers.CharField(
        max_length=64, allow_blank=True, allow_null=True, default=""
    )

    def validate_name(self, value):
        return check_dns_label(value)

    def validate_cdrom_url(self, value):
        return check_cdrom_url(value)

    def validate(self, data):
        for key in ("cdrom_url", "hardware_profile", "keymap", "zone_name"):
            data[key] = data.get(key) or ""
        return data


class VirtualMachineUpdateSerializer(serializers.Serializer):
    """PUT on a machine: only what is supplied changes (§9)."""

    name = serializers.CharField(max_length=63, required=False)
    group_id = StrictInt(required=False)
    cores = StrictInt(min_value=1, max_value=64, required=False)
    memory = StrictInt(min_value=128, max_value=1024 * 1024, required=False)
    power_on = serializers.BooleanField(required=False)
    autoreboot_on = serializers.BooleanField(required=False)
    cdrom_url = serializers.CharField(
        max_length=2000, allow_blank=True, allow_null=True, required=False
    )
    hardware_profile = serializers.CharField(max_length=64, required=False)
    hardware_profile_locked = serializers.BooleanField(required=False)
    keymap = serializers.CharField(
        max_length=16, allow_blank=True, allow_null=True, required=False
    )
    deleted = serializers.BooleanField(required=False)

    def validate_name(self, value):
        return check_dns_label(value)

    def validate_cdrom_url(self, value):
        return check_cdrom_url(value)

    def validate_deleted(self, value):
        if value:
            raise serializers.ValidationError(
                "use DELETE to delete a machine; only false (restore) is accepted"
            )
        return value

    def validate(self, data):
        for key in ("cdrom_url", "keymap"):
            if key in data:
                data[key] = data[key] or ""
        return data


class BackupScheduleSpecSerializer(serializers.Serializer):
    start_at = serializers.CharField(max_length=64, default="00:00")
    interval_seconds = StrictInt(min_value=60, max_value=366 * 86400)
    capacity = StrictInt(min_value=0, max_value=1000, default=1)


class DiscSpecSerializer(serializers.Serializer):
    label = serializers.CharField(
        max_length=63, required=False, allow_blank=True, allow_null=True
    )
    storage_grade = serializers.CharField(
        max_length=64, required=False, allow_blank=True, allow_null=True
    )
    size = StrictInt(min_value=1, max_value=MAX_DISC_SIZE)
    backup_schedules = BackupScheduleSpecSerializer(many=True, required=False)

    def validate_label(self, value):
        return check_dns_label(value) if value else ""

    def validate_storage_grade(self, value):
        if value and not StorageGrade.objects.filter(name=value).exists():
            raise serializers.ValidationError(not_in_list(StorageGrade))
        return value or "sata"


class ImageInstallSerializer(serializers.Serializer):
    distribution = serializers.CharField(max_length=64)
    root_password = serializers.CharField(max_length=200, trim_whitespace=False)
    ssh_public_key = serializers.CharField(
        allow_blank=True, allow_null=True, required=False, max_length=20000
    )
    firstboot_script = serializers.CharField(
        allow_blank=True,
        allow_null=True,
        required=False,
        max_length=65536,
        trim_whitespace=False,
    )


class IpsSpecSerializer(serializers.Serializer):
    ipv4 = serializers.IPAddressField(
        protocol="IPv4", allow_blank=True, allow_null=True, required=False
    )
    ipv6 = serializers.IPAddressField(
        protocol="IPv6", allow_blank=True, allow_null=True, required=False
    )


class SignalSerializer(serializers.Serializer):
    signal = serializers.ChoiceField(
        choices=["powerdown", "reset", "sendkey"],
        error_messages={"invalid_choice": "must be powerdown, reset or sendkey"},
    )
    data = serializers.CharField(
        max_length=200, required=False, allow_blank=True, allow_null=True
    )


class DiscUpdateSerializer(serializers.Serializer):
    size = StrictInt(min_value=1, max_value=MAX_DISC_SIZE, required=False)
    virtual_machine_id = StrictInt(required=False)
    iops_limit = StrictInt(min_value=0, required=False, allow_null=True)


class IpCreateSerializer(serializers.Serializer):
    addresses = StrictInt(min_value=1, max_value=64, default=1)
    family = serializers.ChoiceField(choices=["ipv4", "ipv6"], default="ipv4")
    reason = serializers.CharField(
        max_length=200, allow_blank=True, required=False, default=""
    )
    contiguous = serializers.BooleanField(default=False)


HOSTNAME = re.compile(
    r"^(?=.{1,253}\.?$)(?:[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?\.)*"
    r"[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?\.?$"
)


class RdnsSerializer(serializers.Serializer):
    rdns = serializers.CharField(max_length=253, allow_blank=True, allow_null=True)

    def validate_rdns(self, value):
        value = (value or "").strip()
        if value and not HOSTNAME.match(value):
            raise serializers.ValidationError("must be a valid hostname, or empty")
        if value:
            try:
                ipaddress.ip_address(value.rstrip("."))
            except ValueError:
                return value.rstrip(".")
            raise serializers.ValidationError("must be a hostname, not an address")
        return value


class SwapIpsSerializer(serializers.Serializer):
    virtual_machine_1_id = StrictInt()
    virtual_machine_2_id = StrictInt()
    move_additional_ips = serializers.BooleanField(default=False)
