"""Moving a confirmed booking through a new hold: the new dates are taken first, then the old released."""

from datetime import timedelta

import pytest
from django.core import mail
from django.utils import timezone

from bookings import errors
from bookings.engine import holds, slots
from bookings.lifecycle import services as lifecycle
from bookings.models import Allocation, Appointment, Booking, BookingEvent
from catalog.models import Offering

pytestmark = pytest.mark.django_db


def offering():
    return (Offering.objects.filter(review_required=False, sessions=1, resource_links__isnull=False)
            .select_related("clinic__city", "page").order_by("id").first())


def options(o, days):
    day = timezone.now().date() + timedelta(days=days)
    found = slots.offering_slots(o, day, day + timedelta(days=7))
    assert len(found) >= 2
    return found


def confirmed(user, o, start):
    hold = holds.place_hold(user, o, start, f"first-{start:%s}")
    booking = lifecycle.create_booking_from_hold(user, hold)
    return lifecycle.confirm_paid(booking)


def test_moving_a_booking_frees_the_old_time_and_books_the_new(patient, django_capture_on_commit_callbacks):
    o = offering()
    old, new = options(o, 20)[0], options(o, 27)[3]
    booking = confirmed(patient, o, old.start)
    mail.outbox.clear()
    with django_capture_on_commit_callbacks(execute=True):
        moved = lifecycle.reschedule(patient, booking, new.start, "move-1")
    assert moved.state == Booking.CONFIRMED
    booked = list(moved.appointments.filter(status=Appointment.BOOKED))
    assert [a.start for a in booked] == [new.start]
    assert Allocation.objects.filter(appointment__in=booked, live=True, expires_at__isnull=True).exists()
    assert not Allocation.objects.filter(appointment__booking=booking, appointment__start=old.start, live=True).exists()
    day = old.start.astimezone(o.clinic.tz).date()
    assert old.start in [x.start for x in slots.offering_slots(o, day, day)]  # free for others again
    assert BookingEvent.objects.filter(booking=booking, note__startswith="moved from").exists()
    sent = [m for m in mail.outbox if booking.reference in m.subject]
    assert len(sent) == 1 and any(a[2] == "text/calendar" for a in sent[0].attachments)
    assert lifecycle.reschedule(patient, booking, new.start, "move-1").pk == booking.pk  # a retry changes nothing
    assert moved.appointments.filter(status=Appointment.BOOKED).count() == 1


def test_moving_to_a_taken_time_keeps_the_old_dates(patient, django_user_model):
    o = offering()
    old, taken = options(o, 20)[0], options(o, 27)[1]
    booking = confirmed(patient, o, old.start)
    rival = django_user_model.objects.create_user("rival", "rival@example.com", "pw-rival-12345")
    holds.place_hold(rival, o, taken.start, "rival")
    with pytest.raises(errors.SlotTaken) as lost:
        lifecycle.reschedule(patient, booking, taken.start, "move-2")
    assert lost.value.alternatives
    assert [a.start for a in booking.appointments.filter(status=Appointment.BOOKED)] == [old.start]


def test_dates_cannot_be_moved_here_in_the_last_days(patient):
    o = offering()
    soon = options(o, 2)[0]
    booking = confirmed(patient, o, soon.start)
    if soon.start - timezone.now() >= timedelta(days=lifecycle.RESCHEDULE_MIN_DAYS):
        pytest.fail("the test needs a slot within the last days before treatment")
    assert not lifecycle.can_reschedule(booking)
    with pytest.raises(errors.BookingError) as refused:
        lifecycle.reschedule(patient, booking, options(o, 20)[0].start, "move-3")
    assert refused.value.code == "reschedule"


def test_the_patient_moves_dates_from_the_booking_page(patient_client, patient):
    o = offering()
    old, new = options(o, 20)[0], options(o, 27)[2]
    booking = confirmed(patient, o, old.start)
    page = patient_client.get(f"/en/my/bookings/{booking.reference}/")
    assert f"/en/my/bookings/{booking.reference}/move/" in page.content.decode()
    picker = patient_client.get(f"/en/my/bookings/{booking.reference}/move/?week={new.start.date().isoformat()}")
    assert picker.status_code == 200 and "You are moving booking" in picker.content.decode()
    response = patient_client.post(f"/en/my/bookings/{booking.reference}/move/",
                                   {"start": new.start.isoformat(), "client_key": "page-move"})
    assert response.status_code == 302
    assert booking.appointments.get(status=Appointment.BOOKED).start == new.start
    other = patient_client.post(f"/en/my/bookings/{booking.reference}/move/", {"start": "not a time",
                                                                               "client_key": "x"})
    assert other.status_code == 400
    assert booking.appointments.get(status=Appointment.BOOKED).start == new.start


def test_the_api_moves_a_booking(patient_client, patient):
    o = offering()
    old, new = options(o, 20)[0], options(o, 27)[4]
    booking = confirmed(patient, o, old.start)
    response = patient_client.post(f"/api/v1/bookings/{booking.pk}/reschedule",
                                   {"start": new.start.isoformat(), "client_key": "api-move"},
                                   content_type="application/json")
    assert response.status_code == 200, response.content
    data = response.json()
    assert [a["start"] for a in data["appointments"] if a["status"] == "booked"] == [
        new.start.astimezone(o.clinic.tz).isoformat()]
