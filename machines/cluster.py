"""Registering the cluster's hardware: heads, tails, storage pools, networks
and base images. Used by the cluster admins' management commands; every
function can run again with the same arguments and changes nothing more."""

from __future__ import annotations

import shutil
import struct
from pathlib import Path

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import transaction

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
