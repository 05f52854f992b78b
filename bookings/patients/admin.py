"""Django admin (superusers only) for medical records and their access log: read-only.

The file itself is not shown or linked here; it is served only by the checked view
(``bookings.patients.views.record_download``), which logs every read. Nobody can add, edit or delete a
RecordAccess row through the admin. Import this module from ``bookings/admin.py`` to register it.
"""

from django.contrib import admin

from bookings.models import Consent, MedicalRecord, RecordAccess, Restriction


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
    fields = ("at", "user", "kind", "action", "ip")
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
    # names and descriptions are encrypted and may say what the illness is: not shown here
    fields = ("id", "owner", "booking", "content_type", "size", "sha256", "uploaded_at")
    readonly_fields = fields
    inlines = [RecordAccessInline]

    def get_list_display(self, request):
        return ("id", "owner", "booking", "content_type", "size", "uploaded_at")

    def get_queryset(self, request):
        # records kept under a legal obligation after erasure are for their clinic only
        return super().get_queryset(request).exclude(booking__restriction__isnull=False)


@admin.register(RecordAccess)
class RecordAccessAdmin(ReadOnlyAdmin):
    """The data access log: read-only, no deletion (also refused by the model itself)."""

    list_display = ("at", "kind", "patient", "booking", "user", "action", "ip")
    list_filter = ("kind", "action")
    search_fields = ("user__email", "patient__email", "target", "ip")
    date_hierarchy = "at"
    list_select_related = ("patient", "booking", "user")
    fields = ("at", "kind", "patient", "booking", "target", "user", "action", "ip")
    readonly_fields = fields

    def get_actions(self, request):
        return {}


@admin.register(Consent)
class ConsentAdmin(ReadOnlyAdmin):
    list_display = ("booking", "user", "version", "language", "given_at", "withdrawn_at")
    list_filter = ("version", "language")
    fields = ("booking", "user", "version", "language", "text", "given_at", "ip", "withdrawn_at")
    readonly_fields = fields


@admin.register(Restriction)
class RestrictionAdmin(ReadOnlyAdmin):
    list_display = ("booking", "keep_until", "created_at")
    fields = ("booking", "reason", "keep_until", "created_at")
    readonly_fields = fields
