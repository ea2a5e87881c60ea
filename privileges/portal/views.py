"""The team admin portal: an account's members, privileges, API keys and
audit log, under /panel/team/<account>/.

A second front door onto the same policy and actions as the API: views parse
a form, ask `Policy`, call one action and render. Outsiders get the same 404
as for a missing account; a privilege whose condition fails is explained, and
for the YubiKey condition the page asks for an OTP in place and redoes the
action (see stepup.py).
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property, wraps
from urllib.parse import urlencode

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.paginator import Paginator
from django.db import transaction
from django.db.models import Prefetch, Q
from django.http import Http404, HttpResponseRedirect
from django.shortcuts import render
from django.urls import reverse
from django.utils.http import url_has_allowed_host_and_scheme
from django.views.decorators.http import require_http_methods, require_POST
from django_htmx.http import HttpResponseClientRedirect
from rest_framework.exceptions import NotFound, PermissionDenied

from accounts import actions as account_actions
from accounts.authentication import browser_context
from accounts.models import Account, ApiKey, User
from groups.models import Group
from machines.models import VirtualMachine
from panel.api import ConditionUnmet, is_id, lookup
from panel.context import client_address
from panel.models import AuditEvent
from privileges import actions
from privileges.grants import require_grantable, resolve_grant
from privileges.levels import RANK
from privileges.models import Privilege
from privileges.policy import ACCOUNT_ADMIN, GROUP_ADMIN, Policy, Scope
from privileges.portal import forms
from privileges.portal.stepup import (
    OTP_FIELD,
    can_step_up,
    explain,
    retry_target,
    verify_step_up,
)
from privileges.serializers import privilege_queryset

AUDIT_PAGE_SIZE = 50
LEVEL_NAMES = {rank: level for level, rank in RANK.items()}


@dataclass
class Team:
    """One account as seen by one signed-in admin."""

    request: object
    account: Account
    policy: Policy

    @property
    def address(self) -> str:
        return client_address(self.request)

    @property
    def user(self) -> User:
        return self.request.user

    def admin_rank(self, scope: Scope) -> int:
        """The highest level `scope` holds on the account or any of its groups."""
        ranks = [scope.level_on(self.account)]
        ranks += [scope.groups.get(g.id, 0) for g in self.all_groups]
        return max(ranks)

    def administers(self, scope: Scope) -> bool:
        return self.admin_rank(scope) >= GROUP_ADMIN

    def is_account_admin(self) -> bool:
        return self.policy.scope.level_on(self.account) >= ACCOUNT_ADMIN

    @cached_property
    def all_groups(self) -> list[Group]:
        return list(Group.objects.filter(account=self.account).order_by("name"))

    def managed_groups(self, scope: Scope) -> list[Group]:
        return [g for g in self.all_groups if scope.level_on(g) >= GROUP_ADMIN]

    def targets(self, *, up_to=False) -> list[tuple[str, str]]:
        """What the admin could grant on, conditions aside (a failing condition
        is explained when they submit, not hidden). `up_to`: for their own API
        key, which may get their own level."""
        scope = self.policy.held_scope
        choices = []
        if scope.level_on(self.account) >= ACCOUNT_ADMIN + (0 if up_to else 1):
            choices.append((f"account:{self.account.pk}", f"account {self.account}"))
        groups = self.managed_groups(scope)
        choices += [(f"group:{g.pk}", f"group {g.name}") for g in groups]
        vms = VirtualMachine.objects.filter(group__in=groups, deleted=False)
        for vm in vms.select_related("group").order_by("group__name", "name"):
            choices.append((f"vm:{vm.pk}", f"machine {vm.name} ({vm.group.name})"))
        return choices

    def form_kwargs(self, *, up_to=False) -> dict:
        held = self.admin_rank(self.policy.held_scope)
        levels = forms.levels_up_to(held) if up_to else forms.levels_below(held)
        return {
            "levels": levels,
            "targets": self.targets(up_to=up_to),
            "own_level": LEVEL_NAMES.get(held),
        }

    def privileges(self):
        """The privileges in this account the admin may see (group admins:
        their groups' and machines' only), per the policy."""
        account = self.account
        in_account = (
            Q(account=account)
            | Q(group__account=account)
            | Q(virtual_machine__group__account=account)
        )
        return privilege_queryset(
            self.policy.privileges().filter(in_account).select_related("api_key")
        ).order_by("user__username", "api_key_id", "id")

    def get_privilege(self, spec: str) -> Privilege:
        priv = self.privileges().filter(pk=int(spec)).first() if is_id(spec) else None
        if priv is None:
            raise Http404
        return described(priv)

    def may_manage(self, priv: Privilege) -> bool:
        """Conditions aside, so the button shows and the step-up explains."""
        target = priv.account or priv.group or priv.virtual_machine
        return self.policy._may_manage(
            self.policy.held_scope, target, priv.level, priv.api_key
        )

    def url(self, name: str = "members", **kwargs) -> str:
        return reverse(
            f"portal:{name}", kwargs={"account": self.account.name, **kwargs}
        )


def described(priv: Privilege) -> Privilege:
    """Attach the words the pages show for a privilege's target and conditions."""
    if priv.account_id:
        priv.on = f"account {priv.account.name}"
    elif priv.group_id:
        priv.on = f"group {priv.group.name}"
    else:
        vm = priv.virtual_machine
        priv.on = f"machine {vm.name} (group {vm.group.name})"
    parts = []
    if priv.yubikey_required:
        parts.append(f"YubiKey within {priv.yubikey_otp_max_age} s")
    if priv.ip_restrictions is not None:
        parts.append("from " + ", ".join(priv.ip_restrictions))
    priv.conditions_text = "; ".join(parts) or "none"
    return priv


def load_team(request, account_spec: str) -> Team:
    policy = Policy(browser_context(request, request.user))
    account = lookup(Account.objects.all(), account_spec)
    if account is None:
        raise Http404
    policy.require_visible(account)
    team = Team(request, account, policy)
    if team.administers(policy.scope):
        return team
    if team.administers(policy.held_scope):
        raise policy._condition_error(account)
    raise PermissionDenied("Only the account's admins and group admins manage it.")


def team_page(view):
    """Signed in, an admin of the account; turns the policy's refusals into
    pages: 404 as for a missing account, 403 with the reason, and for an
    unmet YubiKey condition an OTP prompt that then redoes the request."""

    @login_required
    @wraps(view)
    def wrapper(request, account, **kwargs):
        if request.method == "POST" and OTP_FIELD in request.POST:
            error = verify_step_up(request, request.POST[OTP_FIELD])
            if error:
                return step_up(request, ("yubikey",), otp_error=error)
        try:
            team = load_team(request, account)
            return view(request, team, **kwargs)
        except NotFound:
            raise Http404 from None
        except ConditionUnmet as unmet:
            return step_up(request, unmet.unmet)
        except PermissionDenied as denied:
            return render(
                request,
                "privileges/portal/forbidden.html",
                {"message": str(denied.detail)},
                status=403,
            )

    return wrapper


def status_for(request, status: int) -> int:
    # htmx swaps only 2xx answers by default; form errors and prompts must
    # replace the form in place, so they answer 200 to htmx requests.
    return 200 if request.htmx else status


def page(request, template: str, partial: str, context: dict, status: int = 200):
    """The whole page, or for htmx only the part that replaces the form."""
    chosen = partial if request.htmx else template
    context = {**context, "partial": partial}
    return render(request, chosen, context, status=status_for(request, status))


def step_up(request, unmet, otp_error: str = ""):
    ctx = browser_context(request, request.user)
    action, carried = retry_target(request)
    context = {
        "lines": explain(unmet, ctx, request.user),
        "offer_otp": can_step_up(unmet, request.user) or bool(otp_error),
        "otp_error": otp_error,
        "action": action,
        "carried": carried,
    }
    return page(
        request,
        "privileges/portal/step_up.html",
        "privileges/portal/_step_up.html",
        context,
        status=403,
    )


def done(request, url: str, message: str):
    messages.success(request, message)
    if request.htmx:
        return HttpResponseClientRedirect(url)
    return HttpResponseRedirect(url)


@login_required
@require_POST
def step_up_view(request):
    """The OTP prompt of a page (not an action): verify, then go back."""
    target = request.POST.get("next", "")
    if not url_has_allowed_host_and_scheme(target, allowed_hosts={request.get_host()}):
        target = "/panel/"
    error = verify_step_up(request, request.POST.get(OTP_FIELD, ""))
    if error:
        return _step_up_again(request, target, error)
    if request.htmx:
        return HttpResponseClientRedirect(target)
    return HttpResponseRedirect(target)


def _step_up_again(request, target: str, error: str):
    context = {
        "lines": explain(("yubikey",), browser_context(request, request.user),
                         request.user),
        "offer_otp": True,
        "otp_error": error,
        "action": reverse("portal-step-up"),
        "carried": [("next", target)],
    }  # fmt: skip
    return page(
        request,
        "privileges/portal/step_up.html",
        "privileges/portal/_step_up.html",
        context,
        status=403,
    )


# Members and privileges -----------------------------------------------------


@team_page
@require_http_methods(["GET"])
def members(request, team: Team):
    privileges = [described(priv) for priv in team.privileges()]
    for priv in privileges:
        priv.manageable = team.may_manage(priv)
    inactive = team.managed_groups(team.policy.held_scope) != team.managed_groups(
        team.policy.scope
    )
    return render(
        request,
        "privileges/portal/members.html",
        {
            "team": team,
            "privileges": privileges,
            "form": forms.GrantForm(**team.form_kwargs()),
            "inactive": inactive,
            "partial": "privileges/portal/_grant_form.html",
        },
    )


@team_page
@require_http_methods(["GET", "POST"])
def grant(request, team: Team):
    form = forms.GrantForm(request.POST or None, **team.form_kwargs())
    if request.method == "POST" and form.is_valid():
        priv = _grant(team, form)
        if priv is not None:
            return done(
                request,
                team.url(),
                f"Granted {priv.level} to {priv.user.username}.",
            )
    status = 400 if form.errors else 200
    return page(
        request,
        "privileges/portal/grant.html",
        "privileges/portal/_grant_form.html",
        {"team": team, "form": form},
        status,
    )


def _grant(team: Team, form) -> Privilege | None:
    grantee = User.objects.filter(username=form.cleaned_data["username"]).first()
    if grantee is None:
        form.add_error("username", "No user has this username.")
        return None
    data = {**form.grant_data(), **form.validated}
    fields = _resolved(team, grantee, data, form)
    if fields is None:
        return None
    return actions.grant_privilege(actor=team.user, address=team.address, **fields)


def _resolved(team: Team, grantee: User, data: dict, form) -> dict | None:
    """Grant fields the admin may hand out, or None with errors on `form`."""
    fields, errors = resolve_grant(team.policy, grantee, data)
    for name, problems in errors.items():
        field = "target" if name.endswith("_id") and "target" in form.fields else None
        for problem in problems:
            form.add_error(field, problem)
    if errors:
        return None
    try:
        require_grantable(team.policy, fields)
    except ConditionUnmet:
        raise
    except PermissionDenied as denied:
        form.add_error("level", str(denied.detail))
        return None
    return fields


@team_page
@require_http_methods(["GET", "POST"])
def conditions(request, team: Team, privilege: str):
    priv = team.get_privilege(privilege)
    form = forms.ConditionsForm(
        request.POST or None, initial=forms.ConditionsForm.initial_for(priv)
    )
    if request.method == "POST" and form.is_valid():
        target = priv.account or priv.group or priv.virtual_machine
        team.policy.require_manage_privilege(target, priv.level, priv.api_key)
        team.policy.require_not_suspended(target)
        actions.change_privilege(
            priv, form.validated, actor=team.user, address=team.address
        )
        return done(
            request,
            team.url(),
            f"Changed the conditions of {priv.user.username}'s {priv.level}.",
        )
    return page(
        request,
        "privileges/portal/conditions.html",
        "privileges/portal/_conditions_form.html",
        {"team": team, "form": form, "priv": priv},
        400 if form.errors else 200,
    )


@team_page
@require_http_methods(["GET", "POST"])
def revoke(request, team: Team, privilege: str):
    priv = team.get_privilege(privilege)
    if request.method == "POST" and request.POST.get("confirm") == "yes":
        target = priv.account or priv.group or priv.virtual_machine
        team.policy.require_manage_privilege(target, priv.level, priv.api_key)
        team.policy.require_not_suspended(target)
        actions.revoke_privilege(priv, actor=team.user, address=team.address)
        return done(
            request,
            team.url(),
            f"Revoked {priv.user.username}'s {priv.level}.",
        )
    return page(
        request,
        "privileges/portal/revoke.html",
        "privileges/portal/_revoke_confirm.html",
        {"team": team, "priv": priv},
    )


@team_page
@require_http_methods(["GET", "POST"])
def create_user(request, team: Team):
    # The same sign-up rule as POST /users: a team admin cannot mint users
    # where sign-up is closed, nor approved ones where it needs approval.
    try:
        approved = account_actions.new_user_approved(
            by_cluster_admin=team.policy.is_cluster_admin()
        )
    except account_actions.SignUpClosed:
        return page(
            request,
            "privileges/portal/create_user.html",
            "privileges/portal/_create_user_closed.html",
            {"team": team},
            403 if request.method == "POST" else 200,
        )
    form = forms.CreateUserForm(request.POST or None, **team.form_kwargs())
    if request.method == "POST" and form.is_valid():
        user = _create_user(team, form, approved=approved)
        if user is not None:
            waiting = "" if approved else " (waiting for a cluster admin's approval)"
            return done(
                request,
                team.url(),
                f"Created {user.username} with {form.cleaned_data['level']}{waiting}.",
            )
    return page(
        request,
        "privileges/portal/create_user.html",
        "privileges/portal/_create_user_form.html",
        {"team": team, "form": form, "approved": approved},
        400 if form.errors else 200,
    )


def _create_user(team: Team, form, *, approved: bool) -> User | None:
    data = form.validated
    # Checked with an unsaved user first, so a refused grant creates nobody.
    fields = _resolved(team, User(username=data["username"]), form.grant_data(), form)
    if fields is None:
        return None
    with transaction.atomic():
        try:
            user = account_actions.create_user(
                username=data["username"],
                email=data["email"],
                password=data["password"],
                approved=approved,
                actor=team.user,
                address=team.address,
            )
        except account_actions.NameTaken:
            form.add_error("username", "is already taken")
            return None
        actions.grant_privilege(
            actor=team.user, address=team.address, **{**fields, "user": user}
        )
    return user


# API keys -------------------------------------------------------------------


def _own_keys(team: Team):
    in_account = (
        Q(account=team.account)
        | Q(group__account=team.account)
        | Q(virtual_machine__group__account=team.account)
    )
    return (
        ApiKey.objects.filter(user=team.user)
        .prefetch_related(
            Prefetch(
                "privileges",
                queryset=privilege_queryset(Privilege.objects.filter(in_account)),
                to_attr="team_privileges",
            )
        )
        .order_by("id")
    )


@team_page
@require_http_methods(["GET", "POST"])
def api_keys(request, team: Team):
    form = forms.ApiKeyForm(request.POST or None, **team.form_kwargs(up_to=True))
    secret = key = None
    if request.method == "POST" and form.is_valid():
        key, secret = _create_key(team, form)
    context = {
        "team": team,
        "form": form
        if secret is None
        else forms.ApiKeyForm(**team.form_kwargs(up_to=True)),
        "keys": _own_keys(team),
        "new_key": key,
        "secret": secret,
    }
    response = page(
        request,
        "privileges/portal/api_keys.html",
        "privileges/portal/_api_key_form.html",
        context,
        400 if form.errors else (201 if secret else 200),
    )
    # The key is shown this once; no cache may keep the page.
    response["Cache-Control"] = "no-store"
    return response


def _create_key(team: Team, form) -> tuple[ApiKey | None, str | None]:
    data = form.cleaned_data
    level = data.get("level")
    with transaction.atomic():
        key, secret = account_actions.create_api_key(
            team.user,
            label=data.get("label", ""),
            expires_at=data.get("expires_at"),
            actor=team.user,
            address=team.address,
        )
        if level:
            grant_data = {**form.grant_data(), "api_key_id": key.pk}
            fields = _resolved(team, team.user, grant_data, form)
            if fields is None:
                transaction.set_rollback(True)
                return None, None
            actions.grant_privilege(actor=team.user, address=team.address, **fields)
    return key, secret


@team_page
@require_http_methods(["GET", "POST"])
def api_key_delete(request, team: Team, key: str):
    found = _own_keys(team).filter(pk=int(key)).first() if is_id(key) else None
    if found is None:
        raise Http404
    if request.method == "POST" and request.POST.get("confirm") == "yes":
        account_actions.delete_api_key(found, actor=team.user, address=team.address)
        return done(request, team.url("api-keys"), f"Deleted the API key {found}.")
    return page(
        request,
        "privileges/portal/api_key_delete.html",
        "privileges/portal/_api_key_delete_confirm.html",
        {"team": team, "key": found},
    )


# Audit log ------------------------------------------------------------------


@team_page
@require_http_methods(["GET"])
def audit_log(request, team: Team):
    if not team.is_account_admin():
        raise PermissionDenied("The audit log is for the account's admins.")
    events = AuditEvent.objects.filter(account=team.account)
    user = request.GET.get("user", "").strip()
    kind = request.GET.get("kind", "").strip()
    if user:
        events = events.filter(actor_username=user)
    if kind:
        events = events.filter(kind=kind)
    paginator = Paginator(events.order_by("-created_at", "-id"), AUDIT_PAGE_SIZE)
    page_obj = paginator.get_page(request.GET.get("page"))
    query = urlencode({k: v for k, v in (("user", user), ("kind", kind)) if v})
    return render(
        request,
        "privileges/portal/audit.html",
        {
            "team": team,
            "page_obj": page_obj,
            "kinds": AuditEvent.Kind.choices,
            "user": user,
            "kind": kind,
            "query": query,
        },
    )


@login_required
@require_http_methods(["GET"])
def index(request):
    """The accounts the signed-in user administers."""
    policy = Policy(browser_context(request, request.user))
    teams = [
        Team(request, account, policy)
        for account in Account.objects.filter(id__in=policy.held_scope.account_ids)
    ]
    if policy.held_scope.cluster:
        teams = [Team(request, a, policy) for a in Account.objects.all()]
    teams = [t for t in teams if t.administers(policy.held_scope)]
    if len(teams) == 1:
        return HttpResponseRedirect(teams[0].url())
    return render(request, "privileges/portal/index.html", {"teams": teams})
