"""The booking API as a phone app or partner uses it: allauth app tokens, slots, holds, errors; and the
reminder and sweep tasks."""

from datetime import timedelta

import pytest
from django.core import mail
from django.utils import timezone

from bookings import tasks
from bookings.engine import holds, slots
from bookings.lifecycle import reasons
from bookings.lifecycle import services as lifecycle
from bookings.models import Allocation, Appointment, Booking, Hold, Payment, Refund
from catalog.models import Offering
from tests.bookings.helpers import direct_offering

pytestmark = pytest.mark.django_db




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
    mine = next(o for o in data["items"] if o["id"] == offering.pk)
    assert mine["timezone"] == "Asia/Almaty" and mine["price"] == offering.price
    assert any("А" <= ch <= "я" for ch in mine["service_name"])  # the Russian name
    assert client.get("/api/v1/offerings", {"lang": "xx"}).status_code == 400


# --------------------------------------------------------------------------------- cancelling: who may give which reason


@pytest.mark.parametrize("reason", reasons.reasons_for(reasons.CLINIC_SIDE))
def test_a_patient_cannot_cancel_through_the_api_with_the_clinics_reason(client, app_token, confirmed, reason):
    """The clinic's reasons refund in full: the API asks Booking.can_cancel and refuses them from a patient."""
    headers = {"HTTP_X_SESSION_TOKEN": app_token}
    paid = Payment.objects.filter(booking=confirmed, state=Payment.SUCCEEDED).count()
    assert paid == 1  # there is money a wrong refund would give back
    preview = client.get(f"/api/v1/bookings/{confirmed.pk}/cancel", {"reason": reason}, **headers)
    assert preview.status_code == 403 and preview.json()["code"] == "reason_not_allowed"
    answer = client.post(f"/api/v1/bookings/{confirmed.pk}/cancel", {"reason": reason},
                         content_type="application/json", **headers)
    assert answer.status_code == 403, answer.content
    assert answer.json()["code"] == "reason_not_allowed" and answer.json()["message"]
    confirmed.refresh_from_db()
    assert confirmed.state == Booking.CONFIRMED and confirmed.cancel_reason in ("", None)
    assert not Refund.objects.filter(payment__booking=confirmed).exists()


def test_a_patient_cancels_through_the_api_with_their_own_reason(client, app_token, confirmed):
    headers = {"HTTP_X_SESSION_TOKEN": app_token}
    preview = client.get(f"/api/v1/bookings/{confirmed.pk}/cancel", {"reason": reasons.PATIENT}, **headers)
    assert preview.status_code == 200 and 0 <= preview.json()["refund"] <= preview.json()["paid"]
    answer = client.post(f"/api/v1/bookings/{confirmed.pk}/cancel", {"reason": reasons.PATIENT},
                         content_type="application/json", **headers)
    assert answer.status_code == 200, answer.content
    assert answer.json()["state"] in (Booking.CANCELLED, Booking.REFUNDED)
    assert answer.json()["refund"] == preview.json()["refund"]  # the preview told the truth
    again = client.post(f"/api/v1/bookings/{confirmed.pk}/cancel", {"reason": reasons.PATIENT},
                        content_type="application/json", **headers)
    assert again.status_code == 200 and again.json()["refund"] == 0  # a retry refunds nothing more
    unknown = client.get(f"/api/v1/bookings/{confirmed.pk}/cancel", {"reason": "because"}, **headers)
    assert unknown.status_code == 400 and unknown.json()["code"] == "reason"


def test_domain_errors_get_their_status_from_one_table():
    from bookings.errors import BookingError, Busy, InvalidTransition, SlotTaken, http_status
    from bookings.payments.services import PaymentFailed, ProviderDown

    assert http_status(BookingError("x", "not_bookable")) == 400
    assert http_status(BookingError("x", "reason_not_allowed")) == 403
    assert http_status(SlotTaken()) == 409 and http_status(InvalidTransition("x", "invalid_state")) == 409
    assert http_status(Busy()) == 503 and http_status(ProviderDown()) == 503
    assert http_status(PaymentFailed(None, "do_not_honor")) == 402


# --------------------------------------------------------------------------------- one error body, pages, the document


def test_every_refusal_is_one_translated_error_body(client, app_token, settings):
    headers = {"HTTP_X_SESSION_TOKEN": app_token}
    unknown = client.get("/api/v1/no/such/thing", HTTP_ACCEPT_LANGUAGE="ru")
    assert unknown.status_code == 404 and unknown["Content-Type"].startswith("application/json")
    assert unknown.json()["code"] == "not_found"
    english = client.get("/api/v1/no/such/thing").json()["message"]
    assert unknown.json()["message"] != english  # in Russian
    posted = client.post("/api/v1/no/such/thing", {}, content_type="application/json")
    assert posted.status_code == 404 and posted.json()["code"] == "not_found"  # not a CSRF page
    wrong_method = client.put("/api/v1/services")
    assert wrong_method.status_code == 405 and wrong_method["Allow"] == "GET"
    assert wrong_method.json()["code"] == "method"
    invalid = client.get("/api/v1/services", {"limit": "many", "offset": "-1", "lang": "ru"})
    body = invalid.json()
    assert invalid.status_code == 422 and body["code"] == "invalid"
    assert {f["field"] for f in body["fields"]} == {"limit", "offset"} and all(f["message"] for f in body["fields"])
    assert "limit" in body["message"] and body["message"] != client.get(
        "/api/v1/services", {"limit": "many", "offset": "-1"}).json()["message"]  # lang=ru translates it
    assert client.get("/api/v1/bookings/999999", **headers).json()["code"] == "not_found"
    settings.BOOKING_RATE_LIMIT = "1/m"
    offering = direct_offering()
    hold = {"offering": offering.pk, "start": "2030-01-07T10:00:00+05:00", "client_key": "limit"}
    client.post("/api/v1/holds", hold, content_type="application/json", **headers)
    limited = client.post("/api/v1/holds", hold, content_type="application/json", **headers)
    assert limited.status_code == 429 and limited.json()["code"] == "rate_limited"
    assert 1 <= int(limited["Retry-After"]) <= 60


def test_lists_are_pages_with_a_count_and_the_next_page(client):
    first = client.get("/api/v1/services", {"limit": 5, "lang": "ru"}).json()
    assert len(first["items"]) == 5 and first["count"] > 5 and first["next"]
    second = client.get(first["next"]).json()
    assert second["items"] and {s["slug"] for s in second["items"]}.isdisjoint({s["slug"] for s in first["items"]})
    assert second["count"] == first["count"]
    offerings = client.get("/api/v1/offerings", {"limit": 100}).json()
    assert offerings["count"] == Offering.objects.bookable().count() > len(offerings["items"]) == 100
    everything, url = [], "/api/v1/offerings?limit=100"
    while url:
        page = client.get(url).json()
        everything += page["items"]
        url = page["next"]
    assert len({o["id"] for o in everything}) == offerings["count"]  # nothing cut at 200 or anywhere
    assert client.get("/api/v1/offerings", {"limit": 101}).status_code == 422
    assert client.get("/api/v1/offerings", {"offset": 2**63}).status_code == 422


def test_the_openapi_document_declares_its_answers_and_a_usable_security_scheme(client):
    doc = client.get("/api/v1/openapi.json").json()
    schemes = doc["components"]["securitySchemes"]
    assert schemes["SessionToken"] == {"type": "apiKey", "in": "header", "name": "X-Session-Token"}
    assert schemes["SessionAuth"]["in"] == "cookie" and schemes["SessionAuth"]["name"]
    for path, operations in doc["paths"].items():
        for method, operation in operations.items():
            answers = operation["responses"]
            assert "422" in answers, (method, path)
            assert answers["422"]["content"]["application/json"]["schema"]["$ref"].endswith("/ValidationProblem")
            for status, answer in answers.items():
                if status.startswith("4"):
                    assert "content" in answer, (method, path, status)
            if "429" in answers:
                assert "Retry-After" in answers["429"]["headers"], (method, path)
            if operation.get("security"):
                assert "401" in answers, (method, path)
    listed = doc["paths"]["/api/v1/offerings"]["get"]["responses"]["200"]["content"]["application/json"]["schema"]
    page = doc["components"]["schemas"][listed["$ref"].rsplit("/", 1)[1]]
    assert {"items", "count", "next"} <= set(page["properties"])
