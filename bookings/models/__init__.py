from .bookings import Allocation, Appointment, Booking, BookingEvent, Hold, Message, Quote
from .patients import Companion, MedicalRecord, PatientProfile, RecordAccess
from .payments import NotificationLog, Payment, Refund, WebhookEvent
from .resources import AvailabilityException, ClinicMembership, OfferingResource, Resource, WeeklyHours

__all__ = [
    "Allocation", "Appointment", "AvailabilityException", "Booking", "BookingEvent", "ClinicMembership",
    "Companion", "Hold", "MedicalRecord", "Message", "NotificationLog", "OfferingResource", "PatientProfile",
    "Payment", "Quote", "RecordAccess", "Refund", "Resource", "WebhookEvent", "WeeklyHours",
]
