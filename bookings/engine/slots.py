"""Free slots and course options of an offering: calendars loaded in a handful of queries, then the pure
range algebra of bookings.engine.availability.

``offering_slots`` (what patients browse: the slot page, the API, alternatives, the waitlist's check) answers
from the cache when nothing that decides free time has changed (``bookings.engine.versions``); holds compute
afresh under the lock (``slot_options``), so a cached answer can make a patient wait, never double-book.
"""

from __future__ import annotations

import logging
import zlib
from dataclasses import dataclass
from datetime import date, datetime, timedelta

from django.core.cache import cache
from django.utils import timezone

from bookings.engine import availability as av
from bookings.engine import versions
from bookings.engine.calendar import open_hours
from bookings.models import (
    Allocation,
    AvailabilityException,
    OfferingResource,
    WeeklyHours,
)
from catalog.models import Offering

log = logging.getLogger("emhana.bookings")

CACHE_SECONDS = 60  # the longest a browsed answer is reused; writes make it unreachable sooner


def pattern_for(offering: Offering) -> av.CoursePattern:
    if offering.sessions <= 1:
        return av.CoursePattern(sessions=1, kind="single")
    if offering.spacing == Offering.DAYS and len(offering.spacing_offsets or []) == offering.sessions:
        return av.CoursePattern(sessions=offering.sessions, kind="days", offsets=tuple(offering.spacing_offsets))
    return av.CoursePattern(sessions=offering.sessions, kind="consecutive_working_days")


@dataclass
class Calendars:
    offering: Offering
    calendars: list[av.ResourceCalendar]
    tz: object
    valid_until: datetime | None = None  # the first loaded hold runs out then: the answer changes by itself


def load_calendars(offering: Offering, window_start: datetime, window_end: datetime, now: datetime) -> Calendars:
    """The offering's resources with their hours, exceptions and live allocations: four queries, any size."""
    tz = offering.clinic.tz
    resources = [link.resource for link in OfferingResource.objects.filter(
        offering=offering, resource__is_active=True).select_related("resource").order_by("resource_id")]
    if not resources:
        return Calendars(offering, [], tz)
    ids = [r.id for r in resources]
    max_buffer = timedelta(minutes=max(max(r.buffer_before_minutes, r.buffer_after_minutes) for r in resources))
    weekly: dict[int, list] = {i: [] for i in ids}
    for wh in WeeklyHours.objects.filter(resource_id__in=ids):
        weekly[wh.resource_id].append(wh)
    exceptions: dict[int, list] = {i: [] for i in ids}
    for ex in AvailabilityException.objects.filter(resource_id__in=ids, end__gt=window_start - timedelta(days=1),
                                                   start__lt=window_end + timedelta(days=1)):
        exceptions[ex.resource_id].append(ex)
    busy: dict[int, list[list]] = {r.id: [[] for _ in range(r.capacity)] for r in resources}
    allocations = (Allocation.objects.blocking(now).filter(resource_id__in=ids, end__gt=window_start - max_buffer,
                                                           start__lt=window_end + max_buffer)
                   .values_list("resource_id", "unit", "start", "end", "expires_at"))
    valid_until = None
    for resource_id, unit, start, end, expires_at in allocations:
        units = busy[resource_id]
        units[min(unit, len(units) - 1)].append((start, end))
        if expires_at is not None and (valid_until is None or expires_at < valid_until):
            valid_until = expires_at
    first_day = window_start.astimezone(tz).date() - timedelta(days=1)
    last_day = window_end.astimezone(tz).date() + timedelta(days=1)
    calendars = [
        av.prepare(av.ResourceCalendar(
            key=r.id,
            open=open_hours(weekly[r.id], exceptions[r.id], tz, first_day, last_day),
            busy_units=busy[r.id],
            buffer_before=timedelta(minutes=r.buffer_before_minutes),
            buffer_after=timedelta(minutes=r.buffer_after_minutes),
        ))
        for r in resources
    ]
    return Calendars(offering, calendars, tz, valid_until)


def booking_window(offering: Offering, first_day: date, last_day: date, now: datetime):
    tz = offering.clinic.tz
    earliest = max(now + timedelta(hours=offering.notice_hours), av.local_day_bounds(first_day, tz)[0])
    latest = min(now + timedelta(days=offering.horizon_days), av.local_day_bounds(last_day, tz)[1])
    return earliest, latest


def slot_options(offering, earliest, latest, now, cals: Calendars | None = None):
    pattern = pattern_for(offering)
    horizon_end = latest + pattern.default_span()
    if cals is None:
        cals = load_calendars(offering, earliest, horizon_end, now)
    if not cals.calendars or latest <= earliest:
        return [], cals
    duration = timedelta(minutes=offering.session_minutes)
    step = timedelta(minutes=offering.slot_step_minutes)
    if pattern.kind == "single":
        slots = av.find_slots(cals.calendars, duration, step, earliest, latest)
        return [av.CourseOption(start=s, sessions=((s, e),)) for s, e in slots], cals
    return av.course_options(cals.calendars, duration, step, earliest, latest, pattern, cals.tz,
                             horizon_end=horizon_end), cals


def _cache_key(offering: Offering, first_day: date, last_day: date) -> str:
    shape = (offering.sessions, offering.spacing, tuple(offering.spacing_offsets or ()), offering.session_minutes,
             offering.slot_step_minutes, offering.notice_hours, offering.horizon_days, offering.clinic.zone_name)
    return f"slots:{versions.current()}:{offering.pk}:{first_day}:{last_day}:{zlib.crc32(repr(shape).encode()):x}"


def offering_slots(offering: Offering, first_day: date, last_day: date, now: datetime | None = None,
                   present=None) -> list:
    """Bookable starts (single sessions, or whole courses: one option per start date) in local days.

    At the real time (``now`` not given) the answer is cached until a calendar write, the first hold in it runs
    out, or ``CACHE_SECONDS``; starts that come inside the notice period meanwhile are dropped on reading.
    A given ``now`` (the waitlist, tests of the clock) always computes. ``present`` (a function of an option and
    at most the clinic's zone, e.g. the API's JSON) is applied once when the answer is computed, and cached with
    it under its name.
    """
    real_time = now is None
    now = now or timezone.now()
    earliest, latest = booking_window(offering, first_day, last_day, now)
    key = _cache_key(offering, first_day, last_day) if real_time else None
    if key is not None:
        if present is not None:
            key += f":{present.__module__}.{present.__qualname__}"
        rows = cache.get(key)
        if rows is not None:
            return [shown for start, shown in rows if start >= earliest]
    options, cals = slot_options(offering, earliest, latest, now)
    rows = [(o.start, present(o) if present else o) for o in options]
    if key is not None:
        seconds = CACHE_SECONDS
        if cals.valid_until is not None:
            seconds = min(seconds, int((cals.valid_until - now).total_seconds()))
        if seconds > 0:
            cache.set(key, rows, seconds)
    return [shown for _start, shown in rows]


def alternatives_near(offering: Offering, start: datetime, now: datetime | None = None, limit: int = 6):
    day = start.astimezone(offering.clinic.tz).date()
    options = offering_slots(offering, day, day + timedelta(days=7), now)
    return [o for o in options if o.start != start][:limit]


