import ipaddress

from rest_framework import serializers

from privileges.levels import ALIASES, Level
from privileges.models import Privilege

TARGET_FIELDS = ("account_id", "group_id", "virtual_machine_id")


class PrivilegeSerializer(serializers.ModelSerializer):
    username = serializers.CharField(source="user.username")
    account_name = serializers.SerializerMethodField()
    group_name = serializers.SerializerMethodField()
    virtual_machine_name = serializers.SerializerMethodField()

    class Meta:
        model = Privilege
        fields = [
            "id",
            "username",
            "level",
            "account_id",
            "account_name",
            "group_id",
            "group_name",
            "virtual_machine_id",
            "virtual_machine_name",
            "api_key_id",
            "password_required",
            "yubikey_required",
            "yubikey_otp_max_age",
            "ip_restrictions",
            "creating_username",
        ]

    def get_account_name(self, priv) -> str | None:
        return priv.account.name if priv.account_id else None

    def get_group_name(self, priv) -> str | None:
        return f"{priv.group.name}.{priv.group.account.name}" if priv.group_id else None

    def get_virtual_machine_name(self, priv) -> str | None:
        vm = priv.virtual_machine
        if vm is None:
            return None
        return f"{vm.name}.{vm.group.name}.{vm.group.account.name}"

    def to_representation(self, instance):
        data = super().to_representation(instance)
        # The BigV client treats these as optional; absent beats null.
        for key in (
            "account_id",
            "account_name",
            "group_id",
            "group_name",
            "virtual_machine_id",
            "virtual_machine_name",
            "api_key_id",
        ):
            if data.get(key) is None:
                data.pop(key, None)
        return data


def privilege_queryset(qs):
    return qs.select_related(
        "user", "account", "group__account", "virtual_machine__group__account"
    )


class ConditionsSerializer(serializers.Serializer):
    """The only fields of a privilege that may change after it is granted."""

    yubikey_required = serializers.BooleanField(required=False)
    yubikey_otp_max_age = serializers.IntegerField(
        required=False, min_value=1, max_value=86400
    )
    ip_restrictions = serializers.ListField(
        child=serializers.CharField(max_length=64),
        required=False,
        allow_null=True,
        max_length=64,
    )

    def validate_ip_restrictions(self, value):
        if value is None:
            return None
        networks = []
        for item in value:
            try:
                networks.append(str(ipaddress.ip_network(item.strip(), strict=False)))
            except ValueError:
                raise serializers.ValidationError(
                    f"{item!r} is not an IP network (write it like 192.0.2.0/24)"
                ) from None
        return networks


class GrantSerializer(ConditionsSerializer):
    level = serializers.CharField()
    account_id = serializers.IntegerField(required=False, allow_null=True)
    group_id = serializers.IntegerField(required=False, allow_null=True)
    virtual_machine_id = serializers.IntegerField(required=False, allow_null=True)
    api_key_id = serializers.IntegerField(required=False, allow_null=True)
    password_required = serializers.BooleanField(required=False, default=True)

    def validate_level(self, value):
        if value in Level.values:
            return value
        if value in ALIASES:
            return ALIASES[value].value
        raise serializers.ValidationError(f"must be one of {', '.join(Level.values)}")
