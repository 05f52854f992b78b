"""The clinic answers about the extras a patient chose, in the desk: confirm, or cannot provide with a reason (a
declined extra paid with the deposit is refunded once), the patient told by email in their language and on the
booking page, per-clinic access."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.test import Client
from django.urls import reverse
from django.utils import timezone, translation

from bookings.errors import BookingError
from bookings.models import (
    Booking,
    BookingEvent,
    BookingExtra,
    ClinicMembership,
    OfferingExtra,
    Payment,
    Refund,
)
from bookings.trip import estimate
from bookings.trip import extras as extras_service
from catalog.models import ClinicPage
from portal import l10n
from tests.bookings.helpers import book, free_options, pay
from tests.desk.test_desk import staff_of, with_mfa

from .helpers import patient_of

pytestmark = pytest.mark.django_db

NIGHT = 2_200_000  # a night near the clinic, paid with the deposit
TRANSFER = 1_500_000  # an airport transfer, paid at the clinic


# --------------------------------------------------------------------------------- helpers


def _offer_extras(offering):
    nights = OfferingExtra.objects.create(offering=offering, kind=OfferingExtra.ACCOMMODATION, price=NIGHT,
                                          unit=OfferingExtra.PER_NIGHT, pay_at=OfferingExtra.WITH_DEPOSIT)
    transfer = OfferingExtra.objects.create(offering=offering, kind=OfferingExtra.TRANSFER, price=TRANSFER,
                                            pay_at=OfferingExtra.AT_CLINIC)
    return nights, transfer


def _booking_with_extras(client, user, offering, *, paid=True, lang="en"):
    """Book (three weeks ahead), choose 2 nights (with the deposit) and a transfer (at the clinic), and pay."""
    nights, transfer = _offer_extras(offering)
    limit = timezone.now() + timedelta(days=16)
    option = next(o for o in free_options(offering, days=60) if o.start > limit)
    assert book(client, offering, option, lang=lang).status_code == 302
    booking = Booking.objects.get(user=user)
    with translation.override(lang):
        url = reverse("trip_extras", args=[booking.reference])
    client.post(url, {f"extra-{nights.pk}": "2", f"extra-{transfer.pk}": "1"})
    if paid:
        assert pay(client, booking).status_code == 200
    booking.refresh_from_db()
    rows = {e.kind: e for e in BookingExtra.objects.filter(booking=booking).order_by("id")}
    return booking, rows["accommodation"], rows["transfer"]


def _desk(user) -> Client:
    desk = Client()  # the patient stays signed in on their own client
    desk.force_login(with_mfa(user))
    return desk


def _staff_elsewhere(clinic):
    """A coordinator of another clinic only."""
    from django.contrib.auth import get_user_model

    other = ClinicPage.objects.exclude(pk=clinic.pk).order_by("id").first()
    assert other is not None, "the demo data has more than one clinic"
    user = get_user_model().objects.create_user("elsewhere", "coordinator@elsewhere.example", "a-long-password-9")
    ClinicMembership.objects.create(user=user, clinic=other)
    return user


def _decide(desk, booking, row, **data):
    return desk.post(reverse("desk:trip_extra", args=[booking.pk, row.pk]), data)


def _snapshot(booking):
    booking.refresh_from_db()
    return (booking.price, booking.deposit,
            sorted(BookingExtra.objects.filter(booking=booking).values_list("pk", "status", "refunded")),
            Refund.objects.filter(payment__booking=booking).count(), BookingEvent.objects.filter(booking=booking).count())


# --------------------------------------------------------------------------------- confirm


def test_a_coordinator_confirms_an_extra_and_the_patient_sees_it(
        patient_client, patient, offering, fake_provider, mailoutbox, django_capture_on_commit_callbacks):
    booking, nights, transfer = _booking_with_extras(patient_client, patient, offering)
    staff = staff_of(booking.clinic)
    desk = _desk(staff)
    page = desk.get(reverse("desk:booking", args=[booking.pk])).content.decode()
    assert 'id="extras"' in page and "2 extras the patient chose wait for your answer" in page
    assert reverse("desk:trip_extra", args=[booking.pk, transfer.pk]) in page
    mailoutbox.clear()

    with django_capture_on_commit_callbacks(execute=True):
        response = _decide(desk, booking, transfer, decision="confirm")
    assert response.status_code == 302 and response["Location"].endswith(f"#extra-{transfer.pk}")
    transfer.refresh_from_db()
    assert transfer.status == BookingExtra.CONFIRMED
    assert transfer.decided_by == staff and transfer.decided_at is not None and transfer.refunded == 0
    event = BookingEvent.objects.filter(booking=booking).order_by("-id").first()
    assert event.actor == staff and f"extra {transfer.pk} confirmed" in event.note
    assert event.from_state == event.to_state == Booking.CONFIRMED
    assert fake_provider.refunds == []

    # the patient's page and the estimate say so; the other extra still waits
    page = patient_client.get(reverse("booking_detail", args=[booking.reference])).content.decode()
    assert f'id="chosen-extra-{transfer.pk}" data-status="confirmed"' in page and "Confirmed by the clinic" in page
    assert f'id="chosen-extra-{nights.pk}" data-status="requested"' in page and "Waiting for the clinic" in page
    est = estimate.for_booking(booking)
    line = next(line for line in est.lines if line.label == transfer.label)
    assert line.amount == TRANSFER and line.when == "clinic" and "waiting" not in line.detail
    assert "waiting for the clinic to confirm" in next(ln for ln in est.lines if ln.label == nights.label).detail
    assert est.total == booking.price

    # one email, in English for this patient
    assert len(mailoutbox) == 1
    assert mailoutbox[0].to == [patient.email] and booking.reference in mailoutbox[0].subject
    assert "confirmed an extra you chose" in mailoutbox[0].body and transfer.label in mailoutbox[0].body


def test_the_desk_home_and_day_pages_count_the_extras_waiting(patient_client, patient, offering, fake_provider):
    booking, nights, transfer = _booking_with_extras(patient_client, patient, offering)
    desk = _desk(staff_of(booking.clinic))
    home = desk.get(reverse("desk:home")).content.decode()
    assert "2 extras wait for your answer" in home
    assert f'{reverse("desk:booking", args=[booking.pk])}#extras' in home
    day = booking.appointments.order_by("start").first().start.astimezone(booking.clinic.tz).date()
    day_page = desk.get(reverse("desk:day", args=[booking.clinic.pk]) + f"?date={day.isoformat()}").content.decode()
    assert "2 extras to confirm" in day_page

    _decide(desk, booking, transfer, decision="confirm")
    _decide(desk, booking, nights, decision="decline", reason="The hotel is full.")
    home = desk.get(reverse("desk:home")).content.decode()
    assert "wait for your answer" not in home and "waits for your answer" not in home


# --------------------------------------------------------------------------------- decline


def test_declining_a_paid_extra_refunds_it_once_and_tells_the_patient_in_russian(
        client, django_user_model, offering, fake_provider, mailoutbox, django_capture_on_commit_callbacks):
    user = patient_of(django_user_model, "rus-extras", "RU", lang="ru")
    client.force_login(user)
    booking, nights, transfer = _booking_with_extras(client, user, offering, lang="ru")
    assert booking.language == "ru"
    price, deposit = booking.price, booking.deposit
    paid = Payment.objects.get(booking=booking, state=Payment.SUCCEEDED).amount
    assert paid == deposit and nights.total == 2 * NIGHT
    desk = _desk(staff_of(booking.clinic))
    mailoutbox.clear()

    with django_capture_on_commit_callbacks(execute=True):
        first = _decide(desk, booking, nights, decision="decline", reason="Гостиница закрыта на ремонт.")
        second = _decide(desk, booking, nights, decision="decline", reason="Гостиница закрыта на ремонт.")
    assert first.status_code == second.status_code == 302

    # exactly its amount, once
    refunds = list(Refund.objects.filter(payment__booking=booking).order_by("id"))
    assert [r.amount for r in refunds] == [2 * NIGHT] and refunds[0].reason == "extra_declined"
    assert refunds[0].state == Refund.SUCCEEDED
    assert fake_provider.refunds == [2 * NIGHT]
    nights.refresh_from_db()
    assert nights.status == BookingExtra.DECLINED and nights.refunded == 2 * NIGHT
    assert nights.decision_note == "Гостиница закрыта на ремонт."
    booking.refresh_from_db()
    assert (booking.price, booking.deposit) == (price - 2 * NIGHT, deposit - 2 * NIGHT)
    assert booking.state == Booking.CONFIRMED  # the treatment goes ahead
    assert BookingEvent.objects.filter(booking=booking, note__startswith=f"extra {nights.pk} declined").count() == 1

    # one email, in Russian, the time in the clinic's zone
    assert len(mailoutbox) == 1
    email = mailoutbox[0]
    assert email.to == [user.email] and booking.reference in email.subject
    assert "Здравствуйте!" in email.body and "Причина, указанная клиникой" in email.body
    assert "Гостиница закрыта на ремонт." in email.body and nights.label in email.body
    assert l10n.money(2 * NIGHT) in email.body
    assert l10n.format_when(nights.decided_at, booking.clinic.tz, "ru") in email.body

    # the patient's page says the clinic cannot provide it, why, and what came back
    with translation.override("ru"):
        url = reverse("booking_detail", args=[booking.reference])
    page = client.get(url).content.decode()
    assert f'id="chosen-extra-{nights.pk}" data-status="declined"' in page
    assert "Клиника не может это предоставить" in page and "Гостиница закрыта на ремонт." in page


def test_a_declined_extra_is_not_in_the_estimate(patient_client, patient, offering, fake_provider):
    booking, nights, transfer = _booking_with_extras(patient_client, patient, offering)
    before = estimate.for_booking(booking)
    assert before.total == booking.price and any(line.label == nights.label for line in before.lines)
    desk = _desk(staff_of(booking.clinic))
    _decide(desk, booking, nights, decision="decline", reason="No rooms.")
    _decide(desk, booking, transfer, decision="decline", reason="No driver that day.")
    booking.refresh_from_db()
    after = estimate.for_booking(booking)
    assert [line.label for line in after.lines if line.label in (nights.label, transfer.label)] == []
    assert after.total == before.total - 2 * NIGHT - TRANSFER == booking.price
    assert after.deposit == before.deposit - 2 * NIGHT == booking.deposit
    assert after.at_clinic == before.at_clinic - TRANSFER
    assert fake_provider.refunds == [2 * NIGHT]  # the transfer was to be paid at the clinic: nothing to refund
    page = patient_client.get(reverse("booking_detail", args=[booking.reference])).content.decode()
    assert "No driver that day." in page and "The clinic cannot provide it" in page


def test_before_payment_a_declined_extra_comes_off_the_deposit_to_pay(
        patient_client, patient, offering, fake_provider):
    booking, nights, _transfer = _booking_with_extras(patient_client, patient, offering, paid=False)
    deposit = booking.deposit
    _decide(_desk(staff_of(booking.clinic)), booking, nights, decision="decline", reason="No rooms.")
    booking.refresh_from_db()
    assert booking.deposit == deposit - 2 * NIGHT and not Refund.objects.exists()
    # saving the extras again (the declined one shows 0) keeps the clinic's answer on record and moves nothing
    patient_client.post(reverse("trip_extras", args=[booking.reference]), {f"extra-{nights.extra_id}": "0"})
    nights.refresh_from_db()
    booking.refresh_from_db()
    assert nights.status == BookingExtra.DECLINED and booking.deposit == deposit - 2 * NIGHT
    assert pay(patient_client, booking).status_code == 200
    assert Payment.objects.get(booking=booking, state=Payment.SUCCEEDED).amount == deposit - 2 * NIGHT


def test_a_confirmed_extra_may_still_be_declined_but_a_declined_one_stays_declined(
        patient_client, patient, offering, fake_provider):
    booking, nights, _transfer = _booking_with_extras(patient_client, patient, offering)
    staff = staff_of(booking.clinic)
    extras_service.confirm_extra(nights, staff)
    extras_service.decline_extra(nights, staff, "The hotel closed.")
    extras_service.decline_extra(nights, staff, "The hotel closed.")
    assert fake_provider.refunds == [2 * NIGHT]
    with pytest.raises(BookingError) as exc:
        extras_service.confirm_extra(nights, staff)
    assert exc.value.code == "extra_decided"
    nights.refresh_from_db()
    assert nights.status == BookingExtra.DECLINED


# --------------------------------------------------------------------------------- who may


def test_staff_of_another_clinic_get_404_and_change_nothing(
        patient_client, patient, offering, fake_provider, mailoutbox, django_capture_on_commit_callbacks):
    booking, nights, _transfer = _booking_with_extras(patient_client, patient, offering)
    outsider = _staff_elsewhere(booking.clinic)
    desk = _desk(outsider)
    before = _snapshot(booking)
    mailoutbox.clear()
    assert desk.get(reverse("desk:booking", args=[booking.pk])).status_code == 404
    with django_capture_on_commit_callbacks(execute=True):
        assert _decide(desk, booking, nights, decision="decline", reason="x").status_code == 404
        assert _decide(desk, booking, nights, decision="confirm").status_code == 404
    assert _snapshot(booking) == before and fake_provider.refunds == [] and mailoutbox == []
    # and the service itself refuses them
    with pytest.raises(BookingError) as exc:
        extras_service.decline_extra(nights, outsider, "x")
    assert exc.value.code == "not_staff"
    assert _snapshot(booking) == before


def test_a_patient_cannot_reach_the_desk(patient_client, patient, offering, fake_provider):
    booking, nights, _transfer = _booking_with_extras(patient_client, patient, offering)
    before = _snapshot(booking)
    assert patient_client.get(reverse("desk:booking", args=[booking.pk])).status_code == 403
    assert patient_client.post(reverse("desk:trip_extra", args=[booking.pk, nights.pk]),
                               {"decision": "decline", "reason": "x"}).status_code == 403
    anonymous = Client().post(reverse("desk:trip_extra", args=[booking.pk, nights.pk]), {"decision": "confirm"})
    assert anonymous.status_code == 302 and "login" in anonymous["Location"]
    with pytest.raises(BookingError):
        extras_service.confirm_extra(nights, patient)
    assert _snapshot(booking) == before and fake_provider.refunds == []


def test_the_decision_needs_the_csrf_token_and_a_post(patient_client, patient, offering, fake_provider):
    booking, nights, _transfer = _booking_with_extras(patient_client, patient, offering)
    staff = with_mfa(staff_of(booking.clinic))
    strict = Client(enforce_csrf_checks=True)
    strict.force_login(staff)
    before = _snapshot(booking)
    assert _decide(strict, booking, nights, decision="decline", reason="x").status_code == 403
    assert strict.get(reverse("desk:trip_extra", args=[booking.pk, nights.pk])).status_code == 405
    assert _snapshot(booking) == before
    page = strict.get(reverse("desk:booking", args=[booking.pk])).content.decode()
    form_start = page.index(f'action="{reverse("desk:trip_extra", args=[booking.pk, nights.pk])}"')
    assert "csrfmiddlewaretoken" in page[form_start:form_start + 400]


def test_declining_needs_a_reason_the_patient_can_read_and_changes_nothing_without_one(
        patient_client, patient, offering, fake_provider):
    booking, nights, _transfer = _booking_with_extras(patient_client, patient, offering)
    desk = _desk(staff_of(booking.clinic))
    response = _decide(desk, booking, nights, decision="decline", reason="  ")
    assert response.status_code == 302
    nights.refresh_from_db()
    assert nights.status == BookingExtra.REQUESTED and nights.refunded == 0 and fake_provider.refunds == []
    page = desk.get(response["Location"]).content.decode()
    assert "Say why the clinic cannot provide it" in page


def test_saving_the_same_extras_again_keeps_the_clinic_s_confirmation(patient_client, patient, offering):
    booking, nights, transfer = _booking_with_extras(patient_client, patient, offering, paid=False)
    extras_service.confirm_extra(transfer, staff_of(booking.clinic))
    url = reverse("trip_extras", args=[booking.reference])
    patient_client.post(url, {f"extra-{nights.extra_id}": "2", f"extra-{transfer.extra_id}": "1"})  # again, unchanged
    transfer.refresh_from_db()
    assert transfer.status == BookingExtra.CONFIRMED
    patient_client.post(url, {f"extra-{nights.extra_id}": "2", f"extra-{transfer.extra_id}": "2"})  # a change: ask again
    transfer.refresh_from_db()
    assert transfer.status == BookingExtra.REQUESTED and transfer.quantity == 2


def test_the_desk_reads_the_visa_verdict_about_the_patient_not_to_them(patient_client, patient, offering):
    from bookings.models import PatientProfile

    booking, _nights, _transfer = _booking_with_extras(patient_client, patient, offering, paid=False)
    desk = _desk(staff_of(booking.clinic))
    page = desk.get(reverse("desk:booking", args=[booking.pk])).content.decode()
    assert "The patient has not given a citizenship yet" in page and "Add your citizenship" not in page
    PatientProfile.objects.update_or_create(user=patient, defaults={"citizenship": "RU"})
    page = desk.get(reverse("desk:booking", args=[booking.pk])).content.decode()
    assert "no visa needed for a citizen of Russia" in page and "your stay" not in page.lower()
