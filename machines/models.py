import uuid

from django.conf import settings
from django.db import models
from django.db.models import Q

from panel.validators import validate_dns_label


class Head(models.Model):
    """A hypervisor host, reached through a libvirt URI (or `simulated://`)."""

    label = models.CharField(
        max_length=63, unique=True, validators=[validate_dns_label]
    )
    uuid = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    uri = models.CharField(max_length=500, help_text="libvirt URI, or simulated://")
    zone = models.CharField(max_length=64, default="default")
    arch = models.CharField(max_length=32, default="x86_64")
    cnc_address = models.GenericIPAddressField(null=True, blank=True)
    total_memory = models.PositiveIntegerField(default=65536, help_text="MiB")
    total_cores = models.PositiveIntegerField(default=16)
    overcommit_ratio = models.PositiveIntegerField(default=100, help_text="percent")
    usage_strategy = models.CharField(max_length=32, blank=True, default="")
    online = models.BooleanField(default=True)
    last_note = models.CharField(max_length=500, blank=True, default="")

    class Meta:
        ordering = ["id"]

    def __str__(self) -> str:
        return self.label

    @property
    def queue(self) -> str:
        """The Celery queue that this head's worker consumes."""
        return f"head.{self.label}"


class Tail(models.Model):
    """A storage host holding storage pools."""

    label = models.CharField(
        max_length=63, unique=True, validators=[validate_dns_label]
    )
    uuid = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    zone = models.CharField(max_length=64, default="default")
    cnc_address = models.GenericIPAddressField(null=True, blank=True)
    online = models.BooleanField(default=True)

    class Meta:
        ordering = ["id"]

    def __str__(self) -> str:
        return self.label


class StoragePool(models.Model):
    """A libvirt storage pool on a tail, of one grade (or for backups)."""

    tail = models.ForeignKey(Tail, on_delete=models.PROTECT, related_name="pools")
    label = models.CharField(max_length=63, unique=True)
    libvirt_pool = models.CharField(
        max_length=100, help_text="The pool's name in libvirt on every head."
    )
    grade = models.CharField(max_length=64, help_text="A storage grade, or iceberg")
    zone = models.CharField(max_length=64, default="default")
    size = models.PositiveBigIntegerField(help_text="MiB")
    overcommit_ratio = models.PositiveIntegerField(default=100, help_text="percent")
    usage_strategy = models.CharField(max_length=32, blank=True, default="")
    migration_concurrency = models.PositiveIntegerField(default=1)
    iops_limit = models.PositiveIntegerField(null=True, blank=True)
    note = models.CharField(max_length=500, blank=True, default="")
    backup = models.BooleanField(default=False, help_text="Holds backups only.")

    class Meta:
        ordering = ["id"]

    def __str__(self) -> str:
        return self.label


class Vlan(models.Model):
    num = models.PositiveIntegerField(unique=True)
    usage_type = models.CharField(max_length=32, default="public")

    class Meta:
        ordering = ["num"]

    def __str__(self) -> str:
        return f"VLAN {self.num}"


class IpRange(models.Model):
    """A network on a VLAN from which machines get addresses."""

    vlan = models.ForeignKey(Vlan, on_delete=models.PROTECT, related_name="ip_ranges")
    spec = models.CharField(max_length=64, unique=True, help_text="CIDR")
    zones = models.JSONField(default=list, blank=True)

    class Meta:
        ordering = ["id"]

    def __str__(self) -> str:
        return self.spec


class VirtualMachine(models.Model):
    """A virtual machine in a group.

    `power_on` is the machine's actual power state, changed only when the
    operation that changes it finishes; `desired_power_on` is what was asked.
    """

    group = models.ForeignKey(
        "groups.Group", on_delete=models.PROTECT, related_name="virtual_machines"
    )
    name = models.CharField(max_length=63, validators=[validate_dns_label])
    uuid = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    head = models.ForeignKey(
        Head,
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="virtual_machines",
    )
    cores = models.PositiveIntegerField(default=1)
    memory = models.PositiveIntegerField(default=1024, help_text="MiB")
    power_on = models.BooleanField(default=False)
    desired_power_on = models.BooleanField(default=False)
    autoreboot_on = models.BooleanField(default=False)
    cdrom_url = models.CharField(max_length=2000, blank=True, default="")
    hardware_profile = models.CharField(max_length=64, blank=True, default="")
    hardware_profile_locked = models.BooleanField(default=False)
    keymap = models.CharField(max_length=16, blank=True, default="")
    zone_name = models.CharField(max_length=64, blank=True, default="")
    management_address = models.GenericIPAddressField(null=True, blank=True)
    last_imaged_with = models.CharField(max_length=64, blank=True, default="")
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


class Disc(models.Model):
    """A machine's disc: a volume in a storage pool of its grade."""

    virtual_machine = models.ForeignKey(
        VirtualMachine, on_delete=models.CASCADE, related_name="discs"
    )
    label = models.CharField(max_length=63, validators=[validate_dns_label])
    uuid = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    size = models.PositiveIntegerField(help_text="MiB")
    storage_grade = models.CharField(max_length=64)
    storage_pool = models.ForeignKey(
        StoragePool, on_delete=models.PROTECT, related_name="discs"
    )
    iops_limit = models.PositiveIntegerField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["id"]
        constraints = [
            models.UniqueConstraint(
                fields=["virtual_machine", "label"], name="disc_label_unique_in_vm"
            )
        ]

    def __str__(self) -> str:
        return self.label

    @property
    def volume(self) -> str:
        return f"disc-{self.uuid}"


class Backup(models.Model):
    """A copy of a disc in a backup pool; disc-shaped on the wire."""

    disc = models.ForeignKey(Disc, on_delete=models.CASCADE, related_name="backups")
    label = models.CharField(max_length=100)
    uuid = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    size = models.PositiveIntegerField(help_text="MiB")
    storage_pool = models.ForeignKey(
        StoragePool, on_delete=models.PROTECT, related_name="backups"
    )
    manual = models.BooleanField(default=True)
    complete = models.BooleanField(default=False)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["id"]
        constraints = [
            models.UniqueConstraint(
                fields=["disc", "label"], name="backup_label_unique_in_disc"
            )
        ]

    def __str__(self) -> str:
        return self.label

    @property
    def volume(self) -> str:
        return f"backup-{self.uuid}"


class BackupSchedule(models.Model):
    disc = models.ForeignKey(
        Disc, on_delete=models.CASCADE, related_name="backup_schedules"
    )
    start_at = models.DateTimeField()
    interval_seconds = models.PositiveIntegerField()
    capacity = models.PositiveIntegerField(default=1, help_text="0 means 1")
    next_run_at = models.DateTimeField()

    class Meta:
        ordering = ["id"]

    def __str__(self) -> str:
        return f"every {self.interval_seconds}s from {self.start_at:%Y-%m-%d %H:%M}"


class NetworkInterface(models.Model):
    virtual_machine = models.ForeignKey(
        VirtualMachine, on_delete=models.CASCADE, related_name="network_interfaces"
    )
    label = models.CharField(max_length=63, blank=True, default="")
    mac = models.CharField(max_length=17, unique=True)
    vlan = models.ForeignKey(Vlan, on_delete=models.PROTECT, related_name="nics")

    class Meta:
        ordering = ["id"]

    def __str__(self) -> str:
        return self.mac


class IpAddress(models.Model):
    """An address taken from a range; on a NIC, or routed via another address."""

    address = models.GenericIPAddressField(unique=True)
    ip_range = models.ForeignKey(IpRange, on_delete=models.PROTECT, related_name="ips")
    nic = models.ForeignKey(
        NetworkInterface, on_delete=models.CASCADE, related_name="ips"
    )
    routed_via = models.ForeignKey(
        "self",
        null=True,
        blank=True,
        on_delete=models.CASCADE,
        related_name="extra_ips",
        help_text="Set for extra IPs: the NIC address they are routed to.",
    )
    family = models.CharField(max_length=4)
    rdns = models.CharField(max_length=253, blank=True, default="")
    reason = models.CharField(max_length=200, blank=True, default="")

    class Meta:
        ordering = ["id"]

    def __str__(self) -> str:
        return self.address


class Operation(models.Model):
    """One long-running change to a machine or disc, carried out by a worker."""

    class Kind(models.TextChoices):
        CREATE = "create"
        IMAGE = "image"
        POWER_ON = "power_on"
        POWER_OFF = "power_off"
        REBOOT = "reboot"
        SIGNAL = "signal"
        RESIZE = "resize"
        PURGE = "purge"
        BACKUP = "backup"
        RESTORE = "restore"
        DISC_CREATE = "disc_create"
        DISC_DELETE = "disc_delete"
        RECONCILE = "reconcile"

    class Status(models.TextChoices):
        QUEUED = "queued"
        RUNNING = "running"
        SUCCEEDED = "succeeded"
        FAILED = "failed"

    ACTIVE = (Status.QUEUED, Status.RUNNING)

    kind = models.CharField(max_length=16, choices=Kind.choices)
    status = models.CharField(
        max_length=16, choices=Status.choices, default=Status.QUEUED, db_index=True
    )
    progress = models.PositiveSmallIntegerField(default=0)
    virtual_machine = models.ForeignKey(
        VirtualMachine,
        null=True,
        on_delete=models.SET_NULL,
        related_name="operations",
    )
    disc = models.ForeignKey(
        Disc, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    head = models.ForeignKey(
        Head, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
    )
    params = models.JSONField(default=dict, blank=True)
    result = models.JSONField(default=dict, blank=True)
    error = models.TextField(blank=True, default="")
    attempts = models.PositiveSmallIntegerField(default=0)
    lease_expires_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-id"]
        constraints = [
            # At most one unfinished operation holds a machine at a time.
            models.UniqueConstraint(
                fields=["virtual_machine"],
                condition=Q(status__in=["queued", "running"]),
                name="one_active_operation_per_vm",
            )
        ]

    def __str__(self) -> str:
        return f"{self.kind} #{self.pk} ({self.status})"

    @property
    def active(self) -> bool:
        return self.status in self.ACTIVE


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
    image = models.CharField(
        max_length=200,
        blank=True,
        default="",
        help_text="Base image file name in the image store (empty: blank disc).",
    )


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
