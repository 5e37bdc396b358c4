"""Verification of result documents (public) and download of a signed result (its applicant or
an officer of the issuing agency)."""

from __future__ import annotations

import datetime as dt
import uuid

from django.conf import settings
from django.http import FileResponse, HttpRequest
from ninja import File, Router, Schema
from ninja.files import UploadedFile

from civicore.core.schemas import ErrorOut
from civicore.credentials.selectors import Verification, document_lookup, document_verify, result_for_download
from civicore.credentials.services import FileTooLarge
from civicore.credentials.views import pdf_response

router = Router(tags=["credentials"])


class VerificationOut(Schema):
    status: str
    serial: str | None
    title: str
    issuer: str
    issued_at: dt.datetime | None
    reason: str


def _out(result: Verification) -> VerificationOut:
    return VerificationOut(
        status=result.status,
        serial=result.serial,
        title=result.title,
        issuer=result.issuer,
        issued_at=result.issued_at,
        reason=result.reason,
    )


@router.post("/verify", auth=None, response={200: VerificationOut, 413: ErrorOut, 422: ErrorOut})
def verify_upload(request: HttpRequest, file: File[UploadedFile]) -> VerificationOut:
    """Check an uploaded PDF: `valid`, `tampered` or `unknown`, with the register's details."""
    limit = settings.UPLOAD_MAX_BYTES
    if file.size is not None and file.size > limit:
        raise FileTooLarge(details={"max_bytes": limit})
    data = file.read(limit + 1)
    if len(data) > limit:
        raise FileTooLarge(details={"max_bytes": limit})
    return _out(document_verify(pdf=data))


@router.get("/verify/{serial}", auth=None, response={200: VerificationOut})
def verify_serial(request: HttpRequest, serial: str) -> VerificationOut:
    """What a QR code's serial stands for; a malformed or unknown serial is `unknown`."""
    return _out(document_lookup(serial=serial))


@router.get(
    "/results/{application_public_id}", response={200: None, 401: ErrorOut, 403: ErrorOut, 404: ErrorOut}
)
def result_pdf(request: HttpRequest, application_public_id: uuid.UUID) -> FileResponse:
    """The signed PDF, to its applicant or to an officer of the issuing agency."""
    return pdf_response(result_for_download(user=request.user, public_id=application_public_id))
