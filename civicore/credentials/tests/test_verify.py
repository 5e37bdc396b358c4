from __future__ import annotations

import os
from pathlib import Path

import pytest
from django.utils import timezone

from civicore.credentials.models import ResultDocument
from civicore.credentials.selectors import document_lookup, document_verify
from civicore.credentials.services import result_issue
from civicore.credentials.tests.factories import TITLE_VI, make_application
from civicore.credentials.tests.helpers import (
    append_update,
    flip_byte_in_signed_range,
    foreign_signed,
    plain_pdf,
    sign_with,
)

pytestmark = pytest.mark.django_db


@pytest.fixture
def issued(signing_dir: Path) -> tuple[ResultDocument, bytes]:
    document = result_issue(application_id=make_application().pk)
    return document, document.file.read()


def test_issued_document_is_valid(issued: tuple[ResultDocument, bytes]) -> None:
    document, data = issued
    result = document_verify(pdf=data)
    assert result.status == "valid"
    assert result.serial == str(document.serial)
    assert result.title == TITLE_VI
    assert result.issuer == document.agency.name
    assert result.issued_at == document.issued_at


def test_one_flipped_byte_is_tampering(issued: tuple[ResultDocument, bytes]) -> None:
    document, data = issued
    result = document_verify(pdf=flip_byte_in_signed_range(data))
    assert result.status == "tampered"
    assert result.serial == str(document.serial)


def test_content_appended_after_signing_is_tampering(issued: tuple[ResultDocument, bytes]) -> None:
    document, data = issued
    edited = append_update(data)
    assert edited.startswith(data)
    assert document_verify(pdf=edited).status == "tampered"


def test_resigned_by_someone_else_after_editing_is_tampering(
    issued: tuple[ResultDocument, bytes], tmp_path: Path
) -> None:
    _, data = issued
    assert document_verify(pdf=foreign_signed(append_update(data), tmp_path)).status == "tampered"


def test_our_signature_on_a_document_not_in_the_register_is_tampering(signing_dir: Path) -> None:
    result = document_verify(pdf=sign_with(plain_pdf(), signing_dir))
    assert result.status == "tampered"
    assert result.serial is None


def test_truncated_copies_are_never_valid(issued: tuple[ResultDocument, bytes]) -> None:
    document, data = issued
    # The end is cut off but the metadata naming our serial survives: a damaged copy of ours.
    cut_tail = document_verify(pdf=data[:-40])
    assert cut_tail.status == "tampered"
    assert cut_tail.serial == str(document.serial)
    # Half a file says nothing we could trust about where it came from.
    assert document_verify(pdf=data[: len(data) // 2]).status == "unknown"


def test_revoked_document_is_not_valid(issued: tuple[ResultDocument, bytes]) -> None:
    document, data = issued
    ResultDocument.objects.filter(pk=document.pk).update(revoked_at=timezone.now())
    result = document_verify(pdf=data)
    assert result.status == "unknown"
    assert "revoked" in result.reason


@pytest.mark.parametrize(
    "data",
    [
        b"",
        os.urandom(4096),
        b"%PDF-1.7\n" + os.urandom(4096),
        b"%PDF-1.4\n1 0 obj << /Type /Catalog /Pages 2 0 R >> endobj\ntrailer << /Root 1 0 R >>\n%%EOF",
        b"%PDF-" + b"[" * 100_000,
        b"MZ\x90\x00 not a pdf",
    ],
    ids=["empty", "random", "pdf-header-then-noise", "skeleton", "deep-nesting", "executable"],
)
def test_hostile_input_is_unknown(signing_dir: Path, data: bytes) -> None:
    result = document_verify(pdf=data)
    assert result.status == "unknown"
    assert result.reason


def test_unsigned_pdf_is_unknown(signing_dir: Path) -> None:
    result = document_verify(pdf=plain_pdf())
    assert result.status == "unknown"
    assert "signature" in result.reason


def test_pdf_signed_by_another_ca_is_unknown(signing_dir: Path, tmp_path: Path) -> None:
    result = document_verify(pdf=foreign_signed(plain_pdf(), tmp_path))
    assert result.status == "unknown"
    assert result.serial is None


def test_file_over_the_limit_is_unknown_without_parsing(signing_dir: Path, settings) -> None:  # type: ignore[no-untyped-def]
    settings.UPLOAD_MAX_BYTES = 1000
    result = document_verify(pdf=b"%PDF-1.7\n" + b"0" * 2000)
    assert result.status == "unknown"
    assert "large" in result.reason


def test_lookup_by_serial(issued: tuple[ResultDocument, bytes]) -> None:
    document, _ = issued
    assert document_lookup(serial=str(document.serial)).status == "valid"
    assert document_lookup(serial=str(document.serial).upper()).status == "valid"
    assert document_lookup(serial="00000000-0000-4000-8000-000000000000").status == "unknown"
    for bad in ("", "not-a-uuid", "' OR 1=1 --", "x" * 10_000):
        assert document_lookup(serial=bad).status == "unknown"
    ResultDocument.objects.filter(pk=document.pk).update(revoked_at=timezone.now())
    assert document_lookup(serial=str(document.serial)).status == "unknown"


def test_valid_even_after_the_signing_key_is_rotated(
    issued: tuple[ResultDocument, bytes], signing_dir: Path
) -> None:
    from civicore.credentials.services import signing_material_reset, signing_setup

    _, data = issued
    signing_setup(directory=signing_dir, force=True)
    signing_material_reset()
    assert document_verify(pdf=data).status == "valid"
