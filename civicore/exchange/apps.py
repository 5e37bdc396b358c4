from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class ExchangeConfig(AppConfig):
    name = "civicore.exchange"
    label = "exchange"
    verbose_name = _("Change notifications")

    def ready(self) -> None:
        from civicore.exchange.services import on_profile_items_changed
        from civicore.identity.signals import profile_items_changed

        profile_items_changed.connect(on_profile_items_changed, dispatch_uid="exchange.outbox")
