"""What each kind of operation does on its head.

An executor receives a `Job` (the operation, its machine, the head's driver)
and returns an `Outcome`: a result for the operation and the machine's fields
that the work changed. The worker (machines/worker.py) records both in one
transaction, so the machine's actual state flips only when the work is done.

Executors are safe to run again after a crash at any point: driver calls are
idempotent, and steps that are not (imaging a disc) are recorded as done in
the operation's result and skipped on a retry.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from django.conf import settings

from machines.faults import with_faults
from machines.hypervisors.base import (
    DiscSpec,
    DomainSpec,
    Driver,
    HypervisorError,
    ImageStore,
    NicSpec,
    NotFound,
    PowerState,
    SeedSpec,
    VolumeRef,
    driver_for_uri,
    seed_volume_name,
    vlan_network,
)
from machines.models import Backup, Disc, Distribution, Head, Operation, VirtualMachine

logger = logging.getLogger(__name__)

Kind = Operation.Kind
SECRET_PARAMS = ("root_password", "root_password_hash")
NO_IMAGE = "none"


class OperationError(HypervisorError):
    """The operation cannot be carried out as asked; retrying will not help."""


@dataclass
class Outcome:
    result: dict[str, Any] = field(default_factory=dict)
    machine: dict[str, Any] = field(default_factory=dict)


@dataclass
class Job:
    """One attempt at an operation, as an executor sees it."""

    operation: Operation
    machine: VirtualMachine | None
    driver: Driver
    # Records progress (0-100), the steps done and the params; renews the lease.
    report: Callable[[int, list[str], dict], None]
    done: list[str] = field(default_factory=list)

    @property
    def params(self) -> dict[str, Any]:
        return self.operation.params

    def vm(self) -> VirtualMachine:
        if self.machine is None:
            raise OperationError("the machine no longer exists")
        return self.machine

    def step(self, name: str, progress: int) -> None:
        """Mark a step done, so that a retry skips it."""
        self.done.append(name)
        self.report(progress, self.done, self.params)

    def progress(self, progress: int) -> None:
        self.report(progress, self.done, self.params)


def driver_for_head(head: Head) -> Driver:
    return with_faults(driver_for_uri(head.uri), head.label)


def domain_name(vm: VirtualMachine) -> str:
    # The uuid never changes, unlike the hostname: libvirt cannot rename a
    # defined domain in place.
    return f"corral-{vm.uuid}"


def domain_spec(
    vm: VirtualMachine, driver: Driver, exclude_disc: int | None = None
) -> DomainSpec:
    """The machine as its head should define it, from the database."""
    discs = [
        DiscSpec(d.label, d.storage_pool.libvirt_pool, d.volume, d.size)
        for d in vm.discs.select_related("storage_pool").order_by("id")
        if d.pk != exclude_disc
    ]
    nics = [
        NicSpec(nic.mac, vlan_network(nic.vlan.num))
        for nic in vm.network_interfaces.select_related("vlan").order_by("id")
    ]
    spec = DomainSpec(
        uuid=str(vm.uuid),
        name=domain_name(vm),
        cores=vm.cores,
        memory_mib=vm.memory,
        discs=discs,
        nics=nics,
        cdrom_url=vm.cdrom_url,
        keymap=vm.keymap,
    )
    return spec.with_seed(_existing_seed(driver, spec))


def _existing_seed(driver: Driver, spec: DomainSpec) -> VolumeRef | None:
    # A machine keeps the seed it was imaged with: cloud-init reads it at
    # every boot and acts only when its instance id is new.
    if not spec.discs:
        return None
    seed = VolumeRef(spec.discs[0].pool, seed_volume_name(spec.uuid))
    try:
        driver.volume_size_mib(seed.pool, seed.volume)
    except NotFound:
        return None
    return seed


def base_image(distribution: str) -> Path:
    row = Distribution.objects.filter(name=distribution).first()
    if row is not None and row.image:
        path = Path(settings.CORRAL_IMAGE_DIR) / row.image
        if path.is_file():
            return path
    try:
        return ImageStore(settings.CORRAL_IMAGE_DIR).path_for(distribution)
    except (NotFound, ValueError):
        raise OperationError(
            f"no base image for distribution {distribution!r}; a cluster admin "
            "registers one with `manage.py register_image`"
        ) from None


def image_params(params: dict[str, Any]) -> dict[str, Any] | None:
    """The imaging part of create (nested under `reimage`) or image."""
    nested = params.get("reimage")
    if isinstance(nested, dict):
        return nested
    return params if params.get("distribution") else None


def forget_secrets(params: dict[str, Any]) -> bool:
    """Drop the root password from params; True if there was one."""
    found = False
    for holder in (params, params.get("reimage")):
        if isinstance(holder, dict):
            for key in SECRET_PARAMS:
                found = holder.pop(key, None) is not None or found
    return found


def _seed(job: Job, image: dict[str, Any]) -> SeedSpec:
    vm = job.vm()
    if not (image.get("root_password_hash") or image.get("root_password")):
        # An empty password would open root to anyone.
        raise OperationError("imaging needs the root password, which was not kept")
    return SeedSpec(
        # A new instance id per imaging makes cloud-init configure it afresh.
        instance_id=f"{vm.uuid}-{job.operation.pk}",
        hostname=vm.hostname,
        root_password=image.get("root_password") or "",
        root_password_hash=image.get("root_password_hash") or "",
        ssh_keys=image.get("ssh_public_key") or "",
        firstboot_script=image.get("firstboot_script") or "",
    )


def _wants_power(params: dict[str, Any], default: bool = False) -> bool:
    return bool(params.get("power_on", params.get("power_on_after", default)))


# Machines.


def create(job: Job) -> Outcome:
    """Volumes, then the base image and seed (once), then the definition,
    then power on if asked."""
    vm = job.vm()
    driver = job.driver
    spec = domain_spec(vm, driver)

    if "volumes" not in job.done:
        for disc in spec.discs:
            driver.create_volume(disc.pool, disc.volume, disc.size_mib)
        job.step("volumes", 20)

    image = image_params(job.params)
    distribution = (image or {}).get("distribution") or NO_IMAGE
    if distribution != NO_IMAGE and "image" not in job.done:
        spec = _image_once(job, spec, image or {})
    forget_secrets(job.params)

    driver.define(domain_spec(vm, driver))
    job.progress(80)

    machine: dict[str, Any] = {"last_imaged_with": distribution}
    if _wants_power(job.params):
        driver.start(spec.uuid)
        machine["power_on"] = True
    return Outcome({"domain": spec.name, "distribution": distribution}, machine)


def _image_once(job: Job, spec: DomainSpec, image: dict[str, Any]) -> DomainSpec:
    if job.driver.state(spec.uuid) is PowerState.RUNNING:
        # Only a previous attempt can have started it, after imaging.
        job.step("image", 70)
        return spec
    imaged = job.driver.reimage(
        spec, base_image(image["distribution"]), _seed(job, image)
    )
    job.step("image", 70)
    return imaged


def reimage(job: Job) -> Outcome:
    """Reinstall the first disc; ends powered on with autoreboot off."""
    vm = job.vm()
    driver = job.driver
    image = image_params(job.params) or {}
    distribution = image.get("distribution") or NO_IMAGE

    if "image" not in job.done:
        if distribution == NO_IMAGE:
            raise OperationError("reimaging needs a distribution")
        spec = domain_spec(vm, driver)
        # A machine whose create failed may have no domain, or no volumes yet.
        if driver.state(spec.uuid) is not PowerState.ABSENT:
            driver.stop(spec.uuid)
        for disc in spec.discs:
            driver.create_volume(disc.pool, disc.volume, disc.size_mib)
        job.progress(10)
        driver.reimage(spec, base_image(distribution), _seed(job, image))
        job.step("image", 70)
    forget_secrets(job.params)

    driver.define(domain_spec(vm, driver))
    machine = {"autoreboot_on": False, "last_imaged_with": distribution}
    if _wants_power(job.params, default=True):
        driver.start(str(vm.uuid))
        machine |= {"power_on": True, "desired_power_on": True}
    return Outcome({"distribution": distribution}, machine)


def power_on(job: Job) -> Outcome:
    vm = job.vm()
    # Defining first applies changes to cores, memory and the CD-ROM that
    # waited for the next boot.
    job.driver.define(domain_spec(vm, job.driver))
    job.progress(30)
    job.driver.start(str(vm.uuid))
    return Outcome(machine={"power_on": True})


def power_off(job: Job) -> Outcome:
    vm = job.vm()
    if job.driver.state(str(vm.uuid)) is not PowerState.ABSENT:
        job.driver.stop(str(vm.uuid))
    return Outcome(machine={"power_on": False})


def reboot(job: Job) -> Outcome:
    """A cold restart: off, redefined from the database, on."""
    vm = job.vm()
    job.driver.stop(str(vm.uuid))
    job.progress(40)
    return power_on(job)


def signal(job: Job) -> Outcome:
    vm = job.vm()
    uuid = str(vm.uuid)
    name = job.params.get("signal")

    if name == "powerdown":
        return _powerdown(job, uuid)
    if name == "reset":
        job.driver.reset(uuid)
        return Outcome({"signal": name}, {"power_on": True})
    if name == "sendkey":
        keys = [k for k in str(job.params.get("data", "")).split("-") if k]
        if not keys:
            raise OperationError("sendkey needs keys, like ctrl-alt-delete")
        job.driver.send_keys(uuid, keys)
        return Outcome({"signal": name, "data": "-".join(keys)}, {"power_on": True})
    raise OperationError(f"unknown signal {name!r}")


def _powerdown(job: Job, uuid: str) -> Outcome:
    grace = job.params.get("grace_seconds", settings.CORRAL_POWERDOWN_GRACE_SECONDS)
    shutdown = job.driver.shutdown(uuid, float(grace))
    if shutdown.powered_off:
        return Outcome(
            {"signal": "powerdown", "powered_off": True}, {"power_on": False}
        )

    # Not an error: the guest decides. The machine stays on, and stays wanted
    # on, until someone stops it (power_on: false).
    note = (
        f"the guest ignored the powerdown for {round(shutdown.waited_seconds)} "
        "seconds; the machine is still on"
    )
    result = {"signal": "powerdown", "powered_off": False, "note": note}
    on = shutdown.state is PowerState.RUNNING
    return Outcome(result, {"power_on": on, "desired_power_on": on})


def purge(job: Job) -> Outcome:
    """Destroy the domain and its volumes; the machine's row goes too, if the
    caller kept it."""
    vm = job.machine
    uuid = job.params.get("uuid") or (str(vm.uuid) if vm else "")
    if not uuid:
        raise OperationError("purge needs the machine's uuid")
    volumes = list(job.params.get("volumes") or [])
    if vm is not None and not volumes:
        volumes = _machine_volumes(vm)

    driver = job.driver
    if driver.state(uuid) is not PowerState.ABSENT:
        driver.stop(uuid)
        driver.undefine(uuid)
    job.progress(30)
    if volumes:
        seed_pool = volumes[0]["pool"]
        volumes.append({"pool": seed_pool, "volume": seed_volume_name(uuid)})
    _delete_volumes(driver, volumes)

    if vm is not None:
        vm.delete()
        job.machine = None
    return Outcome({"uuid": uuid, "volumes_deleted": len(volumes)})


def _machine_volumes(vm: VirtualMachine) -> list[dict[str, str]]:
    volumes = []
    for disc in vm.discs.select_related("storage_pool"):
        volumes.append({"pool": disc.storage_pool.libvirt_pool, "volume": disc.volume})
        for backup in disc.backups.select_related("storage_pool"):
            volumes.append(
                {"pool": backup.storage_pool.libvirt_pool, "volume": backup.volume}
            )
    return volumes


def _delete_volumes(driver: Driver, volumes: list[dict[str, str]]) -> None:
    for volume in volumes:
        driver.delete_volume(volume["pool"], volume["volume"])


def reconcile_machine(job: Job) -> Outcome:
    """Bring the head's definition (and power, under autoreboot) in line
    with the database."""
    vm = job.vm()
    job.driver.define(domain_spec(vm, job.driver))
    state = job.driver.state(str(vm.uuid))
    if state is not PowerState.RUNNING and vm.autoreboot_on and vm.desired_power_on:
        job.driver.start(str(vm.uuid))
        state = PowerState.RUNNING
    return Outcome({"state": str(state)}, {"power_on": state is PowerState.RUNNING})


# Discs and backups.


def _disc(job: Job) -> Disc:
    disc_id = job.operation.disc_id or job.params.get("disc_id")
    disc = Disc.objects.select_related("storage_pool").filter(pk=disc_id).first()
    if disc is None:
        raise OperationError("the disc no longer exists")
    return disc


def disc_create(job: Job) -> Outcome:
    disc = _disc(job)
    job.driver.create_volume(disc.storage_pool.libvirt_pool, disc.volume, disc.size)
    job.progress(50)
    # A running domain gets the new disc at once.
    job.driver.define(domain_spec(job.vm(), job.driver))
    return Outcome({"disc": disc.label})


def disc_delete(job: Job) -> Outcome:
    """Delete volumes (a disc's, its backups', or a backup's). Callers remove
    the rows; a disc row still present is removed here."""
    volumes = list(job.params.get("volumes") or [])
    disc = Disc.objects.select_related("storage_pool").filter(
        pk=job.operation.disc_id or job.params.get("disc_id") or 0
    )
    disc = disc.first()
    if disc is not None:
        volumes.append({"pool": disc.storage_pool.libvirt_pool, "volume": disc.volume})

    result: dict[str, Any] = {"volumes_deleted": len(volumes)}
    if job.machine is not None:
        exclude = disc.pk if disc is not None else None
        job.driver.define(domain_spec(job.machine, job.driver, exclude_disc=exclude))
        if job.driver.state(str(job.machine.uuid)) is PowerState.RUNNING:
            result["note"] = "the running machine lets go of the disc when it stops"
    _delete_volumes(job.driver, volumes)
    if disc is not None:
        disc.delete()
    return Outcome(result)


def resize(job: Job) -> Outcome:
    disc = _disc(job)
    size = int(job.params.get("to") or job.params.get("size") or disc.size)
    uuid = str(job.vm().uuid)
    running = job.driver.state(uuid) is PowerState.RUNNING
    job.driver.grow_volume(
        disc.storage_pool.libvirt_pool,
        disc.volume,
        size,
        running_uuid=uuid if running else None,
    )
    Disc.objects.filter(pk=disc.pk).update(size=size)
    return Outcome({"disc": disc.label, "size": size})


def _backup(job: Job) -> Backup:
    backup = (
        Backup.objects.select_related("storage_pool", "disc__storage_pool")
        .filter(pk=job.params.get("backup_id"))
        .first()
    )
    if backup is None:
        raise OperationError("the backup no longer exists")
    return backup


def backup(job: Job) -> Outcome:
    """Copy the disc into the backup pool, then keep only the `keep` newest
    scheduled backups of the disc, if asked."""
    copy = _backup(job)
    disc = copy.disc
    source = VolumeRef(disc.storage_pool.libvirt_pool, disc.volume)
    target = VolumeRef(copy.storage_pool.libvirt_pool, copy.volume)
    job.driver.copy_volume(source, target)
    Backup.objects.filter(pk=copy.pk).update(complete=True, size=disc.size)
    job.progress(80)

    pruned = []
    if job.params.get("keep"):
        pruned = _prune(job.driver, disc, int(job.params["keep"]))
    return Outcome({"backup": copy.label, "pruned": pruned})


def _prune(driver: Driver, disc: Disc, keep: int) -> list[str]:
    scheduled = disc.backups.filter(manual=False, complete=True).order_by(
        "-created_at", "-id"
    )
    pruned = []
    for old in scheduled.select_related("storage_pool")[max(keep, 1) :]:
        driver.delete_volume(old.storage_pool.libvirt_pool, old.volume)
        pruned.append(old.label)
        old.delete()
    return pruned


def restore(job: Job) -> Outcome:
    copy = _backup(job)
    vm = job.vm()
    if job.driver.state(str(vm.uuid)) is PowerState.RUNNING:
        raise OperationError("stop the machine before restoring a backup")
    disc = copy.disc
    source = VolumeRef(copy.storage_pool.libvirt_pool, copy.volume)
    target = VolumeRef(disc.storage_pool.libvirt_pool, disc.volume)
    job.driver.copy_volume(source, target)
    return Outcome({"backup": copy.label, "disc": disc.label})


EXECUTORS: dict[str, Callable[[Job], Outcome]] = {
    Kind.CREATE: create,
    Kind.IMAGE: reimage,
    Kind.POWER_ON: power_on,
    Kind.POWER_OFF: power_off,
    Kind.REBOOT: reboot,
    Kind.SIGNAL: signal,
    Kind.RESIZE: resize,
    Kind.PURGE: purge,
    Kind.BACKUP: backup,
    Kind.RESTORE: restore,
    Kind.DISC_CREATE: disc_create,
    Kind.DISC_DELETE: disc_delete,
    Kind.RECONCILE: reconcile_machine,
}

# Kinds that can run after their machine's row is gone.
MACHINELESS = {Kind.PURGE, Kind.DISC_DELETE}


def run(job: Job) -> Outcome:
    return EXECUTORS[job.operation.kind](job)
