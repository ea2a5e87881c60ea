"""Register a base image for a distribution."""

from pathlib import Path

from django.core.management.base import BaseCommand

from machines import cluster
from machines.management.commands._registration import as_command_error


class Command(BaseCommand):
    help = "Copy a qcow2 base image into the image store for a distribution."

    def add_arguments(self, parser):
        parser.add_argument("distribution", help="e.g. bookworm")
        parser.add_argument("file", type=Path, help="a qcow2 image")
        parser.add_argument("--description", help="shown in /definitions")

    def handle(self, *args, **options):
        with as_command_error():
            row = cluster.register_image(
                options["distribution"], options["file"], options["description"]
            )
        path = cluster.image_dir() / row.image
        self.stdout.write(f"Registered {row.name}: {path}")
