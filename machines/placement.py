"""Choosing where a machine runs and where its discs live.

Both choices lock the candidate rows (heads or pools) for the rest of the
caller's transaction, so two creations cannot both take the last free memory
of a head or the last free space of a pool.
"""

from __future__ import annotations

from django.db.models import Sum

from machines.models import Backup, Disc, Head, StoragePool, VirtualMachine


class NoCapacity(Exception):
    """No head or pool has room; the message says which resource ran out."""


def head_memory_used(head: Head) -> int:
    used = VirtualMachine.objects.filter(head=head).aggregate(total=Sum("memory"))[
        "total"
    ]
    return used or 0


def head_cores_used(head: Head) -> int:
    used = VirtualMachine.objects.filter(head=head).aggregate(total=Sum("cores"))[
        "total"
    ]
    return used or 0


def head_memory_free(head: Head) -> int:
    return head.total_memory * head.overcommit_ratio // 100 - head_memory_used(head)


def choose_head(zone: str, cores: int, memory: int) -> Head:
    """The online head in `zone` (any zone if empty) with the most free memory
    that fits the machine. Cores may be shared, but one machine never gets
    more cores than its head has. Deleted machines still count: they can be
    restored onto the same head."""
    heads = Head.objects.select_for_update().filter(online=True).order_by("id")
    if zone:
        heads = heads.filter(zone=zone)
    best, best_free = None, -1
    for head in heads:
        free = head_memory_free(head)
        if cores <= head.total_cores and free >= memory and free > best_free:
            best, best_free = head, free
    if best is None:
        where = f" in zone {zone}" if zone else ""
        raise NoCapacity(f"no head{where} has {memory} MiB and {cores} cores free")
    return best


def head_room(vm: VirtualMachine) -> tuple[int, int]:
    """Lock the machine's head; the most cores and memory (MiB) the machine
    may have there, by the rules `choose_head` placed it with."""
    head = Head.objects.select_for_update().get(pk=vm.head_id)
    current = VirtualMachine.objects.get(pk=vm.pk).memory
    return head.total_cores, head_memory_free(head) + current


def pool_used(pool: StoragePool) -> int:
    discs = Disc.objects.filter(storage_pool=pool).aggregate(total=Sum("size"))
    backups = Backup.objects.filter(storage_pool=pool).aggregate(total=Sum("size"))
    return (discs["total"] or 0) + (backups["total"] or 0)


def pool_free(pool: StoragePool) -> int:
    return pool.size * pool.overcommit_ratio // 100 - pool_used(pool)


def _choose_pool(pools, size: int, what: str) -> StoragePool:
    best, best_free = None, -1
    for pool in pools.select_for_update(of=("self",)).order_by("id"):
        free = pool_free(pool)
        if free >= size and free > best_free:
            best, best_free = pool, free
    if best is None:
        raise NoCapacity(f"no {what} pool has {size} MiB free")
    return best


def choose_pool(grade: str, zone: str, size: int) -> StoragePool:
    """The pool of `grade` (in `zone` when its tail has one) with most room."""
    pools = StoragePool.objects.filter(grade=grade, backup=False, tail__online=True)
    if zone:
        pools = pools.filter(zone=zone)
    return _choose_pool(pools, size, f"{grade}")


def choose_backup_pool(zone: str, size: int) -> StoragePool:
    pools = StoragePool.objects.filter(backup=True, tail__online=True)
    if zone and pools.filter(zone=zone).exists():
        pools = pools.filter(zone=zone)
    return _choose_pool(pools, size, "backup")


def lock_room(pool: StoragePool, extra: int) -> bool:
    """Lock `pool` and say whether `extra` MiB still fit in it."""
    locked = StoragePool.objects.select_for_update().get(pk=pool.pk)
    return pool_free(locked) >= extra
