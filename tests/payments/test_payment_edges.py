"""Edges of the payment services, written to kill mutants that survived `make mutate` (docs/mutation.md).

The deposit is paid once, a payment only moves forward, a webhook is acted on once, and a refund never takes
more than was paid or is written twice. The provider is a fake (no network): each test runs in milliseconds,
which is what mutation testing needs (the localstripe journeys in test_journey.py cover the real wire).
"""

from __future__ import annotations

import json
from datetime import timedelta

import pytest
from django.utils import timezone

from bookings.engine import holds
from bookings.errors import BookingError
from bookings.lifecycle import services as lifecycle
from bookings.models import Allocation, Booking, Payment, Refund, WebhookEvent
from bookings.payments import (
    InvalidWebhook,
    PaymentError,
    PaymentResult,
    ProviderUnavailable,
    RefundResult,
)
from bookings.payments import (
    WebhookEvent as ProviderEvent,
)
from bookings.payments import services as payments
from tests.bookings.helpers import FakeProvider, direct_offering, free_options

pytestmark = pytest.mark.django_db


class Provider(FakeProvider):
    """The fake provider of the booking tests, plus what these tests steer: failures, retrieve, webhooks."""

    def __init__(self, status="succeeded"):
        super().__init__(status)
        self.created = []
        self.retrieved = []
        self.retrieve_status = "succeeded"
        self.raises = None  # an exception create_and_confirm raises
        self.refund_raises = None
        self.refund_status = "succeeded"
        self.refund_calls = []
        self.error_code = "card_declined"

    def create_and_confirm(self, *, amount, currency, payment_method, idempotency_key, metadata=None):
        self.created.append({"amount": amount, "currency": currency, "payment_method": payment_method,
                             "idempotency_key": idempotency_key, "metadata": metadata})
        if self.raises is not None:
            raise self.raises
        result = super().create_and_confirm(amount=amount, currency=currency, payment_method=payment_method,
                                            idempotency_key=idempotency_key, metadata=metadata)
        if self.status == "failed":
            return PaymentResult(status="failed", intent_id=result.intent_id, amount=amount, currency=currency,
                                 error_code=self.error_code)
        return result

    def retrieve(self, intent_id):
        self.retrieved.append(intent_id)
        return PaymentResult(status=self.retrieve_status, intent_id=intent_id, amount=0, currency="kzt")

    def refund(self, *, intent_id, amount, idempotency_key, metadata=None):
        self.refund_calls.append({"intent_id": intent_id, "amount": amount, "idempotency_key": idempotency_key,
                                  "metadata": metadata})
        if self.refund_raises is not None:
            raise self.refund_raises
        self.refunds.append(amount)
        return RefundResult(refund_id=f"re_{len(self.refund_calls)}", status=self.refund_status, amount=amount,
                            currency="kzt")

    def parse_webhook(self, payload, signature_header):
        if signature_header != "good":
            raise InvalidWebhook("bad signature")
        data = json.loads(payload)
        return ProviderEvent(id=data["id"], type=data["type"], object_id=data.get("intent"),
                             object={"id": data.get("intent")})


@pytest.fixture
def provider(monkeypatch):
    fake = Provider()
    monkeypatch.setattr(payments, "get_provider", lambda: fake)
    return fake


@pytest.fixture
def other_patient(django_user_model):
    return django_user_model.objects.create_user("edge-other", "edge.other@example.com", "a-long-password-2")


@pytest.fixture
def retries(monkeypatch):
    """Refunds the provider refused are retried by a Celery task: record the scheduling instead of running it."""
    scheduled = []
    monkeypatch.setattr(payments.retry_refund_task, "apply_async",
                        lambda args, countdown=None: scheduled.append((args, countdown)))
    return scheduled


def awaiting_booking(user, days_ahead=20, offering=None) -> Booking:
    """A direct booking awaiting its deposit, its first (only) session ``days_ahead`` days or more away."""
    offering = offering or direct_offering()
    now = timezone.now()
    option = next(o for o in free_options(offering, days=days_ahead + 30)
                  if o.start - now > timedelta(days=days_ahead))
    hold = holds.place_hold(user, offering, option.start, f"edge-{option.start:%Y%m%d%H%M}")
    return lifecycle.create_booking_from_hold(user, hold)


def webhook(event_id, intent, type_="payment_intent.succeeded") -> bytes:
    return json.dumps({"id": event_id, "type": type_, "intent": intent}).encode()


def paid_payments(booking, *amounts):
    """Succeeded payments of ``amounts`` on ``booking`` (a deposit paid in two attempts, say)."""
    return [Payment.objects.create(booking=booking, amount=amount, currency=booking.currency,
                                   state=Payment.SUCCEEDED, intent_id=f"pi_edge_{booking.pk}_{i}",
                                   idempotency_key=f"edge-{booking.pk}-{i}")
            for i, amount in enumerate(amounts)]


# --------------------------------------------------------------------------------- paying the deposit


def test_the_deposit_is_charged_once_and_confirms_the_booking(patient, provider):
    booking = awaiting_booking(patient)
    payment = payments.pay_deposit(booking, patient, "pm_card_visa")
    assert payment.state == Payment.SUCCEEDED
    [call] = provider.created
    assert call["amount"] == booking.deposit and call["currency"] == booking.currency.lower()
    assert call["payment_method"] == "pm_card_visa"
    assert call["idempotency_key"] == payment.idempotency_key
    assert call["metadata"] == {"booking": booking.reference, "payment": str(payment.pk)}
    booking.refresh_from_db()
    assert booking.state == Booking.CONFIRMED
    assert booking.events.get(to_state=Booking.CONFIRMED).note == f"deposit paid ({payment.intent_id})"
    assert payments.paid_amount(booking) == booking.deposit
    assert not Allocation.objects.filter(appointment__booking=booking, expires_at__isnull=False).exists()

    with pytest.raises(BookingError) as again:  # a second click, a second tab: nothing is charged twice
        payments.pay_deposit(booking, patient, "pm_card_visa")
    assert again.value.code == "already_paid"
    assert len(provider.created) == 1
    assert Payment.objects.filter(booking=booking).count() == 1


def test_only_the_bookings_patient_can_pay_it(patient, other_patient, provider):
    booking = awaiting_booking(patient)
    with pytest.raises(Booking.DoesNotExist):
        payments.pay_deposit(booking, other_patient, "pm_card_visa")
    assert provider.created == [] and not Payment.objects.filter(booking=booking).exists()


@pytest.mark.parametrize("method", ["", None, "tok_visa", "card_4242"])
def test_a_missing_or_foreign_payment_method_is_refused_before_anything_is_written(patient, provider, method):
    booking = awaiting_booking(patient)
    with pytest.raises(BookingError) as refused:
        payments.pay_deposit(booking, patient, method)
    assert refused.value.code == "payment_method"
    assert provider.created == [] and not Payment.objects.filter(booking=booking).exists()


def test_a_card_needing_3d_secure_keeps_the_slot_and_the_same_attempt_finishes(patient, provider):
    booking = awaiting_booking(patient)
    provider.status = "requires_action"
    before = timezone.now()
    payment = payments.pay_deposit(booking, patient, "pm_card_3ds")
    assert payment.state == Payment.REQUIRES_ACTION and payment.client_secret == "pi_fake_secret_x"
    booking.refresh_from_db()
    assert booking.state == Booking.AWAITING_PAYMENT
    # the slot is kept for the 3-D Secure step: the time to pay is pushed to now + the grace, not shortened
    assert booking.payment_due_at >= before + payments.PAYMENT_GRACE - timedelta(seconds=5)
    assert set(Allocation.objects.filter(appointment__booking=booking, live=True)
               .values_list("expires_at", flat=True)) == {booking.payment_due_at}

    # the browser finished the check: the same attempt is read back, no second charge is created
    again = payments.pay_deposit(booking, patient, "pm_card_3ds")
    assert again.pk == payment.pk and again.state == Payment.SUCCEEDED
    assert len(provider.created) == 1 and provider.retrieved == [payment.intent_id]
    booking.refresh_from_db()
    assert booking.state == Booking.CONFIRMED


def test_a_processing_payment_also_keeps_the_slot(patient, provider):
    booking = awaiting_booking(patient)
    provider.status = "processing"
    payment = payments.pay_deposit(booking, patient, "pm_card_slow")
    assert payment.state == Payment.PROCESSING
    booking.refresh_from_db()
    assert booking.state == Booking.AWAITING_PAYMENT
    assert booking.payment_due_at > timezone.now() + payments.PAYMENT_GRACE - timedelta(minutes=1)


def test_an_attempt_under_way_may_finish_after_the_deadline_but_a_new_one_may_not_start(patient, provider):
    booking = awaiting_booking(patient)
    provider.status = "requires_action"
    payment = payments.pay_deposit(booking, patient, "pm_card_3ds")
    Booking.objects.filter(pk=booking.pk).update(payment_due_at=timezone.now() - timedelta(minutes=1))
    assert payments.start_payment(booking, patient).pk == payment.pk  # the 3-D Secure step may still finish

    other = awaiting_booking(patient, days_ahead=25)
    Booking.objects.filter(pk=other.pk).update(payment_due_at=timezone.now() - timedelta(seconds=1))
    with pytest.raises(BookingError) as late:
        payments.pay_deposit(other, patient, "pm_card_visa")
    assert late.value.code == "hold_expired"
    assert not Payment.objects.filter(booking=other).exists()


def test_a_booking_that_is_not_waiting_for_money_takes_none(patient, provider):
    booking = awaiting_booking(patient)
    Booking.objects.filter(pk=booking.pk).update(state=Booking.CANCELLED)
    with pytest.raises(BookingError) as refused:
        payments.pay_deposit(booking, patient, "pm_card_visa")
    assert refused.value.code == "invalid_state"
    assert provider.created == []


def test_a_created_attempt_without_an_intent_is_reused_not_duplicated(patient, provider):
    booking = awaiting_booking(patient)
    first = payments.start_payment(booking, patient)
    assert (first.state, first.amount, first.currency) == (Payment.CREATED, booking.deposit, booking.currency)
    assert first.idempotency_key.startswith(f"pay-{booking.reference}-")
    assert payments.start_payment(booking, patient).pk == first.pk
    assert Payment.objects.filter(booking=booking).count() == 1


def test_an_unsent_attempt_for_an_old_deposit_is_dropped_and_the_new_deposit_charged(patient, other_patient,
                                                                                     provider):
    someone_elses = payments.start_payment(awaiting_booking(other_patient, days_ahead=25), other_patient)
    booking = awaiting_booking(patient)
    stale = payments.start_payment(booking, patient)  # never sent to the provider
    Booking.objects.filter(pk=booking.pk).update(deposit=booking.deposit + 1_500_000)  # extras chosen since
    booking.refresh_from_db()
    payment = payments.pay_deposit(booking, patient, "pm_card_visa")
    assert payment.pk != stale.pk and payment.amount == booking.deposit
    assert [c["amount"] for c in provider.created] == [booking.deposit]
    stale.refresh_from_db()
    assert (stale.state, stale.error_code) == (Payment.FAILED, "amount_changed")
    assert Payment.objects.get(booking=booking, state=Payment.SUCCEEDED).pk == payment.pk
    assert Payment.objects.get(pk=someone_elses.pk).state == Payment.CREATED  # only this booking's attempt


def test_a_declined_card_keeps_the_booking_and_a_retry_is_a_new_attempt(patient, provider):
    booking = awaiting_booking(patient)
    provider.status = "failed"
    provider.error_code = "insufficient_funds"
    with pytest.raises(payments.PaymentFailed) as declined:
        payments.pay_deposit(booking, patient, "pm_card_poor")
    assert declined.value.code == "insufficient_funds"
    assert declined.value.message == payments.decline_message("insufficient_funds")
    failed = Payment.objects.get(booking=booking)
    assert (failed.state, failed.error_code) == (Payment.FAILED, "insufficient_funds")
    booking.refresh_from_db()
    assert booking.state == Booking.AWAITING_PAYMENT

    provider.status = "succeeded"
    payment = payments.pay_deposit(booking, patient, "pm_card_rich")
    assert payment.pk != failed.pk and payment.state == Payment.SUCCEEDED
    booking.refresh_from_db()
    assert booking.state == Booking.CONFIRMED
    assert payments.paid_amount(booking) == booking.deposit  # the declined attempt paid nothing


def test_each_decline_is_explained_in_its_own_words():
    codes = ["card_declined", "insufficient_funds", "expired_card", "incorrect_cvc",
             "payment_intent_authentication_failure"]
    messages = [payments.decline_message(code) for code in codes]
    generic = payments.decline_message(None)
    assert len(set(messages)) == len(codes) and generic not in messages
    assert payments.decline_message("something_new") == generic == payments.decline_message("")


def test_a_provider_outage_charges_nothing_and_says_try_again(patient, other_patient, provider):
    someone_elses = payments.start_payment(awaiting_booking(other_patient, days_ahead=25), other_patient)
    booking = awaiting_booking(patient)
    provider.raises = ProviderUnavailable("timeout")
    with pytest.raises(payments.ProviderDown) as down:
        payments.pay_deposit(booking, patient, "pm_card_visa")
    assert down.value.code == "provider_unavailable"
    attempt = Payment.objects.get(booking=booking)
    assert (attempt.state, attempt.error_code) == (Payment.FAILED, "provider_unavailable")
    assert Payment.objects.get(pk=someone_elses.pk).state == Payment.CREATED  # another patient's attempt is theirs
    booking.refresh_from_db()
    assert booking.state == Booking.AWAITING_PAYMENT

    provider.raises = None
    assert payments.pay_deposit(booking, patient, "pm_card_visa").state == Payment.SUCCEEDED


@pytest.mark.parametrize(("code", "said", "stored"), [("api_error", "api_error", "api_error"),
                                                      (None, "payment_failed", "error"),
                                                      ("x" * 80, "x" * 80, "x" * 60)])
def test_a_provider_error_fails_the_attempt_with_its_code(patient, provider, code, said, stored):
    booking = awaiting_booking(patient)
    provider.raises = PaymentError("boom", code=code)
    with pytest.raises(payments.PaymentFailed) as failed:
        payments.pay_deposit(booking, patient, "pm_card_visa")
    assert failed.value.code == said
    attempt = Payment.objects.get(booking=booking)
    assert (attempt.state, attempt.error_code) == (Payment.FAILED, stored)


# --------------------------------------------------------------------------------- forward only, webhooks


def test_a_payment_only_moves_forward(patient, provider):
    booking = awaiting_booking(patient)
    provider.status = "requires_action"
    payment = payments.pay_deposit(booking, patient, "pm_card_3ds")
    payment = payments.apply_result(payment, PaymentResult(status="processing", intent_id=payment.intent_id,
                                                           amount=0, currency="kzt"))
    assert Payment.objects.get(pk=payment.pk).state == Payment.PROCESSING
    # an older event arriving late does not move it back
    payments.apply_result(payment, PaymentResult(status="requires_action", intent_id=payment.intent_id, amount=0,
                                                 currency="kzt"))
    assert Payment.objects.get(pk=payment.pk).state == Payment.PROCESSING
    payments.apply_result(payment, PaymentResult(status="succeeded", intent_id=payment.intent_id, amount=0,
                                                 currency="kzt"))
    for late in ("failed", "canceled", "processing", "requires_action", "something_new"):
        payments.apply_result(payment, PaymentResult(status=late, intent_id=payment.intent_id, amount=0,
                                                     currency="kzt", error_code="card_declined"))
        stored = Payment.objects.get(pk=payment.pk)
        assert (stored.state, stored.error_code) == (Payment.SUCCEEDED, ""), late
    booking.refresh_from_db()
    assert booking.state == Booking.CONFIRMED
    assert booking.events.filter(to_state=Booking.CONFIRMED).count() == 1  # confirmed once, not per event


def test_an_abandoned_3d_secure_payment_is_cancelled_and_the_patient_can_pay_again(patient, provider):
    booking = awaiting_booking(patient)
    provider.status = "requires_action"
    abandoned = payments.pay_deposit(booking, patient, "pm_card_3ds")
    provider.retrieve_status = "canceled"  # the intent was cancelled (the 3-D Secure step timed out)
    payments.handle_webhook(webhook("evt_canceled", abandoned.intent_id, "payment_intent.canceled"), "good")
    assert Payment.objects.get(pk=abandoned.pk).state == Payment.CANCELED
    provider.status = "succeeded"
    payment = payments.pay_deposit(booking, patient, "pm_card_visa")  # a new attempt, not the dead one
    assert payment.pk != abandoned.pk and payment.state == Payment.SUCCEEDED
    booking.refresh_from_db()
    assert booking.state == Booking.CONFIRMED


def test_a_failed_payment_records_why_and_an_unknown_status_changes_nothing(patient, provider):
    booking = awaiting_booking(patient)
    payment = payments.start_payment(booking, patient)
    payments.apply_result(payment, PaymentResult(status="mystery", intent_id="pi_edge_mystery", amount=0,
                                                 currency="kzt"))
    stored = Payment.objects.get(pk=payment.pk)
    assert (stored.state, stored.intent_id) == (Payment.CREATED, "pi_edge_mystery")
    payments.apply_result(payment, PaymentResult(status="failed", intent_id="pi_edge_mystery", amount=0,
                                                 currency="kzt", error_code=None))
    stored = Payment.objects.get(pk=payment.pk)
    assert (stored.state, stored.error_code, stored.intent_id) == (Payment.FAILED, "failed", "pi_edge_mystery")
    # a result naming no intent keeps the one the payment has
    payments.apply_result(payment, PaymentResult(status="failed", intent_id=None, amount=0, currency="kzt"))
    assert Payment.objects.get(pk=payment.pk).intent_id == "pi_edge_mystery"
    # a provider's long error code is cut to the column's 60 characters
    other = payments.start_payment(awaiting_booking(patient, days_ahead=25), patient)
    payments.apply_result(other, PaymentResult(status="failed", intent_id="pi_edge_long", amount=0, currency="kzt",
                                               error_code="e" * 80))
    assert Payment.objects.get(pk=other.pk).error_code == "e" * 60


def test_a_webhook_is_verified_acted_on_once_and_re_reads_the_intent(patient, provider):
    booking = awaiting_booking(patient)
    provider.status = "requires_action"
    payment = payments.pay_deposit(booking, patient, "pm_card_3ds")

    assert payments.handle_webhook(webhook("evt_1", payment.intent_id), "forged") == (400, "invalid signature")
    assert not WebhookEvent.objects.exists()

    status, note = payments.handle_webhook(webhook("evt_1", payment.intent_id), "good")
    assert (status, note) == (200, f"payment {payment.pk} succeeded")
    assert provider.retrieved == [payment.intent_id]  # the event is a trigger; the provider is asked
    stored = WebhookEvent.objects.get(event_id="evt_1")
    assert stored.type == "payment_intent.succeeded" and stored.processed_at is not None
    assert stored.result == note and stored.payload == {"id": payment.intent_id}
    booking.refresh_from_db()
    assert booking.state == Booking.CONFIRMED

    assert payments.handle_webhook(webhook("evt_1", payment.intent_id), "good") == (200, "duplicate")
    assert provider.retrieved == [payment.intent_id]
    assert WebhookEvent.objects.count() == 1


def test_a_webhook_stored_but_not_processed_is_processed_when_it_comes_again(patient, provider):
    booking = awaiting_booking(patient)
    provider.status = "requires_action"
    payment = payments.pay_deposit(booking, patient, "pm_card_3ds")
    WebhookEvent.objects.create(event_id="evt_crashed", type="payment_intent.succeeded")  # a worker died here
    assert payments.handle_webhook(webhook("evt_crashed", payment.intent_id), "good") == (
        200, f"payment {payment.pk} succeeded")
    booking.refresh_from_db()
    assert booking.state == Booking.CONFIRMED


def test_webhooks_for_unknown_intents_and_other_events_change_nothing(patient, provider):
    booking = awaiting_booking(patient)
    assert payments.handle_webhook(webhook("evt_2", "pi_nobody"), "good") == (200, "unknown intent")
    assert payments.handle_webhook(webhook("evt_3", "pi_nobody", "charge.refunded"), "good") == (200, "ignored")
    assert provider.retrieved == []
    assert WebhookEvent.objects.get(event_id="evt_3").result == "ignored"
    booking.refresh_from_db()
    assert booking.state == Booking.AWAITING_PAYMENT


def test_a_webhook_during_a_provider_outage_is_left_for_the_retry(patient, provider, monkeypatch):
    booking = awaiting_booking(patient)
    provider.status = "requires_action"
    payment = payments.pay_deposit(booking, patient, "pm_card_3ds")

    def down(intent_id):
        raise ProviderUnavailable("down")

    monkeypatch.setattr(provider, "retrieve", down)
    with pytest.raises(ProviderUnavailable):
        payments.handle_webhook(webhook("evt_4", payment.intent_id), "good")
    assert WebhookEvent.objects.get(event_id="evt_4").processed_at is None  # the provider's retry acts on it


def test_a_late_payment_for_a_slot_someone_else_took_is_refunded_in_full(patient, other_patient, provider):
    booking = awaiting_booking(patient)
    provider.status = "requires_action"
    payment = payments.pay_deposit(booking, patient, "pm_card_3ds")
    # the 3-D Secure step outlived the hold; the slot went to someone else
    past = timezone.now() - timedelta(minutes=1)
    Booking.objects.filter(pk=booking.pk).update(payment_due_at=past)
    Allocation.objects.filter(appointment__booking=booking).update(expires_at=past)
    start = booking.appointments.get().start
    holds.place_hold(other_patient, booking.offering, start, "rival")

    payments.handle_webhook(webhook("evt_late", payment.intent_id), "good")
    booking.refresh_from_db()
    assert booking.state == Booking.REFUNDED
    assert provider.refunds == [booking.deposit]
    assert payments.paid_amount(booking) == 0
    assert Refund.objects.get(payment=payment).reason == "late_payment"


# --------------------------------------------------------------------------------- refunds


def test_a_refund_spreads_over_payments_never_takes_more_than_each_has_left(patient, other_patient, provider):
    booking = awaiting_booking(patient)
    Booking.objects.filter(pk=booking.pk).update(state=Booking.CANCELLED)
    first, second = paid_payments(booking, 300_000, 200_000)
    [someone_elses] = paid_payments(awaiting_booking(other_patient, days_ahead=25), 800_000)

    part = payments.refund_booking(booking, 100_000, "patient")
    assert [(r.payment_id, r.amount, r.state, r.reason, r.currency) for r in part] == [
        (first.pk, 100_000, Refund.SUCCEEDED, "patient", booking.currency)]
    assert part[0].provider_refund_id == "re_1"
    assert provider.refund_calls == [{"intent_id": first.intent_id, "amount": 100_000, "metadata":
                                      {"booking": booking.reference}, "idempotency_key": part[0].idempotency_key}]
    booking.refresh_from_db()
    assert booking.state == Booking.CANCELLED  # money is still held: not refunded yet

    more = payments.refund_booking(booking, 200_001, "patient")  # the first payment's rest, then 1 of the second
    assert [(r.payment_id, r.amount) for r in more] == [(first.pk, 200_000), (second.pk, 1)]
    assert len({r.idempotency_key for r in part + more}) == 3
    assert payments.paid_amount(booking) == 199_999

    # asking for more than is left refunds what is left, once; then the booking is refunded
    rest = payments.refund_booking(booking, 999_999, "clinic_cancelled")
    assert [(r.payment_id, r.amount) for r in rest] == [(second.pk, 199_999)]
    assert payments.paid_amount(booking) == 0
    booking.refresh_from_db()
    assert booking.state == Booking.REFUNDED
    event = booking.events.get(to_state=Booking.REFUNDED)
    assert (event.actor_id, event.note) == (None, "refunded in full (clinic_cancelled)")

    assert payments.refund_booking(booking, 1, "again") == []  # nothing left: nothing written
    assert Refund.objects.filter(payment__booking=booking).count() == 4
    assert not Refund.objects.filter(payment=someone_elses).exists()  # another booking's money is never touched
    assert sum(provider.refunds) == 500_000


def test_refunding_nothing_writes_nothing(patient, provider):
    booking = awaiting_booking(patient)
    Booking.objects.filter(pk=booking.pk).update(state=Booking.CONFIRMED)
    paid_payments(booking, 500_000)
    assert payments.refund_booking(booking, 0, "none") == []
    assert provider.refund_calls == [] and not Refund.objects.exists()
    booking.refresh_from_db()
    assert booking.state == Booking.CONFIRMED


def test_a_confirmed_booking_refunded_in_full_is_refunded(patient, provider):
    booking = awaiting_booking(patient)
    Booking.objects.filter(pk=booking.pk).update(state=Booking.CONFIRMED)
    paid_payments(booking, 500_000)
    payments.refund_booking(booking, 500_000, "goodwill")
    booking.refresh_from_db()
    assert booking.state == Booking.REFUNDED


def test_only_succeeded_payments_count_as_paid_and_failed_refunds_do_not_count(patient, provider):
    booking = awaiting_booking(patient)
    [paid] = paid_payments(booking, 500_000)
    Payment.objects.create(booking=booking, amount=700_000, currency=booking.currency, state=Payment.FAILED,
                           idempotency_key="edge-failed")
    Payment.objects.create(booking=booking, amount=900_000, currency=booking.currency,
                           state=Payment.REQUIRES_ACTION, idempotency_key="edge-3ds", intent_id="pi_edge_3ds")
    assert payments.paid_amount(booking) == 500_000
    Refund.objects.create(payment=paid, amount=100_000, currency=booking.currency, reason="x",
                          state=Refund.FAILED, idempotency_key="edge-r1")
    Refund.objects.create(payment=paid, amount=50_000, currency=booking.currency, reason="x",
                          state=Refund.PENDING, idempotency_key="edge-r2")
    assert payments.paid_amount(booking) == 450_000
    payments.refund_booking(booking, 10**9, "all")
    assert provider.refunds == [450_000]  # the failed payment and the 3-D Secure attempt are never refunded


def test_a_refused_refund_stays_pending_is_retried_and_is_not_paid_twice(patient, provider, retries):
    booking = awaiting_booking(patient)
    Booking.objects.filter(pk=booking.pk).update(state=Booking.CANCELLED)
    paid_payments(booking, 500_000)
    provider.refund_raises = PaymentError("card closed", code="expired_or_canceled_card")
    [refund] = payments.refund_booking(booking, 500_000, "clinic_cancelled")
    assert refund.state == Refund.PENDING and refund.provider_refund_id == ""
    assert retries == [((refund.pk,), 300)]
    assert payments.paid_amount(booking) == 0  # a pending refund is owed: not refunded a second time
    assert payments.refund_booking(booking, 500_000, "again") == []
    assert len(provider.refund_calls) == 1

    provider.refund_raises = None
    retried = payments.retry_refund(refund.pk)
    assert (retried.state, retried.provider_refund_id) == (Refund.SUCCEEDED, "re_2")
    assert provider.refund_calls[-1]["idempotency_key"] == refund.idempotency_key  # the same refund, not a new one
    assert payments.retry_refund(refund.pk).state == Refund.SUCCEEDED
    assert len(provider.refund_calls) == 2


@pytest.mark.parametrize(("status", "state"), [("succeeded", Refund.SUCCEEDED), ("pending", Refund.SUCCEEDED),
                                               ("failed", Refund.FAILED), ("canceled", Refund.FAILED)])
def test_the_providers_refund_status_decides_the_refunds_state(patient, provider, status, state):
    booking = awaiting_booking(patient)
    Booking.objects.filter(pk=booking.pk).update(state=Booking.CANCELLED)
    paid_payments(booking, 500_000)
    provider.refund_status = status
    [refund] = payments.refund_booking(booking, 500_000, "clinic_cancelled")
    assert refund.state == state
    # a failed refund gives the money back to what can be refunded
    assert payments.paid_amount(booking) == (500_000 if state == Refund.FAILED else 0)


def test_a_late_webhook_for_a_booking_cancelled_since_is_acknowledged(patient, provider):
    from bookings.lifecycle import cancellation, reasons

    booking = awaiting_booking(patient)
    payment = payments.pay_deposit(booking, patient, "pm_card_visa")  # paid in the browser: confirmed at once
    cancellation.cancel_booking(booking, patient, reasons.PATIENT)  # the patient changes their mind
    booking.refresh_from_db()
    assert booking.state == Booking.REFUNDED
    # Stripe's payment_intent.succeeded for that payment arrives afterwards (they may come late, or again)
    assert payments.handle_webhook(webhook("evt_after_cancel", payment.intent_id), "good")[0] == 200
    booking.refresh_from_db()
    assert booking.state == Booking.REFUNDED and provider.refunds == [booking.deposit]
