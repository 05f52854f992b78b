"""What is booked (resources), when it can be booked (hours, exceptions) and who runs it (staff)."""

from django.conf import settings
from django.db import models
from django.utils.translation import gettext_lazy as _


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

    class Meta:
        constraints = [models.UniqueConstraint(fields=["offering", "resource"], name="offering_resource_once")]


class ClinicMembership(models.Model):
    """A staff member's role in one clinic. Staff see only their clinics, in the desk."""

    COORDINATOR, CLINICIAN = "coordinator", "clinician"
    ROLE_CHOICES = [(COORDINATOR, _("Coordinator")), (CLINICIAN, _("Clinician"))]
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="clinic_memberships")
    clinic = models.ForeignKey("catalog.ClinicPage", on_delete=models.CASCADE, related_name="memberships")
    role = models.CharField(_("role"), max_length=20, choices=ROLE_CHOICES, default=COORDINATOR)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["user", "clinic"], name="membership_once")]

    def __str__(self):
        return f"{self.user} – {self.clinic} ({self.role})"
