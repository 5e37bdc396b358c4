from django.contrib import admin
from django.contrib.auth.admin import UserAdmin

from civicore.identity.models import ApiToken, User


@admin.register(User)
class CivicoreUserAdmin(UserAdmin):
    fieldsets = (*(UserAdmin.fieldsets or ()), ("Civicore", {"fields": ("full_name", "preferred_language")}))
    list_display = ("email", "full_name", "is_staff", "is_active")
    search_fields = ("email", "full_name")


@admin.register(ApiToken)
class ApiTokenAdmin(admin.ModelAdmin):
    list_display = ("name", "user", "prefix", "created_at", "expires_at", "revoked")
    readonly_fields = ("token_hash", "prefix")
