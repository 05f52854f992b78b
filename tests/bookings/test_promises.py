"""What the patient is told must be true: held-until, refund promises, email times, the chosen slot kept
through sign-up, and a quote whose hold ran out offering new dates instead of a loop."""

from __future__ import annotations

import re
import uuid
from datetime import timedelta
from urllib.parse import parse_qs, urlsplit

import pytest
from django.core import mail
from django.urls import reverse
from django.utils import timezone

from bookings.engine import holds
from bookings.lifecycle import cancellation, reasons
from bookings.lifecycle import services as lifecycle
from bookings.models import Booking
from bookings.notifications import mail as notifications
from portal import l10n

from .helpers import book, free_options, pay

pytestmark = pytest.mark.django_db


def expire(booking):
    Booking.objects.filter(pk=booking.pk).update(payment_due_at=timezone.now() - timedelta(seconds=1))


# --- a quote whose hold ran out --------------------------------------------------------------------

def accept(client, booking, slot_iso=None):
    url = reverse("booking_accept_quote", args=[booking.reference])
    if slot_iso is None:
        slot_iso = client.get(url).context["days"][0][1][0]["iso"]
    return client.post(url, {"start": slot_iso, "client_key": uuid.uuid4().hex}), slot_iso


def test_a_quote_whose_hold_ran_out_lets_the_patient_pick_new_dates_and_pay(patient_client, quoted, fake_provider):
    response, first_iso = accept(patient_client, quoted)
    assert response.status_code == 302
    expire(quoted)

    # the pay page does not loop back: it sends the patient to new dates inside the quote's window
    response = patient_client.get(reverse("booking_checkout", args=[quoted.reference]))
    assert response.status_code == 302
    assert response["Location"] == reverse("booking_accept_quote", args=[quoted.reference])
    quoted.refresh_from_db()
    assert quoted.state == Booking.QUOTED
    assert quoted.events.filter(to_state=Booking.QUOTED, note__contains="ran out").exists()  # the desk sees why

    page = patient_client.get(reverse("booking_accept_quote", args=[quoted.reference]))
    assert page.status_code == 200
    assert page.context["days"], "dates inside the quote's window are offered again"
    response, _iso = accept(patient_client, quoted)
    assert response["Location"] == reverse("booking_checkout", args=[quoted.reference])
    quoted.refresh_from_db()
    assert quoted.state == Booking.AWAITING_PAYMENT
    assert pay(patient_client, quoted).status_code == 200
    quoted.refresh_from_db()
    assert quoted.state == Booking.CONFIRMED
    assert quoted.appointments.filter(status="booked").count() == quoted.offering.sessions


def test_the_patient_is_emailed_to_choose_new_dates_not_told_of_a_new_quote(patient_client, quoted,
                                                                             django_capture_on_commit_callbacks):
    accept(patient_client, quoted)
    expire(quoted)
    mail.outbox.clear()
    with django_capture_on_commit_callbacks(execute=True):
        lifecycle.sweep()
    assert [m.subject for m in mail.outbox] == [f"Choose new dates for {quoted.reference}"]


def test_a_direct_booking_whose_hold_ran_out_shows_no_pay_button_before_any_sweep(patient_client, awaiting):
    expire(awaiting)
    html = patient_client.get(reverse("booking_detail", args=[awaiting.reference])).content.decode()
    assert reverse("booking_checkout", args=[awaiting.reference]) not in html
    assert "Held for you until" not in html
    assert reverse("book_offering", args=[awaiting.offering_id]) in html
    dashboard = patient_client.get(reverse("patient_dashboard")).content.decode()
    assert "Expired" in dashboard or "expired" in dashboard


# --- the checkout promises what refund_due pays -----------------------------------------------------

def booking_in(client, offering, days_ahead):
    option = next(o for o in free_options(offering, days=days_ahead + 20)
                  if o.start - timezone.now() > timedelta(days=days_ahead))
    assert book(client, offering, option).status_code == 302
    return Booking.objects.filter(offering=offering).latest("created_at")


def test_checkout_for_a_slot_three_days_away_says_it_can_no_longer_be_refunded(patient_client, offering):
    option = next(o for o in free_options(offering, days=20)
                  if timedelta(days=1) < o.start - timezone.now() < timedelta(days=3))
    assert book(patient_client, offering, option).status_code == 302
    booking = Booking.objects.get(offering=offering)
    html = patient_client.get(reverse("booking_checkout", args=[booking.reference])).content.decode()
    assert "can no longer be refunded" in html
    assert "Full refund of what you pay" not in html
    assert cancellation.refund_due(booking, reasons.PATIENT, paid=booking.deposit).amount == 0


def test_checkout_far_ahead_gives_the_dates_until_which_refunds_are_full_and_half(patient_client, offering):
    booking = booking_in(patient_client, offering, 20)
    first = booking.appointments.order_by("start").first().start
    response = patient_client.get(reverse("booking_checkout", args=[booking.reference]))
    html = response.content.decode()
    tz = booking.clinic.tz
    assert l10n.format_when(first - timedelta(days=14), tz) in html
    assert l10n.format_when(first - timedelta(days=3), tz) in html
    assert cancellation.refund_due(booking, reasons.PATIENT, paid=booking.deposit).percent == 100
    # promised steps are what refund_due pays just before each deadline
    for until, percent in response.context["refund_steps"]:
        assert cancellation.refund_due(booking, reasons.PATIENT, until - timedelta(minutes=1),
                                   paid=booking.deposit).percent == percent


def test_checkout_does_not_mention_paying_the_rest_when_the_deposit_is_the_whole_price(patient_client, offering):
    from catalog.models import Offering

    Offering.objects.filter(pk=offering.pk).update(deposit=offering.price)
    booking = booking_in(patient_client, offering, 1)
    html = patient_client.get(reverse("booking_checkout", args=[booking.reference])).content.decode()
    assert "Paid at the clinic" not in html
    assert "the whole price" in html


def test_checkout_on_test_payments_says_no_real_money_and_labels_the_card_fields(patient_client, awaiting, settings):
    settings.STRIPE_JS_TEST_DOUBLE = True
    html = patient_client.get(reverse("booking_checkout", args=[awaiting.reference])).content.decode()
    assert "Test payments — no real money." in html
    assert 'data-label-number="Card number"' in html
    settings.STRIPE_JS_TEST_DOUBLE = False
    html = patient_client.get(reverse("booking_checkout", args=[awaiting.reference])).content.decode()
    assert "no real money" not in html


# --- emails tell the clinic's time, whatever zone the worker runs in --------------------------------

def test_emails_print_session_times_in_the_clinics_zone_with_the_patients_beside(confirmed):
    from django.utils import timezone as djtz

    Booking.objects.filter(pk=confirmed.pk).update(patient_timezone="Europe/Moscow", language="ru")
    confirmed.refresh_from_db()
    start = confirmed.appointments.order_by("start").first().start
    local = start.astimezone(confirmed.clinic.tz).strftime("%H:%M")
    utc = start.astimezone(l10n.as_zone("UTC")).strftime("%H:%M")
    moscow = start.astimezone(l10n.as_zone("Europe/Moscow")).strftime("%H:%M")
    assert len({local, utc, moscow}) == 3
    mail.outbox.clear()
    djtz.activate("UTC")  # a Celery worker: no zone of the clinic's
    try:
        assert notifications.send_booking_email(confirmed.pk, "reminder_1d", "test-key")
    finally:
        djtz.deactivate()
    body = mail.outbox[0].body
    assert f"{local}–" in body
    assert f" {utc}" not in body.replace(f"{local}–", "")
    assert moscow in body and "Москва" in body
    assert f"{confirmed.clinic.city.name_ru}, UTC+05:00" in body
    assert "http://testserver" not in body and "127.0.0.1:80" not in body.split("\n")[-3]
    assert f"/ru/my/bookings/{confirmed.reference}/" in body
    assert body.rstrip().endswith("Emhana")


# --- the chosen time survives sign-up ----------------------------------------------------------------

def test_a_visitor_who_chooses_a_time_signs_up_and_comes_back_to_confirm_it(client, patient, offering):
    option = free_options(offering)[0]
    response = book(client, offering, option)
    signup_url = response["Location"]
    page = client.get(signup_url)
    assert page.status_code == 200
    html = page.content.decode()
    assert "Your chosen time is kept" in html
    assert l10n.format_when(option.start, offering.clinic.tz) in html

    nxt = parse_qs(urlsplit(signup_url).query)["next"][0]
    client.force_login(patient)
    back = client.get(nxt)
    assert back.status_code == 200
    assert back.context["chosen"]["iso"] == option.start.isoformat()
    body = back.content.decode()
    key = re.search(r'name="client_key" value="([0-9a-f]+)"', body).group(1)
    response = client.post(reverse("book_offering", args=[offering.pk]),
                           {"start": back.context["chosen"]["iso"], "client_key": key})
    booking = Booking.objects.get(user=patient)
    assert response["Location"] == reverse("booking_checkout", args=[booking.reference])


def test_a_chosen_time_taken_meanwhile_is_said_plainly(client, patient, offering, django_user_model):
    option = free_options(offering)[0]
    nxt = parse_qs(urlsplit(book(client, offering, option)["Location"]).query)["next"][0]
    rival = django_user_model.objects.create_user("rival", "rival@example.com", "a-long-password-3")
    holds.place_hold(rival, offering, option.start, "rival-key")
    client.force_login(patient)
    back = client.get(nxt)
    assert back.context["chosen"] == {"gone": True}
    assert "has just been taken" in back.content.decode()


def test_account_emails_are_signed_with_the_site_name_not_the_host(client, settings):
    settings.SITE_NAME = "Emhana"
    response = client.post(reverse("account_signup"), {"email": "new.patient@example.com",
                                                       "password1": "a-long-password-9",
                                                       "password2": "a-long-password-9"})
    assert response.status_code == 302
    message = mail.outbox[-1]
    assert message.subject.startswith("Emhana: ")
    assert "testserver" not in message.subject + message.body


def test_chinese_pages_use_chinese_punctuation_and_dates(patient_client, awaiting):
    html = patient_client.get(f"/zh-hans/my/bookings/{awaiting.reference}/").content.decode()
    assert "预约编号：" in html and "预约编号: " not in html
    first = awaiting.appointments.order_by("start").first().start.astimezone(awaiting.clinic.tz)
    assert f"{first.month}月{first.day}日" in html  # "12月5日", not "5 十二月"


def test_a_payment_under_way_past_the_hold_shows_progress_not_a_loop(patient_client, awaiting):
    from bookings.models import Payment

    Payment.objects.create(booking=awaiting, amount=awaiting.deposit, currency=awaiting.currency,
                           state="requires_action", intent_id="pi_under_way", idempotency_key="k-under-way")
    expire(awaiting)
    html = patient_client.get(reverse("booking_checkout", args=[awaiting.reference])).content.decode()
    assert "being processed" in html and 'id="card-form"' not in html
    assert reverse("booking_accept_quote", args=[awaiting.reference]) not in html
    awaiting.refresh_from_db()
    assert awaiting.state == Booking.AWAITING_PAYMENT  # the payment decides, not the page
