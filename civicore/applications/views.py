"""Portal pages for citizens: start, fill, upload, submit, track and answer requests."""

from __future__ import annotations

import uuid
from typing import Any

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied as DjangoPermissionDenied
from django.http import FileResponse, Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.utils.translation import gettext as _
from django.views.decorators.http import require_GET, require_POST

from civicore.applications import selectors, services
from civicore.applications.models import Application
from civicore.core.errors import ApplicationError, NotFound, PermissionDenied
from civicore.core.files import private_file_response
from civicore.identity.models import Person
from civicore.identity.selectors import person_for_user
from civicore.identity.views import step_up_response
from civicore.organisations.acting import acting_organisation
from civicore.payments import selectors as payment_selectors


def _person(request: HttpRequest) -> Person:
    person = person_for_user(request.user)  # type: ignore[arg-type]
    if person is None:
        raise DjangoPermissionDenied(_("Only citizens with a verified identity can apply."))
    return person


def _application(request: HttpRequest, public_id: uuid.UUID) -> Application:
    # Acting for a business (civicore.organisations): its application, if a current grant covers
    # the service: `view` to read, `file` to change (any POST).
    try:
        return selectors.application_of(
            person=_person(request),
            public_id=public_id,
            organisation=acting_organisation(request),
            change=request.method == "POST",
        )
    except NotFound as exc:
        raise Http404(str(exc)) from exc
    except PermissionDenied as exc:
        raise DjangoPermissionDenied(exc.message) from exc


@login_required
@require_GET
def application_list(request: HttpRequest) -> HttpResponse:
    if acting_organisation(request) is not None:
        return redirect("organisations:applications")
    applications = selectors.applications_of(person=_person(request)).order_by("-created_at")[:100]
    return render(request, "applications/list.html", {"applications": applications})


@login_required
@require_POST
def application_start(request: HttpRequest, code: str) -> HttpResponse:
    try:
        service = services.service_for_application(code)
    except NotFound as exc:
        raise Http404(str(exc)) from exc
    # The button the citizen pressed is their choice for this application; only an explicit "0"
    # declines, so a start without the field keeps the pre-filled form the service page described.
    use_profile = request.POST.get("use_profile", "1") != "0"
    person = _person(request)
    # The service may need a verified identity or a recent second factor (civicore.identity).
    if (step_up := step_up_response(request, person=person, version=service.current_version)) is not None:
        return step_up
    try:
        application = services.application_start(
            person=person, service=service, use_profile=use_profile, organisation=acting_organisation(request)
        )
    except PermissionDenied as exc:
        raise DjangoPermissionDenied(exc.message) from exc
    return redirect("applications:detail", public_id=application.public_id)


def _form_context(application: Application, errors: dict[str, str] | None = None) -> dict[str, Any]:
    return {
        "application": application,
        "version": application.service_version,
        "fields": selectors.form_fields(application, errors),
        "requirements": selectors.document_requirements(application),
        "errors": errors or {},
        "form_error": (errors or {}).get("__all__", ""),
    }


@login_required
def application_detail(request: HttpRequest, public_id: uuid.UUID) -> HttpResponse:
    application = _application(request, public_id)
    if application.status == Application.Status.SUBMITTED:
        if request.method != "GET":
            return HttpResponse(status=405)
        return _status_page(request, application)
    if request.method == "POST":
        raw = {k: v for k, v in request.POST.items() if k not in ("csrfmiddlewaretoken", "action")}
        application = services.application_save_draft(application=application, answers=raw)
        if request.POST.get("action") != "submit":
            messages.success(request, _("Your draft is saved. You can come back to it at any time."))
            return redirect("applications:detail", public_id=application.public_id)
        # The person submitting must meet the service's level, not whoever started a shared draft.
        step_up = step_up_response(request, person=_person(request), version=application.service_version)
        if step_up is not None:
            return step_up
        try:
            application = services.application_submit(application=application, actor=_person(request))
        except PermissionDenied as exc:
            raise DjangoPermissionDenied(exc.message) from exc
        except services.InvalidAnswers as exc:
            context = _form_context(application, exc.details)
            return render(request, "applications/form.html", context, status=422)
        except services.MissingDocuments as exc:
            context = _form_context(application)
            context["missing_documents"] = exc.details
            return render(request, "applications/form.html", context, status=422)
        return redirect("applications:receipt", public_id=application.public_id)
    return render(request, "applications/form.html", _form_context(application))


def _status_page(request: HttpRequest, application: Application) -> HttpResponse:
    case = application.case
    result = getattr(application, "result_document", None) if case.state == "approved" else None
    info_message = ""
    if case.state == "info_requested":
        last = case.events.filter(kind="info_requested").order_by("-at", "-id").first()
        info_message = last.message if last else ""
    context = {
        "info_message": info_message,
        "application": application,
        "case": case,
        "events": case.events.select_related("actor").all(),
        "documents": selectors.documents_of(application),
        "requirements": selectors.document_requirements(application),
        "fields": selectors.form_fields(application),
        "result": result,
        "version": application.service_version,
        "fee": payment_selectors.fee_status(application=application),
    }
    return render(request, "applications/status.html", context)


@login_required
@require_GET
def application_receipt(request: HttpRequest, public_id: uuid.UUID) -> HttpResponse:
    application = _application(request, public_id)
    if application.status != Application.Status.SUBMITTED:
        raise Http404(_("This application has not been submitted."))
    return render(
        request,
        "applications/receipt.html",
        {
            "application": application,
            "case": application.case,
            "documents": selectors.documents_of(application),
            "fee": payment_selectors.fee_status(application=application),
        },
    )


@login_required
@require_POST
def document_upload(request: HttpRequest, public_id: uuid.UUID) -> HttpResponse:
    application = _application(request, public_id)
    upload = request.FILES.get("file")
    requirement = request.POST.get("requirement", "")
    if upload is None:
        messages.error(request, _("Choose a file to upload."))
    else:
        during = "info_request" if application.status == Application.Status.SUBMITTED else "application"
        try:
            services.document_attach(
                application=application, requirement=requirement, upload=upload, during=during
            )
            messages.success(request, _("The document was uploaded."))
        except ApplicationError as exc:
            messages.error(request, exc.message)
    return redirect("applications:detail", public_id=application.public_id)


@login_required
@require_POST
def document_delete(request: HttpRequest, public_id: uuid.UUID, document_id: uuid.UUID) -> HttpResponse:
    application = _application(request, public_id)
    try:
        services.document_remove(application=application, document_id=str(document_id))
        messages.success(request, _("The document was removed."))
    except ApplicationError as exc:
        messages.error(request, exc.message)
    return redirect("applications:detail", public_id=application.public_id)


@login_required
@require_GET
def document_download(request: HttpRequest, document_id: uuid.UUID) -> FileResponse:
    try:
        document = selectors.document_of_applicant(
            person=_person(request), public_id=document_id, organisation=acting_organisation(request)
        )
    except NotFound as exc:
        raise Http404(str(exc)) from exc
    except PermissionDenied as exc:
        raise DjangoPermissionDenied(exc.message) from exc
    return private_file_response(
        document.file, filename=document.original_name, content_type=document.content_type
    )


@login_required
@require_POST
def application_respond(request: HttpRequest, public_id: uuid.UUID) -> HttpResponse:
    from civicore.cases.services import case_provide_info

    application = _application(request, public_id)
    if application.status != Application.Status.SUBMITTED:
        raise Http404(_("This application has not been submitted."))
    uploads = []
    upload = request.FILES.get("file")
    if upload is not None:
        uploads.append((request.POST.get("requirement", ""), upload))
    try:
        case_provide_info(
            case=application.case,
            applicant_user=request.user,
            message=request.POST.get("message", ""),
            uploads=uploads,
        )
        messages.success(request, _("Your answer was sent. The agency has resumed work on your application."))
    except ApplicationError as exc:
        messages.error(request, exc.message)
    return redirect("applications:detail", public_id=application.public_id)
