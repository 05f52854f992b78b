"""The calendar's version: one number in the cache, bumped by every write to what decides free time (and to
the offerings, service and clinic pages that decide whether an offering is bookable and how its slots fall).

Free slots are cached under the version (``bookings.engine.slots.offering_slots``), so a write makes every cached
answer unreachable at once. Writes reach here three ways, so no writer can forget it:

* ``save()`` and ``delete()`` of resources, weekly hours, exceptions, offering links and allocations, including
  rows deleted by a cascade, of offerings, cities and pages, and Wagtail's publish and unpublish: the signals
  connected by ``connect()`` (called from the app's ``ready``);
* ``update()``, ``delete()``, ``bulk_create()`` and ``bulk_update()`` on their querysets (``CalendarQuerySet``),
  which send no signal — holds, releases, cancellations and sweeps write this way;
* the clock: a cached answer lives at most until the first hold in it runs out (``Calendars.valid_until``).

The version is bumped at once (readers in the same transaction, and tests) and again after commit (so an
answer computed from the old rows between the two is never read again). A version that falls out of the cache
restarts from the clock in milliseconds, above any number used before.
"""

from __future__ import annotations

import logging
import time

from django.core.cache import cache
from django.db import models, transaction
from django.db.models.signals import post_delete, post_save
from wagtail.signals import page_published, page_unpublished

log = logging.getLogger("emhana.bookings")

KEY = "calendar:version"


def _fresh() -> int:
    return int(time.time() * 1000)


def current() -> int:
    version = cache.get(KEY)
    if version is None:
        cache.add(KEY, _fresh(), None)
        version = cache.get(KEY) or _fresh()
    return version


def _bump() -> None:
    try:
        cache.incr(KEY)
    except ValueError:  # not in the cache (evicted, or never read): start above anything used before
        cache.add(KEY, _fresh(), None)
    except Exception:  # the cache is down: nothing cached can be read either; the outage page says so
        log.warning("calendar version not bumped: the cache is unreachable", exc_info=True)


def changed() -> None:
    """Something that decides free time was written: cached slots are stale."""
    _bump()
    transaction.on_commit(_bump)


class CalendarQuerySet(models.QuerySet):
    """Bulk writes on calendar rows (they send no signals) make cached slots stale."""

    def update(self, **kwargs):
        count = super().update(**kwargs)
        if count:
            changed()
        return count

    update.alters_data = True

    def delete(self):
        result = super().delete()
        if result[0]:
            changed()
        return result

    delete.alters_data = True
    delete.queryset_only = True

    def bulk_create(self, objs, *args, **kwargs):
        created = super().bulk_create(objs, *args, **kwargs)
        if created:
            changed()
        return created

    def bulk_update(self, objs, fields, *args, **kwargs):
        count = super().bulk_update(objs, fields, *args, **kwargs)
        if count:
            changed()
        return count


def _on_write(sender, **kwargs):
    changed()


def connect(*models_) -> None:
    for model in models_:
        post_save.connect(_on_write, sender=model, dispatch_uid=f"calendar-version-save-{model._meta.label}")
        post_delete.connect(_on_write, sender=model, dispatch_uid=f"calendar-version-delete-{model._meta.label}")
    page_published.connect(_on_write, dispatch_uid="calendar-version-published")
    page_unpublished.connect(_on_write, dispatch_uid="calendar-version-unpublished")
