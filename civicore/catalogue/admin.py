from django.contrib import admin

from civicore.catalogue.models import Procedure, Service, ServiceVersion


@admin.register(Procedure)
class ProcedureAdmin(admin.ModelAdmin):
    list_display = ["code", "name_vi", "level", "field"]
    search_fields = ["code", "search_text"]
    list_filter = ["level"]


class ServiceVersionInline(admin.TabularInline):
    model = ServiceVersion
    fields = ["number", "checksum", "created_at"]
    readonly_fields = ["number", "checksum", "created_at"]
    extra = 0
    can_delete = False
    show_change_link = False


@admin.register(Service)
class ServiceAdmin(admin.ModelAdmin):
    list_display = ["code", "name_vi", "agency", "online"]
    list_select_related = ["agency"]
    list_filter = ["online", "agency"]
    search_fields = ["code", "search_text"]
    # Definitions change only through `civicore services load`, which keeps versions honest.
    readonly_fields = [
        "code",
        "agency",
        "procedure",
        "current_version",
        "name_vi",
        "name_en",
        "summary_vi",
        "summary_en",
    ]
    inlines = [ServiceVersionInline]
