"""Background work of the sensors app: the worker supervises commands and watches for silent
devices too, so command time-outs, interlocks and missing-data rules work even where no ingest
process runs. Both are safe to run in several processes at once."""

from __future__ import annotations

from django.utils import timezone

from civicore.core.jobs import periodic
from civicore.sensors import commands, rules


@periodic(seconds=2)
def sensors_supervise_commands() -> None:
    commands.supervise(now=timezone.now())


@periodic(seconds=15)
def sensors_check_offline() -> None:
    rules.check_offline(now=timezone.now())


@periodic(seconds=3600)
def sensors_apply_retention() -> None:
    """Readings past their device type's retention, old rollups and old refusals go (hourly)."""
    from civicore.sensors import storage
    from civicore.sensors.models import DeviceType

    storage.prune(
        now=timezone.now(), type_retention=list(DeviceType.objects.values_list("pk", "retention_days"))
    )
