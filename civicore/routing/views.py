"""Pages of AI routing: the public list of models and their cards, and the back-office pages where
AI model stewards compare a candidate with the active model and activate it."""

from __future__ import annotations

import datetime as dt
from typing import Any

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied as DjangoPermissionDenied
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.utils.translation import gettext as _
from django.views.decorators.http import require_http_methods

from civicore.agencies import permissions
from civicore.agencies.models import Officer
from civicore.core.errors import ApplicationError, PermissionDenied
from civicore.routing import selectors, services
from civicore.routing.models import RoutingModel


def _category_names(labels: list[str]) -> dict[str, str]:
    from civicore.reports.models import ReportCategory

    return {c.code: c.name for c in ReportCategory.objects.filter(code__in=labels)}


def _limit_text(limit: dict[str, Any], threshold_target: float | None) -> str:
    labels = ", ".join(limit.get("labels", []))
    texts = {
        "training_data_only": _(
            "Predicts only the categories it was trained on; a report about anything else gets the closest "
            "category, usually with low confidence, and goes to triage."
        ),
        "refit_calibration": _(
            "The calibration and the threshold were measured on the held-out rows before the final training "
            "on all rows; the final model is assumed to be at least as good."
        ),
        "few_examples": _("Fewer than 20 training rows for: %(labels)s.") % {"labels": labels},
        "weak_classes": _("F1 below 0.5 on the held-out rows for: %(labels)s.") % {"labels": labels},
        "no_auto_routing": _(
            "No confidence reached the target precision on the held-out rows: every report goes to triage."
        ),
    }
    return texts.get(str(limit.get("code")), str(limit.get("text", "")))


def _per_class(metrics: dict[str, Any], names: dict[str, str]) -> list[dict[str, Any]]:
    return [
        {"code": code, "name": names.get(code, code), **values}
        for code, values in sorted(metrics.get("per_class", {}).items())
    ]


def _card_context(row: RoutingModel) -> dict[str, Any]:
    manifest = row.manifest
    data = manifest.get("training_data", {})
    validation = manifest.get("validation", {})
    metrics = validation.get("metrics", {})
    names = _category_names(row.labels)
    time_range = data.get("time_range") or None
    return {
        "model": row,
        "data": data,
        "time_range": [dt.datetime.fromisoformat(t) for t in time_range] if time_range else None,
        "label_counts": [
            {"code": code, "name": names.get(code, code), "count": count}
            for code, count in sorted(data.get("label_counts", {}).items())
        ],
        "validation": validation,
        "metrics": metrics,
        "per_class": _per_class(metrics, names),
        "limits": [
            _limit_text(limit, manifest.get("precision_target")) for limit in manifest.get("known_limits", [])
        ],
        "files": sorted(manifest.get("files", {}).items()),
    }


@require_http_methods(["GET"])
def model_list(request: HttpRequest) -> HttpResponse:
    return render(request, "routing/model_list.html", {"models": list(selectors.public_models())})


@require_http_methods(["GET"])
def model_card(request: HttpRequest, version: str) -> HttpResponse:
    row = selectors.model_by_version(version)
    if row is None:
        raise Http404
    return render(request, "routing/model_card.html", _card_context(row))


# --- back office -------------------------------------------------------------------------------


def _steward(request: HttpRequest) -> Officer:
    try:
        return permissions.officer_with_perm(request.user, permissions.AI_MANAGE)
    except PermissionDenied as exc:
        raise DjangoPermissionDenied(_("Only AI model stewards may do this.")) from exc


@login_required
@require_http_methods(["GET"])
def office_list(request: HttpRequest) -> HttpResponse:
    officer = _steward(request)
    return render(
        request, "routing/office_list.html", {"officer": officer, "models": list(selectors.office_models())}
    )


def _office_row(model_id: int) -> RoutingModel:
    row = selectors.office_models().filter(pk=model_id).first()
    if row is None:
        raise Http404
    return row


@login_required
@require_http_methods(["GET"])
def office_detail(request: HttpRequest, model_id: int) -> HttpResponse:
    officer = _steward(request)
    row = _office_row(model_id)
    context = _card_context(row)
    context.update(officer=officer, comparison=selectors.comparison(row))
    return render(request, "routing/office_detail.html", context)


@login_required
@require_http_methods(["POST"])
def office_activate(request: HttpRequest, model_id: int) -> HttpResponse:
    _steward(request)
    row = _office_row(model_id)
    try:
        services.model_activate(row, request.user)
    except PermissionDenied as exc:
        raise DjangoPermissionDenied(exc.message) from exc
    except ApplicationError as exc:
        messages.error(request, exc.message)
        return redirect("routing:office_detail", model_id=row.pk)
    messages.success(request, _("Model %(version)s is now active.") % {"version": row.version})
    return redirect("routing:office_list")
