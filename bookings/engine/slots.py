"""Free slots and course options of an offering: calendars loaded in a handful of queries, then the pure
range algebra of bookings.engine.availability.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import date, datetime, timedelta

from django.utils import timezone

from bookings.engine import availability as av
from bookings.engine.calendar import open_hours
from bookings.models import (
    Allocation,
    AvailabilityException,
    OfferingResource,
    WeeklyHours,
)
from catalog.models import Offering

log = logging.getLogger("emhana.bookings")




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
                   .values_list("resource_id", "unit", "start", "end"))
    for resource_id, unit, start, end in allocations:
        units = busy[resource_id]
        units[min(unit, len(units) - 1)].append((start, end))
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
    return Calendars(offering, calendars, tz)


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


def offering_slots(offering: Offering, first_day: date, last_day: date, now: datetime | None = None):
    """Bookable starts (single sessions, or whole courses: one option per start date) in local days."""
    now = now or timezone.now()
    earliest, latest = booking_window(offering, first_day, last_day, now)
    options, _cals = slot_options(offering, earliest, latest, now)
    return options


def alternatives_near(offering: Offering, start: datetime, now: datetime | None = None, limit: int = 6):
    now = now or timezone.now()
    day = start.astimezone(offering.clinic.tz).date()
    options = offering_slots(offering, day, day + timedelta(days=7), now)
    return [o for o in options if o.start != start][:limit]


