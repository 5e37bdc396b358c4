"""Reads for problem reports. An officer's read of a report's personal data (contact, text,
photos) goes through `report_for_officer` / `photo_for_officer`, which audit it."""

from __future__ import annotations

import math
from datetime import datetime, timedelta
from typing import Any

from django.db.models import Count, QuerySet
from django.utils import timezone
from django.utils.translation import gettext as _

from civicore.agencies import permissions
from civicore.agencies.models import Officer
from civicore.audit import services as audit
from civicore.core.errors import NotFound, PermissionDenied
from civicore.reports.models import Report, ReportCategory, ReportEvent, ReportPhoto
from civicore.reports.references import is_valid, normalise

EARTH_RADIUS_M = 6_371_008.8
METRES_PER_DEGREE = 111_320.0

INBOX_SORTS = {
    "due": ("due_at", "id"),
    "-created": ("-created_at", "-id"),
    "created": ("created_at", "id"),
}


def active_categories() -> QuerySet[ReportCategory]:
    return ReportCategory.objects.filter(active=True).select_related("agency").order_by("code")


def unknown_category_codes(labels: list[str]) -> list[str]:
    """The labels that are not the code of an active category (a routing model may use only known ones)."""
    known = set(
        ReportCategory.objects.filter(active=True, code__in=list(labels)).values_list("code", flat=True)
    )
    return sorted({label for label in labels if label not in known})


def report_by_reference(ref: str) -> Report | None:
    reference = normalise(ref)
    if not is_valid(reference):
        return None
    return (
        Report.objects.select_related("category", "agency", "reporter", "merged_into", "assigned_team")
        .filter(reference=reference)
        .first()
    )


def public_events(report: Report) -> QuerySet[ReportEvent]:
    return report.events.filter(public=True).order_by("at", "id")


def reports_for_user(user: Any) -> QuerySet[Report]:
    if not getattr(user, "is_authenticated", False):
        return Report.objects.none()
    return (
        Report.objects.filter(reporter=user)
        .select_related("category", "agency")
        .order_by("-created_at", "-id")
    )


def supported_by_user(user: Any) -> QuerySet[Report]:
    if not getattr(user, "is_authenticated", False):
        return Report.objects.none()
    return (
        Report.objects.filter(supporters__user=user)
        .select_related("category", "agency")
        .order_by("-created_at", "-id")
    )


def _distance_m(lat1: float, lon1: float, lat2: float, lon2: float) -> float:
    """Great-circle distance (haversine) in metres."""
    phi1, phi2 = math.radians(lat1), math.radians(lat2)
    dphi = phi2 - phi1
    dlambda = math.radians(lon2 - lon1)
    a = math.sin(dphi / 2) ** 2 + math.cos(phi1) * math.cos(phi2) * math.sin(dlambda / 2) ** 2
    return 2 * EARTH_RADIUS_M * math.asin(min(1.0, math.sqrt(a)))


def nearby_open_reports(
    latitude: float,
    longitude: float,
    category_code: str | None = None,
    metres: float = 50,
    days: int = 14,
    *,
    now: datetime | None = None,
    limit: int = 10,
) -> list[Report]:
    """Open reports filed in the last `days` days within `metres` of the point, nearest first;
    each carries `distance_m`. A bounding box in SQL (indexed) narrows the candidates, the exact
    distance is computed here, so it works the same on SQLite and PostgreSQL."""
    lat, lon = float(latitude), float(longitude)
    dlat = metres / METRES_PER_DEGREE
    dlon = metres / (METRES_PER_DEGREE * max(math.cos(math.radians(lat)), 0.01))
    since = (now or timezone.now()) - timedelta(days=days)
    qs = Report.objects.filter(
        status__in=Report.OPEN_STATUSES,
        created_at__gte=since,
        latitude__range=(lat - dlat, lat + dlat),
        longitude__range=(lon - dlon, lon + dlon),
    ).select_related("category")
    if category_code:
        qs = qs.filter(category__code=category_code)
    found: list[Report] = []
    for report in qs.annotate(supporter_count=Count("supporters"))[:200]:
        distance = _distance_m(lat, lon, report.latitude, report.longitude)
        if distance <= metres:
            report.distance_m = round(distance)  # type: ignore[attr-defined]
            found.append(report)
    found.sort(key=lambda each: each.distance_m)  # type: ignore[attr-defined]
    return found[:limit]


def public_reports(
    *,
    category_code: str | None = None,
    status: str | None = None,
    bbox: tuple[float, float, float, float] | None = None,
    since: datetime | None = None,
) -> QuerySet[Report]:
    """Reports for the public map and feeds: no merged duplicates; callers show no personal data."""
    qs = Report.objects.exclude(status=Report.Status.MERGED).select_related("category", "agency")
    if category_code:
        qs = qs.filter(category__code=category_code)
    if status == "open":
        qs = qs.filter(status__in=Report.OPEN_STATUSES)
    elif status in Report.Status.values:
        qs = qs.filter(status=status)
    if bbox is not None:
        south, west, north, east = bbox
        qs = qs.filter(latitude__range=(south, north), longitude__range=(west, east))
    if since is not None:
        qs = qs.filter(created_at__gte=since)
    return qs.order_by("-created_at", "-id")


def reports_for_open311(
    *,
    service_codes: list[str] | None = None,
    statuses: list[str] | None = None,
    start: datetime | None = None,
    end: datetime | None = None,
    references: list[str] | None = None,
) -> QuerySet[Report]:
    """Reports as Open311 lists them ("open" = triage/open/in progress, "closed" = resolved)."""
    qs = Report.objects.exclude(status=Report.Status.MERGED).select_related("category", "agency")
    if references is not None:
        qs = qs.filter(reference__in=[normalise(ref) for ref in references])
    if service_codes:
        qs = qs.filter(category__code__in=service_codes)
    if statuses:
        wanted: list[str] = []
        for status in statuses:
            if status == "open":
                wanted.extend(Report.OPEN_STATUSES)
            elif status == "closed":
                wanted.append(Report.Status.RESOLVED)
        qs = qs.filter(status__in=wanted)
    if start is not None:
        qs = qs.filter(created_at__gte=start)
    if end is not None:
        qs = qs.filter(created_at__lte=end)
    return qs.order_by("-created_at", "-id")


# --- officers ------------------------------------------------------------------------------------


def _handler(officer: Officer) -> Officer:
    return permissions.require(
        officer, permissions.REPORT_HANDLE, message=_("Your roles do not include working on problem reports.")
    )


def inbox(
    *, officer: Officer, status: str = "active", category: str = "", overdue: bool = False
) -> QuerySet[Report]:
    _handler(officer)
    qs = Report.objects.filter(agency_id=officer.agency_id).select_related("category", "assigned_team")
    if status == "active":
        qs = qs.filter(status__in=(Report.Status.OPEN, Report.Status.IN_PROGRESS))
    elif status in Report.Status.values:
        qs = qs.filter(status=status)
    if category:
        qs = qs.filter(category__code=category)
    if overdue:
        qs = qs.filter(due_at__lt=timezone.now(), status__in=Report.OPEN_STATUSES)
    return qs


def triage_queue(*, officer: Officer) -> QuerySet[Report]:
    permissions.require(
        officer, permissions.REPORT_TRIAGE, message=_("Your roles do not include routing problem reports.")
    )
    return (
        Report.objects.filter(status=Report.Status.TRIAGE)
        .select_related("category")
        .order_by("created_at", "id")
    )


def may_view(officer: Officer | None, report: Report) -> bool:
    if officer is None:
        return False
    if permissions.has_perm(officer, permissions.REPORT_TRIAGE):
        return True
    return (
        permissions.has_perm(officer, permissions.REPORT_HANDLE)
        and report.agency_id is not None
        and report.agency_id == officer.agency_id
    )


def report_for_officer(*, officer: Officer, report_id: Any, audit_read: bool = True) -> Report:
    """The report, if the officer's agency handles it (or the officer routes reports). Another
    agency's report is 403, a missing one 404. Reading it is audited as access to personal data."""
    _handler(officer)
    try:
        report_pk = int(report_id)
    except (TypeError, ValueError) as exc:
        raise NotFound(_("Report not found.")) from exc
    report = (
        Report.objects.select_related("category", "agency", "reporter", "merged_into", "assigned_team")
        .filter(pk=report_pk)
        .first()
    )
    if report is None:
        raise NotFound(_("Report not found."))
    if not may_view(officer, report):
        raise PermissionDenied(_("This report belongs to another agency."), code="other_agency")
    if audit_read:
        audit.record(
            actor=officer.user,
            action="report.view",
            subject=report,
            agency=officer.agency,
            details={"reference": report.reference, "fields": ["description", "contact", "photos"]},
        )
    return report


def photo_for_officer(*, officer: Officer, report: Report, photo_id: Any) -> ReportPhoto:
    photo = ReportPhoto.objects.filter(public_id=photo_id, report=report).first()
    if photo is None:
        raise NotFound(_("Photo not found."))
    audit.record(
        actor=officer.user,
        action="report.photo_view",
        subject=photo,
        agency=officer.agency,
        details={"report": report.pk, "reference": report.reference},
    )
    return photo


def photos_of(report: Report, *, published_only: bool = False) -> QuerySet[ReportPhoto]:
    qs = report.photos.all()
    if published_only:
        qs = qs.filter(published=True)
    return qs.order_by("uploaded_at", "id")


def suggestions(report: Report) -> list[dict[str, Any]]:
    """The model's top suggestions for a report in triage, with their categories."""
    codes = [str(pair[0]) for pair in report.routing_suggestions or [] if pair]
    categories = {
        c.code: c for c in ReportCategory.objects.filter(code__in=codes, active=True).select_related("agency")
    }
    rows = []
    for pair in report.routing_suggestions or []:
        if not pair:
            continue
        code, confidence = str(pair[0]), float(pair[1])
        if code in categories:
            rows.append(
                {"category": categories[code], "confidence": confidence, "percent": round(confidence * 100)}
            )
    return rows[:3]
