"""The app's Celery tasks, each defined beside its concern; imported here so Celery's autodiscovery finds them.

Each takes ids and is idempotent; names stay ``bookings.tasks.<name>`` for the beat schedule and queued messages.
"""

from bookings.engine.waitlist import offer_waitlist
from bookings.lifecycle.tasks import sweep_expired_holds
from bookings.notifications.tasks import notify_booking, notify_extra_decision, send_due_reminders
from bookings.patients.export import build_patient_export
from bookings.patients.retention import apply_retention
from bookings.patients.rotation import rotate_data_keys, rotate_hash_keys
from bookings.payments.services import retry_refund_task

__all__ = ["offer_waitlist", "notify_booking", "notify_extra_decision", "retry_refund_task", "send_due_reminders", "sweep_expired_holds",
           "build_patient_export", "apply_retention", "rotate_data_keys", "rotate_hash_keys"]
