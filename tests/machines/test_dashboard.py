"""The dashboard's fleet page: what each persona sees, locked entries, live
polling, the 404 page, and query counts that do not grow with machines."""

import pytest
from django.test import Client

from machines.models import Operation
from tests.factories import (
    SimulatedYubikey,
    grant,
    make_user,
)
from tests.machines.conftest import built_vm
from tests.machines.dashboard_world import browser, without_csrf

pytestmark = pytest.mark.django_db


def test_the_root_leads_to_the_dashboard_and_it_needs_signing_in(fleet):
    assert Client().get("/")["Location"] == "/panel/"
    response = Client().get("/panel/")
    assert response.status_code == 302
    assert response["Location"].startswith("/panel/login")


def test_it_lists_accounts_groups_and_machines_with_state_address_and_specs(fleet):
    page = browser(fleet.owner).get("/panel/")

    assert page.status_code == 200
    text = page.content.decode()
    assert "acme" in text
    assert fleet.url in text
    address = fleet.vm.network_interfaces.get().ips.get(family="ipv4").address
    assert address in text
    assert "state-stopped" in text
    assert "1 core, 1024 MiB, 25600 MiB disc" in text


def test_it_shows_the_running_operation_with_its_progress(fleet):
    Operation.objects.create(
        kind="power_on", status="running", progress=40, virtual_machine=fleet.vm
    )

    text = browser(fleet.owner).get("/panel/").content.decode()

    assert 'value="40"' in text
    assert "power_on" in text
    assert 'hx-trigger="every 2s"' in text


def test_it_hides_other_accounts_machines(fleet):
    text = browser(fleet.outsider).get("/panel/").content.decode()

    assert "other" in text
    assert "acme" not in text
    assert "web" not in text


def test_a_teammate_sees_only_what_they_were_given(fleet):
    other_vm = built_vm(fleet.group, fleet.owner, "database-server")

    text = browser(fleet.console).get("/panel/").content.decode()

    assert fleet.url in text
    assert other_vm.name not in text
    # vm_console cannot create machines or groups.
    assert "New machine in" not in text
    assert "New group" not in text


def test_an_outsider_gets_the_same_404_page_as_for_a_missing_machine(fleet):
    client = browser(fleet.outsider)

    hidden = client.get(fleet.url)
    missing = client.get("/panel/accounts/acme/groups/default/machines/nope/")
    no_account = client.get("/panel/accounts/nope/groups/default/machines/web/")

    assert hidden.status_code == missing.status_code == no_account.status_code == 404
    pages = [without_csrf(r.content) for r in (hidden, missing, no_account)]
    assert pages[0] == pages[1] == pages[2]


def test_a_machine_behind_an_unmet_yubikey_condition_is_listed_locked(fleet):
    SimulatedYubikey(fleet.yubi)

    text = browser(fleet.yubi).get("/panel/").content.decode()

    assert "locked" in text
    assert "web" in text
    assert fleet.url not in text
    assert "Touch your YubiKey to unlock" in text


def test_an_otp_unlocks_the_locked_machine(fleet):
    key = SimulatedYubikey(fleet.yubi)
    client = browser(fleet.yubi)

    response = client.post("/panel/step-up", {"otp": key.otp(), "next": "/panel/"})

    assert response.status_code == 302
    text = client.get("/panel/").content.decode()
    assert fleet.url in text
    assert "Touch your YubiKey to unlock" not in text


def test_an_ip_condition_is_explained_without_an_otp_prompt(fleet):
    grant(fleet.console, "vm_admin", fleet.vm, ip_restrictions=["198.51.100.0/24"])
    lonely = make_user()
    grant(lonely, "vm_admin", fleet.vm, ip_restrictions=["198.51.100.0/24"])

    text = browser(lonely).get("/panel/").content.decode()

    assert "Only from allowed networks (your address is 127.0.0.1)" in text
    assert "Touch your YubiKey" not in text


def test_an_accounts_second_factor_demand_is_explained_on_locked_machines(fleet):
    fleet.account.require_second_factor = True
    fleet.account.save()

    text = browser(fleet.console).get("/panel/").content.decode()

    assert "locked" in text
    assert fleet.url not in text
    assert "demands a second factor at sign-in" in text
    assert "Touch your YubiKey" not in text


def test_the_live_poll_answers_204_until_something_changes(fleet):
    client = browser(fleet.owner)
    page = client.get("/panel/")
    version = page.context["fleet"].version

    same = client.get(f"/panel/?v={version}", HTTP_HX_REQUEST="true")
    fleet.vm.power_on = fleet.vm.desired_power_on = True
    fleet.vm.save()
    changed = client.get(f"/panel/?v={version}", HTTP_HX_REQUEST="true")

    assert same.status_code == 204
    assert changed.status_code == 200
    assert "state-running" in changed.content.decode()
    assert "<html" not in changed.content.decode()


def _machines(group, owner, count: int) -> None:
    for n in range(count):
        built_vm(group, owner, f"extra{n}")


# Session, user, held privileges, accounts, groups, machines with their NICs
# and addresses, active operations.
DASHBOARD_QUERIES = 9


@pytest.mark.parametrize("extra", [0, 6])
def test_the_dashboard_query_count_does_not_grow_with_machines(
    fleet, django_assert_num_queries, extra
):
    _machines(fleet.group, fleet.owner, extra)
    second = fleet.account.groups.create(name="second")
    _machines(second, fleet.owner, extra)
    client = browser(fleet.owner)

    with django_assert_num_queries(DASHBOARD_QUERIES):
        response = client.get("/panel/")

    assert response.status_code == 200
    assert response.content.decode().count('<tr class="') == 1 + 2 * extra


# Session, user, held privileges, the account, group and machine by name; the
# machine with its discs, backups, schedules, NICs and addresses; its latest
# operations; the definitions behind the forms' choices (distributions,
# storage grades, hardware profiles).
MACHINE_QUERIES = 16


@pytest.mark.parametrize("discs", [0, 4])
def test_the_machine_page_query_count_does_not_grow_with_discs_or_backups(
    fleet, django_assert_num_queries, discs
):
    from machines import actions
    from tests.machines.conftest import finish

    for _ in range(discs):
        disc, op = actions.add_disc(
            fleet.vm, {"size": 1024, "storage_grade": "sata"}, actor=fleet.owner
        )
        finish(op)
        _, op = actions.create_backup(disc, actor=fleet.owner)
        finish(op)
    client = browser(fleet.owner)

    with django_assert_num_queries(MACHINE_QUERIES):
        response = client.get(fleet.url)

    assert response.status_code == 200
    assert response.content.decode().count('class="disc"') == 1 + discs
