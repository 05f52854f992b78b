"""Django admin (superusers only). Clinic staff use the desk; editors use Wagtail."""

from django.contrib import admin

from bookings.models import (
    AvailabilityException,
    Booking,
    BookingEvent,
    ClinicMembership,
    Payment,
    Refund,
    Resource,
    WebhookEvent,
    WeeklyHours,
)
from bookings.patients.admin import (  # also registers the read-only records and access log
    ReadOnly,
    ReadOnlyAdmin,
)
from bookings.trip import admin as _trip_admin  # noqa: F401 - registers the extras and the waitlist


class WeeklyHoursInline(admin.TabularInline):
    model = WeeklyHours
    extra = 0


@admin.register(Resource)
class ResourceAdmin(admin.ModelAdmin):
    list_display = ("name", "clinic", "kind", "capacity", "is_active")
    list_filter = ("kind", "is_active")
    search_fields = ("name",)
    inlines = [WeeklyHoursInline]


@admin.register(AvailabilityException)
class AvailabilityExceptionAdmin(admin.ModelAdmin):
    list_display = ("resource", "kind", "start", "end", "reason")


@admin.register(ClinicMembership)
class ClinicMembershipAdmin(admin.ModelAdmin):
    list_display = ("user", "clinic", "role")
    autocomplete_fields = ("user",)


class BookingEventInline(ReadOnly, admin.TabularInline):
    model = BookingEvent
    extra = 0
    readonly_fields = ("from_state", "to_state", "actor", "at", "note")


@admin.register(Booking)
class BookingAdmin(ReadOnlyAdmin):
    """Read-only: every state change goes through the service modules (bookings.lifecycle, review, payments)."""

    list_display = ("reference", "service_title", "clinic", "state", "created_at")
    list_filter = ("state",)
    search_fields = ("reference", "user__email")
    inlines = [BookingEventInline]
    # health data (encrypted) is for the clinic with the patient's consent, through the desk, where reads are logged
    exclude = ("questionnaire", "request_note", "decline_reason")

    def get_queryset(self, request):
        # bookings kept under a legal obligation after the patient's erasure are for their clinic only
        return super().get_queryset(request).exclude(restriction__isnull=False)


admin.site.register([Payment, Refund, WebhookEvent], ReadOnlyAdmin)
