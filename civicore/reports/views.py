"""Pages for problem reports: the citizen's form, status page and list, and the office's inbox,
triage queue and report page. Thin: they parse input, call one service or selector, render."""

from __future__ import annotations

import uuid
from typing import Any

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied as DjangoPermissionDenied
from django.http import FileResponse, Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.templatetags.static import static
from django.utils import timezone
from django.utils.translation import get_language
from django.utils.translation import gettext as _
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from civicore.agencies import permissions
from civicore.agencies.models import Officer, Team
from civicore.core import throttle
from civicore.core.errors import ApplicationError, NotFound, PermissionDenied
from civicore.core.files import private_file_response
from civicore.core.pagination import paginate
from civicore.reports import geocoding, maps, selectors, services
from civicore.reports.models import Report, ReportPhoto

PAGE_SIZE = 25
SESSION_REFS = "reports_filed"
FORM_FIELDS = (
    "description",
    "category",
    "latitude",
    "longitude",
    "address",
    "contact_name",
    "contact_email",
    "contact_phone",
)


def _session_refs(request: HttpRequest) -> list[str]:
    refs = request.session.get(SESSION_REFS, [])
    return [str(ref) for ref in refs] if isinstance(refs, list) else []


def _remember(request: HttpRequest, report: Report) -> None:
    """An anonymous reporter is recognised in this browser session by the references it filed."""
    refs = _session_refs(request)
    request.session[SESSION_REFS] = [*refs[-19:], report.reference]


def _client_key(request: HttpRequest) -> str:
    return services.client_key_for(user=request.user, address=throttle.client_address(request))


def _field_errors(exc: ApplicationError) -> dict[str, str]:
    details = exc.details if isinstance(exc.details, dict) else {}
    errors = {str(key): str(value) for key, value in details.items()}
    return errors or {"form": exc.message}


def _form_context(request: HttpRequest, values: dict[str, str], errors: dict[str, str]) -> dict[str, Any]:
    return {
        "values": values,
        "errors": errors,
        "categories": selectors.active_categories(),
        "map": maps.map_config(),
        "leaflet_images": static("vendor/leaflet/images/"),
        "max_photos": services.MAX_PHOTOS,
        "description_max": services.DESCRIPTION_MAX,
        "address_lookup": geocoding.geocoder_configured(),
    }


# --- citizens ------------------------------------------------------------------------------------


@require_http_methods(["GET", "POST"])
def report_new(request: HttpRequest) -> HttpResponse:
    values = {name: "" for name in FORM_FIELDS}
    errors: dict[str, str] = {}
    status = 200
    if request.method == "POST":
        values = {name: str(request.POST.get(name, "")) for name in FORM_FIELDS}
        try:
            report = services.report_file(
                reporter=request.user,
                description=values["description"],
                latitude=values["latitude"].strip().replace(",", ".") or None,
                longitude=values["longitude"].strip().replace(",", ".") or None,
                address=values["address"],
                category_code=values["category"] or None,
                photos=request.FILES.getlist("photos"),
                contact_name=values["contact_name"],
                contact_email=values["contact_email"],
                contact_phone=values["contact_phone"],
                language=get_language() or "vi",
                client_key=_client_key(request),
            )
        except services.RateLimited as exc:
            errors, status = {"form": exc.message}, 429
        except ApplicationError as exc:
            errors, status = _field_errors(exc), 422 if request.headers.get("HX-Request") else 200
        else:
            _remember(request, report)
            messages.success(request, _("Thank you. Your report was received."))
            return redirect("reports:status", reference=report.reference)
    response = render(request, "reports/new.html", _form_context(request, values, errors), status=status)
    return maps.allow_map(response, geolocation=True)


@require_GET
def report_nearby(request: HttpRequest) -> HttpResponse:
    """htmx: open reports near the pin that may be the same problem, before the citizen files."""
    try:
        latitude, longitude = services.clean_location(
            request.GET.get("latitude", "").replace(",", "."),
            request.GET.get("longitude", "").replace(",", "."),
        )
    except ApplicationError:
        return render(request, "reports/_nearby.html", {"reports": [], "checked": False})
    category = request.GET.get("category", "")[:60]
    predicted = None
    if not category:
        description = request.GET.get("description", "").strip()[: services.DESCRIPTION_MAX]
        decision = services.predict(description) if len(description) >= services.DESCRIPTION_MIN else None
        if decision is not None:
            category = predicted = decision.label
    reports = selectors.nearby_open_reports(latitude, longitude, category_code=category or None)
    return render(
        request,
        "reports/_nearby.html",
        {
            "reports": reports,
            "checked": True,
            "predicted": predicted,
            "anonymous": not request.user.is_authenticated,
        },
    )


def _report_or_404(reference: str) -> Report:
    report = selectors.report_by_reference(reference)
    if report is None:
        raise Http404(_("No report has this reference."))
    return report


@require_POST
def report_me_too(request: HttpRequest, reference: str) -> HttpResponse:
    report = _report_or_404(reference)
    try:
        supporter = services.report_support(
            report=report,
            user=request.user,
            client_key=_client_key(request),
            contact_email=request.POST.get("contact_email", ""),
        )
    except ApplicationError as exc:
        messages.error(request, exc.message)
        return redirect("reports:new")
    messages.success(
        request, _("Thank you. You now follow report %(ref)s.") % {"ref": supporter.report.reference}
    )
    return redirect("reports:status", reference=supporter.report.reference)


@require_GET
def report_status(request: HttpRequest, reference: str) -> HttpResponse:
    report = _report_or_404(reference)
    is_reporter = services.is_reporter(report, request.user, _session_refs(request))
    photos = selectors.photos_of(report, published_only=not is_reporter)
    context = {
        "report": report,
        "is_reporter": is_reporter,
        "events": selectors.public_events(report),
        "photos": [photo for photo in photos if photo.kind == ReportPhoto.Kind.REPORT],
        "fix_photos": [photo for photo in photos if photo.kind == ReportPhoto.Kind.FIX],
        "can_ask_review": is_reporter
        and report.routed_by == Report.RoutedBy.AI
        and report.status in (Report.Status.OPEN, Report.Status.IN_PROGRESS),
        "can_rate": is_reporter and report.status == Report.Status.RESOLVED and report.rated_at is None,
        "stars": range(1, 6),
    }
    response = render(request, "reports/status.html", context)
    response["Cache-Control"] = "private, no-store"
    return response


@require_POST
def report_human_review(request: HttpRequest, reference: str) -> HttpResponse:
    report = _report_or_404(reference)
    try:
        services.report_request_human_review(
            report=report, user=request.user, session_refs=_session_refs(request)
        )
        messages.success(request, _("An officer will check where your report should go."))
    except PermissionDenied as exc:
        raise DjangoPermissionDenied(str(exc)) from exc
    except ApplicationError as exc:
        messages.error(request, exc.message)
    return redirect("reports:status", reference=report.reference)


@require_POST
def report_rate(request: HttpRequest, reference: str) -> HttpResponse:
    report = _report_or_404(reference)
    try:
        services.report_rate(
            report=report,
            user=request.user,
            resolved=request.POST.get("resolved") == "yes",
            stars=request.POST.get("stars"),
            comment=request.POST.get("comment", ""),
            session_refs=_session_refs(request),
        )
        messages.success(request, _("Thank you for your rating."))
    except PermissionDenied as exc:
        raise DjangoPermissionDenied(str(exc)) from exc
    except ApplicationError as exc:
        messages.error(request, exc.message)
    return redirect("reports:status", reference=report.reference)


@require_GET
def report_photo(request: HttpRequest, reference: str, photo_id: uuid.UUID) -> FileResponse:
    """A photo: the reporter sees all of theirs, anyone else only the published ones."""
    report = _report_or_404(reference)
    is_reporter = services.is_reporter(report, request.user, _session_refs(request))
    photo = selectors.photos_of(report, published_only=not is_reporter).filter(public_id=photo_id).first()
    if photo is None:
        raise Http404(_("Photo not found."))
    return private_file_response(
        photo.file, filename=f"{photo.public_id}.jpg", content_type="image/jpeg", as_attachment=False
    )


@login_required
@require_GET
def my_reports(request: HttpRequest) -> HttpResponse:
    context = {
        "reports": selectors.reports_for_user(request.user)[:100],
        "supported": selectors.supported_by_user(request.user)[:100],
    }
    return render(request, "reports/my_reports.html", context)


# --- office --------------------------------------------------------------------------------------


def _officer(request: HttpRequest, permission: str = permissions.REPORT_HANDLE) -> Officer:
    try:
        return permissions.officer_with_perm(request.user, permission)
    except PermissionDenied as exc:
        raise DjangoPermissionDenied(
            _("Only officers who work on problem reports can use this page.")
        ) from exc


def _office_report(officer: Officer, report_id: int, *, audit_read: bool) -> Report:
    try:
        return selectors.report_for_officer(officer=officer, report_id=report_id, audit_read=audit_read)
    except NotFound as exc:
        raise Http404(str(exc)) from exc
    except PermissionDenied as exc:
        raise DjangoPermissionDenied(str(exc)) from exc


@login_required
@require_GET
def office_inbox(request: HttpRequest) -> HttpResponse:
    officer = _officer(request)
    filters = {
        "status": request.GET.get("status", "active"),
        "category": request.GET.get("category", "")[:60],
        "overdue": request.GET.get("overdue") == "1",
    }
    if filters["status"] not in ("active", "all", *Report.Status.values):
        filters["status"] = "active"
    qs = selectors.inbox(officer=officer, **filters)  # type: ignore[arg-type]
    try:
        rows, next_cursor = paginate(
            qs, cursor=request.GET.get("cursor"), limit=PAGE_SIZE, order=("due_at", "id")
        )
    except ApplicationError:
        rows, next_cursor = paginate(qs, cursor=None, limit=PAGE_SIZE, order=("due_at", "id"))
    params = request.GET.copy()
    params.pop("cursor", None)
    if next_cursor:
        params["cursor"] = next_cursor
    context = {
        "officer": officer,
        "reports": rows,
        "filters": filters,
        "now": timezone.now(),
        "next_url": f"?{params.urlencode()}" if next_cursor else "",
        "statuses": Report.Status.choices,
        "categories": selectors.active_categories().filter(agency_id=officer.agency_id),
        "may_triage": services.may_triage(officer),
    }
    template = (
        "reports/office/_inbox_table.html"
        if request.headers.get("HX-Request")
        else "reports/office/inbox.html"
    )
    return render(request, template, context)


@login_required
@require_GET
def office_triage(request: HttpRequest) -> HttpResponse:
    officer = _officer(request, permissions.REPORT_TRIAGE)
    reports = list(selectors.triage_queue(officer=officer)[:100])
    context = {
        "officer": officer,
        "rows": [{"report": report, "suggestions": selectors.suggestions(report)} for report in reports],
        "categories": selectors.active_categories(),
    }
    return render(request, "reports/office/triage.html", context)


@login_required
@require_GET
def office_detail(request: HttpRequest, report_id: int) -> HttpResponse:
    officer = _officer(request)
    report = _office_report(officer, report_id, audit_read=True)
    context = {
        "officer": officer,
        "report": report,
        "events": report.events.all(),
        "photos": selectors.photos_of(report),
        "categories": selectors.active_categories(),
        "teams": Team.objects.filter(agency_id=officer.agency_id),
        "suggestions": selectors.suggestions(report),
        "may_handle": services.may_handle(officer, report),
        "may_triage": services.may_triage(officer),
        "now": timezone.now(),
        "supporter_count": report.supporters.count(),
        "merged_reports": report.merged_reports.all(),
    }
    response = render(request, "reports/office/detail.html", context)
    response["Cache-Control"] = "private, no-store"
    return response


def _act(action: str, report: Report, officer: Officer, request: HttpRequest) -> None:
    post = request.POST
    if action == "route":
        services.report_route(
            report=report,
            officer=officer,
            category_code=post.get("category", ""),
            reason=post.get("reason", ""),
        )
    elif action == "assign":
        services.report_assign(
            report=report, officer=officer, team_id=post.get("team"), contractor=post.get("contractor", "")
        )
    elif action == "start":
        services.report_start(report=report, officer=officer)
    elif action == "resolve":
        services.report_resolve(
            report=report, officer=officer, note=post.get("note", ""), photo=request.FILES.get("photo")
        )
    elif action == "merge":
        services.report_merge(report=report, into_reference=post.get("into", ""), officer=officer)
    elif action in ("publish", "unpublish"):
        services.photo_publish(
            report=report, photo_id=post.get("photo"), officer=officer, published=action == "publish"
        )
    else:
        raise Http404(_("Unknown action."))


@login_required
@require_POST
def office_action(request: HttpRequest, report_id: int, action: str) -> HttpResponse:
    officer = _officer(request)
    report = _office_report(officer, report_id, audit_read=False)
    try:
        _act(action, report, officer, request)
        messages.success(request, _("Done."))
    except PermissionDenied as exc:
        raise DjangoPermissionDenied(str(exc)) from exc
    except NotFound as exc:
        raise Http404(str(exc)) from exc
    except ApplicationError as exc:
        messages.error(request, exc.message)
    if request.POST.get("next") == "triage" and services.may_triage(officer):
        return redirect("reports:office_triage")
    if not selectors.may_view(officer, Report.objects.get(pk=report.pk)):
        return redirect("reports:office_inbox")
    return redirect("reports:office_detail", report_id=report.pk)


@login_required
@require_GET
def office_photo(request: HttpRequest, report_id: int, photo_id: uuid.UUID) -> FileResponse:
    officer = _officer(request)
    report = _office_report(officer, report_id, audit_read=False)
    try:
        photo = selectors.photo_for_officer(officer=officer, report=report, photo_id=photo_id)
    except NotFound as exc:
        raise Http404(str(exc)) from exc
    return private_file_response(
        photo.file, filename=f"{photo.public_id}.jpg", content_type="image/jpeg", as_attachment=False
    )
