"""Django admin (superusers only). Clinic staff use the desk; editors use Wagtail."""

from django.contrib import admin

from . import admin_records  # noqa: F401 — read-only records and their access log
from .models import (
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


class BookingEventInline(admin.TabularInline):
    model = BookingEvent
    extra = 0
    can_delete = False
    readonly_fields = ("from_state", "to_state", "actor", "at", "note")

    def has_add_permission(self, request, obj=None):
        return False


@admin.register(Booking)
class BookingAdmin(admin.ModelAdmin):
    """Read-only: every state change goes through bookings.services (desk, API, patient pages)."""

    list_display = ("reference", "service_title", "clinic", "state", "created_at")
    list_filter = ("state",)
    search_fields = ("reference", "user__email")
    inlines = [BookingEventInline]

    def has_change_permission(self, request, obj=None):
        return False

    def has_add_permission(self, request):
        return False

    def has_delete_permission(self, request, obj=None):
        return False


@admin.register(Payment, Refund, WebhookEvent)
class ReadOnlyAdmin(admin.ModelAdmin):
    def has_change_permission(self, request, obj=None):
        return False

    def has_add_permission(self, request):
        return False

    def has_delete_permission(self, request, obj=None):
        return False
