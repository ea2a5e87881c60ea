"""The cluster admins' pages under /panel/cluster/: heads, tails and storage
pools, VLANs and IP ranges, the definition lists, and every account.

Only callers holding cluster_admin (or cluster_su) see them; everyone else
gets the panel's 404 page, exactly as for a missing page. Each change goes
through the same function as the API's /admin, /definitions and /accounts
endpoints (machines.cluster, machines.definitions, accounts.actions).
"""

from __future__ import annotations

import ipaddress
from functools import wraps

from django.db import transaction
from django.db.models import Count, Q
from django.db.models.functions import Coalesce
from django.http import Http404
from django.shortcuts import render
from django.urls import reverse
from django.views.decorators.http import require_http_methods
from rest_framework.exceptions import PermissionDenied

from accounts import actions as account_actions
from accounts.models import Account
from machines import addressing, cluster, placement
from machines.admin_views import HeadSerializer, StoragePoolSerializer, TailSerializer
from machines.dashboard import cluster_forms as forms
from machines.dashboard.access import Panel
from machines.dashboard.views import back_to, panel_page
from machines.definitions import (
    CATALOGUE,
    DESCRIBED,
    InvalidDefinition,
    replace_definition,
)
from machines.models import Head, IpRange, StoragePool, Tail, Vlan
from panel.api import ConditionUnmet, lookup
from privileges.levels import Level
from privileges.models import Privilege

T = "machines/cluster/"


def cluster_page(view):
    """Signed in as a cluster admin; anyone else is shown the 404 page."""

    @panel_page
    @wraps(view)
    def wrapper(request, panel: Panel, *args, **kwargs):
        try:
            panel.policy.require_cluster(Level.CLUSTER_ADMIN)
        except ConditionUnmet:
            raise  # the panel asks for the OTP, as on every page
        except PermissionDenied:
            raise Http404 from None
        return view(request, panel, *args, **kwargs)

    return wrapper


def found(model, spec: str, field: str = "label"):
    row = lookup(model.objects.all(), spec, field)
    if row is None:
        raise Http404
    return row


def page(request, template: str, context: dict, form_errors: bool = False):
    return render(request, T + template, context, status=400 if form_errors else 200)


@cluster_page
@require_http_methods(["GET"])
def index(request, panel: Panel):
    counts = {
        "heads": Head.objects.count(),
        "tails": Tail.objects.count(),
        "pools": StoragePool.objects.count(),
        "vlans": Vlan.objects.count(),
        "ranges": IpRange.objects.count(),
        "accounts": Account.objects.count(),
    }
    return page(request, "index.html", {"counts": counts})


# Heads ----------------------------------------------------------------------


def head_rows() -> list[Head]:
    heads = list(Head.objects.annotate(machines=Count("virtual_machines")))
    for head in heads:
        head.free_memory = placement.head_memory_free(head)
        head.used_cores = placement.head_cores_used(head)
    return heads


@cluster_page
@require_http_methods(["GET", "POST"])
def heads(request, panel: Panel):
    form = forms.HeadForm(request.POST or None)
    if request.method == "POST":
        head = forms.save_record(form, HeadSerializer)
        if head is not None:
            return back_to(
                request, reverse("dashboard:cluster-heads"), f"Registered {head}."
            )
    context = {"heads": head_rows(), "form": form}
    return page(request, "heads.html", context, bool(form.errors))


@cluster_page
@require_http_methods(["GET", "POST"])
def head(request, panel: Panel, spec: str):
    return edit(request, found(Head, spec), forms.HeadEditForm, HeadSerializer,
                reverse("dashboard:cluster-heads"))  # fmt: skip


def edit(request, row, form_class, serializer_class, back: str):
    """The page changing one head, tail or pool."""
    initial = {name: getattr(row, name) for name in form_class.base_fields}
    form = form_class(request.POST or None, initial=initial)
    saved = request.method == "POST" and forms.save_record(form, serializer_class, row)
    if saved:
        return back_to(request, back, f"Saved {row}.")
    context = {"row": row, "kind": row._meta.verbose_name, "form": form, "back": back}
    return page(request, "edit.html", context, bool(form.errors))


# Tails and storage pools ----------------------------------------------------


def storage_context(**forms_) -> dict:
    pools = list(StoragePool.objects.select_related("tail"))
    for pool in pools:
        pool.free = placement.pool_free(pool)
    return {
        "tails": Tail.objects.annotate(pool_count=Count("pools")),
        "pools": pools,
        "tail_form": forms_.get("tail_form") or forms.TailForm(),
        "pool_form": forms_.get("pool_form") or forms.PoolForm(),
    }


@cluster_page
@require_http_methods(["GET"])
def storage(request, panel: Panel):
    return page(request, "storage.html", storage_context())


@cluster_page
@require_http_methods(["POST"])
def add_tail(request, panel: Panel):
    form = forms.TailForm(request.POST)
    tail = forms.save_record(form, TailSerializer)
    if tail is not None:
        return back_to(request, storage_url(), f"Registered tail {tail}.")
    return page(request, "storage.html", storage_context(tail_form=form), True)


@cluster_page
@require_http_methods(["POST"])
def add_pool(request, panel: Panel):
    form = forms.PoolForm(request.POST)
    pool = forms.save_record(form, StoragePoolSerializer)
    if pool is not None:
        return back_to(request, storage_url(), f"Registered pool {pool}.")
    return page(request, "storage.html", storage_context(pool_form=form), True)


def storage_url() -> str:
    return reverse("dashboard:cluster-storage")


@cluster_page
@require_http_methods(["GET", "POST"])
def tail(request, panel: Panel, spec: str):
    row = found(Tail, spec)
    return edit(request, row, forms.TailEditForm, TailSerializer, storage_url())


@cluster_page
@require_http_methods(["GET", "POST"])
def pool(request, panel: Panel, spec: str):
    row = found(StoragePool, spec)
    return edit(request, row, forms.PoolEditForm, StoragePoolSerializer, storage_url())


# VLANs and IP ranges --------------------------------------------------------


def networks_context(form=None, error: str = "") -> dict:
    ranges = IpRange.objects.annotate(used=Count("ips")).order_by("id")
    vlans = {v.pk: v for v in Vlan.objects.annotate(nic_count=Count("nics"))}
    for vlan in vlans.values():
        vlan.range_rows = []
    for row in ranges:
        network = ipaddress.ip_network(row.spec, strict=False)
        row.available = max(addressing.usable_count(network) - row.used, 0)
        vlans[row.vlan_id].range_rows.append(row)
    return {
        "vlans": sorted(vlans.values(), key=lambda v: v.num),
        "form": form or forms.IpRangeForm(),
        "error": error,
    }


def networks_url() -> str:
    return reverse("dashboard:cluster-networks")


@cluster_page
@require_http_methods(["GET"])
def networks(request, panel: Panel):
    return page(request, "networks.html", networks_context())


@cluster_page
@require_http_methods(["POST"])
def add_range(request, panel: Panel):
    form = forms.IpRangeForm(request.POST)
    if form.is_valid():
        data = form.cleaned_data
        try:
            row = cluster.add_ip_range(
                data["ip_range"], data["vlan_num"], data["zones"]
            )
        except cluster.Invalid as invalid:
            forms.record_errors(form, invalid.errors)
        else:
            message = f"Added {row} to VLAN {row.vlan.num}."
            return back_to(request, networks_url(), message)
    return page(request, "networks.html", networks_context(form), True)


@cluster_page
@require_http_methods(["POST"])
def delete_vlan(request, panel: Panel, num: str):
    # By number, as the page shows them (the API deletes by id).
    vlan = Vlan.objects.filter(num=int(num)).first() if num.isdigit() else None
    if vlan is None:
        raise Http404
    try:
        cluster.delete_vlan(vlan)
    except cluster.VlanInUse:
        error = f"{vlan} is still used by machines' network interfaces."
        return page(request, "networks.html", networks_context(error=error), True)
    return back_to(request, networks_url(), f"Deleted {vlan}.")


# Definitions ----------------------------------------------------------------


def described_id(definition: str) -> str | None:
    model = CATALOGUE[definition]
    return next((d for d, m in DESCRIBED.items() if m is model), None)


def definition_form(definition: str, data=None) -> forms.DefinitionForm:
    rows = CATALOGUE[definition].objects.all()
    if described_id(definition):
        text = "\n".join(f"{r.name}: {r.description}" for r in rows)
    else:
        text = "\n".join(r.name for r in rows)
    return forms.DefinitionForm(
        data,
        described=bool(described_id(definition)),
        initial={"names": text},
        prefix=definition,
    )


TITLES = {
    "distributions": "Distributions",
    "storage_grades": "Storage grades",
    "zone_names": "Zones",
    "hardware_profiles": "Hardware profiles",
    "keymaps": "Keymaps",
    "sendkeys": "Sendkeys",
}


def definitions_context(**bound) -> dict:
    return {
        "lists": [
            (d, TITLES.get(d, d), bound.get(d) or definition_form(d)) for d in CATALOGUE
        ]
    }


@cluster_page
@require_http_methods(["GET"])
def definitions(request, panel: Panel):
    return page(request, "definitions.html", definitions_context())


@cluster_page
@require_http_methods(["POST"])
def replace(request, panel: Panel, definition: str):
    if definition not in CATALOGUE:
        raise Http404
    form = definition_form(definition, request.POST)
    if form.is_valid():
        names, descriptions = form.cleaned_data["names"]
        try:
            with transaction.atomic():
                replace_definition(definition, names)
                if descriptions is not None:
                    replace_definition(described_id(definition), descriptions)
        except InvalidDefinition as invalid:
            form.add_error("names", invalid.message)
        else:
            url = reverse("dashboard:cluster-definitions")
            return back_to(request, url, f"Saved {definition.replace('_', ' ')}.")
    context = definitions_context(**{definition: form})
    return page(request, "definitions.html", context, True)


# Accounts -------------------------------------------------------------------


def account_rows() -> list[Account]:
    """Every account with its members and live machines, in three queries
    however many accounts there are."""
    accounts = list(
        Account.objects.annotate(
            machines=Count(
                "groups__virtual_machines",
                filter=Q(groups__virtual_machines__deleted=False),
            )
        ).order_by("name")
    )
    members: dict[int, set[int]] = {}
    holders = Privilege.objects.annotate(
        in_account=Coalesce(
            "account_id", "group__account_id", "virtual_machine__group__account_id"
        )
    ).filter(in_account__isnull=False)
    for account_id, user_id in holders.values_list("in_account", "user_id"):
        members.setdefault(account_id, set()).add(user_id)
    for account in accounts:
        account.members = len(members.get(account.pk, ()))
    return accounts


@cluster_page
@require_http_methods(["GET"])
def accounts(request, panel: Panel):
    return page(request, "accounts.html", {"accounts": account_rows()})


@cluster_page
@require_http_methods(["POST"])
def suspend(request, panel: Panel, account: str, state: str):
    """Two steps: what suspending (or resuming) means, then the change."""
    if state not in ("suspend", "unsuspend"):
        raise Http404
    row = found(Account, account, "name")
    suspended = state == "suspend"
    if request.POST.get("confirm") != "yes":
        return page(request, "suspend.html", {"account": row, "suspend": suspended})
    panel.policy.require(row, Level.CLUSTER_ADMIN)
    account_actions.update_account(
        row, {"suspended": suspended}, actor=panel.user, address=panel.address
    )
    verb = "Suspended" if suspended else "Resumed"
    return back_to(request, reverse("dashboard:cluster-accounts"), f"{verb} {row}.")
