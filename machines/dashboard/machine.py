"""A machine's page: what it shows, which buttons are usable and why not, and
the actions its forms post (each one call into machines.actions)."""

from __future__ import annotations

from django.http import Http404
from django.shortcuts import render
from django.urls import reverse

from machines import actions
from machines.dashboard import forms
from machines.dashboard.access import Gate, Panel
from machines.dashboard.pages import (
    addresses,
    latest_operations,
    machine_queryset,
    machine_version,
    power_words,
)
from machines.models import Backup, BackupSchedule, Disc, IpAddress, VirtualMachine
from panel.api import is_id
from privileges.levels import Level

GIB = forms.GIB


class Rejected(Exception):
    """The action was not done; the page is shown again with why."""

    def __init__(self, message: str = "", status: int = 400):
        super().__init__(message)
        self.message = message
        self.status = status


class MachinePage:
    def __init__(self, panel: Panel, vm: VirtualMachine):
        self.panel = panel
        self.vm = machine_queryset().get(pk=vm.pk)
        self.ops = latest_operations(self.vm)
        self.bound: dict[str, object] = {}
        self.current = None  # the form whose action is running

    @property
    def active(self):
        op = self.ops[0] if self.ops else None
        return op if op is not None and op.active else None

    @property
    def version(self) -> str:
        return machine_version(self.vm, self.ops)

    @property
    def url(self) -> str:
        vm = self.vm
        return reverse(
            "dashboard:machine",
            kwargs={
                "account": vm.group.account.name,
                "group": vm.group.name,
                "vm": vm.name,
            },
        )

    # Gates -------------------------------------------------------------------

    def gates(self) -> dict[str, Gate]:
        vm, panel = self.vm, self.panel
        suspended = vm.group.account.suspended and not panel.policy.is_cluster_admin()
        admin = panel.gate(vm, Level.VM_ADMIN).unless(
            suspended, "The account is suspended."
        )
        live = admin.unless(vm.deleted, "The machine is deleted; restore it first.")
        running = live.unless(not vm.power_on, "The machine must be running.")
        off = live.unless(
            vm.power_on or vm.desired_power_on, "The machine must be off."
        )
        return {
            "admin": admin,
            "live": live,
            "start": live.unless(
                vm.power_on and vm.desired_power_on, "The machine is running."
            ),
            "running": running,
            "off": off,
            "delete": admin.unless(vm.deleted, "The machine is already deleted."),
            "restore": admin.unless(not vm.deleted, "The machine is not deleted."),
            "purge": panel.gate(vm.group, Level.GROUP_ADMIN).unless(
                suspended, "The account is suspended."
            ),
        }

    # Forms ---------------------------------------------------------------------

    def form(self, key: str, cls, **kwargs):
        return self.bound.get(key) or cls(prefix=key, **kwargs)

    def bind(self, key: str, cls, **kwargs):
        form = cls(self.panel.request.POST, prefix=key, **kwargs)
        self.bound[key] = form
        self.current = form
        if not form.is_valid():
            raise Rejected("Nothing was changed: see the messages by the fields.")
        return form

    def context(self, **extra) -> dict:
        vm = self.vm
        discs = list(vm.discs.all())
        for disc in discs:
            disc.grow_form = self.form(
                f"grow-{disc.pk}",
                forms.GrowDiscForm,
                initial={"size": -(-disc.size // GIB)},
            )
            disc.schedule_form = self.form(f"schedule-{disc.pk}", forms.ScheduleForm)
        nics = list(vm.network_interfaces.all())
        for nic in nics:
            nic.ip_form = self.form(f"ip-{nic.pk}", forms.AddIpForm)
            nic.ip_rows = list(nic.ips.all())
            for ip in nic.ip_rows:
                ip.rdns_form = self.form(
                    f"rdns-{ip.pk}", forms.RdnsForm, initial={"rdns": ip.rdns}
                )
        return {
            "vm": vm,
            "page_url": self.url,
            "state": power_words(vm, self.active),
            "active": self.active,
            "latest": self.ops[0] if self.ops else None,
            "ops": self.ops,
            "addresses": addresses(vm),
            "discs": discs,
            "nics": nics,
            "gate": self.gates(),
            "version": self.version,
            "specs_form": self.form(
                "specs",
                forms.SpecsForm,
                initial={
                    "cores": vm.cores,
                    "memory": vm.memory,
                    "cdrom_url": vm.cdrom_url,
                    "hardware_profile": vm.hardware_profile,
                },
            ),
            "reimage_form": self.form(
                "reimage",
                forms.ReimageForm,
                initial={"distribution": vm.last_imaged_with},
            ),
            "disc_form": self.form("disc", forms.AddDiscForm),
            "purge_form": self.form("purge", forms.PurgeForm, vm=vm),
            **extra,
        }

    def render(self, request, *, error: str = "", step_up=None, status: int = 200):
        context = self.context(error=error, step_up=step_up)
        return render(request, "machines/machine.html", context, status=status)

    # What the forms name, found only among this machine's own -----------------

    def _pick(self, queryset, key: str):
        value = self.panel.request.POST.get(key, "")
        found = queryset.filter(pk=int(value)).first() if is_id(value) else None
        if found is None:
            raise Http404
        return found

    def disc(self) -> Disc:
        return self._pick(Disc.objects.filter(virtual_machine=self.vm), "disc")

    def backup(self) -> Backup:
        backups = Backup.objects.filter(disc__virtual_machine=self.vm)
        return self._pick(backups.select_related("disc", "storage_pool"), "backup")

    def schedule(self) -> BackupSchedule:
        schedules = BackupSchedule.objects.filter(disc__virtual_machine=self.vm)
        return self._pick(schedules.select_related("disc"), "schedule")

    def nic(self):
        return self._pick(self.vm.network_interfaces.all(), "nic")

    def ip(self) -> IpAddress:
        ips = IpAddress.objects.filter(nic__virtual_machine=self.vm)
        return self._pick(ips, "ip")

    def require(self, level: str = Level.VM_ADMIN, on=None) -> None:
        self.panel.policy.require(on if on is not None else self.vm, level)

    def confirmed(self) -> None:
        if self.panel.request.POST.get("confirm") != "yes":
            raise Rejected("Tick the box to confirm.")


# Actions ------------------------------------------------------------------------


def run_action(request, page: MachinePage, name: str) -> tuple[str, str | None]:
    """Do one named action; return the message to show and where to go next
    (None: back to the machine)."""
    handler = ACTIONS.get(name)
    if handler is None:
        raise Http404
    try:
        return handler(page, page.panel.user, page.panel.address)
    except actions.Invalid as invalid:
        _show(page, invalid.errors)
        raise Rejected("Nothing was changed: " + _summary(invalid.errors)) from None
    except actions.OperationConflict as conflict:
        holder = conflict.holder
        raise Rejected(
            f"The machine is busy with a {holder.kind} operation ({holder.status}); "
            "try again once it has finished.",
            status=409,
        ) from None


def _show(page: MachinePage, errors: dict) -> None:
    form = page.current
    if form is None:
        return
    for key, problems in errors.items():
        if not isinstance(problems, list) or not all(
            isinstance(p, str) for p in problems
        ):
            continue
        form.add_error(key if key in form.fields else None, problems)


def _summary(errors: dict) -> str:
    parts = []
    for key, problems in errors.items():
        if isinstance(problems, list):
            parts += [f"{key} {p}" for p in problems if isinstance(p, str)]
    return "; ".join(parts) or "the change was refused."


def _power(changes: dict, message: str):
    def handler(page: MachinePage, actor, address):
        page.require()
        actions.update_virtual_machine(page.vm, changes, actor=actor, address=address)
        return message.format(vm=page.vm.name), None

    return handler


def _signal(signal: str, message: str, data: str = ""):
    def handler(page: MachinePage, actor, address):
        page.require()
        actions.signal_virtual_machine(
            page.vm, signal, data, actor=actor, address=address
        )
        return message.format(vm=page.vm.name), None

    return handler


def change_specs(page: MachinePage, actor, address):
    page.require()
    form = page.bind("specs", forms.SpecsForm)
    vm = page.vm
    changes = {
        key: value
        for key, value in form.cleaned_data.items()
        if value != getattr(vm, key)
    }
    if not changes:
        return "Nothing to change.", None
    actions.update_virtual_machine(vm, changes, actor=actor, address=address)
    return "Saved. New cores and memory take effect at the next restart.", None


def reimage(page: MachinePage, actor, address):
    page.require()
    form = page.bind("reimage", forms.ReimageForm)
    actions.reimage_virtual_machine(page.vm, form.image(), actor=actor, address=address)
    return f"Reimaging {page.vm.name}.", None


def add_disc(page: MachinePage, actor, address):
    page.require()
    form = page.bind("disc", forms.AddDiscForm)
    disc, _ = actions.add_disc(page.vm, form.spec(), actor=actor, address=address)
    return f"Adding disc {disc.label}.", None


def grow_disc(page: MachinePage, actor, address):
    page.require()
    disc = page.disc()
    form = page.bind(f"grow-{disc.pk}", forms.GrowDiscForm)
    actions.update_disc(
        disc, {"size": form.cleaned_data["size"] * GIB}, actor=actor, address=address
    )
    return f"Growing disc {disc.label}.", None


def delete_disc(page: MachinePage, actor, address):
    page.require()
    disc = page.disc()
    page.confirmed()
    actions.delete_disc(disc, actor=actor, address=address)
    return f"Deleting disc {disc.label}.", None


def back_up(page: MachinePage, actor, address):
    page.require()
    disc = page.disc()
    backup, _ = actions.create_backup(disc, actor=actor, address=address)
    return f"Backing up {disc.label} as {backup.label}.", None


def restore_backup(page: MachinePage, actor, address):
    page.require()
    backup = page.backup()
    page.confirmed()
    actions.restore_backup(backup, actor=actor, address=address)
    return f"Restoring {backup.label} onto {backup.disc.label}.", None


def delete_backup(page: MachinePage, actor, address):
    page.require()
    backup = page.backup()
    actions.delete_backup(backup, actor=actor, address=address)
    return f"Deleting backup {backup.label}.", None


def add_schedule(page: MachinePage, actor, address):
    page.require()
    disc = page.disc()
    form = page.bind(f"schedule-{disc.pk}", forms.ScheduleForm)
    actions.create_backup_schedule(disc, form.spec(), actor=actor)
    return f"Scheduled backups of {disc.label}.", None


def delete_schedule(page: MachinePage, actor, address):
    page.require()
    schedule = page.schedule()
    actions.delete_backup_schedule(schedule, actor=actor)
    return f"Removed the backup schedule of {schedule.disc.label}.", None


def add_ip(page: MachinePage, actor, address):
    page.require()
    nic = page.nic()
    form = page.bind(f"ip-{nic.pk}", forms.AddIpForm)
    ips = actions.create_ips(nic, form.spec(), actor=actor, address=address)
    return "Added " + ", ".join(ip.address for ip in ips) + ".", None


def set_rdns(page: MachinePage, actor, address):
    page.require()
    ip = page.ip()
    form = page.bind(f"rdns-{ip.pk}", forms.RdnsForm)
    actions.set_rdns(ip, form.cleaned_data["rdns"], actor=actor, address=address)
    return f"Reverse DNS of {ip.address} saved.", None


def delete_machine(page: MachinePage, actor, address):
    page.require()
    page.confirmed()
    actions.delete_virtual_machine(page.vm, actor=actor, address=address)
    return f"Deleted {page.vm.name}; it can be restored for a while.", None


def restore_machine(page: MachinePage, actor, address):
    page.require()
    actions.update_virtual_machine(
        page.vm, {"deleted": False}, actor=actor, address=address
    )
    return f"Restored {page.vm.name}.", None


def purge_machine(page: MachinePage, actor, address):
    page.require(Level.GROUP_ADMIN, on=page.vm.group)
    page.bind("purge", forms.PurgeForm, vm=page.vm)
    name = page.vm.name
    actions.purge_virtual_machine(page.vm, actor=actor, address=address)
    return f"Purged {name}.", reverse("dashboard:home")


ACTIONS = {
    "start": _power({"power_on": True, "autoreboot_on": True}, "Starting {vm}."),
    "stop": _power({"power_on": False, "autoreboot_on": False}, "Stopping {vm}."),
    "restart": _power({"power_on": False, "autoreboot_on": True}, "Restarting {vm}."),
    "shutdown": _signal("powerdown", "Asked {vm} to shut down (ACPI)."),
    "reset": _signal("reset", "Reset {vm}."),
    "ctrl-alt-delete": _signal(
        "sendkey", "Sent ctrl-alt-delete to {vm}.", "ctrl-alt-delete"
    ),
    "specs": change_specs,
    "reimage": reimage,
    "add-disc": add_disc,
    "grow-disc": grow_disc,
    "delete-disc": delete_disc,
    "backup": back_up,
    "restore-backup": restore_backup,
    "delete-backup": delete_backup,
    "add-schedule": add_schedule,
    "delete-schedule": delete_schedule,
    "add-ip": add_ip,
    "rdns": set_rdns,
    "delete": delete_machine,
    "restore": restore_machine,
    "purge": purge_machine,
}
