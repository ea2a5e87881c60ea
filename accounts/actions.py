"""State changes for users, accounts, sessions and API keys.

Each function runs in one transaction and writes its audit record.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from django.conf import settings
from django.contrib.sessions.models import Session
from django.db import IntegrityError, transaction
from django.utils import timezone

from accounts.hashers import is_md5_crypt, stored_form
from accounts.models import Account, ApiKey, SessionToken, User, hash_secret
from groups.models import Group
from panel import audit
from panel.models import AuditEvent
from privileges.levels import Level
from privileges.models import Privilege


class NameTaken(Exception):
    """A unique name was claimed by someone else first."""

    def __init__(self, field: str):
        super().__init__(field)
        self.field = field


class SignUpClosed(Exception):
    """Only cluster administrators may create users on this panel."""


def new_user_approved(*, by_cluster_admin: bool) -> bool:
    """Whether a user created now starts approved, by CORRAL_SIGNUP: `open`,
    yes; `approval`, not until a cluster admin approves; `closed`, nobody but a
    cluster admin may create users (SignUpClosed). Every way of creating users
    (sign-up, the API, the team portal) asks here."""
    if by_cluster_admin:
        return True
    if settings.CORRAL_SIGNUP == "closed":
        raise SignUpClosed("Sign-up is closed on this panel.")
    return settings.CORRAL_SIGNUP != "approval"


def set_user_password(user: User, password: str) -> None:
    if is_md5_crypt(password):
        user.password = stored_form(password)
    else:
        user.set_password(password)


@transaction.atomic
def create_user(
    *,
    username: str,
    email: str,
    password: str,
    authorized_keys: str = "",
    approved: bool = True,
    account_name: str = "",
    actor: User | None = None,
    address=None,
) -> User:
    user = User(
        username=username,
        email=email,
        authorized_keys=authorized_keys,
        approved=approved,
    )
    set_user_password(user, password)
    try:
        with transaction.atomic():
            user.save()
    except IntegrityError:
        raise NameTaken("username") from None
    audit.record(
        AuditEvent.Kind.USER_CREATED,
        actor=actor or user,
        address=address,
        username_created=username,
    )
    if account_name:
        try:
            create_account(name=account_name, owner=user, address=address)
        except NameTaken:
            raise NameTaken("account_name") from None
    return user


@transaction.atomic
def update_user(user: User, changes: dict, *, actor: User, address=None) -> User:
    """Apply validated changes; a new password ends the user's sessions."""
    changes = dict(changes)
    password = changes.pop("password", None)
    for field, value in changes.items():
        setattr(user, field, value)
    if changes:
        user.save(update_fields=list(changes))
    if password is not None:
        change_password(user, password, actor=actor, address=address)
    return user


@transaction.atomic
def create_account(*, name: str, owner: User, address=None) -> Account:
    """A new account with its `default` group; `owner` becomes its admin."""
    try:
        with transaction.atomic():
            account = Account.objects.create(name=name, created_by=owner)
    except IntegrityError:
        raise NameTaken("name") from None
    Group.objects.create(account=account, name="default")
    Privilege.objects.create(
        user=owner,
        level=Level.ACCOUNT_ADMIN,
        account=account,
        creating_username=owner.username,
    )
    audit.record(
        AuditEvent.Kind.ACCOUNT_CREATED, actor=owner, address=address, account=account
    )
    return account


@transaction.atomic
def update_account(
    account: Account, changes: dict, *, actor: User, address=None
) -> Account:
    """Apply validated changes (such as `suspended`) and record who made them."""
    if not changes:
        return account
    for field, value in changes.items():
        setattr(account, field, value)
    account.save(update_fields=list(changes))
    audit.record(
        AuditEvent.Kind.ACCOUNT_CHANGED,
        actor=actor,
        address=address,
        account=account,
        changes=changes,
    )
    return account


@transaction.atomic
def change_password(user: User, password: str, *, actor: User, address=None) -> None:
    """Set a new password and end every session the user had."""
    set_user_password(user, password)
    user.save(update_fields=["password"])
    end_sessions(user)
    audit.record(
        AuditEvent.Kind.PASSWORD_CHANGED, actor=actor, address=address, user=user.pk
    )


def end_sessions(user: User) -> None:
    SessionToken.objects.filter(user=user).delete()
    # Browser sessions carry a hash of the password and lapse on their own at
    # the next request; deleting them frees the rows now.
    for session in Session.objects.filter(expire_date__gt=timezone.now()).iterator():
        if session.get_decoded().get("_auth_user_id") == str(user.pk):
            session.delete()


@transaction.atomic
def create_session(
    user: User,
    *,
    validity: int,
    factors: list[str],
    yubikey_verified_at: datetime | None,
    address=None,
    impersonated_by: User | None = None,
) -> str:
    """A new session token; only its digest is stored."""
    secret = SessionToken.new_secret()
    SessionToken.objects.create(
        user=user,
        token_hash=hash_secret(secret),
        factors=factors,
        password_verified=True,
        yubikey_verified_at=yubikey_verified_at,
        impersonated_by=impersonated_by,
        expires_at=timezone.now() + timedelta(seconds=validity),
        address=str(address) if address else None,
    )
    return secret


@transaction.atomic
def impersonate(admin: User, target: User, *, validity: int, address=None) -> str:
    """A session for `target` made by a cluster admin; its factors say so."""
    token = create_session(
        target,
        validity=validity,
        factors=["impersonated"],
        yubikey_verified_at=None,
        address=address,
        impersonated_by=admin,
    )
    audit.record(
        AuditEvent.Kind.SIGN_IN,
        actor=admin,
        address=address,
        via="impersonation",
        impersonated=target.username,
    )
    return token


@transaction.atomic
def create_api_key(
    user: User, *, label: str, expires_at: datetime | None, actor: User, address=None
) -> tuple[ApiKey, str]:
    secret = ApiKey.new_secret()
    key = ApiKey.objects.create(
        user=user, label=label, key_hash=hash_secret(secret), expires_at=expires_at
    )
    audit.record(
        AuditEvent.Kind.API_KEY_CREATED,
        actor=actor,
        address=address,
        api_key=key.pk,
        label=label,
        owner=user.username,
    )
    return key, secret


@transaction.atomic
def delete_api_key(key: ApiKey, *, actor: User, address=None) -> None:
    audit.record(
        AuditEvent.Kind.API_KEY_DELETED,
        actor=actor,
        address=address,
        api_key=key.pk,
        label=key.label,
        owner=key.user.username,
    )
    key.delete()


@transaction.atomic
def delete_user(user: User, *, actor: User, address=None) -> None:
    audit.record(
        AuditEvent.Kind.USER_DELETED, actor=actor, address=address, user=user.username
    )
    user.delete()
