import ipaddress

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import models

from privileges.levels import Level


def validate_networks(value) -> None:
    if value is None:
        return
    if not isinstance(value, list):
        raise ValidationError("must be a list of networks, or null")
    for item in value:
        try:
            ipaddress.ip_network(str(item), strict=False)
        except ValueError:
            raise ValidationError(f"{item!r} is not a network") from None


class Privilege(models.Model):
    """Grants a user (or one of their API keys) a level on a target."""

    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="privileges"
    )
    api_key = models.ForeignKey(
        "accounts.ApiKey",
        null=True,
        blank=True,
        on_delete=models.CASCADE,
        related_name="privileges",
    )
    level = models.CharField(max_length=16, choices=Level.choices)
    account = models.ForeignKey(
        "accounts.Account",
        null=True,
        blank=True,
        on_delete=models.CASCADE,
        related_name="privileges",
    )
    group = models.ForeignKey(
        "groups.Group",
        null=True,
        blank=True,
        on_delete=models.CASCADE,
        related_name="privileges",
    )
    virtual_machine = models.ForeignKey(
        "machines.VirtualMachine",
        null=True,
        blank=True,
        on_delete=models.CASCADE,
        related_name="privileges",
    )
    creating_username = models.CharField(max_length=150, blank=True, default="")
    password_required = models.BooleanField(default=True)
    yubikey_required = models.BooleanField(default=False)
    yubikey_otp_max_age = models.PositiveIntegerField(default=900)
    ip_restrictions = models.JSONField(
        null=True, blank=True, default=None, validators=[validate_networks]
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["id"]
        indexes = [models.Index(fields=["user", "api_key"])]

    def __str__(self) -> str:
        return f"{self.level} for {self.user_id}"

    @property
    def networks(self):
        if self.ip_restrictions is None:
            return None
        return [ipaddress.ip_network(n, strict=False) for n in self.ip_restrictions]
