"""A simulated site for end-to-end tests: the API on one side, the worker
and a simulated head (its state in a tmp dir) on the other."""

from types import SimpleNamespace

from machines.cluster import write_blank_qcow2
from machines.hypervisors.base import NotFound, PowerState
from machines.hypervisors.simulated import SimulatedDriver
from machines.models import Head, Operation, VirtualMachine
from machines.worker import execute
from tests.factories import as_user, make_account, make_infrastructure, make_user

ROOT_PASSWORD = "Plain-Root-Passw0rd-e2e"


def make_site(tmp_path, settings) -> SimpleNamespace:
    """An account owner and a simulated head keeping its state in tmp_path."""
    settings.CORRAL_IMAGE_DIR = tmp_path / "images"
    settings.CORRAL_POWERDOWN_GRACE_SECONDS = 0
    settings.CORRAL_OPERATION_RETRY_SECONDS = 0
    settings.CORRAL_IMAGE_DIR.mkdir()
    for name in ("bookworm", "noble"):
        write_blank_qcow2(settings.CORRAL_IMAGE_DIR / f"{name}.qcow2")
    infra = make_infrastructure()
    label = infra.head.label
    Head.objects.filter(pk=infra.head.pk).update(
        uri=f"simulated://{label}{tmp_path / 'heads'}?delay=0"
    )
    owner = make_user()
    account = make_account(owner=owner)
    group_path = f"/accounts/{account.name}/groups/default"
    return SimpleNamespace(
        infra=infra,
        owner=owner,
        account=account,
        api=as_user(owner),
        group_path=group_path,
        base=f"{group_path}/virtual_machines",
        driver=SimulatedDriver(tmp_path / "heads", head=label),
    )


def run(op_id: int) -> Operation:
    execute(op_id)
    op = Operation.objects.get(pk=op_id)
    assert op.status == "succeeded", (op.kind, op.error)
    return op


def run_answer(response) -> Operation:
    """Carry out the operation a 202 answer names, as a worker would."""
    assert response.status_code == 202, response.content
    body = response.json()
    op_id = body["operation"]["id"] if "operation" in body else body["id"]
    return run(op_id)


def create(site, name="web", *, power_on=True, reimage=None, discs=None):
    body = {
        "virtual_machine": {
            "name": name,
            "cores": 1,
            "memory": 1024,
            "power_on": power_on,
        },
        "discs": discs or [{"label": "root", "size": 2048}],
    }
    if reimage:
        body["reimage"] = reimage
    response = site.api.post(f"{site.group_path}/vm_create", body)
    run_answer(response)
    return VirtualMachine.objects.get(pk=response.json()["id"])


def image(distribution="bookworm", password=ROOT_PASSWORD) -> dict:
    return {
        "distribution": distribution,
        "root_password": password,
        "ssh_public_key": "ssh-ed25519 AAAA alice@example.org",
        "firstboot_script": "",
    }


def get(site, vm, **query):
    suffix = "?include_deleted=true" if query.get("deleted") else ""
    response = site.api.get(f"/virtual_machines/{vm.pk}{suffix}")
    return response


def state(site, vm) -> PowerState:
    return site.driver.state(str(vm.uuid))


def volume_size(site, disc) -> int | None:
    try:
        return site.driver.volume_size_mib(disc.storage_pool.libvirt_pool, disc.volume)
    except NotFound:
        return None


def domain_discs(site, vm) -> list[str]:
    return [d["volume"] for d in site.driver.domain(str(vm.uuid))["spec"]["discs"]]
