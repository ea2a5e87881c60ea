"""The dashboard in a real browser, with a real worker building machines."""

from datetime import timedelta

import pytest
from django.contrib.sessions.models import Session
from django.utils import timezone
from playwright.sync_api import expect

from accounts import signin
from groups.models import Group
from machines.models import VirtualMachine
from privileges.models import Privilege
from tests.e2e.conftest import built_by_worker, screenshot, sign_in
from tests.factories import SimulatedYubikey, grant, make_account, make_user
from tests.machines.conftest import built_vm

pytestmark = pytest.mark.django_db(transaction=True)


def test_sign_in_with_a_yubikey_create_a_machine_and_watch_it_run(
    cluster, new_page, tmp_path
):
    alice = make_user("alice")
    key = SimulatedYubikey(alice)
    make_account("acme", owner=alice)
    page = new_page()

    sign_in(page, "alice", otp=key.otp())
    expect(page.get_by_role("heading", name="acme")).to_be_visible()
    page.get_by_role("link", name="New machine in default").click()

    page.get_by_label("Name").fill("Web")
    page.get_by_role("button", name="Create machine").click()
    expect(page.locator("#id_name_error")).to_contain_text("lowercase")
    page.get_by_label("Name").fill("web")
    page.get_by_label("Distribution").select_option("bookworm")
    page.get_by_label("Root password").fill("a long root password")
    screenshot(page, "create-form", tmp_path)
    page.get_by_role("button", name="Create machine").click()

    page.wait_for_url("**/machines/web/")
    expect(page.locator("#machine-state")).to_have_text("building")
    # The worker builds it and powers it on; the page polls, nobody reloads.
    expect(page.locator("#machine-state")).to_have_text("running", timeout=30_000)
    expect(page.get_by_role("button", name="Stop")).to_be_enabled()
    screenshot(page, "machine", tmp_path)

    page.get_by_role("link", name="Machines").click()
    expect(page.locator(".state-running")).to_have_text("running")
    screenshot(page, "dashboard", tmp_path)


def _age_session_otp(page) -> None:
    """Make the OTP this browser signed in with an hour old."""
    cookie = next(c for c in page.context.cookies() if c["name"] == "sessionid")
    store = Session.objects.get(session_key=cookie["value"]).get_decoded()
    store[signin.SESSION_YUBIKEY_AT] = (timezone.now() - timedelta(hours=1)).isoformat()
    Session.objects.save(cookie["value"], store, timezone.now() + timedelta(days=1))


def test_an_action_needing_a_fresh_yubikey_asks_for_one_then_is_done(cluster, new_page):
    owner = make_user("owner")
    account = make_account("acme", owner=owner)
    vm = built_by_worker(account.groups.get(), owner, "web")
    bob = make_user("bob")
    key = SimulatedYubikey(bob)
    grant(bob, "vm_admin", vm, yubikey_required=True, yubikey_otp_max_age=600)
    page = new_page()
    sign_in(page, "bob", otp=key.otp())
    _age_session_otp(page)

    page.goto("/panel/accounts/acme/groups/default/machines/web/")
    # Listed as locked on the dashboard, the machine page asks first.
    expect(page.get_by_text("Confirm with your YubiKey")).to_be_visible()
    page.get_by_label("YubiKey OTP").fill(key.otp())
    page.get_by_role("button", name="Continue").click()
    expect(page.locator("#machine-state")).to_have_text("stopped")

    _age_session_otp(page)
    page.get_by_role("button", name="Start", exact=True).click()
    expect(page.get_by_role("alert")).to_contain_text("recently")
    assert not VirtualMachine.objects.get(pk=vm.pk).desired_power_on
    page.get_by_label("YubiKey OTP").fill(key.otp())
    page.get_by_role("button", name="Continue").click()

    expect(page.get_by_role("status")).to_contain_text("Starting web.")
    expect(page.locator("#machine-state")).to_have_text("running", timeout=30_000)


def test_an_account_admin_grants_a_group_and_the_teammate_sees_only_it(
    cluster, new_page, tmp_path
):
    alice = make_user("alice")
    account = make_account("acme", owner=alice)
    web = Group.objects.create(account=account, name="web")
    built_vm(account.groups.get(name="default"), alice, "billing")
    built_vm(web, alice, "frontend")
    make_user("bob")
    admin = new_page()
    sign_in(admin, "alice")

    admin.goto("/panel/team/acme/")
    admin.get_by_label("Username").fill("bob")
    admin.get_by_label("Level").select_option("group_admin")
    admin.locator("#id_target").select_option(label="group web")
    admin.get_by_role("button", name="Grant").click()
    expect(admin.get_by_text("Granted group_admin to bob.")).to_be_visible()
    screenshot(admin, "team-portal", tmp_path)
    assert Privilege.objects.get(user__username="bob").group == web

    teammate = new_page()
    sign_in(teammate, "bob")
    expect(teammate.get_by_role("link", name="frontend")).to_be_visible()
    expect(teammate.get_by_role("link", name="web", exact=True)).to_be_visible()
    assert "billing" not in teammate.content()
    assert teammate.get_by_role("link", name="default").count() == 0


def test_an_outsider_gets_the_same_404_page_as_for_a_missing_machine(cluster, new_page):
    owner = make_user("owner")
    built_vm(make_account("acme", owner=owner).groups.get(), owner, "web")
    make_account("other", owner=make_user("eve"))
    page = new_page()
    sign_in(page, "eve")

    hidden = page.goto("/panel/accounts/acme/groups/default/machines/web/")
    hidden_text = page.locator("main").inner_text()
    missing = page.goto("/panel/accounts/acme/groups/default/machines/nope/")
    missing_text = page.locator("main").inner_text()

    assert hidden.status == missing.status == 404
    assert hidden_text == missing_text
    assert "web" not in hidden_text


def test_pages_fit_a_phone_and_work_by_keyboard(cluster, new_page):
    owner = make_user("owner")
    built_vm(make_account("acme", owner=owner).groups.get(), owner, "web")
    page = new_page(width=375, height=740)
    sign_in(page, "owner")

    owner.is_superuser = True  # so the cluster pages are open to this user too
    owner.save(update_fields=["is_superuser"])
    for path in ("/panel/", "/panel/accounts/acme/groups/default/machines/web/",
                 "/panel/machines/new", "/panel/team/acme/",
                 "/panel/team/acme/grant", "/panel/team/acme/audit",
                 "/panel/profile/", "/panel/profile/password",
                 "/panel/cluster/", "/panel/cluster/heads/",
                 "/panel/cluster/accounts/",
                 "/panel/cluster/networks/"):  # fmt: skip
        assert page.goto(path).status == 200, path
        overflow = page.evaluate(
            "document.documentElement.scrollWidth - window.innerWidth"
        )
        assert overflow <= 0, path

    page.goto("/panel/")
    link = page.get_by_role("link", name="web", exact=True)
    for _ in range(30):
        page.keyboard.press("Tab")
        if link.evaluate("el => el === document.activeElement"):
            break
    page.keyboard.press("Enter")
    page.wait_for_url("**/machines/web/")
