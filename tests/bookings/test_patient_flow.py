"""The patient's booking pages: slot picker, hold → booking → checkout, review-first requests, the booking
page (quote, messages, cancel with refund preview), the visa letter and the Stripe.js test double's routes.

Payments use a fake provider (monkeypatched into bookings.payments.services); the real localstripe
end-to-end tests live elsewhere.
"""

from __future__ import annotations

import json
import uuid
from datetime import date, timedelta

import pytest
from django.test import RequestFactory
from django.urls import reverse
from django.utils import timezone

from bookings.engine import holds
from bookings.lifecycle import cancellation, reasons
from bookings.models import Booking, Hold, Message, PatientProfile, Payment
from bookings.payments import PaymentResult
from portal.l10n import money

from .helpers import QUESTIONNAIRE, book, free_options, local_day, pay

pytestmark = pytest.mark.django_db


# --- fixtures and helpers --------------------------------------------------------------------------

# --- slot picker and direct booking ----------------------------------------------------------------

def test_anonymous_visitors_see_the_times_and_choosing_one_asks_for_an_account(client, offering):
    response = client.get(reverse("book_offering", args=[offering.pk]))
    assert response.status_code == 200
    assert "create an account" in response.content.decode()
    option = free_options(offering)[0]
    response = book(client, offering, option)
    assert response.status_code == 302
    assert response["Location"].startswith(reverse("account_signup") + "?next=")
    assert not Hold.objects.exists()


def test_slot_page_lists_slots_as_post_buttons_grouped_by_local_day(patient_client, offering):
    option = free_options(offering)[0]
    day = local_day(offering, option)
    response = patient_client.get(reverse("book_offering", args=[offering.pk]), {"week": day.isoformat()})
    assert response.status_code == 200
    html = response.content.decode()
    assert f'value="{option.start.isoformat()}"' in html
    assert 'name="client_key"' in html
    assert offering.clinic.zone_label in html and "UTC+05:00" in html
    assert "Asia/" not in html  # zones by their places' names, never raw identifiers
    assert response.context["days"][0][0] == day
    local = option.start.astimezone(offering.clinic.tz)
    assert local.strftime("%H:%M") in html


def test_slot_page_shows_the_patients_home_zone_when_known(patient_client, patient, offering):
    PatientProfile.objects.create(user=patient, home_timezone="Asia/Dushanbe")
    option = free_options(offering)[0]
    response = patient_client.get(reverse("book_offering", args=[offering.pk]),
                                  {"week": local_day(offering, option).isoformat()})
    assert "Dushanbe (Tajikistan)" in response.content.decode()


def test_bad_week_falls_back_to_the_coming_days(patient_client, offering):
    response = patient_client.get(reverse("book_offering", args=[offering.pk]), {"week": "not-a-date"})
    assert response.status_code == 200
    assert response.context["note"]


def test_review_offering_redirects_to_the_request_form(patient_client, review_offering):
    response = patient_client.get(reverse("book_offering", args=[review_offering.pk]))
    assert response.status_code == 302
    assert response["Location"] == reverse("request_treatment", args=[review_offering.pk])


def test_unknown_offering_is_404(patient_client):
    assert patient_client.get(reverse("book_offering", args=[999999])).status_code == 404


def test_posting_a_slot_holds_it_creates_a_booking_and_goes_to_checkout(patient_client, patient, offering):
    option = free_options(offering)[0]
    response = book(patient_client, offering, option)
    booking = Booking.objects.get(user=patient)
    assert response.status_code == 302
    assert response["Location"] == reverse("booking_checkout", args=[booking.reference])
    assert booking.state == Booking.AWAITING_PAYMENT
    assert booking.payment_due_at > timezone.now()
    hold = Hold.objects.get(user=patient)
    assert hold.status == Hold.CONVERTED and hold.booking == booking
    assert [a.start for a in booking.appointments.order_by("seq")] == [s for s, _ in option.sessions]


def test_the_same_client_key_twice_gives_the_same_booking(patient_client, patient, offering):
    option = free_options(offering)[0]
    key = uuid.uuid4().hex
    first = book(patient_client, offering, option, key)
    second = book(patient_client, offering, option, key)
    assert first.status_code == second.status_code == 302
    assert first["Location"] == second["Location"]
    assert Booking.objects.filter(user=patient).count() == 1
    assert Hold.objects.filter(user=patient).count() == 1


def test_a_taken_slot_shows_the_message_and_alternatives(patient_client, patient, other_patient, offering):
    option = free_options(offering)[0]
    holds.place_hold(other_patient, offering, option.start, "someone-else")
    response = book(patient_client, offering, option)
    assert response.status_code == 409
    html = response.content.decode()
    assert "just taken" in html
    alternatives = response.context["alternatives"]
    assert alternatives, "free times nearby are offered"
    shown = [slot["iso"] for _day, slots in alternatives for slot in slots]
    assert option.start.isoformat() not in shown
    assert f'value="{shown[0]}"' in html
    assert not Booking.objects.filter(user=patient).exists()


@pytest.mark.parametrize("start", ["tomorrow at noon", "2030-01-01T10:00:00", ""])
def test_a_bogus_start_is_refused_and_nothing_is_created(patient_client, patient, offering, start):
    response = patient_client.post(reverse("book_offering", args=[offering.pk]),
                                   {"start": start, "client_key": uuid.uuid4().hex})
    assert response.status_code == 400
    assert response.context["error"]
    assert not Hold.objects.filter(user=patient).exists()
    assert not Booking.objects.filter(user=patient).exists()


def test_a_start_that_is_not_a_slot_is_refused_cleanly(patient_client, patient, offering):
    option = free_options(offering)[0]
    response = book(patient_client, offering, type(option)(start=option.start + timedelta(minutes=7),
                                                           sessions=option.sessions))
    assert response.status_code == 409
    assert not Booking.objects.filter(user=patient).exists()


# --- checkout and payment --------------------------------------------------------------------------

def test_checkout_shows_deposit_countdown_and_card_form(patient_client, awaiting, settings):
    settings.STRIPE_JS_TEST_DOUBLE = False
    response = patient_client.get(reverse("booking_checkout", args=[awaiting.reference]))
    assert response.status_code == 200
    html = response.content.decode()
    assert money(awaiting.deposit, awaiting.currency) in html
    assert 'id="hold-countdown"' in html and response.context["seconds_left"] > 0
    assert 'id="card-element"' in html
    assert f'data-pay-url="/api/v1/bookings/{awaiting.pk}/payments"' in html
    assert "https://js.stripe.com/v3/" in html
    assert "needs JavaScript" in html


def test_checkout_loads_the_test_double_when_configured(patient_client, awaiting, settings):
    settings.STRIPE_JS_TEST_DOUBLE = True
    html = patient_client.get(reverse("booking_checkout", args=[awaiting.reference])).content.decode()
    assert "js/stripe-test-double.js" in html
    assert "js.stripe.com" not in html


def test_expired_hold_checkout_offers_to_choose_again(patient_client, awaiting):
    """No sweep has run: the page still knows the time ran out, and offers a new time, not a card form."""
    Booking.objects.filter(pk=awaiting.pk).update(payment_due_at=timezone.now() - timedelta(minutes=1))
    response = patient_client.get(reverse("booking_checkout", args=[awaiting.reference]), follow=True)
    html = response.content.decode()
    assert 'id="card-form"' not in html
    assert reverse("book_offering", args=[awaiting.offering_id]) in html
    awaiting.refresh_from_db()
    assert awaiting.state == Booking.EXPIRED


def test_paying_confirms_and_the_booking_page_shows_it(patient_client, confirmed):
    response = patient_client.get(reverse("booking_detail", args=[confirmed.reference]))
    assert response.status_code == 200
    html = response.content.decode()
    assert "state-confirmed" in html
    assert reverse("visa_letter", args=[confirmed.reference]) in html
    # checkout of a paid booking goes back to the booking page
    again = patient_client.get(reverse("booking_checkout", args=[confirmed.reference]))
    assert again.status_code == 302


def test_declined_card_gives_a_translated_message_and_keeps_the_booking(patient_client, awaiting, fake_provider):
    fake_provider.status = "failed"
    response = pay(patient_client, awaiting)
    assert response.status_code == 402
    assert "declined" in response.json()["message"]
    awaiting.refresh_from_db()
    assert awaiting.state == Booking.AWAITING_PAYMENT


# --- who may see what ------------------------------------------------------------------------------

def test_another_patient_gets_404_everywhere(other_client, confirmed):
    for name in ("booking_detail", "booking_checkout", "visa_letter", "booking_cancel", "booking_accept_quote"):
        assert other_client.get(reverse(name, args=[confirmed.reference])).status_code == 404, name
    assert other_client.post(reverse("booking_detail", args=[confirmed.reference]),
                             {"body": "hello"}).status_code == 404
    assert other_client.post(reverse("booking_cancel", args=[confirmed.reference]),
                             {"reason": "patient", "confirm": "on"}).status_code == 404
    confirmed.refresh_from_db()
    assert confirmed.state == Booking.CONFIRMED
    assert not Message.objects.filter(booking=confirmed).exists()


def test_dashboard_lists_bookings_with_state_and_next_step(patient_client, awaiting):
    response = patient_client.get(reverse("patient_dashboard"))
    assert response.status_code == 200
    html = response.content.decode()
    assert awaiting.reference in html
    assert "state-awaiting_payment" in html
    assert reverse("booking_checkout", args=[awaiting.reference]) in html
    assert reverse("patient_profile") in html and reverse("patient_records") in html


# --- booking page: messages and cancellation -------------------------------------------------------

def test_patient_can_write_to_the_clinic(patient_client, awaiting):
    url = reverse("booking_detail", args=[awaiting.reference])
    assert patient_client.post(url, {"body": "   "}).status_code == 400
    response = patient_client.post(url, {"body": "Can my wife come with me?"})
    assert response.status_code == 302
    message = Message.objects.get(booking=awaiting)
    assert message.from_clinic is False and message.body == "Can my wife come with me?"
    assert "Can my wife come with me?" in patient_client.get(url).content.decode()


def test_cancel_page_shows_the_refund_and_cancelling_refunds_it(patient_client, confirmed, fake_provider):
    url = reverse("booking_cancel", args=[confirmed.reference])
    response = patient_client.get(url)
    assert response.status_code == 200
    html = response.content.decode()
    due = cancellation.refund_due(confirmed, reasons.PATIENT)
    visa = cancellation.refund_due(confirmed, reasons.VISA_REFUSED)
    assert due.paid == confirmed.deposit
    assert money(due.amount, confirmed.currency) in html
    assert money(visa.amount, confirmed.currency) in html and visa.amount == confirmed.deposit
    assert str(due.explanation) in html

    # without the confirmation box nothing happens
    assert patient_client.post(url, {"reason": "visa_refused"}).status_code == 400
    confirmed.refresh_from_db()
    assert confirmed.state == Booking.CONFIRMED

    # a visa refusal needs the refusal letter and the clinic's confirmation first (issue 11; tests/trip)
    response = patient_client.post(url, {"reason": "visa_refused", "confirm": "on"})
    assert response.status_code == 400
    confirmed.refresh_from_db()
    assert confirmed.state == Booking.CONFIRMED and fake_provider.refunds == []

    response = patient_client.post(url, {"reason": "patient", "confirm": "on"})
    assert response.status_code == 302
    confirmed.refresh_from_db()
    if due.amount:
        assert confirmed.state == Booking.REFUNDED and fake_provider.refunds == [due.amount]
    else:  # inside the no-refund window: nothing goes to the provider, and the page never promised a refund
        assert confirmed.state == Booking.CANCELLED and fake_provider.refunds == []


def test_cancel_refuses_reasons_only_the_clinic_may_give(patient_client, awaiting):
    response = patient_client.post(reverse("booking_cancel", args=[awaiting.reference]),
                                   {"reason": reasons.CLINIC_CANCELLED, "confirm": "on"})
    assert response.status_code == 400
    awaiting.refresh_from_db()
    assert awaiting.state == Booking.AWAITING_PAYMENT


# --- review first: request, quote, choose dates ----------------------------------------------------


def test_request_treatment_creates_a_requested_booking_with_the_questionnaire(patient_client, patient,
                                                                              review_offering):
    url = reverse("request_treatment", args=[review_offering.pk])
    assert patient_client.get(url).status_code == 200
    response = patient_client.post(url, {**QUESTIONNAIRE, "note": "Prefer May", "consent": "1"})
    booking = Booking.objects.get(user=patient)
    assert response.status_code == 302
    assert response["Location"] == reverse("booking_detail", args=[booking.reference])
    assert booking.state == Booking.REQUESTED
    assert booking.questionnaire == QUESTIONNAIRE
    assert booking.request_note == "Prefer May"
    assert QUESTIONNAIRE["diagnosis"] in patient_client.get(response["Location"]).content.decode()


def test_missing_questionnaire_fields_are_errors_and_nothing_is_created(patient_client, patient, review_offering):
    response = patient_client.post(reverse("request_treatment", args=[review_offering.pk]),
                                   {"diagnosis": "Meningioma", "note": "keep this text"})
    assert response.status_code == 400
    form = response.context["form"]
    assert set(form.errors) >= {"prior_treatment", "current_state"}
    assert "keep this text" in response.content.decode()
    assert not Booking.objects.filter(user=patient).exists()


def test_direct_offering_request_goes_to_the_slot_picker(patient_client, offering):
    response = patient_client.get(reverse("request_treatment", args=[offering.pk]))
    assert response.status_code == 302
    assert response["Location"] == reverse("book_offering", args=[offering.pk])


def test_request_with_a_record_stores_it_on_the_booking(patient_client, patient, review_offering, settings,
                                                        tmp_path, monkeypatch):
    from django.core.files.storage import FileSystemStorage
    from django.core.files.uploadedfile import SimpleUploadedFile

    from bookings.models import MedicalRecord

    settings.PRIVATE_MEDIA_ROOT = tmp_path / "private"
    monkeypatch.setattr(MedicalRecord._meta.get_field("file"), "storage",
                        FileSystemStorage(location=settings.PRIVATE_MEDIA_ROOT, base_url=None))
    pdf = b"%PDF-1.4\n1 0 obj<<>>endobj\ntrailer<<>>\n%%EOF\n"
    response = patient_client.post(reverse("request_treatment", args=[review_offering.pk]), {
        **QUESTIONNAIRE, "consent": "1", "records": [SimpleUploadedFile("mri report.pdf", pdf, content_type="application/pdf")]})
    assert response.status_code == 302, response.context["form"].errors if response.context else ""
    booking = Booking.objects.get(user=patient)
    assert MedicalRecord.objects.filter(owner=patient, booking=booking).count() == 1


def test_a_rejected_record_keeps_the_answers_and_creates_nothing(patient_client, patient, review_offering,
                                                                 settings, tmp_path, monkeypatch):
    from django.core.files.storage import FileSystemStorage
    from django.core.files.uploadedfile import SimpleUploadedFile

    from bookings.models import MedicalRecord

    settings.PRIVATE_MEDIA_ROOT = tmp_path / "private"
    monkeypatch.setattr(MedicalRecord._meta.get_field("file"), "storage",
                        FileSystemStorage(location=settings.PRIVATE_MEDIA_ROOT, base_url=None))
    response = patient_client.post(reverse("request_treatment", args=[review_offering.pk]), {
        **QUESTIONNAIRE, "consent": "1", "records": [SimpleUploadedFile("virus.exe", b"MZ\x90\x00" * 50)]})
    assert response.status_code == 400
    assert response.context["form"].errors.get("records")
    assert QUESTIONNAIRE["current_state"] in response.content.decode()
    assert not Booking.objects.filter(user=patient).exists()
    assert not MedicalRecord.objects.filter(owner=patient).exists()


def test_quote_is_shown_and_choosing_dates_accepts_it(patient_client, quoted):
    detail = patient_client.get(reverse("booking_detail", args=[quoted.reference])).content.decode()
    assert "Follow-up MRI" in detail
    accept_url = reverse("booking_accept_quote", args=[quoted.reference])
    assert accept_url in detail
    response = patient_client.get(accept_url)
    assert response.status_code == 200
    slot = response.context["days"][0][1][0]
    assert f'value="{slot["iso"]}"' in response.content.decode()
    key = uuid.uuid4().hex
    response = patient_client.post(accept_url, {"start": slot["iso"], "client_key": key})
    assert response.status_code == 302
    assert response["Location"] == reverse("booking_checkout", args=[quoted.reference])
    quoted.refresh_from_db()
    assert quoted.state == Booking.AWAITING_PAYMENT
    # a double click lands on the same checkout
    again = patient_client.post(accept_url, {"start": slot["iso"], "client_key": key})
    assert again.status_code == 302


def test_accept_quote_outside_the_window_is_refused(patient_client, quoted):
    quote = quoted.current_quote()
    outside = timezone.now().replace(microsecond=0) + timedelta(days=400)
    response = patient_client.post(reverse("booking_accept_quote", args=[quoted.reference]),
                                   {"start": outside.isoformat(), "client_key": "k1"})
    assert response.status_code == 400
    assert response.context["error"]
    quoted.refresh_from_db()
    assert quoted.state == Booking.QUOTED and quote.accepted_at is None


# --- visa letter -----------------------------------------------------------------------------------

def test_visa_letter_needs_a_confirmed_booking(patient_client, awaiting):
    assert patient_client.get(reverse("visa_letter", args=[awaiting.reference])).status_code == 404


def test_visa_letter_asks_for_the_profile_first(patient_client, confirmed):
    response = patient_client.get(reverse("visa_letter", args=[confirmed.reference]))
    assert response.status_code == 409
    assert reverse("patient_profile") in response.content.decode()


def test_visa_letter_is_a_pdf_with_cyrillic_names_and_follows_the_dates(patient_client, patient, confirmed):
    from bookings.models import Companion
    from bookings.patients.visa import font_paths

    profile = PatientProfile.objects.create(
        user=patient, given_names="Айгерим", family_name="Сапарова", date_of_birth=date(1980, 5, 4),
        citizenship="UZ", passport_number="FA1234567", passport_expiry=date(2031, 1, 1))
    Companion.objects.create(profile=profile, given_names="Тимур", family_name="Сапаров",
                             date_of_birth=date(1978, 2, 3), citizenship="UZ", passport_number="FA7654321",
                             passport_expiry=date(2030, 6, 1), relationship="husband")
    url = reverse("visa_letter", args=[confirmed.reference])
    response = patient_client.get(url)
    assert response.status_code == 200
    assert response["Content-Type"] == "application/pdf"
    assert response.content.startswith(b"%PDF")
    if font_paths()[0]:
        assert b"DejaVu" in response.content  # the embedded Unicode font

    # regenerated from current data: moving the appointments changes the letter
    first = response.content
    for appointment in confirmed.appointments.all():
        appointment.start += timedelta(days=3)
        appointment.end += timedelta(days=3)
        appointment.save()
    assert patient_client.get(url).content != first


# --- Stripe.js test double routes ------------------------------------------------------------------

def test_test_double_routes_refuse_without_localstripe(settings):
    from django.http import Http404

    from bookings.payments import test_double as stripe_test_double

    settings.STRIPE_JS_TEST_DOUBLE = True
    settings.STRIPE_API_BASE = None
    request = RequestFactory().post("/stripe-test/payment-method/", data=json.dumps({"number": "4242424242424242"}),
                                    content_type="application/json")
    with pytest.raises(Http404):
        stripe_test_double.payment_method(request)
    with pytest.raises(Http404):
        stripe_test_double.authenticate(request)


def test_test_double_routes_call_the_provider_helpers(settings, monkeypatch):
    from bookings.payments import test_double as stripe_test_double

    settings.STRIPE_JS_TEST_DOUBLE = True
    settings.STRIPE_API_BASE = "http://127.0.0.1:1"
    calls = []

    class Helper:
        def create_test_payment_method(self, number):
            calls.append(number)
            return "pm_test_1"

        def authenticate_3ds(self, intent_id, client_secret, success=True):
            calls.append((intent_id, success))
            return PaymentResult(status="succeeded" if success else "requires_payment_method",
                                 intent_id=intent_id, amount=1, currency="kzt")

    monkeypatch.setattr(stripe_test_double, "get_provider", lambda: Helper())
    rf = RequestFactory()
    response = stripe_test_double.payment_method(rf.post(
        "/", data=json.dumps({"number": "4000 0025 0000 3155"}), content_type="application/json"))
    assert response.status_code == 200 and json.loads(response.content)["id"] == "pm_test_1"
    bad = stripe_test_double.payment_method(rf.post("/", data=json.dumps({"number": "12"}),
                                                    content_type="application/json"))
    assert bad.status_code == 400
    response = stripe_test_double.authenticate(rf.post(
        "/", data=json.dumps({"client_secret": "pi_abc123_secret_xyz", "success": False}),
        content_type="application/json"))
    assert json.loads(response.content)["status"] == "requires_payment_method"
    assert calls == ["4000002500003155", ("pi_abc123", False)]


def test_payment_state_model_is_untouched_by_page_views(patient_client, awaiting):
    patient_client.get(reverse("booking_checkout", args=[awaiting.reference]))
    assert not Payment.objects.filter(booking=awaiting).exists()


def test_slot_posts_share_the_api_rate_limit(patient_client, patient, offering, settings):
    settings.BOOKING_RATE_LIMIT = "2/m"
    url = reverse("book_offering", args=[offering.pk])
    codes = [patient_client.post(url, {"start": "bogus", "client_key": "k"}).status_code for _ in range(3)]
    assert codes == [400, 400, 429]


def test_visa_letter_names_the_citizenship_in_the_letters_language():
    from types import SimpleNamespace

    from django.utils import translation

    from bookings.patients import visa

    class Letter:
        def para(self, *args, **kwargs):
            pass

        def rows(self, pairs):
            self.pairs = dict(pairs)

        def ln(self, *args):
            pass

    person = SimpleNamespace(family_name="Nurlanova", given_names="Aigerim", date_of_birth=date(1985, 6, 1),
                             citizenship=SimpleNamespace(code="KG"), passport_number="AC1234567",
                             passport_expiry=date(2032, 1, 1))
    for lang, kyrgyzstan in (("kk", "Қырғызстан"), ("ru", "Киргизия"), ("zh-hans", "吉尔吉斯斯坦")):
        letter = Letter()
        with translation.override(lang):
            visa._person(letter, "", person)
        assert kyrgyzstan in letter.pairs.values(), (lang, letter.pairs)
