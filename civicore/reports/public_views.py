"""The public map of problem reports, its GeoJSON feed and published photos (anonymous).

Everything here is public, so it shows only what anyone may see: the reference, category,
status, dates, the place rounded to 4 decimals (about 11 m) and photos an officer published. No
description (the citizen's own words may hold personal data), no contact details, no reporter.
"""

from __future__ import annotations

import json
from typing import Any

from django.http import FileResponse, Http404, HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import render
from django.urls import reverse
from django.utils.translation import gettext as _
from django.views.decorators.http import require_GET

from civicore.open311 import selectors
from civicore.reports import maps
from civicore.reports.models import Report, ReportCategory


def _category_filter(request: HttpRequest) -> tuple[str, ReportCategory | None, bool]:
    """The ?category= code, its category, and whether the code is unknown."""
    code = str(request.GET.get("category") or "").strip()[:60]
    if not code:
        return "", None, False
    category = selectors.service_by_code(code)
    return code, category, category is None


def _status_label(report: Report) -> str:
    return str(report.get_status_display())


def _feature(report: Report) -> dict[str, Any]:
    photos = getattr(report, "published_photos", [])
    return {
        "type": "Feature",
        "geometry": {
            "type": "Point",
            "coordinates": [selectors.rounded(report.longitude), selectors.rounded(report.latitude)],
        },
        "properties": {
            "reference": report.reference,
            "category": report.category.code if report.category else None,
            "category_name": report.category.name if report.category else _("Not yet routed"),
            "status": report.status,
            "status_label": _status_label(report),
            "open": report.is_open,
            "created": report.created_at.isoformat(timespec="seconds"),
            "updated": report.updated_at.isoformat(timespec="seconds"),
            "photos": [
                reverse("reports_public:photo", kwargs={"public_id": photo.public_id}) for photo in photos
            ],
        },
    }


@require_GET
def map_feed(request: HttpRequest) -> HttpResponse:
    code, category, unknown = _category_filter(request)
    if unknown:
        return JsonResponse(
            {
                "code": "unknown_category",
                "message": _("There is no category with this code."),
                "details": {"category": code},
            },
            status=400,
        )
    reports = selectors.map_reports(category_code=category.code if category else None)
    body = {"type": "FeatureCollection", "features": [_feature(report) for report in reports]}
    response = HttpResponse(
        json.dumps(body, ensure_ascii=False, separators=(",", ":")),
        content_type="application/geo+json; charset=utf-8",
    )
    response["Cache-Control"] = "public, max-age=60"
    response["Vary"] = "Accept-Language"
    return response


@require_GET
def public_map(request: HttpRequest) -> HttpResponse:
    code, category, unknown = _category_filter(request)
    reports = selectors.map_reports(category_code=category.code if category else None)
    feed = reverse("reports_public:map_feed")
    if category is not None:
        feed += f"?category={category.code}"
    context = {
        "categories": selectors.active_services(),
        "selected": category,
        "unknown_category": code if unknown else "",
        "reports": [] if unknown else reports,
        "feed_url": feed,
        "map": maps.map_config(),
        "fixed_days": selectors.MAP_FIXED_DAYS,
    }
    response = render(request, "reports/public/map.html", context, status=400 if unknown else 200)
    return maps.allow_map(response)


@require_GET
def photo(request: HttpRequest, public_id: Any) -> FileResponse:
    found = selectors.published_photo(public_id)
    if found is None:
        raise Http404(_("Photo not found."))
    try:
        handle = found.file.open("rb")
    except OSError as exc:
        raise Http404(_("Photo not found.")) from exc
    response = FileResponse(handle, content_type=found.content_type or "image/jpeg")
    # Short: taking a photo off the map takes effect within minutes, even in shared caches.
    response["Cache-Control"] = "public, max-age=300"
    # Published photos may be shown by 311 apps on other sites (Open311 media_url).
    response["Cross-Origin-Resource-Policy"] = "cross-origin"
    response["Content-Disposition"] = "inline"
    return response
