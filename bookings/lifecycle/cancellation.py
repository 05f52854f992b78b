"""Cancellation and refunds: who may cancel with which reason, what is owed, and the cancelling itself.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime, timedelta

from django.db import transaction
from django.utils import timezone
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from bookings.errors import BookingError
from bookings.lifecycle.states import locked, transition
from bookings.models import (
    Allocation,
    Appointment,
    Booking,
)
from bookings.payments.services import paid_amount, refund_booking

log = logging.getLogger("emhana.bookings")



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
        booking = locked(booking)
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
        refund_booking(booking, quote.amount, reason)
    return booking, quote

