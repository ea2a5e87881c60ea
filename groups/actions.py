"""State changes for groups."""

from django.db import IntegrityError, transaction

from accounts.models import Account, User
from groups.models import Group
from panel import audit
from panel.models import AuditEvent


class GroupNotEmpty(Exception):
    pass


class GroupNameTaken(Exception):
    pass


@transaction.atomic
def create_group(account: Account, name: str, *, actor: User, address=None) -> Group:
    try:
        with transaction.atomic():
            group = Group.objects.create(account=account, name=name)
    except IntegrityError:
        raise GroupNameTaken() from None
    audit.record(
        AuditEvent.Kind.GROUP_CREATED,
        actor=actor,
        address=address,
        account=account,
        group=name,
    )
    return group


@transaction.atomic
def update_group(group: Group, changes: dict, *, actor: User, address=None) -> Group:
    """Rename a group or set its VLAN. Machines' hostnames follow the name."""
    old_name = group.name
    for field, value in changes.items():
        setattr(group, field, value)
    try:
        with transaction.atomic():
            group.save(update_fields=list(changes) or None)
    except IntegrityError:
        raise GroupNameTaken() from None
    audit.record(
        AuditEvent.Kind.GROUP_CHANGED,
        actor=actor,
        address=address,
        account=group.account,
        group=old_name,
        changes={k: v for k, v in changes.items()},
    )
    return group


@transaction.atomic
def delete_group(group: Group, *, actor: User, address=None) -> None:
    locked = Group.objects.select_for_update().get(pk=group.pk)
    if locked.virtual_machines.exists():
        raise GroupNotEmpty()
    audit.record(
        AuditEvent.Kind.GROUP_DELETED,
        actor=actor,
        address=address,
        account=group.account,
        group=group.name,
    )
    locked.delete()
