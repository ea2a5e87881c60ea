import ipaddress

from drf_spectacular.utils import extend_schema_field
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


@extend_schema_field(
    {
        "type": "array",
        "items": {"type": "string", "example": "192.0.2.0/24"},
        "nullable": True,
        "description": "IP networks the privilege may be used from; null for anywhere.",
    }
)
class NetworksField(serializers.Field):
    """A list of IP networks written like 192.0.2.0/24, or null for anywhere.

    It checks the items itself, so that errors stay flat ({field: [message]}):
    BigV clients cannot read the nested errors a ListField gives.
    """

    MAX_NETWORKS = 64

    def __init__(self, **kwargs):
        super().__init__(allow_null=True, **kwargs)

    def to_internal_value(self, data):
        if not isinstance(data, list):
            raise serializers.ValidationError("must be a list of networks, or null")
        if len(data) > self.MAX_NETWORKS:
            raise serializers.ValidationError(
                f"must hold at most {self.MAX_NETWORKS} networks"
            )
        return [self.network(item) for item in data]

    @staticmethod
    def network(item) -> str:
        try:
            if not isinstance(item, str) or len(item) > 64:
                raise ValueError(item)
            return str(ipaddress.ip_network(item.strip(), strict=False))
        except ValueError:
            raise serializers.ValidationError(
                f"{item!r} is not an IP network (write it like 192.0.2.0/24)"
            ) from None

    def to_representation(self, value):
        return value


class ConditionsSerializer(serializers.Serializer):
    """The only fields of a privilege that may change after it is granted."""

    yubikey_required = serializers.BooleanField(required=False)
    yubikey_otp_max_age = serializers.IntegerField(
        required=False, min_value=1, max_value=86400
    )
    ip_restrictions = NetworksField(required=False)


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
