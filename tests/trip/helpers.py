"""Helpers for the trip tests: patients with a citizenship, quoted bookings, a Gamma Knife day with one start."""

from __future__ import annotations

from datetime import datetime, time, timedelta

from django.utils import timezone

from bookings.models import AvailabilityException, OfferingResource, PatientProfile
from bookings.review import services as review
from catalog.models import Offering
from tests.bookings.helpers import QUESTIONNAIRE


def patient_of(django_user_model, name, country, lang="ru"):
    from allauth.account.models import EmailAddress

    user = django_user_model.objects.create_user(name, f"{name}@example.com", "a-long-password-7")
    EmailAddress.objects.create(user=user, email=user.email, verified=True, primary=True)
    PatientProfile.objects.create(user=user, citizenship=country, preferred_language=lang)
    return user


def quoted_for(user, offering, first_day, last_day):
    booking = review.request_treatment(user, offering, questionnaire=QUESTIONNAIRE)
    review.send_quote(booking, None, price=offering.price, deposit=offering.deposit, included="Treatment",
                      treatment_plan="Plan", window_start=first_day, window_end=last_day,
                      valid_until=timezone.now() + timedelta(days=7))
    booking.refresh_from_db()
    return booking


def gamma_knife() -> Offering:
    offering = (Offering.objects.filter(page__import_key__contains="gamma_knife", resource_links__isnull=False)
                .select_related("clinic__city", "page").order_by("id").first())
    assert offering is not None, "the demo data has a Gamma Knife offering with resources"
    return offering


def tomotherapy() -> Offering:
    offering = (Offering.objects.filter(page__import_key__contains="tomotherapy", sessions__gte=20,
                                        resource_links__isnull=False)
                .select_related("clinic__city", "page").order_by("id").first())
    assert offering is not None, "the demo data has a tomotherapy course with resources"
    return offering


def one_start_day(offering, days_ahead=10):
    """A working day on which the offering's resources are open only 10:00–13:00 (clinic time): room for one
    Gamma Knife session. Returns (day, exceptions) — deleting the exceptions opens the day again."""
    tz = offering.clinic.tz
    day = (timezone.now() + timedelta(days=days_ahead)).astimezone(tz).date()
    while day.weekday() >= 5:
        day += timedelta(days=1)
    start_of_day = datetime.combine(day, time(0), tz)
    made = []
    for link in OfferingResource.objects.filter(offering=offering):
        made.append(AvailabilityException.objects.create(
            resource=link.resource, kind=AvailabilityException.CLOSED, start=start_of_day,
            end=datetime.combine(day, time(10), tz), reason="test"))
        made.append(AvailabilityException.objects.create(
            resource=link.resource, kind=AvailabilityException.CLOSED, start=datetime.combine(day, time(13), tz),
            end=start_of_day + timedelta(days=1), reason="test"))
    return day, made
