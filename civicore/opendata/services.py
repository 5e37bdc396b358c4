"""Publishing datasets: each registered generator's tables replace its resources' rows, on a
schedule (tasks.py) or on demand (`civicore opendata refresh`)."""

from __future__ import annotations

import datetime as dt
import logging

from django.db import transaction
from django.utils import timezone

from civicore.opendata import datastore
from civicore.opendata.generators import DatasetSpec, available
from civicore.opendata.models import Dataset, Resource

logger = logging.getLogger(__name__)

# How old a dataset may grow before the schedule regenerates it.
MAX_AGE: dict[str, dt.timedelta] = {
    Dataset.Frequency.HOURLY: dt.timedelta(hours=1),
    Dataset.Frequency.DAILY: dt.timedelta(days=1),
    Dataset.Frequency.MONTHLY: dt.timedelta(days=1),  # the current month's figures still move
}


def _dataset_for(spec: DatasetSpec) -> Dataset:
    dataset, _ = Dataset.objects.get_or_create(
        generator=spec.key,
        defaults={"name": spec.name, "title_vi": spec.title_vi, "title_en": spec.title_en},
    )
    return dataset


def dataset_refresh(*, spec: DatasetSpec, force: bool = True) -> Dataset | None:
    """Regenerate one dataset under its row's lock, so that two workers never build it at once.
    Without `force`, only when it is older than its frequency allows; returns None when skipped."""
    _dataset_for(spec)
    with transaction.atomic():
        dataset = Dataset.objects.select_for_update().get(generator=spec.key)
        fresh = dataset.resources.exists() and timezone.now() - dataset.modified_at < MAX_AGE[spec.frequency]
        if fresh and not force:
            return None
        tables = spec.build()
        now = timezone.now()
        dataset.name = spec.name
        dataset.title_vi, dataset.title_en = spec.title_vi, spec.title_en
        dataset.notes_vi, dataset.notes_en = spec.notes_vi, spec.notes_en
        dataset.tags, dataset.theme, dataset.frequency = list(spec.tags), spec.theme, spec.frequency
        dataset.modified_at = now
        dataset.save()
        keep = []
        for position, table in enumerate(tables):
            resource, _ = Resource.objects.get_or_create(
                dataset=dataset, key=table.key, defaults={"name_vi": table.name_vi, "name_en": table.name_en}
            )
            resource.position = position
            resource.name_vi, resource.name_en = table.name_vi, table.name_en
            resource.description_vi, resource.description_en = table.description_vi, table.description_en
            resource.fields = [f.as_dict() for f in table.fields]
            resource.row_count = datastore.replace_rows(resource, table.fields, table.rows)
            resource.suppressed_cells = table.suppressed
            resource.modified_at = now
            resource.save()
            keep.append(resource.pk)
        for gone in dataset.resources.exclude(pk__in=keep):
            datastore.drop(gone)
            gone.delete()
    logger.info("open data: %s regenerated (%d resources)", spec.key, len(tables))
    return dataset


def datasets_refresh(*, only: list[str] | None = None, force: bool = True) -> list[Dataset]:
    """Regenerate every available dataset (or those named in `only`); one failing generator
    does not stop the others."""
    done = []
    for spec in available():
        if only and spec.key not in only and spec.name not in only:
            continue
        try:
            dataset = dataset_refresh(spec=spec, force=force)
        except Exception:
            logger.exception("open data: %s could not be regenerated", spec.key)
            continue
        if dataset is not None:
            done.append(dataset)
    return done
