"""Open311 API clients and the link from a report to the client that filed it.

A client's key is shown once when it is created and only its SHA-256 is kept; the prefix names
it in lists and on the command line. Reports filed through Open311 keep who filed them here, in
this app, so the reports app does not depend on this one.
"""

from __future__ import annotations

from django.db import models
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

KEY_PREFIX = "o311_"
PREFIX_LENGTH = 12


class Open311Client(models.Model):
    """A 311 app or city tool allowed to file service requests (POST requests) with its API key."""

    name = models.CharField(_("name"), max_length=100)
    agency = models.ForeignKey(
        "agencies.Agency",
        verbose_name=_("agency"),
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="open311_clients",
    )
    key_hash = models.CharField(_("key hash (SHA-256)"), max_length=64, unique=True, editable=False)
    prefix = models.CharField(_("key prefix"), max_length=PREFIX_LENGTH, db_index=True, editable=False)
    active = models.BooleanField(_("active"), default=True)
    created_at = models.DateTimeField(_("created"), default=timezone.now, editable=False)
    last_used_at = models.DateTimeField(_("last used"), null=True, blank=True, editable=False)
    revoked_at = models.DateTimeField(_("revoked"), null=True, blank=True, editable=False)

    class Meta:
        ordering = ["name", "id"]
        verbose_name = _("Open311 client")
        verbose_name_plural = _("Open311 clients")

    def __str__(self) -> str:
        return f"{self.name} ({self.prefix}…)"


class Open311Submission(models.Model):
    """Which client filed a report through Open311. `media_url` is the client's link, kept as
    text for officers: the server never fetches it and never publishes it."""

    report = models.OneToOneField(
        "reports.Report", on_delete=models.CASCADE, related_name="open311_submission"
    )
    client = models.ForeignKey(Open311Client, on_delete=models.PROTECT, related_name="submissions")
    media_url = models.URLField(max_length=500, blank=True)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["-created_at", "-id"]

    def __str__(self) -> str:
        return f"open311 submission of {self.report_id}"
