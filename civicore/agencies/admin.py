from django.contrib import admin

from civicore.agencies.models import Agency, Officer


@admin.register(Agency)
class AgencyAdmin(admin.ModelAdmin):
    list_display = ("code", "name_vi", "name_en", "level")
    search_fields = ("code", "name_vi", "name_en")


@admin.register(Officer)
class OfficerAdmin(admin.ModelAdmin):
    list_display = ("user", "agency", "role", "active")
    list_filter = ("agency", "role")
