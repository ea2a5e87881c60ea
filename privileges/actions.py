"""Granting, changing and revoking privileges."""

from django.db import transaction

from accounts.models import User
from panel import audit
from panel.models import AuditEvent
from privileges.models import Privilege
from privileges.policy import account_of


def _target(priv: Privilege):
    return priv.account or priv.group or priv.virtual_machine


def _record(kind, priv: Privilege, actor: User, address, **extra):
    target = _target(priv)
    audit.record(
        kind,
        actor=actor,
        address=address,
        account=account_of(target) if target is not None else None,
        privilege=priv.pk,
        level=priv.level,
        user=priv.user.username,
        api_key=priv.api_key_id,
        **extra,
    )


@transaction.atomic
def grant_privilege(*, actor: User, address=None, **fields) -> Privilege:
    priv = Privilege.objects.create(creating_username=actor.username, **fields)
    _record(AuditEvent.Kind.PRIVILEGE_GRANTED, priv, actor, address)
    return priv


@transaction.atomic
def change_privilege(
    priv: Privilege, changes: dict, *, actor: User, address=None
) -> Privilege:
    for field, value in changes.items():
        setattr(priv, field, value)
    priv.save(update_fields=list(changes) or None)
    _record(AuditEvent.Kind.PRIVILEGE_CHANGED, priv, actor, address, changes=changes)
    return priv


@transaction.atomic
def revoke_privilege(priv: Privilege, *, actor: User, address=None) -> None:
    _record(AuditEvent.Kind.PRIVILEGE_REVOKED, priv, actor, address)
    priv.delete()
