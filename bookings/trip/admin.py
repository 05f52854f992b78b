"""Django admin for the trip plan (superusers): the extras clinics offer, and the waitlist, read to check."""

from django.contrib import admin

from bookings.models import OfferingExtra, WaitlistEntry


@admin.register(OfferingExtra)
class OfferingExtraAdmin(admin.ModelAdmin):
    list_display = ("offering", "kind", "language", "price", "unit", "pay_at", "is_active")
    list_filter = ("kind", "pay_at", "is_active")
    raw_id_fields = ("offering",)


@admin.register(WaitlistEntry)
class WaitlistEntryAdmin(admin.ModelAdmin):
    list_display = ("offering", "user", "window_start", "window_end", "status", "created_at")
    list_filter = ("status",)
    raw_id_fields = ("offering", "user", "booking", "hold")
