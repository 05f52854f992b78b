"""Edges of cancelling and refunding, written to kill mutants that survived `make mutate` (docs/mutation.md).

What the patient gets back at each notice, which side may give which reason, that a booking is cancelled and
refunded once, that a course refunds only what is left of it, and what the booking's history records.
Times are passed as ``now=``: the boundaries are exact, not slept to.
"""

from __future__ import annotations

import itertools
from datetime import timedelta

import pytest
from django.contrib.auth.models import AnonymousUser
from django.core import mail
from django.utils import timezone

from bookings.engine import holds, slots
from bookings.errors import BookingError, InvalidTransition
from bookings.lifecycle import cancellation, reasons, states
from bookings.models import (
    Allocation,
    Appointment,
    Booking,
    BookingEvent,
    ClinicMembership,
    Payment,
    Refund,
)
from catalog.models import Offering

from .helpers import free_options

pytestmark = pytest.mark.django_db

_seq = itertools.count(1)
DAY = timedelta(days=1)


def first_start(booking):
    return booking.appointments.order_by("start").first().start


def staff_of(clinic_id):
    return ClinicMembership.objects.filter(clinic_id=clinic_id).select_related("user").first().user


def staff_elsewhere(clinic_id):
    return ClinicMembership.objects.exclude(clinic_id=clinic_id).select_related("user").first().user


def booked(user, offering, starts, paid, statuses=None, state=Booking.CONFIRMED):
    """A booking with appointments at ``starts`` (BOOKED unless ``statuses``) and one succeeded payment of ``paid``."""
    booking = Booking.objects.create(user=user, offering=offering, clinic=offering.clinic, state=state,
                                     currency=offering.currency, price=max(paid, offering.price), deposit=paid,
                                     service_title="edge")
    duration = timedelta(minutes=offering.session_minutes)
    for seq, start in enumerate(starts, start=1):
        Appointment.objects.create(booking=booking, offering=offering, seq=seq, start=start, end=start + duration,
                                   status=statuses[seq - 1] if statuses else Appointment.BOOKED)
    if paid:
        n = next(_seq)
        Payment.objects.create(booking=booking, amount=paid, currency=offering.currency, state=Payment.SUCCEEDED,
                               intent_id=f"pi_cancel_edge_{n}", idempotency_key=f"cancel-edge-{n}")
    return booking


def untouched(booking):
    booking.refresh_from_db()
    return (booking.state == Booking.CONFIRMED and not booking.cancel_reason
            and not Refund.objects.filter(payment__booking=booking).exists()
            and booking.appointments.filter(status=Appointment.BOOKED).exists()
            and Allocation.objects.filter(appointment__booking=booking, live=True).exists())


# --------------------------------------------------------------------------------- what the patient gets back


def test_cancelling_20_days_ahead_refunds_everything_and_frees_the_slot(confirmed, patient, other_patient,
                                                                        fake_provider):
    start = first_start(confirmed)
    other_start = next(o.start for o in free_options(confirmed.offering) if o.start != start)
    others = holds.place_hold(other_patient, confirmed.offering, other_start, "edge-other")  # same machines
    booking, quote = cancellation.cancel_booking(confirmed, patient, reasons.PATIENT, now=start - 20 * DAY)
    assert (quote.percent, quote.amount, quote.paid) == (100, confirmed.deposit, confirmed.deposit)
    assert (quote.unused_sessions, quote.total_sessions) == (1, 1)
    assert fake_provider.refunds == [confirmed.deposit]
    booking.refresh_from_db()
    assert booking.state == Booking.REFUNDED and booking.cancel_reason == reasons.PATIENT
    assert set(booking.appointments.values_list("status", flat=True)) == {Appointment.CANCELLED}
    assert not Allocation.objects.filter(appointment__booking=booking, live=True).exists()
    assert Allocation.objects.filter(appointment__hold=others, live=True).exists()  # theirs is kept
    event = booking.events.get(to_state=Booking.CANCELLED)
    assert (event.from_state, event.actor_id) == (Booking.CONFIRMED, patient.pk)
    assert event.note == f"{reasons.PATIENT}: {quote.explanation}"
    day = start.astimezone(confirmed.clinic.tz).date()
    assert start in {o.start for o in slots.offering_slots(confirmed.offering, day, day)}  # bookable again


@pytest.mark.parametrize(("before", "percent"), [
    (14 * DAY, 100), (14 * DAY - timedelta(minutes=1), 50), (5 * DAY, 50), (3 * DAY, 50),
    (3 * DAY - timedelta(minutes=1), 0), (timedelta(hours=2), 0),
])
def test_the_patients_refund_by_notice_through_the_service(confirmed, patient, fake_provider, before, percent):
    start = first_start(confirmed)
    booking, quote = cancellation.cancel_booking(confirmed, patient, reasons.PATIENT, now=start - before)
    assert quote.percent == percent
    assert quote.amount == confirmed.deposit * percent // 100
    # the explanation the patient reads names the band they fell in
    said = {100: "Full refund", 50: f"{cancellation.PARTIAL_REFUND_PERCENT}% refund", 0: "No refund"}[percent]
    assert quote.explanation.startswith(said) and "visa" not in quote.explanation
    assert fake_provider.refunds == ([quote.amount] if percent else [])
    booking.refresh_from_db()
    # money still held (half, or all of it) leaves the booking cancelled, not refunded
    assert booking.state == (Booking.REFUNDED if percent == 100 else Booking.CANCELLED)
    assert set(booking.appointments.values_list("status", flat=True)) == {Appointment.CANCELLED}


@pytest.mark.parametrize("reason", [reasons.CLINIC_CANCELLED, reasons.UNFIT_ON_ARRIVAL])
def test_the_clinics_reasons_refund_in_full_even_on_the_day(confirmed, fake_provider, reason):
    staff = staff_of(confirmed.clinic_id)
    booking, quote = cancellation.cancel_booking(confirmed, staff, reason, now=first_start(confirmed) - timedelta(hours=1))
    assert (quote.percent, quote.amount) == (100, confirmed.deposit)
    assert quote.explanation == f"Full refund: {reasons.REASONS[reason].label}."
    assert fake_provider.refunds == [confirmed.deposit]
    booking.refresh_from_db()
    assert booking.state == Booking.REFUNDED and booking.cancel_reason == reason
    assert booking.events.get(to_state=Booking.CANCELLED).actor_id == staff.pk


def test_a_booking_is_cancelled_and_refunded_once(confirmed, patient, fake_provider):
    start = first_start(confirmed)
    cancellation.cancel_booking(confirmed, patient, reasons.PATIENT, now=start - 5 * DAY)  # half back
    booking, again = cancellation.cancel_booking(confirmed, patient, reasons.PATIENT, now=start - 20 * DAY)
    assert (again.amount, again.percent, again.unused_sessions) == (0, 0, 0)
    assert again.paid == confirmed.deposit - confirmed.deposit * 50 // 100
    assert again.total_sessions == 1
    assert fake_provider.refunds == [confirmed.deposit * 50 // 100]  # no second refund
    assert booking.events.filter(to_state=Booking.CANCELLED).count() == 1

    staff = staff_of(confirmed.clinic_id)  # nor when the clinic cancels it afterwards with a full-refund reason
    _booking, third = cancellation.cancel_booking(confirmed, staff, reasons.CLINIC_CANCELLED)
    assert third.amount == 0 and len(fake_provider.refunds) == 1


def test_the_smallest_refund_is_still_paid(patient, offering, fake_provider):
    booking = booked(patient, offering, [timezone.now() + 20 * DAY], 1)  # one tiyn
    _booking, quote = cancellation.cancel_booking(booking, staff_of(booking.clinic_id), reasons.CLINIC_CANCELLED)
    assert quote.amount == 1 and fake_provider.refunds == [1]


def test_an_unpaid_booking_is_cancelled_without_a_refund(awaiting, patient, fake_provider):
    booking, quote = cancellation.cancel_booking(awaiting, patient, reasons.PATIENT,
                                                 now=first_start(awaiting) - 20 * DAY)
    assert (quote.paid, quote.amount) == (0, 0)
    assert fake_provider.refunds == []
    booking.refresh_from_db()
    assert booking.state == Booking.CANCELLED


# --------------------------------------------------------------------------------- who may give which reason


def test_an_unknown_reason_is_refused(confirmed, patient):
    with pytest.raises(BookingError) as refused:
        cancellation.cancel_booking(confirmed, patient, "changed_my_mind")
    assert refused.value.code == "reason"
    assert untouched(confirmed)


@pytest.mark.parametrize("who", ["other patient", "staff of another clinic", "anonymous"])
def test_nobody_but_the_patient_and_the_clinics_staff_may_cancel(confirmed, other_patient, who):
    actor = {"other patient": other_patient, "anonymous": AnonymousUser(),
             "staff of another clinic": staff_elsewhere(confirmed.clinic_id)}[who]
    assert cancellation.side_of(confirmed, actor) is None
    for reason in reasons.REASONS:
        with pytest.raises(BookingError) as refused:
            cancellation.cancel_booking(confirmed, actor, reason, refusal_confirmed=True)
        assert refused.value.code == "reason_not_allowed", reason
    assert untouched(confirmed)


def test_each_side_is_read_from_who_acts(confirmed, patient):
    assert cancellation.side_of(confirmed, patient) == reasons.PATIENT_SIDE
    assert cancellation.side_of(confirmed, staff_of(confirmed.clinic_id)) == reasons.CLINIC_SIDE
    assert reasons.reasons_for(reasons.PATIENT_SIDE) == [reasons.PATIENT, reasons.VISA_REFUSED]
    assert reasons.reasons_for(reasons.CLINIC_SIDE) == [reasons.CLINIC_CANCELLED, reasons.UNFIT_ON_ARRIVAL]
    assert [code for code, _label in reasons.choices_for(reasons.CLINIC_SIDE)] == [
        reasons.CLINIC_CANCELLED, reasons.UNFIT_ON_ARRIVAL]
    assert reasons.choices_for(reasons.PATIENT_SIDE)[1] == (reasons.VISA_REFUSED,
                                                           reasons.REASONS[reasons.VISA_REFUSED].choice)


def test_a_visa_refusal_needs_the_letter_confirmed_by_the_clinic(confirmed, patient, fake_provider):
    start = first_start(confirmed)
    with pytest.raises(BookingError) as letter:
        cancellation.cancel_booking(confirmed, patient, reasons.VISA_REFUSED, now=start - DAY)
    assert letter.value.code == "refusal_letter_needed"
    assert untouched(confirmed)

    staff = staff_of(confirmed.clinic_id)
    with pytest.raises(BookingError) as unconfirmed:  # the clinic cannot give the patient's reason on its own
        cancellation.cancel_booking(confirmed, staff, reasons.VISA_REFUSED, now=start - DAY)
    assert unconfirmed.value.code == "reason_not_allowed"
    with pytest.raises(BookingError) as other_reason:  # confirming a refusal does not open the patient's reasons
        cancellation.cancel_booking(confirmed, staff, reasons.PATIENT, now=start - DAY, refusal_confirmed=True)
    assert other_reason.value.code == "reason_not_allowed"
    assert untouched(confirmed)

    booking, quote = cancellation.cancel_booking(confirmed, staff, reasons.VISA_REFUSED, now=start - DAY,
                                                 refusal_confirmed=True)
    assert (quote.percent, quote.amount) == (100, confirmed.deposit)
    assert "visa refusal letter" in quote.explanation
    assert fake_provider.refunds == [confirmed.deposit]
    booking.refresh_from_db()
    assert booking.state == Booking.REFUNDED and booking.cancel_reason == reasons.VISA_REFUSED


def test_a_finished_booking_cannot_be_cancelled(confirmed, patient):
    Booking.objects.filter(pk=confirmed.pk).update(state=Booking.COMPLETED)
    with pytest.raises(InvalidTransition) as refused:
        cancellation.cancel_booking(confirmed, patient, reasons.PATIENT)
    assert refused.value.code == "invalid_state"
    confirmed.refresh_from_db()
    assert confirmed.state == Booking.COMPLETED and not confirmed.cancel_reason
    assert Allocation.objects.filter(appointment__booking=confirmed, live=True).exists()


# --------------------------------------------------------------------------------- courses and what is left


def test_a_session_starting_now_counts_as_used(patient, offering):
    now = timezone.now()
    booking = booked(patient, offering, [now, now + 20 * DAY], 1_000_000)
    quote = cancellation.refund_due(booking, reasons.CLINIC_CANCELLED, now)
    assert (quote.unused_sessions, quote.total_sessions, quote.amount) == (1, 2, 500_000)


def test_released_and_cancelled_sessions_are_not_part_of_the_course(patient, offering):
    now = timezone.now()
    booking = booked(patient, offering, [now + 20 * DAY, now + 21 * DAY, now + 22 * DAY, now + 23 * DAY], 900_000,
                     statuses=[Appointment.BOOKED, Appointment.RELEASED, Appointment.CANCELLED, Appointment.HELD])
    quote = cancellation.refund_due(booking, reasons.PATIENT, now)
    assert (quote.unused_sessions, quote.total_sessions, quote.percent, quote.amount) == (2, 2, 100, 900_000)


def test_the_notice_counts_from_the_next_unused_session(patient, offering):
    now = timezone.now()
    booking = booked(patient, offering, [now - DAY, now + 5 * DAY, now + 20 * DAY], 900_000,
                     statuses=[Appointment.ATTENDED, Appointment.BOOKED, Appointment.BOOKED])
    quote = cancellation.refund_due(booking, reasons.PATIENT, now)
    assert (quote.unused_sessions, quote.total_sessions, quote.percent) == (2, 3, 50)
    assert quote.amount == 900_000 * 2 * 50 // (3 * 100)


def test_a_booking_without_sessions_refunds_what_was_paid(patient, offering):
    booking = booked(patient, offering, [], 700_001)
    quote = cancellation.refund_due(booking, reasons.PATIENT)
    assert (quote.unused_sessions, quote.total_sessions, quote.percent, quote.amount) == (1, 1, 100, 700_001)


def test_the_checkout_asks_what_a_deposit_not_yet_paid_would_get_back(patient, offering):
    now = timezone.now()
    booking = booked(patient, offering, [now + 5 * DAY], 0, state=Booking.AWAITING_PAYMENT)
    quote = cancellation.refund_due(booking, reasons.PATIENT, now, paid=300_001)
    assert (quote.paid, quote.percent, quote.amount) == (300_001, 50, 150_000)
    assert isinstance(quote.amount, int)


def test_extras_paid_with_the_deposit_are_refunded_by_the_same_share(patient, offering):
    from bookings.trip.models import BookingExtra, OfferingExtra

    now = timezone.now()
    booking = booked(patient, offering, [now - DAY, now + 5 * DAY, now + 20 * DAY], 900_000,
                     statuses=[Appointment.ATTENDED, Appointment.BOOKED, Appointment.BOOKED])
    for pay_at, status in ((OfferingExtra.WITH_DEPOSIT, BookingExtra.REQUESTED),  # counted
                           (OfferingExtra.AT_CLINIC, BookingExtra.CONFIRMED),  # paid at the clinic: not ours
                           (OfferingExtra.WITH_DEPOSIT, BookingExtra.DECLINED)):  # refunded when it was declined
        BookingExtra.objects.create(booking=booking, kind=OfferingExtra.TRANSFER, label="Airport transfer",
                                    unit=OfferingExtra.PER_UNIT, unit_price=100_001, quantity=3, pay_at=pay_at,
                                    status=status)
    quote = cancellation.refund_due(booking, reasons.PATIENT, now)  # 2 of 3 sessions left, 5 days ahead: 50%
    assert (quote.percent, quote.amount) == (50, 900_000 * 2 * 50 // 300)
    assert quote.extras == 300_003 * 2 * 50 // 300 and isinstance(quote.extras, int)
    # extras are part of what was paid: never more than was paid, never more than the refund
    assert cancellation.refund_due(booking, reasons.CLINIC_CANCELLED, now, paid=150_000).extras == 150_000 * 2 // 3


def test_the_refund_steps_promised_are_those_still_ahead(patient, offering):
    now = timezone.now()
    far = booked(patient, offering, [now + 20 * DAY, now + 30 * DAY], 0)
    first = now + 20 * DAY
    assert cancellation.refund_steps(far, now) == [(first - 14 * DAY, 100), (first - 3 * DAY, 50)]
    assert cancellation.refund_steps(far, first - 14 * DAY) == [(first - 3 * DAY, 50)]  # at the step: it is gone
    assert cancellation.refund_steps(far, first - 3 * DAY) == []
    held = booked(patient, offering, [now - DAY, now + 5 * DAY, now + 10 * DAY],
                  0, statuses=[Appointment.BOOKED, Appointment.CANCELLED, Appointment.HELD])
    ten = now + 10 * DAY
    assert cancellation.refund_steps(held, now) == [(ten - 3 * DAY, 50)]  # past and cancelled sessions do not count
    assert cancellation.refund_steps(booked(patient, offering, [now - DAY], 0), now) == []


# --------------------------------------------------------------------------------- the booking's history


def test_a_transition_is_saved_and_logged_with_who_did_it(confirmed, patient):
    booking = states.locked(confirmed)
    states.transition(booking, Booking.COMPLETED, patient, "treated")
    confirmed.refresh_from_db()
    assert confirmed.state == Booking.COMPLETED
    event = BookingEvent.objects.filter(booking=confirmed).latest("id")
    assert (event.from_state, event.to_state, event.actor_id, event.note) == (
        Booking.CONFIRMED, Booking.COMPLETED, patient.pk, "treated")
    with pytest.raises(InvalidTransition):  # completed is final
        states.transition(confirmed, Booking.CANCELLED, patient)
    assert BookingEvent.objects.filter(booking=confirmed).latest("id").pk == event.pk


def test_a_transition_by_nobody_signed_in_records_no_actor(confirmed):
    states.transition(confirmed, Booking.CANCELLED, AnonymousUser())
    event = BookingEvent.objects.filter(booking=confirmed).latest("id")
    assert (event.to_state, event.actor_id, event.note) == (Booking.CANCELLED, None, "")


def test_each_transition_emails_the_patient_even_back_to_the_same_state(quoted, django_capture_on_commit_callbacks):
    mail.outbox.clear()
    for version in ("second version of the quote", "third version"):  # a clinic re-quotes: each is news
        with django_capture_on_commit_callbacks(execute=True):
            states.transition(states.locked(quoted), Booking.QUOTED, None, version)
    assert len(mail.outbox) == 2
    assert all(message.to == [quoted.user.email] for message in mail.outbox)


def test_only_a_second_opinion_under_review_may_be_completed(patient, offering):
    def under_review(offer):
        return Booking.objects.create(user=patient, offering=offer, clinic=offer.clinic, state=Booking.UNDER_REVIEW,
                                      currency=offer.currency, price=offer.price, deposit=0, service_title="edge")

    opinion = Offering.objects.filter(kind=Offering.SECOND_OPINION).select_related("clinic").order_by("id").first()
    assert opinion is not None, "the demo data has a second opinion"
    delivered = under_review(opinion)
    assert states.allowed(delivered, Booking.COMPLETED)
    states.transition(delivered, Booking.COMPLETED, None, "opinion delivered")
    delivered.refresh_from_db()
    assert delivered.state == Booking.COMPLETED

    treatment = under_review(offering)  # a treatment under review is quoted, declined or cancelled, never completed
    assert not states.allowed(treatment, Booking.COMPLETED)
    with pytest.raises(InvalidTransition):
        states.transition(treatment, Booking.COMPLETED, None)
    assert states.allowed(treatment, Booking.QUOTED) and not states.allowed(treatment, Booking.CONFIRMED)
