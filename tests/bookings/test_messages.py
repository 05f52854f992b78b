"""Messages between patient and clinic: each message from the clinic reaches the patient by email."""

import pytest
from django.core import mail

from bookings import errors
from bookings.lifecycle import services as lifecycle
from bookings.models import Booking
from bookings.review import services as review
from catalog.models import Offering

pytestmark = pytest.mark.django_db


def test_every_clinic_message_is_emailed_and_patient_messages_are_kept(patient, django_user_model,
                                                                       django_capture_on_commit_callbacks):
    offering = (Offering.objects.filter(review_required=True, kind=Offering.TREATMENT)
                .select_related("clinic", "page").order_by("id").first())
    booking = review.request_treatment(patient, offering, note="MRI attached", questionnaire={"diagnosis": "AVM"})
    coordinator = django_user_model.objects.create_user("coord", "coord@example.com", "pw-coord-12345")
    mail.outbox.clear()
    with django_capture_on_commit_callbacks(execute=True):
        lifecycle.post_message(booking, coordinator, "Please send the angiography.", from_clinic=True)
        lifecycle.post_message(booking, coordinator, "Thank you, received.", from_clinic=True)
        lifecycle.post_message(booking, patient, "Sent it today.", from_clinic=False)
    to_patient = [m for m in mail.outbox if m.to == [patient.email] and booking.reference in m.subject]
    assert len(to_patient) == 2
    assert list(booking.messages.values_list("from_clinic", flat=True)) == [True, True, False]
    with pytest.raises(errors.BookingError):
        lifecycle.post_message(booking, patient, "   ", from_clinic=False)
    assert Booking.objects.get(pk=booking.pk).messages.count() == 3
