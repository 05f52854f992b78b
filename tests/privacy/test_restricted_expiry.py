"""What erasure restricted is deleted by the nightly retention once its end date has passed: the booking, its
records and their encrypted files (after the commit), its payments and the name and date of birth it kept; the
anonymised account once nothing is left. Before the end date nothing is touched; a second run changes nothing."""

from __future__ import annotations

import logging
from datetime import timedelta

import pytest
from django.contrib.auth import get_user_model
from django.urls import reverse
from django.utils import timezone

from bookings.models import (
    Booking,
    BookingEvent,
    Consent,
    MedicalRecord,
    Payment,
    RecordAccess,
    Refund,
    Restriction,
    VisaRefusal,
)
from bookings.patients import retention
from bookings.patients.privacy import erase_account

from .conftest import FILE_CONTENT, send_request

pytestmark = pytest.mark.django_db

NOTHING = {"restricted_expired": 0, "restricted_records_deleted": 0, "restricted_payments_deleted": 0,
           "erased_accounts_deleted": 0}


def pay(booking):
    payment = Payment.objects.create(booking=booking, intent_id=f"pi_x{booking.pk}", idempotency_key=f"kx{booking.pk}",
                                     amount=1000, currency="KZT", state="succeeded")
    Refund.objects.create(payment=payment, amount=100, currency="KZT", reason="goodwill", state="succeeded",
                          idempotency_key=f"rx{booking.pk}")
    Booking.objects.filter(pk=booking.pk).update(state=Booking.CONFIRMED)


@pytest.fixture
def erased(patient_client, patient, profile, review_offering, private_root, staff_client):
    """A patient with two bookings of care given (each paid, with a medical file, read by the clinic), then erased:
    both restricted. Returns (expired booking, kept booking), the first one's end date yesterday, the second's today."""
    for diagnosis in ("first treated case", "second treated case"):
        assert send_request(patient_client, review_offering, diagnosis=diagnosis).status_code == 302
    expired, kept = Booking.objects.filter(user=patient).order_by("id")
    for booking in (expired, kept):
        pay(booking)
        assert staff_client.get(reverse("desk:booking", args=[booking.pk])).status_code == 200
    letter = MedicalRecord.objects.get(booking=expired)
    VisaRefusal.objects.create(booking=expired, letter=letter, note="refused")  # its letter is protected
    erase_account(patient)
    today = timezone.now().date()
    Restriction.objects.filter(booking=expired).update(keep_until=today - timedelta(days=1))
    Restriction.objects.filter(booking=kept).update(keep_until=today)  # kept through its end date
    return expired, kept


def files(root):
    return sorted(p for p in root.rglob("*") if p.is_file())


def test_the_nightly_run_deletes_restricted_data_past_its_end_date_with_its_files(
        erased, patient, private_root, django_capture_on_commit_callbacks, caplog):
    expired, kept = erased
    expired_file = private_root / MedicalRecord.objects.get(booking=expired).file.name
    kept_record = MedicalRecord.objects.get(booking=kept)
    assert expired_file.exists() and len(files(private_root)) == 2

    with caplog.at_level(logging.INFO, logger="emhana.privacy"):
        with django_capture_on_commit_callbacks(execute=False) as callbacks:
            result = retention.apply_retention()  # the Celery beat task, run as the worker would
        # the rows are gone, the file only goes once the transaction has committed
        assert not Booking.objects.filter(pk=expired.pk).exists() and expired_file.exists()
        for callback in callbacks:
            callback()
    assert not expired_file.exists()

    # recorded in the run's result (the task's return value) and the log, with counts only
    assert result["restricted_expired"] == 1 and result["restricted_records_deleted"] == 1
    assert result["restricted_payments_deleted"] == 1 and result["erased_accounts_deleted"] == 0
    logged = " ".join(r.getMessage() for r in caplog.records)
    assert "1 restricted bookings past their end date deleted" in logged
    for personal in (expired.reference, kept.reference, "SAIDOV", "AMIR", "treated case", "example.com"):
        assert personal not in logged

    # everything of the expired booking is gone: booking, restriction (name, birth date), files, payments, log
    assert not Restriction.objects.filter(booking_id=expired.pk).exists()
    assert not MedicalRecord.objects.filter(booking_id=expired.pk).exists()
    assert not Payment.objects.filter(booking_id=expired.pk).exists()
    assert not Refund.objects.filter(payment__booking_id=expired.pk).exists()
    assert not VisaRefusal.objects.filter(booking_id=expired.pk).exists()
    assert not Consent.objects.filter(booking_id=expired.pk).exists()
    assert not BookingEvent.objects.filter(booking_id=expired.pk).exists()
    assert not RecordAccess.objects.filter(booking_id=expired.pk).exists()
    assert not RecordAccess.objects.filter(patient=patient, booking__isnull=True).exists()

    # the one still within its end date is untouched, file included, and so is the anonymised account
    assert Restriction.objects.filter(booking=kept).exists() and Payment.objects.filter(booking=kept).exists()
    assert RecordAccess.objects.filter(booking=kept).exists()
    with MedicalRecord.objects.get(pk=kept_record.pk).file.open("rb") as handle:
        assert handle.read() == FILE_CONTENT
    assert get_user_model().objects.filter(pk=patient.pk, is_active=False).exists()

    # a second run changes nothing
    with django_capture_on_commit_callbacks(execute=True):
        again = retention.apply()
    assert {k: again[k] for k in NOTHING} == NOTHING
    assert Booking.objects.filter(pk=kept.pk).exists() and len(files(private_root)) == 1


def test_after_the_last_end_date_the_anonymised_account_goes_too(erased, patient, private_root,
                                                                 django_capture_on_commit_callbacks):
    expired, kept = erased
    later = timezone.now() + timedelta(days=1)  # the kept booking's end date has passed too
    with django_capture_on_commit_callbacks(execute=True):
        result = retention.expire_restricted(later)
    assert result == {"restricted_expired": 2, "restricted_records_deleted": 2, "restricted_payments_deleted": 2,
                      "erased_accounts_deleted": 1}
    assert not Booking.objects.filter(pk__in=[expired.pk, kept.pk]).exists()
    assert not get_user_model().objects.filter(pk=patient.pk).exists()
    assert not RecordAccess.objects.filter(patient_id=patient.pk).exists()
    assert files(private_root) == []
    with django_capture_on_commit_callbacks(execute=True):
        assert retention.expire_restricted(later) == NOTHING


def test_other_patients_and_unrestricted_bookings_are_never_touched(erased, django_user_model, review_offering,
                                                                    private_root,
                                                                    django_capture_on_commit_callbacks):
    from django.test import Client

    other = django_user_model.objects.create_user("other-expiry", "other.expiry@example.com", "a-long-password-9")
    client = Client()
    client.force_login(other)
    assert send_request(client, review_offering, diagnosis="someone else's case").status_code == 302
    booking = Booking.objects.get(user=other)
    pay(booking)  # care given, but the account was not erased: no restriction, no end date
    with django_capture_on_commit_callbacks(execute=True):
        retention.expire_restricted(timezone.now() + timedelta(days=365 * 100))
    assert Booking.objects.filter(pk=booking.pk).exists() and Payment.objects.filter(booking=booking).exists()
    with MedicalRecord.objects.get(booking=booking).file.open("rb") as handle:
        assert handle.read() == FILE_CONTENT
    assert django_user_model.objects.filter(pk=other.pk, is_active=True).exists()
