"""Many patients racing for one slot, each in its own thread and database connection.

PostgreSQL: resource row locks + the exclusion constraint. SQLite: IMMEDIATE transactions serialise
the writers. Either way exactly one wins and the others get a clean SlotTaken (or Busy).
"""

from __future__ import annotations

import threading
from datetime import timedelta

import pytest
from django.db import connection
from django.utils import timezone

from bookings.engine import holds, slots
from bookings.errors import Busy, SlotTaken
from bookings.models import Allocation, Appointment, Booking, Hold, OfferingResource
from catalog.models import Offering

# serialized_rollback: a transactional test empties every table afterwards; this puts back the catalogue
# and demo data the session loaded (see _keep_catalogue) for the next test.
pytestmark = pytest.mark.django_db(transaction=True, serialized_rollback=True)


@pytest.fixture(scope="module", autouse=True)
def _keep_catalogue(keep_catalogue):
    """The catalogue is there for every test here (tests/conftest.py)."""


def racers() -> int:
    # SQLite serialises every writer: fewer threads keep the test quick; still a real race.
    return 50 if connection.vendor == "postgresql" else 16


def direct_offering() -> Offering:
    qs = (Offering.objects.filter(review_required=False, sessions=1, is_active=True, resource_links__isnull=False)
          .select_related("clinic", "page").order_by("id"))
    offering = qs.filter(page__equipment__icontains="gamma").first() or qs.filter(
        page__import_key="pet_ct_fdg").first() or qs.first()
    assert offering is not None
    return offering


def course_offering() -> Offering:
    offering = (Offering.objects.filter(sessions__gt=1, spacing="consecutive_working_days", is_active=True,
                                        resource_links__isnull=False)
                .select_related("clinic", "page").order_by("id").first())
    if offering is None:  # the catalogue has none yet: make one on a direct offering's resources
        base = direct_offering()
        resources = [link.resource for link in base.resource_links.all()]
        offering = Offering.objects.get(pk=base.pk)
        offering.pk = offering.id = None
        offering.sessions, offering.spacing, offering.spacing_offsets = 5, Offering.CONSECUTIVE, []
        offering.review_required, offering.session_minutes = True, 30
        offering.save()
        OfferingResource.objects.bulk_create([OfferingResource(offering=offering, resource=r) for r in resources])
        offering = Offering.objects.select_related("clinic", "page").get(pk=offering.pk)
    return offering


def first_option(offering, now, days_ahead=5):
    day = (now + timedelta(days=days_ahead)).astimezone(offering.clinic.tz).date()
    options = slots.offering_slots(offering, day, day + timedelta(days=10), now)
    assert options
    return options[0]


def make_users(django_user_model, n, prefix):
    return [django_user_model.objects.create_user(f"{prefix}{i}", f"{prefix}{i}@example.com", "a-long-password-9")
            for i in range(n)]


def race(calls):
    """Run each call in its own thread, all released at once; returns [(index, result or exception)]."""
    barrier = threading.Barrier(len(calls))
    results: list = [None] * len(calls)

    def run(i, call):
        try:
            barrier.wait(timeout=60)
            results[i] = call()
        except BaseException as exc:  # noqa: BLE001 - the test inspects every outcome
            results[i] = exc
        finally:
            connection.close()

    threads = [threading.Thread(target=run, args=(i, call)) for i, call in enumerate(calls)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    assert not any(t.is_alive() for t in threads), "a racer hung"
    return results


def _outcomes(results):
    won = [r for r in results if isinstance(r, Hold)]
    lost = [r for r in results if isinstance(r, (SlotTaken, Busy))]
    other = [r for r in results if not isinstance(r, (Hold, SlotTaken, Busy))]
    busy = sum(isinstance(r, Busy) for r in results)
    print(f"{connection.vendor}: {len(won)} won, {len(lost) - busy} slot taken, {busy} busy, {len(other)} other")
    return won, lost, other


def test_fifty_patients_race_for_the_last_gamma_knife_slot(django_user_model):
    now = timezone.now().replace(second=0, microsecond=0)
    offering = direct_offering()
    option = first_option(offering, now)
    users = make_users(django_user_model, racers(), "racer")

    results = race([
        (lambda u=u, i=i: holds.place_hold(u, offering, option.start, f"race-{i}", now))
        for i, u in enumerate(users)])

    won, lost, other = _outcomes(results)
    assert other == [], f"unexpected errors: {other!r}"
    assert len(won) == 1
    assert len(lost) == len(users) - 1
    assert Hold.objects.count() == 1
    assert Appointment.objects.filter(offering=offering, status=Appointment.HELD).count() == 1
    session_start, session_end = option.sessions[0]
    for link in OfferingResource.objects.filter(offering=offering):
        live = Allocation.objects.filter(resource_id=link.resource_id, live=True, start__lt=session_end,
                                         end__gt=session_start)
        assert live.count() == 1
        assert live.get().appointment.hold_id == won[0].pk
    assert option.start not in {o.start for o in slots.offering_slots(
        offering, option.start.astimezone(offering.clinic.tz).date(),
        option.start.astimezone(offering.clinic.tz).date(), now)}


def test_two_overlapping_courses_race_one_wins_whole(django_user_model):
    now = timezone.now().replace(second=0, microsecond=0)
    course = course_offering()
    option = first_option(course, now)
    users = make_users(django_user_model, 2 if connection.vendor == "sqlite" else 6, "course")
    bookings = [Booking.objects.create(user=u, offering=course, clinic=course.clinic, state=Booking.QUOTED,
                                       currency=course.currency, price=course.price, deposit=course.deposit,
                                       service_title="course") for u in users]

    results = race([
        (lambda u=u, b=b: holds.place_hold(u, course, option.start, "course", now, booking=b))
        for u, b in zip(users, bookings, strict=True)])

    won, lost, other = _outcomes(results)
    assert other == [], f"unexpected errors: {other!r}"
    assert len(won) == 1 and len(lost) == len(users) - 1
    winner = won[0]
    assert winner.appointments.count() == course.sessions
    assert Appointment.objects.filter(offering=course).count() == course.sessions  # nothing partial for losers
    resources = OfferingResource.objects.filter(offering=course).count()
    assert Allocation.objects.filter(appointment__offering=course, live=True).count() == course.sessions * resources
    assert Hold.objects.filter(offering=course).count() == 1
