"""Result documents: the signed PDF an approved application produces, and its register.

The register (serial, SHA-256 of the exact bytes issued) lets /verify tell a document we issued
from a tampered or unknown one, even beyond what the embedded signature proves.
"""

from __future__ import annotations

import uuid

from django.db import models
from django.utils import timezone


class ResultDocument(models.Model):
    serial = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    application = models.OneToOneField(
        "applications.Application", on_delete=models.PROTECT, related_name="result_document"
    )
    agency = models.ForeignKey("agencies.Agency", on_delete=models.PROTECT, related_name="+")
    title = models.CharField(max_length=300)
    file = models.FileField(upload_to="results/", max_length=300)
    sha256 = models.CharField(max_length=64, db_index=True)
    issued_at = models.DateTimeField(default=timezone.now)
    revoked_at = models.DateTimeField(null=True, blank=True)

    def __str__(self) -> str:
        return f"{self.title} ({self.serial})"
