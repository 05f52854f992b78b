"""The background tidy-up: expired holds released and unpaid bookings expired (availability never waits for it)."""

from celery import shared_task

from bookings.lifecycle.services import sweep


@shared_task(acks_late=True, name="bookings.tasks.sweep_expired_holds")
def sweep_expired_holds():
    return sweep()
