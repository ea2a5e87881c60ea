"""Register (or update) a hypervisor head."""

from django.core.management.base import BaseCommand

from machines import cluster
from machines.management.commands._registration import as_command_error, said


class Command(BaseCommand):
    help = "Register a hypervisor head by its libvirt URI (or simulated://)."

    def add_arguments(self, parser):
        parser.add_argument("label", help="a DNS label, e.g. head1")
        parser.add_argument("uri", help="e.g. qemu+ssh://root@head1/system")
        parser.add_argument("--zone")
        parser.add_argument("--memory", type=int, help="MiB the machines may use")
        parser.add_argument("--cores", type=int)
        parser.add_argument("--overcommit", type=int, help="percent, default 100")
        parser.add_argument("--cnc-address", help="the head's management address")

    def handle(self, *args, **options):
        fields = {
            "zone": options["zone"],
            "total_memory": options["memory"],
            "total_cores": options["cores"],
            "overcommit_ratio": options["overcommit"],
            "cnc_address": options["cnc_address"],
        }
        with as_command_error():
            head, created = cluster.register_head(
                options["label"], options["uri"], **fields
            )
        self.stdout.write(f"{said(created)} head {head.label} ({head.uri}).")
        self.stdout.write(
            f"Its operations go to the queue {head.queue}: run a worker for it "
            f"with `celery -A panel worker -Q {head.queue}` (a worker that "
            "consumes every head's queue picks it up when restarted)."
        )
