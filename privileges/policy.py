"""The one authorization policy.

Every view asks this module what the caller may see and do. It turns the
caller's privileges into scopes (which accounts, groups and machines they
reach, and at what level), counting only privileges whose conditions hold for
this request. Views never filter by user on their own.

Status codes follow one rule: an object the caller cannot reach at all is
404, exactly as if it did not exist; one they can read but not change is 403;
one they could reach if a condition held (a fresh YubiKey OTP, an allowed
address) is 403 naming the condition, never showing the object.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import timedelta
from functools import cached_property

from django.db.models import Model, Q, QuerySet
from django.utils import timezone
from rest_framework.exceptions import NotFound, PermissionDenied

from accounts.models import Account, ApiKey, User
from groups.models import Group
from machines.models import VirtualMachine
from panel.api import ConditionUnmet, Suspended
from panel.context import AuthContext
from privileges.levels import CLUSTER_LEVELS, RANK, Level, rank
from privileges.models import Privilege

ACCOUNT_ADMIN = RANK[Level.ACCOUNT_ADMIN]
GROUP_ADMIN = RANK[Level.GROUP_ADMIN]
VM_ADMIN = RANK[Level.VM_ADMIN]
VM_CONSOLE = RANK[Level.VM_CONSOLE]
CLUSTER_ADMIN = RANK[Level.CLUSTER_ADMIN]
CLUSTER_SU = RANK[Level.CLUSTER_SU]


@dataclass
class Scope:
    """What a set of privileges reaches: levels keyed by target id."""

    cluster: int = 0
    accounts: dict[int, int] = field(default_factory=dict)
    groups: dict[int, int] = field(default_factory=dict)
    vms: dict[int, int] = field(default_factory=dict)
    # Accounts and groups that are visible because something inside is.
    account_ids: set[int] = field(default_factory=set)
    group_ids: set[int] = field(default_factory=set)

    @classmethod
    def of(cls, privileges) -> Scope:
        scope = cls()
        for priv in privileges:
            level = rank(priv.level)
            if priv.level in CLUSTER_LEVELS:
                scope.cluster = max(scope.cluster, level)
            elif priv.account_id:
                scope._raise(scope.accounts, priv.account_id, level)
                scope.account_ids.add(priv.account_id)
            elif priv.group_id:
                scope._raise(scope.groups, priv.group_id, level)
                scope.group_ids.add(priv.group_id)
                scope.account_ids.add(priv.group.account_id)
            elif priv.virtual_machine_id:
                vm = priv.virtual_machine
                scope._raise(scope.vms, vm.id, level)
                scope.group_ids.add(vm.group_id)
                scope.account_ids.add(vm.group.account_id)
        return scope

    @staticmethod
    def _raise(levels: dict[int, int], key: int, level: int) -> None:
        levels[key] = max(levels.get(key, 0), level)

    def level_on(self, obj) -> int:
        """The highest level this scope grants on `obj` itself."""
        if isinstance(obj, Account):
            return max(self.cluster, self.accounts.get(obj.id, 0))
        if isinstance(obj, Group):
            return max(
                self.cluster,
                self.accounts.get(obj.account_id, 0),
                self.groups.get(obj.id, 0),
            )
        if isinstance(obj, VirtualMachine):
            return max(
                self.cluster,
                self.accounts.get(obj.group.account_id, 0),
                self.groups.get(obj.group_id, 0),
                self.vms.get(obj.id, 0),
            )
        return self.cluster

    def sees(self, obj) -> bool:
        if self.cluster or self.level_on(obj):
            return True
        if isinstance(obj, Account):
            return obj.id in self.account_ids
        if isinstance(obj, Group):
            return obj.id in self.group_ids
        return False


class Policy:
    """Authorization decisions for one request."""

    def __init__(self, ctx: AuthContext | None):
        self.ctx = ctx
        self.user = ctx.user if ctx else None

    @classmethod
    def for_request(cls, request) -> Policy:
        cached = getattr(request, "_corral_policy", None)
        if cached is not None:
            return cached
        ctx = request.auth if isinstance(request.auth, AuthContext) else None
        policy = cls(ctx)
        request._corral_policy = policy
        return policy

    # Privileges -----------------------------------------------------------

    @cached_property
    def held(self) -> list[Privilege]:
        """Every privilege this credential carries, conditions aside.

        An API key's privileges count only as far as its owner's own reach:
        a key never outlives its owner's removal from a team.
        """
        if self.ctx is None:
            return []
        own = self._user_privileges(api_key=None)
        if self.user.is_superuser:
            own.append(
                Privilege(
                    user=self.user, level=Level.CLUSTER_SU, password_required=True
                )
            )
        if self.ctx.api_key is None:
            return own
        owner = Scope.of(own)
        return [
            priv
            for priv in self._user_privileges(api_key=self.ctx.api_key)
            if owner.level_on(target_of(priv)) >= rank(priv.level)
        ]

    def _user_privileges(self, api_key: ApiKey | None) -> list[Privilege]:
        qs = Privilege.objects.filter(user=self.user).select_related(
            "account", "group__account", "virtual_machine__group__account"
        )
        if api_key is not None:
            return list(qs.filter(api_key=api_key))
        return list(qs.filter(api_key__isnull=True))

    def unmet_conditions(self, priv: Privilege) -> list[str]:
        """The names of the conditions of `priv` that this request fails."""
        ctx = self.ctx
        unmet = []
        if priv.password_required and ctx.api_key is None and not ctx.password_verified:
            unmet.append("password")
        if self._second_factor_missing(priv):
            unmet.append("second_factor")
        if priv.yubikey_required and not self._yubikey_fresh(priv.yubikey_otp_max_age):
            unmet.append("yubikey")
        networks = priv.networks
        if networks is not None and not (
            ctx.client_ip is not None
            and any(
                ctx.client_ip.version == net.version and ctx.client_ip in net
                for net in networks
            )
        ):
            unmet.append("ip")
        return unmet

    def _second_factor_missing(self, priv: Privilege) -> bool:
        """An account that demands a second factor lends its privileges only
        to sign-ins that used one. It is a condition on the account's
        privileges, not a sign-in gate, so no account admin can lock a user
        out by granting them something. API keys are credentials of their own
        and are exempt."""
        if self.ctx.api_key is not None or "2fa" in self.ctx.factors:
            return False
        account = account_of(target_of(priv))
        return account is not None and account.require_second_factor

    def _yubikey_fresh(self, max_age: int) -> bool:
        verified_at = self.ctx.yubikey_verified_at
        if verified_at is None:
            return False
        return timezone.now() - verified_at <= timedelta(seconds=max_age)

    @cached_property
    def active(self) -> list[Privilege]:
        return [p for p in self.held if not self.unmet_conditions(p)]

    @cached_property
    def scope(self) -> Scope:
        return Scope.of(self.active)

    @cached_property
    def held_scope(self) -> Scope:
        return Scope.of(self.held)

    @property
    def cluster_level(self) -> int:
        return self.scope.cluster

    def is_cluster_admin(self) -> bool:
        return self.scope.cluster >= CLUSTER_ADMIN

    # Scoped querysets -----------------------------------------------------

    # With `held=True` the scopes count every privilege held, conditions
    # aside: the dashboard lists what an OTP or another network would unlock.

    def _scope(self, held: bool) -> Scope:
        return self.held_scope if held else self.scope

    def accounts(self, *, held: bool = False) -> QuerySet[Account]:
        s = self._scope(held)
        if s.cluster:
            return Account.objects.all()
        return Account.objects.filter(id__in=s.account_ids)

    def groups(self, *, held: bool = False) -> QuerySet[Group]:
        s = self._scope(held)
        if s.cluster:
            return Group.objects.all()
        return Group.objects.filter(
            Q(account_id__in=s.accounts) | Q(id__in=s.group_ids)
        )

    def virtual_machines(self, *, held: bool = False) -> QuerySet[VirtualMachine]:
        s = self._scope(held)
        if s.cluster:
            return VirtualMachine.objects.all()
        return VirtualMachine.objects.filter(
            Q(group__account_id__in=s.accounts)
            | Q(group_id__in=s.groups)
            | Q(id__in=s.vms)
        )

    def privileges(self) -> QuerySet[Privilege]:
        """Privileges the caller may list: their own, and those on targets they
        administer (account admins see their account's, and so on)."""
        if self.ctx is None:
            return Privilege.objects.none()
        if self.scope.cluster >= CLUSTER_ADMIN:
            return Privilege.objects.all()
        s = self.scope
        admin_accounts = [a for a, lvl in s.accounts.items() if lvl >= ACCOUNT_ADMIN]
        admin_groups = [g for g, lvl in s.groups.items() if lvl >= GROUP_ADMIN]
        admin_vms = [v for v, lvl in s.vms.items() if lvl >= VM_ADMIN]
        return Privilege.objects.filter(
            Q(user=self.user)
            | Q(account_id__in=admin_accounts)
            | Q(group__account_id__in=admin_accounts)
            | Q(virtual_machine__group__account_id__in=admin_accounts)
            | Q(group_id__in=admin_groups)
            | Q(virtual_machine__group_id__in=admin_groups)
            | Q(virtual_machine_id__in=admin_vms)
        )

    def users(self) -> QuerySet[User]:
        """Users the caller may read: themselves, and members of what they admin."""
        if self.ctx is None:
            return User.objects.none()
        if self.scope.cluster >= CLUSTER_ADMIN:
            return User.objects.all()
        member_ids = self.privileges().values("user_id")
        return User.objects.filter(Q(id=self.user.id) | Q(id__in=member_ids))

    def api_keys(self) -> QuerySet[ApiKey]:
        """API keys the caller may list or delete: their own; cluster admins
        see everyone's."""
        if self.ctx is None:
            return ApiKey.objects.none()
        if self.scope.cluster >= CLUSTER_ADMIN:
            return ApiKey.objects.all()
        return ApiKey.objects.filter(user=self.user)

    # Decisions ------------------------------------------------------------

    def level_on(self, obj) -> int:
        return self.scope.level_on(obj)

    def can(self, obj, level: str | int) -> bool:
        needed = level if isinstance(level, int) else RANK[level]
        return self.scope.level_on(obj) >= needed

    def unmet_for(self, obj, level: str | int | None = None) -> list[str]:
        """The conditions standing between the caller and `level` on `obj`
        (or seeing it, without a level): those of the held privilege that
        comes closest, so a page can offer the remedy. Empty when no held
        privilege would grant it at all."""
        needed = RANK[level] if isinstance(level, str) else level
        best: list[str] | None = None
        for priv in self.held:
            one = Scope.of([priv])
            if not (one.level_on(obj) >= needed if needed else one.sees(obj)):
                continue
            unmet = self.unmet_conditions(priv)
            if best is None or len(unmet) < len(best):
                best = unmet
        return sorted(best or [])

    def require_visible(self, obj) -> None:
        """404 unless the caller reaches `obj`; 403 naming the condition when
        they would reach it but a condition fails."""
        if self.scope.sees(obj):
            return
        if self.held_scope.sees(obj):
            raise self._condition_error(obj)
        raise NotFound()

    def require(self, obj, level: str | int, *, write: bool = True) -> None:
        """Visible, and the caller holds `level` on it with conditions met."""
        self.require_visible(obj)
        needed = level if isinstance(level, int) else RANK[level]
        if self.scope.level_on(obj) < needed:
            if self.held_scope.level_on(obj) >= needed:
                raise self._condition_error(obj)
            raise PermissionDenied(
                "You do not have permission to change this."
                if write
                else "You do not have permission to do this."
            )
        if write:
            self.require_not_suspended(obj)

    def require_cluster(self, level: str | int = Level.CLUSTER_ADMIN) -> None:
        needed = level if isinstance(level, int) else RANK[level]
        if self.scope.cluster >= needed:
            return
        if self.held_scope.cluster >= needed:
            raise self._condition_error(None)
        raise PermissionDenied("Only cluster administrators may do this.")

    def require_not_suspended(self, obj) -> None:
        if self.scope.cluster >= CLUSTER_ADMIN:
            return
        account = account_of(obj)
        if account is not None and account.suspended:
            raise Suspended()

    def find(self, query: Callable[[Policy], Model | None]) -> Model:
        """What `query` finds in the caller's scope, else 404; or 403 naming
        the conditions when only privileges whose conditions fail find it.

        For objects reached through privileges rather than by target, such
        as users and privileges themselves.
        """
        found = query(self)
        if found is not None:
            return found
        inactive = [p for p in self.held if self.unmet_conditions(p)]
        if inactive and query(self.held_policy) is not None:
            raise self._unmet_error(inactive)
        raise NotFound()

    @cached_property
    def held_policy(self) -> Policy:
        """This caller as if every condition of their privileges held."""
        policy = Policy(self.ctx)
        policy.__dict__["held"] = self.held
        policy.__dict__["active"] = self.held
        return policy

    def _condition_error(self, obj) -> ConditionUnmet:
        return self._unmet_error(
            priv
            for priv in self.held
            if (
                Scope.of([priv]).sees(obj)
                if obj is not None
                else priv.level in CLUSTER_LEVELS
            )
        )

    def _unmet_error(self, privileges) -> ConditionUnmet:
        unmet: set[str] = set()
        for priv in privileges:
            unmet.update(self.unmet_conditions(priv))
        return ConditionUnmet(
            describe_unmet(sorted(unmet), self.ctx), unmet=sorted(unmet)
        )

    # Privilege management -------------------------------------------------

    def can_manage_privilege(self, target, level: str, api_key=None) -> bool:
        """Grant, change or revoke `level` on `target` (None for cluster levels):
        only below your own level there, or up to it for your own API key."""
        return self._may_manage(self.scope, target, level, api_key)

    def require_manage_privilege(self, target, level: str, api_key=None) -> None:
        """PermissionDenied unless `can_manage_privilege`; ConditionUnmet when
        a privilege held but inactive (a condition fails) would allow it."""
        if self.can_manage_privilege(target, level, api_key):
            return
        if self._may_manage(self.held_scope, target, level, api_key):
            raise self._condition_error(target)
        raise PermissionDenied(
            "You may only manage privileges below your own level on this target."
        )

    def _may_manage(self, scope: Scope, target, level: str, api_key) -> bool:
        held = scope.cluster if target is None else scope.level_on(target)
        if api_key is not None and api_key.user_id == self.user.id:
            return held >= rank(level)
        return held > rank(level)


def target_of(priv: Privilege) -> Account | Group | VirtualMachine | None:
    """What `priv` is on; None for cluster levels."""
    if priv.account_id:
        return priv.account
    if priv.group_id:
        return priv.group
    if priv.virtual_machine_id:
        return priv.virtual_machine
    return None


def account_of(obj) -> Account | None:
    if isinstance(obj, Account):
        return obj
    if isinstance(obj, Group):
        return obj.account
    if isinstance(obj, VirtualMachine):
        return obj.group.account
    return None


_CONDITION_TEXT = {
    "yubikey": "a YubiKey OTP verified recently enough (send X-Yubikey-Otp, or "
    "sign in again with your YubiKey)",
    "ip": "a connection from an allowed network",
    "password": "signing in with your password",
    "second_factor": "a second factor at sign-in (this account demands one: "
    "sign in with your YubiKey or authenticator code)",
}


def describe_unmet(unmet: list[str], ctx: AuthContext | None) -> str:
    needs = "; ".join(_CONDITION_TEXT[name] for name in unmet) or "a condition"
    text = f"Your privilege here needs {needs}."
    if "ip" in unmet and ctx is not None and ctx.client_ip is not None:
        text += f" Your address is {ctx.client_ip}."
    return text
