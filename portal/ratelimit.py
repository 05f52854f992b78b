"""A fixed-window rate limit in the shared cache (Redis in production), for booking and payment actions.

Limits are keyed on the account when there is one, else on the client (``portal.net``), never on the
address of the TLS proxy in front of us: use ``ident(request)`` (or ``allow_request``) rather than reading
``REMOTE_ADDR`` yourself.
"""

import time

from django.core.cache import cache

from .net import client_network


def parse(rate: str) -> tuple[int, int]:
    count, _, unit = rate.partition("/")
    return int(count), {"s": 1, "m": 60, "h": 3600, "d": 86400}[unit or "m"]


def allow(scope: str, ident: str, rate: str) -> bool:
    """Count one hit for (scope, ident); False once the window's limit is used up."""
    limit, period = parse(rate)
    window = int(time.time() // period)
    key = f"rl:{scope}:{ident}:{window}"
    if cache.add(key, 1, period + 1):
        return True
    try:
        return cache.incr(key) <= limit
    except ValueError:  # expired between add and incr
        cache.add(key, 1, period + 1)
        return True


def ident(request) -> str:
    """Who a limit counts: the signed-in account (its pk, the key the booking views and API already use),
    else the client's address or IPv6 /64 ("ip:<address>", through the trusted proxies — portal.net)."""
    user = getattr(request, "user", None)
    if getattr(user, "is_authenticated", False):
        return str(user.pk)
    return f"ip:{client_network(request) or 'unknown'}"


def allow_request(scope: str, request, rate: str) -> bool:
    """``allow`` keyed on ``ident(request)``."""
    return allow(scope, ident(request), rate)
