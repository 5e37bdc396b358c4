"""Open data: datasets published from live data, in the shape CKAN's Action API speaks.

A Dataset (CKAN's "package") belongs to an agency or to the platform and holds Resources; each
resource's rows live in a datastore table of their own (datastore.py), replaced whole when the
dataset is regenerated. Datasets hold aggregates only: counts under the disclosure threshold
are suppressed before anything is written.
"""

from __future__ import annotations

import uuid

from django.db import models
from django.utils import timezone
from django.utils.translation import get_language
from django.utils.translation import gettext_lazy as _


class Dataset(models.Model):
    class Frequency(models.TextChoices):
        HOURLY = "hourly", _("Hourly")
        DAILY = "daily", _("Daily")
        MONTHLY = "monthly", _("Monthly")

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    # CKAN's rules for a package name: 2-100 characters, lowercase letters, digits, - and _.
    name = models.SlugField(max_length=100, unique=True)
    generator = models.CharField(max_length=60, unique=True)
    agency = models.ForeignKey(
        "agencies.Agency", null=True, blank=True, on_delete=models.PROTECT, related_name="datasets"
    )
    title_vi = models.CharField(max_length=300)
    title_en = models.CharField(max_length=300)
    notes_vi = models.TextField(blank=True)
    notes_en = models.TextField(blank=True)
    tags = models.JSONField(default=list, blank=True)
    theme = models.CharField(max_length=200, blank=True, help_text="EU data theme URI (DCAT-AP)")
    frequency = models.CharField(max_length=10, choices=Frequency.choices, default=Frequency.DAILY)
    license_id = models.CharField(max_length=40, default="cc-by-4.0")
    created_at = models.DateTimeField(default=timezone.now)
    modified_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name

    @property
    def title(self) -> str:
        return self.title_en if (get_language() or "vi").startswith("en") else self.title_vi

    @property
    def notes(self) -> str:
        return self.notes_en if (get_language() or "vi").startswith("en") else self.notes_vi


class Resource(models.Model):
    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    dataset = models.ForeignKey(Dataset, on_delete=models.CASCADE, related_name="resources")
    key = models.SlugField(max_length=60)
    position = models.PositiveSmallIntegerField(default=0)
    name_vi = models.CharField(max_length=300)
    name_en = models.CharField(max_length=300)
    description_vi = models.TextField(blank=True)
    description_en = models.TextField(blank=True)
    # [{"id": column, "type": "text|int|numeric|date|timestamp|bool", "label_vi", "label_en"}]
    fields = models.JSONField(default=list)
    row_count = models.PositiveBigIntegerField(default=0)
    suppressed_cells = models.PositiveIntegerField(default=0)
    created_at = models.DateTimeField(default=timezone.now)
    modified_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["dataset", "position"]
        constraints = [models.UniqueConstraint(fields=["dataset", "key"], name="opendata_resource_key")]

    def __str__(self) -> str:
        return f"{self.dataset.name}/{self.key}"

    @property
    def name(self) -> str:
        return self.name_en if (get_language() or "vi").startswith("en") else self.name_vi

    @property
    def description(self) -> str:
        return self.description_en if (get_language() or "vi").startswith("en") else self.description_vi

    @property
    def table(self) -> str:
        """The datastore table holding this resource's rows (named by us, never by input)."""
        return f"opendata_ds_{self.id.hex}"
