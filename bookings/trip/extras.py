"""Choosing extras for a booking, and the clinic confirming them.

An extra paid with the deposit is charged with it: while the booking waits for its deposit, choosing extras
moves the booking's price and deposit snapshot by exactly the chosen extras (under the booking's row lock), so
the checkout, the payment, the API and the refund all see one amount. Extras paid at the clinic add to the
price (the balance at the clinic), not to the deposit. Once paid, the choice is fixed; the clinic may still
decline an extra it cannot provide, and an extra paid with the deposit is then refunded.
"""

from __future__ import annotations

import logging

from django.db import transaction
from django.utils import timezone
from django.utils.translation import gettext as _

from bookings.errors import BookingError, InvalidTransition
from bookings.lifecycle.states import locked
from bookings.models import (
    Booking,
    BookingEvent,
    BookingExtra,
    ClinicMembership,
    OfferingExtra,
    Payment,
    Refund,
)
from bookings.notifications.tasks import notify_extra_decision
from bookings.payments.services import retry_refund

log = logging.getLogger("emhana.bookings")

CHOOSABLE = {Booking.AWAITING_PAYMENT}


def offered(offering) -> list[OfferingExtra]:
    return list(OfferingExtra.objects.filter(offering=offering, is_active=True).order_by("kind", "id"))


def chosen(booking) -> list[BookingExtra]:
    return list(BookingExtra.objects.filter(booking=booking).exclude(status=BookingExtra.DECLINED).order_by("id"))


def totals(extras) -> tuple[int, int]:
    """(all extras, the part paid with the deposit) in minor units."""
    extras = list(extras)
    return (sum(e.total for e in extras), sum(e.total for e in extras if e.with_deposit))


def can_choose(booking) -> bool:
    return booking.state in CHOOSABLE and not booking.payment_overdue() and not booking.payments.filter(
        state__in=["requires_action", "processing", "succeeded"]).exists()


def choose(booking: Booking, user, quantities: dict[int, int]) -> list[BookingExtra]:
    """Set the booking's extras to ``quantities`` ({offering extra id: quantity}; 0 removes it)."""
    with transaction.atomic():
        booking = locked(booking)
        if booking.user_id != getattr(user, "pk", None):
            raise BookingError(_("This booking is not yours."), code="not_yours")
        if not can_choose(booking):
            raise BookingError(_("Extras can be chosen until the deposit is paid; after that, write to the clinic."),
                               code="extras_closed")
        offers = {e.pk: e for e in offered(booking.offering)}
        for extra_id, qty in quantities.items():
            if extra_id not in offers:
                raise BookingError(_("This extra is not offered with this treatment."), code="extra_unknown")
            if qty < 0 or qty > offers[extra_id].max_quantity:
                raise BookingError(_("Please choose between 0 and %(max)d.") % {"max": offers[extra_id].max_quantity},
                                   code="extra_quantity")
        before_all, before_deposit = totals(chosen(booking))
        current = {e.extra_id: e for e in BookingExtra.objects.filter(booking=booking)}
        for extra_id, qty in quantities.items():
            offer = offers[extra_id]
            row = current.get(extra_id)
            if qty == 0:
                if row is not None and row.status != BookingExtra.DECLINED:  # the clinic's answer stays on record
                    row.delete()
                continue
            if (row is not None and row.status != BookingExtra.DECLINED and row.quantity == qty
                    and row.unit_price == offer.price and row.pay_at == offer.pay_at):
                continue  # unchanged: the clinic's answer (a confirmation) stands
            fields = {"kind": offer.kind, "label": offer.label()[:300], "unit": offer.unit,
                      "unit_price": offer.price, "quantity": qty, "pay_at": offer.pay_at,
                      "status": BookingExtra.REQUESTED, "decided_by": None, "decided_at": None,
                      "decision_note": "", "refunded": 0}
            if row is None:
                BookingExtra.objects.create(booking=booking, extra=offer, **fields)
            else:
                for name, value in fields.items():
                    setattr(row, name, value)
                row.save()
        after_all, after_deposit = totals(chosen(booking))
        booking.price += after_all - before_all
        booking.deposit += after_deposit - before_deposit
        booking.save(update_fields=["price", "deposit", "updated_at"])
    log.info("booking %s: extras %s (deposit %+d)", booking.reference, quantities, after_deposit - before_deposit)
    return chosen(booking)


# --------------------------------------------------------------------------------- the clinic's answer

DECIDABLE = {Booking.AWAITING_PAYMENT, Booking.CONFIRMED}  # extras exist (and are owed) only in these states
PAYING = ("requires_action", "processing")  # a charge under way for the deposit as it stands
REFUND_REASON = "extra_declined"
MAX_REASON = 1000


def for_booking(booking) -> list[BookingExtra]:
    """Every extra the patient chose for the booking, declined ones too, with who answered."""
    return list(BookingExtra.objects.filter(booking=booking).select_related("decided_by").order_by("id"))


def waiting(clinic_ids):
    """The extras still waiting for an answer from these clinics (bookings that still need them)."""
    return BookingExtra.objects.filter(status=BookingExtra.REQUESTED, booking__clinic_id__in=clinic_ids,
                                       booking__state__in=DECIDABLE)


def confirm_extra(booking_extra: BookingExtra, actor) -> BookingExtra:
    """The clinic will provide the extra. Idempotent."""
    return decide(booking_extra, actor, True)


def decline_extra(booking_extra: BookingExtra, actor, reason: str = "") -> BookingExtra:
    """The clinic cannot provide the extra: off the price (and the deposit), refunded in full if it was paid with
    the deposit, and the patient is told why. Idempotent: a second click refunds nothing more."""
    return decide(booking_extra, actor, False, reason)


def decide(booking_extra: BookingExtra, actor, confirm: bool, reason: str = "") -> BookingExtra:
    """The clinic's staff confirm an extra, or say they cannot provide it (``reason`` is shown to the patient).

    Only staff of the booking's clinic (``ClinicMembership.works_for``); logged on the booking (BookingEvent) with
    who and when; the patient is emailed in their language once it commits. An extra not provided is the clinic's
    side, so — as when the clinic cancels — what the patient paid for it is refunded in full: a Refund row per
    payment, keyed by the extra (created under the locks, so a second click or a retry finds it), sent to the
    provider after commit. Not yet paid, it only comes off the price and the deposit. A confirmed extra may still
    be declined later; a declined one stays declined."""
    reason = (reason or "").replace("\x00", "").strip()[:MAX_REASON]
    if not ClinicMembership.objects.works_for(actor, booking_extra.booking.clinic_id):
        raise BookingError(_("Only the clinic's staff can decide this."), code="not_staff")
    to = BookingExtra.CONFIRMED if confirm else BookingExtra.DECLINED
    refunds: list[Refund] = []
    with transaction.atomic():
        booking = locked(booking_extra.booking)
        row = BookingExtra.objects.select_for_update().get(pk=booking_extra.pk, booking=booking)
        if row.status == to:
            return row  # answered already (a second click, a retried request): nothing more happens
        if row.status == BookingExtra.DECLINED:
            raise BookingError(_("The clinic has already said it cannot provide this extra."), code="extra_decided")
        if booking.state not in DECIDABLE:
            raise InvalidTransition(_("This booking is %(state)s: its extras can no longer be changed.")
                                    % {"state": booking.get_state_display()}, code="invalid_state")
        if not confirm and booking.payments.filter(state__in=PAYING).exists():
            raise BookingError(_("The patient is paying the deposit right now. Please try again in a few minutes."),
                               code="payment_under_way")
        row.status = to
        row.decided_by = actor
        row.decided_at = timezone.now()
        row.decision_note = "" if confirm else reason
        if not confirm:
            booking.price -= row.total
            if row.with_deposit:
                booking.deposit -= row.total
                refunds = _refund_rows(booking, row)
                row.refunded = sum(r.amount for r in refunds)
            booking.save(update_fields=["price", "deposit", "updated_at"])
        row.save(update_fields=["status", "decided_by", "decided_at", "decision_note", "refunded"])
        note = f"extra {row.pk} {to}: {row.label} × {row.quantity}"
        if reason and not confirm:
            note += f" ({reason})"
        if row.refunded:
            note += f"; refund {row.refunded}"
        BookingEvent.objects.create(booking=booking, from_state=booking.state, to_state=booking.state, actor=actor,
                                    note=note)
        notify_extra_decision.delay_on_commit(row.pk, row.status, f"booking:{booking.pk}:extra:{row.pk}:{row.status}")
    for refund in refunds:
        retry_refund(refund.pk)  # the provider call, outside the locks; one it refuses is retried by its task
    log.info("booking %s: extra %s %s by %s (refund %d)", booking.reference, row.pk, to, actor.pk, row.refunded)
    return row


def _refund_rows(booking: Booking, row: BookingExtra) -> list[Refund]:
    """Pending Refund rows for one declined extra paid with the deposit: its total, across the booking's payments,
    never more than each has left. The key names the extra and the payment, so they are made once. Caller holds the
    booking's lock."""
    refunds = []
    remaining = row.total
    for payment in Payment.objects.select_for_update().filter(booking=booking, state=Payment.SUCCEEDED).order_by("id"):
        key = f"refund-extra-{row.pk}-{payment.pk}"
        existing = Refund.objects.filter(idempotency_key=key).first()
        if existing is not None:
            refunds.append(existing)
            remaining -= existing.amount
            continue
        take = min(payment.amount - payment.refunded_amount, remaining)
        if take <= 0:
            continue
        refunds.append(Refund.objects.create(payment=payment, amount=take, currency=payment.currency,
                                             reason=REFUND_REASON, idempotency_key=key))
        remaining -= take
    return refunds


def paid_with_deposit(booking) -> int:
    """What the booking's deposit holds for extras (not declined), in minor units."""
    return totals(chosen(booking))[1]
