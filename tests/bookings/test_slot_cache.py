"""The slots patients browse are cached (bookings.engine.slots.offering_slots, versions.py): every write that
changes free time shows at once, in every door, and a hold that runs out frees its time without a sweep."""

from __future__ import annotations

import time
from datetime import timedelta

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from bookings.engine import calendar, holds
from bookings.models import Allocation, AvailabilityException, Hold, OfferingResource, Resource, WeeklyHours
from catalog.models import Offering
from tests.bookings.helpers import direct_offering

pytestmark = pytest.mark.django_db


def starts(client, offering, days=14):
    today = timezone.now().astimezone(offering.clinic.tz).date()
    response = client.get(f"/api/v1/offerings/{offering.pk}/slots", {"start": today, "end": today + timedelta(days)})
    assert response.status_code == 200, response.content
    return [s["start"] for s in response.json()["slots"]]


def first_start(client, offering):
    found = starts(client, offering)
    assert found, "the demo offering has free slots in the next two weeks"
    return found[0]


def test_a_second_look_is_served_from_the_cache_without_the_database(client):
    offering = direct_offering()
    first = starts(client, offering)
    with CaptureQueriesContext(connection) as ctx:
        again = starts(client, offering)
    assert again == first
    assert len(ctx.captured_queries) == 0, [q["sql"][:120] for q in ctx.captured_queries]


def test_a_hold_takes_its_slot_out_of_everyone_s_list_at_once(client, patient, django_user_model):
    offering = direct_offering()
    start = first_start(client, offering)  # cached now
    other = django_user_model.objects.create_user("racer", "racer@example.com", "a-long-password-9")
    from datetime import datetime

    holds.place_hold(other, offering, datetime.fromisoformat(start), "k1")
    assert start not in starts(client, offering)


def test_a_released_hold_gives_its_slot_back_at_once(client, patient):
    offering = direct_offering()
    start = first_start(client, offering)
    from datetime import datetime

    hold = holds.place_hold(patient, offering, datetime.fromisoformat(start), "k2")
    assert start not in starts(client, offering)
    holds.release_hold(patient, hold)  # a queryset update: no signal, the queryset bumps the version
    assert start in starts(client, offering)


def test_a_hold_that_runs_out_frees_its_time_without_a_sweep(client, patient):
    offering = direct_offering()
    start = first_start(client, offering)
    from datetime import datetime

    hold = holds.place_hold(patient, offering, datetime.fromisoformat(start), "k3")
    soon = timezone.now() + timedelta(seconds=1.5)
    Hold.objects.filter(pk=hold.pk).update(expires_at=soon)
    Allocation.objects.filter(appointment__hold=hold).update(expires_at=soon)
    assert start not in starts(client, offering)  # cached, but only until the hold runs out
    time.sleep(2)
    assert start in starts(client, offering)


def test_a_closure_added_in_the_desk_removes_the_day_and_removing_it_brings_it_back(client):
    offering = direct_offering()
    start = first_start(client, offering)
    from datetime import datetime

    day_start = datetime.fromisoformat(start).replace(hour=0, minute=0)
    for link in OfferingResource.objects.filter(offering=offering).select_related("resource").order_by("id"):
        exception = calendar.add_exception(link.resource, AvailabilityException.CLOSED, day_start,
                                           day_start + timedelta(days=1), "maintenance", None)
    assert start not in starts(client, offering)
    calendar.remove_exception(exception.resource, exception, None)
    if OfferingResource.objects.filter(offering=offering).count() == 1:
        assert start in starts(client, offering)


def test_new_weekly_hours_and_a_deactivated_resource_show_at_once(client):
    offering = direct_offering()
    before = starts(client, offering)
    resource_ids = list(OfferingResource.objects.filter(offering=offering).values_list("resource_id", flat=True))
    WeeklyHours.objects.filter(resource_id__in=resource_ids).delete()  # queryset delete, no signal per row
    assert starts(client, offering) == []
    Resource.objects.filter(pk__in=resource_ids).update(is_active=False)
    assert starts(client, offering) == [] and before


def test_an_offering_s_new_session_length_changes_its_slots_at_once(client):
    offering = direct_offering()
    before = starts(client, offering)
    offering.session_minutes = offering.session_minutes * 3
    offering.slot_step_minutes = offering.session_minutes
    offering.save()
    after = starts(client, offering)
    assert after != before and len(after) < len(before)


def test_an_offering_switched_off_in_the_admin_stops_answering_slots_at_once(client):
    offering = direct_offering()
    starts(client, offering)
    offering = Offering.objects.get(pk=offering.pk)
    offering.is_active = False
    offering.save()
    response = client.get(f"/api/v1/offerings/{offering.pk}/slots", {"start": "2026-12-10", "end": "2026-12-11"})
    assert response.status_code == 400 and response.json()["code"] == "not_bookable"


def test_an_unpublished_clinic_stops_answering_slots_at_once(client):
    offering = direct_offering()
    starts(client, offering)
    offering.clinic.unpublish()
    response = client.get(f"/api/v1/offerings/{offering.pk}/slots", {"start": "2026-12-10", "end": "2026-12-11"})
    assert response.status_code == 400 and response.json()["code"] == "not_bookable"


def test_a_hold_reads_bookability_afresh_even_when_the_browsing_copy_is_stale(client, app_token):
    """A clinic switched off behind the cache's back (a bulk update sends no signal): browsing may still show the
    offering for up to a minute, but no hold is taken on it."""
    from catalog.models import ClinicPage

    offering = direct_offering()
    start = first_start(client, offering)  # the browsing copy of the offering is cached now
    ClinicPage.objects.filter(pk=offering.clinic_id).update(live=False)
    response = client.post("/api/v1/holds", {"offering": offering.pk, "start": start, "client_key": "stale"},
                           content_type="application/json", HTTP_X_SESSION_TOKEN=app_token)
    assert response.status_code == 400 and response.json()["code"] == "not_bookable"
    assert not Hold.objects.filter(client_key="stale").exists()
