from django.contrib.auth.password_validation import validate_password
from django.core.exceptions import ValidationError as DjangoValidationError
from django.utils import timezone
from rest_framework import serializers

from accounts.hashers import is_md5_crypt
from accounts.keys import invalid_key_lines, normalise
from accounts.models import Account, ApiKey, User
from groups.serializers import GroupOverviewSerializer, check_dns_label
from panel.validators import validate_username
from privileges.serializers import PrivilegeSerializer


class UserPublicSerializer(serializers.ModelSerializer):
    """What teammates see of a user: a privilege in the same account is no
    consent to share one's e-mail or SSH keys."""

    class Meta:
        model = User
        fields = ["id", "username"]


class UserSerializer(serializers.ModelSerializer):
    class Meta:
        model = User
        fields = ["id", "username", "email", "authorized_keys"]


class UserDetailSerializer(UserSerializer):
    class Meta(UserSerializer.Meta):
        fields = [*UserSerializer.Meta.fields, "require_second_factor", "approved"]


def _password(value: str) -> str:
    if is_md5_crypt(value):
        return value
    try:
        validate_password(value)
    except DjangoValidationError as exc:
        raise serializers.ValidationError(exc.messages) from None
    return value


def _authorized_keys(value: str) -> str:
    problems = invalid_key_lines(value)
    if problems:
        raise serializers.ValidationError(problems)
    return normalise(value)


class SignupSerializer(serializers.Serializer):
    username = serializers.CharField(max_length=150)
    email = serializers.EmailField(max_length=254)
    password = serializers.CharField(
        write_only=True, max_length=256, trim_whitespace=False
    )
    authorized_keys = serializers.CharField(
        required=False, allow_blank=True, max_length=65536, trim_whitespace=False
    )
    account_name = serializers.CharField(required=False, max_length=63)

    def validate_username(self, value):
        try:
            validate_username(value)
        except DjangoValidationError as exc:
            raise serializers.ValidationError(exc.messages) from None
        # `Alice` beside `alice` would pass for her in lists and prompts.
        if User.objects.filter(username__iexact=value).exists():
            raise serializers.ValidationError("is already taken")
        return value

    def validate_password(self, value):
        return _password(value)

    def validate_authorized_keys(self, value):
        return _authorized_keys(value)

    def validate_account_name(self, value):
        check_dns_label(value)
        if Account.objects.filter(name=value).exists():
            raise serializers.ValidationError("is already taken")
        return value


class UserUpdateSerializer(serializers.Serializer):
    """`username` and `email` cannot change; they are ignored when sent."""

    password = serializers.CharField(
        write_only=True, required=False, max_length=256, trim_whitespace=False
    )
    authorized_keys = serializers.CharField(
        required=False, allow_blank=True, max_length=65536, trim_whitespace=False
    )
    require_second_factor = serializers.BooleanField(required=False)
    approved = serializers.BooleanField(required=False)

    def validate_password(self, value):
        return _password(value)

    def validate_authorized_keys(self, value):
        return _authorized_keys(value)


class ApiKeySerializer(serializers.ModelSerializer):
    username = serializers.CharField(source="user.username", read_only=True)

    class Meta:
        model = ApiKey
        fields = ["id", "user_id", "username", "label", "expires_at"]


class ApiKeyOverviewSerializer(ApiKeySerializer):
    privileges = PrivilegeSerializer(many=True, read_only=True)

    class Meta(ApiKeySerializer.Meta):
        fields = [*ApiKeySerializer.Meta.fields, "privileges"]


class ApiKeyCreateSerializer(serializers.Serializer):
    user_id = serializers.IntegerField(required=False)
    label = serializers.CharField(required=False, allow_blank=True, max_length=100)
    expires_at = serializers.DateTimeField(required=False, allow_null=True)

    def validate_expires_at(self, value):
        if value is not None and value <= timezone.now():
            raise serializers.ValidationError("must be in the future")
        return value


class AccountSerializer(serializers.ModelSerializer):
    class Meta:
        model = Account
        fields = ["id", "name", "suspended"]


class AccountCreateSerializer(serializers.Serializer):
    name = serializers.CharField(max_length=63)

    def validate_name(self, value):
        check_dns_label(value)
        if Account.objects.filter(name=value).exists():
            raise serializers.ValidationError("is already taken")
        return value


class AccountUpdateSerializer(serializers.Serializer):
    """Names never change; `name` is ignored when sent."""

    suspended = serializers.BooleanField(required=False)
    require_second_factor = serializers.BooleanField(required=False)


class AccountOverviewSerializer(AccountSerializer):
    """An account; with `view=overview`, also the groups and machines the
    caller sees (documentation of `account_data`)."""

    groups = GroupOverviewSerializer(many=True, read_only=True, required=False)

    class Meta(AccountSerializer.Meta):
        fields = [*AccountSerializer.Meta.fields, "groups"]


class ApiKeyCreatedSerializer(ApiKeySerializer):
    """A new API key: the secret is in this answer only."""

    api_key = serializers.CharField(read_only=True)

    class Meta(ApiKeySerializer.Meta):
        fields = [*ApiKeySerializer.Meta.fields, "api_key"]
