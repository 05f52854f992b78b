"""What the engine books: clinics' resources with their hours and exceptions, and the holds, appointments
and allocations that make double booking impossible (an exclusion constraint on PostgreSQL).
"""

from __future__ import annotations

import uuid

from django.conf import settings
from django.contrib.postgres.constraints import ExclusionConstraint
from django.contrib.postgres.fields import RangeOperators
from django.db import models
from django.db.models import Func, Q
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from bookings.engine.versions import CalendarQuerySet


class Resource(models.Model):
    """Something whose time is booked: a Gamma Knife unit, a tomotherapy machine, an OR, a doctor."""

    EQUIPMENT, ROOM, PRACTITIONER = "equipment", "room", "practitioner"
    KIND_CHOICES = [(EQUIPMENT, _("Equipment")), (ROOM, _("Room")), (PRACTITIONER, _("Practitioner"))]

    clinic = models.ForeignKey("catalog.ClinicPage", on_delete=models.PROTECT, related_name="resources",
                               verbose_name=_("clinic"))
    name = models.CharField(_("name"), max_length=200)
    kind = models.CharField(_("kind"), max_length=20, choices=KIND_CHOICES, default=EQUIPMENT)
    capacity = models.PositiveSmallIntegerField(_("capacity"), default=1,
                                                help_text=_("How many patients it serves at once."))
    buffer_before_minutes = models.PositiveIntegerField(_("buffer before (minutes)"), default=0)
    buffer_after_minutes = models.PositiveIntegerField(_("buffer after (minutes)"), default=0)
    is_active = models.BooleanField(_("active"), default=True)

    objects = CalendarQuerySet.as_manager()

    class Meta:
        ordering = ["clinic_id", "name"]
        constraints = [models.CheckConstraint(condition=models.Q(capacity__gte=1), name="resource_capacity_positive")]

    def __str__(self):
        return self.name


class WeeklyHours(models.Model):
    """Recurring opening hours, in the clinic's local wall-clock time."""

    WEEKDAYS = [(0, _("Monday")), (1, _("Tuesday")), (2, _("Wednesday")), (3, _("Thursday")),
                (4, _("Friday")), (5, _("Saturday")), (6, _("Sunday"))]
    resource = models.ForeignKey(Resource, on_delete=models.CASCADE, related_name="weekly_hours")
    weekday = models.PositiveSmallIntegerField(_("day"), choices=WEEKDAYS)
    start = models.TimeField(_("from"))
    end = models.TimeField(_("until"))

    objects = CalendarQuerySet.as_manager()

    class Meta:
        ordering = ["resource_id", "weekday", "start"]
        constraints = [
            models.CheckConstraint(condition=models.Q(end__gt=models.F("start")), name="weekly_hours_end_after_start"),
            models.CheckConstraint(condition=models.Q(weekday__lte=6), name="weekly_hours_weekday_range"),
        ]

    def __str__(self):
        return f"{self.get_weekday_display()} {self.start:%H:%M}–{self.end:%H:%M}"


class AvailabilityException(models.Model):
    """A dated change to the weekly hours: a closure (maintenance day, holiday) or extra hours."""

    CLOSED, EXTRA = "closed", "extra"
    KIND_CHOICES = [(CLOSED, _("Closed")), (EXTRA, _("Extra hours"))]
    resource = models.ForeignKey(Resource, on_delete=models.CASCADE, related_name="exceptions")
    kind = models.CharField(_("kind"), max_length=10, choices=KIND_CHOICES, default=CLOSED)
    start = models.DateTimeField(_("from"))
    end = models.DateTimeField(_("until"))
    reason = models.CharField(_("reason"), max_length=200, blank=True)
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL,
                                   related_name="+")
    created_at = models.DateTimeField(auto_now_add=True)

    objects = CalendarQuerySet.as_manager()

    class Meta:
        ordering = ["start"]
        indexes = [models.Index(fields=["resource", "end"])]
        constraints = [
            models.CheckConstraint(condition=models.Q(end__gt=models.F("start")), name="exception_end_after_start"),
        ]


class OfferingResource(models.Model):
    """An offering needs each of its resources at once (the machine AND a physicist)."""

    offering = models.ForeignKey("catalog.Offering", on_delete=models.CASCADE, related_name="resource_links")
    resource = models.ForeignKey(Resource, on_delete=models.CASCADE, related_name="offering_links")

    objects = CalendarQuerySet.as_manager()

    class Meta:
        constraints = [models.UniqueConstraint(fields=["offering", "resource"], name="offering_resource_once")]


class ClinicMembershipQuerySet(models.QuerySet):
    def works_for(self, user, clinic_id) -> bool:
        """Is ``user`` on the staff of that clinic? (per-clinic access: desk, records, cancelling as the clinic)"""
        return bool(getattr(user, "is_authenticated", False)) and self.filter(user=user, clinic_id=clinic_id).exists()


class ClinicMembership(models.Model):
    """A staff member's role in one clinic. Staff see only their clinics, in the desk."""

    COORDINATOR, CLINICIAN = "coordinator", "clinician"
    ROLE_CHOICES = [(COORDINATOR, _("Coordinator")), (CLINICIAN, _("Clinician"))]
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="clinic_memberships")
    clinic = models.ForeignKey("catalog.ClinicPage", on_delete=models.CASCADE, related_name="memberships")
    role = models.CharField(_("role"), max_length=20, choices=ROLE_CHOICES, default=COORDINATOR)

    objects = ClinicMembershipQuerySet.as_manager()

    class Meta:
        constraints = [models.UniqueConstraint(fields=["user", "clinic"], name="membership_once")]

    def __str__(self):
        return f"{self.user} – {self.clinic} ({self.role})"


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
    booking = models.ForeignKey("bookings.Booking", null=True, blank=True, on_delete=models.SET_NULL, related_name="holds")

    class Meta:
        constraints = [models.UniqueConstraint(fields=["user", "client_key"], name="hold_client_key_once")]
        indexes = [models.Index(fields=["status", "expires_at"])]


class Appointment(models.Model):
    """One session of a course on its resources, in UTC."""

    HELD, BOOKED, RELEASED, CANCELLED, ATTENDED, NO_SHOW = "held", "booked", "released", "cancelled", "attended", "no_show"
    STATUS_CHOICES = [(HELD, _("Held")), (BOOKED, _("Booked")), (RELEASED, _("Released")),
                      (CANCELLED, _("Cancelled")), (ATTENDED, _("Attended")), (NO_SHOW, _("Did not attend"))]
    booking = models.ForeignKey("bookings.Booking", null=True, blank=True, on_delete=models.CASCADE, related_name="appointments")
    hold = models.ForeignKey("bookings.Hold", null=True, blank=True, on_delete=models.SET_NULL, related_name="appointments")
    offering = models.ForeignKey("catalog.Offering", on_delete=models.PROTECT, related_name="appointments")
    seq = models.PositiveIntegerField(default=1)
    start = models.DateTimeField()
    end = models.DateTimeField()
    status = models.CharField(max_length=10, choices=STATUS_CHOICES, default=HELD)

    class Meta:
        ordering = ["start"]
        indexes = [models.Index(fields=["start"])]


class AllocationQuerySet(CalendarQuerySet):
    def blocking(self, now=None):
        """Allocations that take their resource's time at ``now``: live, and not a hold that has run out.

        The one rule for "is this time taken": slot search, the desk's calendar, stranded-session checks and a
        late payment's re-take all ask it. An expired hold is free at once, whether or not the sweep has run.
        """
        now = now or timezone.now()
        return self.filter(live=True).filter(Q(expires_at__isnull=True) | Q(expires_at__gt=now))


class Allocation(models.Model):
    """An appointment's claim on one unit of one resource, including buffers.

    ``live`` allocations may not overlap on the same resource unit: PostgreSQL enforces it with an
    exclusion constraint; services lock the resource rows first on every database.  An allocation
    with ``expires_at`` in the past counts as free at once, swept or not.
    """

    appointment = models.ForeignKey("bookings.Appointment", on_delete=models.CASCADE, related_name="allocations")
    resource = models.ForeignKey("bookings.Resource", on_delete=models.PROTECT, related_name="allocations")
    unit = models.PositiveSmallIntegerField(default=0)
    start = models.DateTimeField()
    end = models.DateTimeField()
    live = models.BooleanField(default=True)
    expires_at = models.DateTimeField(null=True, blank=True)

    objects = AllocationQuerySet.as_manager()

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


class WaitlistEntry(models.Model):
    """A patient waiting for a free start on a scarce machine inside a window of days (bookings.engine.waitlist).

    Served first come, first served: when a start frees up, the first waiting entry whose window holds it gets
    the start held for ``WAITLIST_OFFER_MINUTES`` (an ordinary Hold, placed under the same resource locks); if
    they let it pass, the entry lapses and the next one is offered."""

    WAITING, OFFERED, BOOKED, LAPSED, LEFT, ENDED = "waiting", "offered", "booked", "lapsed", "left", "ended"
    STATUS_CHOICES = [(WAITING, _("Waiting")), (OFFERED, _("Offered a time")), (BOOKED, _("Booked")),
                      (LAPSED, _("Let the offer pass")), (LEFT, _("Left the waitlist")),
                      (ENDED, _("Window passed"))]
    OPEN = (WAITING, OFFERED)

    offering = models.ForeignKey("catalog.Offering", on_delete=models.CASCADE, related_name="waitlist")
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="waitlist_entries")
    booking = models.ForeignKey("bookings.Booking", null=True, blank=True, on_delete=models.CASCADE,
                                related_name="waitlist_entries",
                                help_text="For a treatment reviewed first: the quoted booking the start is for.")
    window_start = models.DateField(_("earliest start"))
    window_end = models.DateField(_("latest start"))
    language = models.CharField(max_length=10, default="en")
    status = models.CharField(max_length=10, choices=STATUS_CHOICES, default=WAITING)
    hold = models.ForeignKey("bookings.Hold", null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    offered_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["created_at", "id"]
        indexes = [models.Index(fields=["offering", "status", "created_at"])]
        constraints = [
            models.UniqueConstraint(fields=["user", "offering"], condition=Q(status__in=["waiting", "offered"]),
                                    name="waitlist_one_open_entry"),
            models.CheckConstraint(condition=Q(window_end__gte=models.F("window_start")),
                                   name="waitlist_window_order"),
        ]
