"""Writing audit records. Never pass secrets in `detail`."""

from panel.models import AuditEvent


def record(kind, *, actor=None, username="", address=None, account=None, **detail):
    """Write one audit event; `actor` may be None for failed sign-ins."""
    if actor is not None and not username:
        username = actor.get_username()
    return AuditEvent.objects.create(
        kind=kind,
        actor=actor if actor is not None and actor.pk else None,
        actor_username=username[:150],
        address=str(address) if address else None,
        account=account,
        detail=detail,
    )
