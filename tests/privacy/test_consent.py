"""Consent per booking: asked before anything is shared, stored with its text, version and language; withdrawing
it cuts the clinic's access from then on, and the booking says why."""

from __future__ import annotations

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import reverse

from bookings.models import Booking, Consent, MedicalRecord, RecordAccess
from bookings.patients import consent

from .conftest import DIAGNOSIS, FILE_CONTENT, send_request

pytestmark = pytest.mark.django_db


def test_a_request_without_consent_is_refused_and_nothing_is_created(patient_client, patient, review_offering,
                                                                     private_root):
    response = patient_client.post(reverse("request_treatment", args=[review_offering.pk]), {
        "diagnosis": DIAGNOSIS, "prior_treatment": "none", "current_state": "well"})
    assert response.status_code == 400
    assert "consent" in response.context["form"].errors
    assert not Booking.objects.filter(user=patient).exists()


def test_the_consent_is_stored_with_the_text_version_and_language_the_patient_saw(patient_client, patient,
                                                                                    review_offering, private_root):
    form = patient_client.get(reverse("request_treatment", args=[review_offering.pk])).content.decode()
    assert review_offering.clinic.title in form and 'name="consent"' in form
    response = send_request(patient_client, review_offering, lang="ru")
    assert response.status_code == 302
    booking = Booking.objects.get(user=patient)
    given = Consent.objects.get(booking=booking)
    assert given.version == consent.VERSION and given.language == "ru" and given.withdrawn_at is None
    from django.utils import translation

    from catalog.models import ClinicPage

    with translation.override("ru"):  # the words shown on the Russian page, clinic name included
        shown = consent.text(ClinicPage.objects.get(pk=review_offering.clinic_id).title)
    assert given.text == shown


def test_withdrawing_consent_cuts_staff_access_and_the_booking_says_why(patient_client, staff_client, record,
                                                                        request_booking):
    url = reverse("record_download", args=[record.pk])
    assert staff_client.get(url).status_code == 200
    response = patient_client.post(reverse("privacy_consent", args=[request_booking.reference]),
                                   {"action": "withdraw", "next": "booking"})
    assert response.status_code == 302
    logged = RecordAccess.objects.count()
    assert staff_client.get(url).status_code == 404
    page = staff_client.get(reverse("desk:booking", args=[request_booking.pk])).content.decode()
    assert DIAGNOSIS not in page and "histology" not in page and "SAIDOV" not in page
    assert "withdrew their consent" in page
    assert RecordAccess.objects.count() == logged, "nothing was read, nothing is logged"
    detail = patient_client.get(reverse("booking_detail", args=[request_booking.reference])).content.decode()
    assert "Not shared" in detail
    # given again: the clinic sees it again, and the history keeps both
    patient_client.post(reverse("privacy_consent", args=[request_booking.reference]), {"action": "give", "agree": "1"})
    assert staff_client.get(url).status_code == 200
    assert Consent.objects.filter(booking=request_booking).count() == 2


def test_attaching_a_file_to_a_booking_without_consent_asks_for_it(patient_client, patient, request_booking,
                                                                  private_root):
    consent.withdraw(request_booking, patient)
    upload = {"file": SimpleUploadedFile("scan.pdf", FILE_CONTENT), "booking": request_booking.pk}
    response = patient_client.post(reverse("patient_records"), upload)
    assert response.status_code == 200 and "consent" in response.context["form"].errors
    assert MedicalRecord.objects.filter(owner=patient).count() == 1
    upload = {"file": SimpleUploadedFile("scan.pdf", FILE_CONTENT), "booking": request_booking.pk, "consent": "on"}
    assert patient_client.post(reverse("patient_records"), upload).status_code == 302
    assert consent.has_consent(request_booking)


def test_only_the_patient_can_change_their_consent(other_client_factory, request_booking):
    client = other_client_factory()
    response = client.post(reverse("privacy_consent", args=[request_booking.reference]), {"action": "withdraw"})
    assert response.status_code == 404
    assert consent.has_consent(request_booking)


@pytest.fixture
def other_client_factory(django_user_model):
    from django.test import Client

    def make():
        user = django_user_model.objects.create_user("intruder", "intruder@example.com", "a-long-password-5")
        c = Client()
        c.force_login(user)
        return c

    return make
