"""Cancellation and refunds: who may cancel with which reason, what is owed, and the cancelling itself.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime, timedelta

from django.db import transaction
from django.utils import timezone
from django.utils.translation import gettext as _

from bookings.errors import BookingError, InvalidTransition
from bookings.lifecycle.reasons import (  # the table; re-exported for callers that name a reason
    CLINIC_SIDE,
    PATIENT,
    PATIENT_SIDE,
    REASONS,
    VISA_REFUSED,
)
from bookings.lifecycle.states import locked, transition
from bookings.models import (
    Allocation,
    Appointment,
    Booking,
    ClinicMembership,
)
from bookings.payments.services import paid_amount, refund_booking
from bookings.trip.extras import paid_with_deposit

log = logging.getLogger("emhana.bookings")




CANCEL_REASONS = {code: reason.label for code, reason in REASONS.items()}
FULL_REFUND_DAYS = 14
PARTIAL_REFUND_DAYS = 3
PARTIAL_REFUND_PERCENT = 50



@dataclass(frozen=True)
class RefundQuote:
    amount: int
    paid: int
    percent: int
    unused_sessions: int
    total_sessions: int
    explanation: str
    extras: int = 0  # the part of ``amount`` that refunds extras paid with the deposit (bookings.trip)


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
    Extras paid with the deposit (airport transfer, nights near the clinic...) are part of what was paid and are
    refunded by the same rule; ``extras`` says how much of the refund they are. A visa refusal refunds in full
    only once the clinic has confirmed the refusal letter (bookings.trip.visa_refusal).
    """
    now = now or timezone.now()
    paid = paid_amount(booking) if paid is None else paid
    sessions = list(booking.appointments.exclude(status__in=[Appointment.RELEASED, Appointment.CANCELLED]))
    total = len(sessions) or 1
    unused = [a for a in sessions if a.status in (Appointment.BOOKED, Appointment.HELD) and a.start > now]
    share_unused = len(unused) if sessions else 1
    if REASONS[reason].full_refund:
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
    if reason == VISA_REFUSED:
        why = f"{why} " + _("Sent once the clinic has confirmed your visa refusal letter.")
    amount = max(0, min(paid * share_unused * percent // (total * 100), paid))
    extras_paid = min(paid_with_deposit(booking), paid)
    extras = min(extras_paid * share_unused * percent // (total * 100), amount)
    return RefundQuote(amount=amount, paid=paid, percent=percent, unused_sessions=share_unused,
                       total_sessions=total, explanation=why, extras=extras)


def side_of(booking: Booking, actor) -> str | None:
    """Which side ``actor`` cancels for: the booking's patient, the clinic's staff, or neither (None)."""
    if getattr(actor, "pk", None) is not None and actor.pk == booking.user_id:
        return PATIENT_SIDE
    if ClinicMembership.objects.works_for(actor, booking.clinic_id):
        return CLINIC_SIDE
    return None


def cancel_booking(booking: Booking, actor, reason: str = PATIENT, now: datetime | None = None, *,
                   refusal_confirmed: bool = False):
    """Cancel (patient or clinic), free the slots and start the refund owed. Returns (booking, RefundQuote).

    Who cancels is read from ``actor`` (the patient, or staff of the booking's clinic), never taken from the caller,
    and ``Booking.can_cancel`` decides whether that side may give ``reason``."""
    now = now or timezone.now()
    if reason not in REASONS:
        raise BookingError(_("Unknown cancellation reason."), code="reason")
    side = side_of(booking, actor)
    if reason == VISA_REFUSED and side == CLINIC_SIDE and refusal_confirmed:
        side = PATIENT_SIDE  # the coordinator confirms the patient's own claim (bookings.trip.visa_refusal)
    if side is None or REASONS[reason].by != side:
        raise BookingError(_("This reason cannot be given here."), code="reason_not_allowed")
    if reason == VISA_REFUSED and not refusal_confirmed:
        # the patient's word alone no longer moves money: the refusal letter goes to the clinic first
        raise BookingError(_("For a full refund after a visa refusal, send the refusal letter from your booking "
                             "page: the clinic confirms it, then the booking is cancelled and refunded in full."),
                           code="refusal_letter_needed")
    with transaction.atomic():
        booking = locked(booking)
        if booking.state in (Booking.CANCELLED, Booking.REFUNDED):  # already done: nothing more is owed
            return booking, RefundQuote(amount=0, paid=paid_amount(booking), percent=0, unused_sessions=0,
                                        total_sessions=booking.appointments.count(),
                                        explanation=_("This booking is already cancelled."))
        if not booking.can_cancel(side, reason):
            raise InvalidTransition(_("This booking can no longer be cancelled."), code="invalid_state")
        quote = refund_due(booking, reason, now)
        Allocation.objects.filter(appointment__booking=booking, live=True).update(live=False)
        booking.appointments.filter(status__in=[Appointment.HELD, Appointment.BOOKED]).update(
            status=Appointment.CANCELLED)
        booking.cancel_reason = reason
        booking.save(update_fields=["cancel_reason"])
        transition(booking, Booking.CANCELLED, actor, f"{reason}: {quote.explanation}")
    if quote.amount > 0:
        refund_booking(booking, quote.amount, reason)
    return booking, quote

