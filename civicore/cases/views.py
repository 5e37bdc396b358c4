"""Back-office pages: the agency's case inbox and the case page where officers act."""

from __future__ import annotations

import uuid
from typing import Any

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied as DjangoPermissionDenied
from django.http import FileResponse, Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.utils import timezone
from django.utils.translation import gettext as _
from django.views.decorators.http import require_GET, require_POST

from civicore.agencies import permissions
from civicore.agencies.models import Officer
from civicore.applications import selectors as application_selectors
from civicore.cases import selectors, services
from civicore.cases.models import Case
from civicore.core.errors import ApplicationError, NotFound, PermissionDenied
from civicore.core.files import private_file_response
from civicore.core.pagination import paginate

PAGE_SIZE = 25


def _officer(request: HttpRequest) -> Officer:
    try:
        return permissions.officer_with_perm(request.user, permissions.CASE_VIEW)
    except PermissionDenied as exc:
        raise DjangoPermissionDenied(_("Only officers who work on cases can use the case inbox.")) from exc


def _case(officer: Officer, case_id: int, *, audit_read: bool) -> Case:
    try:
        return selectors.case_for_officer(officer=officer, case_id=case_id, audit_read=audit_read)
    except NotFound as exc:
        raise Http404(str(exc)) from exc
    except PermissionDenied as exc:
        raise DjangoPermissionDenied(str(exc)) from exc


@login_required
@require_GET
def inbox(request: HttpRequest) -> HttpResponse:
    officer = _officer(request)
    filters = {
        "state": request.GET.get("state", "open"),
        "assigned": request.GET.get("assigned", ""),
        "overdue": request.GET.get("overdue") == "1",
        "q": request.GET.get("q", ""),
    }
    if filters["assigned"] not in ("", "me", "none"):
        filters["assigned"] = ""
    sort = request.GET.get("sort", "due")
    if sort not in selectors.SORTS:
        sort = "due"
    qs = selectors.inbox(officer=officer, **filters)  # type: ignore[arg-type]
    try:
        rows, next_cursor = paginate(
            qs, cursor=request.GET.get("cursor"), limit=PAGE_SIZE, order=selectors.SORTS[sort]
        )
    except ApplicationError:
        rows, next_cursor = paginate(qs, cursor=None, limit=PAGE_SIZE, order=selectors.SORTS[sort])
    params = request.GET.copy()
    params.pop("cursor", None)
    if next_cursor:
        params["cursor"] = next_cursor
    context: dict[str, Any] = {
        "officer": officer,
        "cases": rows,
        "filters": filters,
        "sort": sort,
        "now": timezone.now(),
        "next_url": f"?{params.urlencode()}" if next_cursor else "",
        "states": Case.State.choices,
    }
    template = "cases/_inbox_table.html" if request.headers.get("HX-Request") else "cases/inbox.html"
    return render(request, template, context)


@login_required
@require_GET
def case_detail(request: HttpRequest, case_id: int) -> HttpResponse:
    officer = _officer(request)
    case = _case(officer, case_id, audit_read=True)
    application = case.application
    context = {
        "officer": officer,
        "case": case,
        "application": application,
        "fields": application_selectors.form_fields(application),
        "documents": application_selectors.documents_of(application),
        "events": selectors.events(case),
        "now": timezone.now(),
        "steps": services.officer_steps(case, officer),
        "credential": _issued_credential(application),
    }
    return render(request, "cases/detail.html", context)


def _issued_credential(application: Any) -> Any:
    """The issued document's credential, for the link to its status page."""
    from civicore.vc.models import Credential

    return Credential.objects.filter(document__application=application).only("public_id", "status").first()


@login_required
@require_POST
def case_action(request: HttpRequest, case_id: int, action: str) -> HttpResponse:
    officer = _officer(request)
    case = _case(officer, case_id, audit_read=False)
    handler = services.OFFICER_ACTIONS.get(action)
    if handler is None:
        raise Http404(_("Unknown action."))
    try:
        handler(case, officer, request.POST.get("message", ""))
        messages.success(request, _("Done."))
    except PermissionDenied as exc:
        raise DjangoPermissionDenied(str(exc)) from exc
    except ApplicationError as exc:
        messages.error(request, exc.message)
    return redirect("cases:detail", case_id=case.pk)


@login_required
@require_GET
def case_document(request: HttpRequest, case_id: int, document_id: uuid.UUID) -> FileResponse:
    officer = _officer(request)
    case = _case(officer, case_id, audit_read=False)
    try:
        document = selectors.document_for_officer(officer=officer, case=case, document_id=document_id)
    except NotFound as exc:
        raise Http404(str(exc)) from exc
    return private_file_response(
        document.file,
        filename=document.original_name,
        content_type=document.content_type,
        as_attachment=False,
    )
