"""Citizens' ratings of what the agencies did for them.

One Rating per transaction (a decided application, a resolved problem report, a paid fee), given by
the citizen it belongs to on the five-point satisfaction scale, with an optional comment. The
comment is kept encrypted as written, for the agency, and as a screened copy with personal data
replaced by placeholders (civicore.feedback.screening), for everyone else.
"""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.db.models import Q
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from civicore.core.crypto import EncryptedTextField


class Rating(models.Model):
    class Kind(models.TextChoices):
        APPLICATION = "application", _("Application")
        REPORT = "report", _("Problem report")
        PAYMENT = "payment", _("Fee payment")

    class Score(models.IntegerChoices):
        VERY_SATISFIED = 5, _("Very satisfied")
        SATISFIED = 4, _("Satisfied")
        NEUTRAL = 3, _("Neither satisfied nor dissatisfied")
        DISSATISFIED = 2, _("Dissatisfied")
        VERY_DISSATISFIED = 1, _("Very dissatisfied")

    kind = models.CharField(max_length=12, choices=Kind.choices)
    # The public id of the application, report or payment rated.
    subject = models.UUIDField()
    # Who rated; kept (and cleared if the account goes) only to show them their own rating.
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+", db_index=False
    )
    # Indexed by (agency, created_at) below, which serves lookups by agency alone too.
    agency = models.ForeignKey("agencies.Agency", on_delete=models.PROTECT, related_name="+", db_index=False)
    # The e-service of an application or a payment; None for a problem report.
    service = models.ForeignKey(
        "catalogue.Service", null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    score = models.PositiveSmallIntegerField(choices=Score.choices)
    comment = EncryptedTextField(blank=True)
    comment_screened = models.TextField(blank=True)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["-created_at", "-id"]
        constraints = [
            # One rating per transaction: two requests racing each other cannot both be saved.
            models.UniqueConstraint(fields=["kind", "subject"], name="feedback_rating_once"),
            models.CheckConstraint(condition=Q(score__gte=1) & Q(score__lte=5), name="feedback_score_1_5"),
        ]
        indexes = [models.Index(fields=["agency", "created_at"], name="feedback_agency_created")]

    def __str__(self) -> str:
        return f"{self.kind} {self.subject}: {self.score}"
