from typing import Any

from django.apps import AppConfig
from django.core.signals import request_finished
from django.db.models.signals import post_migrate


def _create_cache_table(sender: Any, using: str = "default", **kwargs: Any) -> None:
    """The embedded cache is a database table (CACHE_URL unset); `migrate` creates it."""
    from django.core.management import call_command

    call_command("createcachetable", database=using, verbosity=0)


def _create_signing_keys(sender: Any, using: str = "default", verbosity: int = 1, **kwargs: Any) -> None:
    """A new installation publishes its signing keys before anyone asks for the JWKS."""
    from django.conf import settings

    from civicore.core.jose import ensure_signing_keys

    if not settings.SIGNING_KEYS_ON_MIGRATE:
        return
    created = ensure_signing_keys()
    if created and verbosity >= 1:
        print("Created platform signing keys: " + ", ".join(f"{key.alg} {key.kid}" for key in created))


class CoreConfig(AppConfig):
    name = "civicore.core"
    label = "core"
    verbose_name = "Core"

    def ready(self) -> None:
        from civicore.core import auth_protection, jobs, request_ids  # noqa: F401 - auth_protection connects its signals

        jobs.autodiscover()
        request_finished.connect(request_ids.clear, dispatch_uid="civicore.core.request_ids.clear")
        post_migrate.connect(_create_cache_table, sender=self, dispatch_uid="civicore.core.cache_table")
        post_migrate.connect(_create_signing_keys, sender=self, dispatch_uid="civicore.core.signing_keys")
