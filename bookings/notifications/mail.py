"""Emails to patients (and clinics) in the patient's language, with calendar files. Sent once per key."""

from __future__ import annotations

import logging
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from django.conf import settings
from django.core.mail import EmailMultiAlternatives
from django.db import IntegrityError, transaction
from django.template.loader import render_to_string
from django.urls import reverse
from django.utils import timezone, translation
from icalendar import Calendar, Event

from bookings.models import Booking, BookingExtra, NotificationLog
from portal import l10n

log = logging.getLogger("emhana.notifications")

PATIENT_KINDS = {
    Booking.REQUESTED, Booking.QUOTED, Booking.DECLINED, Booking.AWAITING_PAYMENT, Booking.CONFIRMED,
    Booking.CANCELLED, Booking.EXPIRED, Booking.REFUNDED, "reminder_7d", "reminder_1d", "message", "rescheduled",
    "quote_reopened",
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
        ev.add("description", f"{booking.reference} · {settings.SITE_NAME} · {settings.SITE_URL}")
        cal.add_component(ev)
    return cal.to_ical()


def email_context(booking: Booking, kind: str) -> dict:
    """What a booking email shows: sessions in the clinic's time with the patient's beside it, the link to the
    booking in the patient's language on the site's real address."""
    clinic_tz = booking.clinic.tz
    patient_tz = None
    if booking.patient_timezone and booking.patient_timezone != booking.clinic.zone_name:
        try:
            patient_tz = ZoneInfo(booking.patient_timezone)
        except (ZoneInfoNotFoundError, ValueError):
            patient_tz = None
    sessions = []
    for a in booking.appointments.filter(status__in=["booked", "held", "attended"]).order_by("start"):
        sessions.append({
            "clinic_time": l10n.format_when(a.start, clinic_tz),
            "end_time": l10n.format_time(a.end, clinic_tz),
            "patient_time": l10n.format_when(a.start, patient_tz, skeleton="MMMEd") if patient_tz else "",
        })
    with translation.override(booking.language or "en"):
        path = reverse("booking_detail", args=[booking.reference])
    return {
        "booking": booking, "kind": kind, "site_name": settings.SITE_NAME, "site_url": settings.SITE_URL,
        "booking_url": settings.SITE_URL + path, "sessions": sessions,
        "clinic_zone": booking.clinic.zone_label, "patient_zone": l10n.zone_label(patient_tz) if patient_tz else "",
        "quote": booking.current_quote() if kind in (Booking.QUOTED, "quote_reopened") else None,
    }


def send_booking_email(booking_id: int, kind: str, key: str | None = None) -> bool:
    """Send the email for ``kind`` once (NotificationLog key). Returns False when it was already sent."""
    booking = Booking.objects.select_related("user", "clinic__city", "offering__page").get(pk=booking_id)
    if kind not in PATIENT_KINDS or not booking.user.email:
        return False
    key = key or f"booking:{booking.pk}:{kind}"
    # The "sent" mark and the delivery commit together: a worker killed between them (OOM, a lost machine) leaves
    # no mark, so the redelivered task sends it (tests/faults/test_worker_kill.py). A second worker sending the
    # same key waits on the uncommitted row and then finds it taken: each email goes once.
    try:
        with transaction.atomic():
            NotificationLog.objects.create(key=key, booking=booking)
            # The clinic's zone is activated too, so that nothing in the templates falls back to UTC (a Celery
            # task has no zone of its own); every time is also formatted explicitly in its zone.
            with translation.override(booking.language or "en"), timezone.override(booking.clinic.tz):
                context = email_context(booking, kind)
                subject = render_to_string("bookings/email/subject.txt", context).strip()
                body = render_to_string("bookings/email/body.txt", context)
                message = EmailMultiAlternatives(subject, body, settings.DEFAULT_FROM_EMAIL, [booking.user.email])
                if kind in (Booking.CONFIRMED, "reminder_7d", "reminder_1d", "rescheduled"):
                    message.attach(f"{booking.reference}.ics", booking_ics(booking), "text/calendar")
                message.send()
    except IntegrityError:
        return False
    return True


# --------------------------------------------------------------------------------- the clinic's answer about an extra


def send_extra_email(extra_id: int, status: str, key: str | None = None) -> bool:
    """Tell the patient the clinic's answer about one extra they chose (confirmed, or cannot be provided, with the
    reason and the refund), once per key, in the patient's language with times in the clinic's zone. Nothing is sent
    when the extra's answer is no longer ``status`` (a later answer has its own email)."""
    row = (BookingExtra.objects.select_related("booking__user", "booking__clinic__city", "booking__offering__page")
           .filter(pk=extra_id).first())
    if row is None or row.status != status or status == BookingExtra.REQUESTED or not row.booking.user.email:
        return False
    booking = row.booking
    key = key or f"booking:{booking.pk}:extra:{row.pk}:{status}"
    try:
        with transaction.atomic():
            NotificationLog.objects.create(key=key, booking=booking)
            with translation.override(booking.language or "en"), timezone.override(booking.clinic.tz):
                context = email_context(booking, f"extra_{status}")
                context.update({"extra": row, "declined": status == BookingExtra.DECLINED,
                                "decided_at": l10n.format_when(row.decided_at, booking.clinic.tz),
                                "refunded": l10n.money(row.refunded, booking.currency) if row.refunded else "",
                                "deposit": l10n.money(booking.deposit, booking.currency)})
                subject = render_to_string("trip/email/extra_decision_subject.txt", context).strip()
                body = render_to_string("trip/email/extra_decision_body.txt", context)
                EmailMultiAlternatives(subject, body, settings.DEFAULT_FROM_EMAIL, [booking.user.email]).send()
    except IntegrityError:
        return False
    return True
