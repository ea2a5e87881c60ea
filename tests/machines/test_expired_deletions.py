from datetime import timedelta

import pytest
from django.utils import timezone

from machines.actions import purge_expired_deletions
from machines.models import Operation, VirtualMachine
from tests.machines.conftest import built_vm

pytestmark = pytest.mark.django_db


def _deleted_days_ago(world, name: str, days: float) -> VirtualMachine:
    vm = built_vm(world.group, world.owner, name=name)
    VirtualMachine.objects.filter(pk=vm.pk).update(
        deleted=True, deleted_at=timezone.now() - timedelta(days=days)
    )
    return vm


def test_it_purges_machines_deleted_longer_ago_than_the_grace_period(world, settings):
    settings.CORRAL_DELETED_VM_GRACE_DAYS = 14
    old = _deleted_days_ago(world, "old", 15)
    recent = _deleted_days_ago(world, "recent", 13)

    assert purge_expired_deletions() == 1

    assert not VirtualMachine.objects.filter(pk=old.pk).exists()
    assert VirtualMachine.objects.filter(pk=recent.pk).exists()
    purge = Operation.objects.get(kind="purge")
    assert purge.params["name"] == "old"


def test_a_busy_machine_waits_for_the_next_run(world, settings):
    settings.CORRAL_DELETED_VM_GRACE_DAYS = 14
    vm = _deleted_days_ago(world, "busy", 20)
    Operation.objects.create(kind="power_off", virtual_machine=vm)

    assert purge_expired_deletions() == 0

    assert VirtualMachine.objects.filter(pk=vm.pk).exists()
