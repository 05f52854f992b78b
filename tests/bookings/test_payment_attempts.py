"""A payment attempt never sent to the provider is reused only for the amount it was made for."""

from __future__ import annotations

import pytest

from bookings.models import Booking, Payment
from bookings.payments import services as payments_service

from .helpers import pay

pytestmark = pytest.mark.django_db


def test_an_unsent_attempt_is_reused_while_the_deposit_is_the_same(patient, awaiting):
    first = payments_service.start_payment(awaiting, patient)
    assert payments_service.start_payment(awaiting, patient).pk == first.pk


def test_a_deposit_changed_after_an_unsent_attempt_is_charged_at_its_new_amount(
        patient_client, patient, awaiting, fake_provider):
    stale = payments_service.start_payment(awaiting, patient)  # e.g. the server stopped before asking the provider
    Booking.objects.filter(pk=awaiting.pk).update(deposit=awaiting.deposit + 1_500_000)  # extras chosen since
    assert pay(patient_client, awaiting).status_code == 200
    awaiting.refresh_from_db()
    assert awaiting.state == Booking.CONFIRMED
    paid = Payment.objects.get(booking=awaiting, state=Payment.SUCCEEDED)
    assert paid.pk != stale.pk and paid.amount == awaiting.deposit
    stale.refresh_from_db()
    assert stale.state == Payment.FAILED and stale.error_code == "amount_changed"
