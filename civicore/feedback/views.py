"""Pages of citizen feedback: the citizen's rating page for one transaction, and the office's page
of the agency's ratings (feedback.view). Thin: they parse input, call one service or selector,
render. The office page names nobody, so reading it is not an access to anyone's personal data."""

from __future__ import annotations

import datetime as dt
import re
import uuid
from typing import Any

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied as DjangoPermissionDenied
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils import formats
from django.utils.translation import gettext as _
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET, require_http_methods

from civicore.agencies import permissions
from civicore.agencies.models import Officer
from civicore.core.errors import ApplicationError, NotFound, PermissionDenied
from civicore.feedback import selectors, services
from civicore.feedback.models import Rating
from civicore.portal.pagination import paginate_page

PAGE_SIZE = 20
PARAM_MAX = 20
MONTH_TEXT = re.compile(r"([0-9]{4})-([0-9]{2})")
REPORTS_FILTER = "reports"  # the service filter's value for problem reports, which have no service


def score_options() -> list[tuple[int, str]]:
    """The five answers, most satisfied first, for the form's radio buttons."""
    return [(score.value, str(score.label)) for score in sorted(Rating.Score, reverse=True)]


def transaction_url(subject: selectors.Subject) -> str:
    """The citizen's own page of the transaction."""
    if subject.kind == Rating.Kind.APPLICATION:
        return reverse("applications:detail", kwargs={"public_id": subject.public_id})
    if subject.kind == Rating.Kind.REPORT:
        return reverse("reports:status", kwargs={"reference": subject.reference})
    return reverse("payments:detail", kwargs={"public_id": subject.public_id})


def _headings(kind: str, reference: str) -> dict[str, str]:
    titles = {
        Rating.Kind.APPLICATION: _("Rate how your application %(ref)s was handled"),
        Rating.Kind.REPORT: _("Rate how your report %(ref)s was handled"),
        Rating.Kind.PAYMENT: _("Rate paying your fee %(ref)s"),
    }
    back = {
        Rating.Kind.APPLICATION: _("Back to your application"),
        Rating.Kind.REPORT: _("Back to your report"),
        Rating.Kind.PAYMENT: _("Back to your payment"),
    }
    return {"title": titles[Rating.Kind(kind)] % {"ref": reference}, "back_label": back[Rating.Kind(kind)]}


@never_cache
@login_required
@require_http_methods(["GET", "POST"])
def rating_page(request: HttpRequest, kind: str, public_id: uuid.UUID) -> HttpResponse:
    """The rating form for one of the citizen's transactions (GET), the rating sent (POST), and
    once rated, the thanks and the rating given."""
    try:
        subject = selectors.subject_of(user=request.user, kind=kind, public_id=public_id)
    except NotFound as exc:
        raise Http404(exc.message) from exc
    rating = selectors.rating_of(kind=kind, public_id=subject.public_id)
    values = {"score": "", "comment": ""}
    errors: dict[str, str] = {}
    problem = ""
    status = 200
    if request.method == "POST" and rating is None:
        values = {
            "score": str(request.POST.get("score", ""))[:PARAM_MAX],
            "comment": str(request.POST.get("comment", ""))[: services.COMMENT_MAX * 4],
        }
        try:
            services.rating_submit(
                user=request.user,
                kind=kind,
                public_id=subject.public_id,
                score=values["score"],
                comment=values["comment"],
            )
        except services.InvalidRating as exc:
            details = exc.details if isinstance(exc.details, dict) else {}
            errors = {str(key): str(value) for key, value in details.items()}
            problem, status = exc.message, 422
        except ApplicationError as exc:
            problem, status = exc.message, exc.status
        else:
            messages.success(request, _("Thank you for your rating."))
            return redirect("feedback:rate", kind=kind, public_id=subject.public_id)
    elif request.method == "POST":
        problem, status = _("You have already rated this. Each one is rated once."), 409
    context = {
        "subject": subject,
        "rating": rating,
        "rating_label": Rating.Score(rating.score).label if rating else "",
        "can_rate": rating is None and subject.finished,
        "not_yet": services.not_rateable_message(kind),
        "options": score_options(),
        "values": values,
        "errors": errors,
        "problem": problem,
        "back_url": transaction_url(subject),
        "comment_max": services.COMMENT_MAX,
        **_headings(kind, subject.reference),
    }
    response = render(request, "feedback/rate.html", context, status=status)
    response["Cache-Control"] = "private, no-store"
    return response


# --- office --------------------------------------------------------------------------------------


def _officer(request: HttpRequest) -> Officer:
    try:
        return permissions.officer_with_perm(request.user, permissions.FEEDBACK_VIEW)
    except PermissionDenied as exc:
        raise DjangoPermissionDenied(
            _("Only officers who read citizens' feedback can use this page.")
        ) from exc


def _month(text: str) -> dt.date | None:
    match = MONTH_TEXT.fullmatch(text)
    if not match:
        return None
    year, month = int(match.group(1)), int(match.group(2))
    if not (2000 <= year <= 9998 and 1 <= month <= 12):
        return None
    return dt.date(year, month, 1)


def _filters(
    request: HttpRequest, service_ids: set[int]
) -> tuple[selectors.Filters, dict[str, str], dict[str, str]]:
    """The filters from the query string: what applies, what was chosen, what is wrong. A service
    that is not the agency's is refused as any other wrong choice is."""
    values = {name: str(request.GET.get(name, "")).strip()[:PARAM_MAX] for name in ("service", "month")}
    errors: dict[str, str] = {}
    service_id: int | None = None
    if values["service"] == REPORTS_FILTER:
        service_id = 0
    elif values["service"]:
        if values["service"].isdigit() and int(values["service"]) in service_ids:
            service_id = int(values["service"])
        else:
            errors["service"] = _("Choose a service from the list.")
    month = _month(values["month"]) if values["month"] else None
    if values["month"] and month is None:
        errors["month"] = _("Choose a month from the list.")
    return selectors.Filters(service_id=service_id, month=month), values, errors


def _figure_row(row: dict[str, Any], names: dict[int, str]) -> dict[str, Any]:
    count = row["count"]
    month = row["month"].date() if isinstance(row["month"], dt.datetime) else row["month"]
    return {
        "service": names.get(row["service_id"], _("Problem reports"))
        if row["service_id"]
        else _("Problem reports"),
        "month": month,
        "count": count,
        "very_satisfied": formats.number_format(100 * row["very_satisfied"] / count, 0) + "%"
        if count
        else "—",
        "average": formats.number_format(row["average"], 2) if row["average"] is not None else "—",
    }


@never_cache
@login_required
@require_GET
def office_feedback(request: HttpRequest) -> HttpResponse:
    officer = _officer(request)
    agency_services = list(selectors.services_rated(agency_id=officer.agency_id))
    names = {service.pk: service.name for service in agency_services}
    filters, values, errors = _filters(request, set(names))
    context: dict[str, Any] = paginate_page(
        request, selectors.comments(agency_id=officer.agency_id, filters=filters), PAGE_SIZE
    )
    months = selectors.months_rated(agency_id=officer.agency_id)
    if filters.month is not None and filters.month not in months:
        months = sorted([*months, filters.month], reverse=True)
    context.update(
        officer=officer,
        rows=[
            _figure_row(row, names) for row in selectors.figures(agency_id=officer.agency_id, filters=filters)
        ],
        comments=[
            {
                "rating": rating,
                "kind": rating.get_kind_display(),
                "service": names.get(rating.service_id or 0, _("Problem reports")),
                "score": rating.get_score_display(),
            }
            for rating in context["page"].object_list
        ],
        values=values,
        errors=errors,
        services=[(REPORTS_FILTER, _("Problem reports"))] + [(str(pk), name) for pk, name in names.items()],
        months=[
            (month.strftime("%Y-%m"), formats.date_format(month, "YEAR_MONTH_FORMAT")) for month in months
        ],
        page_number=context["page"].number,
        num_pages=context["page"].paginator.num_pages,
    )
    response = render(request, "feedback/office/feedback.html", context)
    response["Cache-Control"] = "private, no-store"
    return response
