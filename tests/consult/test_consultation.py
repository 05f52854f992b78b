"""Online consultations: shown on the service page, booked and paid like any slot; the room link only for the
patient and the clinic's staff, only from a few minutes before the slot until its end."""

from __future__ import annotations

import re
from datetime import timedelta

import pytest
from django.core import mail
from django.urls import reverse

from bookings.consult import services
from bookings.models import Appointment, Booking, Consultation
from tests.bookings.helpers import book, free_options, pay

pytestmark = pytest.mark.django_db
ROOM = re.compile(r"https://meet\.jit\.si/emhana-[A-Za-z0-9_-]{32}")


@pytest.fixture
def paid(patient_client, patient, consultation_offering, fake_provider):
    option = free_options(consultation_offering)[0]
    assert book(patient_client, consultation_offering, option).status_code == 302
    booking = Booking.objects.get(user=patient, offering=consultation_offering)
    assert booking.state == Booking.AWAITING_PAYMENT and booking.deposit == consultation_offering.price
    assert pay(patient_client, booking).status_code == 200
    booking.refresh_from_db()
    assert booking.state == Booking.CONFIRMED
    return booking


def _at(booking, minutes_from_start, monkeypatch):
    start = booking.appointments.get().start
    now = start + timedelta(minutes=minutes_from_start)
    monkeypatch.setattr(services, "_now", lambda: now)
    return now


def test_service_page_offers_a_consultation_and_a_second_opinion(client, consultation_offering, opinion_offering):
    page = client.get(consultation_offering.page.url)
    html = page.content.decode()
    assert "Talk to a specialist before you travel" in html
    assert reverse("book_offering", args=[consultation_offering.pk]) in html
    assert reverse("second_opinion_request", args=[opinion_offering.pk]) in html
    # the treatment list still lists only treatments
    clinics_section = html.split('id="clinics"')[1].split('id="before-you-travel"')[0]
    assert reverse("book_offering", args=[consultation_offering.pk]) not in clinics_section


def test_booked_and_paid_then_link_shown_only_in_the_window(patient_client, paid, monkeypatch, settings):
    settings.CONSULTATION_LINK_LEAD_MINUTES = 10
    detail = reverse("booking_detail", args=[paid.reference])
    _at(paid, -11, monkeypatch)
    html = patient_client.get(detail).content.decode()
    assert "Video call with the specialist" in html and not ROOM.search(html)
    assert "10 minutes before the start" in html
    _at(paid, -10, monkeypatch)
    html = patient_client.get(detail).content.decode()
    link = ROOM.search(html).group(0)
    # the same room every time, and the join address redirects to it
    assert patient_client.get(reverse("consultation_join", args=[paid.reference]))["Location"] == link
    _at(paid, 29, monkeypatch)
    assert link in patient_client.get(detail).content.decode()
    _at(paid, 30, monkeypatch)
    html = patient_client.get(detail).content.decode()
    assert not ROOM.search(html) and "This consultation has ended." in html
    join = patient_client.get(reverse("consultation_join", args=[paid.reference]))
    assert join.status_code == 302 and join["Location"].endswith(detail)


def test_link_by_user(patient_client, other_client, staff_client, foreign_staff_client, paid, monkeypatch):
    _at(paid, -5, monkeypatch)
    patient_html = patient_client.get(reverse("booking_detail", args=[paid.reference])).content.decode()
    link = ROOM.search(patient_html).group(0)
    room = Consultation.objects.get(booking=paid).room
    assert link.endswith(room)
    desk = staff_client.get(reverse("desk:booking", args=[paid.pk]))
    assert link in desk.content.decode()
    assert staff_client.get(reverse("desk:consultation_join", args=[paid.pk]))["Location"] == link
    # another patient and another clinic's staff get nothing: 404, and no room anywhere
    for client, url in ((other_client, reverse("booking_detail", args=[paid.reference])),
                        (other_client, reverse("consultation_join", args=[paid.reference])),
                        (foreign_staff_client, reverse("desk:booking", args=[paid.pk])),
                        (foreign_staff_client, reverse("desk:consultation_join", args=[paid.pk]))):
        response = client.get(url)
        assert response.status_code == 404
        assert room not in response.content.decode()


def test_unpaid_consultation_has_no_link(patient_client, patient, consultation_offering, monkeypatch):
    option = free_options(consultation_offering)[0]
    book(patient_client, consultation_offering, option)
    booking = Booking.objects.get(user=patient)
    _at(booking, -1, monkeypatch)
    html = patient_client.get(reverse("booking_detail", args=[booking.reference])).content.decode()
    assert not ROOM.search(html)
    assert not Consultation.objects.filter(booking=booking).exists()


def test_other_provider_and_times_in_both_zones(patient_client, patient, paid, monkeypatch, settings):
    from bookings.models import PatientProfile

    PatientProfile.objects.create(user=patient, home_timezone="Asia/Bishkek")
    settings.CONSULTATION_VIDEO_LINK_TEMPLATE = "https://video.example/r/{room}?lang=ru"
    _at(paid, 0, monkeypatch)
    html = patient_client.get(reverse("booking_detail", args=[paid.reference])).content.decode()
    room = Consultation.objects.get(booking=paid).room
    assert f"https://video.example/r/{room}?lang=ru".replace("&", "&amp;") in html
    assert "Patient's time" in html and "Clinic's time" in html
    assert "UTC+06:00" in html or "Bishkek" in html


def test_room_names_are_unguessable():
    from bookings.consult.models import new_room

    names = {new_room() for _ in range(200)}
    assert len(names) == 200 and all(len(n) >= 39 for n in names)


def test_reminder_carries_the_join_link(paid, settings):
    from bookings.notifications.mail import send_booking_email

    mail.outbox.clear()
    assert send_booking_email(paid.pk, "reminder_1d")
    body = mail.outbox[-1].body
    assert settings.SITE_URL + reverse("consultation_join", args=[paid.reference]) in body
    assert "online consultation" in body
    assert not ROOM.search(body)  # the room itself is never in an email


def test_cancellation_refunds_by_the_same_policy_and_removes_the_link(patient_client, paid, monkeypatch,
                                                                       fake_provider):
    from bookings.lifecycle import cancellation, reasons

    due = cancellation.refund_due(paid, reasons.PATIENT)
    response = patient_client.post(reverse("booking_cancel", args=[paid.reference]),
                                   {"reason": "patient", "confirm": "on"})
    assert response.status_code == 302
    paid.refresh_from_db()
    assert paid.state in (Booking.CANCELLED, Booking.REFUNDED)
    assert fake_provider.refunds == ([due.amount] if due.amount else [])
    _at_start = paid.appointments.order_by("start").first().start
    monkeypatch.setattr(services, "_now", lambda: _at_start)
    html = patient_client.get(reverse("booking_detail", args=[paid.reference])).content.decode()
    assert not ROOM.search(html) and "This consultation is cancelled." in html


def test_no_show_is_marked_in_the_desk_like_any_slot(patient_client, staff_client, paid, monkeypatch):
    appointment = paid.appointments.get()
    _at(paid, 5, monkeypatch)
    assert ROOM.search(patient_client.get(reverse("booking_detail", args=[paid.reference])).content.decode())
    assert staff_client.post(reverse("desk:attendance", args=[appointment.pk]), {"attended": "0"}).status_code == 302
    appointment.refresh_from_db()
    paid.refresh_from_db()
    assert appointment.status == Appointment.NO_SHOW and paid.state == Booking.COMPLETED
    assert not ROOM.search(patient_client.get(reverse("booking_detail", args=[paid.reference])).content.decode())
