"""Register (or update) a storage pool on a tail."""

from django.core.management.base import BaseCommand

from machines import cluster
from machines.management.commands._registration import as_command_error, said


class Command(BaseCommand):
    help = "Register a storage pool of one grade (or for backups) on a tail."

    def add_arguments(self, parser):
        parser.add_argument("label", help="a unique name, e.g. sata-1")
        parser.add_argument("--tail", required=True)
        parser.add_argument("--size", type=int, required=True, help="MiB")
        grade = parser.add_mutually_exclusive_group(required=True)
        grade.add_argument("--grade", help="a storage grade, e.g. sata")
        grade.add_argument(
            "--backup", action="store_true", help="a pool for backups only"
        )
        parser.add_argument(
            "--libvirt-pool", help="the pool's name in libvirt (default: label)"
        )
        parser.add_argument("--zone", help="default: the tail's zone")

    def handle(self, *args, **options):
        with as_command_error():
            pool, created = cluster.register_pool(
                options["label"],
                tail=options["tail"],
                grade=options["grade"] or "",
                size=options["size"],
                libvirt_pool=options["libvirt_pool"],
                backup=options["backup"],
                zone=options["zone"],
            )
        self.stdout.write(
            f"{said(created)} pool {pool.label} ({pool.grade}, {pool.size} MiB) "
            f"on {pool.tail.label}."
        )
