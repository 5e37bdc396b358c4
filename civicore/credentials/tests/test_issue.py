from __future__ import annotations

import hashlib
import io
from pathlib import Path

import pypdf
import pytest
from pyhanko.keys import load_cert_from_pemder
from pyhanko.pdf_utils.reader import PdfFileReader
from pyhanko.sign.validation import validate_pdf_signature
from pyhanko.sign.validation.status import SignatureCoverageLevel
from pyhanko_certvalidator import ValidationContext

from civicore.audit.models import AuditEntry
from civicore.cases.models import Case
from civicore.core.errors import NotFound
from civicore.credentials.models import ResultDocument
from civicore.credentials.services import (
    ResultNotReady,
    SigningNotConfigured,
    result_issue,
    signing_material_reset,
)
from civicore.credentials.tests.factories import TITLE_EN, TITLE_VI, make_application

pytestmark = pytest.mark.django_db


def test_issued_pdf_is_signed_by_us_and_intact(signing_dir: Path) -> None:
    application = make_application()
    document = result_issue(application_id=application.pk)
    data = document.file.read()

    assert data.startswith(b"%PDF-")
    assert document.sha256 == hashlib.sha256(data).hexdigest()
    reader = PdfFileReader(io.BytesIO(data))
    [signature] = reader.embedded_signatures
    context = ValidationContext(trust_roots=[load_cert_from_pemder(str(signing_dir / "ca.pem"))])
    status = validate_pdf_signature(signature, context)
    assert status.intact and status.valid and status.trusted
    assert status.coverage == SignatureCoverageLevel.ENTIRE_FILE
    assert signature.sig_object["/SubFilter"] == "/ETSI.CAdES.detached"
    assert "Civicore Document Signing" in status.signing_cert.subject.human_friendly


def test_pdf_shows_the_result_in_vietnamese_and_english(signing_dir: Path) -> None:
    application = make_application(answers={"child_full_name": "Trần Thị Ngọc Ánh"})
    document = result_issue(application_id=application.pk)

    text = pypdf.PdfReader(io.BytesIO(document.file.read())).pages[0].extract_text()
    assert TITLE_VI.upper() in text
    assert TITLE_EN in text
    assert "Trần Thị Ngọc Ánh" in text
    assert "Ủy ban nhân dân xã An Bình".upper() in text
    assert application.reference in text
    assert f"/verify/{document.serial}/" in text
    assert document.title == TITLE_VI


def test_pdf_carries_a_qr_code_image(signing_dir: Path) -> None:
    document = result_issue(application_id=make_application().pk)
    page = pypdf.PdfReader(io.BytesIO(document.file.read())).pages[0]
    assert len(page.images) == 1


def test_issuing_is_idempotent_and_audited(signing_dir: Path) -> None:
    application = make_application()
    first = result_issue(application_id=application.pk)
    second = result_issue(application_id=application.pk)

    assert first.pk == second.pk
    assert ResultDocument.objects.count() == 1
    [entry] = AuditEntry.objects.filter(action="result.issued")
    assert entry.person_id == application.applicant_id
    assert entry.agency_id == first.agency_id
    assert entry.subject_id == str(first.pk)


def test_file_is_kept_in_private_storage(signing_dir: Path, settings) -> None:  # type: ignore[no-untyped-def]
    document = result_issue(application_id=make_application().pk)
    assert Path(document.file.path).is_relative_to(Path(settings.MEDIA_ROOT))
    assert not Path(document.file.path).is_relative_to(Path(settings.STATIC_ROOT))


def test_unapproved_application_gets_no_result(signing_dir: Path) -> None:
    application = make_application(state=Case.State.IN_REVIEW)
    with pytest.raises(ResultNotReady):
        result_issue(application_id=application.pk)
    assert not ResultDocument.objects.exists()


def test_unknown_application(signing_dir: Path) -> None:
    with pytest.raises(NotFound):
        result_issue(application_id=987654)


def test_hostile_definition_does_not_break_issuing(signing_dir: Path) -> None:
    from civicore.credentials.tests.factories import make_service

    version = make_service(
        definition={
            "result": {
                "title": {"vi": "Giấy xác nhận {reference.__class__}"},
                "fields": [
                    "not a field",
                    {"label": None, "value": "{answers.__dict__}{answers.x}"},
                    {"label": {"vi": "Ghi chú"}, "value": ["{reference}"]},
                    {"label": {"vi": "Ghi chú"}, "value": "<script>alert(1)</script>" * 50},
                ],
            }
        }
    )
    document = result_issue(application_id=make_application(version=version, answers={"x": {"y": 1}}).pk)
    assert document.title.startswith("Giấy xác nhận")


def test_missing_signing_keys_are_reported(tmp_path: Path, settings) -> None:  # type: ignore[no-untyped-def]
    settings.SIGNING_DIR = tmp_path / "nowhere"
    signing_material_reset()
    with pytest.raises(SigningNotConfigured):
        result_issue(application_id=make_application().pk)
    assert not ResultDocument.objects.exists()


def test_poppler_pdfsig_finds_the_signature_valid_and_a_changed_byte_invalid(
    signing_dir: Path, tmp_path: Path
) -> None:
    """An implementation nobody here wrote checks the signature's integrity (the chain to our own
    root is pyHanko's check above: pdfsig trusts only its NSS store)."""
    import shutil
    import subprocess

    from civicore.credentials.tests.helpers import flip_byte_in_signed_range

    pdfsig = shutil.which("pdfsig")
    if pdfsig is None:
        pytest.fail("poppler-utils is required: make poppler")
    data = result_issue(application_id=make_application().pk).file.read()
    signed = tmp_path / "result.pdf"
    signed.write_bytes(data)
    out = subprocess.run([pdfsig, str(signed)], capture_output=True, text=True, check=False).stdout  # noqa: S603
    assert "Signature Validation: Signature is Valid." in out, out
    assert "Civicore Document Signing" in out and "Total document signed" in out
    changed = tmp_path / "changed.pdf"
    changed.write_bytes(flip_byte_in_signed_range(data))
    out = subprocess.run([pdfsig, str(changed)], capture_output=True, text=True, check=False).stdout  # noqa: S603
    assert "Signature is Valid." not in out, out
