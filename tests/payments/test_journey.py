"""Whole payment journeys: our services + Django's live server + localstripe (in-process, 127.0.0.1).

localstripe sends its signed webhooks to the live server about a second after each payment; the
tests wait for them (``wait_webhook``) before touching the database again. Celery runs eagerly here,
so the emails a transition enqueues on commit land in ``mail.outbox``.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import socket
import time
import urllib.error
import urllib.request
import uuid
from datetime import timedelta
from types import SimpleNamespace

import pytest
from django.core import mail
from django.test import override_settings
from django.utils import timezone

from bookings import errors
from bookings.engine import holds, slots
from bookings.lifecycle import cancellation, reasons
from bookings.lifecycle import services as lifecycle
from bookings.models import Allocation, Appointment, Booking, Payment, Refund, WebhookEvent
from bookings.payments import PaymentResult, get_provider
from bookings.payments import services as payments_service
from bookings.payments.services import PaymentFailed, ProviderDown
from bookings.review import services as review
from tests.bookings.helpers import direct_offering
from tests.bookings.helpers import review_offering_gamma as review_offering
from tests.localstripe_server import start_localstripe, wait_for

pytestmark = pytest.mark.django_db(transaction=True, serialized_rollback=True)

SECRET_KEY, PUBLISHABLE_KEY, WEBHOOK_SECRET = "sk_test_x", "pk_test_x", "whsec_x"
CARD_OK, CARD_DECLINED, CARD_3DS = "4242424242424242", "4000000000000341", "4000002500003155"
WEBHOOK_PATH = "/payments/stripe/webhook/"
_DIRECT = urllib.request.build_opener(urllib.request.ProxyHandler({}))


@pytest.fixture(scope="module", autouse=True)
def _keep_catalogue(keep_catalogue):
    """The catalogue is there for every test here (tests/conftest.py)."""


@pytest.fixture(scope="module")
def stripe_env(_keep_catalogue, live_server):
    ls = start_localstripe()
    override = override_settings(STRIPE_API_BASE=ls.url, STRIPE_SECRET_KEY=SECRET_KEY,
                                 STRIPE_PUBLISHABLE_KEY=PUBLISHABLE_KEY, STRIPE_WEBHOOK_SECRET=WEBHOOK_SECRET)
    override.enable()
    try:
        webhook_url = live_server.url + WEBHOOK_PATH
        ls.register_webhook("emhana", webhook_url, WEBHOOK_SECRET,
                            events=["payment_intent.succeeded", "payment_intent.payment_failed"])
        yield SimpleNamespace(localstripe=ls, webhook_url=webhook_url)
    finally:
        override.disable()
        ls.stop()


@pytest.fixture
def env(stripe_env):
    return SimpleNamespace(provider=get_provider(), **vars(stripe_env))


# --------------------------------------------------------------------------------- helpers






def slot(offering, days_ahead=5, index=0):
    now = timezone.now()
    day = (now + timedelta(days=days_ahead)).astimezone(offering.clinic.tz).date()
    options = slots.offering_slots(offering, day, day + timedelta(days=10), now)
    assert len(options) > index
    return options[index]


def user(django_user_model, name):
    return django_user_model.objects.create_user(name, f"{name}@example.com", "a-long-password-7")


def awaiting_payment(patient, offering=None, days_ahead=5, key=None) -> Booking:
    offering = offering or direct_offering()
    option = slot(offering, days_ahead)
    hold = holds.place_hold(patient, offering, option.start, key or uuid.uuid4().hex)
    booking = lifecycle.create_booking_from_hold(patient, hold)
    assert booking.state == Booking.AWAITING_PAYMENT
    return booking


def wait_webhook(event_type, intent_id, timeout=15.0) -> WebhookEvent:
    """Wait until localstripe's event for this intent was received and processed by the live server."""
    return wait_for(lambda: WebhookEvent.objects.filter(type=event_type, payload__id=intent_id,
                                                        processed_at__isnull=False).first(), timeout=timeout)


def confirmations():
    """Sent emails carrying a calendar file (only the confirmation and reminders have one)."""
    return [m for m in mail.outbox if any(a[2].startswith("text/calendar") for a in m.attachments)]


def live_allocations(booking):
    return Allocation.objects.filter(appointment__booking=booking, live=True)


def sign(payload: bytes, secret: str = WEBHOOK_SECRET, timestamp: int | None = None) -> str:
    ts = int(time.time()) if timestamp is None else timestamp
    mac = hmac.new(secret.encode(), f"{ts}.".encode() + payload, hashlib.sha256).hexdigest()
    return f"t={ts},v1={mac}"


def event_payload(event_type: str, intent_id: str, status: str, event_id: str | None = None) -> bytes:
    return json.dumps({
        "id": event_id or f"evt_test_{uuid.uuid4().hex[:16]}", "object": "event", "type": event_type,
        "api_version": "2024-06-20", "created": int(time.time()), "livemode": False,
        "data": {"object": {"id": intent_id, "object": "payment_intent", "status": status}},
    }).encode()


def post_webhook(url, payload: bytes, signature: str | None):
    headers = {"Content-Type": "application/json"}
    if signature is not None:
        headers["Stripe-Signature"] = signature
    request = urllib.request.Request(url, data=payload, method="POST", headers=headers)
    try:
        with _DIRECT.open(request, timeout=15) as response:
            return response.status, response.read().decode()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read().decode()


def closed_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def pay(env, booking, patient, card=CARD_OK) -> Payment:
    return payments_service.pay_deposit(booking, patient, env.provider.create_test_payment_method(card))


# --------------------------------------------------------------------------------- journeys


def test_direct_booking_paid_confirmed_then_cancelled_20_days_ahead_is_refunded_in_full(env, patient):
    offering = direct_offering()
    option = slot(offering, days_ahead=21)
    assert option.start - timezone.now() >= timedelta(days=20)
    hold = holds.place_hold(patient, offering, option.start, "journey-a")
    booking = lifecycle.create_booking_from_hold(patient, hold)
    assert mail.outbox == []

    payment = pay(env, booking, patient)
    assert payment.state == Payment.SUCCEEDED
    assert payment.amount == booking.deposit and payment.intent_id.startswith("pi_")
    booking.refresh_from_db()
    assert booking.state == Booking.CONFIRMED
    assert booking.payment_due_at is None
    assert set(booking.appointments.values_list("status", flat=True)) == {Appointment.BOOKED}
    assert set(live_allocations(booking).values_list("expires_at", flat=True)) == {None}
    sent = confirmations()
    assert len(sent) == 1 and len(mail.outbox) == 1
    assert sent[0].to == [patient.email]
    assert booking.reference in sent[0].subject
    name, ics, mimetype = sent[0].attachments[0][:3]
    assert name == f"{booking.reference}.ics" and mimetype.startswith("text/calendar")
    ics = ics.decode() if isinstance(ics, bytes) else ics
    assert "BEGIN:VEVENT" in ics and option.start.strftime("%Y%m%dT%H%M%SZ") in ics

    # localstripe's own webhook arrives afterwards and changes nothing
    event = wait_webhook("payment_intent.succeeded", payment.intent_id)
    assert event.result == f"payment {payment.pk} succeeded"
    booking.refresh_from_db()
    assert booking.state == Booking.CONFIRMED
    assert booking.events.filter(to_state=Booking.CONFIRMED).count() == 1
    assert len(confirmations()) == 1 and len(mail.outbox) == 1
    assert Payment.objects.filter(booking=booking).count() == 1

    booking, quote = cancellation.cancel_booking(booking, patient, reasons.PATIENT)
    assert (quote.percent, quote.amount) == (100, booking.deposit)
    refund = Refund.objects.get(payment=payment)
    assert refund.amount == booking.deposit
    assert refund.state == Refund.SUCCEEDED and refund.provider_refund_id
    booking.refresh_from_db()
    assert booking.state == Booking.REFUNDED
    assert [e.to_state for e in booking.events.all()][-2:] == [Booking.CANCELLED, Booking.REFUNDED]
    assert not live_allocations(booking).exists()
    assert set(booking.appointments.values_list("status", flat=True)) == {Appointment.CANCELLED}
    assert cancellation.paid_amount(booking) == 0
    # cancelling again refunds nothing more
    cancellation.cancel_booking(booking, patient, reasons.PATIENT)
    assert Refund.objects.filter(payment=payment).count() == 1


def test_declined_card_keeps_the_booking_and_hold_and_a_retry_succeeds(env, patient):
    booking = awaiting_payment(patient)
    with pytest.raises(PaymentFailed) as failed:
        pay(env, booking, patient, CARD_DECLINED)
    assert "declined" in str(failed.value.message).lower()
    assert errors.http_status(failed.value) == 402
    first = Payment.objects.get(booking=booking)
    assert first.state == Payment.FAILED and first.error_code
    if first.intent_id:
        wait_webhook("payment_intent.payment_failed", first.intent_id)
    booking.refresh_from_db()
    assert booking.state == Booking.AWAITING_PAYMENT
    assert live_allocations(booking).exists()
    assert all(a.expires_at > timezone.now() for a in live_allocations(booking))
    assert mail.outbox == []

    payment = pay(env, booking, patient)
    assert payment.state == Payment.SUCCEEDED and payment.pk != first.pk
    booking.refresh_from_db()
    assert booking.state == Booking.CONFIRMED
    wait_webhook("payment_intent.succeeded", payment.intent_id)
    assert len(confirmations()) == 1


def test_3d_secure_payment_confirms_after_authentication(env, patient, django_user_model):
    booking = awaiting_payment(patient)
    payment = pay(env, booking, patient, CARD_3DS)
    assert payment.state == Payment.REQUIRES_ACTION
    assert payment.client_secret and payment.intent_id
    booking.refresh_from_db()
    assert booking.state == Booking.AWAITING_PAYMENT

    env.provider.authenticate_3ds(payment.intent_id, payment.client_secret)
    again = payments_service.pay_deposit(booking, patient, "pm_unused")  # the browser comes back
    assert again.pk == payment.pk and again.state == Payment.SUCCEEDED
    booking.refresh_from_db()
    assert booking.state == Booking.CONFIRMED
    wait_webhook("payment_intent.succeeded", payment.intent_id)
    booking.refresh_from_db()
    assert booking.state == Booking.CONFIRMED
    assert len(confirmations()) == 1

    # the same without the browser coming back: the webhook alone confirms
    other = user(django_user_model, "threeds")
    booking = awaiting_payment(other, days_ahead=8)
    payment = pay(env, booking, other, CARD_3DS)
    env.provider.authenticate_3ds(payment.intent_id, payment.client_secret)
    wait_webhook("payment_intent.succeeded", payment.intent_id)
    booking.refresh_from_db()
    assert booking.state == Booking.CONFIRMED
    assert len(confirmations()) == 2


def test_webhooks_are_processed_once_never_backwards_and_must_be_signed(env, patient):
    booking = awaiting_payment(patient)
    payment = pay(env, booking, patient)
    wait_webhook("payment_intent.succeeded", payment.intent_id)
    before = WebhookEvent.objects.count()

    payload = event_payload("payment_intent.succeeded", payment.intent_id, "succeeded", "evt_emhana_dup_1")
    first = post_webhook(env.webhook_url, payload, sign(payload))
    second = post_webhook(env.webhook_url, payload, sign(payload))
    assert first == (200, f"payment {payment.pk} succeeded")
    assert second == (200, "duplicate")
    assert WebhookEvent.objects.filter(event_id="evt_emhana_dup_1").count() == 1
    assert WebhookEvent.objects.count() == before + 1

    # a failure reported after the success does not move the payment backwards
    late = event_payload("payment_intent.payment_failed", payment.intent_id, "requires_payment_method")
    assert post_webhook(env.webhook_url, late, sign(late))[0] == 200
    failed = PaymentResult(status="failed", intent_id=payment.intent_id, amount=payment.amount,
                           currency=payment.currency.lower(), error_code="card_declined")
    payments_service.apply_result(payment, failed)
    payments_service.apply_result(payment, PaymentResult(status="requires_action", intent_id=payment.intent_id,
                                                         amount=payment.amount, currency="kzt"))
    payment.refresh_from_db()
    assert payment.state == Payment.SUCCEEDED and payment.error_code == ""
    booking.refresh_from_db()
    assert booking.state == Booking.CONFIRMED
    assert len(confirmations()) == 1

    # bad signatures are refused and not stored
    forged = event_payload("payment_intent.succeeded", payment.intent_id, "succeeded", "evt_emhana_forged")
    assert post_webhook(env.webhook_url, forged, sign(forged, "whsec_wrong"))[0] == 400
    assert post_webhook(env.webhook_url, forged, sign(payload))[0] == 400  # signature of another body
    assert post_webhook(env.webhook_url, forged, sign(forged, timestamp=int(time.time()) - 3600))[0] == 400
    assert post_webhook(env.webhook_url, forged, None)[0] == 400
    assert not WebhookEvent.objects.filter(event_id="evt_emhana_forged").exists()
    # an event for an intent we do not know is acknowledged and ignored
    stranger = event_payload("payment_intent.succeeded", "pi_unknown_123", "succeeded")
    assert post_webhook(env.webhook_url, stranger, sign(stranger)) == (200, "unknown intent")


def test_provider_down_keeps_the_booking_and_says_try_again(env, patient):
    booking = awaiting_payment(patient)
    pm = env.provider.create_test_payment_method(CARD_OK)
    with override_settings(STRIPE_API_BASE=f"http://127.0.0.1:{closed_port()}"):
        with pytest.raises(ProviderDown) as down:
            payments_service.pay_deposit(booking, patient, pm)
    assert "try again" in str(down.value.message).lower()
    assert errors.http_status(down.value) == 503
    booking.refresh_from_db()
    assert booking.state == Booking.AWAITING_PAYMENT
    assert live_allocations(booking).exists()
    assert Payment.objects.get(booking=booking).error_code == "provider_unavailable"
    # back up: the patient tries again and pays
    payment = pay(env, booking, patient)
    assert payment.state == Payment.SUCCEEDED
    wait_webhook("payment_intent.succeeded", payment.intent_id)
    booking.refresh_from_db()
    assert booking.state == Booking.CONFIRMED


def _let_payment_time_run_out(booking):
    past = timezone.now() - timedelta(minutes=1)
    Booking.objects.filter(pk=booking.pk).update(payment_due_at=past)
    Allocation.objects.filter(appointment__booking=booking, live=True).update(expires_at=past)


def test_late_payment_for_a_slot_someone_else_took_is_refunded(env, patient, django_user_model):
    offering = direct_offering()
    booking = awaiting_payment(patient, offering, days_ahead=6)
    start = booking.appointments.get().start
    payment = pay(env, booking, patient, CARD_3DS)  # started in time, 3-D Secure still open
    assert payment.state == Payment.REQUIRES_ACTION
    _let_payment_time_run_out(booking)

    rival = user(django_user_model, "rival")
    rival_hold = holds.place_hold(rival, offering, start, "rival")
    assert not live_allocations(booking).exists()

    env.provider.authenticate_3ds(payment.intent_id, payment.client_secret)  # money taken now: too late
    wait_webhook("payment_intent.succeeded", payment.intent_id)
    booking = wait_for(lambda: Booking.objects.filter(pk=booking.pk, state=Booking.REFUNDED).first(), timeout=10)
    payment.refresh_from_db()
    assert payment.state == Payment.SUCCEEDED
    refund = Refund.objects.get(payment=payment)
    assert refund.amount == payment.amount and refund.reason == "late_payment"
    assert refund.state == Refund.SUCCEEDED
    assert [e.to_state for e in booking.events.all()][-2:] == [Booking.EXPIRED, Booking.REFUNDED]
    assert Allocation.objects.filter(appointment__hold=rival_hold, live=True).exists()
    assert confirmations() == []

    # late, but nobody took the slot: the payment re-takes it and the booking is confirmed
    other = user(django_user_model, "lucky")
    booking = awaiting_payment(other, offering, days_ahead=13)
    payment = pay(env, booking, other, CARD_3DS)
    _let_payment_time_run_out(booking)
    env.provider.authenticate_3ds(payment.intent_id, payment.client_secret)
    wait_webhook("payment_intent.succeeded", payment.intent_id)
    booking.refresh_from_db()
    assert booking.state == Booking.CONFIRMED
    assert live_allocations(booking).exists()
    assert set(live_allocations(booking).values_list("expires_at", flat=True)) == {None}
    assert not Refund.objects.filter(payment=payment).exists()


def test_review_journey_request_quote_accept_pay(env, patient, django_user_model):
    offering = review_offering()
    coordinator = user(django_user_model, "coordinator")
    booking = review.request_treatment(patient, offering, note="MRI of the brain attached")
    assert booking.state == Booking.REQUESTED
    with pytest.raises(errors.BookingError):
        holds.place_hold(patient, offering, slot(offering).start, "no-review")
    review.start_review(booking, coordinator)

    tz = offering.clinic.tz
    window_start = (timezone.now() + timedelta(days=10)).astimezone(tz).date()
    quote = review.send_quote(booking, coordinator, price=offering.price, deposit=offering.deposit,
                                included="Planning MRI, treatment, follow-up", treatment_plan="Single fraction",
                                window_start=window_start, window_end=window_start + timedelta(days=21),
                                valid_until=timezone.now() + timedelta(days=7))
    booking.refresh_from_db()
    assert booking.state == Booking.QUOTED
    options = review.quote_slots(booking)
    assert options
    assert all(window_start <= o.start.astimezone(tz).date() <= quote.window_end for o in options)

    booking = review.accept_quote(patient, booking, options[0].start, "accept-1")
    assert booking.state == Booking.AWAITING_PAYMENT
    assert review.accept_quote(patient, booking, options[0].start, "accept-1").pk == booking.pk  # retried
    assert booking.appointments.get().start == options[0].start

    payment = pay(env, booking, patient)
    assert payment.amount == quote.deposit
    booking.refresh_from_db()
    assert booking.state == Booking.CONFIRMED
    wait_webhook("payment_intent.succeeded", payment.intent_id)
    assert [e.to_state for e in booking.events.all()] == [
        Booking.REQUESTED, Booking.UNDER_REVIEW, Booking.QUOTED, Booking.AWAITING_PAYMENT, Booking.CONFIRMED]
    subjects = [m.subject for m in mail.outbox]
    assert len(subjects) == 4, subjects  # requested, quoted, awaiting payment, confirmed
    assert len(confirmations()) == 1
