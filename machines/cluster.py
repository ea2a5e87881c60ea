"""Registering and changing the cluster's hardware: heads, tails, storage
pools, networks and base images.

The `register_*` functions serve the cluster admins' management commands;
each can run again with the same arguments and changes nothing more. The
functions below them serve both the API's /admin endpoints and the cluster
admins' pages, so the two front doors cannot drift apart.
"""

from __future__ import annotations

import ipaddress
import shutil
import struct
from pathlib import Path

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import connection, transaction
from django.db.models import ProtectedError

from machines import addressing
from machines.models import (
    Distribution,
    Head,
    IpRange,
    StorageGrade,
    StoragePool,
    Tail,
    Vlan,
)

QCOW2_MAGIC = b"QFI\xfb"
BACKUP_GRADE = "iceberg"


class RegistrationError(Exception):
    """The arguments cannot describe a valid head, tail, pool or image."""


def _saved(row):
    try:
        row.full_clean()
    except ValidationError as exc:
        raise RegistrationError("; ".join(_messages(exc))) from None
    row.save()
    return row


def _messages(exc: ValidationError) -> list[str]:
    if hasattr(exc, "message_dict"):
        return [f"{k}: {' '.join(v)}" for k, v in exc.message_dict.items()]
    return list(exc.messages)


@transaction.atomic
def register_head(label: str, uri: str, **fields) -> tuple[Head, bool]:
    """Create or update the head `label`; returns (head, created)."""
    if ":" not in uri:
        raise RegistrationError(f"not a libvirt or simulated URI: {uri!r}")
    head = Head.objects.filter(label=label).first()
    created = head is None
    head = head or Head(label=label)
    head.uri = uri
    for key, value in fields.items():
        if value is not None:
            setattr(head, key, value)
    return _saved(head), created


@transaction.atomic
def register_tail(label: str, zone: str | None = None) -> tuple[Tail, bool]:
    tail = Tail.objects.filter(label=label).first()
    created = tail is None
    tail = tail or Tail(label=label)
    if zone is not None:
        tail.zone = zone
    return _saved(tail), created


@transaction.atomic
def register_pool(
    label: str,
    *,
    tail: str,
    grade: str,
    size: int,
    libvirt_pool: str | None = None,
    backup: bool = False,
    zone: str | None = None,
) -> tuple[StoragePool, bool]:
    owner = Tail.objects.filter(label=tail).first()
    if owner is None:
        raise RegistrationError(f"no tail {tail!r}; register it first")
    if backup:
        grade = BACKUP_GRADE
    elif not StorageGrade.objects.filter(name=grade).exists():
        known = ", ".join(StorageGrade.objects.values_list("name", flat=True))
        raise RegistrationError(f"no storage grade {grade!r} (known: {known})")

    pool = StoragePool.objects.filter(label=label).first()
    created = pool is None
    pool = pool or StoragePool(label=label)
    pool.tail = owner
    pool.grade = grade
    pool.size = size
    pool.backup = backup
    pool.libvirt_pool = libvirt_pool or pool.libvirt_pool or label
    pool.zone = zone or (owner.zone if created else pool.zone)
    return _saved(pool), created


@transaction.atomic
def register_network(vlan_num: int, *specs: str) -> list[IpRange]:
    vlan, _ = Vlan.objects.get_or_create(num=vlan_num)
    ranges = []
    for spec in specs:
        existing = IpRange.objects.filter(spec=spec).first()
        if existing is not None and existing.vlan_id != vlan.pk:
            raise RegistrationError(f"{spec} is on {existing.vlan} already")
        ranges.append(existing or IpRange.objects.create(vlan=vlan, spec=spec))
    return ranges


class Invalid(Exception):
    """Bad input for an admin record: `errors` maps fields to messages."""

    def __init__(self, errors: dict):
        super().__init__(errors)
        self.errors = errors


class VlanInUse(Exception):
    """Machines' network interfaces are still on the VLAN."""


def save_admin_record(serializer_class, data: dict, instance=None):
    """Create a head, tail or storage pool from `data`, or change the fields
    of `instance` that `data` holds; `Invalid` when the serializer refuses."""
    serializer = serializer_class(instance, data=data, partial=instance is not None)
    if not serializer.is_valid():
        raise Invalid(serializer.errors)
    with transaction.atomic():
        return serializer.save()


def new_range_spec(value: str) -> str:
    """The network `value` names in its canonical form, if a new range may
    cover it: valid CIDR, with host addresses, overlapping no existing range.
    Raises ValueError with the message to show."""
    try:
        network = ipaddress.ip_network(value.strip(), strict=False)
    except ValueError:
        raise ValueError("must be a network in CIDR form") from None
    if not addressing.usable_count(network):
        raise ValueError("has no usable host addresses")
    for spec, vlan_num in IpRange.objects.values_list("spec", "vlan__num"):
        if spec == str(network):
            raise ValueError("already exists")
        existing = ipaddress.ip_network(spec, strict=False)
        if existing.version == network.version and existing.overlaps(network):
            raise ValueError(f"overlaps {spec} on VLAN {vlan_num}")
    return str(network)


@transaction.atomic
def add_ip_range(spec: str, vlan_num: int, zones: list[str] = ()) -> IpRange:
    """A new range on VLAN `vlan_num` (created if need be). The checks run
    again under a lock, so two overlapping ranges cannot both be added."""
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute(
                f"LOCK TABLE {IpRange._meta.db_table} IN SHARE ROW EXCLUSIVE MODE"
            )
    try:
        spec = new_range_spec(spec)
    except ValueError as exc:
        raise Invalid({"ip_range": [str(exc)]}) from None
    vlan, _ = Vlan.objects.get_or_create(num=vlan_num)
    return IpRange.objects.create(vlan=vlan, spec=spec, zones=list(zones))


def delete_vlan(vlan: Vlan) -> None:
    """Delete the VLAN with its unused ranges; VlanInUse while machines'
    network interfaces (or addresses taken from its ranges) use it."""
    try:
        with transaction.atomic():
            vlan.ip_ranges.filter(ips__isnull=True).delete()
            vlan.delete()
    except ProtectedError:
        raise VlanInUse() from None


def image_dir() -> Path:
    path = Path(settings.CORRAL_IMAGE_DIR)
    path.mkdir(parents=True, exist_ok=True)
    return path


@transaction.atomic
def register_image(
    distribution: str, source: Path, description: str | None = None
) -> Distribution:
    """Copy a qcow2 base image into the image store for `distribution`."""
    source = Path(source)
    if not source.is_file():
        raise RegistrationError(f"{source} is not a file")
    with source.open("rb") as image:
        if image.read(4) != QCOW2_MAGIC:
            raise RegistrationError(f"{source} is not a qcow2 image")

    row = Distribution.objects.filter(name=distribution).first()
    if row is None:
        row = Distribution(name=distribution, position=Distribution.objects.count())
    if description is not None:
        row.description = description
    row.image = f"{distribution}.qcow2"
    _saved(row)

    target = image_dir() / row.image
    if not target.exists() or not _same_file(source, target):
        # Copy beside the target, then rename: a worker never reads half a file.
        partial = target.with_suffix(".partial")
        shutil.copyfile(source, partial)
        partial.replace(target)
    return row


def _same_file(a: Path, b: Path) -> bool:
    if a.resolve() == b.resolve():
        return True
    if a.stat().st_size != b.stat().st_size:
        return False
    return a.read_bytes() == b.read_bytes()


def write_blank_qcow2(path: Path, size_mib: int = 1) -> None:
    """An empty qcow2 image (version 2, 64 KiB clusters) of `size_mib`."""
    cluster = 1 << 16
    size = size_mib << 20
    # One L1 entry maps cluster * (cluster / 8) bytes.
    l1_entries = -(-size // (cluster * (cluster // 8)))
    header = struct.pack(
        ">4sIQIIQIIQQIIQ",
        QCOW2_MAGIC,
        2,  # version
        0,  # backing file offset
        0,  # backing file name size
        16,  # cluster bits
        size,
        0,  # no encryption
        l1_entries,
        3 * cluster,  # L1 table offset
        cluster,  # refcount table offset
        1,  # refcount table clusters
        0,  # snapshots
        0,  # snapshots offset
    )
    # Clusters: header, refcount table, refcount block, L1 table; each used once.
    refcount_table = struct.pack(">Q", 2 * cluster)
    refcount_block = struct.pack(">4H", 1, 1, 1, 1)
    image = bytearray(4 * cluster)
    image[: len(header)] = header
    image[cluster : cluster + 8] = refcount_table
    image[2 * cluster : 2 * cluster + 8] = refcount_block
    path.write_bytes(bytes(image))
