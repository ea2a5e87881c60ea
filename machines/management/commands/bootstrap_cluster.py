"""Give a fresh database a cluster to run machines on: the embedded default.

Idempotent: it adds only what is missing, and leaves a cluster that already
has heads, tails, pools or address ranges as it is.
"""

from django.conf import settings
from django.core.management.base import BaseCommand
from django.db import transaction

from machines import cluster
from machines.hypervisors.base import ImageStore
from machines.models import Distribution, Head, IpRange, StorageGrade, StoragePool, Tail

HEAD = "simulated"
TAIL = "tail1"
POOL_SIZE = 1024 * 1024  # MiB: 1 TiB per pool, nothing is really stored.
NETWORKS = ("10.10.0.0/24", "fd00:10::/64")
# The pretend hardware takes a moment per power change, so progress shows.
SIMULATED_DELAY = 0.5


class Command(BaseCommand):
    help = (
        "On a fresh database, register a simulated head, a tail with a pool "
        "per storage grade and a backup pool, and IPv4 and IPv6 ranges on VLAN 1."
    )

    def handle(self, *args, **options):
        with transaction.atomic():
            notes = [*_head(), *_storage(), *_network()]
        notes += _placeholder_images()
        for note in notes:
            self.stdout.write(note)
        if not notes:
            self.stdout.write("The cluster is set up already.")


def simulated_uri(label: str) -> str:
    directory = settings.CORRAL_SIMULATED_DIR.resolve()
    return f"simulated://{label}{directory}?delay={SIMULATED_DELAY}"


def _head() -> list[str]:
    if Head.objects.exists():
        return []
    head, _ = cluster.register_head(HEAD, simulated_uri(HEAD), zone="default")
    return [f"Registered the simulated head {head.label} ({head.uri})."]


def _storage() -> list[str]:
    notes = []
    tail = Tail.objects.first()
    if tail is None:
        tail, _ = cluster.register_tail(TAIL, zone="default")
        notes.append(f"Registered tail {tail.label}.")

    pools = StoragePool.objects.all()
    for grade in StorageGrade.objects.values_list("name", flat=True):
        if not pools.filter(grade=grade, backup=False).exists():
            pool, _ = cluster.register_pool(
                f"{grade}-1", tail=tail.label, grade=grade, size=POOL_SIZE
            )
            notes.append(f"Registered pool {pool.label}.")
    if not pools.filter(backup=True).exists():
        pool, _ = cluster.register_pool(
            "backup-1", tail=tail.label, grade="", size=POOL_SIZE, backup=True
        )
        notes.append(f"Registered backup pool {pool.label}.")
    return notes


def _network() -> list[str]:
    if IpRange.objects.exists():
        return []
    cluster.register_network(1, *NETWORKS)
    return [f"Registered {', '.join(NETWORKS)} on VLAN 1."]


def _placeholder_images() -> list[str]:
    """Blank base images, so the simulated head can image machines. Only when
    every head is simulated: a real head must get real images."""
    uris = Head.objects.values_list("uri", flat=True)
    if not uris or not all(uri.startswith("simulated:") for uri in uris):
        return []
    store = ImageStore(cluster.image_dir())
    present = set(store.distributions())
    written = []
    for row in Distribution.objects.exclude(name="none"):
        if row.name not in present and not row.image:
            cluster.write_blank_qcow2(store.root / f"{row.name}.qcow2")
            written.append(row.name)
    if not written:
        return []
    return [
        f"Wrote blank placeholder images for {', '.join(written)} in {store.root} "
        "(replace them with `manage.py register_image` before using a real head)."
    ]
