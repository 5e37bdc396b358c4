"""Applications citizens file for e-services.

An application starts as a draft (answers and documents may change), becomes SUBMITTED once,
with a reference number, and is then handled as a case. Answers are encrypted at rest; the
provenance of pre-filled answers is kept next to them. An application filed for a business
names the organisation; `filed_by` is the person who submitted it (the applicant for their own).
"""

from __future__ import annotations

import uuid
from typing import Any

from django.db import models
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from civicore.core.fields import EncryptedJSONField


class Application(models.Model):
    class Status(models.TextChoices):
        DRAFT = "draft", _("Draft")
        SUBMITTED = "submitted", _("Submitted")

    public_id = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    reference = models.CharField(max_length=40, unique=True, null=True, blank=True)
    applicant = models.ForeignKey("identity.Person", on_delete=models.PROTECT, related_name="applications")
    service = models.ForeignKey("catalogue.Service", on_delete=models.PROTECT, related_name="applications")
    # Filed on a business's behalf (None: for the applicant themselves). Indexed only where set,
    # so personal filings pay nothing for it.
    organisation = models.ForeignKey(
        "organisations.Organisation",
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="applications",
        db_index=False,
    )
    filed_by = models.ForeignKey(
        "identity.Person", on_delete=models.PROTECT, related_name="+", db_index=False
    )
    service_version = models.ForeignKey(
        "catalogue.ServiceVersion", on_delete=models.PROTECT, related_name="+"
    )
    status = models.CharField(max_length=20, choices=Status.choices, default=Status.DRAFT)
    answers = EncryptedJSONField(default=dict)
    prefill = models.JSONField(
        default=dict, help_text="field -> {source, verified_at} for pre-filled answers"
    )
    # The citizen's choice, per application, to fill answers from their verified profile:
    # when they agreed and which profile items it covered. Null means they filled it in themselves.
    prefill_consented_at = models.DateTimeField(null=True, blank=True)
    prefill_items = models.JSONField(default=list, blank=True)
    created_at = models.DateTimeField(default=timezone.now)
    updated_at = models.DateTimeField(auto_now=True)
    submitted_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        indexes = [
            models.Index(fields=["applicant", "-created_at"], name="app_applicant_created"),
            models.Index(
                fields=["organisation", "-created_at"],
                name="app_organisation_created",
                condition=models.Q(organisation__isnull=False),
            ),
        ]

    def __str__(self) -> str:
        return self.reference or f"draft {self.public_id}"

    def save(self, *args: Any, **kwargs: Any) -> None:
        # Whoever files for themselves is the one who acted.
        if self.filed_by_id is None:
            self.filed_by_id = self.applicant_id
        super().save(*args, **kwargs)


def _document_path(instance: ApplicationDocument, filename: str) -> str:
    return f"applications/{instance.application.public_id}/{uuid.uuid4().hex}"


class ApplicationDocument(models.Model):
    """A supporting document. Stored outside the web root under a random name."""

    public_id = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    application = models.ForeignKey(Application, on_delete=models.CASCADE, related_name="documents")
    requirement = models.CharField(max_length=80)
    file = models.FileField(upload_to=_document_path, max_length=300)
    original_name = models.CharField(max_length=255)
    content_type = models.CharField(max_length=100)
    size = models.PositiveIntegerField()
    sha256 = models.CharField(max_length=64)
    uploaded_at = models.DateTimeField(default=timezone.now)
    uploaded_during = models.CharField(max_length=20, default="application")

    def __str__(self) -> str:
        return self.original_name


class ReferenceCounter(models.Model):
    """Per-service, per-year sequence for human-readable reference numbers."""

    prefix = models.CharField(max_length=40, unique=True)
    last = models.PositiveIntegerField(default=0)

    def __str__(self) -> str:
        return f"{self.prefix}: {self.last}"
