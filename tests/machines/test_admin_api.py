import pytest

from machines.models import Head, IpRange, StoragePool, Vlan
from tests.factories import as_user, grant, make_user

pytestmark = pytest.mark.django_db


@pytest.fixture
def admin(world):
    user = make_user()
    grant(user, "cluster_admin")
    return as_user(user)


@pytest.fixture
def yubi_admin(world):
    user = make_user()
    grant(user, "cluster_admin", yubikey_required=True)
    return as_user(user)


ENDPOINTS = [
    "/admin/heads",
    "/admin/heads/{head}",
    "/admin/heads/{head}/virtual_machines",
    "/admin/tails",
    "/admin/tails/{tail}",
    "/admin/tails/{tail}/discs",
    "/admin/storage_pools",
    "/admin/storage_pools/{pool}",
    "/admin/storage_pools/{pool}/virtual_machines",
    "/admin/ip_ranges",
    "/admin/vlans",
    "/admin/vlans/1",
    "/admin/recent_vms",
]


def fill(path: str, world) -> str:
    return path.format(
        head=world.infra.head.label,
        tail=world.infra.tail.label,
        pool=world.infra.pools["sata"].label,
    )


@pytest.mark.parametrize("path", ENDPOINTS)
def test_admin_endpoints_are_for_cluster_admins_only(world, admin, yubi_admin, path):
    path = fill(path, world)

    assert admin.get(path).status_code == 200
    assert world.api.get(path).status_code == 403
    assert world.outsider.get(path).status_code == 403
    refused = yubi_admin.get(path)
    assert refused.status_code == 403
    assert "YubiKey" in refused.json()["detail"]


def test_heads_report_their_machines_and_free_memory(world, admin):
    head = admin.get(f"/admin/heads/{world.infra.head.label}").json()

    assert head["virtual_machines_count"] == 1
    assert head["virtual_machines"] == [world.vm.hostname]
    assert head["free_memory"] == 65536 - 1024
    assert head["usage_strategy"] is None


def test_a_head_is_changed_with_put(world, admin):
    path = f"/admin/heads/{world.infra.head.label}"

    response = admin.put(path, {"usage_strategy": None, "overcommit_ratio": 150})

    assert response.status_code == 200
    head = Head.objects.get()
    assert head.overcommit_ratio == 150 and head.usage_strategy == ""
    assert world.api.put(path, {"overcommit_ratio": 1}).status_code == 403
    assert Head.objects.get().overcommit_ratio == 150


def test_a_storage_pool_reports_its_use(world, admin):
    pool = admin.get(f"/admin/storage_pools/{world.infra.pools['sata'].label}").json()

    assert pool["discs"] == 1 and pool["alloc"] == 25600
    assert pool["free_space"] == pool["ceiling"] - 25600
    assert pool["grade"] == "sata"


def test_adding_an_ip_range_and_finding_it_by_cidr(world, admin):
    response = admin.post("/admin/ip_ranges", {"ip_range": "198.51.100.7/24",
                                                "vlan_num": 123})  # fmt: skip

    assert response.status_code == 201
    assert Vlan.objects.filter(num=123).exists()
    found = admin.get("/admin/ip_ranges?cidr=198.51.100.0/24").json()
    assert len(found) == 1
    assert found[0]["vlan_num"] == 123 and found[0]["available"] == 253
    assert (
        world.api.post(
            "/admin/ip_ranges", {"ip_range": "203.0.113.0/24", "vlan_num": 5}
        ).status_code
        == 403
    )


@pytest.mark.parametrize(
    "body",
    [
        {"ip_range": "not-a-net", "vlan_num": 3},
        {"ip_range": "192.0.2.0/24", "vlan_num": 3},
        {"ip_range": "198.51.100.0/24"},
    ],
)
def test_bad_ip_ranges_answer_400(world, admin, body):
    response = admin.post("/admin/ip_ranges", body)

    assert response.status_code == 400
    assert IpRange.objects.count() == 2


def test_vlans_list_their_ranges_and_unused_ones_can_go(world, admin):
    vlan = admin.get("/admin/vlans/1").json()
    assert sorted(r["spec"] for r in vlan["ip_ranges"]) == [
        "192.0.2.0/24",
        "2001:db8::/64",
    ]

    assert admin.delete(f"/admin/vlans/{vlan['id']}").status_code == 400
    spare = Vlan.objects.create(num=44)
    assert admin.delete(f"/admin/vlans/{spare.pk}").status_code == 204
    assert not Vlan.objects.filter(num=44).exists()


def test_a_cluster_admin_registers_a_pool(world, admin):
    response = admin.post(
        "/admin/storage_pools",
        {"tail": world.infra.tail.label, "label": "tail-ssd2", "libvirt_pool": "ssd2",
         "grade": "ssd", "size": 1024},
    )  # fmt: skip

    assert response.status_code == 201
    assert StoragePool.objects.filter(label="tail-ssd2", grade="ssd").exists()
