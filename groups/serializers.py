from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from groups.models import Group
from machines.serializers import VirtualMachineSerializer
from panel.api import check_dns_label


def dns_label_field(**kwargs):
    return serializers.CharField(max_length=63, **kwargs)


class GroupSerializer(serializers.ModelSerializer):
    class Meta:
        model = Group
        fields = ["id", "name", "account_id", "vlan_num"]


class GroupOverviewSerializer(GroupSerializer):
    virtual_machines = serializers.SerializerMethodField()

    class Meta(GroupSerializer.Meta):
        fields = [*GroupSerializer.Meta.fields, "virtual_machines"]

    @extend_schema_field(VirtualMachineSerializer(many=True))
    def get_virtual_machines(self, group) -> list[dict]:
        # Views prefetch the machines the caller may see into `visible_vms`.
        vms = getattr(group, "visible_vms", [])
        return VirtualMachineSerializer(vms, many=True).data


class GroupWriteSerializer(serializers.Serializer):
    name = dns_label_field(required=False)
    vlan_num = serializers.IntegerField(
        required=False, allow_null=True, min_value=1, max_value=4094
    )

    def validate_name(self, value):
        return check_dns_label(value)
