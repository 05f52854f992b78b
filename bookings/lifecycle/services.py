"""A booking from hold to confirmation, attendance, messages and rescheduling: one function per operation,
each transactional; views, the API, the desk, webhooks and tasks call these.
"""

from __future__ import annotations

import logging
from datetime import datetime, timedelta

from django.db import IntegrityError, transaction
from django.utils import timezone, translation
from django.utils.translation import gettext as _

from bookings.engine import availability as av
from bookings.engine.holds import hold_is_live, place_hold, release_stale
from bookings.engine.locking import lock_resources
from bookings.errors import BookingError, InvalidTransition
from bookings.lifecycle.states import locked, transition
from bookings.models import (
    Allocation,
    Appointment,
    Booking,
    BookingEvent,
    Hold,
    Message,
)
from bookings.notifications.tasks import notify_on_commit

log = logging.getLogger("emhana.bookings")




def snapshot_title(offering) -> str:
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
            service_title=snapshot_title(offering), language=translation.get_language() or "en",
            payment_due_at=due, patient_timezone=patient_zone(user),
        )
        attach_hold(booking, hold, due)
        BookingEvent.objects.create(booking=booking, from_state="", to_state=booking.state,
                                    actor=user, note="booked from hold")
    return booking


def attach_hold(booking, hold, due):
    hold.appointments.update(booking=booking)
    Allocation.objects.filter(appointment__hold=hold, live=True).update(expires_at=due)
    hold.status = Hold.CONVERTED
    hold.booking = booking
    hold.save(update_fields=["status", "booking"])
    booking.payment_due_at = due
    booking.save(update_fields=["payment_due_at", "updated_at"])


def patient_zone(user) -> str:
    profile = getattr(user, "patient_profile", None)
    return getattr(profile, "home_timezone", "") or ""




def confirm_paid(booking: Booking, note: str = "deposit paid", now: datetime | None = None) -> Booking:
    """The deposit is paid: make the appointments firm. Late payment: re-take the slots if still free.

    Returns the booking; if the slots are gone, the booking stays expired and the caller refunds.
    """
    now = now or timezone.now()
    with transaction.atomic():
        booking = locked(booking)
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
    lock_resources(resource_ids)
    release_stale(resource_ids, now)
    for a in allocations:
        clash = (Allocation.objects.blocking(now).filter(resource_id=a.resource_id, unit=a.unit,
                                                         start__lt=a.end, end__gt=a.start)
                 .exclude(pk=a.pk).exists())
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
        booking = locked(booking)
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
        booking = locked(booking)
        if not booking.payment_overdue(now):
            return booking
        if booking.payments.filter(state__in=["succeeded", "processing", "requires_action"]).exists():
            return booking  # money is moving: the webhook decides
        Allocation.objects.filter(appointment__booking=booking, live=True).update(live=False)
        booking.appointments.filter(status=Appointment.HELD).update(status=Appointment.RELEASED)
        quote = booking.current_quote()
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
        booking = locked(appointment.booking)
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
            notify_on_commit(booking, "message", f"booking:{booking.pk}:message:{message.pk}")
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
        booking = locked(booking)
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
        notify_on_commit(booking, "rescheduled", f"booking:{booking.pk}:rescheduled:{event.pk}")
    return booking


