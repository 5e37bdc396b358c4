"""The routing model registry and the training examples officers' corrections produce.

A RoutingModel holds its whole artifact (manifest + weights) in the database, so every web process
loads the same bytes; its held-out rows (citizens' free text) are stored encrypted. At most one
model is active at a time (a partial unique constraint).
"""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.db.models import Q
from django.utils.translation import gettext_lazy as _

from civicore.core.crypto import EncryptedTextField


class RoutingModel(models.Model):
    class State(models.TextChoices):
        CANDIDATE = "candidate", _("Candidate")
        ACTIVE = "active", _("Active")
        RETIRED = "retired", _("Retired")

    version = models.CharField(max_length=80, unique=True)
    sha256 = models.CharField(max_length=64, help_text="sha256 of the manifest")
    manifest = models.JSONField()
    manifest_text = models.TextField(help_text="the manifest exactly as hashed")
    artifact = models.BinaryField(help_text="model.npz")
    heldout = EncryptedTextField(blank=True, help_text="heldout.csv, encrypted (citizens' text)")
    state = models.CharField(max_length=20, choices=State.choices, default=State.CANDIDATE)
    created_at = models.DateTimeField(auto_now_add=True)
    activated_at = models.DateTimeField(null=True, blank=True)
    activated_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    activated_by_label = models.CharField(max_length=200, blank=True)
    activated_by_agency = models.ForeignKey(
        "agencies.Agency", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )

    class Meta:
        ordering = ["-created_at", "-id"]
        constraints = [
            models.UniqueConstraint(
                fields=["state"], condition=Q(state="active"), name="routing_one_active_model"
            ),
        ]

    def __str__(self) -> str:
        return self.version

    @property
    def labels(self) -> list[str]:
        return list(self.manifest.get("labels", []))

    @property
    def threshold(self) -> float:
        return float(self.manifest.get("threshold", 1.0))


class TrainingExample(models.Model):
    class Source(models.TextChoices):
        CORRECTION = "correction", _("Correction by an officer")
        CONFIRMED = "confirmed", _("Routing confirmed")

    text = EncryptedTextField()
    label = models.CharField(max_length=60)
    predicted_label = models.CharField(max_length=60, blank=True)
    reason = models.TextField(blank=True)
    source = models.CharField(max_length=20, choices=Source.choices)
    officer = models.ForeignKey(
        "agencies.Officer", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    model = models.ForeignKey(
        RoutingModel, null=True, blank=True, on_delete=models.SET_NULL, related_name="examples"
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["created_at", "id"]

    def __str__(self) -> str:
        return f"{self.label} ({self.source})"
