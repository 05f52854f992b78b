"""The waitlist for a scarce machine: a freed Gamma Knife start goes to the first waiting patient, then to the next
when the first lets it pass; racing offers never give one start to two patients."""

from __future__ import annotations

import threading
from datetime import datetime, time, timedelta

import pytest
from django.db import connection
from django.utils import timezone, translation

from bookings.engine import calendar, slots, waitlist
from bookings.errors import BookingError
from bookings.lifecycle import cancellation, reasons
from bookings.models import Allocation, AvailabilityException, Booking, Hold, WaitlistEntry
from bookings.review import services as review

from .helpers import gamma_knife, one_start_day, patient_of, quoted_for


def _full_day(django_user_model, offering):
    """A Gamma Knife day with room for one session, taken by patient C (confirmed)."""
    day, exceptions = one_start_day(offering)
    options = slots.offering_slots(offering, day, day)
    assert options, "the day has its one start"
    c = patient_of(django_user_model, "wl-c", "KG")
    booking_c = quoted_for(c, offering, day, day)
    booking_c = review.accept_quote(c, booking_c, options[0].start, "c-1")
    assert booking_c.state == Booking.AWAITING_PAYMENT
    assert slots.offering_slots(offering, day, day) == []
    return day, c, booking_c, options[0].start


@pytest.mark.django_db
def test_a_freed_gamma_knife_start_goes_to_the_first_waiting_patient_then_the_next(
        django_user_model, mailoutbox, django_capture_on_commit_callbacks, settings):
    settings.WAITLIST_OFFER_MINUTES = 60
    offering = gamma_knife()
    day, c, booking_c, start = _full_day(django_user_model, offering)
    a = patient_of(django_user_model, "wl-a", "UZ", lang="ru")
    b = patient_of(django_user_model, "wl-b", "TJ", lang="tg")
    with translation.override("ru"):
        entry_a = waitlist.join(a, offering, day, day, booking=quoted_for(a, offering, day, day))
    entry_b = waitlist.join(b, offering, day, day, booking=quoted_for(b, offering, day, day))
    assert (waitlist.position(entry_a), waitlist.position(entry_b)) == (1, 2)
    with pytest.raises(BookingError):  # one open entry per patient and treatment
        waitlist.join(b, offering, day, day, booking=entry_b.booking)

    # C cancels: on commit, the waitlist task offers the freed start to A (first), held, with an email
    with django_capture_on_commit_callbacks(execute=True):
        cancellation.cancel_booking(booking_c, c, reasons.PATIENT)
    entry_a.refresh_from_db()
    entry_b.refresh_from_db()
    assert entry_a.status == WaitlistEntry.OFFERED and entry_b.status == WaitlistEntry.WAITING
    hold = entry_a.hold
    assert hold.status == Hold.ACTIVE and hold.user_id == a.pk
    assert hold.appointments.get().start == start
    assert abs((hold.expires_at - timezone.now()) - timedelta(minutes=60)) < timedelta(minutes=2)
    offers = [m for m in mailoutbox if "/my/waitlist/" in m.body and m.to[0].startswith("wl-")]
    assert [m.to for m in offers] == [[a.email]]
    assert "/ru/my/waitlist/" in offers[0].body  # the link in A's language
    # nobody else can take the held start meanwhile
    assert slots.offering_slots(offering, day, day) == []

    # A lets it pass (the hold runs out): the next run offers the same start to B
    later = timezone.now() + timedelta(minutes=61)
    with django_capture_on_commit_callbacks(execute=True):
        result = waitlist.run(now=later)
    assert result["lapsed"] == 1 and result["offered"] == 1
    entry_a.refresh_from_db()
    entry_b.refresh_from_db()
    assert entry_a.status == WaitlistEntry.LAPSED and entry_b.status == WaitlistEntry.OFFERED
    assert entry_b.hold.appointments.get().start == start
    offers = [m for m in mailoutbox if "/my/waitlist/" in m.body and m.to[0].startswith("wl-")]
    assert [m.to for m in offers] == [[a.email], [b.email]]

    # B takes it: the quote is accepted with those dates, awaiting the deposit
    booking_b = waitlist.accept(entry_b, b)
    assert booking_b.state == Booking.AWAITING_PAYMENT
    assert booking_b.appointments.exclude(status="released").get().start == start
    entry_b.refresh_from_db()
    assert entry_b.status == WaitlistEntry.BOOKED


@pytest.mark.django_db
def test_no_waitlist_while_the_window_has_free_starts(django_user_model):
    offering = gamma_knife()
    day, _exceptions = one_start_day(offering)
    a = patient_of(django_user_model, "wl-free", "RU")
    with pytest.raises(BookingError) as exc:
        waitlist.join(a, offering, day, day, booking=quoted_for(a, offering, day, day))
    assert exc.value.code == "slots_free"


@pytest.mark.django_db
def test_new_hours_reach_the_waitlist(django_user_model, django_capture_on_commit_callbacks):
    offering = gamma_knife()
    day, exceptions = one_start_day(offering)
    tz = offering.clinic.tz
    closed = [AvailabilityException.objects.create(  # the one start closed too
        resource=link.resource, kind=AvailabilityException.CLOSED, start=datetime.combine(day, time(9), tz),
        end=datetime.combine(day, time(14), tz), reason="test") for link in offering.resource_links.all()]
    assert slots.offering_slots(offering, day, day) == []
    a = patient_of(django_user_model, "wl-hours", "RU")
    entry = waitlist.join(a, offering, day, day, booking=quoted_for(a, offering, day, day))
    with django_capture_on_commit_callbacks(execute=True):
        for ex in closed:
            calendar.remove_exception(ex.resource, ex, None)
    entry.refresh_from_db()
    assert entry.status == WaitlistEntry.OFFERED


@pytest.mark.django_db(transaction=True, serialized_rollback=True)
def test_two_racing_offers_never_double_book(django_user_model, keep_catalogue):
    offering = gamma_knife()
    day, c, booking_c, start = _full_day(django_user_model, offering)
    a = patient_of(django_user_model, "race-a", "RU")
    b = patient_of(django_user_model, "race-b", "RU")
    entry_a = waitlist.join(a, offering, day, day, booking=quoted_for(a, offering, day, day))
    entry_b = waitlist.join(b, offering, day, day, booking=quoted_for(b, offering, day, day))
    # free the start without running the waitlist (no on-commit here: the racers are the only offers)
    Allocation.objects.filter(appointment__booking=booking_c).update(live=False)
    Booking.objects.filter(pk=booking_c.pk).update(state=Booking.CANCELLED)

    barrier = threading.Barrier(4)
    errors = []

    def racer(call):
        try:
            barrier.wait()
            call()
        except Exception as exc:  # noqa: BLE001 - collected and asserted below
            errors.append(exc)
        finally:
            connection.close()

    now = timezone.now()
    calls = [lambda: waitlist.run(now=now), lambda: waitlist.run(now=now),
             lambda: waitlist._offer(entry_b.pk, now), lambda: waitlist._offer(entry_a.pk, now)]
    threads = [threading.Thread(target=racer, args=(call,)) for call in calls]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not [e for e in errors if not isinstance(e, BookingError)], errors
    live = list(Allocation.objects.blocking().filter(start__date__gte=day - timedelta(days=1),
                                                     start__date__lte=day + timedelta(days=1),
                                                     appointment__offering=offering))
    holders = {a_.appointment.hold.user_id for a_ in live if a_.appointment.hold_id}
    assert len(holders) == 1, "one patient holds the start"
    per_resource = {}
    for alloc in live:
        per_resource.setdefault((alloc.resource_id, alloc.unit), []).append(alloc)
    for allocs in per_resource.values():
        allocs.sort(key=lambda x: x.start)
        for x, y in zip(allocs, allocs[1:], strict=False):
            assert x.end <= y.start, "no overlap on one machine"
    offered = WaitlistEntry.objects.filter(offering=offering, status=WaitlistEntry.OFFERED)
    assert offered.count() == 1
    assert WaitlistEntry.objects.filter(offering=offering, status=WaitlistEntry.WAITING).count() == 1
