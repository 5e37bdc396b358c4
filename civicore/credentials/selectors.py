"""Reads of result documents: verifying a presented PDF or serial, and authorised downloads.

Verification never trusts the uploaded file: the register (serial, SHA-256 of the exact bytes
issued) decides validity together with a PAdES signature chaining to our own root CA.
Anything malformed, foreign or unsigned is "unknown"; it never raises. Other apps that sign
documents the same way (payment receipts) add their register to `registers` at start-up.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import io
import logging
import re
import uuid
from dataclasses import dataclass
from functools import partial
from typing import Any, Literal, Protocol

from cryptography import x509
from django.conf import settings
from django.db.models import QuerySet
from django.utils import timezone
from django.utils.translation import gettext as _

from civicore.agencies.permissions import CASE_VIEW
from civicore.agencies.selectors import officer_for_user
from civicore.applications.models import Application
from civicore.audit.services import record
from civicore.core.errors import Conflict, NotFound, PermissionDenied
from civicore.credentials.models import ResultDocument
from civicore.credentials.services import CA_CERT, SERIAL_MARKER, outside_event_loop
from civicore.payments import selectors as payment_selectors

logger = logging.getLogger(__name__)

Status = Literal["valid", "tampered", "unknown"]
VALID: Status = "valid"
TAMPERED: Status = "tampered"
UNKNOWN: Status = "unknown"

# Where a PDF may start: the specification lets the header sit after some leading junk.
_HEADER_WINDOW = 1024
_SERIAL_IN_BYTES = re.compile(re.escape(SERIAL_MARKER).encode() + rb"([0-9a-fA-F\-]{36})")


@dataclass(frozen=True)
class Verification:
    status: Status
    serial: str | None = None
    title: str = ""
    issuer: str = ""
    issued_at: dt.datetime | None = None
    reason: str = ""
    kind: str = ""  # what sort of document, when it is not a result ("Payment receipt")
    facts: tuple[tuple[str, str], ...] = ()  # more (label, value) pairs from the register

    @property
    def is_valid(self) -> bool:
        return self.status == VALID


@dataclass(frozen=True)
class Registered:
    """A signed document as a register knows it: what /verify may say about it."""

    serial: uuid.UUID
    title: str
    issuer: str
    issued_at: dt.datetime
    revoked_at: dt.datetime | None = None
    kind: str = ""
    facts: tuple[tuple[str, str], ...] = ()


class DocumentRegister(Protocol):
    """Where /verify looks up a serial or the SHA-256 of a presented file."""

    def by_serial(self, serial: uuid.UUID) -> Registered | None: ...

    def by_sha256(self, digest: str) -> Registered | None: ...


def results() -> QuerySet[ResultDocument]:
    return ResultDocument.objects.select_related("agency", "application")


def result_by_serial(serial: uuid.UUID) -> ResultDocument | None:
    return results().filter(serial=serial).first()


def _registered_result(document: ResultDocument | None) -> Registered | None:
    if document is None:
        return None
    return Registered(
        serial=document.serial,
        title=document.title,
        issuer=document.agency.name,
        issued_at=document.issued_at,
        revoked_at=document.revoked_at,
    )


class _ResultRegister:
    def by_serial(self, serial: uuid.UUID) -> Registered | None:
        return _registered_result(result_by_serial(serial))

    def by_sha256(self, digest: str) -> Registered | None:
        return _registered_result(results().filter(sha256=digest).first())


# Results first; apps append theirs in AppConfig.ready().
registers: list[DocumentRegister] = [_ResultRegister()]


def _by_serial(serial: uuid.UUID) -> Registered | None:
    return next((found for r in registers if (found := r.by_serial(serial)) is not None), None)


def _by_sha256(digest: str) -> Registered | None:
    return next((found for r in registers if (found := r.by_sha256(digest)) is not None), None)


def _from_register(document: Registered, status: Status, reason: str) -> Verification:
    return Verification(
        status=status,
        serial=str(document.serial),
        title=document.title,
        issuer=document.issuer,
        issued_at=document.issued_at,
        reason=reason,
        kind=document.kind,
        facts=document.facts,
    )


def _revoked_reason(document: Registered) -> str:
    revoked = timezone.localtime(document.revoked_at) if document.revoked_at else None
    return _("This document was revoked by its issuer on %(date)s.") % {
        "date": revoked.strftime("%d/%m/%Y") if revoked else ""
    }


def document_lookup(*, serial: str) -> Verification:
    """What a QR code's serial stands for: valid while registered and not revoked."""
    try:
        parsed = uuid.UUID(str(serial).strip())
    except (ValueError, TypeError, AttributeError):
        return Verification(status=UNKNOWN, reason=_("This is not a document serial number."))
    document = _by_serial(parsed)
    if document is None:
        return Verification(status=UNKNOWN, reason=_("No document with this serial number was issued."))
    if document.revoked_at is not None:
        return _from_register(document, UNKNOWN, _revoked_reason(document))
    return _from_register(
        document, VALID, _("This document was issued by the agency named and has not been revoked.")
    )


def _our_ca() -> x509.Certificate | None:
    path = settings.SIGNING_DIR / CA_CERT
    try:
        return x509.load_pem_x509_certificate(path.read_bytes())
    except (OSError, ValueError):
        return None


def _issued_by(cert: Any, ca: x509.Certificate) -> bool:
    """Whether an embedded (asn1crypto) certificate was signed by our CA's key."""
    try:
        candidate = x509.load_der_x509_certificate(cert.dump())
        candidate.verify_directly_issued_by(ca)
    except Exception:
        return False
    return True


@dataclass
class _SignatureCheck:
    ours: bool
    intact_whole_file: bool


def _check_signatures(
    pdf: bytes, ca: x509.Certificate | None, moment: dt.datetime | None
) -> list[_SignatureCheck]:
    """Validate every embedded signature; raises on unreadable input (the caller handles it)."""
    from pyhanko.keys import load_cert_from_pemder
    from pyhanko.pdf_utils.reader import PdfFileReader
    from pyhanko.sign.validation import validate_pdf_signature
    from pyhanko.sign.validation.status import SignatureCoverageLevel
    from pyhanko_certvalidator import ValidationContext

    reader = PdfFileReader(io.BytesIO(pdf), strict=False)
    checks: list[_SignatureCheck] = []
    trust_root = load_cert_from_pemder(str(settings.SIGNING_DIR / CA_CERT)) if ca is not None else None
    for embedded in reader.embedded_signatures:
        try:
            ours = ca is not None and _issued_by(embedded.signer_cert, ca)
        except Exception:
            ours = False
        if not ours or trust_root is None:
            checks.append(_SignatureCheck(ours=False, intact_whole_file=False))
            continue
        context = ValidationContext(
            trust_roots=[trust_root], allow_fetching=False, revocation_mode="soft-fail", moment=moment
        )
        try:
            # Anything appended after signing already fails the whole-file test, so the
            # (slow, attacker-controlled) difference analysis is skipped.
            status = outside_event_loop(partial(validate_pdf_signature, embedded, context, skip_diff=True))
        except Exception as exc:  # a broken signature of ours is a tampered document, not a crash
            logger.info("signature validation failed: %s", exc)
            checks.append(_SignatureCheck(ours=True, intact_whole_file=False))
            continue
        whole = (
            status.intact
            and status.valid
            and status.trusted
            and status.coverage == SignatureCoverageLevel.ENTIRE_FILE
        )
        checks.append(_SignatureCheck(ours=True, intact_whole_file=bool(whole)))
    return checks


def _claimed_serial(pdf: bytes) -> Registered | None:
    """The register entry a document names in its metadata, even if its bytes were changed."""
    match = _SERIAL_IN_BYTES.search(pdf)
    if match is None:
        return None
    try:
        return _by_serial(uuid.UUID(match.group(1).decode()))
    except ValueError:
        return None


def document_verify(*, pdf: bytes) -> Verification:
    """Tell whether a PDF is a document we issued (a result, a receipt), unchanged since signing."""
    if len(pdf) > settings.UPLOAD_MAX_BYTES:
        return Verification(status=UNKNOWN, reason=_("The file is too large to be a document we issued."))
    if b"%PDF-" not in pdf[:_HEADER_WINDOW]:
        return Verification(status=UNKNOWN, reason=_("The file is not a PDF document."))

    registered = _by_sha256(hashlib.sha256(pdf).hexdigest())
    claimed = registered or _claimed_serial(pdf)
    ca = _our_ca()
    # The register is our own record of when a document was signed, so a certificate that
    # expired since then does not make a genuine document look invalid.
    moment = registered.issued_at if registered is not None else None
    try:
        checks = _check_signatures(pdf, ca, moment)
    except Exception as exc:  # hostile input: any parser failure means we cannot vouch for it
        logger.info("unreadable PDF presented for verification: %s", exc)
        checks = None

    if checks is None:
        if claimed is not None:
            return _from_register(
                claimed, TAMPERED, _("The file claims to be one of our documents but is damaged.")
            )
        return Verification(status=UNKNOWN, reason=_("The PDF could not be read."))

    ours = [check for check in checks if check.ours]
    if registered is not None and ours and all(check.intact_whole_file for check in ours):
        if registered.revoked_at is not None:
            return _from_register(registered, UNKNOWN, _revoked_reason(registered))
        return _from_register(
            registered,
            VALID,
            _("The signature is intact and the file is exactly the one issued."),
        )
    if claimed is not None or ours:
        reason = _("The document was changed after it was signed.")
        if claimed is not None:
            return _from_register(claimed, TAMPERED, reason)
        return Verification(status=TAMPERED, reason=reason)
    if not checks:
        return Verification(status=UNKNOWN, reason=_("The PDF carries no digital signature."))
    return Verification(status=UNKNOWN, reason=_("The PDF was not signed by this service."))


class FeeUnpaid(Conflict):
    """The result is released once the application's fee is paid."""

    code = "fee_unpaid"


def result_for_download(*, user: Any, public_id: uuid.UUID) -> ResultDocument:
    """The signed result of an application, for its applicant or an officer of the issuing agency.

    Anyone else's application looks the same as a missing one (404); an officer of another
    agency is told they may not (403). Officers' downloads are recorded in the applicant's
    audit trail.
    """
    application = (
        Application.objects.select_related("applicant", "case", "result_document__agency")
        .filter(public_id=public_id)
        .first()
    )
    if application is None or not getattr(user, "is_authenticated", False):
        raise NotFound("No such result", code="result_not_found")
    document: ResultDocument | None = getattr(application, "result_document", None)
    if application.applicant.user_id == user.pk:
        if document is None:
            raise NotFound("The result has not been issued yet", code="result_not_found")
        fee = payment_selectors.fee_status(application=application)
        if fee is not None and fee.blocks_release:
            raise FeeUnpaid(_("Pay the application's fee to download your document."))
        return document

    officer = officer_for_user(user)
    if officer is None:
        raise NotFound("No such result", code="result_not_found")
    case = getattr(application, "case", None)
    agency_id = document.agency_id if document is not None else (case.agency_id if case is not None else None)
    if agency_id is None:
        raise NotFound("No such result", code="result_not_found")
    if officer.agency_id != agency_id:
        raise PermissionDenied("This result belongs to another agency", code="other_agency")
    if not officer.has_perm(CASE_VIEW):
        raise PermissionDenied("Reading results needs the case.view permission", code="permission_required")
    if document is None:
        raise NotFound("The result has not been issued yet", code="result_not_found")
    record(
        actor=user,
        action="document.view",
        subject=document,
        person=application.applicant,
        agency=officer.agency,
        details={"serial": str(document.serial), "reference": application.reference},
    )
    return document
