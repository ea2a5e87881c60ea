"""The request context: who is asking, how they proved it, and from where.

Every way of signing in (Basic, session token, API key, the browser) produces
one `AuthContext`. The authorization policy evaluates privilege conditions
against it and nothing else.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING

from django.conf import settings

if TYPE_CHECKING:
    from accounts.models import ApiKey, User

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address


def client_address(request) -> str:
    """The client's address: the TCP peer, or the forwarded address when the
    peer is a trusted proxy (walking X-Forwarded-For from the right).

    IPv4 clients of a dual-stack listener (::ffff:a.b.c.d) count as their
    IPv4 address, so IPv4 restrictions match them. Forwarded hops that are
    not addresses are skipped: they cannot be checked against anything.
    """
    peer = _normalised(request.META.get("REMOTE_ADDR", "")) or "0.0.0.0"  # noqa: S104
    forwarded = request.META.get("HTTP_X_FORWARDED_FOR", "")
    if not forwarded or not _is_trusted(peer):
        return peer
    hops = [hop for hop in map(_normalised, forwarded.split(",")) if hop]
    for hop in reversed(hops):
        if not _is_trusted(hop):
            return hop
    return hops[0] if hops else peer


def _normalised(address: str) -> str | None:
    try:
        ip = ipaddress.ip_address(address.strip())
    except ValueError:
        return None
    if ip.version == 6 and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    return str(ip)


def _is_trusted(address: str) -> bool:
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return False
    return any(ip in net for net in settings.TRUSTED_PROXIES)


@dataclass
class AuthContext:
    user: User
    client_ip: IPAddress | None
    method: str  # "basic", "session", "apikey" or "browser"
    password_verified: bool = False
    yubikey_verified_at: datetime | None = None
    api_key: ApiKey | None = None
    factors: list[str] = field(default_factory=list)

    @classmethod
    def for_request(cls, request, user, method: str, **kwargs) -> AuthContext:
        try:
            ip = ipaddress.ip_address(client_address(request))
        except ValueError:
            ip = None
        return cls(user=user, client_ip=ip, method=method, **kwargs)
