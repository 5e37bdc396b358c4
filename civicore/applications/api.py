"""Applications API: a citizen's own applications, from filing to the result."""

from __future__ import annotations

import datetime as dt
import uuid
from typing import Any

from django.http import HttpRequest
from django.utils.translation import gettext as _
from ninja import Field, File, Router, Schema, Status
from ninja.files import UploadedFile
from ninja.params import FormEx, P

from civicore.applications import selectors, services
from civicore.applications.models import Application, ApplicationDocument
from civicore.cases.models import Case
from civicore.core.errors import PermissionDenied
from civicore.core.pagination import paginate
from civicore.core.schemas import errors
from civicore.identity.models import Person
from civicore.identity.selectors import person_for_user
from civicore.identity.services import assurance_require_for_service
from civicore.organisations.acting import organisation_from_header
from civicore.organisations.models import Organisation

router = Router(tags=["applications"])


class DocumentOut(Schema):
    id: uuid.UUID
    requirement: str
    name: str
    content_type: str
    size: int
    sha256: str


class ApplicationOut(Schema):
    id: uuid.UUID
    reference: str | None
    service: str
    service_version: int
    status: str
    case_state: str | None
    due_at: dt.datetime | None
    answers: dict[str, Any]
    prefilled: dict[str, Any]
    prefill_consented_at: dt.datetime | None = None
    documents: list[DocumentOut]
    created_at: dt.datetime
    submitted_at: dt.datetime | None
    result_url: str | None
    organisation: str | None = Field(
        None, description="Registration number of the business it was filed for."
    )


class ApplicationSummary(Schema):
    id: uuid.UUID
    reference: str | None
    service: str
    status: str
    case_state: str | None
    created_at: dt.datetime
    submitted_at: dt.datetime | None
    organisation: str | None = None


class ApplicationPage(Schema):
    items: list[ApplicationSummary]
    next_cursor: str | None


class ApplicationIn(Schema):
    service: str
    answers: dict[str, Any] = {}
    submit: bool = False
    use_profile: bool = Field(
        True,
        description="The citizen agrees that answers are filled from their verified profile for this "
        "application (recorded with it). False: every answer comes from `answers`.",
    )


class AnswersIn(Schema):
    answers: dict[str, Any]


class SubmitIn(Schema):
    answers: dict[str, Any] | None = None


class RespondIn(Schema):
    message: str


def _person(request: HttpRequest) -> Person:
    person = person_for_user(request.user)  # type: ignore[arg-type]
    if person is None:
        raise PermissionDenied(
            _("Only citizens with a verified identity can file applications."), code="not_a_citizen"
        )
    return person


def _acting(request: HttpRequest, person: Person) -> Organisation | None:
    """The business named by X-Acting-For, if the caller is a member (403 no_business_role
    otherwise); None without the header."""
    return organisation_from_header(request, person=person)


def _application(request: HttpRequest, application_id: uuid.UUID, *, change: bool = False) -> Application:
    person = _person(request)
    return selectors.application_of(
        person=person, public_id=application_id, organisation=_acting(request, person), change=change
    )


def _case_of(application: Application) -> Case | None:
    """The case of a submitted application; drafts have none."""
    return getattr(application, "case", None) if application.status == Application.Status.SUBMITTED else None


def _document_out(document: ApplicationDocument) -> dict[str, Any]:
    return {
        "id": document.public_id,
        "requirement": document.requirement,
        "name": document.original_name,
        "content_type": document.content_type,
        "size": document.size,
        "sha256": document.sha256,
    }


def _out(application: Application, documents: list[Any] | None = None) -> dict[str, Any]:
    case = _case_of(application)
    docs = documents if documents is not None else list(selectors.documents_of(application))
    has_result = case is not None and case.state == "approved" and hasattr(application, "result_document")
    return {
        "id": application.public_id,
        "reference": application.reference,
        "service": application.service.code,
        "service_version": application.service_version.number,
        "status": application.status,
        "case_state": case.state if case else None,
        "due_at": case.due_at if case else None,
        "answers": application.answers,
        "prefilled": application.prefill,
        "prefill_consented_at": application.prefill_consented_at,
        "documents": [_document_out(d) for d in docs],
        "created_at": application.created_at,
        "submitted_at": application.submitted_at,
        "result_url": f"/api/v1/credentials/results/{application.public_id}" if has_result else None,
        "organisation": _organisation_number(application),
    }


def _organisation_number(application: Application) -> str | None:
    # Filed for oneself: no organisation and no query to find that out.
    organisation = application.organisation if application.organisation_id else None
    return organisation.registration_number if organisation is not None else None


@router.post(
    "",
    response={201: ApplicationOut, **errors(403, 404, 409, 422)},
    summary="Start, fill and optionally submit an application",
)
def file_application(request: HttpRequest, payload: ApplicationIn) -> Status[dict[str, Any]]:
    """Send `Idempotency-Key` to make retries safe: the same key returns the same application.
    Send `X-Acting-For: <business registration number>` to file for a business (needs a current
    `file` role for the service, else 403 `no_business_role`)."""
    person = _person(request)
    organisation = _acting(request, person)
    service = services.service_for_application(payload.service)
    # 403 assurance_level_too_low / fresh_second_factor_required when the service asks for more.
    assurance_require_for_service(request=request, person=person, version=service.current_version)
    application, created = services.application_file(
        person=person,
        service=service,
        answers=payload.answers,
        submit=payload.submit,
        idempotency_key=request.headers.get("Idempotency-Key"),
        use_profile=payload.use_profile,
        organisation=organisation,
    )
    # An application created by this call has no documents yet; a replayed key returns the
    # original, which may have gained some since.
    return Status(201, _out(application, documents=[] if created else None))


@router.get(
    "", response={200: ApplicationPage, **errors(403, 422)}, summary="The caller's applications, newest first"
)
def list_applications(request: HttpRequest, cursor: str | None = None, limit: int = 20) -> dict[str, Any]:
    """With `X-Acting-For`, the business's applications for the services the caller may see."""
    person = _person(request)
    rows, next_cursor = paginate(
        selectors.applications_of(person=person, organisation=_acting(request, person)),
        cursor=cursor,
        limit=limit,
        order=("-created_at", "-id"),
    )
    return {
        "items": [
            {
                "id": a.public_id,
                "reference": a.reference,
                "service": a.service.code,
                "status": a.status,
                "case_state": getattr(_case_of(a), "state", None),
                "created_at": a.created_at,
                "submitted_at": a.submitted_at,
                "organisation": _organisation_number(a),
            }
            for a in rows
        ],
        "next_cursor": next_cursor,
    }


@router.get("/{application_id}", response={200: ApplicationOut, **errors(403, 404)})
def get_application(request: HttpRequest, application_id: uuid.UUID) -> dict[str, Any]:
    return _out(_application(request, application_id))


@router.patch(
    "/{application_id}",
    response={200: ApplicationOut, **errors(403, 404, 409, 422)},
    summary="Save draft answers",
)
def save_draft(request: HttpRequest, application_id: uuid.UUID, payload: AnswersIn) -> dict[str, Any]:
    application = _application(request, application_id, change=True)
    return _out(services.application_save_draft(application=application, answers=payload.answers))


@router.post("/{application_id}/documents", response={201: DocumentOut, **errors(403, 404, 409, 422)})
def upload_document(
    request: HttpRequest,
    application_id: uuid.UUID,
    # An empty form field reads as a missing one, so the schema says it cannot be empty.
    requirement: FormEx[str, P(min_length=1)],
    file: File[UploadedFile],
) -> Status[dict[str, Any]]:
    application = _application(request, application_id, change=True)
    during = "info_request" if application.status == Application.Status.SUBMITTED else "application"
    document = services.document_attach(
        application=application, requirement=requirement, upload=file, during=during
    )
    return Status(201, _document_out(document))


@router.post("/{application_id}/submit", response={200: ApplicationOut, **errors(403, 404, 409, 422)})
def submit(
    request: HttpRequest, application_id: uuid.UUID, payload: SubmitIn | None = None
) -> dict[str, Any]:
    application = _application(request, application_id, change=True)
    # The person submitting must meet the service's level, not whoever started a shared draft.
    person = _person(request)
    assurance_require_for_service(request=request, person=person, version=application.service_version)
    answers = payload.answers if payload else None
    return _out(services.application_submit(application=application, answers=answers, actor=person))


@router.post(
    "/{application_id}/respond",
    response={200: ApplicationOut, **errors(403, 404, 409, 422)},
    summary="Answer a request for information",
)
def respond(request: HttpRequest, application_id: uuid.UUID, payload: RespondIn) -> dict[str, Any]:
    from civicore.cases.services import case_provide_info

    application = _application(request, application_id, change=True)
    if application.status != Application.Status.SUBMITTED:
        raise services.NotEditable(_("This application has not been submitted."), code="not_submitted")
    case_provide_info(case=application.case, applicant_user=request.user, message=payload.message)
    return _out(_application(request, application_id, change=True))
