"""Register (or update) a storage host."""

from django.core.management.base import BaseCommand

from machines import cluster
from machines.management.commands._registration import as_command_error, said


class Command(BaseCommand):
    help = "Register a storage host (tail) that holds storage pools."

    def add_arguments(self, parser):
        parser.add_argument("label", help="a DNS label, e.g. tail1")
        parser.add_argument("--zone")

    def handle(self, *args, **options):
        with as_command_error():
            tail, created = cluster.register_tail(options["label"], options["zone"])
        self.stdout.write(f"{said(created)} tail {tail.label} in zone {tail.zone}.")
