"""Export (everything of the patient, nothing of anyone else), erasure (nothing left but what the law keeps,
restricted to its clinic) and retention (old unconfirmed requests purged, unused accounts warned then erased)."""

from __future__ import annotations

import io
import json
import zipfile
from datetime import date, timedelta

import pytest
from django.contrib.auth import get_user_model
from django.core import mail
from django.urls import reverse
from django.utils import timezone

from bookings.lifecycle import services as lifecycle
from bookings.models import (
    Booking,
    Companion,
    Consent,
    DataExport,
    MedicalRecord,
    Message,
    PatientProfile,
    Payment,
    RecordAccess,
    Refund,
    Restriction,
    RetentionNotice,
)
from bookings.patients import export, retention

from .conftest import COMPANION_PASSPORT, DIAGNOSIS, FILE_CONTENT, PASSPORT, PASSWORD, send_request

pytestmark = pytest.mark.django_db
OTHER_DIAGNOSIS = "Pituitary adenoma, 9 mm — someone else's"


@pytest.fixture
def other(django_user_model, review_offering, private_root):
    from django.test import Client

    user = django_user_model.objects.create_user("other-privacy", "other.privacy@example.com", "a-long-password-7")
    PatientProfile.objects.create(user=user, given_names="OTHER", family_name="PERSON", passport_number="ZZ0000001")
    c = Client()
    c.force_login(user)
    assert send_request(c, review_offering, diagnosis=OTHER_DIAGNOSIS, content=b"%PDF-other person file",
                        name="other.pdf").status_code == 302
    return user


def pay(booking, amount=1000):
    payment = Payment.objects.create(booking=booking, intent_id=f"pi_{booking.pk}", idempotency_key=f"k{booking.pk}",
                                     amount=amount, currency="KZT", state="succeeded")
    Refund.objects.create(payment=payment, amount=100, currency="KZT", reason="goodwill", state="succeeded",
                          idempotency_key=f"r{booking.pk}")
    Booking.objects.filter(pk=booking.pk).update(state=Booking.CONFIRMED)
    return payment


def read_export(client, patient, capture):
    with capture(execute=True):  # the task is queued when the request's transaction commits
        response = client.post(reverse("privacy_export"))
    assert response.status_code == 302
    ready = DataExport.objects.get(user=patient)
    assert ready.status == DataExport.READY  # built by the task (eager here)
    download = client.get(reverse("privacy_export_download", args=[ready.pk]))
    assert download.status_code == 200 and download["Content-Type"] == "application/zip"
    return ready, zipfile.ZipFile(io.BytesIO(b"".join(download.streaming_content)))


def test_export_holds_everything_of_the_patient_and_nothing_of_anyone_else(
        patient_client, patient, request_booking, record, staff_client, other, private_root,
        django_capture_on_commit_callbacks):
    lifecycle.post_message(request_booking, patient, "When can I come?", from_clinic=False)
    pay(request_booking)
    staff_client.get(reverse("desk:booking", args=[request_booking.pk]))
    ready, archive = read_export(patient_client, patient, django_capture_on_commit_callbacks)
    data = json.loads(archive.read("data.json"))
    assert data["account"]["email"] == patient.email
    assert data["profile"]["passport_number"] == PASSPORT and data["profile"]["date_of_birth"] == "1971-05-17"
    assert [c["passport_number"] for c in data["companions"]] == [COMPANION_PASSPORT]
    (booking,) = data["bookings"]
    assert booking["questionnaire"]["diagnosis"] == DIAGNOSIS and booking["request_note"] == "Prefer May"
    assert [m["body"] for m in booking["messages"]] == ["When can I come?"]
    assert booking["payments"][0]["amount"] == 1000 and booking["refunds"][0]["amount"] == 100
    assert booking["consents"][0]["version"] and booking["events"]
    assert {a["what"] for a in data["access_log"]} == {"questionnaire", "passport"}
    (entry,) = data["medical_records"]
    assert archive.read(entry["file_in_zip"]) == FILE_CONTENT
    everything = b"".join(archive.read(n) for n in archive.namelist())
    for foreign in (OTHER_DIAGNOSIS.encode(), b"other person file", b"ZZ0000001", other.email.encode()):
        assert foreign not in everything
    # announced by email with the link; the link is the patient's only and expires
    (message,) = [m for m in mail.outbox if patient.email in m.to]
    assert reverse("privacy_export_download", args=[ready.pk]).split("/my/")[1] in message.body
    from django.test import Client

    stranger = Client()
    stranger.force_login(other)
    assert stranger.get(reverse("privacy_export_download", args=[ready.pk])).status_code == 404
    DataExport.objects.filter(pk=ready.pk).update(expires_at=timezone.now() - timedelta(seconds=1))
    assert patient_client.get(reverse("privacy_export_download", args=[ready.pk])).status_code == 404
    stored = ready.file.name
    assert export.expire_exports() == 1 and not ready.file.storage.exists(stored)


def reauthenticate(client):
    response = client.post(reverse("account_reauthenticate"), {"password": PASSWORD})
    assert response.status_code == 302, response.content


def test_erasure_leaves_nothing_but_the_restricted_records_of_care_given(
        patient_client, patient, review_offering, profile, private_root, staff_client, other):
    for diagnosis in ("kept: treated case", "gone: only a request"):
        assert send_request(patient_client, review_offering, diagnosis=diagnosis).status_code == 302
    treated, request = Booking.objects.filter(user=patient).order_by("id")
    pay(treated)
    lifecycle.post_message(request, patient, "gone message", from_clinic=False)
    staff_client.get(reverse("desk:booking", args=[request.pk]))
    kept_record = MedicalRecord.objects.get(booking=treated)
    gone_record = MedicalRecord.objects.get(booking=request)
    gone_path = private_root / gone_record.file.name

    page = patient_client.get(reverse("privacy_erase"))
    assert page.status_code == 302 and "reauthenticate" in page["Location"]  # asked who it is first
    reauthenticate(patient_client)
    page = patient_client.get(reverse("privacy_erase"))
    assert page.status_code == 200 and treated.reference in page.content.decode()
    response = patient_client.post(reverse("privacy_erase"), {"confirm": patient.email})
    assert response.status_code == 200

    user = get_user_model().objects.get(pk=patient.pk)
    assert not user.is_active and patient.email not in user.email and not user.has_usable_password()
    assert not PatientProfile.objects.filter(user=user).exists() and not Companion.objects.filter(
        profile__user=user).exists()
    assert list(Booking.objects.filter(user=user)) == [treated]
    assert not MedicalRecord.objects.filter(pk=gone_record.pk).exists() and not gone_path.exists()
    assert not Message.objects.filter(booking__user=user).exists()
    assert not RecordAccess.objects.filter(patient=user).exclude(booking=treated).exists()
    assert not Consent.objects.filter(user=user).exclude(booking=treated).exists()
    restriction = Restriction.objects.get(booking=treated)
    assert restriction.keep_until > date.today() + timedelta(days=365 * 20) and "law" in restriction.reason
    assert json.loads(restriction.identity)["family_name"] == "SAIDOV"
    with kept_record.file.open("rb") as handle:
        assert handle.read() == FILE_CONTENT
    assert Payment.objects.filter(booking=treated).exists()
    # only the clinic sees what is kept, marked as restricted
    desk = staff_client.get(reverse("desk:booking", args=[treated.pk])).content.decode()
    assert "Restricted" in desk and "kept: treated case" in desk
    assert patient_client.get(reverse("patient_dashboard")).status_code == 302  # signed out
    # the other patient is untouched
    assert Booking.objects.filter(user=other).count() == 1 and MedicalRecord.objects.filter(owner=other).count() == 1


def test_erasing_an_account_without_care_given_deletes_the_user(patient, request_booking, private_root):
    from bookings.patients.privacy import erase_account

    erase_account(patient)
    assert not get_user_model().objects.filter(pk=patient.pk).exists()
    assert not Booking.objects.filter(pk=request_booking.pk).exists()
    assert not [p for p in private_root.rglob("*") if p.is_file()]


def test_old_unconfirmed_requests_are_purged_with_their_files_idempotently(patient, request_booking, record,
                                                                           private_root, settings, other):
    settings.RETENTION_UNCONFIRMED_DAYS = 30
    paid = Booking.objects.get(user=other)
    pay(paid)
    Booking.objects.filter(pk__in=[request_booking.pk, paid.pk]).update(
        updated_at=timezone.now() - timedelta(days=31))
    path = private_root / record.file.name
    assert path.exists()
    assert retention.purge_unconfirmed() == 1
    assert not Booking.objects.filter(pk=request_booking.pk).exists() and not path.exists()
    assert Booking.objects.filter(pk=paid.pk).exists()
    assert retention.purge_unconfirmed() == 0


def test_unused_accounts_are_warned_then_erased_unless_the_patient_signs_in(patient, profile, django_user_model,
                                                                           settings, staff):
    settings.RETENTION_INACTIVE_DAYS, settings.RETENTION_WARNING_DAYS = 365, 30
    long_ago = timezone.now() - timedelta(days=400)
    returning = django_user_model.objects.create_user("returning", "returning@example.com", "a-long-password-8")
    django_user_model.objects.filter(pk__in=[patient.pk, returning.pk, staff.pk]).update(last_login=long_ago)
    result = retention.warn_and_erase_inactive()
    assert result == {"warned": 2, "erased": 0}
    assert [m for m in mail.outbox if patient.email in m.to] and not [m for m in mail.outbox if staff.email in m.to]
    assert retention.warn_and_erase_inactive() == {"warned": 0, "erased": 0}
    django_user_model.objects.filter(pk=returning.pk).update(last_login=timezone.now())
    later = timezone.now() + timedelta(days=31)
    assert retention.warn_and_erase_inactive(later) == {"warned": 0, "erased": 1}
    assert not django_user_model.objects.filter(pk=patient.pk).exists()
    assert django_user_model.objects.filter(pk=returning.pk, is_active=True).exists()
    assert not RetentionNotice.objects.filter(user=returning).exists()
    assert django_user_model.objects.filter(pk=staff.pk, is_active=True).exists()  # staff are never erased here
    assert retention.warn_and_erase_inactive(later) == {"warned": 0, "erased": 0}


def test_the_retention_task_is_scheduled(settings):
    schedule = {entry["task"] for entry in settings.CELERY_BEAT_SCHEDULE.values()}
    assert "bookings.tasks.apply_retention" in schedule
    from portal.celery import app

    app.loader.import_default_modules()
    assert "bookings.tasks.apply_retention" in app.tasks and "bookings.tasks.build_patient_export" in app.tasks
