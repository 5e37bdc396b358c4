"""Public consultations: an agency asks a question, citizens post ideas, vote and comment while it
is open, and the agency answers with an official response once it is closed.

Invariants: one vote per person and idea (a unique constraint, so a race cannot count twice);
nothing is written to a consultation that is not open; a moderated idea or comment keeps its place
and shows the reason, and every moderation is kept in `Moderation` (who, when, why)."""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

TITLE_MAX = 200
IDEA_TITLE_MAX = 140
IDEA_BODY_MAX = 4000
COMMENT_MAX = 2000
QUESTION_MAX = 1000
DESCRIPTION_MAX = 10000
NOTE_MAX = 1000
RESPONSE_MAX = 10000
DISPLAY_NAME_MAX = 60


class Consultation(models.Model):
    class Status(models.TextChoices):
        DRAFT = "draft", _("Draft")
        OPEN = "open", _("Open")
        CLOSED = "closed", _("Closed")
        RESPONDED = "responded", _("Responded")

    agency = models.ForeignKey("agencies.Agency", on_delete=models.PROTECT, related_name="consultations")
    slug = models.SlugField(max_length=80, unique=True)
    title = models.CharField(max_length=TITLE_MAX)
    question = models.TextField(max_length=QUESTION_MAX)
    description = models.TextField(max_length=DESCRIPTION_MAX, blank=True)
    opens_on = models.DateField()
    closes_on = models.DateField()
    status = models.CharField(max_length=20, choices=Status.choices, default=Status.DRAFT)
    created_by = models.ForeignKey("agencies.Officer", null=True, on_delete=models.SET_NULL, related_name="+")
    created_at = models.DateTimeField(default=timezone.now)
    published_at = models.DateTimeField(null=True, blank=True)
    closed_at = models.DateTimeField(null=True, blank=True)
    response_text = models.TextField(max_length=RESPONSE_MAX, blank=True)
    response_actions = models.TextField(max_length=RESPONSE_MAX, blank=True)
    responded_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-opens_on", "-id"]
        constraints = [
            models.CheckConstraint(
                condition=models.Q(closes_on__gte=models.F("opens_on")),
                name="consultations_closes_after_opening",
            ),
        ]

    def __str__(self) -> str:
        return self.title

    @property
    def is_public(self) -> bool:
        return self.status != self.Status.DRAFT

    @property
    def accepts_contributions(self) -> bool:
        """Open, and today between the opening and the closing date (both included)."""
        today = timezone.localdate()
        return self.status == self.Status.OPEN and self.opens_on <= today <= self.closes_on


class ConsultationDocument(models.Model):
    """A PDF the agency publishes with the consultation, checked like every upload."""

    consultation = models.ForeignKey(Consultation, on_delete=models.CASCADE, related_name="documents")
    title = models.CharField(max_length=200)
    file = models.FileField(upload_to="consultations/%Y/%m/")
    original_name = models.CharField(max_length=200)
    size = models.PositiveIntegerField()
    sha256 = models.CharField(max_length=64)
    uploaded_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["id"]

    def __str__(self) -> str:
        return self.title


class Participant(models.Model):
    """The name a citizen chose to be shown by, the first time they posted: never their legal
    name, national ID or e-mail."""

    user = models.OneToOneField(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="consultation_participant"
    )
    display_name = models.CharField(max_length=DISPLAY_NAME_MAX)
    created_at = models.DateTimeField(default=timezone.now)

    def __str__(self) -> str:
        return self.display_name


class Moderation(models.Model):
    """One moderator's decision to hide an idea or a comment, kept for the record."""

    class Reason(models.TextChoices):
        PERSONAL_DATA = "personal_data", _("Personal data")
        OFFENSIVE = "offensive", _("Offensive")
        OFF_TOPIC = "off_topic", _("Off topic")
        SPAM = "spam", _("Spam")
        DUPLICATE = "duplicate", _("Duplicate")

    consultation = models.ForeignKey(Consultation, on_delete=models.CASCADE, related_name="moderations")
    officer = models.ForeignKey("agencies.Officer", on_delete=models.PROTECT, related_name="+")
    reason = models.CharField(max_length=20, choices=Reason.choices)
    note = models.TextField(max_length=NOTE_MAX, blank=True)
    at = models.DateTimeField(default=timezone.now)
    idea = models.ForeignKey(
        "Idea", null=True, blank=True, on_delete=models.CASCADE, related_name="moderations"
    )
    comment = models.ForeignKey(
        "Comment", null=True, blank=True, on_delete=models.CASCADE, related_name="moderations"
    )

    class Meta:
        ordering = ["-at", "-id"]
        constraints = [
            models.CheckConstraint(
                condition=models.Q(idea__isnull=False, comment__isnull=True)
                | models.Q(idea__isnull=True, comment__isnull=False),
                name="consultations_moderation_one_subject",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.get_reason_display()} @ {self.at:%Y-%m-%d %H:%M}"


class Idea(models.Model):
    class Status(models.TextChoices):
        UNDER_CONSIDERATION = "under_consideration", _("Under consideration")
        ACCEPTED = "accepted", _("Accepted")
        REJECTED = "rejected", _("Rejected")
        IMPLEMENTED = "implemented", _("Implemented")

    consultation = models.ForeignKey(Consultation, on_delete=models.CASCADE, related_name="ideas")
    author = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    participant = models.ForeignKey(Participant, on_delete=models.PROTECT, related_name="ideas")
    title = models.CharField(max_length=IDEA_TITLE_MAX)
    body = models.TextField(max_length=IDEA_BODY_MAX)
    status = models.CharField(max_length=30, choices=Status.choices, default=Status.UNDER_CONSIDERATION)
    status_note = models.TextField(max_length=NOTE_MAX, blank=True)
    status_changed_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(default=timezone.now)
    hidden_by = models.OneToOneField(
        Moderation, null=True, blank=True, on_delete=models.SET_NULL, related_name="hidden_idea"
    )

    class Meta:
        ordering = ["created_at", "id"]

    def __str__(self) -> str:
        return self.title


class Vote(models.Model):
    idea = models.ForeignKey(Idea, on_delete=models.CASCADE, related_name="votes")
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+")
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["idea", "user"], name="consultations_one_vote_per_person"),
        ]

    def __str__(self) -> str:
        return f"vote {self.user_id} -> {self.idea_id}"


class Comment(models.Model):
    idea = models.ForeignKey(Idea, on_delete=models.CASCADE, related_name="comments")
    author = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    participant = models.ForeignKey(Participant, on_delete=models.PROTECT, related_name="comments")
    body = models.TextField(max_length=COMMENT_MAX)
    created_at = models.DateTimeField(default=timezone.now)
    hidden_by = models.OneToOneField(
        Moderation, null=True, blank=True, on_delete=models.SET_NULL, related_name="hidden_comment"
    )

    class Meta:
        ordering = ["created_at", "id"]

    def __str__(self) -> str:
        return self.body[:60]


class Follow(models.Model):
    """A citizen following an idea: told when its status changes or the agency responds."""

    idea = models.ForeignKey(Idea, on_delete=models.CASCADE, related_name="follows")
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+")
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["idea", "user"], name="consultations_one_follow_per_person"),
        ]

    def __str__(self) -> str:
        return f"follow {self.user_id} -> {self.idea_id}"
