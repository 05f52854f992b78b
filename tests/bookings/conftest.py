"""Fixtures shared by the booking tests: a direct and a review-first offering, a booking awaiting payment,
a confirmed one, a quoted one, another patient, and a fake payment provider."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest
from django.core.files.storage import FileSystemStorage
from django.utils import timezone

from bookings.models import Booking, MedicalRecord
from bookings.payments import services as payments_service
from bookings.review import services as review
from catalog.models import Offering

from .helpers import QUESTIONNAIRE, FakeProvider, book, free_options, local_day, pay


@pytest.fixture
def offering():
    offering = (Offering.objects.filter(review_required=False, resource_links__isnull=False, is_active=True,
                                        kind=Offering.TREATMENT)
                .select_related("clinic", "page").distinct().order_by("id").first())
    assert offering is not None, "the demo data has a direct offering with resources"
    return offering


@pytest.fixture
def review_offering():
    # a treatment with a deposit (second opinions are reviewed too, but free); ordered: PostgreSQL has no
    # natural order, and its first row was a second opinion
    offering = (Offering.objects.filter(review_required=True, resource_links__isnull=False, is_active=True,
                                        kind=Offering.TREATMENT, deposit__gt=0)
                .select_related("clinic", "page").distinct().order_by("id").first())
    assert offering is not None
    return offering


@pytest.fixture
def other_patient(django_user_model):
    return django_user_model.objects.create_user("other-pat", "other.patient@example.com", "a-long-password-2")


@pytest.fixture
def other_client(client, other_patient):
    from django.test import Client

    c = Client()
    c.force_login(other_patient)
    return c


@pytest.fixture
def fake_provider(monkeypatch):
    provider = FakeProvider()
    monkeypatch.setattr(payments_service, "get_provider", lambda: provider)
    return provider


@pytest.fixture
def awaiting(patient_client, patient, offering):
    option = free_options(offering)[0]
    response = book(patient_client, offering, option)
    assert response.status_code == 302
    return Booking.objects.get(user=patient)


@pytest.fixture
def confirmed(patient_client, awaiting, fake_provider):
    response = pay(patient_client, awaiting)
    assert response.status_code == 200, response.content
    awaiting.refresh_from_db()
    assert awaiting.state == Booking.CONFIRMED
    return awaiting


@pytest.fixture
def quoted(patient, review_offering):
    booking = review.request_treatment(patient, review_offering, questionnaire=QUESTIONNAIRE)
    options = free_options(review_offering, days=60)
    day = local_day(review_offering, options[0])
    review.send_quote(booking, None, price=review_offering.price, deposit=review_offering.deposit,
                        included="Treatment\nFollow-up MRI", treatment_plan="One session",
                        window_start=day, window_end=day + timedelta(days=14),
                        valid_until=timezone.now() + timedelta(days=7))
    booking.refresh_from_db()
    return booking


@pytest.fixture
def private_root(settings, tmp_path, monkeypatch):
    """Private storage in a temporary folder, and a separate temporary MEDIA_ROOT to check against.

    The model's storage is built once at import with the location of that moment, so it is replaced
    here too (see the note to the lead: a settings override alone does not move it).
    """
    settings.PRIVATE_MEDIA_ROOT = tmp_path / "private"
    settings.MEDIA_ROOT = tmp_path / "media"
    field = MedicalRecord._meta.get_field("file")
    monkeypatch.setattr(field, "storage", FileSystemStorage(location=settings.PRIVATE_MEDIA_ROOT, base_url=None))
    return Path(settings.PRIVATE_MEDIA_ROOT)
