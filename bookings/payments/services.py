"""Paying deposits, applying provider results and webhooks, and refunding — through the provider interface.

Rules (pretix/saleor): one Payment row per attempt, keyed by our own idempotency key (the test
server ignores Stripe's); the provider call happens outside any database lock; a payment's state
only moves forward; a webhook is only a trigger — we re-read the intent from the provider.
"""

from __future__ import annotations

import logging
import uuid
from datetime import timedelta

from celery import shared_task
from django.db import IntegrityError, transaction
from django.utils import timezone
from django.utils.translation import gettext as _

from bookings.errors import BookingError
from bookings.lifecycle import services as lifecycle
from bookings.lifecycle import states
from bookings.models import Booking, Payment, Refund, WebhookEvent
from bookings.payments import InvalidWebhook, PaymentError, PaymentResult, ProviderUnavailable, get_provider

log = logging.getLogger("emhana.payments")
PAYMENT_GRACE = timedelta(minutes=20)  # a 3-D Secure step or a processing payment keeps the slots this long

def decline_message(code: str | None) -> str:
    # looked up at call time so that the message is in the patient's language
    messages = {
        "card_declined": _("Your card was declined. Please try another card or contact your bank."),
        "insufficient_funds": _("The card has insufficient funds. Please try another card."),
        "expired_card": _("This card has expired. Please use another card."),
        "incorrect_cvc": _("The security code is incorrect. Please check it and try again."),
        "payment_intent_authentication_failure": _(
            "The card's security check (3-D Secure) was not completed. Please try again."),
    }
    return messages.get(code or "", _("The payment did not go through. Please try again or use another card."))


class PaymentFailed(BookingError):
    def __init__(self, payment: Payment, code: str | None):
        super().__init__(decline_message(code), code=code or "payment_failed")
        self.payment = payment


class ProviderDown(BookingError):
    def __init__(self):
        super().__init__(_("The payment service is not answering. Nothing was charged and your booking is kept; "
                           "please try again in a few minutes."), code="provider_unavailable")


def _forward(payment: Payment, state: str) -> bool:
    return Payment.RANK.get(state, 0) >= Payment.RANK.get(payment.state, 0) and state != payment.state


def start_payment(booking: Booking, user) -> Payment:
    """Create (or reuse) this booking's live payment attempt. One at a time per booking."""
    with transaction.atomic():
        booking = Booking.objects.select_for_update().get(pk=booking.pk, user=user)
        if booking.state == Booking.CONFIRMED:
            raise BookingError(_("This booking is already paid."), code="already_paid")
        live = booking.payments.filter(state__in=[Payment.CREATED, Payment.REQUIRES_ACTION, Payment.PROCESSING,
                                                  Payment.SUCCEEDED]).order_by("-id").first()
        if live is not None and live.intent_id:
            return live  # an attempt under way (e.g. 3-D Secure) may finish even past the deadline
        if booking.state != Booking.AWAITING_PAYMENT:
            raise BookingError(_("This booking is not waiting for a payment."), code="invalid_state")
        if booking.payment_due_at and booking.payment_due_at <= timezone.now():
            raise BookingError(_("The time to pay for this booking ran out. Please choose a time again."),
                               code="hold_expired")
        if live is not None and (live.amount, live.currency) == (booking.deposit, booking.currency):
            return live
        if live is not None:  # never sent to the provider, and the deposit has changed since (extras): a new attempt
            Payment.objects.filter(pk=live.pk, state=Payment.CREATED).update(
                state=Payment.FAILED, error_code="amount_changed")
        return Payment.objects.create(booking=booking, amount=booking.deposit, currency=booking.currency,
                                      idempotency_key=f"pay-{booking.reference}-{uuid.uuid4().hex[:12]}")


def pay_deposit(booking: Booking, user, payment_method: str) -> Payment:
    """Finalize the payment on the server: create and confirm a PaymentIntent for the deposit.

    Returns the payment (succeeded, or requires_action with the client secret on ``payment.client_secret``);
    raises PaymentFailed (card declined: the booking and its hold stay, the patient may retry) or
    ProviderDown (nothing lost; try again).
    """
    if not payment_method or not str(payment_method).startswith("pm_"):
        raise BookingError(_("Please enter your card details again."), code="payment_method")
    payment = start_payment(booking, user)
    if payment.state == Payment.SUCCEEDED:
        return payment
    if payment.state == Payment.REQUIRES_ACTION and payment.intent_id:
        result = get_provider().retrieve(payment.intent_id)
        return apply_result(payment, result)
    try:
        result = get_provider().create_and_confirm(
            amount=payment.amount, currency=payment.currency.lower(), payment_method=payment_method,
            idempotency_key=payment.idempotency_key,
            metadata={"booking": booking.reference, "payment": str(payment.pk)},
        )
    except ProviderUnavailable:
        log.warning("provider unavailable paying booking %s", booking.pk)
        Payment.objects.filter(pk=payment.pk, state=Payment.CREATED).update(state=Payment.FAILED,
                                                                            error_code="provider_unavailable")
        raise ProviderDown() from None
    except PaymentError as exc:
        log.warning("payment error on booking %s: %s", booking.pk, getattr(exc, "code", ""))
        Payment.objects.filter(pk=payment.pk).update(state=Payment.FAILED, error_code=(exc.code or "error")[:60])
        raise PaymentFailed(payment, exc.code) from None
    payment = apply_result(payment, result)
    if payment.state == Payment.FAILED:
        raise PaymentFailed(payment, payment.error_code)
    return payment


def apply_result(payment: Payment, result: PaymentResult) -> Payment:
    """Record what the provider says about an intent; forward only; confirm the booking when paid."""
    with transaction.atomic():
        payment = Payment.objects.select_for_update().get(pk=payment.pk)
        changed = []
        if result.intent_id and payment.intent_id != result.intent_id:
            payment.intent_id = result.intent_id
            changed.append("intent_id")
        state = {"succeeded": Payment.SUCCEEDED, "requires_action": Payment.REQUIRES_ACTION,
                 "processing": Payment.PROCESSING, "failed": Payment.FAILED,
                 "canceled": Payment.CANCELED}.get(result.status, payment.state)
        if _forward(payment, state):
            payment.state = state
            changed.append("state")
            if state == Payment.FAILED:
                payment.error_code = (result.error_code or "failed")[:60]
                changed.append("error_code")
        if changed:
            payment.save(update_fields=[*changed, "updated_at"])
    payment.client_secret = result.client_secret
    if payment.state == Payment.SUCCEEDED:
        _settle(payment)
    elif payment.state in (Payment.REQUIRES_ACTION, Payment.PROCESSING):
        lifecycle.extend_payment_window(payment.booking, PAYMENT_GRACE)
    return payment


SETTLEABLE = {Booking.AWAITING_PAYMENT, Booking.EXPIRED, Booking.CONFIRMED}


def _settle(payment: Payment):
    if payment.booking.state not in SETTLEABLE:
        # A provider's event about a payment settled long ago (they come late, and again) for a booking cancelled
        # or refunded since: nothing is left to confirm, and refusing would make the provider retry for days.
        log.warning("payment %s succeeded for booking %s, now %s: nothing to confirm", payment.pk,
                    payment.booking.reference, payment.booking.state)
        return
    booking = lifecycle.confirm_paid(payment.booking, note=f"deposit paid ({payment.intent_id})")
    if booking.state != Booking.CONFIRMED:
        # paid after its hold ran out and the slot is gone: give the money back and tell the patient
        log.info("late payment on %s: slot gone, refunding", booking.reference)
        refund_booking(booking, paid_amount(booking), "late_payment")


# --------------------------------------------------------------------------------- webhooks


def handle_webhook(payload: bytes, signature: str) -> tuple[int, str]:
    """Verify, store once by event id, and act. Returns (HTTP status, note)."""
    provider = get_provider()
    try:
        event = provider.parse_webhook(payload, signature)
    except InvalidWebhook:
        return 400, "invalid signature"
    try:
        with transaction.atomic():
            stored, created = WebhookEvent.objects.get_or_create(
                event_id=event.id, defaults={"type": event.type, "payload": event.object})
    except IntegrityError:
        return 200, "duplicate"
    if not created and stored.processed_at:
        return 200, "duplicate"
    handler = HANDLERS.get(event.type)
    result = handler(event) if handler else "ignored"
    WebhookEvent.objects.filter(pk=stored.pk).update(processed_at=timezone.now(), result=result[:200])
    return 200, result


def _on_intent(event) -> str:
    intent_id = event.object_id
    payment = Payment.objects.filter(intent_id=intent_id).first()
    if payment is None:
        return "unknown intent"
    try:
        result = get_provider().retrieve(intent_id)  # the webhook is only a trigger
    except ProviderUnavailable:
        raise
    apply_result(payment, result)
    return f"payment {payment.pk} {result.status}"


HANDLERS = {
    "payment_intent.succeeded": _on_intent,
    "payment_intent.payment_failed": _on_intent,
    "payment_intent.canceled": _on_intent,
    "payment_intent.requires_action": _on_intent,
    "payment_intent.processing": _on_intent,
}


# --------------------------------------------------------------------------------- refunds


def refund_booking(booking: Booking, amount: int, reason: str) -> list[Refund]:
    """Refund ``amount`` across the booking's payments, never more than each has left."""
    refunds = []
    remaining = amount
    for payment in Payment.objects.filter(booking=booking, state=Payment.SUCCEEDED).order_by("id"):
        if remaining <= 0:
            break
        with transaction.atomic():
            payment = Payment.objects.select_for_update().get(pk=payment.pk)
            left = payment.amount - payment.refunded_amount
            take = min(left, remaining)
            if take <= 0:
                continue
            refund = Refund.objects.create(payment=payment, amount=take, currency=payment.currency, reason=reason,
                                           idempotency_key=f"refund-{payment.pk}-{uuid.uuid4().hex[:12]}")
        remaining -= take
        _execute_refund(refund)
        refunds.append(refund)
    booking.refresh_from_db()
    if refunds and paid_amount(booking) == 0 and booking.state in (Booking.CANCELLED, Booking.EXPIRED,
                                                                             Booking.CONFIRMED):
        with transaction.atomic():
            locked = Booking.objects.select_for_update().get(pk=booking.pk)
            if locked.state in (Booking.CANCELLED, Booking.EXPIRED, Booking.CONFIRMED):
                states.transition(locked, Booking.REFUNDED, None, f"refunded in full ({reason})")
    return refunds


def _execute_refund(refund: Refund) -> Refund:
    try:
        result = get_provider().refund(intent_id=refund.payment.intent_id, amount=refund.amount,
                                       idempotency_key=refund.idempotency_key,
                                       metadata={"booking": refund.payment.booking.reference})
    except PaymentError as exc:
        log.warning("refund %s failed: %s", refund.pk, getattr(exc, "code", ""))
        retry_refund_task.apply_async((refund.pk,), countdown=300)
        return refund
    Refund.objects.filter(pk=refund.pk).update(state=Refund.SUCCEEDED if result.status in ("succeeded", "pending")
                                               else Refund.FAILED, provider_refund_id=result.refund_id)
    refund.refresh_from_db()
    return refund


def retry_refund(refund_id: int) -> Refund:
    refund = Refund.objects.select_related("payment__booking").get(pk=refund_id)
    if refund.state != Refund.PENDING:
        return refund
    return _execute_refund(refund)


@shared_task(bind=True, max_retries=10, acks_late=True, name="bookings.tasks.retry_refund")
def retry_refund_task(self, refund_id):
    """A refund the provider refused or could not take: tried again every 10 minutes until it settles."""
    refund = retry_refund(refund_id)
    if refund.state == Refund.PENDING:
        raise self.retry(countdown=600)
    return refund.state


def paid_amount(booking: Booking) -> int:
    """What the patient has paid for this booking and not been refunded."""
    payments = Payment.objects.filter(booking=booking, state=Payment.SUCCEEDED).prefetch_related("refunds")
    return sum(p.amount - p.refunded_amount for p in payments)
