from typing import Any

from django import forms
from django.contrib import admin
from django.db import models

from civicore.registry.models import AgencyApplication, MessageLogEntry
from civicore.registry.services import logout_uri_errors


class AgencyApplicationAdminForm(forms.ModelForm):
    """Platform administrators set the OpenID Connect metadata here too; the signing algorithms
    are limited by the model's choices, the logout URIs checked as the registry checks them.
    (ModelAdmin builds the form's fields for AgencyApplication.)"""

    def clean(self) -> dict[str, Any]:
        cleaned: dict[str, Any] = super().clean() or {}
        names = ("redirect_uris", "backchannel_logout_uri", "frontchannel_logout_uri")
        probe = AgencyApplication(**{name: cleaned.get(name, getattr(self.instance, name)) for name in names})
        for field, message in logout_uri_errors(probe).items():
            if field not in self.errors:
                self.add_error(field, message)
        return cleaned


@admin.register(AgencyApplication)
class AgencyApplicationAdmin(admin.ModelAdmin):
    form = AgencyApplicationAdminForm
    formfield_overrides = {models.URLField: {"assume_scheme": "https"}}
    list_display = ["client_id", "name_vi", "agency", "is_agency_of_record", "payment_events", "active"]
    list_filter = ["active", "is_agency_of_record", "payment_events", "agency"]
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
