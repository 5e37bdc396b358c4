from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class OpendataConfig(AppConfig):
    name = "civicore.opendata"
    label = "opendata"
    verbose_name = _("Open data")

    def ready(self) -> None:
        from civicore.opendata import generators, tasks  # noqa: F401  (registers datasets and the schedule)
