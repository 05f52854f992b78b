"""Staff sessions: idle and absolute timeouts, and re-authentication before a patient's data after a while."""

from __future__ import annotations

import time

import pytest
from django.urls import reverse

from bookings.patients import sessions

from .conftest import PASSWORD

pytestmark = pytest.mark.django_db


def age(client, **keys):
    session = client.session
    for key, seconds in keys.items():
        session[key] = time.time() - seconds
    session.save()


def test_a_staff_member_reauthenticates_before_records_after_a_while(staff_client, record, settings):
    url = reverse("record_download", args=[record.pk])
    assert staff_client.get(url).status_code == 200  # just signed in
    age(staff_client, **{sessions.STARTED: settings.STAFF_REAUTH_SECONDS + 5})
    response = staff_client.get(url)
    assert response.status_code == 302 and response["Location"].startswith(reverse("account_reauthenticate"))
    wrong = staff_client.post(reverse("account_reauthenticate") + f"?next={url}", {"password": "not-it"})
    assert wrong.status_code == 200
    assert staff_client.get(url).status_code == 302
    done = staff_client.post(reverse("account_reauthenticate") + f"?next={url}", {"password": PASSWORD})
    assert done.status_code == 302 and done["Location"] == url
    assert staff_client.get(url).status_code == 200
    # the desk's booking page (questionnaire, passport) is guarded the same way
    age(staff_client, **{sessions.STARTED: 0})
    desk = reverse("desk:booking", args=[record.booking_id])
    assert staff_client.get(desk).status_code == 200


def test_an_idle_staff_session_is_signed_out(staff_client, settings):
    assert staff_client.get(reverse("desk:home")).status_code == 200
    age(staff_client, **{sessions.SEEN: settings.STAFF_SESSION_IDLE_SECONDS + 5})
    response = staff_client.get(reverse("desk:home"))
    assert response.status_code == 302 and response["Location"].startswith(reverse("account_login"))
    assert staff_client.get(reverse("desk:home")).status_code == 302  # signed out for good


def test_a_staff_session_ends_after_the_absolute_limit_even_when_busy(staff_client, settings):
    assert staff_client.get(reverse("desk:home")).status_code == 200
    age(staff_client, **{sessions.STARTED: settings.STAFF_SESSION_MAX_SECONDS + 5, sessions.SEEN: 1})
    response = staff_client.get(reverse("desk:home"))
    assert response.status_code == 302 and response["Location"].startswith(reverse("account_login"))


def test_patients_keep_their_ordinary_sessions(patient_client, settings):
    assert patient_client.get(reverse("patient_dashboard")).status_code == 200
    age(patient_client, **{sessions.SEEN: settings.STAFF_SESSION_IDLE_SECONDS + 5})
    assert patient_client.get(reverse("patient_dashboard")).status_code == 200
