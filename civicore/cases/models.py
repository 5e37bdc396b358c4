"""Cases: the back-office handling of a submitted application by its agency.

A case moves through the states its service's workflow allows; each move is a CaseEvent. The
due date counts the service's SLA in working days and stops while the citizen is asked for
more information.
"""

from __future__ import annotations

from django.db import models
from django.utils import timezone
from django.utils.translation import gettext_lazy as _


class Case(models.Model):
    class State(models.TextChoices):
        SUBMITTED = "submitted", _("Submitted")
        IN_REVIEW = "in_review", _("In review")
        INFO_REQUESTED = "info_requested", _("More information requested")
        APPROVED = "approved", _("Approved")
        REJECTED = "rejected", _("Rejected")

    CLOSED_STATES = (State.APPROVED, State.REJECTED)

    application = models.OneToOneField(
        "applications.Application", on_delete=models.PROTECT, related_name="case"
    )
    agency = models.ForeignKey("agencies.Agency", on_delete=models.PROTECT, related_name="cases")
    state = models.CharField(max_length=20, choices=State.choices, default=State.SUBMITTED)
    assignee = models.ForeignKey(
        "agencies.Officer", null=True, blank=True, on_delete=models.SET_NULL, related_name="cases"
    )
    opened_at = models.DateTimeField(default=timezone.now)
    due_at = models.DateTimeField()
    paused_at = models.DateTimeField(null=True, blank=True)
    closed_at = models.DateTimeField(null=True, blank=True)
    decision_reason = models.TextField(blank=True)

    class Meta:
        indexes = [
            models.Index(fields=["agency", "state", "due_at"], name="case_inbox"),
            # The backlog by age (civicore.insights) reads open cases only: a small index of them,
            # however many decided cases pile up.
            models.Index(
                fields=["agency", "opened_at"],
                name="case_open_by_age",
                condition=~models.Q(state__in=["approved", "rejected"]),
            ),
        ]

    def __str__(self) -> str:
        return f"case {self.pk} ({self.state})"

    @property
    def is_closed(self) -> bool:
        return self.state in self.CLOSED_STATES


class CaseEvent(models.Model):
    class Kind(models.TextChoices):
        OPENED = "opened", _("Opened")
        CLAIMED = "claimed", _("Claimed")
        INFO_REQUESTED = "info_requested", _("More information requested")
        INFO_PROVIDED = "info_provided", _("Information provided")
        APPROVED = "approved", _("Approved")
        REJECTED = "rejected", _("Rejected")

    case = models.ForeignKey(Case, on_delete=models.CASCADE, related_name="events")
    kind = models.CharField(max_length=30, choices=Kind.choices)
    actor = models.ForeignKey("identity.User", null=True, on_delete=models.PROTECT, related_name="+")
    message = models.TextField(blank=True)
    at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["at", "id"]

    def __str__(self) -> str:
        return f"{self.kind} on case {self.case_id}"
