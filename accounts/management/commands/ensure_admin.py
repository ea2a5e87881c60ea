"""Create the first cluster administrator if there is none, and say how to
sign in. The generated password is kept in var/admin-password (mode 0600)."""

import secrets

from django.conf import settings
from django.core.management.base import BaseCommand

from accounts.models import User


class Command(BaseCommand):
    help = "Create the `admin` superuser on a fresh database and print how to sign in."

    def add_arguments(self, parser):
        parser.add_argument("--username", default="admin")
        parser.add_argument("--address", default="http://127.0.0.1:8000")

    def handle(self, *args, **options):
        username = options["username"]
        path = settings.VAR_DIR / "admin-password"
        if not User.objects.filter(is_superuser=True).exists():
            password = secrets.token_urlsafe(12)
            User.objects.create_superuser(
                username=username, email=f"{username}@localhost", password=password
            )
            path.write_text(password + "\n")
            path.chmod(0o600)
        address = options["address"]
        self.stdout.write(f"Corral is at {address}/panel/ (the BigV API at {address}/)")
        if path.exists():
            self.stdout.write(
                f"Sign in as {username!r} with the password in {path} "
                f"(currently: {path.read_text().strip()})"
            )
        else:
            self.stdout.write("Sign in with your existing administrator account.")
