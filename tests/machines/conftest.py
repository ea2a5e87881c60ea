from types import SimpleNamespace

import pytest
from django.utils import timezone

from machines import actions
from machines.models import Operation, VirtualMachine
from panel.celery import app
from tests.factories import as_user, grant, make_account, make_infrastructure, make_user


@pytest.fixture(autouse=True)
def _in_memory_broker(settings):
    """Operations are enqueued on commit; keep them in memory, unexecuted, so
    these tests check the recorded intent and never need a worker."""
    settings.CELERY_TASK_ALWAYS_EAGER = False
    app.conf.task_always_eager = False
    app.conf.broker_url = "memory://"
    yield


def finish(op: Operation, **vm_state) -> None:
    """Stand in for the worker: the operation succeeded, the machine is in
    the state it brought about."""
    Operation.objects.filter(pk=op.pk).update(
        status=Operation.Status.SUCCEEDED, progress=100, finished_at=timezone.now()
    )
    if op.virtual_machine_id is not None and vm_state:
        VirtualMachine.objects.filter(pk=op.virtual_machine_id).update(**vm_state)


def built_vm(group, actor, name="web", *, running=False, **spec) -> VirtualMachine:
    """A machine whose creation has finished."""
    vm, op = actions.create_virtual_machine(
        group,
        {"name": name, "cores": 1, "memory": 1024, **spec},
        discs=[{"size": 25600, "storage_grade": "sata"}],
        actor=actor,
    )
    finish(op, power_on=running, desired_power_on=running)
    vm.refresh_from_db()
    return vm


@pytest.fixture
def world(db):
    """An account with a built machine, and the people around it: its owner
    (account_admin), a console user (vm_console on the machine), an admin whose
    privilege needs a YubiKey (none sent), and an outsider."""
    infra = make_infrastructure()
    owner = make_user()
    account = make_account(owner=owner)
    group = account.groups.get(name="default")
    vm = built_vm(group, owner)
    console, yubi, outsider = make_user(), make_user(), make_user()
    make_account(owner=outsider)
    grant(console, "vm_console", vm)
    grant(yubi, "vm_admin", vm, yubikey_required=True)
    return SimpleNamespace(
        infra=infra,
        owner=owner,
        account=account,
        group=group,
        vm=vm,
        api=as_user(owner),
        console=as_user(console),
        yubi=as_user(yubi),
        outsider=as_user(outsider),
        base=f"/accounts/{account.name}/groups/default/virtual_machines",
        vm_path=f"/accounts/{account.name}/groups/default/virtual_machines/{vm.name}",
    )


def call(api, method: str, path: str, body=None):
    if method in ("get", "delete"):
        return getattr(api, method)(path)
    return getattr(api, method)(path, body)


def check_access(world, method: str, path: str, body=None, *, write=True) -> None:
    """Outsiders get 404; console users 403 on writes; an admin without the
    YubiKey their privilege needs gets 403 naming it, never the data."""
    assert call(world.outsider, method, path, body).status_code == 404

    console = call(world.console, method, path, body)
    assert console.status_code == (403 if write else 200), console.content

    yubi = call(world.yubi, method, path, body)
    assert yubi.status_code == 403
    assert "YubiKey" in yubi.json()["detail"]


@pytest.fixture
def fleet():
    """acme with a built machine `web`; its owner, a teammate with vm_console
    on it, an admin whose privilege needs a YubiKey, and an outsider."""
    infra = make_infrastructure()
    owner = make_user()
    account = make_account("acme", owner=owner)
    group = account.groups.get(name="default")
    vm = built_vm(group, owner, "web")
    console, yubi, outsider = make_user(), make_user(), make_user()
    make_account("other", owner=outsider)
    grant(console, "vm_console", vm)
    grant(yubi, "vm_admin", vm, yubikey_required=True)
    return SimpleNamespace(
        infra=infra,
        owner=owner,
        account=account,
        group=group,
        vm=vm,
        console=console,
        yubi=yubi,
        outsider=outsider,
        url="/panel/accounts/acme/groups/default/machines/web/",
    )
