"""Celery tasks. Each takes ids, is idempotent, and calls the services or notifications."""

from datetime import timedelta

from celery import shared_task
from django.utils import timezone


@shared_task(bind=True, max_retries=5, default_retry_delay=60, acks_late=True)
def notify_booking(self, booking_id, kind, key=None):
    from .notifications import send_booking_email

    try:
        return send_booking_email(booking_id, kind, key)
    except OSError as exc:  # mail server down: try later
        raise self.retry(exc=exc) from exc


@shared_task(acks_late=True)
def sweep_expired_holds():
    from .services import sweep

    return sweep()


@shared_task(acks_late=True)
def send_due_reminders():
    """Reminders 7 days and 1 day before each confirmed booking's first session (sent once each)."""
    from .models import Appointment, Booking
    from .notifications import send_booking_email

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


@shared_task(bind=True, max_retries=10, acks_late=True)
def retry_refund(self, refund_id):
    from .models import Refund
    from .payments_service import retry_refund as run

    refund = run(refund_id)
    if refund.state == Refund.PENDING:
        raise self.retry(countdown=600)
    return refund.state


@shared_task(acks_late=True)
def publish_scheduled_pages():
    """Wagtail's scheduled publishing (go-live and expiry dates set by editors)."""
    from django.core.management import call_command

    call_command("publish_scheduled", verbosity=0)
