"""Service performance, kept as running tallies.

Every figure on a scorecard is a sum of tallies: one row per month, agency, service (0 for an
agency's events that belong to no service) and metric, incremented in the transaction of the event
it counts. A scorecard therefore reads a few hundred rows however many applications there are.
"""

from __future__ import annotations

from django.db import models
from django.utils.translation import gettext_lazy as _


class Tally(models.Model):
    month = models.DateField(help_text=_("The first day of the month counted"))
    agency = models.ForeignKey("agencies.Agency", on_delete=models.CASCADE, related_name="+")
    # The service's id, or 0 for the agency's events that belong to no service (a report's rating).
    # A plain integer rather than a nullable key, so that the unique constraint holds for 0 too.
    service_key = models.BigIntegerField(default=0)
    metric = models.CharField(max_length=60)
    value = models.BigIntegerField(default=0)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["month", "agency", "service_key", "metric"], name="insights_tally_key"
            )
        ]
        indexes = [models.Index(fields=["agency", "month"], name="insights_tally_agency_month")]

    def __str__(self) -> str:
        return f"{self.metric} {self.month:%Y-%m} agency {self.agency_id}/{self.service_key}: {self.value}"
