"""The service catalogue.

A Procedure is an entry of the national catalogue of administrative procedures (what the law
requires). A Service is the online e-service that delivers one, defined declaratively; each
change to its definition is a new ServiceVersion, and applications keep the version they were
filed under.
"""

from __future__ import annotations

from typing import Any

from django.db import models
from django.utils import timezone
from django.utils.translation import get_language

from civicore.core.models import BilingualNameMixin


class Procedure(BilingualNameMixin):
    # Official procedure titles run to 420 characters, longer than the mixin allows.
    name_vi = models.CharField(max_length=600)
    code = models.CharField(max_length=30, unique=True)
    level = models.CharField(max_length=200, blank=True)
    field = models.CharField(max_length=300, blank=True)
    agency_name = models.CharField(max_length=500, blank=True)
    agency = models.ForeignKey("agencies.Agency", null=True, blank=True, on_delete=models.SET_NULL)
    processing_time = models.TextField(blank=True)
    fee_text = models.TextField(blank=True)
    documents = models.JSONField(default=list, blank=True)
    legal_basis = models.JSONField(default=list, blank=True)
    result = models.TextField(blank=True)
    audience = models.TextField(blank=True)
    eligibility = models.TextField(blank=True)
    source = models.CharField(max_length=300, blank=True)
    search_text = models.TextField(blank=True, editable=False)

    class Meta:
        ordering = ["code"]


class Service(BilingualNameMixin):
    code = models.SlugField(max_length=80, unique=True)
    agency = models.ForeignKey("agencies.Agency", on_delete=models.PROTECT, related_name="services")
    procedure = models.ForeignKey(Procedure, null=True, blank=True, on_delete=models.SET_NULL)
    summary_vi = models.TextField(blank=True)
    summary_en = models.TextField(blank=True)
    online = models.BooleanField(default=True)
    search_text = models.TextField(blank=True, editable=False)
    current_version = models.ForeignKey(
        "ServiceVersion", null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )

    class Meta:
        ordering = ["code"]

    @property
    def summary(self) -> str:
        if (get_language() or "vi").startswith("en") and self.summary_en:
            return self.summary_en
        return self.summary_vi


class ServiceVersion(models.Model):
    service = models.ForeignKey(Service, on_delete=models.CASCADE, related_name="versions")
    number = models.PositiveIntegerField()
    definition = models.JSONField()
    checksum = models.CharField(max_length=64)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["service", "number"], name="catalogue_version_unique")]
        ordering = ["service", "-number"]

    def __str__(self) -> str:
        return f"{self.service.code} v{self.number}"

    @property
    def fee_minor(self) -> int:
        return int(self.definition.get("fee", {}).get("amount", 0))

    @property
    def currency(self) -> str:
        return str(self.definition.get("fee", {}).get("currency", "VND"))

    @property
    def sla_working_days(self) -> int:
        return int(self.definition["sla_working_days"])

    def text(self, value: Any) -> str:
        """A bilingual {vi, en} value in the active language."""
        if isinstance(value, dict):
            lang = "en" if (get_language() or "vi").startswith("en") else "vi"
            return str(value.get(lang) or value.get("vi") or "")
        return str(value or "")
