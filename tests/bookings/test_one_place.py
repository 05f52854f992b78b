"""One place for each rule, and every caller goes through it.

Each test names a rule and walks every door that applies it (patient pages, the desk, the API, the services),
so a copy of the rule that drifts in any one caller fails here: who may cancel with which reason, which
offerings are bookable, which allocations block a slot, how a resource's hours are built, and the engine's lock.
"""

from __future__ import annotations

from datetime import UTC, timedelta

import pytest
from django.db import transaction
from django.urls import reverse
from django.utils import timezone

from bookings.engine import calendar, holds, slots
from bookings.engine.locking import NotInTransaction, lock_resources
from bookings.errors import BookingError
from bookings.lifecycle import cancellation, reasons
from bookings.models import Allocation, Appointment, AvailabilityException, Booking, Hold, Refund, Resource
from bookings.review import services as review
from catalog.models import ClinicPage, Offering
from tests.bookings.helpers import QUESTIONNAIRE, direct_offering, free_options, review_offering_gamma
from tests.desk.test_desk import future_weekday, local, make_booking, offering_for, staff_of

pytestmark = pytest.mark.django_db


# --------------------------------------------------------------------------------- who may cancel, with which reason


def cancel_through(door, booking, user, client, token, reason):
    """Try to cancel ``booking`` as ``user`` giving ``reason`` through one door; returns what the door said."""
    if door == "patient page":
        client.force_login(user)  # the app_token fixture signs the test client out
        return client.post(reverse("booking_cancel", args=[booking.reference]), {"reason": reason, "confirm": "on"})
    if door == "api":
        return client.post(f"/api/v1/bookings/{booking.pk}/cancel", {"reason": reason},
                           content_type="application/json", HTTP_X_SESSION_TOKEN=token)
    if door == "desk":
        return client.post(reverse("desk:cancel", args=[booking.pk]), {"cancel-reason": reason, "cancel-confirm": "on"})
    try:
        cancellation.cancel_booking(booking, user, reason)
    except BookingError as exc:
        return exc
    return None


def still_confirmed_and_unrefunded(booking):
    booking.refresh_from_db()
    return booking.state == Booking.CONFIRMED and not Refund.objects.filter(payment__booking=booking).exists()


@pytest.mark.parametrize("reason", reasons.reasons_for(reasons.CLINIC_SIDE))
@pytest.mark.parametrize("door", ["patient page", "api", "service"])
def test_a_patient_can_never_give_the_clinics_reason(door, reason, confirmed, patient, patient_client, app_token):
    """The clinic's reasons refund in full: a patient giving one by any door would take money they are not owed."""
    answer = cancel_through(door, confirmed, patient, patient_client, app_token, reason)
    assert still_confirmed_and_unrefunded(confirmed), f"{door} let a patient cancel with {reason!r}"
    if door == "service":
        assert isinstance(answer, BookingError) and answer.code == "reason_not_allowed"
    else:
        assert answer.status_code in (200, 400, 403, 409, 422), answer.status_code


@pytest.mark.parametrize("reason", reasons.reasons_for(reasons.PATIENT_SIDE))
@pytest.mark.parametrize("door", ["desk", "service"])
def test_the_clinic_cannot_give_the_patients_reasons(door, reason, confirmed, client):
    staff = staff_of(confirmed.clinic)
    client.force_login(staff)
    answer = cancel_through(door, confirmed, staff, client, None, reason)
    assert still_confirmed_and_unrefunded(confirmed), f"{door} let the clinic cancel with {reason!r}"
    if door == "service":
        assert isinstance(answer, BookingError) and answer.code == "reason_not_allowed"


@pytest.mark.parametrize("door", ["api", "service"])
def test_nobody_else_can_cancel(door, confirmed, other_patient, app_token, client):
    client.force_login(other_patient)
    answer = cancel_through(door, confirmed, other_patient, client, None, reasons.PATIENT)
    assert still_confirmed_and_unrefunded(confirmed)
    if door == "service":
        assert isinstance(answer, BookingError)
    else:
        assert answer.status_code in (401, 403, 404)


@pytest.mark.parametrize("door", ["patient page", "api", "service"])
def test_a_patient_cancels_with_their_own_reason_through_every_door(door, confirmed, patient, patient_client,
                                                                    app_token):
    cancel_through(door, confirmed, patient, patient_client, app_token, reasons.PATIENT)
    confirmed.refresh_from_db()
    assert confirmed.state in (Booking.CANCELLED, Booking.REFUNDED)
    assert confirmed.cancel_reason == reasons.PATIENT


def test_the_clinic_cancels_with_its_reason_and_the_patient_gets_everything_back(confirmed, client):
    staff = staff_of(confirmed.clinic)
    client.force_login(staff)
    cancel_through("desk", confirmed, staff, client, None, reasons.CLINIC_CANCELLED)
    confirmed.refresh_from_db()
    assert confirmed.state == Booking.REFUNDED and confirmed.cancel_reason == reasons.CLINIC_CANCELLED
    assert sum(r.amount for r in Refund.objects.filter(payment__booking=confirmed)) == confirmed.deposit


def test_each_form_offers_only_its_sides_reasons():
    from bookings.lifecycle.forms import CancelForm

    patient = {code for code, _label in CancelForm().fields["reason"].choices}
    clinic = {code for code, _label in CancelForm(side=reasons.CLINIC_SIDE).fields["reason"].choices}
    assert patient == set(reasons.reasons_for(reasons.PATIENT_SIDE))
    assert clinic == set(reasons.reasons_for(reasons.CLINIC_SIDE))
    assert not patient & clinic and patient | clinic == set(reasons.REASONS)


def test_can_cancel_follows_the_state_table(confirmed):
    assert confirmed.can_cancel(reasons.PATIENT_SIDE, reasons.PATIENT)
    assert not confirmed.can_cancel(reasons.PATIENT_SIDE, reasons.CLINIC_CANCELLED)
    assert not confirmed.can_cancel("someone", reasons.PATIENT)
    for ended in (Booking.COMPLETED, Booking.DECLINED, Booking.REFUNDED):
        confirmed.state = ended
        assert not confirmed.can_cancel(reasons.PATIENT_SIDE, reasons.PATIENT), ended


# --------------------------------------------------------------------------------- which offerings are bookable


def test_an_offering_at_an_unpublished_clinic_is_not_bookable_by_any_door(client, patient, app_token):
    direct, reviewed = direct_offering(), review_offering_gamma()
    for offering in (direct, reviewed):
        ClinicPage.objects.filter(pk=offering.clinic_id).update(live=False)
        offering.refresh_from_db()
    assert not Offering.objects.bookable().filter(pk__in=[direct.pk, reviewed.pk]).exists()
    assert not direct.is_bookable() and not reviewed.is_bookable()

    service_page = client.get(direct.page.url)
    assert reverse("book_offering", args=[direct.pk]) not in service_page.content.decode(), "service page"
    detail = client.get(f"/api/v1/services/{direct.page.slug}").json()
    assert direct.pk not in [o["id"] for o in detail.get("offerings", [])], "catalogue API"
    listed = client.get("/api/v1/offerings", {"service": direct.page.slug}).json()
    items = listed["items"] if isinstance(listed, dict) and "items" in listed else listed
    assert direct.pk not in [o["id"] for o in items], "offerings API"
    assert client.get(reverse("book_offering", args=[direct.pk])).status_code == 410, "slot page"
    with pytest.raises(BookingError) as held:
        holds.place_hold(patient, direct, timezone.now() + timedelta(days=10), "k")
    assert held.value.code == "not_bookable", "hold"
    with pytest.raises(BookingError) as requested:
        review.request_treatment(patient, reviewed, questionnaire=QUESTIONNAIRE)
    assert requested.value.code == "not_bookable", "treatment request"


def test_a_quoted_patient_still_chooses_dates_after_the_clinic_stops_new_bookings(patient, quoted):
    """"Bookable" is about new patients: the clinic's quote stands when the offering is later unticked."""
    Offering.objects.filter(pk=quoted.offering_id).update(is_active=False)
    quoted.offering.refresh_from_db()
    assert not quoted.offering.is_bookable()
    with pytest.raises(BookingError) as fresh:  # a new patient is refused ...
        holds.place_hold(patient, quoted.offering, review.quote_slots(quoted)[0].start, "new", booking=None)
    assert fresh.value.code == "not_bookable"
    start = review.quote_slots(quoted)[0].start  # ... the quoted one is not
    booking = review.accept_quote(patient, quoted, start, "quoted-dates")
    assert booking.state == Booking.AWAITING_PAYMENT
    assert booking.appointments.filter(status=Appointment.HELD).exists()


def test_bookable_is_active_and_published_page_and_clinic():
    offering = direct_offering()
    assert offering.is_bookable() and Offering.objects.bookable().filter(pk=offering.pk).exists()
    Offering.objects.filter(pk=offering.pk).update(is_active=False)
    offering.refresh_from_db()
    assert not offering.is_bookable() and not Offering.objects.bookable().filter(pk=offering.pk).exists()


# --------------------------------------------------------------------------------- which allocations block a slot


def hold_on(offering, patient, start, expires_at):
    """A hold's appointment and allocations on ``offering``'s resources, expiring at ``expires_at``."""
    end = start + timedelta(minutes=offering.session_minutes)
    hold = Hold.objects.create(offering=offering, user=patient, client_key=f"k{start:%H%M%S}", expires_at=expires_at)
    appointment = Appointment.objects.create(hold=hold, offering=offering, start=start, end=end,
                                             status=Appointment.HELD)
    for resource in Resource.objects.filter(offering_links__offering=offering):
        Allocation.objects.create(appointment=appointment, resource=resource, start=start, end=end,
                                  expires_at=expires_at)
    return appointment


@pytest.mark.parametrize("expired", [False, True], ids=["running hold blocks", "expired hold is free"])
def test_a_hold_blocks_its_time_until_it_runs_out_in_every_caller(expired, patient, client):
    offering = direct_offering()
    option = free_options(offering)[0]
    now = timezone.now()
    expires = now - timedelta(minutes=1) if expired else now + timedelta(minutes=10)
    appointment = hold_on(offering, patient, option.start, expires)
    resource = Allocation.objects.filter(appointment=appointment).first().resource

    assert Allocation.objects.blocking(now).filter(appointment=appointment).exists() is not expired
    day = option.start.astimezone(offering.clinic.tz).date()
    offered = {o.start for o in slots.offering_slots(offering, day, day, now)}
    assert (option.start in offered) is expired, "slot search"
    assert (appointment in calendar.live_appointments(resource, now)) is not expired, "stranded-session check"
    staff = staff_of(resource.clinic)
    client.force_login(staff)
    week = client.get(reverse("desk:week", args=[resource.pk]) + f"?start={day}").content.decode()
    assert ("Held" in week) is not expired, "desk week"


# --------------------------------------------------------------------------------- a resource's hours, built once


def test_extra_hours_open_time_for_slot_search_the_desk_and_the_stranded_check(patient, client):
    offering = direct_offering()
    resource = Resource.objects.filter(offering_links__offering=offering).select_related("clinic").first()
    tz = resource.clinic.tz
    sunday = future_weekday(days_ahead=30, weekday=6)
    resource.weekly_hours.filter(weekday=6).delete()
    assert not any(o.start.astimezone(tz).date() == sunday for o in slots.offering_slots(offering, sunday, sunday))
    extra = AvailabilityException.objects.create(resource=resource, kind=AvailabilityException.EXTRA,
                                                 start=local(sunday, 9, tz), end=local(sunday, 13, tz),
                                                 reason="Sunday list")
    opened = calendar.open_hours(resource.weekly_hours.all(), [extra], tz, sunday, sunday)
    assert opened == [(local(sunday, 9, tz).astimezone(UTC), local(sunday, 13, tz).astimezone(UTC))]
    found = [o.start for o in slots.offering_slots(offering, sunday, sunday)]
    assert found and all(local(sunday, 9, tz) <= s < local(sunday, 13, tz) for s in found), "slot search"
    staff = staff_of(resource.clinic)
    client.force_login(staff)
    week = client.get(reverse("desk:week", args=[resource.pk]) + f"?start={sunday}").content.decode()
    assert "09:00" in week, "desk week"
    booking = make_booking(offering_for(resource), patient, Booking.CONFIRMED, start=found[0])
    stranded = calendar.stranded_appointments(resource, without_exception=extra)
    assert [a.booking_id for a in stranded] == [booking.pk], "stranded check"


# --------------------------------------------------------------------------------- the engine's lock


@pytest.mark.django_db(transaction=True, serialized_rollback=True)
@pytest.mark.usefixtures("keep_catalogue")
def test_the_lock_refuses_to_run_outside_a_transaction():
    resource = Resource.objects.order_by("id").first()
    with pytest.raises(NotInTransaction):
        lock_resources([resource.pk])
    with transaction.atomic():
        assert lock_resources([resource.pk, resource.pk]) == [resource.pk]
        assert lock_resources([]) == []
