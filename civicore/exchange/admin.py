from django.contrib import admin

from civicore.exchange.models import ChangeEvent, Delivery


@admin.register(ChangeEvent)
class ChangeEventAdmin(admin.ModelAdmin):
    list_display = ("uuid", "kind", "person", "items", "cause", "agency", "created_at", "receipt_sent_at")
    list_filter = ("kind",)
    list_select_related = ("person__user", "agency")
    search_fields = ("uuid",)
    raw_id_fields = ("person", "agency")

    def has_add_permission(self, request):  # type: ignore[no-untyped-def]
        return False

    def has_change_permission(self, request, obj=None):  # type: ignore[no-untyped-def]
        return False


@admin.register(Delivery)
class DeliveryAdmin(admin.ModelAdmin):
    list_display = ("webhook_id", "application", "status", "attempts", "last_status", "delivered_at")
    list_filter = ("status",)
    list_select_related = ("application",)
    search_fields = ("webhook_id", "application__client_id")
    raw_id_fields = ("event", "application")

    def has_add_permission(self, request):  # type: ignore[no-untyped-def]
        return False

    def has_change_permission(self, request, obj=None):  # type: ignore[no-untyped-def]
        return False
