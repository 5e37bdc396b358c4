from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class InsightsConfig(AppConfig):
    name = "civicore.insights"
    label = "insights"
    verbose_name = _("Service performance")

    def ready(self) -> None:
        # Registries filled at start-up: a paid fee counts through the payments' paid hooks, and
        # the scorecards are published as an open dataset.
        from civicore.insights import events, opendata  # noqa: F401
        from civicore.payments import services as payments

        if events.fee_paid not in payments.paid_hooks:
            payments.paid_hooks.append(events.fee_paid)
