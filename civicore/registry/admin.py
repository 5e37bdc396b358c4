from django.contrib import admin

from civicore.registry.models import AgencyApplication, MessageLogEntry


@admin.register(AgencyApplication)
class AgencyApplicationAdmin(admin.ModelAdmin):
    list_display = ["client_id", "name_vi", "agency", "is_agency_of_record", "active"]
    list_filter = ["active", "is_agency_of_record", "agency"]
    search_fields = ["client_id", "name_vi", "name_en"]


@admin.register(MessageLogEntry)
class MessageLogEntryAdmin(admin.ModelAdmin):
    list_display = ["at", "application", "direction", "operation", "status", "message_id"]
    list_filter = ["direction", "operation", "status"]
    readonly_fields = [f.name for f in MessageLogEntry._meta.fields]
    exclude = ["request_body", "response_body"]

    def has_add_permission(self, request):  # type: ignore[no-untyped-def]
        return False

    def has_change_permission(self, request, obj=None):  # type: ignore[no-untyped-def]
        return False

    def has_delete_permission(self, request, obj=None):  # type: ignore[no-untyped-def]
        return False
