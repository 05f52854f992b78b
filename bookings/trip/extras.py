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

from bookings.errors import BookingError
from bookings.lifecycle.states import locked
from bookings.models import Booking, BookingExtra, OfferingExtra

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
                if row is not None:
                    row.delete()
                continue
            fields = {"kind": offer.kind, "label": offer.label()[:300], "unit": offer.unit,
                      "unit_price": offer.price, "quantity": qty, "pay_at": offer.pay_at,
                      "status": BookingExtra.REQUESTED, "decided_by": None, "decided_at": None}
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


def decide(booking_extra: BookingExtra, actor, confirm: bool) -> BookingExtra:
    """The clinic confirms an extra, or says it cannot provide it (refunded if it was paid with the deposit;
    taken off the price and deposit if not paid yet)."""
    from bookings.payments.services import refund_booking

    refund = 0
    with transaction.atomic():
        booking = locked(booking_extra.booking)
        row = BookingExtra.objects.select_for_update().get(pk=booking_extra.pk, booking=booking)
        if row.status != BookingExtra.REQUESTED or booking.state in Booking.ENDS:
            return row
        row.status = BookingExtra.CONFIRMED if confirm else BookingExtra.DECLINED
        row.decided_by = actor if getattr(actor, "is_authenticated", False) else None
        row.decided_at = timezone.now()
        row.save(update_fields=["status", "decided_by", "decided_at"])
        if not confirm:
            paid = booking.payments.filter(state="succeeded").exists()
            booking.price -= row.total
            if row.with_deposit:
                booking.deposit -= row.total
                if paid:
                    refund = row.total
            booking.save(update_fields=["price", "deposit", "updated_at"])
    if refund:
        refund_booking(booking, refund, "extra_declined")
    return row


def paid_with_deposit(booking) -> int:
    """What the booking's deposit holds for extras (not declined), in minor units."""
    return totals(chosen(booking))[1]
