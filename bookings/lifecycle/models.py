"""A booking, its state history and its messages.
"""

from __future__ import annotations

import secrets

from django.conf import settings
from django.db import models
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from bookings.lifecycle.reasons import REASONS
from bookings.patients.crypto import EncryptedJSONField, EncryptedTextField


def new_reference() -> str:
    alphabet = "ABCDEFGHJKLMNPQRSTUVWXYZ23456789"
    return "EM-" + "".join(secrets.choice(alphabet) for _ in range(6))


class Booking(models.Model):
    """A patient's booking of one offering, from request to completion, with its state history."""

    REQUESTED, UNDER_REVIEW, QUOTED = "requested", "under_review", "quoted"
    AWAITING_PAYMENT, CONFIRMED, COMPLETED = "awaiting_payment", "confirmed", "completed"
    CANCELLED, DECLINED, EXPIRED, REFUNDED = "cancelled", "declined", "expired", "refunded"
    STATE_CHOICES = [
        (REQUESTED, _("Requested")), (UNDER_REVIEW, _("Under review")), (QUOTED, _("Quoted")),
        (AWAITING_PAYMENT, _("Awaiting payment")), (CONFIRMED, _("Confirmed")), (COMPLETED, _("Completed")),
        (CANCELLED, _("Cancelled")), (DECLINED, _("Declined")), (EXPIRED, _("Expired")), (REFUNDED, _("Refunded")),
    ]
    ENDS = {COMPLETED, CANCELLED, DECLINED, EXPIRED, REFUNDED}

    reference = models.CharField(max_length=12, unique=True, default=new_reference, editable=False)
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="bookings")
    offering = models.ForeignKey("catalog.Offering", on_delete=models.PROTECT, related_name="bookings")
    clinic = models.ForeignKey("catalog.ClinicPage", on_delete=models.PROTECT, related_name="bookings")
    state = models.CharField(max_length=20, choices=STATE_CHOICES, default=REQUESTED, db_index=True)
    # price snapshot, minor units
    currency = models.CharField(max_length=3, default="KZT")
    price = models.BigIntegerField()
    deposit = models.BigIntegerField()
    service_title = models.CharField(max_length=300)
    language = models.CharField(max_length=10, default="en")
    patient_timezone = models.CharField(max_length=64, blank=True)
    # health data, encrypted at rest (bookings.patients.crypto)
    questionnaire = EncryptedJSONField(default=dict, blank=True)
    request_note = EncryptedTextField(blank=True)
    decline_reason = EncryptedTextField(blank=True)
    cancel_reason = models.CharField(max_length=40, blank=True)
    payment_due_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["-created_at"]
        indexes = [models.Index(fields=["clinic", "state"]), models.Index(fields=["state", "payment_due_at"])]

    def __str__(self):
        return f"{self.reference} {self.service_title}"

    def can_cancel(self, by: str, reason: str) -> bool:
        """May ``by`` (``"patient"`` or ``"clinic"``) cancel this booking now, giving ``reason``?

        The reason must be one that side may give (bookings.lifecycle.reasons) and the booking's state must allow
        cancelling (TRANSITIONS). Pages show the cancel button, forms offer reasons, the API and the service accept
        a cancellation only through this."""
        entry = REASONS.get(reason)
        return entry is not None and entry.by == by and Booking.CANCELLED in TRANSITIONS.get(self.state, ())

    def current_quote(self):
        """The clinic's quote that stands (the newest version not superseded), or None."""
        return self.quotes.filter(superseded=False).order_by("-version").first()

    def payment_overdue(self, now=None) -> bool:
        """Waiting for a deposit whose time ran out: shown and treated as released at once, swept or not."""
        now = now or timezone.now()
        return self.state == self.AWAITING_PAYMENT and self.payment_due_at is not None and self.payment_due_at <= now

    @property
    def is_live(self):
        return self.state not in self.ENDS


class BookingEvent(models.Model):
    """One transition of a booking: who, when, from what to what, and why. Never edited."""

    booking = models.ForeignKey("bookings.Booking", on_delete=models.CASCADE, related_name="events")
    from_state = models.CharField(max_length=20, blank=True)
    to_state = models.CharField(max_length=20)
    actor = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL,
                              related_name="+")
    at = models.DateTimeField(auto_now_add=True)
    note = models.TextField(blank=True)

    class Meta:
        ordering = ["at", "id"]


class Message(models.Model):
    """A message between the patient and the clinic's coordinator about one booking."""

    booking = models.ForeignKey("bookings.Booking", on_delete=models.CASCADE, related_name="messages")
    author = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    from_clinic = models.BooleanField(default=False)
    body = EncryptedTextField(_("message"), max_length=5000)  # encrypted at rest
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["created_at", "id"]


# The states a booking may move to from each state: states.transition() checks every change against it.
TRANSITIONS = {
    Booking.REQUESTED: {Booking.UNDER_REVIEW, Booking.DECLINED, Booking.CANCELLED},
    Booking.UNDER_REVIEW: {Booking.QUOTED, Booking.DECLINED, Booking.CANCELLED},
    Booking.QUOTED: {Booking.QUOTED, Booking.AWAITING_PAYMENT, Booking.DECLINED, Booking.CANCELLED, Booking.EXPIRED},
    # back to QUOTED: the hold ran out while the quote still stands, so the patient picks new dates in its window
    Booking.AWAITING_PAYMENT: {Booking.CONFIRMED, Booking.CANCELLED, Booking.EXPIRED, Booking.QUOTED},
    Booking.CONFIRMED: {Booking.COMPLETED, Booking.CANCELLED, Booking.REFUNDED},
    Booking.EXPIRED: {Booking.CONFIRMED, Booking.REFUNDED},  # a late payment re-takes its still-free slot, or is refunded
    Booking.CANCELLED: {Booking.REFUNDED},
    Booking.COMPLETED: set(),
    Booking.DECLINED: set(),
    Booking.REFUNDED: set(),
}
