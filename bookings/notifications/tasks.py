"""Email tasks: the patient's email for each change of their booking, and reminders before the first session.

Each takes ids and is idempotent (NotificationLog keys), so a retried or redelivered task sends nothing twice.
"""

from datetime import timedelta

from celery import shared_task
from django.utils import timezone

from bookings.models import Appointment, Booking
from bookings.notifications.mail import send_booking_email, send_extra_email


@shared_task(bind=True, max_retries=5, default_retry_delay=60, acks_late=True, name="bookings.tasks.notify_booking")
def notify_booking(self, booking_id, kind, key=None):
    try:
        return send_booking_email(booking_id, kind, key)
    except OSError as exc:  # mail server down: try later
        raise self.retry(exc=exc) from exc


@shared_task(acks_late=True, name="bookings.tasks.send_due_reminders")
def send_due_reminders():
    """Reminders 7 days and 1 day before each confirmed booking's first session (sent once each)."""
    now = timezone.now()
    sent = 0
    for kind, ahead in (("reminder_7d", timedelta(days=7)), ("reminder_1d", timedelta(days=1))):
        due = (Appointment.objects.filter(booking__state=Booking.CONFIRMED, status=Appointment.BOOKED,
                                          start__gt=now, start__lte=now + ahead)
               .values_list("booking_id", "start"))
        firsts: dict[int, object] = {}
        for booking_id, start in due:
            firsts[booking_id] = min(start, firsts.get(booking_id, start))
        for booking_id, start in firsts.items():
            # keyed by the session's date too, so moved dates get their own reminder
            sent += bool(send_booking_email(booking_id, kind, f"booking:{booking_id}:{kind}:{start:%Y%m%d%H%M}"))
    return sent


def notify_on_commit(booking, kind: str, key: str | None = None) -> None:
    """Email the patient once the transaction commits; the key makes a retried task send it only once
    (and lets a second quote, say, be its own email)."""
    notify_booking.delay_on_commit(booking.pk, kind, key)


@shared_task(bind=True, max_retries=5, default_retry_delay=60, acks_late=True,
             name="bookings.tasks.notify_extra_decision")
def notify_extra_decision(self, extra_id, status, key=None):
    """The email about the clinic's answer on an extra (bookings.trip.extras.decide), after its commit."""
    try:
        return send_extra_email(extra_id, status, key)
    except OSError as exc:  # mail server down: try later
        raise self.retry(exc=exc) from exc
