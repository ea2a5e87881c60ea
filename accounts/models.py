import hashlib
import logging
import secrets
from urllib.request import urlopen

from django.conf import settings
from django.contrib.auth.models import AbstractUser
from django.db import models
from django.db.models.functions import Lower
from django.utils import timezone
from otp_yubikey.models import RemoteYubikeyDevice, YubikeyDevice
from yubiotp.client import YubiResponse

from panel.validators import validate_dns_label, validate_username

logger = logging.getLogger(__name__)


def hash_secret(secret: str) -> str:
    """Tokens and API keys are stored as SHA-256 digests, never in clear."""
    return hashlib.sha256(secret.encode()).hexdigest()


class User(AbstractUser):
    """A person. Usernames are letters and digits; e-mail is required."""

    username = models.CharField(
        max_length=150,
        unique=True,
        validators=[validate_username],
        error_messages={"unique": "is already taken"},
    )
    email = models.EmailField()
    authorized_keys = models.TextField(blank=True, default="")
    require_second_factor = models.BooleanField(
        default=False,
        help_text="Ask for a second factor at every sign-in.",
    )
    approved = models.BooleanField(
        default=True,
        help_text="False while a sign-up waits for a cluster admin's approval.",
    )

    REQUIRED_FIELDS = ["email"]

    class Meta(AbstractUser.Meta):
        constraints = [
            # Unique whatever the case, so `Alice` cannot pose as `alice`;
            # sign-in still matches the name exactly.
            models.UniqueConstraint(
                Lower("username"), name="accounts_user_username_ci_unique"
            ),
        ]

    def __str__(self) -> str:
        return self.username


class Account(models.Model):
    """A billable tenant. Its name never changes."""

    name = models.CharField(
        max_length=63,
        unique=True,
        validators=[validate_dns_label],
        error_messages={"unique": "is already taken"},
    )
    suspended = models.BooleanField(default=False)
    require_second_factor = models.BooleanField(
        default=False,
        help_text="Members must use a second factor at every sign-in.",
    )
    created_at = models.DateTimeField(auto_now_add=True)
    created_by = models.ForeignKey(
        User, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )

    class Meta:
        ordering = ["id"]

    def __str__(self) -> str:
        return self.name


class ApiKey(models.Model):
    """A long-lived credential of a user with privileges of its own."""

    user = models.ForeignKey(User, on_delete=models.CASCADE, related_name="api_keys")
    label = models.CharField(max_length=100, blank=True, default="")
    key_hash = models.CharField(max_length=64, unique=True)
    expires_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["id"]

    def __str__(self) -> str:
        return self.label or f"api key {self.pk}"

    @staticmethod
    def new_secret() -> str:
        return secrets.token_urlsafe(32)

    def is_expired(self) -> bool:
        return self.expires_at is not None and self.expires_at <= timezone.now()


class SessionToken(models.Model):
    """A session made by POST /session, used as `Authorization: Bearer TOKEN`."""

    user = models.ForeignKey(User, on_delete=models.CASCADE, related_name="sessions")
    token_hash = models.CharField(max_length=64, unique=True)
    factors = models.JSONField(default=list)
    password_verified = models.BooleanField(default=True)
    yubikey_verified_at = models.DateTimeField(null=True, blank=True)
    impersonated_by = models.ForeignKey(
        User, null=True, blank=True, on_delete=models.CASCADE, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    expires_at = models.DateTimeField()
    address = models.GenericIPAddressField(null=True, blank=True)

    class Meta:
        ordering = ["id"]

    def __str__(self) -> str:
        return f"session {self.pk} of {self.user_id}"

    @staticmethod
    def new_secret() -> str:
        return secrets.token_urlsafe(32)

    def is_expired(self) -> bool:
        return self.expires_at <= timezone.now()


class OtpReplayWindow(models.Model):
    """The newest OTP verified for a YubiKey, replayable for a while.

    The plugin refuses every replay; Corral lets the newest verified OTP be
    presented again until the privilege's maximum age has passed, as BigV did.
    Only a digest of the OTP is kept.
    """

    last_otp_hash = models.CharField(max_length=64, blank=True, default="")
    last_verified_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        abstract = True


class LocalYubikey(YubikeyDevice, OtpReplayWindow):
    """A self-programmed YubiKey validated locally with its AES key.

    The plugin derives the public id from the row's primary key; a real key
    has its own, so it is stored and used instead.
    """

    public_identity = models.CharField(
        max_length=32,
        unique=True,
        help_text="The key's modhex public id (the first 12 characters of an OTP).",
    )

    class Meta(YubikeyDevice.Meta):
        verbose_name = "YubiKey (local validation)"

    def __str__(self) -> str:
        return f"YubiKey {self.public_identity}"

    def public_id(self):
        # The plugin compares this with the public id it decodes from an OTP,
        # which is bytes.
        return self.public_identity.encode()


class RemoteYubikey(RemoteYubikeyDevice, OtpReplayWindow):
    """A YubiKey validated by a remote validation service."""

    class Meta(RemoteYubikeyDevice.Meta):
        verbose_name = "YubiKey (validation service)"

    def __str__(self) -> str:
        return f"YubiKey {self.public_id}"

    def verify_token(self, token: str) -> bool:
        """Ask the validation service, as the plugin does, but with a timeout:
        the device's row stays locked while the service answers."""
        if token[:-32] != self.public_id:
            return False
        client = self.service.get_client()
        nonce = client.nonce()
        try:
            with urlopen(  # noqa: S310 (the service's URL is the operator's)
                client.url(token, nonce), timeout=settings.CORRAL_YUBIKEY_TIMEOUT
            ) as stream:
                raw = stream.read().decode("utf-8", "replace")
        except OSError as exc:
            # The exception's text could carry the URL, and so the OTP.
            logger.warning(
                "YubiKey validation service %s failed: %s",
                self.service.name,
                type(exc).__name__,
            )
            return False
        return YubiResponse(raw, client.api_key, token, nonce).is_ok()
