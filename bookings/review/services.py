"""Treatment requests: review by a clinician, decline or quote, and the patient accepting a quote.
"""

from __future__ import annotations

import logging
from datetime import date, datetime, timedelta

from django.db import transaction
from django.utils import timezone, translation
from django.utils.translation import gettext as _

from bookings.engine.holds import hold_is_live, place_hold
from bookings.engine.slots import offering_slots
from bookings.errors import BookingError
from bookings.lifecycle.services import attach_hold, patient_zone, snapshot_title
from bookings.lifecycle.states import locked, transition
from bookings.models import (
    Booking,
    BookingEvent,
    Hold,
    Quote,
)
from bookings.notifications.tasks import notify_on_commit
from catalog.models import Offering

log = logging.getLogger("emhana.bookings")


def request_treatment(user, offering: Offering, note: str = "", questionnaire: dict | None = None) -> Booking:
    """Review-first: the patient asks for a treatment; the clinic reviews before any dates or payment."""
    if not offering.is_bookable():
        raise BookingError(_("This treatment cannot be booked at the moment."), code="not_bookable")
    if not offering.review_required:
        raise BookingError(_("This treatment can be booked directly; choose a date instead."), code="direct")
    with transaction.atomic():
        booking = Booking.objects.create(
            user=user, offering=offering, clinic=offering.clinic, state=Booking.REQUESTED,
            currency=offering.currency, price=offering.price, deposit=offering.deposit,
            service_title=snapshot_title(offering), language=translation.get_language() or "en",
            questionnaire=questionnaire or {}, request_note=note, patient_timezone=patient_zone(user),
        )
        BookingEvent.objects.create(booking=booking, from_state="", to_state=booking.state, actor=user,
                                    note="treatment requested")
        notify_on_commit(booking, Booking.REQUESTED)
    return booking




def start_review(booking: Booking, actor) -> Booking:
    with transaction.atomic():
        booking = locked(booking)
        if booking.state == Booking.UNDER_REVIEW:
            return booking
        return transition(booking, Booking.UNDER_REVIEW, actor, "review started")


def decline(booking: Booking, actor, reason: str) -> Booking:
    reason = (reason or "").strip()
    if not reason:
        raise BookingError(_("Please give the patient a reason."), code="reason")
    with transaction.atomic():
        booking = locked(booking)
        booking.decline_reason = reason
        booking.save(update_fields=["decline_reason"])
        return transition(booking, Booking.DECLINED, actor, reason)


def send_quote(booking: Booking, actor, *, price: int, deposit: int, included: str, treatment_plan: str,
               window_start: date, window_end: date, valid_until: datetime) -> Quote:
    """Accept a case with a (new version of the) quote. Earlier versions are superseded."""
    if booking.offering.kind == Offering.SECOND_OPINION:
        raise BookingError(_("A second opinion is answered with the written opinion; the treatment it suggests is "
                             "quoted on the request the patient makes from it."), code="invalid_state")
    if price <= 0 or deposit <= 0 or deposit > price:
        raise BookingError(_("The deposit must be above zero and not more than the price."), code="amount")
    if window_end < window_start:
        raise BookingError(_("The latest start date must not be before the earliest."), code="window")
    if valid_until <= timezone.now():
        raise BookingError(_("The quote must be valid until a future date."), code="valid_until")
    with transaction.atomic():
        booking = locked(booking)
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


def quote_slots(booking: Booking, now: datetime | None = None):
    """Start options inside the current quote's date window."""
    quote = booking.current_quote()
    if quote is None:
        return []
    return offering_slots(booking.offering, quote.window_start, quote.window_end, now)


def accept_quote(user, booking: Booking, start: datetime, client_key: str, now: datetime | None = None) -> Booking:
    """The patient accepts the current quote and holds dates inside its window: awaiting payment."""
    now = now or timezone.now()
    booking = Booking.objects.select_related("offering__clinic__city", "offering__page").get(pk=booking.pk, user=user)
    if booking.state == Booking.AWAITING_PAYMENT:
        return booking  # retried request
    quote = booking.current_quote()
    if booking.state != Booking.QUOTED or quote is None:
        raise BookingError(_("There is no quote to accept on this booking."), code="no_quote")
    if quote.valid_until <= now:
        raise BookingError(_("This quote has expired. Please ask the clinic for a new one."), code="quote_expired")
    local_day = start.astimezone(booking.offering.clinic.tz).date()
    if not (quote.window_start <= local_day <= quote.window_end):
        raise BookingError(_("Please choose a start date inside the dates the clinic proposed."), code="window")
    hold = place_hold(user, booking.offering, start, client_key, now, booking=booking)
    with transaction.atomic():
        booking = locked(booking)
        if booking.state == Booking.AWAITING_PAYMENT:
            return booking
        hold = Hold.objects.select_for_update().get(pk=hold.pk)
        if not hold_is_live(hold, now):
            raise BookingError(_("Your hold on this time ran out. Please choose a time again."), code="hold_expired")
        booking.price, booking.deposit = quote.price, quote.deposit
        booking.save(update_fields=["price", "deposit"])
        Quote.objects.filter(pk=quote.pk).update(accepted_at=now)
        attach_hold(booking, hold, now + timedelta(minutes=booking.offering.hold_minutes))
        transition(booking, Booking.AWAITING_PAYMENT, user, f"quote v{quote.version} accepted")
    return booking


