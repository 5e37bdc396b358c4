"""Problem reports: what a citizen saw, where, and who is fixing it.

A report is filed once with a human-readable reference and a location, routed to the agency of
its category (by the AI model when it is sure, otherwise by a triage officer) and moves
triage -> open -> in_progress -> resolved; a duplicate is merged into another report. Text and
contact details are encrypted at rest; photos are re-encoded without metadata and kept private.
"""

from __future__ import annotations

import uuid

from django.conf import settings
from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models
from django.utils import timezone
from django.utils.translation import get_language
from django.utils.translation import gettext_lazy as _

from civicore.core.crypto import EncryptedTextField


class ReportCategory(models.Model):
    """A kind of problem and the agency responsible for it; its code is a routing model label."""

    code = models.SlugField(max_length=60, unique=True)
    name_vi = models.CharField(max_length=200)
    name_en = models.CharField(max_length=200, blank=True)
    description_vi = models.TextField(blank=True)
    description_en = models.TextField(blank=True)
    agency = models.ForeignKey("agencies.Agency", on_delete=models.PROTECT, related_name="report_categories")
    sla_days = models.PositiveSmallIntegerField(default=5, validators=[MinValueValidator(1)])
    active = models.BooleanField(default=True)
    keywords = models.TextField(blank=True, help_text="Comma-separated keywords (Open311)")

    class Meta:
        ordering = ["code"]
        verbose_name_plural = "report categories"

    def __str__(self) -> str:
        return self.name

    @property
    def name(self) -> str:
        if (get_language() or "vi").startswith("en") and self.name_en:
            return self.name_en
        return self.name_vi

    @property
    def description(self) -> str:
        if (get_language() or "vi").startswith("en") and self.description_en:
            return self.description_en
        return self.description_vi


def new_reference() -> str:
    from civicore.reports.references import generate

    return generate()


class Report(models.Model):
    class Status(models.TextChoices):
        TRIAGE = "triage", _("Waiting to be routed")
        OPEN = "open", _("Open")
        IN_PROGRESS = "in_progress", _("In progress")
        RESOLVED = "resolved", _("Resolved")
        MERGED = "merged", _("Merged into another report")

    class RoutedBy(models.TextChoices):
        NONE = "", _("Not routed")
        AI = "ai", _("AI model")
        OFFICER = "officer", _("Officer")
        CITIZEN = "citizen", _("Citizen's choice")

    class Source(models.TextChoices):
        WEB = "web", _("Web")
        OPEN311 = "open311", _("Open311")
        SENSOR = "sensor", _("City sensor")

    OPEN_STATUSES = (Status.TRIAGE, Status.OPEN, Status.IN_PROGRESS)

    reference = models.CharField(max_length=20, unique=True, default=new_reference, editable=False)
    public_id = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    reporter = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="reports"
    )
    contact_name = EncryptedTextField(blank=True)
    contact_email = EncryptedTextField(blank=True)
    contact_phone = EncryptedTextField(blank=True)
    description = EncryptedTextField()
    language = models.CharField(max_length=10, default="vi")
    latitude = models.FloatField(validators=[MinValueValidator(-90), MaxValueValidator(90)])
    longitude = models.FloatField(validators=[MinValueValidator(-180), MaxValueValidator(180)])
    address = models.CharField(max_length=300, blank=True)
    # The code of the district (civicore.areas) the place lies in when it was filed or the
    # districts were last loaded; "" when none holds it or none are loaded.
    district = models.CharField(max_length=40, blank=True, default="")
    category = models.ForeignKey(
        ReportCategory, null=True, blank=True, on_delete=models.PROTECT, related_name="reports"
    )
    agency = models.ForeignKey(
        "agencies.Agency", null=True, blank=True, on_delete=models.PROTECT, related_name="reports"
    )
    status = models.CharField(max_length=20, choices=Status.choices, default=Status.TRIAGE)
    routed_by = models.CharField(max_length=10, choices=RoutedBy.choices, blank=True, default="")
    routing_model_id = models.IntegerField(null=True, blank=True)
    routing_model_version = models.CharField(max_length=80, blank=True)
    routing_confidence = models.FloatField(null=True, blank=True)
    routing_threshold = models.FloatField(null=True, blank=True)
    # The model's predicted label and top-3 suggestions [[code, confidence], ...], for triage.
    routing_label = models.CharField(max_length=60, blank=True)
    routing_suggestions = models.JSONField(default=list, blank=True)
    human_review_requested_at = models.DateTimeField(null=True, blank=True)
    assigned_team = models.ForeignKey(
        "agencies.Team", null=True, blank=True, on_delete=models.SET_NULL, related_name="reports"
    )
    assigned_to_label = models.CharField(max_length=200, blank=True)
    due_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(default=timezone.now)
    updated_at = models.DateTimeField(auto_now=True)
    resolved_at = models.DateTimeField(null=True, blank=True)
    resolution_note = models.TextField(blank=True)
    merged_into = models.ForeignKey(
        "self", null=True, blank=True, on_delete=models.SET_NULL, related_name="merged_reports"
    )
    rating_resolved = models.BooleanField(null=True, blank=True)
    rating_stars = models.PositiveSmallIntegerField(
        null=True, blank=True, validators=[MinValueValidator(1), MaxValueValidator(5)]
    )
    rating_comment = EncryptedTextField(blank=True)
    rated_at = models.DateTimeField(null=True, blank=True)
    source = models.CharField(max_length=10, choices=Source.choices, default=Source.WEB)
    client_key = models.CharField(max_length=80, blank=True, help_text="Rate-limit key (user or hashed IP)")

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [
            models.Index(fields=["agency", "status", "due_at"], name="report_inbox"),
            models.Index(fields=["status", "created_at"], name="report_status_created"),
            models.Index(fields=["latitude", "longitude"], name="report_location"),
            models.Index(fields=["client_key", "created_at"], name="report_client_created"),
            models.Index(fields=["reporter", "-created_at"], name="report_reporter_created"),
        ]

    def __str__(self) -> str:
        return self.reference

    @property
    def is_open(self) -> bool:
        return self.status in self.OPEN_STATUSES

    @property
    def is_overdue(self) -> bool:
        return self.is_open and self.due_at is not None and self.due_at < timezone.now()


def _photo_path(instance: ReportPhoto, filename: str) -> str:
    return f"reports/{instance.report.public_id}/{uuid.uuid4().hex}.jpg"


class ReportPhoto(models.Model):
    """A photo re-encoded as JPEG without metadata; public only once an officer publishes it."""

    class Kind(models.TextChoices):
        REPORT = "report", _("Photo of the problem")
        FIX = "fix", _("Photo of the fix")

    public_id = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    report = models.ForeignKey(Report, on_delete=models.CASCADE, related_name="photos")
    kind = models.CharField(max_length=10, choices=Kind.choices, default=Kind.REPORT)
    file = models.FileField(upload_to=_photo_path, max_length=300)
    content_type = models.CharField(max_length=50, default="image/jpeg")
    width = models.PositiveIntegerField()
    height = models.PositiveIntegerField()
    size = models.PositiveIntegerField(default=0)
    published = models.BooleanField(default=False)
    uploaded_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["uploaded_at", "id"]

    def __str__(self) -> str:
        return f"photo {self.public_id} of {self.report_id}"


class ReportEvent(models.Model):
    class Kind(models.TextChoices):
        FILED = "filed", _("Reported")
        ROUTED = "routed", _("Sent to the responsible agency")
        TRIAGE = "triage", _("Waiting for an officer to route it")
        REROUTED = "rerouted", _("Sent to another agency")
        HUMAN_REVIEW = "human_review", _("Human review requested")
        ASSIGNED = "assigned", _("Assigned")
        IN_PROGRESS = "in_progress", _("Work started")
        RESOLVED = "resolved", _("Resolved")
        REOPENED = "reopened", _("Reopened")
        RATED = "rated", _("Rated")
        MERGED = "merged", _("Merged")
        SUPPORTED = "supported", _("Someone else reported it too")
        NOTE = "note", _("Note")

    report = models.ForeignKey(Report, on_delete=models.CASCADE, related_name="events")
    kind = models.CharField(max_length=20, choices=Kind.choices)
    at = models.DateTimeField(default=timezone.now)
    actor_label = models.CharField(max_length=200, blank=True)
    note = models.TextField(blank=True)
    public = models.BooleanField(default=True)

    class Meta:
        ordering = ["at", "id"]

    def __str__(self) -> str:
        return f"{self.kind} on {self.report_id}"


class ReportSupporter(models.Model):
    """Someone who pressed "Me too" on an open report; notified of its later changes."""

    report = models.ForeignKey(Report, on_delete=models.CASCADE, related_name="supporters")
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.CASCADE, related_name="+"
    )
    client_key = models.CharField(max_length=80, blank=True)
    contact_email = EncryptedTextField(blank=True)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["created_at", "id"]
        constraints = [
            models.UniqueConstraint(
                fields=["report", "user"],
                condition=models.Q(user__isnull=False),
                name="report_supporter_user",
            ),
            models.UniqueConstraint(
                fields=["report", "client_key"],
                condition=models.Q(user__isnull=True),
                name="report_supporter_client",
            ),
        ]

    def __str__(self) -> str:
        return f"supporter of {self.report_id}"
