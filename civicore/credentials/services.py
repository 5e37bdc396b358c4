"""Issuing signed result documents and the signing material behind them.

An approved application yields exactly one ResultDocument: an A4 PDF, PAdES-signed with the
document-signing key in SIGNING_DIR (chained to the Civicore root CA), stored in private storage
with the SHA-256 of the exact bytes handed out, so verification can compare against the register.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import hashlib
import io
import os
import re
import uuid
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any, TypeVar

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID, ObjectIdentifier
from django.conf import settings
from django.core.files.base import ContentFile
from django.db import IntegrityError, models, transaction
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from civicore.applications.models import Application
from civicore.audit.services import record
from civicore.core.errors import ApplicationError, Conflict, NotFound
from civicore.credentials.models import ResultDocument
from civicore.insights import events as insights

CA_CERT = "ca.pem"
CA_KEY = "ca.key"
SIGNING_CERT = "signing.pem"
SIGNING_KEY = "signing.key"
RETIRED_DIR = "retired"

CA_NAME = "Civicore Root CA"
SIGNING_NAME = "Civicore Document Signing"
CA_LIFETIME = dt.timedelta(days=3653)
SIGNING_LIFETIME = dt.timedelta(days=1096)
# RFC 9336 id-kp-documentSigning, plus the older Microsoft document-signing purpose that
# Adobe Reader still looks for.
EKU_DOCUMENT_SIGNING = ObjectIdentifier("1.3.6.1.5.5.7.3.36")
EKU_MS_DOCUMENT_SIGNING = ObjectIdentifier("1.3.6.1.4.1.311.10.3.12")

# Written into the PDF's metadata so a document whose bytes no longer match the register can
# still be recognised as one of ours.
SERIAL_MARKER = "civicore-serial:"

FONTS_DIR = Path(__file__).resolve().parent / "fonts"
FONT_REGULAR = "CivicoreSans"
FONT_BOLD = "CivicoreSans-Bold"


class SigningNotConfigured(ApplicationError):
    """Document signing is not set up: run `civicore setup signing`."""

    code = "signing_not_configured"
    status = 503


class ResultNotReady(Conflict):
    """The application has not been approved, so it has no result to issue."""

    code = "result_not_ready"


class FileTooLarge(ApplicationError):
    """The file is larger than the upload limit."""

    code = "file_too_large"
    status = 413


# --- Signing material -------------------------------------------------------------------------


@dataclass(frozen=True)
class SigningMaterial:
    directory: Path
    created_ca: bool
    created_signing: bool

    @property
    def ca_cert(self) -> Path:
        return self.directory / CA_CERT

    @property
    def signing_cert(self) -> Path:
        return self.directory / SIGNING_CERT

    @property
    def signing_key(self) -> Path:
        return self.directory / SIGNING_KEY


def _write_private(path: Path, data: bytes) -> None:
    """Write a key so that it is never readable by others, not even for an instant."""
    tmp = path.with_name(path.name + ".tmp")
    if tmp.exists():
        tmp.unlink()
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as handle:
        handle.write(data)
    os.replace(tmp, path)


def _write_public(path: Path, data: bytes) -> None:
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_bytes(data)
    os.chmod(tmp, 0o644)
    os.replace(tmp, path)


def _key_pem(key: ec.EllipticCurvePrivateKey) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )


def _name(common_name: str) -> x509.Name:
    return x509.Name(
        [
            x509.NameAttribute(NameOID.COUNTRY_NAME, "VN"),
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, "Civicore"),
            x509.NameAttribute(NameOID.COMMON_NAME, common_name),
        ]
    )


def _make_ca() -> tuple[ec.EllipticCurvePrivateKey, x509.Certificate]:
    key = ec.generate_private_key(ec.SECP256R1())
    now = timezone.now()
    name = _name(CA_NAME)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + CA_LIFETIME)
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=False,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=True,
                crl_sign=True,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .sign(key, hashes.SHA256())
    )
    return key, cert


def _make_signing(
    ca_key: ec.EllipticCurvePrivateKey, ca_cert: x509.Certificate
) -> tuple[ec.EllipticCurvePrivateKey, x509.Certificate]:
    key = ec.generate_private_key(ec.SECP256R1())
    now = timezone.now()
    not_after = min(now + SIGNING_LIFETIME, ca_cert.not_valid_after_utc)
    cert = (
        x509.CertificateBuilder()
        .subject_name(_name(SIGNING_NAME))
        .issuer_name(ca_cert.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(not_after)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=True,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=False,
                crl_sign=False,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(
            x509.ExtendedKeyUsage([EKU_DOCUMENT_SIGNING, EKU_MS_DOCUMENT_SIGNING]),
            critical=False,
        )
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()),
            critical=False,
        )
        .sign(ca_key, hashes.SHA256())
    )
    return key, cert


def signing_setup(*, directory: Path | str, force: bool = False) -> SigningMaterial:
    """Create the root CA and the document-signing key and certificate where missing.

    Idempotent. `force` rotates the document-signing key and certificate; the CA is kept, so
    documents signed before the rotation still verify against the same trust root. The old
    signing certificate is kept under retired/ for the record; its key is destroyed.
    """
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    os.chmod(directory, 0o700)

    created_ca = False
    ca_cert_path, ca_key_path = directory / CA_CERT, directory / CA_KEY
    if ca_cert_path.exists():
        ca_cert = x509.load_pem_x509_certificate(ca_cert_path.read_bytes())
    else:
        ca_key, ca_cert = _make_ca()
        _write_private(ca_key_path, _key_pem(ca_key))
        _write_public(ca_cert_path, ca_cert.public_bytes(serialization.Encoding.PEM))
        created_ca = True
        force = True  # a new CA cannot vouch for a signing certificate made by an old one

    cert_path, key_path = directory / SIGNING_CERT, directory / SIGNING_KEY
    if not force and cert_path.exists() and key_path.exists():
        return SigningMaterial(directory=directory, created_ca=False, created_signing=False)

    if not ca_key_path.exists():
        raise SigningNotConfigured(
            "The root CA key is not in the signing directory; put it back to issue a new signing certificate."
        )
    loaded = serialization.load_pem_private_key(ca_key_path.read_bytes(), password=None)
    if not isinstance(loaded, ec.EllipticCurvePrivateKey):
        raise SigningNotConfigured("The root CA key is not an EC key.")
    if cert_path.exists():
        old = x509.load_pem_x509_certificate(cert_path.read_bytes())
        retired = directory / RETIRED_DIR
        retired.mkdir(exist_ok=True)
        _write_public(retired / f"signing-{old.serial_number:x}.pem", cert_path.read_bytes())
    key, cert = _make_signing(loaded, ca_cert)
    _write_private(key_path, _key_pem(key))
    _write_public(cert_path, cert.public_bytes(serialization.Encoding.PEM))
    signing_material_reset()
    return SigningMaterial(directory=directory, created_ca=created_ca, created_signing=True)


@cache
def _signer(directory: str) -> Any:
    from pyhanko.sign import signers

    base = Path(directory)
    paths = [base / SIGNING_KEY, base / SIGNING_CERT, base / CA_CERT]
    if not all(p.exists() for p in paths):
        raise SigningNotConfigured()
    return signers.SimpleSigner.load(
        key_file=str(paths[0]), cert_file=str(paths[1]), ca_chain_files=(str(paths[2]),)
    )


def signing_material_reset() -> None:
    """Forget cached keys, after a rotation or when a test points SIGNING_DIR elsewhere."""
    _signer.cache_clear()


# --- Rendering --------------------------------------------------------------------------------

_PLACEHOLDER = re.compile(r"\{([A-Za-z_][A-Za-z0-9_]*(?:\.[A-Za-z0-9_\-]+)?)\}")


def _as_text(value: Any) -> str:
    if value is None or isinstance(value, dict):
        return ""
    if isinstance(value, bool):
        return str(_("Yes") if value else _("No"))
    if isinstance(value, list | tuple):
        return ", ".join(_as_text(v) for v in value if _as_text(v))
    if isinstance(value, dt.datetime):
        return timezone.localtime(value).strftime("%d/%m/%Y") if timezone.is_aware(value) else ""
    if isinstance(value, dt.date):
        return value.strftime("%d/%m/%Y")
    return str(value)


def _printable_answers(answers: dict[str, Any], definition: Any) -> dict[str, Any]:
    """Answers as a reader of the document expects them: dates as dd/mm/yyyy and choices by
    their Vietnamese label rather than their stored value."""
    labels: dict[str, dict[Any, str]] = {}
    form = definition.get("form") if isinstance(definition, dict) else None
    fields = form.get("fields") if isinstance(form, dict) else None
    for spec in fields if isinstance(fields, list) else []:
        if isinstance(spec, dict) and isinstance(spec.get("options"), list):
            labels[str(spec.get("name"))] = {
                o.get("value"): _bilingual(o.get("label"))[0] for o in spec["options"] if isinstance(o, dict)
            }
    printable: dict[str, Any] = {}
    for name, value in answers.items():
        if name in labels and value in labels[name]:
            value = labels[name][value] or value
        elif isinstance(value, str) and _ISO_DATE.fullmatch(value):
            try:
                value = dt.date.fromisoformat(value)
            except ValueError:
                pass
        printable[name] = value
    return printable


_ISO_DATE = re.compile(r"\d{4}-\d{2}-\d{2}")


def render_template(template: Any, values: dict[str, Any]) -> str:
    """Replace {name} and {group.key} with looked-up values; anything unknown becomes empty.

    Only dictionary lookups happen here: no attribute access, indexing or formatting
    directives, so a service definition cannot reach into Python objects.
    """
    if not isinstance(template, str):
        return ""

    def lookup(match: re.Match[str]) -> str:
        head, _sep, tail = match.group(1).partition(".")
        value = values.get(head)
        if tail:
            value = value.get(tail) if isinstance(value, dict) else None
        elif isinstance(value, dict):
            return ""
        return _as_text(value)

    return _PLACEHOLDER.sub(lookup, template)


def _bilingual(value: Any) -> tuple[str, str]:
    if isinstance(value, dict):
        vi = str(value.get("vi") or value.get("en") or "")
        en = str(value.get("en") or "")
        return vi, en
    return (str(value) if value is not None else ""), ""


def person_full_name(person: Any) -> str:
    """A person's name as documents print it: the profile's full name, else the account's."""
    from civicore.identity.models import ProfileItem

    item = person.items.filter(key=ProfileItem.Key.FULL_NAME).first()
    return item.value if item else person.user.full_name


@cache
def _register_fonts() -> None:
    from reportlab.pdfbase import pdfmetrics
    from reportlab.pdfbase.ttfonts import TTFont

    pdfmetrics.registerFont(TTFont(FONT_REGULAR, str(FONTS_DIR / "DejaVuSans.ttf")))
    pdfmetrics.registerFont(TTFont(FONT_BOLD, str(FONTS_DIR / "DejaVuSans-Bold.ttf")))


@dataclass
class DocumentContent:
    """What a signed document shows: the issuing agency, a bilingual title, labelled rows and a
    footer with the date, a reference and the QR code that leads to `verify_url`."""

    serial: uuid.UUID
    agency_vi: str
    agency_en: str
    title_vi: str
    title_en: str
    fields: list[tuple[str, str, str]]  # label vi, label en, value
    reference: str
    issued_at: dt.datetime
    verify_url: str


def _qr_png(data: str) -> bytes:
    import segno

    out = io.BytesIO()
    segno.make(data, error="m", micro=False).save(out, kind="png", scale=8, border=2)
    return out.getvalue()


def _render_pdf(content: DocumentContent) -> bytes:
    from reportlab.lib.pagesizes import A4
    from reportlab.lib.units import mm
    from reportlab.lib.utils import ImageReader, simpleSplit
    from reportlab.pdfgen import canvas

    _register_fonts()
    buffer = io.BytesIO()
    pdf = canvas.Canvas(buffer, pagesize=A4, pageCompression=1)
    width, height = A4
    left, right = 20 * mm, width - 20 * mm
    pdf.setTitle(content.title_vi)
    pdf.setAuthor(content.agency_vi)
    pdf.setSubject(f"{SERIAL_MARKER}{content.serial}")
    pdf.setCreator("Civicore")

    y = height - 25 * mm
    pdf.setFont(FONT_BOLD, 12)
    for line in simpleSplit(content.agency_vi.upper(), FONT_BOLD, 12, right - left):
        pdf.drawCentredString(width / 2, y, line)
        y -= 15
    if content.agency_en:
        pdf.setFont(FONT_REGULAR, 9)
        pdf.drawCentredString(width / 2, y, content.agency_en)
        y -= 12
    pdf.line(width / 2 - 30 * mm, y, width / 2 + 30 * mm, y)
    y -= 18 * mm

    pdf.setFont(FONT_BOLD, 18)
    for line in simpleSplit(content.title_vi.upper(), FONT_BOLD, 18, right - left):
        pdf.drawCentredString(width / 2, y, line)
        y -= 22
    if content.title_en:
        pdf.setFont(FONT_REGULAR, 11)
        for line in simpleSplit(content.title_en, FONT_REGULAR, 11, right - left):
            pdf.drawCentredString(width / 2, y, line)
            y -= 14
    y -= 10 * mm

    label_width = 60 * mm
    value_left = left + label_width + 4 * mm
    for label_vi, label_en, value in content.fields:
        pdf.setFont(FONT_BOLD, 10.5)
        pdf.drawString(left, y, label_vi)
        value_lines = simpleSplit(value, FONT_REGULAR, 10.5, right - value_left) or [""]
        pdf.setFont(FONT_REGULAR, 10.5)
        for index, line in enumerate(value_lines):
            pdf.drawString(value_left, y - index * 13, line)
        if label_en:
            pdf.setFont(FONT_REGULAR, 8)
            pdf.drawString(left, y - 11, label_en)
        y -= max(13 * len(value_lines), 24) + 4
        if y < 95 * mm:  # keep clear of the footer and QR code
            pdf.showPage()
            y = height - 25 * mm

    issued = timezone.localtime(content.issued_at).strftime("%d/%m/%Y")
    footer_y = 62 * mm
    pdf.setFont(FONT_REGULAR, 10)
    pdf.drawString(left, footer_y, f"Ngày cấp / Issued on: {issued}")
    pdf.drawString(left, footer_y - 15, f"Số hồ sơ / Reference: {content.reference}")
    pdf.setFont(FONT_REGULAR, 8)
    pdf.drawString(left, footer_y - 30, f"Số hiệu / Serial: {content.serial}")
    pdf.drawString(left, footer_y - 45, "Kiểm tra tính xác thực / Verify at:")
    pdf.drawString(left, footer_y - 56, content.verify_url)

    qr_size = 40 * mm
    pdf.drawImage(
        ImageReader(io.BytesIO(_qr_png(content.verify_url))),
        right - qr_size,
        footer_y - 56,
        width=qr_size,
        height=qr_size,
    )
    pdf.showPage()
    pdf.save()
    return buffer.getvalue()


RESULT_REASON = "Kết quả giải quyết thủ tục hành chính / Result of an administrative procedure"


def _sign_pdf(pdf: bytes, *, agency_name: str, reason: str) -> bytes:
    from pyhanko.pdf_utils.incremental_writer import IncrementalPdfFileWriter
    from pyhanko.sign import fields, signers

    signer = _signer(str(settings.SIGNING_DIR))
    meta = signers.PdfSignatureMetadata(
        field_name="CivicoreSignature",
        subfilter=fields.SigSeedSubFilter.PADES,
        md_algorithm="sha256",
        reason=reason,
        location="Việt Nam",
        name=agency_name,
    )
    writer = IncrementalPdfFileWriter(io.BytesIO(pdf))
    output = outside_event_loop(lambda: signers.sign_pdf(writer, meta, signer=signer))
    return bytes(output.getvalue())


_Result = TypeVar("_Result")


def outside_event_loop(call: Callable[[], _Result]) -> _Result:
    """pyHanko's synchronous API starts its own asyncio loop, which fails inside a thread that
    already runs one (an async caller, or a browser driver's loop). There, run it on a thread
    of its own."""
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return call()
    with ThreadPoolExecutor(max_workers=1) as pool:
        return pool.submit(call).result()


def signed_document(content: DocumentContent, *, reason: str = RESULT_REASON) -> bytes:
    """The document rendered as an A4 PDF and PAdES-signed in the name of its agency.

    Slow (rendering and signing): call it outside any transaction that holds locks.
    SigningNotConfigured when the signing material is missing.
    """
    return _sign_pdf(_render_pdf(content), agency_name=content.agency_vi, reason=reason)


_Stored = TypeVar("_Stored", bound=models.Model)


def signed_document_store(
    entry: _Stored,
    *,
    signed: bytes,
    action: str,
    person: Any,
    agency: Any,
    details: dict[str, Any],
    issued_meanwhile: Callable[[], _Stored | None],
    also: Callable[[], None] | None = None,
) -> _Stored:
    """Register a signed PDF: its file in private storage, then its row (with the SHA-256 of
    the exact bytes, for /verify) and an audit entry, committed together.

    `entry` is an unsaved register row with `serial`, `file` and `sha256` fields and a unique
    constraint that allows one document per subject. When another worker registered one
    meanwhile, that row (`issued_meanwhile()`) is returned and this file removed. `also` runs in
    the same transaction, once the row is written (a count for the scorecards).
    """
    row: Any = entry
    row.sha256 = hashlib.sha256(signed).hexdigest()
    row.file.save(f"{row.serial}.pdf", ContentFile(signed), save=False)
    try:
        with transaction.atomic():
            row.save()
            record(actor=None, action=action, subject=row, person=person, agency=agency, details=details)
            if also is not None:
                also()
    except IntegrityError:
        row.file.delete(save=False)
        winner = issued_meanwhile()
        if winner is None:
            raise
        return winner
    return entry


def verify_url(serial: uuid.UUID) -> str:
    """Where a document's QR code leads: its entry on the public verification page."""
    return f"{settings.SITE_URL}/verify/{serial}/"


def _decided_at(application: Application) -> dt.datetime | None:
    case = getattr(application, "case", None)
    return case.closed_at if case is not None else None


@dataclass(frozen=True)
class ResultRow:
    """One line of a result: its labels, the text printed, the value it came from (a date, a
    choice's label, a number) and the claim name a credential gives it."""

    claim: str
    label_vi: str
    label_en: str
    text: str
    value: Any


@dataclass(frozen=True)
class ResultFields:
    title_vi: str
    title_en: str
    reference: str
    decided_at: dt.datetime | None
    holder_name: str
    rows: list[ResultRow]


_CLAIM = re.compile(r"[a-z][a-z0-9_]{0,62}")


def _claim_name(spec: dict[str, Any], label_en: str, label_vi: str, taken: set[str]) -> str:
    """A stable, machine-readable name for a result line: the definition's `claim`, else the
    answer its value is (`{answers.child_name}` gives child_name), else its English label."""
    given = spec.get("claim")
    name = given if isinstance(given, str) else ""
    if not _CLAIM.fullmatch(name):
        single = _PLACEHOLDER.fullmatch(str(spec.get("value") or "").strip())
        source = single.group(1).rpartition(".")[2] if single else (label_en or label_vi)
        name = re.sub(r"[^a-z0-9]+", "_", source.lower()).strip("_")[:60]
        if not name or not name[0].isalpha():
            name = f"field_{name}" if name else "field"
    base, number = name, 2
    while name in taken:
        name, number = f"{base}_{number}", number + 1
    taken.add(name)
    return name


def _raw_value(template: Any, values: dict[str, Any]) -> Any:
    single = _PLACEHOLDER.fullmatch(str(template or "").strip())
    if single is None:
        return None
    head, _sep, tail = single.group(1).partition(".")
    value = values.get(head)
    if tail:
        value = value.get(tail) if isinstance(value, dict) else None
    return None if isinstance(value, dict) else value


def result_fields(application: Application) -> ResultFields:
    """What an approved application's result says, line by line, as its definition lays out."""
    definition = application.service_version.definition or {}
    result = definition.get("result") if isinstance(definition, dict) else None
    result = result if isinstance(result, dict) else {}
    title_vi, title_en = _bilingual(
        result.get("title") or {"vi": application.service.name_vi, "en": application.service.name_en}
    )
    answers: dict[str, Any] = application.answers if isinstance(application.answers, dict) else {}
    answers = _printable_answers(answers, definition)
    holder_name = person_full_name(application.applicant)
    values: dict[str, Any] = {
        "reference": application.reference or "",
        "decided_at": _decided_at(application),
        "applicant": {"full_name": holder_name},
        "answers": answers,
    }
    rows: list[ResultRow] = []
    taken: set[str] = set()
    raw_fields = result.get("fields")
    for spec in raw_fields if isinstance(raw_fields, list) else []:
        if not isinstance(spec, dict):
            continue
        label_vi, label_en = _bilingual(spec.get("label"))
        text = render_template(spec.get("value"), values)
        rows.append(
            ResultRow(
                claim=_claim_name(spec, label_en, label_vi, taken),
                label_vi=label_vi,
                label_en=label_en,
                text=text,
                value=_raw_value(spec.get("value"), values),
            )
        )
    return ResultFields(
        title_vi=title_vi,
        title_en=title_en,
        reference=application.reference or "",
        decided_at=values["decided_at"],
        holder_name=holder_name,
        rows=rows,
    )


def result_issue(*, application_id: int) -> ResultDocument:
    """Issue the signed result of an approved application; returns the existing one if issued."""
    existing = ResultDocument.objects.filter(application_id=application_id).first()
    if existing is not None:
        return existing
    try:
        application = Application.objects.select_related(
            "applicant__user", "service__agency", "service_version", "case__agency"
        ).get(pk=application_id)
    except Application.DoesNotExist:
        raise NotFound("No such application", code="application_not_found") from None
    case = getattr(application, "case", None)
    if case is None or case.state != case.State.APPROVED:
        raise ResultNotReady()

    agency = case.agency
    fields = result_fields(application)
    rows = [(row.label_vi, row.label_en, row.text) for row in fields.rows]
    title_vi, title_en = fields.title_vi, fields.title_en

    serial = uuid.uuid4()
    issued_at = timezone.now()
    content = DocumentContent(
        serial=serial,
        agency_vi=agency.name_vi,
        agency_en=agency.name_en,
        title_vi=title_vi,
        title_en=title_en,
        fields=rows,
        reference=application.reference or "",
        issued_at=issued_at,
        verify_url=verify_url(serial),
    )
    # Rendering and signing happen outside the transaction: they are slow and need no lock.
    signed = signed_document(content)

    document = ResultDocument(
        serial=serial, application=application, agency=agency, title=title_vi[:300], issued_at=issued_at
    )
    # The OneToOne keeps the application to one document, whoever issued it first.
    return signed_document_store(
        document,
        signed=signed,
        action="result.issued",
        person=application.applicant,
        agency=agency,
        details={"serial": str(serial), "reference": application.reference},
        issued_meanwhile=lambda: ResultDocument.objects.filter(application_id=application_id).first(),
        also=lambda: insights.result_issued(application),
    )
