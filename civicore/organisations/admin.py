from typing import Any

from django.contrib import admin
from django.http import HttpRequest

from civicore.organisations.models import Membership, Organisation, RoleGrant


class ReadOnlyAdmin(admin.ModelAdmin):
    """Organisations, members and grants change only through the audited services."""

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


@admin.register(Organisation)
class OrganisationAdmin(ReadOnlyAdmin):
    list_display = ("registration_number", "name", "verified_source", "verified_at")
    search_fields = ("registration_number", "name")


@admin.register(Membership)
class MembershipAdmin(ReadOnlyAdmin):
    list_display = ("organisation", "person", "is_admin", "accepted_at", "removed_at")
    search_fields = ("organisation__registration_number", "organisation__name")


@admin.register(RoleGrant)
class RoleGrantAdmin(ReadOnlyAdmin):
    list_display = ("membership", "permission", "service", "expires_at", "revoked_at")
    search_fields = ("membership__organisation__registration_number",)
