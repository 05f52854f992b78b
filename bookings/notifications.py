"""Emails to patients (and clinics) in the patient's language, with calendar files. Sent once per key."""

from __future__ import annotations

import logging

from django.conf import settings
from django.core.mail import EmailMultiAlternatives
from django.db import IntegrityError, transaction
from django.template.loader import render_to_string
from django.utils import translation
from icalendar import Calendar, Event

from .models import Booking, NotificationLog

log = logging.getLogger("emhana.notifications")

PATIENT_KINDS = {
    Booking.REQUESTED, Booking.QUOTED, Booking.DECLINED, Booking.AWAITING_PAYMENT, Booking.CONFIRMED,
    Booking.CANCELLED, Booking.EXPIRED, Booking.REFUNDED, "reminder_7d", "reminder_1d", "message", "rescheduled",
}


def booking_ics(booking: Booking) -> bytes:
    """One VEVENT per session, times in UTC, the clinic's address as the location."""
    cal = Calendar()
    cal.add("prodid", "-//Emhana//Bookings//EN")
    cal.add("version", "2.0")
    cal.add("method", "PUBLISH")
    clinic = booking.clinic
    location = ", ".join(p for p in (clinic.title, clinic.address, clinic.city.name) if p)
    appointments = list(booking.appointments.filter(status__in=["booked", "held", "attended"]).order_by("start"))
    for a in appointments:
        ev = Event()
        ev.add("uid", f"{booking.reference}-{a.seq}@emhana")
        title = booking.service_title if len(appointments) == 1 else f"{booking.service_title} ({a.seq}/{len(appointments)})"
        ev.add("summary", title)
        ev.add("dtstart", a.start)
        ev.add("dtend", a.end)
        ev.add("dtstamp", booking.updated_at)
        ev.add("location", location)
        ev.add("description", f"{booking.reference} · {settings.SITE_URL}")
        cal.add_component(ev)
    return cal.to_ical()


def send_booking_email(booking_id: int, kind: str, key: str | None = None) -> bool:
    """Send the email for ``kind`` once (NotificationLog key). Returns False when it was already sent."""
    booking = Booking.objects.select_related("user", "clinic__city", "offering__page").get(pk=booking_id)
    if kind not in PATIENT_KINDS or not booking.user.email:
        return False
    key = key or f"booking:{booking.pk}:{kind}"
    try:
        with transaction.atomic():
            NotificationLog.objects.create(key=key, booking=booking)
    except IntegrityError:
        return False
    try:
        with translation.override(booking.language or "en"):
            context = {"booking": booking, "kind": kind, "site_url": settings.SITE_URL,
                       "tz": booking.clinic.tz, "appointments": booking.appointments.order_by("start")}
            subject = render_to_string("bookings/email/subject.txt", context).strip()
            body = render_to_string("bookings/email/body.txt", context)
            message = EmailMultiAlternatives(subject, body, settings.DEFAULT_FROM_EMAIL, [booking.user.email])
            if kind in (Booking.CONFIRMED, "reminder_7d", "reminder_1d", "rescheduled"):
                message.attach(f"{booking.reference}.ics", booking_ics(booking), "text/calendar")
            message.send()
    except Exception:
        NotificationLog.objects.filter(key=key).delete()  # let a retry send it
        raise
    return True
