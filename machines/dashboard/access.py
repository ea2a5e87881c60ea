"""Who may do what on the dashboard's pages, asked of the one policy.

`Panel` wraps the policy for one browser request: it finds accounts, groups
and machines by the names in a path (404 for outsiders, exactly as for a
missing name) and says for each button whether it can be used, and if not,
why: not permitted, needs a fresh YubiKey OTP (the button stays usable and
asks for one), only from allowed networks, or the machine's state.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from functools import cached_property

from django.http import Http404

from accounts.authentication import browser_context
from accounts.models import Account
from accounts.otp import has_yubikey
from groups.models import Group
from machines.models import VirtualMachine
from panel.api import lookup
from panel.context import client_address
from privileges.levels import RANK, Level
from privileges.policy import Policy


@dataclass(frozen=True)
class Gate:
    """Whether one button may be used, and the reason shown when not."""

    allowed: bool = True
    step_up: bool = False  # usable: pressing it asks for a YubiKey OTP
    reason: str = ""

    @property
    def disabled(self) -> bool:
        return not self.allowed and not self.step_up

    def unless(self, condition: bool, reason: str) -> Gate:
        """The same gate, closed with `reason` when `condition` holds (the
        first reason found is the one shown)."""
        if not condition or self.disabled:
            return self
        return replace(self, allowed=False, step_up=False, reason=reason)


LEVEL_WORDS = {
    Level.ACCOUNT_ADMIN: "an account admin",
    Level.GROUP_ADMIN: "a group admin",
    Level.VM_ADMIN: "a machine admin",
}


class Panel:
    """The policy and the signed-in user, for one browser request."""

    def __init__(self, request):
        self.request = request
        self.user = request.user
        self.ctx = browser_context(request, request.user)
        self.policy = Policy(self.ctx)
        request.corral_panel = self

    @property
    def address(self) -> str:
        return client_address(self.request)

    @cached_property
    def has_yubikey(self) -> bool:
        return has_yubikey(self.user)

    # Finding things by the names in a path ---------------------------------

    def account(self, spec: str) -> Account:
        account = lookup(Account.objects.all(), spec)
        return self._visible(account)

    def group(self, account_spec: str, group_spec: str) -> Group:
        account = self.account(account_spec)
        group = lookup(
            Group.objects.select_related("account").filter(account=account),
            group_spec,
        )
        return self._visible(group)

    def machine(self, account: str, group: str, name: str) -> VirtualMachine:
        found = self.group(account, group)
        vm = lookup(
            VirtualMachine.objects.select_related("group__account", "head").filter(
                group=found
            ),
            name,
        )
        return self._visible(vm)

    def _visible(self, obj):
        if obj is None:
            raise Http404
        # NotFound and ConditionUnmet propagate to the page decorator.
        self.policy.require_visible(obj)
        return obj

    # Buttons -----------------------------------------------------------------

    def gate(self, obj, level: str) -> Gate:
        if self.policy.can(obj, level):
            return Gate()
        unmet = self.policy.unmet_for(obj, level)
        if not unmet:
            needs = LEVEL_WORDS.get(level, level)
            return Gate(False, reason=f"Not permitted: this needs {needs}.")
        return self.condition_gate(unmet)

    def condition_gate(self, unmet) -> Gate:
        if set(unmet) == {"yubikey"} and self.has_yubikey:
            return Gate(False, step_up=True, reason="Needs a fresh YubiKey OTP.")
        if "yubikey" in unmet and not self.has_yubikey:
            return Gate(False, reason="Needs a YubiKey, and you have none enrolled.")
        if "second_factor" in unmet:
            return Gate(
                False,
                reason="This account demands a second factor at sign-in; "
                "sign in again with yours.",
            )
        if "ip" in unmet:
            return Gate(
                False,
                reason="Only from allowed networks "
                f"(your address is {self.ctx.client_ip or 'unknown'}).",
            )
        return Gate(False, reason="A condition of your privilege is not met.")

    def level_on(self, obj) -> int:
        return self.policy.level_on(obj)

    def is_admin_of(self, obj, level: str) -> bool:
        """Conditions aside: whether the caller holds `level` on `obj`."""
        return self.policy.held_scope.level_on(obj) >= RANK[level]


def cluster_nav(request) -> dict:
    """Templates' `cluster_admin`: whether the panel's nav links the cluster
    pages. Conditions aside (a YubiKey condition is asked for on the page);
    evaluated only by templates that use it, from the request's `Panel`."""

    def held() -> bool:
        panel = getattr(request, "corral_panel", None)
        return (
            panel is not None
            and panel.policy.held_scope.cluster >= RANK[Level.CLUSTER_ADMIN]
        )

    return {"cluster_admin": held}
