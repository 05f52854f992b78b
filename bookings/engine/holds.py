"""Holding slots while a patient pays: lock the resources, release stale holds, re-check, write.

Concurrency rule (TRAPS.md): lock the resource rows in a fixed order, release stale holds on them, re-check
availability, then write; PostgreSQL's exclusion constraint is the backstop, SQLite serialises writers with
IMMEDIATE transactions.
"""

from __future__ import annotations

import logging
from datetime import datetime, timedelta

from django.core.cache import cache
from django.db import IntegrityError, OperationalError, transaction
from django.utils import timezone
from django.utils.translation import gettext as _

from bookings.engine import availability as av
from bookings.engine import versions
from bookings.engine.locking import lock_resources
from bookings.engine.slots import (
    CACHE_SECONDS,
    alternatives_near,
    booking_window,
    offering_slots,
    slot_options,
)
from bookings.errors import BookingError, Busy, SlotTaken
from bookings.models import (
    Allocation,
    Appointment,
    Booking,
    Hold,
    OfferingResource,
)
from catalog.models import Offering

log = logging.getLogger("emhana.bookings")




# What the engine reads of an offering: its own columns, whether its page and clinic are live, the clinic's zone.
# Not the pages' text: a service page row is ~140 columns (seven languages), and building and reading it was
# most of the slots API's time.
ENGINE_FIELDS = (*(f.name for f in Offering._meta.concrete_fields), "page__live", "clinic__live",
                 "clinic__timezone", "clinic__city__timezone")


def ensure_bookable(offering: Offering | None) -> Offering:
    if offering is None or not offering.is_bookable():
        raise BookingError(_("This treatment cannot be booked at the moment."), code="not_bookable")
    return offering


def get_offering(offering_id) -> Offering:
    """A bookable offering with what the engine needs (for the API's slots and holds), or ``not_bookable``."""
    return ensure_bookable(Offering.objects.select_related("clinic", "clinic__city", "page")
                           .only(*ENGINE_FIELDS).filter(pk=offering_id).first())


def browse_offering(offering_id) -> Offering:
    """``get_offering`` for browsing (the slots API, and the API's hold before ``place_hold`` reads the rule
    afresh), cached under the calendar's version, which every save of an offering, page or clinic and every
    publish and unpublish bumps."""
    key = f"offering:{versions.current()}:{offering_id}"
    offering = cache.get(key)
    if offering is None:
        offering = get_offering(offering_id)
        cache.set(key, offering, CACHE_SECONDS)
    return offering


def _resource_ids(offering: Offering) -> list[int]:
    """The offering's active resources in lock order, or ``no_resources``."""
    resource_ids = list(OfferingResource.objects.filter(offering=offering, resource__is_active=True)
                        .order_by("resource_id").values_list("resource_id", flat=True))
    if not resource_ids:
        raise BookingError(_("This clinic has not opened its calendar for this treatment yet."), code="no_resources")
    return resource_ids


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
    real_time = now is None  # browsing answers (the look before the lock, alternatives) may come from the cache
    now = now or timezone.now()
    client_key = (client_key or "").strip()[:80]
    if not client_key:
        raise BookingError(_("Missing request key."), code="client_key")
    existing = Hold.objects.filter(user=user, client_key=client_key).first()
    if existing is not None:
        if existing.offering_id != offering.id:
            raise BookingError(_("This request key was already used for another treatment."), code="client_key")
        return existing
    # New bookings only: a patient holding the clinic's quote (or moving dates of a booking they have) keeps
    # the clinic's word after the offering stops taking new patients.
    if booking is None and not offering.is_bookable():
        raise BookingError(_("This treatment cannot be booked at the moment."), code="not_bookable")
    if offering.review_required and booking is None:
        raise BookingError(_("A clinician must review your case before you can choose dates."), code="review_required")
    if start.tzinfo is None:
        raise BookingError(_("Give the time with its time zone."), code="start")
    start = start.astimezone(av.UTC)
    day = start.astimezone(offering.clinic.tz).date()
    earliest, latest = booking_window(offering, day, day, now)
    browse_now = None if real_time else now
    # Optimistic look first, without the lock: when a slot is wanted by many at once, everyone after the winner
    # learns it is taken here instead of queueing on the lock only to learn the same (bench: 200 holds on one slot).
    # The cached answer is bumped by every calendar write and lives no longer than its first hold, so it never
    # refuses a time that is free; a time it shows free is checked again under the lock.
    that_day = offering_slots(offering, day, day, browse_now)
    if not any(o.start == start for o in that_day):
        if not that_day:
            _resource_ids(offering)  # no calendar at all says so, rather than "taken"
        raise SlotTaken(alternatives_near(offering, start, browse_now))
    resource_ids = _resource_ids(offering)
    if booking is None and not Offering.objects.bookable().filter(pk=offering.pk).exists():
        # the offering in hand may be the browsing copy (``browse_offering``): the rule is read afresh here, where
        # only those who may win arrive, so the many who lose a popular slot never pay for it
        raise BookingError(_("This treatment cannot be booked at the moment."), code="not_bookable")
    try:
        with transaction.atomic():
            lock_resources(resource_ids)
            release_stale(resource_ids, now)
            options, cals = slot_options(offering, earliest, latest, now)
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
        raise SlotTaken(alternatives_near(offering, start, browse_now)) from None
    except IntegrityError as exc:
        again = Hold.objects.filter(user=user, client_key=client_key).first()
        if again is not None:  # the same request raced itself (double click): same hold
            return again
        log.info("hold lost a race on offering %s at %s: %s", offering.pk, start, exc.__class__.__name__)
        raise SlotTaken(alternatives_near(offering, start, browse_now)) from None
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


