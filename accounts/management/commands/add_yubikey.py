"""Enrol a YubiKey for a user: validated here with its AES key and private id,
or (--remote) by the validation service named by CORRAL_YUBIKEY_SERVICE."""

from django.core.management.base import BaseCommand, CommandError

from accounts.models import User
from accounts.otp import BadYubikey, add_local_yubikey, add_remote_yubikey


class Command(BaseCommand):
    help = "Enrol a YubiKey for USER (local validation, or --remote)."

    def add_arguments(self, parser):
        parser.add_argument("username")
        parser.add_argument("--public-id", required=True, help="modhex public id")
        parser.add_argument("--aes-key", default="", help="32 hex digits")
        parser.add_argument("--private-id", default="", help="12 hex digits")
        parser.add_argument(
            "--remote",
            action="store_true",
            help="validate this key's OTPs with the validation service",
        )
        parser.add_argument("--name", default="", help="a label for the key")

    def handle(self, *args, **options):
        user = User.objects.filter(username=options["username"]).first()
        if user is None:
            raise CommandError(f"no user is called {options['username']!r}")
        try:
            device = self._add(user, options)
        except BadYubikey as exc:
            raise CommandError(str(exc)) from None
        self.stdout.write(f"Enrolled {device} for {user.username}.")

    def _add(self, user, options):
        if options["remote"]:
            if options["aes_key"] or options["private_id"]:
                raise BadYubikey("--remote keys take no --aes-key or --private-id")
            return add_remote_yubikey(
                user, public_id=options["public_id"], name=options["name"]
            )
        if not options["aes_key"] or not options["private_id"]:
            raise BadYubikey("a local key needs --aes-key and --private-id")
        return add_local_yubikey(
            user,
            public_id=options["public_id"],
            aes_key=options["aes_key"],
            private_id=options["private_id"],
            name=options["name"],
        )
