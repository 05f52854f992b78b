"""The engine's one lock: resource rows, in a fixed order, inside the caller's transaction, with a timeout.

Every write that takes or gives back a resource's time (holds, late payments re-taking their slots, rescheduling)
locks the resources first, then re-checks availability, then writes; PostgreSQL's exclusion constraint on live
allocations is the backstop. Sorting the keys means two writers never wait on each other in opposite orders
(no deadlock); the timeout turns a pile-up into a clean "busy, try again" instead of a hung worker.
On SQLite the IMMEDIATE transaction already serialises writers (TRAPS.md), so there is nothing more to lock.
"""

from __future__ import annotations

from collections.abc import Iterable

from django.conf import settings
from django.db import connection

from bookings.engine.models import Resource

DEFAULT_TIMEOUT_MS = 10_000


class NotInTransaction(RuntimeError):
    """A lock taken outside a transaction would be released at once: a programming error, never a user's."""


def lock_resources(resource_ids: Iterable[int], timeout_ms: int | None = None) -> list[int]:
    """Lock the resources' rows until the surrounding transaction ends; returns the sorted ids locked."""
    if not connection.in_atomic_block:
        raise NotInTransaction("lock_resources() must run inside transaction.atomic()")
    ids = sorted({int(i) for i in resource_ids})
    if not ids:
        return []
    if connection.vendor == "postgresql":
        ms = timeout_ms or getattr(settings, "BOOKING_LOCK_TIMEOUT_MS", DEFAULT_TIMEOUT_MS)
        with connection.cursor() as cursor:
            cursor.execute("SELECT set_config('lock_timeout', %s, true)", [f"{int(ms)}ms"])
    return list(Resource.objects.select_for_update().filter(id__in=ids).order_by("id").values_list("id", flat=True))
