from django.conf import settings
from django.db import models


class AuditEvent(models.Model):
    """One security-relevant event: a sign-in, a lockout, a privilege change."""

    class Kind(models.TextChoices):
        SIGN_IN = "sign_in"
        SIGN_IN_FAILED = "sign_in_failed"
        LOCKED_OUT = "locked_out"
        SIGN_OUT = "sign_out"
        PASSWORD_CHANGED = "password_changed"
        USER_CREATED = "user_created"
        USER_DELETED = "user_deleted"
        ACCOUNT_CREATED = "account_created"
        ACCOUNT_CHANGED = "account_changed"
        ACCOUNT_DELETED = "account_deleted"
        GROUP_CREATED = "group_created"
        GROUP_CHANGED = "group_changed"
        GROUP_DELETED = "group_deleted"
        PRIVILEGE_GRANTED = "privilege_granted"
        PRIVILEGE_CHANGED = "privilege_changed"
        PRIVILEGE_REVOKED = "privilege_revoked"
        API_KEY_CREATED = "api_key_created"
        API_KEY_DELETED = "api_key_deleted"
        OTP_REJECTED = "otp_rejected"
        MACHINE_CHANGED = "machine_changed"
        DEVICE_ENROLLED = "device_enrolled"
        DEVICE_REMOVED = "device_removed"
        RECOVERY_CODES_MADE = "recovery_codes_made"
        SSH_KEYS_CHANGED = "ssh_keys_changed"
        SESSION_REVOKED = "session_revoked"
        PASSWORD_RESET_SENT = "password_reset_sent"

    created_at = models.DateTimeField(auto_now_add=True, db_index=True)
    kind = models.CharField(max_length=32, choices=Kind.choices, db_index=True)
    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
    )
    actor_username = models.CharField(max_length=150, blank=True)
    address = models.GenericIPAddressField(null=True, blank=True)
    account = models.ForeignKey(
        "accounts.Account",
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="audit_events",
    )
    detail = models.JSONField(default=dict, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]

    def __str__(self) -> str:
        return f"{self.created_at:%Y-%m-%d %H:%M:%S} {self.kind} {self.actor_username}"
