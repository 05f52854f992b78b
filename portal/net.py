"""The client's address, for rate limits and access logs: one helper, so every limit and log agrees.

Behind the TLS proxy production assumes, ``REMOTE_ADDR`` is the proxy's address for every client: a limit
keyed on it locks out everyone at once (TRAPS.md). Each trusted proxy appends the address it saw to
``X-Forwarded-For``; with ``settings.TRUSTED_PROXY_COUNT = N`` the client is the entry N hops from the right
(everything further left was sent by the client and may be forged). With N = 0 the header is ignored.
"""

from __future__ import annotations

import ipaddress

from django.conf import settings
from django.http import HttpRequest


def clean_ip(value: str | None) -> str | None:
    """A valid IPv4/IPv6 address in canonical form, or None. Accepts the ``1.2.3.4:5678`` and
    ``[2001:db8::1]:443`` forms some proxies write, and drops an IPv6 zone (``fe80::1%eth0``)."""
    if not value:
        return None
    value = value.strip().strip('"')
    if value.startswith("["):  # [v6] or [v6]:port
        value = value[1:].split("]", 1)[0]
    elif value.count(":") == 1:  # v4:port (a bare IPv6 address has two or more colons)
        value = value.split(":", 1)[0]
    value = value.split("%", 1)[0]
    try:
        address = ipaddress.ip_address(value)
    except ValueError:
        return None
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped:
        address = address.ipv4_mapped  # ::ffff:1.2.3.4 is the same client as 1.2.3.4
    return str(address)


def client_ip(request: HttpRequest) -> str | None:
    """The address of the client that sent ``request`` (canonical text), or None if there is no valid one.

    ``X-Forwarded-For`` is read only when ``TRUSTED_PROXY_COUNT`` > 0, and then only the entry that many hops
    from the right, i.e. the one our outermost trusted proxy wrote. A header with fewer entries than that, or an
    entry that is not an IP address, is not believed: the answer is then ``REMOTE_ADDR``.
    """
    trusted = int(getattr(settings, "TRUSTED_PROXY_COUNT", 0) or 0)
    if trusted > 0:
        forwarded = request.META.get("HTTP_X_FORWARDED_FOR", "")
        hops = [hop.strip() for hop in forwarded.split(",")] if forwarded.strip() else []
        if len(hops) >= trusted:
            ip = clean_ip(hops[-trusted])
            if ip:
                return ip
    return clean_ip(request.META.get("REMOTE_ADDR"))


def client_network(request: HttpRequest, ipv6_prefix: int = 64) -> str | None:
    """What a per-client limit should count: the IPv4 address, or the IPv6 /64 (one household or server
    usually owns a whole /64 and can pick any address in it)."""
    ip = client_ip(request)
    if ip is None:
        return None
    address = ipaddress.ip_address(ip)
    if isinstance(address, ipaddress.IPv6Address):
        return str(ipaddress.IPv6Network(f"{address}/{ipv6_prefix}", strict=False))
    return ip
