"""Django admin (superusers only) for medical records and their access log: read-only.

The file itself is not shown or linked here; it is served only by the checked view
(``bookings.patients.views.record_download``), which logs every read. Nobody can add, edit or delete a
RecordAccess row through the admin. Import this module from ``bookings/admin.py`` to register it.
"""

from django.contrib import admin

from bookings.models import MedicalRecord, RecordAccess


class ReadOnly:
    """No adding, changing or deleting through the admin: history is written only by the services."""

    def has_add_permission(self, request, obj=None):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False


class ReadOnlyAdmin(ReadOnly, admin.ModelAdmin):
    pass


class RecordAccessInline(ReadOnly, admin.TabularInline):
    model = RecordAccess
    fields = ("at", "user", "action", "ip")
    readonly_fields = fields
    extra = 0
    can_delete = False
    show_change_link = False


@admin.register(MedicalRecord)
class MedicalRecordAdmin(ReadOnlyAdmin):
    list_display = ("original_name", "owner", "booking", "content_type", "size", "uploaded_at")
    list_filter = ("content_type",)
    search_fields = ("owner__email", "booking__reference", "sha256")
    date_hierarchy = "uploaded_at"
    list_select_related = ("owner", "booking")
    fields = ("id", "owner", "booking", "original_name", "content_type", "size", "sha256", "description",
              "uploaded_at")
    readonly_fields = fields
    inlines = [RecordAccessInline]


@admin.register(RecordAccess)
class RecordAccessAdmin(ReadOnlyAdmin):
    list_display = ("at", "record", "user", "action", "ip")
    list_filter = ("action",)
    search_fields = ("user__email", "record__id", "ip")
    date_hierarchy = "at"
    list_select_related = ("record", "user")
    fields = ("record", "user", "action", "at", "ip")
    readonly_fields = fields
