"""A fixed-window rate limit in the shared cache (Redis in production), for booking and payment actions."""

import time

from django.core.cache import cache


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
