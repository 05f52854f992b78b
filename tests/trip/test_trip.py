"""Before the trip: the visa verdict before payment, extras in the estimate and the refund, a visa refusal that
waits for the clinic and its letter."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from bookings.engine import slots
from bookings.lifecycle import cancellation, reasons
from bookings.models import Booking, BookingExtra, ClinicMembership, OfferingExtra, Payment, VisaRefusal
from bookings.trip import entry, estimate
from tests.bookings.helpers import PDF, book, free_options, pay, upload
from tests.desk.test_desk import with_mfa

from .helpers import patient_of, quoted_for, tomotherapy

pytestmark = pytest.mark.django_db


# --------------------------------------------------------------------------------- entry rules


def test_the_reviewed_rules_cover_the_patients_countries_and_say_which_are_unverified():
    data = entry.rules()
    assert data["reviewed_on"] and entry.reviewed_on() <= timezone.now().date()
    for code in ("RU", "KG", "UZ", "TJ", "CN", "AZ", "TR", "IN", "GB", "US", "KR", "DE", "IL", "AT", "CH", "BG",
                 "LK", "PH", "MN"):
        assert code in data["countries"], code
        assert data["countries"][code]["source"], code
    assert (entry.allowance(entry.rule_for("RU")), entry.allowance(entry.rule_for("KG"))) == (90, 90)
    assert entry.allowance(entry.rule_for("UZ")) == 90
    assert entry.allowance(entry.rule_for("TJ")) == 30
    assert entry.rule_for("CN")["per_entry_days"] == 30 and entry.rule_for("CN")["per_180_days"] == 90
    assert entry.rule_for("CN")["treatment_allowed_since"] == "2023-11-10"
    assert "IN" in entry.unverified_countries() and "TJ" not in entry.unverified_countries()


@pytest.mark.parametrize("country, days, needed", [
    ("TJ", 35, True), ("TJ", 20, False), ("RU", 35, False), ("KG", 89, False), ("KG", 91, True),
    ("UZ", 60, False), ("CN", 31, True), ("CN", 30, False),
])
def test_the_whole_stay_is_compared_with_the_allowance(country, days, needed):
    verdict = entry.verdict(country, days)
    assert verdict.visa_needed is needed
    assert verdict.message


def test_an_unverified_rule_never_says_no_visa_is_needed():
    verdict = entry.verdict("US", 10)
    assert verdict.status == entry.CHECK and not verdict.visa_needed and "consulate" in verdict.message


def test_a_35_day_tomotherapy_course_lasts_longer_than_a_tajik_may_stay():
    offering = tomotherapy()
    assert entry.expected_stay_days(offering) >= 35


def _quoted_tomotherapy(django_user_model, name, country):
    offering = tomotherapy()
    user = patient_of(django_user_model, name, country)
    option = free_options(offering, days=60)[0]
    day = option.start.astimezone(offering.clinic.tz).date()
    return user, quoted_for(user, offering, day, day + timedelta(days=14)), option


def test_a_tajik_patients_course_says_a_visa_is_needed_before_payment(client, django_user_model, fake_provider):
    user, booking, option = _quoted_tomotherapy(django_user_model, "tajik", "TJ")
    client.force_login(user)
    # the quote's page (choosing dates) and the booking page say so before any money moves
    page = client.get(reverse("booking_accept_quote", args=[booking.reference])).content.decode()
    assert 'data-visa="visa_needed"' in page and "You need a visa" in page
    assert reverse("booking_detail", args=[booking.reference])
    response = client.post(reverse("booking_accept_quote", args=[booking.reference]),
                           {"start": option.start.isoformat(), "client_key": "tj-1"})
    assert response.status_code == 302
    checkout = client.get(reverse("booking_checkout", args=[booking.reference])).content.decode()
    assert "You need a visa" in checkout and "invitation (visa support) letter" in checkout
    assert not Payment.objects.filter(booking=booking).exists()
    verdict = entry.for_booking(booking)
    assert verdict.stay_days > 30 and verdict.allowed_days == 30


def test_a_russian_patients_course_needs_no_visa(client, django_user_model):
    user, booking, _option = _quoted_tomotherapy(django_user_model, "russian", "RU")
    client.force_login(user)
    page = client.get(reverse("booking_accept_quote", args=[booking.reference])).content.decode()
    assert 'data-visa="visa_free"' in page and "No visa needed" in page and "You need a visa" not in page


def test_the_slot_page_says_it_for_a_direct_treatment_too(client, django_user_model, offering):
    client.force_login(patient_of(django_user_model, "tj-direct", "TJ"))
    page = client.get(reverse("book_offering", args=[offering.pk])).content.decode()
    assert "stay-notice" in page  # a one-day scan: within 30 days, no visa
    assert 'data-visa="visa_free"' in page


# --------------------------------------------------------------------------------- extras


def _extras_for(offering):
    nights = OfferingExtra.objects.create(offering=offering, kind=OfferingExtra.ACCOMMODATION, price=2_200_000,
                                          unit=OfferingExtra.PER_NIGHT, pay_at=OfferingExtra.WITH_DEPOSIT)
    transfer = OfferingExtra.objects.create(offering=offering, kind=OfferingExtra.TRANSFER, price=1_500_000,
                                            pay_at=OfferingExtra.AT_CLINIC)
    return nights, transfer


def _far_option(offering, days=16):
    limit = timezone.now() + timedelta(days=days)
    options = [o for o in free_options(offering, days=60) if o.start > limit]
    assert options
    return options[0]


def test_extras_are_chosen_before_paying_and_appear_in_the_estimate_and_the_refund(
        patient_client, patient, offering, fake_provider):
    nights, transfer = _extras_for(offering)
    assert book(patient_client, offering, _far_option(offering)).status_code == 302
    booking = Booking.objects.get(user=patient)
    base_price, base_deposit = booking.price, booking.deposit
    checkout = patient_client.get(reverse("booking_checkout", args=[booking.reference])).content.decode()
    assert f'name="extra-{nights.pk}"' in checkout and f'name="extra-{transfer.pk}"' in checkout

    response = patient_client.post(reverse("trip_extras", args=[booking.reference]),
                                   {f"extra-{nights.pk}": "3", f"extra-{transfer.pk}": "2", "next": "checkout"})
    assert response.status_code == 302
    booking.refresh_from_db()
    assert booking.deposit == base_deposit + 3 * 2_200_000  # the nights are paid with the deposit
    assert booking.price == base_price + 3 * 2_200_000 + 2 * 1_500_000
    est = estimate.for_booking(booking)
    labels = [line.label for line in est.lines]
    assert any("Accommodation" in label for label in labels) and any("transfer" in label for label in labels)
    assert est.deposit == booking.deposit and est.total == booking.price
    assert est.at_clinic == booking.price - booking.deposit

    page = patient_client.get(reverse("booking_detail", args=[booking.reference])).content.decode()
    assert "All-in estimate" in page and "Accommodation near the clinic" in page
    pdf = patient_client.get(reverse("trip_estimate_pdf", args=[booking.reference]))
    assert pdf.status_code == 200 and pdf.content.startswith(b"%PDF")

    assert pay(patient_client, booking).status_code == 200
    assert Payment.objects.get(booking=booking).amount == base_deposit + 6_600_000
    # once paid, the choice is fixed
    patient_client.post(reverse("trip_extras", args=[booking.reference]), {f"extra-{nights.pk}": "0"})
    booking.refresh_from_db()
    assert booking.deposit == base_deposit + 6_600_000

    quote = cancellation.refund_due(booking, reasons.PATIENT)
    assert quote.percent == 100 and quote.extras == 6_600_000 and quote.amount == base_deposit + 6_600_000
    response = patient_client.post(reverse("booking_cancel", args=[booking.reference]),
                                   {"reason": "patient", "confirm": "on"})
    assert response.status_code == 302
    assert fake_provider.refunds == [base_deposit + 6_600_000]


def test_the_refund_of_extras_follows_the_same_rule(patient_client, patient, offering, fake_provider):
    nights, _transfer = _extras_for(offering)
    book(patient_client, offering, _far_option(offering))
    booking = Booking.objects.get(user=patient)
    patient_client.post(reverse("trip_extras", args=[booking.reference]), {f"extra-{nights.pk}": "2"})
    booking.refresh_from_db()
    pay(patient_client, booking)
    first = booking.appointments.order_by("start").first().start
    ten_days_before = first - timedelta(days=10)  # 50%
    quote = cancellation.refund_due(booking, reasons.PATIENT, now=ten_days_before)
    assert quote.percent == 50 and quote.extras == 2 * 2_200_000 // 2
    assert quote.amount == booking.deposit // 2


def test_the_clinic_confirms_or_declines_an_extra_and_a_declined_paid_extra_is_refunded(
        client, patient_client, patient, offering, fake_provider):
    nights, transfer = _extras_for(offering)
    book(patient_client, offering, _far_option(offering))
    booking = Booking.objects.get(user=patient)
    patient_client.post(reverse("trip_extras", args=[booking.reference]),
                        {f"extra-{nights.pk}": "2", f"extra-{transfer.pk}": "1"})
    booking.refresh_from_db()
    pay(patient_client, booking)
    staff = with_mfa(ClinicMembership.objects.filter(clinic=booking.clinic).first().user)
    client = Client()  # the patient stays signed in on patient_client
    client.force_login(staff)
    desk = client.get(reverse("desk:booking", args=[booking.pk])).content.decode()
    assert "Accommodation near the clinic" in desk
    rows = {e.kind: e for e in BookingExtra.objects.filter(booking=booking)}
    client.post(reverse("desk:trip_extra", args=[booking.pk, rows["transfer"].pk]), {"decision": "confirm"})
    client.post(reverse("desk:trip_extra", args=[booking.pk, rows["accommodation"].pk]), {"decision": "decline", "reason": "No beds left that week"})
    rows = {e.kind: e for e in BookingExtra.objects.filter(booking=booking)}
    assert rows["transfer"].status == BookingExtra.CONFIRMED
    assert rows["accommodation"].status == BookingExtra.DECLINED
    assert fake_provider.refunds == [2 * 2_200_000]


# --------------------------------------------------------------------------------- visa refused


def test_a_visa_refusal_waits_for_the_letter_and_the_coordinator(
        client, patient_client, confirmed, fake_provider, private_root):
    url = reverse("booking_cancel", args=[confirmed.reference])
    # the patient's word alone moves no money any more
    response = patient_client.post(url, {"reason": "visa_refused", "confirm": "on"})
    assert response.status_code == 400
    assert "refusal letter" in response.content.decode()
    confirmed.refresh_from_db()
    assert confirmed.state == Booking.CONFIRMED and fake_provider.refunds == []

    # the letter goes through the records' checks: a file that is not a document is refused
    refused = patient_client.post(reverse("trip_visa_refused", args=[confirmed.reference]),
                                  {"letter": upload("letter.exe", b"MZ\x90\x00" * 100)})
    assert refused.status_code == 400 and not VisaRefusal.objects.exists()
    response = patient_client.post(reverse("trip_visa_refused", args=[confirmed.reference]),
                                   {"letter": upload("refusal.pdf", PDF, "application/pdf"), "note": "Refused 3 May"})
    assert response.status_code == 302
    claim = VisaRefusal.objects.get(booking=confirmed)
    assert claim.status == VisaRefusal.WAITING and claim.letter.booking_id == confirmed.pk
    page = patient_client.get(reverse("booking_detail", args=[confirmed.reference])).content.decode()
    assert "waiting for the clinic to confirm" in page
    confirmed.refresh_from_db()
    assert confirmed.state == Booking.CONFIRMED and fake_provider.refunds == []

    # another patient cannot reach the desk's decision; the clinic's coordinator can
    staff = with_mfa(ClinicMembership.objects.filter(clinic=confirmed.clinic).first().user)
    client = Client()  # the patient stays signed in on patient_client
    client.force_login(staff)
    desk = client.get(reverse("desk:booking", args=[confirmed.pk])).content.decode()
    assert reverse("record_download", args=[claim.letter.pk]) in desk
    response = client.post(reverse("desk:trip_refusal", args=[confirmed.pk, claim.pk]), {"decision": "confirm"})
    assert response.status_code == 302
    confirmed.refresh_from_db()
    claim.refresh_from_db()
    assert confirmed.state in (Booking.CANCELLED, Booking.REFUNDED) and confirmed.cancel_reason == "visa_refused"
    assert claim.status == VisaRefusal.CONFIRMED and claim.refunded == confirmed.deposit
    assert fake_provider.refunds == [confirmed.deposit]
    # confirming twice refunds nothing more
    client.post(reverse("desk:trip_refusal", args=[confirmed.pk, claim.pk]), {"decision": "confirm"})
    assert fake_provider.refunds == [confirmed.deposit]


def test_the_coordinator_may_refuse_a_letter_with_a_reason(client, patient_client, confirmed, fake_provider,
                                                             private_root):
    patient_client.post(reverse("trip_visa_refused", args=[confirmed.reference]),
                        {"letter": upload("refusal.pdf", PDF, "application/pdf")})
    claim = VisaRefusal.objects.get(booking=confirmed)
    staff = with_mfa(ClinicMembership.objects.filter(clinic=confirmed.clinic).first().user)
    client = Client()  # the patient stays signed in on patient_client
    client.force_login(staff)
    client.post(reverse("desk:trip_refusal", args=[confirmed.pk, claim.pk]), {"decision": "reject", "note": ""})
    claim.refresh_from_db()
    assert claim.status == VisaRefusal.WAITING  # a reason is required
    client.post(reverse("desk:trip_refusal", args=[confirmed.pk, claim.pk]),
                {"decision": "reject", "note": "This is a hotel booking, not a refusal."})
    claim.refresh_from_db()
    assert claim.status == VisaRefusal.REJECTED
    page = patient_client.get(reverse("booking_detail", args=[confirmed.reference])).content.decode()
    assert "This is a hotel booking, not a refusal." in page
    confirmed.refresh_from_db()
    assert confirmed.state == Booking.CONFIRMED and fake_provider.refunds == []


def test_the_quote_email_has_the_itemised_estimate(mailoutbox, django_user_model, review_offering):
    user = patient_of(django_user_model, "uz-mail", "UZ")
    day = slots.offering_slots(review_offering, timezone.now().date() + timedelta(days=5),
                               timezone.now().date() + timedelta(days=40))[0].start.date()
    from bookings.notifications.mail import send_booking_email

    booking = quoted_for(user, review_offering, day, day + timedelta(days=10))
    assert send_booking_email(booking.pk, Booking.QUOTED, "test-quote")
    body = mailoutbox[-1].body
    assert "All-in estimate" in body and "Deposit to book" in body and "Paid at the clinic" in body
