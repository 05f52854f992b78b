"""The app's models, each defined beside its concern (engine, lifecycle, review, payments, patients,
notifications); imported here because Django looks for them in ``bookings.models``."""

from bookings.consult.models import Consultation, DicomSummary, SecondOpinion
from bookings.engine.models import (
    Allocation,
    Appointment,
    AvailabilityException,
    ClinicMembership,
    Hold,
    OfferingResource,
    Resource,
    WaitlistEntry,
    WeeklyHours,
)
from bookings.lifecycle.models import Booking, BookingEvent, Message
from bookings.notifications.models import NotificationLog
from bookings.patients.models import (
    Companion,
    Consent,
    DataExport,
    MedicalRecord,
    PatientProfile,
    RecordAccess,
    Restriction,
    RetentionNotice,
)
from bookings.payments.models import Payment, Refund, WebhookEvent
from bookings.review.models import Quote
from bookings.trip.models import BookingExtra, OfferingExtra, VisaRefusal

__all__ = [
    "Allocation", "Appointment", "AvailabilityException", "Booking", "BookingEvent", "ClinicMembership", "Companion",
    "Consultation", "DicomSummary", "SecondOpinion",
    "Hold", "MedicalRecord", "Message", "NotificationLog", "OfferingResource", "PatientProfile", "Payment", "Quote",
    "RecordAccess", "Refund", "Resource", "WebhookEvent", "WeeklyHours",
    "BookingExtra", "OfferingExtra", "VisaRefusal", "WaitlistEntry",
    "Consent", "DataExport", "Restriction", "RetentionNotice",
]
