"""The browser dashboard: the fleet, a machine's page, creating machines and
managing groups, under /panel/.

A second front door onto machines.actions and groups.actions: each view
parses a form, asks the policy (through `Panel`), calls one action and
redirects. Outsiders get the same 404 page as for a missing name; a
privilege whose YubiKey condition is not met asks for an OTP in place and
then does what was asked; other refusals are explained.
"""

from __future__ import annotations

from functools import wraps

from django.conf import settings
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import Http404, HttpResponse, HttpResponseRedirect
from django.shortcuts import render
from django.urls import reverse
from django.views.decorators.http import require_GET, require_http_methods
from django_htmx.http import HttpResponseClientRedirect
from rest_framework.exceptions import NotFound, PermissionDenied

from groups import actions as group_actions
from groups.models import Group
from machines import actions
from machines.dashboard import forms
from machines.dashboard.access import Panel
from machines.dashboard.machine import MachinePage, Rejected, run_action
from machines.dashboard.pages import fleet
from panel.api import ConditionUnmet
from privileges.levels import Level
from privileges.portal.stepup import OTP_FIELD, explain, retry_target, verify_step_up

# Pages ----------------------------------------------------------------------


def panel_page(view):
    """Signed in; a step-up OTP in the POST is checked first, so the request
    then runs with the fresh OTP; the policy's refusals become pages."""

    @login_required
    @wraps(view)
    def wrapper(request, *args, **kwargs):
        if request.method == "POST" and OTP_FIELD in request.POST:
            error = verify_step_up(request, request.POST[OTP_FIELD])
            if error:
                return step_up(request, Panel(request), ("yubikey",), error)
        panel = Panel(request)
        try:
            return view(request, panel, *args, **kwargs)
        except NotFound:
            raise Http404 from None
        except ConditionUnmet as unmet:
            return step_up(request, panel, unmet.unmet)
        except PermissionDenied as denied:
            return refused(request, str(denied.detail))

    return wrapper


def step_up_context(request, panel: Panel, unmet, otp_error: str = "") -> dict:
    """The OTP prompt: it posts back what was being done, plus the OTP."""
    action, carried = retry_target(request)
    gate = panel.condition_gate(unmet)
    return {
        "lines": explain(unmet, panel.ctx, request.user),
        "offer_otp": gate.step_up or bool(otp_error),
        "otp_error": otp_error,
        "action": action,
        "carried": carried,
    }


def step_up(request, panel: Panel, unmet, otp_error: str = ""):
    context = {"step_up": step_up_context(request, panel, unmet, otp_error)}
    return render(request, "machines/step_up.html", context, status=403)


def refused(request, message: str, status: int = 403):
    return render(request, "machines/refused.html", {"message": message}, status=status)


def back_to(request, url: str, message: str):
    messages.success(request, message)
    if request.htmx:
        return HttpResponseClientRedirect(url)
    return HttpResponseRedirect(url, status=303)


# The fleet ------------------------------------------------------------------


@panel_page
@require_GET
def dashboard(request, panel: Panel):
    """Accounts → groups → machines; htmx polls with the version it shows and
    is sent the fleet again only when something changed."""
    tree = fleet(panel)
    if request.htmx and request.GET.get("v") is not None:
        if request.GET["v"] == tree.version:
            return HttpResponse(status=204)
        return render(request, "machines/_fleet.html", {"fleet": tree})
    return render(request, "machines/dashboard.html", {"fleet": tree})


# One machine ----------------------------------------------------------------


def machine_url(vm) -> str:
    return reverse(
        "dashboard:machine",
        kwargs={
            "account": vm.group.account.name,
            "group": vm.group.name,
            "vm": vm.name,
        },
    )


@panel_page
@require_GET
def machine(request, panel: Panel, account: str, group: str, vm: str):
    page = MachinePage(panel, panel.machine(account, group, vm))
    return page.render(request)


@panel_page
@require_GET
def machine_live(request, panel: Panel, account: str, group: str, vm: str):
    """The machine's state and power buttons, when they changed since `v`."""
    try:
        found = panel.machine(account, group, vm)
    except Http404:
        # Purged or renamed meanwhile: the page has nothing left to show.
        return HttpResponseClientRedirect(reverse("dashboard:home"))
    page = MachinePage(panel, found)
    if request.GET.get("v") == page.version:
        return HttpResponse(status=204)
    return render(request, "machines/_machine_live.html", page.context())


@panel_page
@require_http_methods(["POST"])
def machine_action(request, panel: Panel, account: str, group: str, vm: str, action):
    page = MachinePage(panel, panel.machine(account, group, vm))
    try:
        message, url = run_action(request, page, action)
    except Rejected as rejected:
        return page.render(request, error=rejected.message, status=rejected.status)
    except ConditionUnmet as unmet:
        prompt = step_up_context(request, panel, unmet.unmet)
        return page.render(request, step_up=prompt, status=403)
    except PermissionDenied as denied:
        return page.render(request, error=str(denied.detail), status=403)
    return back_to(request, url or machine_url(page.vm), message)


# Creating a machine -----------------------------------------------------------


def creatable_groups(panel: Panel) -> list[Group]:
    """Groups where the user is a group admin, conditions aside: a failing
    condition is explained (or stepped up) when they submit."""
    groups = panel.policy.groups(held=True).select_related("account")
    return [
        g
        for g in groups.order_by("account__name", "name")
        if panel.is_admin_of(g, Level.GROUP_ADMIN)
    ]


@panel_page
@require_http_methods(["GET", "POST"])
def create_machine(request, panel: Panel):
    groups = creatable_groups(panel)
    initial = {"group": request.GET.get("group", "")}
    form = forms.CreateMachineForm(request.POST or None, groups=groups, initial=initial)
    if request.method == "POST" and form.is_valid():
        vm = _create(panel, form, groups)
        if vm is not None:
            return back_to(request, machine_url(vm), f"Building {vm.name}.")
    status = 400 if form.errors else 200
    context = {"form": form, "groups": groups}
    return render(request, "machines/create.html", context, status=status)


def _create(panel: Panel, form, groups):
    group = next(g for g in groups if str(g.pk) == form.cleaned_data["group"])
    panel.policy.require(group, Level.GROUP_ADMIN)
    try:
        vm, _ = actions.create_virtual_machine(
            group,
            form.spec(),
            discs=form.discs(),
            reimage=form.image(),
            actor=panel.user,
            address=panel.address,
        )
    except actions.Invalid as invalid:
        _create_errors(form, invalid.errors)
        return None
    return vm


def _create_errors(form, errors: dict) -> None:
    fields = {"zone_name": "zone", "name": "name", "distribution": "distribution"}
    for key, problems in errors.items():
        if key == "discs" and problems and isinstance(problems[0], dict):
            for spec, places in zip(problems, form.DISC_FIELDS, strict=False):
                for name, messages_ in spec.items():
                    form.add_error(places.get(name), messages_)
            continue
        form.add_error(fields.get(key), [str(p) for p in problems])


# Groups ---------------------------------------------------------------------


def group_url(group: Group) -> str:
    return reverse(
        "dashboard:group",
        kwargs={"account": group.account.name, "group": group.name},
    )


@panel_page
@require_http_methods(["GET", "POST"])
def create_group(request, panel: Panel, account: str):
    found = panel.account(account)
    form = forms.GroupNameForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        panel.policy.require(found, Level.ACCOUNT_ADMIN)
        name = form.cleaned_data["name"]
        try:
            group = group_actions.create_group(
                found, name, actor=panel.user, address=panel.address
            )
        except group_actions.GroupNameTaken:
            form.add_error("name", "is already taken in this account")
        else:
            return back_to(request, group_url(group), f"Created group {name}.")
    context = {"account": found, "form": form}
    status = 400 if form.errors else 200
    return render(request, "machines/group_new.html", context, status=status)


def group_context(panel: Panel, group: Group, **extra) -> dict:
    machines = list(group.virtual_machines.order_by("name"))
    manage = panel.gate(group, Level.GROUP_ADMIN)
    delete = panel.gate(group, Level.ACCOUNT_ADMIN)
    if group.name == "default":
        manage = manage.unless(True, "The default group keeps its name.")
        delete = delete.unless(True, "The default group cannot be deleted.")
    delete = delete.unless(
        bool(machines),
        f"The group still holds {len(machines)} machine(s), deleted ones "
        "awaiting purge included; purge or move them first.",
    )
    return {
        "group": group,
        "machines": machines,
        "rename_gate": manage,
        "delete_gate": delete,
        "rename_form": extra.pop("rename_form", None)
        or forms.GroupNameForm(initial={"name": group.name}),
        **extra,
    }


@panel_page
@require_GET
def group_page(request, panel: Panel, account: str, group: str):
    found = panel.group(account, group)
    return render(request, "machines/group.html", group_context(panel, found))


@panel_page
@require_http_methods(["POST"])
def rename_group(request, panel: Panel, account: str, group: str):
    """Two steps: the new name first, then the hostnames that will change,
    which the user confirms."""
    found = panel.group(account, group)
    form = forms.GroupNameForm(request.POST)
    if form.is_valid() and form.cleaned_data["name"] == "default":
        form.add_error("name", "No other group may be called default.")
    if not form.is_valid():
        context = group_context(panel, found, rename_form=form)
        return render(request, "machines/group.html", context, status=400)
    panel.policy.require(found, Level.GROUP_ADMIN)
    if found.name == "default":
        return refused(request, "The default group keeps its name.", 400)
    name = form.cleaned_data["name"]
    if request.POST.get("confirm") != "yes":
        context = group_context(
            panel, found, rename_form=form, confirm_name=name, renames=[
                (vm.hostname, f"{vm.name}.{name}.{found.account.name}."
                 f"{settings.CORRAL_CLUSTER_DOMAIN}")
                for vm in found.virtual_machines.order_by("name")
            ],
        )  # fmt: skip
        return render(request, "machines/group.html", context)
    try:
        group_actions.update_group(
            found, {"name": name}, actor=panel.user, address=panel.address
        )
    except group_actions.GroupNameTaken:
        form.add_error("name", "is already taken in this account")
        context = group_context(panel, found, rename_form=form)
        return render(request, "machines/group.html", context, status=400)
    return back_to(request, group_url(found), f"Renamed the group to {name}.")


@panel_page
@require_http_methods(["POST"])
def delete_group(request, panel: Panel, account: str, group: str):
    found = panel.group(account, group)
    panel.policy.require(found, Level.ACCOUNT_ADMIN)
    context = group_context(panel, found)
    if context["delete_gate"].disabled:
        context["error"] = context["delete_gate"].reason
        return render(request, "machines/group.html", context, status=400)
    if request.POST.get("confirm") != "yes":
        context["error"] = "Tick the box to confirm the deletion."
        return render(request, "machines/group.html", context, status=400)
    try:
        group_actions.delete_group(found, actor=panel.user, address=panel.address)
    except group_actions.GroupNotEmpty:
        context["error"] = "The group still holds machines."
        return render(request, "machines/group.html", context, status=400)
    return back_to(request, reverse("dashboard:home"), f"Deleted group {group}.")
