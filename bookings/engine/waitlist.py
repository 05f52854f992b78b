"""The waitlist for scarce machines (Gamma Knife, PET-CT, tomotherapy...): first come, first served, race-free.

A patient joins for an offering and a window of start days when that window has no free start. When a start frees
up (a cancellation, an expired hold or unpaid booking, new or extra hours), ``offer_waitlist`` gives it to the first
waiting patient whose window holds a free start: the start is held for them with ``place_hold`` — the same resource
locks, the same re-check and the same exclusion constraint as every hold — for ``WAITLIST_OFFER_MINUTES``, and they
get an email in their language. If they let it pass (or decline), their entry lapses and the next patient is offered.

Fairness and races: entries are served in ``(created_at, id)`` order; each entry's row is locked while it is offered,
and the hold's request key is the entry's own (``waitlist:<id>``), so two concurrent runs can neither offer one
entry twice (place_hold is idempotent per key) nor give one start to two patients (the resource lock and the
constraint). It runs on commit after any change that frees time (signals in bookings.trip.models) and from beat.
"""

from __future__ import annotations

import logging
from datetime import date, timedelta

from celery import shared_task
from django.conf import settings
from django.core.mail import EmailMultiAlternatives
from django.db import IntegrityError, connection, transaction
from django.template.loader import render_to_string
from django.urls import reverse
from django.utils import timezone, translation
from django.utils.translation import gettext as _

from bookings.engine.holds import hold_is_live, place_hold, release_hold
from bookings.engine.slots import offering_slots
from bookings.errors import BookingError
from bookings.lifecycle import services as lifecycle
from bookings.models import Allocation, Booking, Hold, Resource, WaitlistEntry
from bookings.review import services as review
from portal import l10n

log = logging.getLogger("emhana.bookings")

MAX_WINDOW_DAYS = 120


def offer_minutes() -> int:
    return int(getattr(settings, "WAITLIST_OFFER_MINUTES", 120))


def waitlistable(offering) -> bool:
    """Offerings on a machine (an equipment resource): Gamma Knife, PET-CT, tomotherapy, linacs..."""
    return offering.resource_links.filter(resource__kind=Resource.EQUIPMENT, resource__is_active=True).exists()


def _today(offering) -> date:
    return timezone.now().astimezone(offering.clinic.tz).date()


def join(user, offering, window_start: date, window_end: date, booking: Booking | None = None) -> WaitlistEntry:
    """Put the patient on the waitlist for starts in [window_start, window_end] (clinic-local days)."""
    if not offering.is_bookable() or not waitlistable(offering):
        raise BookingError(_("This treatment has no waitlist."), code="no_waitlist")
    today = _today(offering)
    if window_start is None or window_end is None or window_end < window_start:
        raise BookingError(_("The latest start date must not be before the earliest."), code="window")
    if window_start < today or window_end > today + timedelta(days=offering.horizon_days):
        raise BookingError(_("Choose days between today and %(days)d days ahead.") % {"days": offering.horizon_days},
                           code="window")
    if (window_end - window_start).days > MAX_WINDOW_DAYS:
        raise BookingError(_("Choose a window of at most %(days)d days.") % {"days": MAX_WINDOW_DAYS}, code="window")
    if offering.review_required:
        quote = booking.current_quote() if booking is not None else None
        if (booking is None or booking.user_id != user.pk or booking.offering_id != offering.pk
                or booking.state != Booking.QUOTED or quote is None):
            raise BookingError(_("A clinician must review your case before you can choose dates."),
                               code="review_required")
        if window_start < quote.window_start or window_end > quote.window_end:
            raise BookingError(_("Please choose a start date inside the dates the clinic proposed."), code="window")
    else:
        booking = None
    if offering_slots(offering, window_start, window_end):
        raise BookingError(_("There are free times in these days: choose one instead."), code="slots_free")
    already = BookingError(_("You are already on the waitlist for this treatment."), code="already_waiting")
    if WaitlistEntry.objects.filter(user=user, offering=offering, status__in=WaitlistEntry.OPEN).exists():
        raise already
    try:
        with transaction.atomic():
            entry = WaitlistEntry.objects.create(
                user=user, offering=offering, window_start=window_start, window_end=window_end, booking=booking,
                language=translation.get_language() or "en")
    except IntegrityError:
        raise already from None
    log.info("waitlist: user %s joined offering %s for %s..%s", user.pk, offering.pk, window_start, window_end)
    return entry


def position(entry: WaitlistEntry) -> int:
    """1 for the first waiting patient of the offering."""
    return WaitlistEntry.objects.filter(offering=entry.offering, status__in=WaitlistEntry.OPEN).filter(
        created_at__lte=entry.created_at).exclude(created_at=entry.created_at, id__gt=entry.id).count()


def leave(entry: WaitlistEntry, user) -> WaitlistEntry:
    return _close(entry, user, WaitlistEntry.LEFT)


def decline(entry: WaitlistEntry, user) -> WaitlistEntry:
    """Let the offered start pass at once: it goes to the next patient."""
    return _close(entry, user, WaitlistEntry.LAPSED)


def _close(entry, user, status):
    with transaction.atomic():
        entry = WaitlistEntry.objects.select_for_update().get(pk=entry.pk, user=user)
        if entry.status not in WaitlistEntry.OPEN:
            return entry
        if entry.status == WaitlistEntry.OFFERED and entry.hold_id:
            hold = Hold.objects.get(pk=entry.hold_id)
            if hold.status == Hold.ACTIVE:
                release_hold(user, hold)
        entry.status = status
        entry.save(update_fields=["status"])
    trigger()
    return entry


def accept(entry: WaitlistEntry, user) -> Booking:
    """Take the offered start: a booking awaiting its deposit (as from the slot page, or as accepting the quote)."""
    entry = WaitlistEntry.objects.select_related("hold", "booking", "offering").get(pk=entry.pk, user=user)
    if entry.status == WaitlistEntry.BOOKED and entry.hold and entry.hold.booking_id:
        return entry.hold.booking
    if entry.status != WaitlistEntry.OFFERED or entry.hold is None or not hold_is_live(entry.hold):
        raise BookingError(_("This offer has run out. You can join the waitlist again."), code="offer_expired")
    if entry.booking_id:
        first = entry.hold.appointments.order_by("start").first()
        booking = review.accept_quote(user, entry.booking, first.start, f"waitlist:{entry.pk}")
    else:
        booking = lifecycle.create_booking_from_hold(user, entry.hold)
    WaitlistEntry.objects.filter(pk=entry.pk, status=WaitlistEntry.OFFERED).update(status=WaitlistEntry.BOOKED)
    return booking


def _settle_offers(now) -> int:
    """Offers that were taken become BOOKED; offers whose hold ran out or was released lapse."""
    lapsed = 0
    for entry in WaitlistEntry.objects.filter(status=WaitlistEntry.OFFERED).select_related("hold"):
        hold = entry.hold
        if hold is not None and hold.status == Hold.CONVERTED:
            WaitlistEntry.objects.filter(pk=entry.pk, status=WaitlistEntry.OFFERED).update(status=WaitlistEntry.BOOKED)
        elif hold is not None and hold.booking_id and Booking.objects.filter(
                pk=hold.booking_id, state__in=[Booking.AWAITING_PAYMENT, Booking.CONFIRMED],
                appointments__hold=hold).exists():
            WaitlistEntry.objects.filter(pk=entry.pk, status=WaitlistEntry.OFFERED).update(status=WaitlistEntry.BOOKED)
        elif hold is None or not hold_is_live(hold, now):
            with transaction.atomic():
                if hold is not None and hold.status == Hold.ACTIVE:
                    Allocation.objects.filter(appointment__hold=hold, live=True).update(live=False)
                    hold.appointments.filter(status="held").update(status="released")
                    Hold.objects.filter(pk=hold.pk, status=Hold.ACTIVE).update(status=Hold.EXPIRED)
                lapsed += WaitlistEntry.objects.filter(pk=entry.pk, status=WaitlistEntry.OFFERED).update(
                    status=WaitlistEntry.LAPSED)
    return lapsed


def _offer(entry_id: int, now) -> WaitlistEntry | None:
    """Offer the earliest free start in the entry's window, held for the patient. None when nothing is free."""
    with transaction.atomic():
        entry = (WaitlistEntry.objects.select_for_update().filter(pk=entry_id, status=WaitlistEntry.WAITING)
                 .first())
        if entry is None:  # another run offered it meanwhile
            return None
        entry = WaitlistEntry.objects.select_related("offering__clinic__city", "offering__page", "user",
                                                     "booking").get(pk=entry.pk)
        offering = entry.offering
        if entry.booking_id and (entry.booking.state != Booking.QUOTED or entry.booking.current_quote() is None):
            entry.status = WaitlistEntry.ENDED
            entry.save(update_fields=["status"])
            return None
        options = offering_slots(offering, max(entry.window_start, _today(offering)), entry.window_end, now)
        for option in options:
            try:
                with transaction.atomic():
                    hold = place_hold(entry.user, offering, option.start, f"waitlist:{entry.pk}", now,
                                      booking=entry.booking)
            except BookingError:  # taken meanwhile (lock, constraint): try the next start
                continue
            until = now + timedelta(minutes=offer_minutes())
            Hold.objects.filter(pk=hold.pk).update(expires_at=until)
            Allocation.objects.filter(appointment__hold=hold, live=True).update(expires_at=until)
            entry.status = WaitlistEntry.OFFERED
            entry.hold = hold
            entry.offered_at = now
            entry.save(update_fields=["status", "hold", "offered_at"])
            transaction.on_commit(lambda pk=entry.pk: send_offer_email(pk))
            log.info("waitlist: entry %s offered %s on offering %s", entry.pk, option.start, offering.pk)
            return entry
    return None


def run(now=None, offering_id: int | None = None) -> dict:
    """Settle offers, end passed windows, and offer free starts to waiting patients in order."""
    now = now or timezone.now()
    lapsed = _settle_offers(now)
    ended = 0
    offered = 0
    waiting = WaitlistEntry.objects.filter(status=WaitlistEntry.WAITING)
    if offering_id:
        waiting = waiting.filter(offering_id=offering_id)
    for entry in waiting.select_related("offering__clinic__city").order_by("created_at", "id"):
        if entry.window_end < now.astimezone(entry.offering.clinic.tz).date():
            ended += WaitlistEntry.objects.filter(pk=entry.pk, status=WaitlistEntry.WAITING).update(
                status=WaitlistEntry.ENDED)
            continue
        if _offer(entry.pk, now) is not None:
            offered += 1
    return {"offered": offered, "lapsed": lapsed, "ended": ended}


def send_offer_email(entry_id: int) -> bool:
    entry = WaitlistEntry.objects.select_related("user", "offering__clinic__city", "offering__page", "hold").get(
        pk=entry_id)
    if entry.status != WaitlistEntry.OFFERED or not entry.user.email or entry.hold is None:
        return False
    tz = entry.offering.clinic.tz
    with translation.override(entry.language or "en"), timezone.override(tz):
        first = entry.hold.appointments.order_by("start").first()
        context = {
            "entry": entry, "offering": entry.offering, "site_name": settings.SITE_NAME,
            "start": l10n.format_when(first.start, tz) if first else "",
            "until": l10n.format_when(entry.hold.expires_at, tz),
            "clinic_zone": entry.offering.clinic.zone_label,
            "url": settings.SITE_URL + reverse("trip_waitlist_entry", args=[entry.pk]),
        }
        subject = render_to_string("trip/email/waitlist_offer_subject.txt", context).strip()
        body = render_to_string("trip/email/waitlist_offer_body.txt", context)
    EmailMultiAlternatives(subject, body, settings.DEFAULT_FROM_EMAIL, [entry.user.email]).send()
    return True


def _after_commit():
    offer_waitlist.delay()


def trigger():
    """Run the waitlist once the current transaction commits (nothing happens if it rolls back); once per
    transaction however many changes it made (weekly hours replace every row)."""
    current = set(connection.savepoint_ids)
    if any(item[1] is _after_commit and set(item[0]) == current for item in connection.run_on_commit):
        return  # already due when this same savepoint commits
    transaction.on_commit(_after_commit)


@shared_task(acks_late=True, name="bookings.tasks.offer_waitlist")
def offer_waitlist(offering_id=None):
    """Offer freed starts to waiting patients (idempotent: an entry is offered once, a start held once)."""
    return run(offering_id=offering_id)
