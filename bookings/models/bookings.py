"""Holds, bookings, their appointments and the allocations that make double booking impossible."""

import secrets
import uuid

from django.conf import settings
from django.contrib.postgres.constraints import ExclusionConstraint
from django.contrib.postgres.fields import RangeOperators
from django.db import models
from django.db.models import Func, Q
from django.utils import timezone
from django.utils.translation import gettext_lazy as _


class TsTzRange(Func):
    function = "TSTZRANGE"
    output_field = models.DateTimeField()


class PostgresOnlyExclusionConstraint(ExclusionConstraint):
    """The exclusion constraint on PostgreSQL; nothing on SQLite, where the same code runs serialised.

    Keeps one migration history for both databases (TRAPS.md).
    """

    def _is_pg(self, schema_editor):
        return schema_editor.connection.vendor == "postgresql"

    def constraint_sql(self, model, schema_editor):
        return super().constraint_sql(model, schema_editor) if self._is_pg(schema_editor) else None

    def create_sql(self, model, schema_editor):
        return super().create_sql(model, schema_editor) if self._is_pg(schema_editor) else None

    def remove_sql(self, model, schema_editor):
        return super().remove_sql(model, schema_editor) if self._is_pg(schema_editor) else None

    def validate(self, model, instance, exclude=None, using=None):
        return None  # the database enforces it; services check availability under lock first


class Hold(models.Model):
    """A patient's few minutes on a slot or a whole course while they pay (or confirm details)."""

    ACTIVE, CONVERTED, RELEASED, EXPIRED = "active", "converted", "released", "expired"
    STATUS_CHOICES = [(ACTIVE, _("Active")), (CONVERTED, _("Turned into a booking")),
                      (RELEASED, _("Released")), (EXPIRED, _("Expired"))]
    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    offering = models.ForeignKey("catalog.Offering", on_delete=models.PROTECT, related_name="holds")
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="holds")
    client_key = models.CharField(max_length=80)
    status = models.CharField(max_length=12, choices=STATUS_CHOICES, default=ACTIVE)
    created_at = models.DateTimeField(auto_now_add=True)
    expires_at = models.DateTimeField()
    booking = models.ForeignKey("Booking", null=True, blank=True, on_delete=models.SET_NULL, related_name="holds")

    class Meta:
        constraints = [models.UniqueConstraint(fields=["user", "client_key"], name="hold_client_key_once")]
        indexes = [models.Index(fields=["status", "expires_at"])]


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
    questionnaire = models.JSONField(default=dict, blank=True)
    request_note = models.TextField(blank=True)
    decline_reason = models.TextField(blank=True)
    cancel_reason = models.CharField(max_length=40, blank=True)
    payment_due_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["-created_at"]
        indexes = [models.Index(fields=["clinic", "state"]), models.Index(fields=["state", "payment_due_at"])]

    def __str__(self):
        return f"{self.reference} {self.service_title}"

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

    booking = models.ForeignKey(Booking, on_delete=models.CASCADE, related_name="events")
    from_state = models.CharField(max_length=20, blank=True)
    to_state = models.CharField(max_length=20)
    actor = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL,
                              related_name="+")
    at = models.DateTimeField(auto_now_add=True)
    note = models.TextField(blank=True)

    class Meta:
        ordering = ["at", "id"]


class Quote(models.Model):
    """A clinic's versioned offer after review: amount, deposit, what is included, dates, valid until."""

    booking = models.ForeignKey(Booking, on_delete=models.CASCADE, related_name="quotes")
    version = models.PositiveIntegerField()
    price = models.BigIntegerField(_("price (minor units)"))
    deposit = models.BigIntegerField(_("deposit (minor units)"))
    currency = models.CharField(max_length=3, default="KZT")
    included = models.TextField(_("what is included"), blank=True)
    treatment_plan = models.TextField(_("treatment plan"), blank=True)
    window_start = models.DateField(_("earliest start"))
    window_end = models.DateField(_("latest start"))
    valid_until = models.DateTimeField(_("valid until"))
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+")
    created_at = models.DateTimeField(auto_now_add=True)
    accepted_at = models.DateTimeField(null=True, blank=True)
    superseded = models.BooleanField(default=False)

    class Meta:
        ordering = ["booking_id", "-version"]
        constraints = [
            models.UniqueConstraint(fields=["booking", "version"], name="quote_version_once"),
            models.CheckConstraint(condition=Q(deposit__lte=models.F("price")), name="quote_deposit_not_above_price"),
        ]


class Appointment(models.Model):
    """One session of a course on its resources, in UTC."""

    HELD, BOOKED, RELEASED, CANCELLED, ATTENDED, NO_SHOW = "held", "booked", "released", "cancelled", "attended", "no_show"
    STATUS_CHOICES = [(HELD, _("Held")), (BOOKED, _("Booked")), (RELEASED, _("Released")),
                      (CANCELLED, _("Cancelled")), (ATTENDED, _("Attended")), (NO_SHOW, _("Did not attend"))]
    booking = models.ForeignKey(Booking, null=True, blank=True, on_delete=models.CASCADE, related_name="appointments")
    hold = models.ForeignKey(Hold, null=True, blank=True, on_delete=models.SET_NULL, related_name="appointments")
    offering = models.ForeignKey("catalog.Offering", on_delete=models.PROTECT, related_name="appointments")
    seq = models.PositiveIntegerField(default=1)
    start = models.DateTimeField()
    end = models.DateTimeField()
    status = models.CharField(max_length=10, choices=STATUS_CHOICES, default=HELD)

    class Meta:
        ordering = ["start"]
        indexes = [models.Index(fields=["start"])]


class Allocation(models.Model):
    """An appointment's claim on one unit of one resource, including buffers.

    ``live`` allocations may not overlap on the same resource unit: PostgreSQL enforces it with an
    exclusion constraint; services lock the resource rows first on every database.  An allocation
    with ``expires_at`` in the past counts as free at once, swept or not.
    """

    appointment = models.ForeignKey(Appointment, on_delete=models.CASCADE, related_name="allocations")
    resource = models.ForeignKey("bookings.Resource", on_delete=models.PROTECT, related_name="allocations")
    unit = models.PositiveSmallIntegerField(default=0)
    start = models.DateTimeField()
    end = models.DateTimeField()
    live = models.BooleanField(default=True)
    expires_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        indexes = [models.Index(fields=["resource", "live", "start"]), models.Index(fields=["resource", "end"])]
        constraints = [
            PostgresOnlyExclusionConstraint(
                name="allocation_no_overlap",
                expressions=[
                    ("resource", RangeOperators.EQUAL),
                    ("unit", RangeOperators.EQUAL),
                    (TsTzRange("start", "end", models.Value("[)")), RangeOperators.OVERLAPS),
                ],
                condition=Q(live=True),
            ),
            models.CheckConstraint(condition=Q(end__gt=models.F("start")), name="allocation_end_after_start"),
        ]


class Message(models.Model):
    """A message between the patient and the clinic's coordinator about one booking."""

    booking = models.ForeignKey(Booking, on_delete=models.CASCADE, related_name="messages")
    author = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    from_clinic = models.BooleanField(default=False)
    body = models.TextField(_("message"), max_length=5000)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["created_at", "id"]
