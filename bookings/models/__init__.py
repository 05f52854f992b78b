"""The app's models, each defined beside its concern (engine, lifecycle, review, payments, patients,
notifications); imported here because Django looks for them in ``bookings.models``."""

from bookings.engine.models import (
    Allocation,
    Appointment,
    AvailabilityException,
    ClinicMembership,
    Hold,
    OfferingResource,
    Resource,
    WeeklyHours,
)
from bookings.lifecycle.models import Booking, BookingEvent, Message
from bookings.notifications.models import NotificationLog
from bookings.patients.models import Companion, MedicalRecord, PatientProfile, RecordAccess
from bookings.payments.models import Payment, Refund, WebhookEvent
from bookings.review.models import Quote

__all__ = [
    "Allocation", "Appointment", "AvailabilityException", "Booking", "BookingEvent", "ClinicMembership", "Companion",
    "Hold", "MedicalRecord", "Message", "NotificationLog", "OfferingResource", "PatientProfile", "Payment", "Quote",
    "RecordAccess", "Refund", "Resource", "WebhookEvent", "WeeklyHours",
]
