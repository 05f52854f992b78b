"""The booking engine against the database: slots, holds, courses, refunds, states, sweep, query counts.

Same code on SQLite (default) and PostgreSQL (DATABASE_URL). Time is passed as ``now=`` rather than slept.
"""

from __future__ import annotations

import itertools
from datetime import datetime, timedelta

import pytest
from django.utils import timezone

from bookings.engine import holds, slots
from bookings.errors import BookingError, Busy, InvalidTransition, SlotTaken, http_status
from bookings.lifecycle import cancellation, reasons, states
from bookings.lifecycle import services as lifecycle
from bookings.models import (
    Allocation,
    Appointment,
    Booking,
    BookingEvent,
    Hold,
    OfferingResource,
    Payment,
    Refund,
)
from bookings.review import services as review
from catalog.models import Offering
from tests.bookings.helpers import direct_offering

pytestmark = pytest.mark.django_db

_seq = itertools.count(1)


# --------------------------------------------------------------------------------- helpers


@pytest.fixture
def now():
    return timezone.now().replace(second=0, microsecond=0)


@pytest.fixture
def other_patient(django_user_model):
    return django_user_model.objects.create_user("other", "other@example.com", "a-long-password-2")


def make_user(django_user_model, name):
    return django_user_model.objects.create_user(name, f"{name}@example.com", "a-long-password-3")




def clone_offering(base: Offering, resources, **changes) -> Offering:
    """A new offering of the same page and clinic on the given resources (tests only)."""
    offering = Offering.objects.get(pk=base.pk)
    offering.pk = offering.id = None
    for name, value in changes.items():
        setattr(offering, name, value)
    offering.save()
    OfferingResource.objects.bulk_create([OfferingResource(offering=offering, resource=r) for r in resources])
    return Offering.objects.select_related("clinic", "page").get(pk=offering.pk)


def course_offering() -> Offering:
    """A course held whole (e.g. tomotherapy); made from another offering if the catalogue has none."""
    offering = (Offering.objects.filter(sessions__gt=1, spacing="consecutive_working_days", is_active=True,
                                        resource_links__isnull=False)
                .select_related("clinic", "page").order_by("id").first())
    if offering is None:
        base = direct_offering()
        offering = clone_offering(base, [link.resource for link in base.resource_links.all()], sessions=5,
                                  spacing=Offering.CONSECUTIVE, spacing_offsets=[], review_required=True,
                                  session_minutes=30, slot_step_minutes=30)
    return offering


def resources_of(offering):
    return [link.resource for link in OfferingResource.objects.filter(offering=offering).select_related("resource")
            .order_by("resource_id")]


def quoted_booking(user, offering) -> Booking:
    return Booking.objects.create(user=user, offering=offering, clinic=offering.clinic, state=Booking.QUOTED,
                                  currency=offering.currency, price=offering.price, deposit=offering.deposit,
                                  service_title=offering.page.title)


def first_slot(offering, now, days_ahead=4, span=10):
    day = (now + timedelta(days=days_ahead)).astimezone(offering.clinic.tz).date()
    options = slots.offering_slots(offering, day, day + timedelta(days=span), now)
    assert options, f"no slots for {offering} from {day}"
    return options[0]


def starts(offering, option, now):
    day = option.start.astimezone(offering.clinic.tz).date()
    return {o.start for o in slots.offering_slots(offering, day, day, now)}


def live_allocations(resource_id, start, end, now):
    from django.db.models import Q

    return (Allocation.objects.filter(resource_id=resource_id, live=True, start__lt=end, end__gt=start)
            .filter(Q(expires_at__isnull=True) | Q(expires_at__gt=now)))


def paid_booking(user, offering, session_starts, paid, statuses=None, state=Booking.CONFIRMED) -> Booking:
    """A booking with booked appointments and one succeeded payment of ``paid``."""
    booking = Booking.objects.create(user=user, offering=offering, clinic=offering.clinic, state=state,
                                     currency=offering.currency, price=max(paid, offering.price), deposit=paid,
                                     service_title="test")
    duration = timedelta(minutes=offering.session_minutes)
    for seq, start in enumerate(session_starts, start=1):
        status = statuses[seq - 1] if statuses else Appointment.BOOKED
        Appointment.objects.create(booking=booking, offering=offering, seq=seq, start=start, end=start + duration,
                                   status=status)
    if paid:
        n = next(_seq)
        Payment.objects.create(booking=booking, amount=paid, currency=offering.currency, state=Payment.SUCCEEDED,
                               intent_id=f"pi_test_{n}", idempotency_key=f"test-pay-{n}")
    return booking


# --------------------------------------------------------------------------------- slots and holds


def test_slots_respect_notice_and_horizon(now):
    offering = direct_offering()
    offering.horizon_days = 30
    offering.save(update_fields=["horizon_days"])
    tz = offering.clinic.tz
    today = now.astimezone(tz).date()
    options = slots.offering_slots(offering, today, today + timedelta(days=45), now)
    assert options
    earliest = now + timedelta(hours=offering.notice_hours)
    latest = now + timedelta(days=offering.horizon_days)
    assert all(earliest <= o.start < latest for o in options)
    assert options[0].start < earliest + timedelta(days=4)  # the first working days after the notice are offered
    assert options[-1].start > latest - timedelta(days=5)  # ...and so are days just inside the horizon
    assert all(o.start.astimezone(tz).weekday() < 5 for o in options)  # demo hours are Mon-Fri
    # nothing inside the notice period, nothing past the horizon
    assert slots.offering_slots(offering, today, today + timedelta(days=1), now) == []
    past = (latest + timedelta(days=1)).astimezone(tz).date()
    assert slots.offering_slots(offering, past, past + timedelta(days=10), now) == []


def test_hold_takes_the_slot_and_is_idempotent_per_client_key(patient, other_patient, now):
    offering = direct_offering()
    option = first_slot(offering, now)
    assert option.start in starts(offering, option, now)

    hold = holds.place_hold(patient, offering, option.start, "key-1", now)
    assert hold.status == Hold.ACTIVE
    assert hold.expires_at == now + timedelta(minutes=offering.hold_minutes)
    assert option.start not in starts(offering, option, now)

    again = holds.place_hold(patient, offering, option.start, "key-1", now)  # double click / retry
    assert again.pk == hold.pk
    assert Hold.objects.filter(user=patient).count() == 1
    assert Appointment.objects.filter(hold=hold).count() == 1

    with pytest.raises(SlotTaken) as taken:
        holds.place_hold(other_patient, offering, option.start, "key-other", now)
    assert taken.value.code == "taken"
    assert option.start not in {o.start for o in taken.value.alternatives}
    assert not Hold.objects.filter(user=other_patient).exists()
    for resource in resources_of(offering):
        assert live_allocations(resource.id, option.sessions[0][0], option.sessions[0][1], now).count() == 1

    other = Offering.objects.filter(resource_links__isnull=False).exclude(pk=offering.pk).order_by("id").first()
    with pytest.raises(BookingError) as wrong:
        holds.place_hold(patient, other, option.start, "key-1", now)
    assert wrong.value.code == "client_key"


def test_hold_expires_and_slot_is_free_again(patient, other_patient, now):
    offering = direct_offering()
    option = first_slot(offering, now)
    hold = holds.place_hold(patient, offering, option.start, "k", now)
    assert option.start not in starts(offering, option, now)

    later = now + timedelta(minutes=offering.hold_minutes + 1)
    assert not holds.hold_is_live(hold, later)
    assert option.start in starts(offering, option, later)  # free without any sweep
    assert Allocation.objects.filter(appointment__hold=hold, live=True).exists()  # (nothing swept yet)

    second = holds.place_hold(other_patient, offering, option.start, "k2", later)
    assert second.pk != hold.pk
    assert not Allocation.objects.filter(appointment__hold=hold, live=True).exists()  # stale one released
    hold.refresh_from_db()
    assert hold.status == Hold.EXPIRED
    assert set(hold.appointments.values_list("status", flat=True)) == {Appointment.RELEASED}
    assert option.start not in starts(offering, option, later)
    with pytest.raises(BookingError) as late:
        lifecycle.create_booking_from_hold(patient, hold, later)
    assert late.value.code == "hold_expired"


def test_release_hold_frees_the_slot(patient, other_patient, now):
    offering = direct_offering()
    option = first_slot(offering, now)
    hold = holds.place_hold(patient, offering, option.start, "k", now)
    released = holds.release_hold(patient, hold, now)
    assert released.status == Hold.RELEASED
    assert not Allocation.objects.filter(appointment__hold=hold, live=True).exists()
    assert set(hold.appointments.values_list("status", flat=True)) == {Appointment.RELEASED}
    assert option.start in starts(offering, option, now)
    assert holds.release_hold(patient, hold, now).status == Hold.RELEASED  # twice is harmless
    holds.place_hold(other_patient, offering, option.start, "k", now)


def test_direct_booking_from_hold_is_idempotent(patient, now):
    offering = direct_offering()
    option = first_slot(offering, now)
    hold = holds.place_hold(patient, offering, option.start, "k", now)
    booking = lifecycle.create_booking_from_hold(patient, hold, now)
    assert booking.state == Booking.AWAITING_PAYMENT
    assert booking.deposit == offering.deposit
    assert booking.payment_due_at == now + timedelta(minutes=offering.hold_minutes)
    assert lifecycle.create_booking_from_hold(patient, hold, now).pk == booking.pk
    assert list(booking.appointments.values_list("start", flat=True)) == [option.start]
    assert set(Allocation.objects.filter(appointment__booking=booking).values_list("expires_at", flat=True)) == {
        booking.payment_due_at}


# --------------------------------------------------------------------------------- courses


def test_course_is_held_whole(patient, now):
    course = course_offering()
    assert course.sessions > 1
    with pytest.raises(BookingError) as review:
        holds.place_hold(patient, course, now + timedelta(days=5), "k", now)
    assert review.value.code == "review_required"

    booking = quoted_booking(patient, course)
    option = first_slot(course, now, days_ahead=4, span=7)
    assert len(option.sessions) == course.sessions
    hold = holds.place_hold(patient, course, option.start, "course", now, booking=booking)
    appointments = list(hold.appointments.order_by("seq"))
    assert len(appointments) == course.sessions
    assert [a.seq for a in appointments] == list(range(1, course.sessions + 1))
    assert [(a.start, a.end) for a in appointments] == list(option.sessions)
    tz = course.clinic.tz
    dates = [a.start.astimezone(tz).date() for a in appointments]
    assert len(set(dates)) == course.sessions  # one session a day
    assert all(d.weekday() < 5 for d in dates)  # working days only
    for a, b in zip(dates, dates[1:], strict=False):  # consecutive working days: only weekend days in between
        assert a < b
        assert all((a + timedelta(days=k)).weekday() >= 5 for k in range(1, (b - a).days))
    resources = resources_of(course)
    assert Allocation.objects.filter(appointment__hold=hold, live=True).count() == course.sessions * len(resources)
    assert option.start not in starts(course, option, now)


def test_two_courses_overlapping_on_one_session_one_wins_whole(patient, other_patient, django_user_model, now):
    course = course_offering()
    option = first_slot(course, now, days_ahead=4, span=7)
    before = Appointment.objects.count()

    # another patient's single session on the same machine, exactly at the course's first session
    single = clone_offering(course, resources_of(course)[:1], sessions=1, spacing=Offering.SINGLE,
                            spacing_offsets=[], review_required=False)
    holds.place_hold(other_patient, single, option.start, "single", now)
    assert option.start not in starts(course, option, now)
    with pytest.raises(SlotTaken):
        holds.place_hold(patient, course, option.start, "course", now, booking=quoted_booking(patient, course))
    assert Appointment.objects.count() == before + 1  # only the single session: no partial course
    assert not Hold.objects.filter(user=patient).exists()

    # a whole course against another whole course on the same dates: the second gets nothing
    third = make_user(django_user_model, "third")
    fourth = make_user(django_user_model, "fourth")
    option = first_slot(course, now, days_ahead=12, span=7)
    won = holds.place_hold(third, course, option.start, "c", now, booking=quoted_booking(third, course))
    assert won.appointments.count() == course.sessions
    with pytest.raises(SlotTaken):
        holds.place_hold(fourth, course, option.start, "c", now, booking=quoted_booking(fourth, course))
    assert not Appointment.objects.filter(hold__user=fourth).exists()
    assert not Appointment.objects.filter(booking__user=fourth).exists()


def test_a_fully_booked_day_breaks_every_course_across_it(patient, other_patient, now):
    course = course_offering()
    option = first_slot(course, now, days_ahead=4, span=7)
    tz = course.clinic.tz
    blocked_day = option.sessions[1][0].astimezone(tz).date()  # the course's second session
    day_start = datetime.combine(blocked_day, datetime.min.time(), tzinfo=tz)
    machine = resources_of(course)[0]
    other = paid_booking(other_patient, course, [day_start], paid=0)
    appointment = other.appointments.get()
    Appointment.objects.filter(pk=appointment.pk).update(end=day_start + timedelta(days=1))
    Allocation.objects.create(appointment=appointment, resource=machine, unit=0, start=day_start,
                              end=day_start + timedelta(days=1))

    first_day = option.start.astimezone(tz).date()
    options = slots.offering_slots(course, first_day, first_day + timedelta(days=10), now)
    assert all(s.astimezone(tz).date() != blocked_day for o in options for s, _e in o.sessions)
    assert option.start not in {o.start for o in options}
    with pytest.raises(SlotTaken):
        holds.place_hold(patient, course, option.start, "c", now, booking=quoted_booking(patient, course))
    assert not Appointment.objects.filter(hold__user=patient).exists()


# --------------------------------------------------------------------------------- refunds


def _refund(booking, reason, now):
    return cancellation.refund_due(booking, reason, now)


@pytest.mark.parametrize(("days_before", "percent"), [
    (30, 100), (14, 100), (13.9, 50), (7, 50), (3, 50), (2.9, 0), (1, 0), (0.1, 0),
])
def test_refund_by_notice(patient, now, days_before, percent):
    offering = direct_offering()
    paid = 1_000_001
    booking = paid_booking(patient, offering, [now + timedelta(days=days_before)], paid)
    quote = _refund(booking, reasons.PATIENT, now)
    assert quote.paid == paid
    assert quote.percent == percent
    assert quote.amount == paid * percent // 100
    assert quote.explanation


@pytest.mark.parametrize("reason", [reasons.VISA_REFUSED, reasons.CLINIC_CANCELLED, reasons.UNFIT_ON_ARRIVAL])
def test_full_refund_when_it_is_not_the_patients_choice(patient, now, reason):
    booking = paid_booking(patient, direct_offering(), [now + timedelta(hours=20)], 500_000)
    quote = _refund(booking, reason, now)
    assert (quote.percent, quote.amount) == (100, 500_000)


def test_refund_is_never_more_than_paid(patient, now):
    offering = direct_offering()
    booking = paid_booking(patient, offering, [now + timedelta(days=30)], 400_000)
    payment = booking.payments.get()
    Refund.objects.create(payment=payment, amount=150_000, currency=payment.currency, reason="goodwill",
                          state=Refund.SUCCEEDED, idempotency_key="r-1")
    quote = _refund(booking, reasons.CLINIC_CANCELLED, now)
    assert quote.paid == 250_000
    assert quote.amount == 250_000
    # a failed refund attempt does not count as refunded; a deposit booked above what was paid does not matter
    Refund.objects.create(payment=payment, amount=250_000, currency=payment.currency, reason="x",
                          state=Refund.FAILED, idempotency_key="r-2")
    Booking.objects.filter(pk=booking.pk).update(deposit=10_000_000)
    assert _refund(booking, reasons.VISA_REFUSED, now).amount == 250_000
    # unpaid booking: nothing to refund
    unpaid = paid_booking(patient, offering, [now + timedelta(days=30)], 0, state=Booking.AWAITING_PAYMENT)
    assert _refund(unpaid, reasons.CLINIC_CANCELLED, now).amount == 0


def test_course_refunds_only_unused_sessions(patient, now):
    course = course_offering()
    paid = 1_000_000
    days = [now - timedelta(days=3), now - timedelta(days=2), now - timedelta(days=1), now - timedelta(hours=2)]
    days += [now + timedelta(days=20 + i) for i in range(6)]
    statuses = [Appointment.ATTENDED] * 3 + [Appointment.NO_SHOW] + [Appointment.BOOKED] * 6
    booking = paid_booking(patient, course, days, paid, statuses)
    quote = _refund(booking, reasons.CLINIC_CANCELLED, now)
    assert (quote.unused_sessions, quote.total_sessions) == (6, 10)
    assert quote.amount == paid * 6 // 10
    # the patient cancels with the next session 20 days away: full share of the unused sessions
    assert _refund(booking, reasons.PATIENT, now).amount == paid * 6 // 10
    # ...and 5 days before the next session: half of it
    assert _refund(booking, reasons.PATIENT, now + timedelta(days=15)).amount == paid * 6 // 10 // 2
    # all sessions used: nothing left to refund, whatever the reason
    assert _refund(booking, reasons.CLINIC_CANCELLED, now + timedelta(days=40)).amount == 0


# --------------------------------------------------------------------------------- states


def review_offering() -> Offering:
    offering = (Offering.objects.filter(review_required=True, sessions=1, is_active=True,
                                        resource_links__isnull=False)
                .select_related("clinic", "page").order_by("id").first())
    assert offering is not None
    return offering


def test_invalid_transitions_raise_and_valid_ones_are_logged(patient, django_user_model):
    staff = make_user(django_user_model, "coordinator")
    booking = review.request_treatment(patient, review_offering(), note="MRI attached")
    assert list(booking.events.values_list("from_state", "to_state")) == [("", Booking.REQUESTED)]

    with pytest.raises(InvalidTransition):
        states.transition(booking, Booking.CONFIRMED, staff)
    booking.refresh_from_db()
    assert booking.state == Booking.REQUESTED
    assert booking.events.count() == 1

    # every transition the table does not allow is refused, from every state
    for from_state, allowed in states.TRANSITIONS.items():
        for to_state in dict(Booking.STATE_CHOICES):
            if to_state in allowed:
                continue
            booking.state = from_state
            with pytest.raises(InvalidTransition) as refused:
                states.transition(booking, to_state, staff)
            assert refused.value.code == "invalid_state"
    booking.refresh_from_db()
    assert booking.state == Booking.REQUESTED
    assert BookingEvent.objects.filter(booking=booking).count() == 1

    review.start_review(booking, staff)
    review.start_review(booking, staff)  # idempotent: no second event
    with pytest.raises(BookingError):
        review.decline(booking, staff, "  ")
    review.decline(booking, staff, "Not a candidate for radiosurgery")
    events = list(booking.events.values_list("from_state", "to_state", "actor_id", "note"))
    assert events[1:] == [
        (Booking.REQUESTED, Booking.UNDER_REVIEW, staff.pk, "review started"),
        (Booking.UNDER_REVIEW, Booking.DECLINED, staff.pk, "Not a candidate for radiosurgery"),
    ]
    booking.refresh_from_db()
    assert booking.state == Booking.DECLINED
    assert booking.decline_reason == "Not a candidate for radiosurgery"
    with pytest.raises(InvalidTransition):
        review.start_review(booking, staff)  # declined is final


def test_quote_flow_moves_through_states(patient, django_user_model, now):
    staff = make_user(django_user_model, "coordinator")
    offering = review_offering()
    booking = review.request_treatment(patient, offering)
    with pytest.raises(BookingError):
        review.request_treatment(patient, direct_offering())
    window_start = (now + timedelta(days=10)).astimezone(offering.clinic.tz).date()
    quote = review.send_quote(booking, staff, price=offering.price, deposit=offering.deposit, included="all",
                                treatment_plan="one session", window_start=window_start,
                                window_end=window_start + timedelta(days=20), valid_until=now + timedelta(days=7))
    booking.refresh_from_db()
    assert booking.state == Booking.QUOTED
    assert quote.version == 1
    options = review.quote_slots(booking, now)
    assert options and all(o.start.astimezone(offering.clinic.tz).date() >= window_start for o in options)
    with pytest.raises(BookingError) as outside:
        review.accept_quote(patient, booking, now + timedelta(days=3), "k", now)
    assert outside.value.code == "window"
    booking = review.accept_quote(patient, booking, options[0].start, "k", now)
    assert booking.state == Booking.AWAITING_PAYMENT
    assert [e.to_state for e in booking.events.all()] == [
        Booking.REQUESTED, Booking.UNDER_REVIEW, Booking.QUOTED, Booking.AWAITING_PAYMENT]
    assert booking.appointments.get().start == options[0].start


# --------------------------------------------------------------------------------- sweep


def test_sweep_expires_unpaid_bookings_and_stale_holds(patient, other_patient, now):
    offering = direct_offering()
    option = first_slot(offering, now)
    hold = holds.place_hold(patient, offering, option.start, "k", now)
    booking = lifecycle.create_booking_from_hold(patient, hold, now)
    option2 = first_slot(offering, now, days_ahead=9)
    stale = holds.place_hold(other_patient, offering, option2.start, "k", now)
    # a third booking whose payment is in flight is left for the webhook to decide
    option3 = first_slot(offering, now, days_ahead=16)
    paying = lifecycle.create_booking_from_hold(
        other_patient, holds.place_hold(other_patient, offering, option3.start, "k3", now), now)
    Payment.objects.create(booking=paying, amount=paying.deposit, currency=paying.currency,
                           state=Payment.PROCESSING, idempotency_key="sweep-processing")

    assert lifecycle.sweep(now)["expired_bookings"] == 0  # nothing is due yet
    booking.refresh_from_db()
    assert booking.state == Booking.AWAITING_PAYMENT

    later = now + timedelta(minutes=offering.hold_minutes + 1)
    result = lifecycle.sweep(later)
    assert result["expired_bookings"] == 1
    assert result["released_allocations"] >= 2
    booking.refresh_from_db()
    assert booking.state == Booking.EXPIRED
    assert booking.events.filter(to_state=Booking.EXPIRED).count() == 1
    assert set(booking.appointments.values_list("status", flat=True)) == {Appointment.RELEASED}
    assert not Allocation.objects.filter(appointment__booking=booking, live=True).exists()
    stale.refresh_from_db()
    assert stale.status == Hold.EXPIRED
    paying.refresh_from_db()
    assert paying.state == Booking.AWAITING_PAYMENT
    assert lifecycle.sweep(later) == {"released_allocations": 0, "expired_bookings": 0}  # idempotent
    assert option.start in starts(offering, option, later)


# --------------------------------------------------------------------------------- query count


def test_offering_slots_query_count_does_not_grow_with_bookings(django_assert_max_num_queries, patient, now):
    offering = Offering.objects.select_related("clinic", "page").get(pk=direct_offering().pk)
    tz = offering.clinic.tz
    first = (now + timedelta(days=3)).astimezone(tz).date()
    last = first + timedelta(days=30)
    with django_assert_max_num_queries(8) as before:
        empty = slots.offering_slots(offering, first, last, now)
    assert empty

    resource = resources_of(offering)[0]
    booking = paid_booking(patient, offering, [], paid=0)
    base = datetime.combine(first, datetime.min.time(), tzinfo=tz)
    ranges = [(base + timedelta(hours=2 * i), base + timedelta(hours=2 * i, minutes=45)) for i in range(300)]
    Appointment.objects.bulk_create([
        Appointment(booking=booking, offering=offering, seq=i + 1, start=s, end=e, status=Appointment.BOOKED)
        for i, (s, e) in enumerate(ranges)])
    appointments = list(Appointment.objects.filter(booking=booking).order_by("seq"))
    Allocation.objects.bulk_create([Allocation(appointment=a, resource=resource, unit=0, start=a.start, end=a.end)
                                    for a in appointments])
    assert Allocation.objects.filter(resource=resource, live=True).count() >= 300

    with django_assert_max_num_queries(8) as after:
        busy = slots.offering_slots(offering, first, last, now)
    assert len(after) == len(before)
    assert len(busy) < len(empty)
    taken = sorted(ranges)
    for option in busy:
        (s, e), = option.sessions
        assert not any(a < e and s < b for a, b in taken), f"{s} overlaps a booked session"


def test_busy_is_a_booking_error():
    assert issubclass(Busy, BookingError) and http_status(Busy()) == 503 and Busy().code == "busy"
