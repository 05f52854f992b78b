"""Helpers for the booking tests: free slots, booking and paying through the pages, a fake payment provider."""

from __future__ import annotations

import json
import uuid
from datetime import date, timedelta

from django.urls import reverse
from django.utils import timezone

from bookings import services
from bookings.payments import PaymentResult, RefundResult

QUESTIONNAIRE = {"diagnosis": "Vestibular schwannoma, 2.1 cm, MRI March 2026",
                 "prior_treatment": "none", "current_state": "Hearing loss on the left, walks unaided"}


def free_options(offering, days=45):
    today = timezone.now().astimezone(offering.clinic.tz).date()
    options = services.offering_slots(offering, today, today + timedelta(days=days))
    assert options, f"{offering} has free slots in the next {days} days"
    return options


def local_day(offering, option) -> date:
    return option.start.astimezone(offering.clinic.tz).date()


def book(client, offering, option, key=None, lang=None):
    from django.utils import translation

    with translation.override(lang or translation.get_language()):
        url = reverse("book_offering", args=[offering.pk])
    return client.post(url, {"start": option.start.isoformat(), "client_key": key or uuid.uuid4().hex})


class FakeProvider:
    publishable_key = "pk_test_fake"

    def __init__(self, status="succeeded"):
        self.status = status
        self.refunds = []

    def create_and_confirm(self, *, amount, currency, payment_method, idempotency_key, metadata=None):
        secret = "pi_fake_secret_x" if self.status == "requires_action" else None
        return PaymentResult(status=self.status, intent_id=f"pi_{uuid.uuid4().hex[:16]}", amount=amount,
                             currency=currency, client_secret=secret,
                             error_code="card_declined" if self.status == "failed" else None)

    def retrieve(self, intent_id):
        return PaymentResult(status="succeeded", intent_id=intent_id, amount=0, currency="kzt")

    def refund(self, *, intent_id, amount, idempotency_key, metadata=None):
        self.refunds.append(amount)
        return RefundResult(refund_id=f"re_{uuid.uuid4().hex[:10]}", status="succeeded", amount=amount,
                            currency="kzt")


def pay(client, booking):
    return client.post(f"/api/v1/bookings/{booking.pk}/payments", data=json.dumps({"payment_method": "pm_card"}),
                       content_type="application/json")
