"""The cluster admins' pages under /panel/cluster/: who sees them, each
change, bad input by the field with nothing written, CSRF, the suspension's
confirmation and audit record, and the accounts list's query count."""

import pytest
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext

from accounts.models import Account
from machines.models import Head, IpRange, Keymap, StoragePool, Tail, Vlan, Zone
from panel.models import AuditEvent
from tests.factories import grant, make_account, make_infrastructure, make_user
from tests.machines.conftest import built_vm
from tests.machines.dashboard_world import browser

pytestmark = pytest.mark.django_db

PAGES = [
    "/panel/cluster/",
    "/panel/cluster/heads/",
    "/panel/cluster/storage/",
    "/panel/cluster/networks/",
    "/panel/cluster/definitions/",
    "/panel/cluster/accounts/",
]


@pytest.fixture
def infra(db):
    return make_infrastructure()


@pytest.fixture
def admin(infra):
    user = make_user()
    grant(user, "cluster_admin")
    return browser(user)


@pytest.fixture
def owner(infra):
    user = make_user()
    account = make_account("acme", owner=user)
    built_vm(account.groups.get(name="default"), user)
    return user


def text(response) -> str:
    return response.content.decode()


@pytest.mark.parametrize("url", PAGES)
def test_a_cluster_admin_sees_each_page(admin, url):
    assert admin.get(url).status_code == 200


@pytest.mark.parametrize("url", PAGES)
def test_an_account_admin_gets_the_404_page(owner, url):
    response = browser(owner).get(url)

    assert response.status_code == 404
    assert "Not found" in text(response)


def test_an_account_admin_cannot_post_either(owner):
    response = browser(owner).post(
        "/panel/cluster/accounts/acme/suspend", {"confirm": "yes"}
    )

    assert response.status_code == 404
    assert not Account.objects.get(name="acme").suspended


@pytest.mark.parametrize("url", PAGES)
def test_anonymous_visitors_are_sent_to_sign_in(db, url):
    response = Client().get(url)

    assert response.status_code == 302
    assert response["Location"].startswith("/panel/login")


def test_a_superuser_is_a_cluster_admin(infra):
    root = make_user(is_superuser=True)
    assert browser(root).get("/panel/cluster/heads/").status_code == 200


def test_the_dashboard_links_the_cluster_pages_for_cluster_admins_only(admin, owner):
    assert 'href="/panel/cluster/"' in text(admin.get("/panel/"))
    assert 'href="/panel/cluster/"' not in text(browser(owner).get("/panel/"))


# Heads ----------------------------------------------------------------------


def test_it_lists_heads_with_memory_cores_and_machines(admin, owner, infra):
    page = text(admin.get("/panel/cluster/heads/"))

    assert infra.head.label in page
    assert f"{65536 - 1024} / 65536" in page
    assert "1 / 16" in page


def test_a_cluster_admin_registers_a_head(admin):
    response = admin.post(
        "/panel/cluster/heads/",
        {"label": "kvm7", "uri": "qemu+ssh://kvm7/system", "zone": "default",
         "total_memory": 131072, "total_cores": 32},
    )  # fmt: skip

    assert response.status_code == 303
    head = Head.objects.get(label="kvm7")
    assert (head.total_memory, head.total_cores) == (131072, 32)


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("total_memory", -1, "greater than or equal to 0"),
        ("label", "DUPLICATE", "already exists"),
    ],
)
def test_bad_head_input_is_shown_by_the_field(admin, infra, field, value, message):
    if value == "DUPLICATE":
        value = infra.head.label
    data = {"label": "kvm8", "uri": "simulated://", "zone": "default",
            "total_memory": 1024, "total_cores": 2, field: value}  # fmt: skip
    before = Head.objects.count()

    response = admin.post("/panel/cluster/heads/", data)

    assert response.status_code == 400
    assert message in str(response.context["form"].errors[field])
    assert 'class="field has-error"' in text(response)
    assert Head.objects.count() == before


def test_a_cluster_admin_changes_a_heads_overcommit_and_strategy(admin, infra):
    url = f"/panel/cluster/heads/{infra.head.label}/"
    assert admin.get(url).status_code == 200

    response = admin.post(
        url,
        {"uri": "simulated://", "zone": "default", "total_memory": 65536,
         "total_cores": 16, "overcommit_ratio": 150, "usage_strategy": "spread",
         "online": "on"},
    )  # fmt: skip

    assert response.status_code == 303
    infra.head.refresh_from_db()
    assert (infra.head.overcommit_ratio, infra.head.usage_strategy) == (150, "spread")


# Tails and pools --------------------------------------------------------------


def test_it_lists_pools_with_size_free_grade_and_backup(admin, infra):
    page = text(admin.get("/panel/cluster/storage/"))

    assert infra.backup_pool.label in page
    assert "backup pool" in page
    assert str(8 * 1024 * 1024) in page


def test_a_cluster_admin_registers_a_tail_and_a_pool_and_edits_it(admin):
    admin.post("/panel/cluster/storage/tails", {"label": "st2", "zone": "default"})
    response = admin.post(
        "/panel/cluster/storage/pools",
        {"label": "st2-ssd", "tail": "st2", "libvirt_pool": "ssd", "grade": "ssd",
         "zone": "default", "size": 4096},
    )  # fmt: skip
    assert response.status_code == 303
    pool = StoragePool.objects.get(label="st2-ssd")
    assert pool.tail == Tail.objects.get(label="st2")

    admin.post(
        "/panel/cluster/storage/pools/st2-ssd/",
        {"zone": "default", "size": 8192, "overcommit_ratio": 100},
    )

    pool.refresh_from_db()
    assert pool.size == 8192


def test_a_duplicate_tail_label_is_refused_by_the_field(admin, infra):
    response = admin.post(
        "/panel/cluster/storage/tails", {"label": infra.tail.label, "zone": "x"}
    )

    assert response.status_code == 400
    assert "already exists" in str(response.context["tail_form"].errors["label"])
    assert Tail.objects.count() == 1


# VLANs and IP ranges ----------------------------------------------------------


def test_it_lists_ranges_with_their_available_addresses(admin, owner):
    page = text(admin.get("/panel/cluster/networks/"))

    assert "192.0.2.0/24" in page
    assert '<td data-label="Available">252</td>' in page  # 253 usable, 1 taken


def test_a_cluster_admin_adds_a_range_to_a_vlan(admin, infra):
    response = admin.post(
        "/panel/cluster/networks/ranges", {"ip_range": "198.51.100.0/24", "vlan_num": 7}
    )

    assert response.status_code == 303
    assert IpRange.objects.get(spec="198.51.100.0/24").vlan.num == 7


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("192.0.2.128/25", "overlaps 192.0.2.0/24 on VLAN 1"),
        ("192.0.0.0/16", "overlaps 192.0.2.0/24"),
        ("not-a-net", "must be a network in CIDR form"),
        ("192.0.2.0/24", "already exists"),
    ],
)
def test_a_bad_range_is_shown_by_the_field(admin, infra, value, message):
    response = admin.post(
        "/panel/cluster/networks/ranges", {"ip_range": value, "vlan_num": 7}
    )

    assert response.status_code == 400
    assert message in str(response.context["form"].errors["ip_range"])
    assert IpRange.objects.count() == 2
    assert not Vlan.objects.filter(num=7).exists()


def test_the_api_refuses_overlapping_ranges_too(infra):
    from tests.factories import as_user

    root = make_user(is_superuser=True)
    response = as_user(root).post(
        "/admin/ip_ranges", {"ip_range": "192.0.2.64/26", "vlan_num": 9}
    )

    assert response.status_code == 400
    assert "overlaps" in response.json()["ip_range"][0]


def test_an_unused_vlan_can_be_deleted_and_a_used_one_cannot(admin, owner, infra):
    spare = Vlan.objects.create(num=55)

    assert admin.post("/panel/cluster/networks/vlans/55/delete").status_code == 303
    assert not Vlan.objects.filter(pk=spare.pk).exists()

    response = admin.post("/panel/cluster/networks/vlans/1/delete")
    assert response.status_code == 400
    assert "still used" in text(response)
    assert Vlan.objects.filter(num=1).exists()


# Definitions ------------------------------------------------------------------


def test_a_cluster_admin_replaces_a_definition_list(admin):
    response = admin.post(
        "/panel/cluster/definitions/keymaps", {"keymaps-names": "de\nen-gb\n"}
    )

    assert response.status_code == 303
    assert list(Keymap.objects.values_list("name", flat=True)) == ["de", "en-gb"]


def test_descriptions_are_edited_with_the_names(admin):
    admin.post(
        "/panel/cluster/definitions/storage_grades",
        {"storage_grades-names": "sata: Spinning discs\nssd: Flash"},
    )

    page = text(admin.get("/panel/cluster/definitions/"))
    assert "sata: Spinning discs\nssd: Flash" in page
    assert "archive" not in page.split("Storage grades")[1].split("</form>")[0]


@pytest.mark.parametrize(
    ("value", "message"), [("", "at least one"), (": nameless", "1 to 64")]
)
def test_empty_definition_names_are_refused_by_the_field(admin, value, message):
    before = list(Zone.objects.values_list("name", flat=True))

    response = admin.post(
        "/panel/cluster/definitions/distributions", {"distributions-names": value}
    )
    zones = admin.post(
        "/panel/cluster/definitions/zone_names", {"zone_names-names": ""}
    )

    assert response.status_code == 400
    lists = dict((d, f) for d, _, f in response.context["lists"])
    assert message in str(lists["distributions"].errors["names"])
    assert zones.status_code == 400
    assert list(Zone.objects.values_list("name", flat=True)) == before


# Accounts ---------------------------------------------------------------------


def test_it_lists_every_account_with_members_machines_and_suspension(admin, owner):
    teammate = make_user()
    acme = Account.objects.get(name="acme")
    grant(teammate, "group_admin", acme.groups.get())
    make_account("quiet")

    rows = {
        a.name: a for a in admin.get("/panel/cluster/accounts/").context["accounts"]
    }

    assert (rows["acme"].members, rows["acme"].machines) == (2, 1)
    assert (rows["quiet"].members, rows["quiet"].machines) == (0, 0)


def test_suspending_needs_the_confirmation_and_is_audited(admin, owner):
    url = "/panel/cluster/accounts/acme/suspend"

    asked = admin.post(url)
    assert asked.status_code == 200
    assert 'name="confirm" value="yes"' in text(asked)
    assert not Account.objects.get(name="acme").suspended

    assert admin.post(url, {"confirm": "yes"}).status_code == 303
    assert Account.objects.get(name="acme").suspended
    event = AuditEvent.objects.filter(kind=AuditEvent.Kind.ACCOUNT_CHANGED).last()
    assert event.detail["changes"] == {"suspended": True}
    assert event.account.name == "acme"
    assert event.actor_username == admin.get("/panel/").context["user"].username

    admin.post("/panel/cluster/accounts/acme/unsuspend", {"confirm": "yes"})
    assert not Account.objects.get(name="acme").suspended


def test_the_accounts_lists_query_count_does_not_grow_with_accounts(admin, owner):
    def count() -> int:
        with CaptureQueriesContext(connection) as queries:
            assert admin.get("/panel/cluster/accounts/").status_code == 200
        return len(queries)

    few = count()
    for _ in range(5):
        member = make_user()
        make_account(owner=member)
    assert count() == few


# CSRF -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("url", "data"),
    [
        ("/panel/cluster/heads/", {"label": "x1", "uri": "simulated://"}),
        ("/panel/cluster/networks/ranges", {"ip_range": "10.9.0.0/24", "vlan_num": 2}),
        ("/panel/cluster/definitions/keymaps", {"keymaps-names": "de"}),
        ("/panel/cluster/accounts/acme/suspend", {"confirm": "yes"}),
    ],
)
def test_posts_without_the_csrf_token_are_refused(infra, owner, url, data):
    user = make_user()
    grant(user, "cluster_admin")
    client = browser(user, enforce_csrf_checks=True)

    assert client.post(url, data).status_code == 403
    assert not Account.objects.get(name="acme").suspended
    assert not IpRange.objects.filter(spec="10.9.0.0/24").exists()
    assert Keymap.objects.count() > 1


def test_posts_with_the_csrf_token_go_through(infra, owner):
    user = make_user()
    grant(user, "cluster_admin")
    client = browser(user, enforce_csrf_checks=True)
    client.get("/panel/cluster/accounts/")

    response = client.post(
        "/panel/cluster/accounts/acme/suspend",
        {"confirm": "yes", "csrfmiddlewaretoken": client.cookies["csrftoken"].value},
    )

    assert response.status_code == 303
