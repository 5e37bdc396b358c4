from typing import Any

from django.contrib import admin, messages
from django.db.models import QuerySet
from django.http import HttpRequest
from django.utils.translation import gettext_lazy as _
from django.utils.translation import ngettext

from civicore.open311.models import Open311Client, Open311Submission
from civicore.open311.services import open311_client_revoke


@admin.register(Open311Client)
class Open311ClientAdmin(admin.ModelAdmin):
    """Keys are created on the command line (`civicore open311 create-key NAME`), which shows the
    key once; here they are listed, renamed and revoked. The hash is never editable."""

    list_display = ["name", "prefix", "agency", "active", "created_at", "last_used_at"]
    list_filter = ["active", "agency"]
    search_fields = ["name", "prefix"]
    readonly_fields = ["key_hash", "prefix", "active", "created_at", "last_used_at", "revoked_at"]
    fields = ["name", "agency", *readonly_fields]
    actions = ["revoke"]

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False  # a revoked key stays listed: its reports still name it

    @admin.action(description=_("Revoke the selected keys"))
    def revoke(self, request: HttpRequest, queryset: QuerySet[Open311Client]) -> None:
        count = 0
        for prefix in sorted(set(queryset.filter(active=True).values_list("prefix", flat=True))):
            count += len(open311_client_revoke(prefix=prefix, actor=request.user))
        self.message_user(
            request,
            ngettext("%(count)d key revoked.", "%(count)d keys revoked.", count) % {"count": count},
            messages.SUCCESS,
        )


@admin.register(Open311Submission)
class Open311SubmissionAdmin(admin.ModelAdmin):
    list_display = ["report", "client", "created_at"]
    list_filter = ["client"]
    readonly_fields = ["report", "client", "media_url", "created_at"]

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False
