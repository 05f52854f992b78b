"""Business operations on a resource's calendar: weekly hours, buffers, closures and extra hours.

Called by the clinic desk (and usable from the admin, the API or tasks). Changing a calendar never
cancels anything: ``stranded_appointments`` tells the caller which booked or held sessions would no
longer fit, so the desk can warn the coordinator and make them confirm that they will handle those
patients before saving.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, time, timedelta

from django.db import transaction
from django.utils import timezone
from django.utils.translation import gettext as _

from bookings.engine import availability as av
from bookings.errors import BookingError
from bookings.models import Allocation, Appointment, AvailabilityException, Booking, Resource, WeeklyHours

log = logging.getLogger("emhana.bookings")

MAX_BUFFER_MINUTES = 24 * 60
MAX_EXCEPTION_DAYS = 366


class CalendarError(BookingError):
    """A calendar change the coordinator can correct (overlapping hours, end before start, ...)."""


class StrandedSessions(CalendarError):
    """The change would leave booked or held sessions outside the hours, and not all were acknowledged."""


    def __init__(self, appointments):
        super().__init__(_("Some booked sessions would be outside the opening hours. Nothing was saved."),
                         code="stranded")
        self.appointments = list(appointments)


def _check_acknowledged(stranded, acknowledged):
    """``acknowledged=None``: the caller does not ask for a check. Otherwise every stranded id must be in it."""
    if acknowledged is None:
        return
    if {a.pk for a in stranded} - set(acknowledged):
        raise StrandedSessions(stranded)


@dataclass(frozen=True)
class HoursRow:
    weekday: int
    start: time
    end: time


def _rows(rows: Iterable) -> list[HoursRow]:
    """Accept HoursRow, WeeklyHours (model or availability), (weekday, start, end) tuples or dicts."""
    out = []
    for row in rows:
        if isinstance(row, dict):
            out.append(HoursRow(int(row["weekday"]), row["start"], row["end"]))
        elif isinstance(row, tuple | list):
            out.append(HoursRow(int(row[0]), row[1], row[2]))
        else:
            out.append(HoursRow(int(row.weekday), row.start, row.end))
    return out


def validate_rows(rows: Iterable) -> list[HoursRow]:
    """Check weekly rows: weekday 0..6, end after start, no two ranges of one day overlapping. Sorted."""
    checked = sorted(_rows(rows), key=lambda r: (r.weekday, r.start))
    names = dict(WeeklyHours.WEEKDAYS)
    for row in checked:
        if not 0 <= row.weekday <= 6:
            raise CalendarError(_("Choose a day of the week."), code="weekday")
        if row.start is None or row.end is None or row.end <= row.start:
            raise CalendarError(_("%(day)s: the closing time must be after the opening time.")
                                % {"day": names[row.weekday]}, code="range")
    for prev, row in zip(checked, checked[1:], strict=False):
        if prev.weekday == row.weekday and row.start < prev.end:
            raise CalendarError(_("%(day)s: the ranges %(a)s and %(b)s overlap.") % {
                "day": names[row.weekday],
                "a": f"{prev.start:%H:%M}–{prev.end:%H:%M}",
                "b": f"{row.start:%H:%M}–{row.end:%H:%M}"}, code="overlap")
    return checked


def current_rows(resource: Resource) -> list[HoursRow]:
    return [HoursRow(wh.weekday, wh.start, wh.end) for wh in resource.weekly_hours.order_by("weekday", "start")]


@transaction.atomic
def set_weekly_hours(resource: Resource, rows: Iterable, actor, *, buffer_before: int | None = None,
                     buffer_after: int | None = None, acknowledged=None) -> list[WeeklyHours]:
    """Replace the resource's weekly hours (and optionally its buffers) in one transaction.

    With ``acknowledged`` (appointment ids the coordinator confirmed they will handle), the stranded
    sessions are re-checked under the resource lock, so a booking made since the warning is not missed:
    ``StrandedSessions`` if any is not acknowledged. Nothing is ever cancelled here.
    """
    checked = validate_rows(rows)
    for value in (buffer_before, buffer_after):
        if value is not None and not 0 <= value <= MAX_BUFFER_MINUTES:
            raise CalendarError(_("A buffer must be between 0 and %(max)d minutes.") % {"max": MAX_BUFFER_MINUTES},
                                code="buffer")
    locked = Resource.objects.select_for_update().select_related("clinic__city").get(pk=resource.pk)
    _check_acknowledged(stranded_appointments(locked, new_weekly_rows=checked) if acknowledged is not None else [],
                        acknowledged)
    WeeklyHours.objects.filter(resource=locked).delete()
    created = WeeklyHours.objects.bulk_create(
        [WeeklyHours(resource=locked, weekday=r.weekday, start=r.start, end=r.end) for r in checked])
    fields = []
    if buffer_before is not None:
        locked.buffer_before_minutes = buffer_before
        fields.append("buffer_before_minutes")
    if buffer_after is not None:
        locked.buffer_after_minutes = buffer_after
        fields.append("buffer_after_minutes")
    if fields:
        locked.save(update_fields=fields)
        for name in fields:
            setattr(resource, name, getattr(locked, name))
    log.info("resource %s: weekly hours set by %s (%d ranges)", resource.pk, getattr(actor, "pk", None),
             len(created))
    return created


def _check_range(start: datetime, end: datetime):
    if start is None or end is None or timezone.is_naive(start) or timezone.is_naive(end):
        raise CalendarError(_("Give both the start and the end."), code="range")
    if end <= start:
        raise CalendarError(_("The end must be after the start."), code="range")
    if end - start > timedelta(days=MAX_EXCEPTION_DAYS):
        raise CalendarError(_("An exception can last at most a year."), code="range")


@transaction.atomic
def add_exception(resource: Resource, kind: str, start: datetime, end: datetime, reason: str,
                  actor, *, acknowledged=None) -> AvailabilityException:
    """Add a closure (maintenance, holiday) or extra hours; times are aware datetimes, stored in UTC.

    ``acknowledged``: as for ``set_weekly_hours`` (a closure over booked sessions needs them acknowledged).
    """
    if kind not in (AvailabilityException.CLOSED, AvailabilityException.EXTRA):
        raise CalendarError(_("Choose closed or extra hours."), code="kind")
    _check_range(start, end)
    list(Resource.objects.select_for_update().filter(pk=resource.pk).values_list("pk", flat=True))
    if kind == AvailabilityException.CLOSED and acknowledged is not None:
        _check_acknowledged(stranded_appointments(resource, new_closure=(start, end)), acknowledged)
    exception = AvailabilityException.objects.create(
        resource=resource, kind=kind, start=start.astimezone(av.UTC), end=end.astimezone(av.UTC),
        reason=(reason or "").strip()[:200], created_by=actor if getattr(actor, "is_authenticated", False) else None)
    log.info("resource %s: %s exception %s–%s added by %s", resource.pk, kind, start, end, getattr(actor, "pk", None))
    return exception


@transaction.atomic
def remove_exception(resource: Resource, exception: AvailabilityException | int, actor, *, acknowledged=None) -> None:
    """Remove a closure or extra hours; removing extra hours that carry booked sessions needs them acknowledged."""
    exception_id = getattr(exception, "pk", exception)
    list(Resource.objects.select_for_update().filter(pk=resource.pk).values_list("pk", flat=True))
    current = AvailabilityException.objects.filter(resource=resource, pk=exception_id).first()
    if current is None:
        raise CalendarError(_("This exception no longer exists."), code="missing")
    if current.kind == AvailabilityException.EXTRA and acknowledged is not None:
        _check_acknowledged(stranded_appointments(resource, without_exception=current), acknowledged)
    current.delete()
    log.info("resource %s: exception %s removed by %s", resource.pk, exception_id, getattr(actor, "pk", None))


# --------------------------------------------------------------------------------- stranded sessions


def live_appointments(resource: Resource, now: datetime | None = None):
    """Booked or (still) held sessions that have not ended yet and claim this resource."""
    now = now or timezone.now()
    live_allocations = Allocation.objects.blocking(now).filter(resource=resource)
    return (Appointment.objects
            .filter(status__in=[Appointment.BOOKED, Appointment.HELD], end__gt=now,
                    id__in=live_allocations.values("appointment_id"))
            .exclude(booking__state__in=list(Booking.ENDS))
            .select_related("booking__user", "offering__page", "hold__user")
            .order_by("start"))


def open_hours(weekly_rows: Iterable, exceptions: Iterable, tz, first_day, last_day) -> list[av.Range]:
    """The one builder of a resource's open time: its weekly rows (models, HoursRow or availability.WeeklyHours)
    between two local days, plus extra hours, minus closures. Slot search, the desk's week and the
    stranded-session check all build hours here."""
    exceptions = list(exceptions)
    weekly = [av.WeeklyHours(r.weekday, r.start, r.end) for r in weekly_rows if r.end > r.start]
    return av.open_ranges(
        weekly, tz, first_day, last_day,
        extra=[(e.start, e.end) for e in exceptions if e.kind == AvailabilityException.EXTRA],
        closed=[(e.start, e.end) for e in exceptions if e.kind == AvailabilityException.CLOSED])


def stranded_appointments(resource: Resource, new_weekly_rows=None, new_closure=None, *,
                          without_exception: AvailabilityException | None = None,
                          now: datetime | None = None) -> list[Appointment]:
    """Booked/held sessions on ``resource`` that the proposed change would leave outside its hours.

    ``new_weekly_rows``: the weekly hours about to replace the current ones (the resource's exceptions
    still apply); ``new_closure``: a ``(start, end)`` closure about to be added; ``without_exception``:
    an exception about to be removed (removing extra hours can strand the sessions booked in them).
    Nothing is changed or cancelled here.
    """
    appointments = list(live_appointments(resource, now))
    if not appointments:
        return []
    stranded: dict[int, Appointment] = {}
    if new_closure is not None:
        c_start, c_end = new_closure
        for a in appointments:
            if av.overlaps((a.start, a.end), (c_start, c_end)):
                stranded[a.pk] = a
    if new_weekly_rows is not None or without_exception is not None:
        tz = resource.clinic.tz
        rows = _rows(new_weekly_rows) if new_weekly_rows is not None else current_rows(resource)
        first = min(a.start for a in appointments)
        last = max(a.end for a in appointments)
        exceptions = AvailabilityException.objects.filter(resource=resource, end__gt=first - timedelta(days=1),
                                                          start__lt=last + timedelta(days=1))
        if without_exception is not None:
            exceptions = exceptions.exclude(pk=without_exception.pk)
        open_ = open_hours(rows, exceptions, tz, first.astimezone(tz).date() - timedelta(days=1),
                           last.astimezone(tz).date() + timedelta(days=1))
        for a in appointments:
            if not av.inside(open_, a.start.astimezone(av.UTC), a.end.astimezone(av.UTC)):
                stranded[a.pk] = a
    return sorted(stranded.values(), key=lambda a: (a.start, a.pk))
