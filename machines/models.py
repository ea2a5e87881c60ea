from django.conf import settings
from django.db import models

from panel.validators import validate_dns_label


class VirtualMachine(models.Model):
    """A virtual machine in a group. `power_on` is the actual power state."""

    group = models.ForeignKey(
        "groups.Group", on_delete=models.PROTECT, related_name="virtual_machines"
    )
    name = models.CharField(max_length=63, validators=[validate_dns_label])
    cores = models.PositiveIntegerField(default=1)
    memory = models.PositiveIntegerField(default=1024, help_text="MiB")
    power_on = models.BooleanField(default=False)
    autoreboot_on = models.BooleanField(default=False)
    cdrom_url = models.CharField(max_length=2000, blank=True, default="")
    hardware_profile = models.CharField(max_length=64, blank=True, default="")
    hardware_profile_locked = models.BooleanField(default=False)
    keymap = models.CharField(max_length=16, blank=True, default="")
    zone_name = models.CharField(max_length=64, blank=True, default="")
    deleted = models.BooleanField(default=False)
    deleted_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["id"]
        constraints = [
            models.UniqueConstraint(
                fields=["group", "name"], name="vm_name_unique_in_group"
            )
        ]

    def __str__(self) -> str:
        return self.name

    @property
    def hostname(self) -> str:
        group = self.group
        return (
            f"{self.name}.{group.name}.{group.account.name}."
            f"{settings.CORRAL_CLUSTER_DOMAIN}"
        )


class _Definition(models.Model):
    name = models.CharField(max_length=64, unique=True)
    position = models.PositiveIntegerField(default=0)

    class Meta:
        abstract = True
        ordering = ["position", "name"]

    def __str__(self) -> str:
        return self.name


class Distribution(_Definition):
    description = models.CharField(max_length=200, blank=True, default="")


class StorageGrade(_Definition):
    description = models.CharField(max_length=200, blank=True, default="")


class HardwareProfile(_Definition):
    pass


class Zone(_Definition):
    pass


class Keymap(_Definition):
    pass


class SendKey(_Definition):
    pass
