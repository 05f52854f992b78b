"""Fixtures for the patient-data tests: private storage in a temporary folder (the real, encrypting storage),
a review-first offering, a patient with a complete profile, clinic staff with two-factor set up, and a request
sent through the page with its consent, answers and a medical file."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import pytest
from allauth.mfa.models import Authenticator
from django.urls import reverse

from bookings.models import Booking, ClinicMembership, Companion, MedicalRecord, PatientProfile
from bookings.patients.models import PrivateFileStorage
from catalog.models import Offering

DIAGNOSIS = "Glomus jugulare tumour, 3.2 cm, left (MRI 12 March 2026)"
PASSPORT = "FA9876543"
COMPANION_PASSPORT = "FA1112223"
FILE_CONTENT = b"%PDF-1.4\n% Confidential: histology says paraganglioma grade 1\n%%EOF\n"
PASSWORD = "a-long-password-1"


@pytest.fixture
def private_root(settings, tmp_path, monkeypatch):
    settings.PRIVATE_MEDIA_ROOT = tmp_path / "private"
    storage = PrivateFileStorage()
    from bookings.models import DataExport

    monkeypatch.setattr(MedicalRecord._meta.get_field("file"), "storage", storage)
    monkeypatch.setattr(DataExport._meta.get_field("file"), "storage", storage)
    return Path(settings.PRIVATE_MEDIA_ROOT)


@pytest.fixture
def review_offering():
    offering = (Offering.objects.filter(review_required=True, resource_links__isnull=False, is_active=True)
                .select_related("clinic", "page").order_by("id").first())
    assert offering is not None
    return offering


@pytest.fixture
def profile(patient):
    profile = PatientProfile.objects.create(
        user=patient, given_names="AMIR", family_name="SAIDOV", date_of_birth=date(1971, 5, 17), citizenship="TJ",
        passport_number=PASSPORT, passport_expiry=date(2032, 1, 1), preferred_language="ru")
    Companion.objects.create(profile=profile, given_names="ZARINA", family_name="SAIDOVA",
                             date_of_birth=date(1975, 2, 2), citizenship="TJ", passport_number=COMPANION_PASSPORT,
                             passport_expiry=date(2031, 1, 1), relationship="wife")
    return profile


def with_mfa(user):
    Authenticator.objects.get_or_create(user=user, type=Authenticator.Type.TOTP, defaults={"data": {"secret": "x"}})
    return user


@pytest.fixture
def staff(django_user_model, review_offering):
    user = django_user_model.objects.create_user("coord-privacy", "coord.privacy@clinic.example", PASSWORD)
    ClinicMembership.objects.create(user=user, clinic=review_offering.clinic)
    return with_mfa(user)


@pytest.fixture
def staff_client(staff):
    from django.test import Client

    c = Client()
    c.force_login(staff)
    return c


def send_request(client, offering, diagnosis=DIAGNOSIS, content=FILE_CONTENT, name="histology.pdf", lang="en"):
    from django.core.files.uploadedfile import SimpleUploadedFile
    from django.utils import translation

    with translation.override(lang):
        url = reverse("request_treatment", args=[offering.pk])
    return client.post(url, {
        "diagnosis": diagnosis, "prior_treatment": "embolisation 2025", "current_state": "tinnitus, walks",
        "note": "Prefer May", "consent": "1",
        "records": [SimpleUploadedFile(name, content, content_type="application/pdf")]})


@pytest.fixture
def request_booking(patient_client, patient, profile, review_offering, private_root) -> Booking:
    response = send_request(patient_client, review_offering)
    assert response.status_code == 302, response.context["form"].errors if response.context else response
    return Booking.objects.get(user=patient)


@pytest.fixture
def record(request_booking) -> MedicalRecord:
    return MedicalRecord.objects.get(booking=request_booking)
