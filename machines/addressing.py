"""Handing out MAC addresses and IP addresses, once each.

Addresses come from the IP ranges of a VLAN. Allocation locks the ranges it
draws from (SELECT ... FOR UPDATE), so two transactions never pick the same
free address; the unique constraint on `IpAddress.address` backs that up.
MACs are random, locally administered and unicast; a collision with an
existing MAC hits the unique constraint and is retried.
"""

from __future__ import annotations

import ipaddress
import secrets

from django.db import IntegrityError, transaction

from machines.models import IpAddress, IpRange, NetworkInterface, Vlan

DEFAULT_VLAN = 1
MAC_ATTEMPTS = 8

Network = ipaddress.IPv4Network | ipaddress.IPv6Network
Address = ipaddress.IPv4Address | ipaddress.IPv6Address


class NoFreeAddress(Exception):
    """The VLAN has no free address of the family asked for."""

    def __init__(self, vlan_num: int, family: str):
        super().__init__(f"VLAN {vlan_num} has no free {family} address")
        self.vlan_num = vlan_num
        self.family = family


class AddressUnavailable(Exception):
    """A specific address was asked for that is taken or outside the VLAN."""


def family_of(network_or_address) -> str:
    return "ipv4" if network_or_address.version == 4 else "ipv6"


def vlan_for_group(group) -> Vlan:
    """The group's own VLAN, or the default VLAN when it has none."""
    num = group.vlan_num or DEFAULT_VLAN
    vlan = Vlan.objects.filter(num=num).first()
    if vlan is None:
        raise NoFreeAddress(num, "ipv4")
    return vlan


def new_mac() -> str:
    """A random unicast, locally administered MAC address."""
    octets = bytearray(secrets.token_bytes(6))
    octets[0] = (octets[0] & 0xFC) | 0x02
    return ":".join(f"{b:02x}" for b in octets)


def create_nic(vm, vlan: Vlan, label: str = "") -> NetworkInterface:
    """A NIC with a fresh MAC; retries on the rare collision."""
    for _ in range(MAC_ATTEMPTS):
        try:
            with transaction.atomic():
                return NetworkInterface.objects.create(
                    virtual_machine=vm, vlan=vlan, mac=new_mac(), label=label
                )
        except IntegrityError:
            continue
    raise RuntimeError("could not find an unused MAC address")


def usable_hosts(network: Network):
    """Host addresses in order, skipping the network address, the gateway
    (the first host) and, for IPv4, the broadcast address."""
    first = int(network.network_address) + 2
    last = int(network.broadcast_address) - (1 if network.version == 4 else 0)
    if network.prefixlen >= network.max_prefixlen - 1:
        return range(0)
    return range(first, last + 1)


def usable_count(network: Network) -> int:
    # range() of a /64 is fine to iterate but too long for len().
    hosts = usable_hosts(network)
    return max(hosts.stop - hosts.start, 0)


def _locked_ranges(vlan: Vlan, family: str, zone: str = "") -> list[IpRange]:
    ranges = list(IpRange.objects.select_for_update().filter(vlan=vlan).order_by("id"))
    return [
        r
        for r in ranges
        if family_of(ipaddress.ip_network(r.spec, strict=False)) == family
        and (not r.zones or not zone or zone in r.zones)
    ]


def _used(ip_range: IpRange) -> set[int]:
    return {
        int(ipaddress.ip_address(a))
        for a in IpAddress.objects.filter(ip_range=ip_range).values_list(
            "address", flat=True
        )
    }


def _free_run(network: Network, used: set[int], count: int, contiguous: bool):
    """`count` free host numbers in order, consecutive when asked."""
    found: list[int] = []
    for host in usable_hosts(network):
        if host in used:
            found = [] if contiguous else found
            continue
        found.append(host)
        if len(found) == count:
            return found
    return None


def allocate(
    nic: NetworkInterface,
    family: str,
    *,
    count: int = 1,
    contiguous: bool = False,
    routed_via: IpAddress | None = None,
    reason: str = "",
    zone: str = "",
) -> list[IpAddress]:
    """Take `count` free addresses of `family` from the NIC's VLAN.

    Runs inside the caller's transaction; the range locks last until it ends.
    """
    for ip_range in _locked_ranges(nic.vlan, family, zone):
        network = ipaddress.ip_network(ip_range.spec, strict=False)
        hosts = _free_run(network, _used(ip_range), count, contiguous)
        if hosts is None:
            continue
        return [
            IpAddress.objects.create(
                address=str(ipaddress.ip_address(host)),
                ip_range=ip_range,
                nic=nic,
                family=family,
                routed_via=routed_via,
                reason=reason,
            )
            for host in hosts
        ]
    raise NoFreeAddress(nic.vlan.num, family)


def claim(nic: NetworkInterface, address: str, zone: str = "") -> IpAddress:
    """Take one specific address, which must be free and in the NIC's VLAN."""
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        raise AddressUnavailable(f"{address!r} is not an IP address") from None
    for ip_range in _locked_ranges(nic.vlan, family_of(ip), zone):
        network = ipaddress.ip_network(ip_range.spec, strict=False)
        if int(ip) not in usable_hosts(network):
            continue
        if IpAddress.objects.filter(address=str(ip)).exists():
            raise AddressUnavailable(f"{ip} is already in use")
        return IpAddress.objects.create(
            address=str(ip), ip_range=ip_range, nic=nic, family=family_of(ip)
        )
    raise AddressUnavailable(f"{ip} is not a usable address of VLAN {nic.vlan.num}")


def primary(nic: NetworkInterface, family: str) -> IpAddress | None:
    return nic.ips.filter(family=family, routed_via__isnull=True).order_by("id").first()


def address_machine(vm, group, *, ipv4: str = "", ipv6: str = "") -> NetworkInterface:
    """Give a new machine its NIC on the group's VLAN, with one IPv4 and one
    IPv6 address (the ones asked for, when given)."""
    nic = create_nic(vm, vlan_for_group(group))
    for family, wanted in (("ipv4", ipv4), ("ipv6", ipv6)):
        if wanted:
            claim(nic, wanted, vm.zone_name)
        else:
            allocate(nic, family, zone=vm.zone_name)
    return nic


def readdress_nic(nic: NetworkInterface, vlan: Vlan, zone: str = "") -> None:
    """Move a NIC to another VLAN: its addresses go back to the pool and it
    gets one new address per family it had (at least IPv4 and IPv6)."""
    nic.ips.all().delete()
    nic.vlan = vlan
    nic.save(update_fields=["vlan"])
    for family in ("ipv4", "ipv6"):
        allocate(nic, family, zone=zone)
