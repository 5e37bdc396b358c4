"""Open311 reads: the services (active report categories) and the service requests (reports).

What a GET answer may show is decided here, once: no contact details ever, coordinates rounded
to 4 decimals (about 11 m, as on the public map), only published photos, and the citizen's own
words only to the client that filed them.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from django.db.models import Prefetch, QuerySet
from django.utils import timezone

from civicore.reports.models import Report, ReportCategory, ReportPhoto
from civicore.reports.selectors import public_reports, reports_for_open311

MAX_REQUESTS = 1000
COORDINATE_DECIMALS = 4
RATE_WINDOW = timedelta(hours=1)  # as civicore.reports.services.check_rate counts

OPEN_STATUSES = tuple(str(status) for status in Report.OPEN_STATUSES)


def active_services() -> QuerySet[ReportCategory]:
    return ReportCategory.objects.filter(active=True).select_related("agency").order_by("code")


def service_by_code(code: str) -> ReportCategory | None:
    return active_services().filter(code=code).first()


def open311_status(report: Report) -> str:
    return "open" if report.status in OPEN_STATUSES else "closed"


def _published_photos() -> Prefetch[Any]:
    return Prefetch(
        "photos",
        queryset=ReportPhoto.objects.filter(published=True).order_by("uploaded_at", "id"),
        to_attr="published_photos",
    )


def _base() -> QuerySet[Report]:
    return _with_public_parts(Report.objects.all())


@dataclass(frozen=True)
class RequestQuery:
    """GET requests, already parsed and checked by the view."""

    references: Sequence[str] = ()
    service_codes: Sequence[str] = ()
    start: datetime | None = None
    end: datetime | None = None
    statuses: Sequence[str] = ()  # "open", "closed"


def _with_public_parts(reports: QuerySet[Report]) -> QuerySet[Report]:
    return reports.select_related("category", "agency", "merged_into", "open311_submission").prefetch_related(
        _published_photos()
    )


def service_requests(query: RequestQuery) -> list[Report]:
    """Newest first, at most MAX_REQUESTS. service_request_id overrides every other filter, as
    the specification says, and finds merged reports too (closed, naming the report they were
    merged into), so a client can follow what it filed; lists leave merged duplicates out."""
    if query.references:
        return list(_base().filter(reference__in=list(query.references)).order_by("-created_at", "-id"))
    reports = reports_for_open311(
        service_codes=list(query.service_codes) or None,
        statuses=list(query.statuses) or None,
        start=query.start,
        end=query.end,
    )
    return list(_with_public_parts(reports)[:MAX_REQUESTS])


def service_request(reference: str) -> Report | None:
    return _base().filter(reference=reference).first()


def rounded(value: float | None) -> float | None:
    return None if value is None else round(float(value), COORDINATE_DECIMALS)


def retry_after_seconds(client_key: str) -> int:
    """When the oldest report of the client's last hour leaves the rate-limit window."""
    now = timezone.now()
    oldest = (
        Report.objects.filter(client_key=client_key, created_at__gte=now - RATE_WINDOW)
        .order_by("created_at")
        .values_list("created_at", flat=True)
        .first()
    )
    if oldest is None:
        return 1
    return max(1, math.ceil((oldest + RATE_WINDOW - now).total_seconds()))


# --- the public map (civicore.reports.public_views) ------------------------------------------
# Kept here until civicore.reports.selectors has them: the public map shares Open311's rules.

MAP_FIXED_DAYS = 30
MAP_MAX_REPORTS = 2000


def map_reports(*, category_code: str | None = None) -> list[Report]:
    """Open reports and those fixed in the last 30 days, newest first, without merged
    duplicates (civicore.reports.selectors.public_reports leaves them out), with their
    published photos only."""
    from django.db.models import Q

    since = timezone.now() - timedelta(days=MAP_FIXED_DAYS)
    reports = public_reports(category_code=category_code).filter(
        Q(status__in=Report.OPEN_STATUSES) | Q(status=Report.Status.RESOLVED, resolved_at__gte=since)
    )
    return list(reports.prefetch_related(_published_photos())[:MAP_MAX_REPORTS])


def published_photo(public_id: Any) -> ReportPhoto | None:
    """A photo an officer has published; any other (unpublished, unknown) is None."""
    return ReportPhoto.objects.filter(public_id=public_id, published=True).first()
