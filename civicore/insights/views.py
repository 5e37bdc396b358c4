"""Scorecard pages: /performance/ (the platform), /performance/<service code>/ (one service), both
public, and /office/performance/ for officers holding performance.view (their agency, a service
filter, a month selector, and the offline volumes they report). Thin: selectors read, one service
writes; every scorecard also downloads as CSV (?format=csv)."""

from __future__ import annotations

import csv
import io
from typing import Any

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied as DjangoPermissionDenied
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils.translation import gettext as _
from django.views.decorators.http import require_GET, require_POST

from civicore.agencies import permissions
from civicore.agencies.models import Officer
from civicore.core.errors import ApplicationError, NotFound, PermissionDenied
from civicore.insights import charts, selectors, services
from civicore.insights.selectors import Scope


def _month(request: HttpRequest) -> tuple[Any, str]:
    """The month asked for, or the current one with the reason the one asked for was refused."""
    try:
        return selectors.parse_month(str(request.GET.get("month", ""))[:20]), ""
    except ApplicationError as exc:
        return selectors.parse_month(""), exc.message


def _csv(card: selectors.Scorecard) -> HttpResponse:
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(["scope", "code", "period", "figure", "numerator", "denominator", "percent", "target"])
    period_month, period_year = f"{card.month:%Y-%m}", f"{card.months[0]:%Y-%m}..{card.month:%Y-%m}"
    catalogue = list(vars(card.catalogue).values()) if card.catalogue else []
    for period, figures in ((period_month, card.figures), (period_year, card.year_figures)):
        for figure in [*figures, *catalogue]:
            writer.writerow(
                [card.scope.kind, card.scope.code, period, figure.key, figure.numerator, figure.denominator,
                 "" if figure.percent is None else figure.percent, figure.target]
            )  # fmt: skip
        median = card.median_days if period == period_month else card.year_median_days
        writer.writerow(
            [card.scope.kind, card.scope.code, period, "median_working_days", "", "", "", median or ""]
        )
    for step, _label, count in card.funnel:
        writer.writerow([card.scope.kind, card.scope.code, period_month, f"step_{step}", count, "", "", ""])
    for index, band in enumerate(card.backlog):
        writer.writerow(
            [card.scope.kind, card.scope.code, "now", f"open_cases_band_{index}", band.count, "", "", ""]
        )
    code = f"-{card.scope.code}" if card.scope.code else ""
    name = f"scorecard-{card.scope.kind}{code}-{card.month:%Y-%m}.csv"
    response = HttpResponse(
        ("\ufeff" + buffer.getvalue()).encode("utf-8"), content_type="text/csv; charset=utf-8"
    )
    response["Content-Disposition"] = f'attachment; filename="{name}"'
    return response


def _context(card: selectors.Scorecard) -> dict[str, Any]:
    submitted = card.series("submitted")
    on_time = card.percent_series("closed_on_time", "decided")
    return {
        "card": card,
        "paired": list(zip(card.figures, card.year_figures, strict=True)),
        "catalogue": list(vars(card.catalogue).values()) if card.catalogue else [],
        "funnel_base": card.funnel[0][2] if card.funnel else 0,
        "charts": [
            {
                "id": "chart-submitted",
                "title": _("Applications submitted online, per month"),
                "svg": charts.month_bars(
                    chart_id="chart-submitted",
                    title=_("Applications submitted online, per month"),
                    bars=[(m, float(v)) for m, v in submitted],
                ),
                "rows": [(m, v) for m, v in submitted],
                "column": _("Applications submitted"),
            },
            {
                "id": "chart-on-time",
                "title": _("Cases decided within the service standard, per month (%)"),
                "svg": charts.month_bars(
                    chart_id="chart-on-time",
                    title=_("Cases decided within the service standard, per month (%)"),
                    bars=on_time,
                    percent=True,
                ),
                "rows": [(m, "—" if v is None else f"{v:g}%") for m, v in on_time],
                "column": _("Decided on time"),
            },
        ],
    }


def _render(request: HttpRequest, template: str, scope: Scope, extra: dict[str, Any]) -> HttpResponse:
    month, month_error = _month(request)
    card = selectors.scorecard(scope, month)
    if request.GET.get("format") == "csv":
        return _csv(card)
    return render(
        request,
        template,
        {**_context(card), "month_value": f"{month:%Y-%m}", "month_error": month_error, **extra},
    )


@require_GET
def platform_page(request: HttpRequest) -> HttpResponse:
    return _render(request, "insights/public.html", Scope(selectors.PLATFORM), {})


@require_GET
def service_page(request: HttpRequest, code: str) -> HttpResponse:
    try:
        scope = selectors.service_scope(code)
    except NotFound as exc:
        raise Http404(exc.message) from exc
    return _render(request, "insights/public.html", scope, {})


def _officer(request: HttpRequest) -> Officer:
    try:
        return permissions.officer_with_perm(request.user, permissions.PERFORMANCE_VIEW)
    except PermissionDenied as exc:
        raise DjangoPermissionDenied(
            _("Only officers who may see their agency's performance can use this page.")
        ) from exc


@login_required
@require_GET
def office_page(request: HttpRequest) -> HttpResponse:
    officer = _officer(request)
    agency = officer.agency
    code = str(request.GET.get("service", ""))[:80]
    scope = Scope(selectors.AGENCY, agency=agency)
    service_error = ""
    if code:
        try:
            scope = selectors.service_scope(code, agency=agency)
        except NotFound:
            service_error = _("Choose one of your agency's services.")
    response = _render(
        request,
        "insights/office.html",
        scope,
        {
            "officer": officer,
            "services": selectors.agency_services(agency),
            "service_value": code if not service_error else "",
            "service_error": service_error,
        },
    )
    response["Cache-Control"] = "private, no-store"
    return response


@login_required
@require_POST
def office_offline(request: HttpRequest) -> HttpResponse:
    officer = _officer(request)
    code = str(request.POST.get("service", ""))[:80]
    raw_count = str(request.POST.get("count", "")).strip()[:12]
    try:
        scope = selectors.service_scope(code, agency=officer.agency)
        month = selectors.parse_month(str(request.POST.get("month", ""))[:20] or "-")
        count: Any = int(raw_count) if raw_count.lstrip("-").isdigit() else raw_count
        assert scope.service is not None  # noqa: S101 - a service scope names its service
        services.offline_volume_set(officer=officer, service=scope.service, month=month, count=count)
    except ApplicationError as exc:
        messages.error(request, exc.message)
    else:
        messages.success(
            request,
            _("Recorded %(count)s offline transactions for %(service)s in %(month)s.")
            % {"count": count, "service": scope.name, "month": f"{month:%m/%Y}"},
        )
    return redirect(reverse("insights:office"))
