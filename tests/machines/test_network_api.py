import ipaddress

import pytest

from machines.models import IpAddress, NetworkInterface
from tests.machines.conftest import built_vm, check_access

pytestmark = pytest.mark.django_db

IP_CREATE = {"addresses": 2, "family": "ipv4", "reason": "jeff", "contiguous": False}


def nic_of(world) -> NetworkInterface:
    return world.vm.network_interfaces.get()


def primary_v4(nic) -> str:
    return nic.ips.get(family="ipv4", routed_via__isnull=True).address


@pytest.mark.parametrize(
    ("method", "suffix", "body", "write"),
    [
        ("get", "/nics", None, False),
        ("get", "/nics/{nic}", None, False),
        ("post", "/nics/{nic}/ip_create", IP_CREATE, True),
    ],
)
def test_nic_endpoints_apply_the_policy(world, method, suffix, body, write):
    path = world.vm_path + suffix.format(nic=nic_of(world).pk)

    check_access(world, method, path, body, write=write)

    assert IpAddress.objects.count() == 2


def test_ip_endpoints_apply_the_policy(world):
    address = primary_v4(nic_of(world))

    check_access(world, "get", f"/ips/{address}", write=False)
    check_access(world, "put", f"/ips/{address}", {"rdns": "www.example.org"})
    assert IpAddress.objects.get(address=address).rdns == ""


def test_ip_create_answers_the_new_addresses_routed_via_the_primary(world):
    nic = nic_of(world)

    response = world.api.post(f"{world.vm_path}/nics/{nic.pk}/ip_create", IP_CREATE)

    assert response.status_code == 201
    ips = response.json()["ips"]
    assert len(ips) == 2 and all(ip.startswith("192.0.2.") for ip in ips)
    shown = world.api.get(world.vm_path).json()["network_interfaces"][0]
    assert shown["extra_ips"] == {ip: primary_v4(nic) for ip in ips}
    assert len(shown["ips"]) == 2


def test_ip_create_of_contiguous_ipv6_addresses(world):
    nic = nic_of(world)
    body = {"addresses": 3, "family": "ipv6", "reason": "", "contiguous": True}

    response = world.api.post(f"{world.vm_path}/nics/{nic.pk}/ip_create", body)

    assert response.status_code == 201
    numbers = [int(ipaddress.ip_address(ip)) for ip in response.json()["ips"]]
    assert numbers == list(range(numbers[0], numbers[0] + 3))


def test_ip_create_says_so_when_the_range_is_full(world):
    nic = nic_of(world)
    body = {**IP_CREATE, "addresses": 64}
    for _ in range(3):
        world.api.post(f"{world.vm_path}/nics/{nic.pk}/ip_create", body)

    response = world.api.post(f"{world.vm_path}/nics/{nic.pk}/ip_create", body)

    assert response.status_code == 400
    assert "no free ipv4" in response.json()["addresses"][0]


@pytest.mark.parametrize(
    "body",
    [
        {"addresses": 0, "family": "ipv4"},
        {"addresses": 1, "family": "ipx"},
        {"addresses": "two", "family": "ipv4"},
    ],
)
def test_bad_ip_create_answers_400(world, body):
    nic = nic_of(world)

    response = world.api.post(f"{world.vm_path}/nics/{nic.pk}/ip_create", body)

    assert response.status_code == 400
    assert IpAddress.objects.count() == 2


def test_reverse_dns_is_read_and_set(world):
    address = primary_v4(nic_of(world))

    response = world.api.put(f"/ips/{address}", {"rdns": "www.example.org"})

    assert response.status_code == 200
    assert world.api.get(f"/ips/{address}").json()["rdns"] == "www.example.org"
    cleared = world.api.put(f"/ips/{address}", {"rdns": ""})
    assert cleared.json()["rdns"] == ""


@pytest.mark.parametrize("rdns", ["not a host", "-bad.example", "a" * 64 + ".org"])
def test_reverse_dns_must_be_a_hostname(world, rdns):
    address = primary_v4(nic_of(world))

    response = world.api.put(f"/ips/{address}", {"rdns": rdns})

    assert response.status_code == 400
    assert IpAddress.objects.get(address=address).rdns == ""


def test_unknown_addresses_are_not_found(world):
    assert world.api.get("/ips/203.0.113.9").status_code == 404
    assert world.api.get("/ips/not-an-ip").status_code == 404


@pytest.mark.parametrize("move_extras", [False, True])
def test_swapping_addresses_between_machines(world, move_extras):
    other = built_vm(world.group, world.owner, name="other")
    nic1, nic2 = nic_of(world), other.network_interfaces.get()
    before1, before2 = primary_v4(nic1), primary_v4(nic2)
    extra = world.api.post(
        f"{world.vm_path}/nics/{nic1.pk}/ip_create", {**IP_CREATE, "addresses": 1}
    ).json()["ips"][0]

    response = world.api.post(
        "/ips/swap_virtual_machine_ips",
        {"virtual_machine_1_id": world.vm.pk, "virtual_machine_2_id": other.pk,
         "move_additional_ips": move_extras},
    )  # fmt: skip

    assert response.status_code == 204
    assert primary_v4(nic1) == before2 and primary_v4(nic2) == before1
    moved = IpAddress.objects.get(address=extra)
    assert moved.nic_id == (nic2.pk if move_extras else nic1.pk)
    assert moved.routed_via.nic_id == moved.nic_id


def test_swapping_needs_admin_on_both_machines(world):
    other = built_vm(world.group, world.owner, name="other")
    before = primary_v4(nic_of(world))

    response = world.console.post(
        "/ips/swap_virtual_machine_ips",
        {"virtual_machine_1_id": world.vm.pk, "virtual_machine_2_id": other.pk},
    )

    assert response.status_code == 403
    assert primary_v4(nic_of(world)) == before
