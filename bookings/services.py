"""Every operation that changes a booking's state: one function each, transactional.

Views, the API, the desk, webhooks and Celery tasks all call these and nothing else.
Concurrency rule (pretix, TRAPS.md): lock the resource rows in a fixed order, release stale
holds on them, re-check availability, then write; PostgreSQL's exclusion constraint is the
backstop, SQLite serialises writers with IMMEDIATE transactions.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import date, datetime, timedelta

from django.db import IntegrityError, OperationalError, connection, transaction
from django.db.models import Q
from django.utils import timezone, translation
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from catalog.models import Offering

from . import availability as av
from .models import (
    Allocation,
    Appointment,
    AvailabilityException,
    Booking,
    BookingEvent,
    Hold,
    Message,
    OfferingResource,
    Quote,
    Resource,
    WeeklyHours,
)

log = logging.getLogger("emhana.bookings")


# --------------------------------------------------------------------------------- errors


class BookingError(Exception):
    """A refusal the user can act on; ``message`` is translated, ``code`` is stable for the API."""

    status = 400

    def __init__(self, message, code="invalid"):
        super().__init__(str(message))
        self.message = message
        self.code = code


class SlotTaken(BookingError):
    status = 409

    def __init__(self, alternatives=(), message=None):
        super().__init__(message or _("This time was just taken by someone else. Please choose another."), "taken")
        self.alternatives = list(alternatives)


class Busy(BookingError):
    status = 503

    def __init__(self):
        super().__init__(_("We are very busy right now. Please try again in a moment; nothing was lost."), "busy")


class InvalidTransition(BookingError):
    status = 409


# --------------------------------------------------------------------------------- states

S = Booking
TRANSITIONS = {
    S.REQUESTED: {S.UNDER_REVIEW, S.DECLINED, S.CANCELLED},
    S.UNDER_REVIEW: {S.QUOTED, S.DECLINED, S.CANCELLED},
    S.QUOTED: {S.QUOTED, S.AWAITING_PAYMENT, S.DECLINED, S.CANCELLED, S.EXPIRED},
    # back to QUOTED: the hold ran out while the quote still stands, so the patient picks new dates in its window
    S.AWAITING_PAYMENT: {S.CONFIRMED, S.CANCELLED, S.EXPIRED, S.QUOTED},
    S.CONFIRMED: {S.COMPLETED, S.CANCELLED, S.REFUNDED},
    S.EXPIRED: {S.CONFIRMED, S.REFUNDED},  # a late payment re-takes its still-free slot, or is refunded
    S.CANCELLED: {S.REFUNDED},
    S.COMPLETED: set(),
    S.DECLINED: set(),
    S.REFUNDED: set(),
}


def transition(booking: Booking, to_state: str, actor=None, note: str = "", notify: str | None = None) -> Booking:
    """Move a booking to ``to_state`` if allowed, logging who, when and why. Caller holds the row lock.

    The patient is emailed about the new state (or about ``notify``, when the change means something else
    to them, e.g. a quote reopened after its hold ran out)."""
    if to_state not in TRANSITIONS.get(booking.state, set()):
        raise InvalidTransition(
            _("This booking is %(state)s and cannot become %(to)s.")
            % {"state": booking.get_state_display(), "to": dict(Booking.STATE_CHOICES)[to_state]},
            code="invalid_state",
        )
    from_state = booking.state
    booking.state = to_state
    booking.save(update_fields=["state", "updated_at"])
    event = BookingEvent.objects.create(booking=booking, from_state=from_state, to_state=to_state,
                                        actor=actor if getattr(actor, "is_authenticated", False) else None,
                                        note=note)
    log.info("booking %s: %s -> %s (%s)", booking.reference, from_state, to_state, note)
    kind = notify or to_state
    _notify_on_commit(booking, kind, f"booking:{booking.pk}:{kind}:{event.pk}")
    return booking


def _notify_on_commit(booking, kind, key=None):
    """Email the patient once the transaction commits; the key makes a retried task send it only once
    (and lets a second quote, say, be its own email)."""
    from . import tasks

    tasks.notify_booking.delay_on_commit(booking.pk, kind, key)


# --------------------------------------------------------------------------------- availability


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
    weekly: dict[int, list[av.WeeklyHours]] = {i: [] for i in ids}
    for wh in WeeklyHours.objects.filter(resource_id__in=ids):
        weekly[wh.resource_id].append(av.WeeklyHours(wh.weekday, wh.start, wh.end))
    extra: dict[int, list] = {i: [] for i in ids}
    closed: dict[int, list] = {i: [] for i in ids}
    for ex in AvailabilityException.objects.filter(resource_id__in=ids, end__gt=window_start - timedelta(days=1),
                                                   start__lt=window_end + timedelta(days=1)):
        (extra if ex.kind == AvailabilityException.EXTRA else closed)[ex.resource_id].append((ex.start, ex.end))
    busy: dict[int, list[list]] = {r.id: [[] for _ in range(r.capacity)] for r in resources}
    allocations = (Allocation.objects.filter(resource_id__in=ids, live=True, end__gt=window_start - max_buffer,
                                             start__lt=window_end + max_buffer)
                   .filter(Q(expires_at__isnull=True) | Q(expires_at__gt=now))
                   .values_list("resource_id", "unit", "start", "end"))
    for resource_id, unit, start, end in allocations:
        units = busy[resource_id]
        units[min(unit, len(units) - 1)].append((start, end))
    first_day = window_start.astimezone(tz).date() - timedelta(days=1)
    last_day = window_end.astimezone(tz).date() + timedelta(days=1)
    calendars = [
        av.prepare(av.ResourceCalendar(
            key=r.id,
            open=av.open_ranges(weekly[r.id], tz, first_day, last_day, extra=extra[r.id], closed=closed[r.id]),
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


def _options(offering, earliest, latest, now, cals: Calendars | None = None):
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
    options, _cals = _options(offering, earliest, latest, now)
    return options


def alternatives_near(offering: Offering, start: datetime, now: datetime | None = None, limit: int = 6):
    now = now or timezone.now()
    day = start.astimezone(offering.clinic.tz).date()
    options = offering_slots(offering, day, day + timedelta(days=7), now)
    return [o for o in options if o.start != start][:limit]


# --------------------------------------------------------------------------------- holds


def get_offering(offering_id) -> Offering:
    offering = (Offering.objects.select_related("clinic", "clinic__city", "page")
                .filter(pk=offering_id).first())
    if offering is None or not offering.is_active or not offering.page.live or not offering.clinic.live:
        raise BookingError(_("This treatment cannot be booked at the moment."), code="not_bookable")
    return offering


def _lock_resources(resource_ids: list[int]):
    """Lock the resource rows in id order (PostgreSQL); SQLite's IMMEDIATE transaction already serialises."""
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute("SET LOCAL lock_timeout = '10s'")
    list(Resource.objects.select_for_update().filter(id__in=resource_ids).order_by("id").values_list("id", flat=True))


def release_stale(resource_ids, now: datetime) -> int:
    """Make expired holds' allocations not live, so the constraint lets the slot be taken again."""
    stale = Allocation.objects.filter(resource_id__in=resource_ids, live=True, expires_at__lte=now)
    appointment_ids = list(stale.values_list("appointment_id", flat=True).distinct())
    if not appointment_ids:
        return 0
    count = stale.update(live=False)
    Appointment.objects.filter(id__in=appointment_ids, status=Appointment.HELD).update(status=Appointment.RELEASED)
    Hold.objects.filter(appointments__id__in=appointment_ids, status=Hold.ACTIVE).update(status=Hold.EXPIRED)
    return count


def place_hold(user, offering: Offering, start: datetime, client_key: str, now: datetime | None = None,
               booking: Booking | None = None) -> Hold:
    """Hold a slot (or a whole course) for ``offering.hold_minutes``: all sessions or none.

    Idempotent per (user, client_key): a retried or double-clicked request returns the same hold.
    For offerings that need review, ``booking`` must be the patient's quoted booking.
    """
    now = now or timezone.now()
    client_key = (client_key or "").strip()[:80]
    if not client_key:
        raise BookingError(_("Missing request key."), code="client_key")
    existing = Hold.objects.filter(user=user, client_key=client_key).first()
    if existing is not None:
        if existing.offering_id != offering.id:
            raise BookingError(_("This request key was already used for another treatment."), code="client_key")
        return existing
    if offering.review_required and booking is None:
        raise BookingError(_("A clinician must review your case before you can choose dates."), code="review_required")
    if start.tzinfo is None:
        raise BookingError(_("Give the time with its time zone."), code="start")
    start = start.astimezone(av.UTC)
    resource_ids = list(OfferingResource.objects.filter(offering=offering, resource__is_active=True)
                        .order_by("resource_id").values_list("resource_id", flat=True))
    if not resource_ids:
        raise BookingError(_("This clinic has not opened its calendar for this treatment yet."), code="no_resources")
    try:
        with transaction.atomic():
            _lock_resources(resource_ids)
            release_stale(resource_ids, now)
            day = start.astimezone(offering.clinic.tz).date()
            earliest, latest = booking_window(offering, day, day, now)
            options, cals = _options(offering, earliest, latest, now)
            option = next((o for o in options if o.start == start), None)
            if option is None:
                raise SlotTaken()
            hold = Hold.objects.create(offering=offering, user=user, client_key=client_key,
                                       expires_at=now + timedelta(minutes=offering.hold_minutes), booking=booking)
            allocations = []
            for seq, session in enumerate(option.sessions, start=1):
                appointment = Appointment.objects.create(
                    hold=hold, booking=booking, offering=offering, seq=seq, start=session[0], end=session[1],
                    status=Appointment.HELD)
                for cal in cals.calendars:
                    unit = av.free_unit(cal, session)
                    if unit is None:
                        raise SlotTaken()
                    blocked_start, blocked_end = av.blocked_window(cal, session)
                    allocations.append(Allocation(appointment=appointment, resource_id=cal.key, unit=unit,
                                                  start=blocked_start, end=blocked_end, expires_at=hold.expires_at))
            Allocation.objects.bulk_create(allocations)
    except SlotTaken:
        raise SlotTaken(alternatives_near(offering, start, now)) from None
    except IntegrityError as exc:
        again = Hold.objects.filter(user=user, client_key=client_key).first()
        if again is not None:  # the same request raced itself (double click): same hold
            return again
        log.info("hold lost a race on offering %s at %s: %s", offering.pk, start, exc.__class__.__name__)
        raise SlotTaken(alternatives_near(offering, start, now)) from None
    except OperationalError as exc:  # lock timeout, SQLite busy
        log.warning("hold on offering %s could not get its lock: %s", offering.pk, exc)
        raise Busy() from None
    return hold


def release_hold(user, hold: Hold, now: datetime | None = None) -> Hold:
    with transaction.atomic():
        hold = Hold.objects.select_for_update().get(pk=hold.pk, user=user)
        if hold.status != Hold.ACTIVE:
            return hold
        Allocation.objects.filter(appointment__hold=hold, live=True).update(live=False)
        hold.appointments.filter(status=Appointment.HELD).update(status=Appointment.RELEASED)
        hold.status = Hold.RELEASED
        hold.save(update_fields=["status"])
    return hold


def hold_is_live(hold: Hold, now: datetime | None = None) -> bool:
    now = now or timezone.now()
    return hold.status == Hold.ACTIVE and hold.expires_at > now


# --------------------------------------------------------------------------------- bookings


def _snapshot_title(offering) -> str:
    return offering.page.title


def create_booking_from_hold(user, hold: Hold, now: datetime | None = None) -> Booking:
    """Direct booking: the held slot becomes a booking awaiting its deposit (idempotent per hold)."""
    now = now or timezone.now()
    with transaction.atomic():
        hold = Hold.objects.select_for_update().select_related("offering__clinic", "offering__page").get(
            pk=hold.pk, user=user)
        if hold.status == Hold.CONVERTED and hold.booking_id:
            return hold.booking
        if hold.booking_id:  # a hold for a quoted booking: accept_quote handles it
            raise BookingError(_("This hold belongs to a quote; accept the quote instead."), code="hold_quote")
        if not hold_is_live(hold, now):
            raise BookingError(_("Your hold on this time ran out. Please choose a time again."), code="hold_expired")
        offering = hold.offering
        due = now + timedelta(minutes=offering.hold_minutes)
        booking = Booking.objects.create(
            user=user, offering=offering, clinic=offering.clinic, state=Booking.AWAITING_PAYMENT,
            currency=offering.currency, price=offering.price, deposit=offering.deposit,
            service_title=_snapshot_title(offering), language=translation.get_language() or "en",
            payment_due_at=due, patient_timezone=_patient_zone(user),
        )
        _attach_hold(booking, hold, due)
        BookingEvent.objects.create(booking=booking, from_state="", to_state=booking.state,
                                    actor=user, note="booked from hold")
    return booking


def _attach_hold(booking, hold, due):
    hold.appointments.update(booking=booking)
    Allocation.objects.filter(appointment__hold=hold, live=True).update(expires_at=due)
    hold.status = Hold.CONVERTED
    hold.booking = booking
    hold.save(update_fields=["status", "booking"])
    booking.payment_due_at = due
    booking.save(update_fields=["payment_due_at", "updated_at"])


def _patient_zone(user) -> str:
    profile = getattr(user, "patient_profile", None)
    return getattr(profile, "home_timezone", "") or ""


def request_treatment(user, offering: Offering, note: str = "", questionnaire: dict | None = None) -> Booking:
    """Review-first: the patient asks for a treatment; the clinic reviews before any dates or payment."""
    if not offering.review_required:
        raise BookingError(_("This treatment can be booked directly; choose a date instead."), code="direct")
    with transaction.atomic():
        booking = Booking.objects.create(
            user=user, offering=offering, clinic=offering.clinic, state=Booking.REQUESTED,
            currency=offering.currency, price=offering.price, deposit=offering.deposit,
            service_title=_snapshot_title(offering), language=translation.get_language() or "en",
            questionnaire=questionnaire or {}, request_note=note, patient_timezone=_patient_zone(user),
        )
        BookingEvent.objects.create(booking=booking, from_state="", to_state=booking.state, actor=user,
                                    note="treatment requested")
        _notify_on_commit(booking, Booking.REQUESTED)
    return booking


def _locked(booking: Booking) -> Booking:
    return Booking.objects.select_for_update().select_related("offering__clinic__city", "offering__page").get(
        pk=booking.pk)


def start_review(booking: Booking, actor) -> Booking:
    with transaction.atomic():
        booking = _locked(booking)
        if booking.state == Booking.UNDER_REVIEW:
            return booking
        return transition(booking, Booking.UNDER_REVIEW, actor, "review started")


def decline(booking: Booking, actor, reason: str) -> Booking:
    reason = (reason or "").strip()
    if not reason:
        raise BookingError(_("Please give the patient a reason."), code="reason")
    with transaction.atomic():
        booking = _locked(booking)
        booking.decline_reason = reason
        booking.save(update_fields=["decline_reason"])
        return transition(booking, Booking.DECLINED, actor, reason)


def send_quote(booking: Booking, actor, *, price: int, deposit: int, included: str, treatment_plan: str,
               window_start: date, window_end: date, valid_until: datetime) -> Quote:
    """Accept a case with a (new version of the) quote. Earlier versions are superseded."""
    if price <= 0 or deposit <= 0 or deposit > price:
        raise BookingError(_("The deposit must be above zero and not more than the price."), code="amount")
    if window_end < window_start:
        raise BookingError(_("The latest start date must not be before the earliest."), code="window")
    if valid_until <= timezone.now():
        raise BookingError(_("The quote must be valid until a future date."), code="valid_until")
    with transaction.atomic():
        booking = _locked(booking)
        if booking.state == Booking.REQUESTED:
            transition(booking, Booking.UNDER_REVIEW, actor, "review started")
        version = (booking.quotes.order_by("-version").values_list("version", flat=True).first() or 0) + 1
        booking.quotes.filter(superseded=False).update(superseded=True)
        quote = Quote.objects.create(
            booking=booking, version=version, price=price, deposit=deposit, currency=booking.currency,
            included=included, treatment_plan=treatment_plan, window_start=window_start, window_end=window_end,
            valid_until=valid_until, created_by=actor)
        transition(booking, Booking.QUOTED, actor, f"quote v{version}")
    return quote


def current_quote(booking: Booking) -> Quote | None:
    return booking.current_quote()


def quote_slots(booking: Booking, now: datetime | None = None):
    """Start options inside the current quote's date window."""
    quote = current_quote(booking)
    if quote is None:
        return []
    return offering_slots(booking.offering, quote.window_start, quote.window_end, now)


def accept_quote(user, booking: Booking, start: datetime, client_key: str, now: datetime | None = None) -> Booking:
    """The patient accepts the current quote and holds dates inside its window: awaiting payment."""
    now = now or timezone.now()
    booking = Booking.objects.select_related("offering__clinic__city", "offering__page").get(pk=booking.pk, user=user)
    if booking.state == Booking.AWAITING_PAYMENT:
        return booking  # retried request
    quote = current_quote(booking)
    if booking.state != Booking.QUOTED or quote is None:
        raise BookingError(_("There is no quote to accept on this booking."), code="no_quote")
    if quote.valid_until <= now:
        raise BookingError(_("This quote has expired. Please ask the clinic for a new one."), code="quote_expired")
    local_day = start.astimezone(booking.offering.clinic.tz).date()
    if not (quote.window_start <= local_day <= quote.window_end):
        raise BookingError(_("Please choose a start date inside the dates the clinic proposed."), code="window")
    hold = place_hold(user, booking.offering, start, client_key, now, booking=booking)
    with transaction.atomic():
        booking = _locked(booking)
        if booking.state == Booking.AWAITING_PAYMENT:
            return booking
        hold = Hold.objects.select_for_update().get(pk=hold.pk)
        if not hold_is_live(hold, now):
            raise BookingError(_("Your hold on this time ran out. Please choose a time again."), code="hold_expired")
        booking.price, booking.deposit = quote.price, quote.deposit
        booking.save(update_fields=["price", "deposit"])
        Quote.objects.filter(pk=quote.pk).update(accepted_at=now)
        _attach_hold(booking, hold, now + timedelta(minutes=booking.offering.hold_minutes))
        transition(booking, Booking.AWAITING_PAYMENT, user, f"quote v{quote.version} accepted")
    return booking


def confirm_paid(booking: Booking, note: str = "deposit paid", now: datetime | None = None) -> Booking:
    """The deposit is paid: make the appointments firm. Late payment: re-take the slots if still free.

    Returns the booking; if the slots are gone, the booking stays expired and the caller refunds.
    """
    now = now or timezone.now()
    with transaction.atomic():
        booking = _locked(booking)
        if booking.state == Booking.CONFIRMED:
            return booking
        allocations = Allocation.objects.filter(appointment__booking=booking)
        if booking.state == Booking.AWAITING_PAYMENT and booking.payment_due_at and booking.payment_due_at > now:
            allocations.filter(live=True).update(expires_at=None)
        elif booking.state in (Booking.AWAITING_PAYMENT, Booking.EXPIRED):
            if not _retake(booking, now):
                if booking.state == Booking.AWAITING_PAYMENT:
                    transition(booking, Booking.EXPIRED, None, "payment arrived after the hold ran out")
                return booking
        else:
            raise InvalidTransition(_("This booking cannot be confirmed now."), code="invalid_state")
        booking.appointments.filter(status__in=[Appointment.HELD, Appointment.RELEASED]).update(
            status=Appointment.BOOKED)
        booking.payment_due_at = None
        booking.save(update_fields=["payment_due_at"])
        transition(booking, Booking.CONFIRMED, None, note)
    return booking


def _retake(booking: Booking, now: datetime) -> bool:
    """Late payment: take the booking's slots again if nobody else has them (under the resource locks)."""
    allocations = list(Allocation.objects.filter(appointment__booking=booking))
    resource_ids = sorted({a.resource_id for a in allocations})
    _lock_resources(resource_ids)
    release_stale(resource_ids, now)
    for a in allocations:
        clash = (Allocation.objects.filter(resource_id=a.resource_id, unit=a.unit, live=True,
                                           start__lt=a.end, end__gt=a.start)
                 .exclude(pk=a.pk).filter(Q(expires_at__isnull=True) | Q(expires_at__gt=now)).exists())
        if clash:
            return False
    try:
        with transaction.atomic():
            Allocation.objects.filter(pk__in=[a.pk for a in allocations]).update(live=True, expires_at=None)
    except IntegrityError:
        return False
    return True


def extend_payment_window(booking: Booking, grace: timedelta, now: datetime | None = None) -> None:
    """Money is moving (3-D Secure, processing): keep the slots a little longer, never shorter."""
    now = now or timezone.now()
    until = now + grace
    with transaction.atomic():
        booking = _locked(booking)
        if booking.state != Booking.AWAITING_PAYMENT:
            return
        if booking.payment_due_at is None or booking.payment_due_at < until:
            booking.payment_due_at = until
            booking.save(update_fields=["payment_due_at"])
            Allocation.objects.filter(appointment__booking=booking, live=True).update(expires_at=until)


def expire_booking(booking: Booking, now: datetime | None = None) -> Booking:
    """The time to pay ran out: release the dates. A booking with a quote that still stands goes back to
    QUOTED (the patient picks new dates inside the quote's window); any other booking expires."""
    now = now or timezone.now()
    with transaction.atomic():
        booking = _locked(booking)
        if not booking.payment_overdue(now):
            return booking
        if booking.payments.filter(state__in=["succeeded", "processing", "requires_action"]).exists():
            return booking  # money is moving: the webhook decides
        Allocation.objects.filter(appointment__booking=booking, live=True).update(live=False)
        booking.appointments.filter(status=Appointment.HELD).update(status=Appointment.RELEASED)
        quote = current_quote(booking)
        if quote is not None and quote.valid_until > now:
            # the released dates stay with their old hold, not with the booking: a late payment must not
            # try to re-take them once new dates are chosen
            booking.appointments.filter(status=Appointment.RELEASED).update(booking=None)
            booking.payment_due_at = None
            booking.save(update_fields=["payment_due_at"])
            return transition(booking, Booking.QUOTED, None, "payment time ran out; the quote stands, new dates needed",
                              notify="quote_reopened")
        return transition(booking, Booking.EXPIRED, None, "payment time ran out")


def refresh(booking: Booking, now: datetime | None = None) -> Booking:
    """What a page shows follows ``payment_due_at``, not whether the sweep has run: an overdue booking is
    expired (or its quote reopened) before it is shown."""
    now = now or timezone.now()
    if booking.payment_overdue(now):
        return expire_booking(booking, now)
    return booking


def sweep(now: datetime | None = None) -> dict:
    """Background tidy-up (availability never depends on it): expire holds and unpaid bookings."""
    now = now or timezone.now()
    with transaction.atomic():
        stale_ids = list(Allocation.objects.filter(live=True, expires_at__lte=now)
                         .values_list("resource_id", flat=True).distinct())
        released = release_stale(stale_ids, now) if stale_ids else 0
        Hold.objects.filter(status=Hold.ACTIVE, expires_at__lte=now).update(status=Hold.EXPIRED)
    expired = 0
    for booking in Booking.objects.filter(state=Booking.AWAITING_PAYMENT, payment_due_at__lte=now):
        if expire_booking(booking, now).state == Booking.EXPIRED:
            expired += 1
    return {"released_allocations": released, "expired_bookings": expired}


def mark_attendance(appointment: Appointment, actor, attended: bool) -> Appointment:
    with transaction.atomic():
        appointment = Appointment.objects.select_for_update().get(pk=appointment.pk)
        if appointment.status not in (Appointment.BOOKED, Appointment.ATTENDED, Appointment.NO_SHOW):
            raise BookingError(_("Only booked sessions can be marked."), code="invalid_state")
        appointment.status = Appointment.ATTENDED if attended else Appointment.NO_SHOW
        appointment.save(update_fields=["status"])
        booking = _locked(appointment.booking)
        BookingEvent.objects.create(booking=booking, from_state=booking.state, to_state=booking.state, actor=actor,
                                    note=f"session {appointment.seq} {'attended' if attended else 'no-show'}")
        if booking.state == Booking.CONFIRMED and not booking.appointments.filter(status=Appointment.BOOKED).exists():
            transition(booking, Booking.COMPLETED, actor, "all sessions done")
    return appointment


def post_message(booking: Booking, author, body: str, from_clinic: bool) -> Message:
    """A message on a booking's thread. The patient is emailed about each message from the clinic."""
    body = (body or "").strip()
    if not body:
        raise BookingError(_("Please write a message."), code="empty")
    with transaction.atomic():
        message = Message.objects.create(booking=booking, author=author, from_clinic=from_clinic, body=body[:5000])
        if from_clinic:
            from . import tasks

            tasks.notify_booking.delay_on_commit(booking.pk, "message", f"booking:{booking.pk}:message:{message.pk}")
    return message


RESCHEDULE_MIN_DAYS = 3


def can_reschedule(booking: Booking, now: datetime | None = None) -> bool:
    now = now or timezone.now()
    if booking.state != Booking.CONFIRMED or booking.appointments.filter(status=Appointment.ATTENDED).exists():
        return False
    first = booking.appointments.filter(status=Appointment.BOOKED).order_by("start").first()
    return first is not None and first.start - now >= timedelta(days=RESCHEDULE_MIN_DAYS)


def reschedule(user, booking: Booking, new_start: datetime, client_key: str, now: datetime | None = None) -> Booking:
    """Move a confirmed booking to new dates, free of charge up to 3 days before: the new dates are held
    first (all sessions or none), then swapped in and the old ones released, in one transaction."""
    now = now or timezone.now()
    booking = Booking.objects.select_related("offering__clinic__city", "offering__page").get(pk=booking.pk, user=user)
    if not can_reschedule(booking, now):
        raise BookingError(_("Dates can be changed here up to %(days)d days before treatment. Please write to the "
                             "clinic from the booking page.") % {"days": RESCHEDULE_MIN_DAYS}, code="reschedule")
    hold = place_hold(user, booking.offering, new_start, client_key, now, booking=booking)
    with transaction.atomic():
        booking = _locked(booking)
        hold = Hold.objects.select_for_update().get(pk=hold.pk)
        if hold.status == Hold.CONVERTED:
            return booking  # a retried request
        if not hold_is_live(hold, now) or booking.state != Booking.CONFIRMED:
            raise BookingError(_("Your hold on this time ran out. Please choose a time again."), code="hold_expired")
        old = list(booking.appointments.filter(status=Appointment.BOOKED).exclude(hold=hold).order_by("start"))
        Allocation.objects.filter(appointment__in=old, live=True).update(live=False)
        Appointment.objects.filter(pk__in=[a.pk for a in old]).update(status=Appointment.RELEASED)
        Allocation.objects.filter(appointment__hold=hold, live=True).update(expires_at=None)
        hold.appointments.update(status=Appointment.BOOKED)
        hold.status = Hold.CONVERTED
        hold.save(update_fields=["status"])
        event = BookingEvent.objects.create(
            booking=booking, from_state=booking.state, to_state=booking.state, actor=user,
            note=f"moved from {old[0].start.isoformat() if old else '?'} to {new_start.astimezone(av.UTC).isoformat()}")
        from . import tasks

        tasks.notify_booking.delay_on_commit(booking.pk, "rescheduled", f"booking:{booking.pk}:rescheduled:{event.pk}")
    return booking


# --------------------------------------------------------------------------------- cancellation and refunds

PATIENT, CLINIC_CANCELLED, VISA_REFUSED, UNFIT_ON_ARRIVAL = "patient", "clinic_cancelled", "visa_refused", "unfit"
CANCEL_REASONS = {
    PATIENT: gettext_lazy("I cancel"),
    VISA_REFUSED: gettext_lazy("My visa was refused"),
    CLINIC_CANCELLED: gettext_lazy("The clinic cancelled"),
    UNFIT_ON_ARRIVAL: gettext_lazy("The clinician found the patient unfit for treatment"),
}
FULL_REFUND_DAYS = 14
PARTIAL_REFUND_DAYS = 3
PARTIAL_REFUND_PERCENT = 50


def paid_amount(booking: Booking) -> int:
    from .models import Payment

    payments = Payment.objects.filter(booking=booking, state=Payment.SUCCEEDED).prefetch_related("refunds")
    return sum(p.amount - p.refunded_amount for p in payments)


@dataclass(frozen=True)
class RefundQuote:
    amount: int
    paid: int
    percent: int
    unused_sessions: int
    total_sessions: int
    explanation: str


def refund_percent(first_session: datetime | None, now: datetime) -> int:
    """The patient's own cancellation: 100% up to 14 days before the first remaining session, 50% up to 3."""
    if first_session is None:
        return 100
    days = (first_session - now).total_seconds() / 86400
    if days >= FULL_REFUND_DAYS:
        return 100
    if days >= PARTIAL_REFUND_DAYS:
        return PARTIAL_REFUND_PERCENT
    return 0


def refund_steps(booking: Booking, now: datetime | None = None) -> list[tuple[datetime, int]]:
    """[(until, percent)] still ahead for the patient's own cancellation, from the same rule as refund_due:
    e.g. [(14 days before, 100), (3 days before, 50)]; empty once nothing is refundable."""
    now = now or timezone.now()
    first = min((a.start for a in booking.appointments.filter(status__in=[Appointment.BOOKED, Appointment.HELD],
                                                              start__gt=now)), default=None)
    if first is None:
        return []
    steps = [(first - timedelta(days=FULL_REFUND_DAYS), 100),
             (first - timedelta(days=PARTIAL_REFUND_DAYS), PARTIAL_REFUND_PERCENT)]
    return [(until, percent) for until, percent in steps if until > now]


def refund_due(booking: Booking, reason: str, now: datetime | None = None, paid: int | None = None) -> RefundQuote:
    """The one function that says what a cancelled booking is owed — never more than was paid.

    Full refund when the clinic cancels, the visa is refused or the patient is found unfit; otherwise
    100% up to 14 days before the first remaining session, 50% up to 3 days, nothing later. A course
    refunds only its unused sessions' share. ``paid`` lets the checkout ask "and if I paid the deposit now?".
    """
    now = now or timezone.now()
    paid = paid_amount(booking) if paid is None else paid
    sessions = list(booking.appointments.exclude(status__in=[Appointment.RELEASED, Appointment.CANCELLED]))
    total = len(sessions) or 1
    unused = [a for a in sessions if a.status in (Appointment.BOOKED, Appointment.HELD) and a.start > now]
    share_unused = len(unused) if sessions else 1
    if reason in (CLINIC_CANCELLED, VISA_REFUSED, UNFIT_ON_ARRIVAL):
        percent, why = 100, _("Full refund: %(reason)s.") % {"reason": CANCEL_REASONS[reason]}
    else:
        first = min((a.start for a in unused), default=None)
        percent = refund_percent(first, now)
        if percent == 100:
            why = _("Full refund: cancelled %(days)d or more days before treatment.") % {"days": FULL_REFUND_DAYS}
        elif percent:
            why = _(
                "%(percent)d%% refund: cancelled less than %(days)d days before treatment.") % {
                "percent": PARTIAL_REFUND_PERCENT, "days": FULL_REFUND_DAYS}
        else:
            why = _("No refund: cancelled less than %(days)d days before treatment.") % {
                "days": PARTIAL_REFUND_DAYS}
    amount = paid * share_unused * percent // (total * 100)
    return RefundQuote(amount=max(0, min(amount, paid)), paid=paid, percent=percent, unused_sessions=share_unused,
                       total_sessions=total, explanation=why)


def cancel_booking(booking: Booking, actor, reason: str = PATIENT, now: datetime | None = None):
    """Cancel (patient or clinic), free the slots and start the refund owed. Returns (booking, RefundQuote)."""
    now = now or timezone.now()
    if reason not in CANCEL_REASONS:
        raise BookingError(_("Unknown cancellation reason."), code="reason")
    with transaction.atomic():
        booking = _locked(booking)
        if booking.state in (Booking.CANCELLED, Booking.REFUNDED):  # already done: nothing more is owed
            return booking, RefundQuote(amount=0, paid=paid_amount(booking), percent=0, unused_sessions=0,
                                        total_sessions=booking.appointments.count(),
                                        explanation=_("This booking is already cancelled."))
        quote = refund_due(booking, reason, now)
        Allocation.objects.filter(appointment__booking=booking, live=True).update(live=False)
        booking.appointments.filter(status__in=[Appointment.HELD, Appointment.BOOKED]).update(
            status=Appointment.CANCELLED)
        booking.cancel_reason = reason
        booking.save(update_fields=["cancel_reason"])
        transition(booking, Booking.CANCELLED, actor, f"{reason}: {quote.explanation}")
    if quote.amount > 0:
        from .payments_service import refund_booking

        refund_booking(booking, quote.amount, reason)
    return booking, quote
