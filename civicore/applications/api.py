"""Applications API: a citizen's own applications, from filing to the result."""

from __future__ import annotations

import datetime as dt
import uuid
from typing import Any

from django.http import HttpRequest
from django.utils.translation import gettext as _
from ninja import Field, File, Form, Router, Schema, Status
from ninja.files import UploadedFile

from civicore.applications import selectors, services
from civicore.applications.models import Application, ApplicationDocument
from civicore.cases.models import Case
from civicore.core.errors import PermissionDenied
from civicore.core.pagination import paginate
from civicore.identity.models import Person
from civicore.identity.selectors import person_for_user

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


class ApplicationSummary(Schema):
    id: uuid.UUID
    reference: str | None
    service: str
    status: str
    case_state: str | None
    created_at: dt.datetime
    submitted_at: dt.datetime | None


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
    }


@router.post("", response={201: ApplicationOut}, summary="Start, fill and optionally submit an application")
def file_application(request: HttpRequest, payload: ApplicationIn) -> Status[dict[str, Any]]:
    """Send `Idempotency-Key` to make retries safe: the same key returns the same application."""
    person = _person(request)
    service = services.service_for_application(payload.service)
    application, created = services.application_file(
        person=person,
        service=service,
        answers=payload.answers,
        submit=payload.submit,
        idempotency_key=request.headers.get("Idempotency-Key"),
        use_profile=payload.use_profile,
    )
    # An application created by this call has no documents yet; a replayed key returns the
    # original, which may have gained some since.
    return Status(201, _out(application, documents=[] if created else None))


@router.get("", response=ApplicationPage, summary="The caller's applications, newest first")
def list_applications(request: HttpRequest, cursor: str | None = None, limit: int = 20) -> dict[str, Any]:
    rows, next_cursor = paginate(
        selectors.applications_of(person=_person(request)),
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
            }
            for a in rows
        ],
        "next_cursor": next_cursor,
    }


@router.get("/{application_id}", response=ApplicationOut)
def get_application(request: HttpRequest, application_id: uuid.UUID) -> dict[str, Any]:
    return _out(selectors.application_of(person=_person(request), public_id=application_id))


@router.patch("/{application_id}", response=ApplicationOut, summary="Save draft answers")
def save_draft(request: HttpRequest, application_id: uuid.UUID, payload: AnswersIn) -> dict[str, Any]:
    application = selectors.application_of(person=_person(request), public_id=application_id)
    return _out(services.application_save_draft(application=application, answers=payload.answers))


@router.post("/{application_id}/documents", response={201: DocumentOut})
def upload_document(
    request: HttpRequest, application_id: uuid.UUID, requirement: Form[str], file: File[UploadedFile]
) -> Status[dict[str, Any]]:
    application = selectors.application_of(person=_person(request), public_id=application_id)
    during = "info_request" if application.status == Application.Status.SUBMITTED else "application"
    document = services.document_attach(
        application=application, requirement=requirement, upload=file, during=during
    )
    return Status(201, _document_out(document))


@router.post("/{application_id}/submit", response=ApplicationOut)
def submit(
    request: HttpRequest, application_id: uuid.UUID, payload: SubmitIn | None = None
) -> dict[str, Any]:
    application = selectors.application_of(person=_person(request), public_id=application_id)
    answers = payload.answers if payload else None
    return _out(services.application_submit(application=application, answers=answers))


@router.post("/{application_id}/respond", response=ApplicationOut, summary="Answer a request for information")
def respond(request: HttpRequest, application_id: uuid.UUID, payload: RespondIn) -> dict[str, Any]:
    from civicore.cases.services import case_provide_info

    application = selectors.application_of(person=_person(request), public_id=application_id)
    if application.status != Application.Status.SUBMITTED:
        raise services.NotEditable(_("This application has not been submitted."), code="not_submitted")
    case_provide_info(case=application.case, applicant_user=request.user, message=payload.message)
    return _out(selectors.application_of(person=_person(request), public_id=application_id))
