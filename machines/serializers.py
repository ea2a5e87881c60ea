from rest_framework import serializers

from machines.models import VirtualMachine


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
