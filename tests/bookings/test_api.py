"""The booking API as a phone app or partner uses it: allauth app tokens, slots, holds, errors; and the
reminder and sweep tasks."""

from datetime import timedelta

import pytest
from django.core import mail
from django.utils import timezone

from bookings import tasks
from bookings.engine import holds, slots
from bookings.lifecycle import services as lifecycle
from bookings.models import Allocation, Appointment, Booking, Hold
from catalog.models import Offering

pytestmark = pytest.mark.django_db


def direct_offering():
    return (Offering.objects.filter(review_required=False, sessions=1, resource_links__isnull=False)
            .select_related("clinic__city", "page").order_by("id").first())


def first_slot(offering, days=10):
    day = timezone.now().date() + timedelta(days=days)
    options = slots.offering_slots(offering, day, day + timedelta(days=7))
    assert options
    return options[0]


def test_an_app_holds_and_releases_a_slot_with_its_session_token(client, app_token):
    offering = direct_offering()
    slots = client.get(f"/api/v1/offerings/{offering.pk}/slots",
                       {"start": (timezone.now().date() + timedelta(days=10)).isoformat(),
                        "end": (timezone.now().date() + timedelta(days=16)).isoformat()}).json()
    assert slots["timezone"] == "Asia/Almaty" and slots["slots"]
    start = slots["slots"][0]["start"]
    assert start.endswith("+05:00")  # ISO 8601 with the clinic's offset
    headers = {"HTTP_X_SESSION_TOKEN": app_token}
    body = {"offering": offering.pk, "start": start, "client_key": "app-1"}
    first = client.post("/api/v1/holds", body, content_type="application/json", **headers)
    assert first.status_code == 201, first.content
    again = client.post("/api/v1/holds", body, content_type="application/json", **headers)
    assert again.status_code == 201 and again.json()["id"] == first.json()["id"]  # a retry is the same hold
    later = client.get(f"/api/v1/offerings/{offering.pk}/slots",
                       {"start": start[:10], "end": start[:10]}).json()
    assert start not in [s["start"] for s in later["slots"]]
    assert client.delete(f"/api/v1/holds/{first.json()['id']}", **headers).status_code == 204
    assert Hold.objects.get(pk=first.json()["id"]).status == Hold.RELEASED


def test_the_api_needs_a_login_or_a_token(client):
    offering = direct_offering()
    response = client.post("/api/v1/holds", {"offering": offering.pk, "start": "2030-01-01T10:00:00+05:00",
                                             "client_key": "k"}, content_type="application/json")
    assert response.status_code == 401
    assert client.post("/api/v1/holds", {}, content_type="application/json",
                       HTTP_X_SESSION_TOKEN="forged").status_code == 401


def test_a_taken_slot_answers_409_with_alternatives(client, app_token, django_user_model):
    offering = direct_offering()
    option = first_slot(offering)
    rival = django_user_model.objects.create_user("rival", "rival@example.com", "pw-rival-12345")
    holds.place_hold(rival, offering, option.start, "rival")
    response = client.post("/api/v1/holds", {"offering": offering.pk, "start": option.start.isoformat(),
                                             "client_key": "mine"}, content_type="application/json",
                           HTTP_X_SESSION_TOKEN=app_token)
    assert response.status_code == 409
    data = response.json()
    assert data["code"] == "taken" and data["alternatives"]
    assert option.start.isoformat() not in [a["start"] for a in data["alternatives"]]


def test_bad_input_gets_clear_messages(client, app_token):
    offering = direct_offering()
    headers = {"HTTP_X_SESSION_TOKEN": app_token, "HTTP_ACCEPT_LANGUAGE": "ru"}
    bad_range = client.get(f"/api/v1/offerings/{offering.pk}/slots", {"start": "2030-02-01", "end": "2030-01-01"})
    assert bad_range.status_code == 400 and bad_range.json()["message"]
    too_long = client.get(f"/api/v1/offerings/{offering.pk}/slots", {"start": "2030-01-01", "end": "2030-06-01"})
    assert too_long.status_code == 400
    assert client.get(f"/api/v1/offerings/{offering.pk}/slots", {"start": "soon", "end": "x"}).status_code == 422
    naive = client.post("/api/v1/holds", {"offering": offering.pk, "start": "2030-01-07T10:00:00",
                                          "client_key": "n"}, content_type="application/json", **headers)
    assert naive.status_code == 400
    nowhere = client.post("/api/v1/holds", {"offering": 999999, "start": "2030-01-07T10:00:00+05:00",
                                            "client_key": "x"}, content_type="application/json", **headers)
    assert nowhere.status_code == 400 and nowhere.json()["code"] == "not_bookable"
    missing = client.post("/api/v1/bookings", {}, content_type="application/json", **headers)
    assert missing.status_code == 400
    assert client.get("/api/v1/bookings/999999", **headers).status_code == 404


def confirmed_booking(user, offering, start):
    hold = holds.place_hold(user, offering, start, f"k-{start.isoformat()}",
                               now=start - timedelta(days=30))
    booking = lifecycle.create_booking_from_hold(user, hold, now=start - timedelta(days=30))
    return lifecycle.confirm_paid(booking, now=start - timedelta(days=30))


def test_reminders_go_out_once_seven_days_and_one_day_before(patient):
    offering = direct_offering()
    option = first_slot(offering, days=5)
    booking = confirmed_booking(patient, offering, option.start)
    assert booking.state == Booking.CONFIRMED
    mail.outbox.clear()
    assert tasks.send_due_reminders() >= 1
    subjects = [m.subject for m in mail.outbox if booking.reference in m.subject]
    assert len(subjects) == 1  # the 7-day reminder; the 1-day one is not due yet
    assert tasks.send_due_reminders() == 0  # sent once
    assert any(a[2] == "text/calendar" for m in mail.outbox for a in m.attachments)


def test_sweep_releases_expired_holds_and_expires_unpaid_bookings(patient):
    offering = direct_offering()
    option = first_slot(offering)
    now = timezone.now()
    hold = holds.place_hold(patient, offering, option.start, "sweep", now=now)
    booking = lifecycle.create_booking_from_hold(patient, hold, now=now)
    result = lifecycle.sweep(now=now + timedelta(minutes=offering.hold_minutes + 1))
    booking.refresh_from_db()
    assert booking.state == Booking.EXPIRED and result["expired_bookings"] >= 1
    assert not Allocation.objects.filter(appointment__booking=booking, live=True).exists()
    assert booking.appointments.get().status == Appointment.RELEASED


def test_offerings_of_a_service_in_the_asked_language(client):
    offering = direct_offering()
    data = client.get("/api/v1/offerings", {"service": offering.page.slug, "lang": "ru"}).json()
    mine = next(o for o in data if o["id"] == offering.pk)
    assert mine["timezone"] == "Asia/Almaty" and mine["price"] == offering.price
    assert any("А" <= ch <= "я" for ch in mine["service_name"])  # the Russian name
    assert client.get("/api/v1/offerings", {"lang": "xx"}).status_code == 400
