"""Add (or update) a YubiKey validation service. Keys enrolled with
`add_yubikey --remote` use the one named by CORRAL_YUBIKEY_SERVICE."""

from django.core.management.base import BaseCommand, CommandError

from accounts.otp import BadYubikey, set_validation_service


class Command(BaseCommand):
    help = "Add or update the YubiKey validation service called NAME."

    def add_arguments(self, parser):
        parser.add_argument("name")
        parser.add_argument("--url", required=True, help="the service's verify URL")
        parser.add_argument("--api-id", type=int, required=True)
        parser.add_argument(
            "--api-key", required=True, help="the base64 API key, to sign requests"
        )

    def handle(self, *args, **options):
        try:
            service = set_validation_service(
                options["name"],
                url=options["url"],
                api_id=options["api_id"],
                api_key=options["api_key"],
            )
        except BadYubikey as exc:
            raise CommandError(str(exc)) from None
        self.stdout.write(f"YubiKey validation service {service.name} saved.")
