"""Background work of the open data portal: datasets regenerated when they are due."""

from __future__ import annotations

from django.conf import settings

from civicore.core.jobs import periodic
from civicore.opendata import services

# How often a worker looks for datasets that are due (each has its own frequency).
CHECK_SECONDS = float(getattr(settings, "OPENDATA_CHECK_SECONDS", 600))


@periodic(seconds=CHECK_SECONDS)
def refresh_due_datasets() -> None:
    services.datasets_refresh(force=False)
