from django.apps import AppConfig


class CoreConfig(AppConfig):
    name = "civicore.core"
    label = "core"
    verbose_name = "Core"

    def ready(self) -> None:
        from civicore.core import jobs

        jobs.autodiscover()
