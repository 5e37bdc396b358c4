from __future__ import annotations

import os
from pathlib import Path

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import Client
from django.utils import timezone
from django.utils.html import escape

from civicore.agencies.tests.factories import AgencyFactory, make_officer
from civicore.audit.models import AuditEntry
from civicore.cases.models import Case
from civicore.credentials.models import ResultDocument
from civicore.credentials.services import result_issue
from civicore.credentials.tests.factories import make_application
from civicore.credentials.tests.helpers import append_update
from civicore.identity.tests.factories import make_citizen

pytestmark = pytest.mark.django_db


@pytest.fixture
def issued(signing_dir: Path) -> ResultDocument:
    return result_issue(application_id=make_application().pk)


def _pdf(data: bytes, name: str = "result.pdf") -> SimpleUploadedFile:
    return SimpleUploadedFile(name, data, content_type="application/pdf")


def _status(response) -> str:  # type: ignore[no-untyped-def]
    content = response.content.decode()
    for status in ("valid", "tampered", "unknown"):
        if f'data-status="{status}"' in content:
            return status
    return ""


def test_verify_page_offers_both_ways(client: Client) -> None:
    response = client.get("/verify/")
    assert response.status_code == 200
    content = response.content.decode()
    assert 'type="file"' in content and 'enctype="multipart/form-data"' in content
    assert 'for="id_file"' in content and 'for="id_code"' in content
    assert "csrfmiddlewaretoken" in content
    assert "style=" not in content and "<script>" not in content


def test_uploading_the_issued_pdf_shows_it_is_authentic(client: Client, issued: ResultDocument) -> None:
    response = client.post("/verify/", {"file": _pdf(issued.file.read())})
    assert response.status_code == 200
    assert _status(response) == "valid"
    content = response.content.decode()
    assert "usa-alert--success" in content
    assert issued.agency.name in content
    assert timezone.localtime(issued.issued_at).strftime("%d/%m/%Y") in content


def test_uploading_an_edited_pdf_warns_of_tampering(client: Client, issued: ResultDocument) -> None:
    response = client.post("/verify/", {"file": _pdf(append_update(issued.file.read()))})
    assert _status(response) == "tampered"
    assert "usa-alert--error" in response.content.decode()


def test_uploading_random_bytes_is_unknown(client: Client, signing_dir: Path) -> None:
    response = client.post("/verify/", {"file": _pdf(os.urandom(2048), "x.pdf")})
    assert response.status_code == 200
    assert _status(response) == "unknown"
    assert "usa-alert--warning" in response.content.decode()


def test_missing_file_is_a_form_error_linked_to_the_input(client: Client) -> None:
    response = client.post("/verify/", {})
    assert response.status_code == 400
    content = response.content.decode()
    assert 'id="id_file-error"' in content
    assert 'aria-describedby="id_file-hint id_file-error"' in content
    assert 'aria-invalid="true"' in content


def test_oversized_upload_is_a_form_error(client: Client, settings) -> None:  # type: ignore[no-untyped-def]
    settings.UPLOAD_MAX_BYTES = 1000
    response = client.post("/verify/", {"file": _pdf(b"%PDF-1.7\n" + b"0" * 5000)})
    assert response.status_code == 400
    assert 'id="id_file-error"' in response.content.decode()
    assert _status(response) == ""


@pytest.mark.parametrize(
    "code",
    [
        "{serial}",
        "http://127.0.0.1:8000/verify/{serial}/",
        "  https://dichvucong.example.vn/verify/{serial}  ",
    ],
)
def test_pasting_the_qr_content(client: Client, issued: ResultDocument, code: str) -> None:
    response = client.post("/verify/", {"code": code.format(serial=issued.serial)})
    assert response.status_code == 200
    assert _status(response) == "valid"


@pytest.mark.parametrize("code", ["", "hello", "javascript:alert(1)", "https://x.test/other/123", "<b>x</b>"])
def test_pasting_garbage_is_a_form_error(client: Client, code: str) -> None:
    response = client.post("/verify/", {"code": code})
    assert response.status_code == 400
    content = response.content.decode()
    assert 'id="id_code-error"' in content
    assert "<b>x</b>" not in content


def test_qr_scan_route(client: Client, issued: ResultDocument) -> None:
    response = client.get(f"/verify/{issued.serial}/")
    assert response.status_code == 200 and _status(response) == "valid"
    assert issued.title in response.content.decode()

    unknown = client.get("/verify/00000000-0000-4000-8000-000000000000/")
    assert unknown.status_code == 200 and _status(unknown) == "unknown"
    assert client.get("/verify/not-a-uuid/").status_code == 404


def test_verify_keeps_csrf_protection(issued: ResultDocument) -> None:
    strict = Client(enforce_csrf_checks=True)
    response = strict.post("/verify/", {"code": str(issued.serial)})
    assert response.status_code == 403


def test_verification_page_follows_the_chosen_language(client: Client, issued: ResultDocument) -> None:
    response = client.get(f"/verify/{issued.serial}/", HTTP_ACCEPT_LANGUAGE="en")
    assert response.status_code == 200
    assert '<html lang="en">' in response.content.decode()
    assert escape(issued.agency.name_en) in response.content.decode()


# --- Portal download -----------------------------------------------------------------------------


def test_applicant_downloads_their_result(client: Client, issued: ResultDocument) -> None:
    client.force_login(issued.application.applicant.user)
    response = client.get(f"/results/{issued.application.public_id}/")
    assert response.status_code == 200
    assert response["Content-Type"] == "application/pdf"
    assert "attachment" in response["Content-Disposition"]
    assert b"".join(response.streaming_content) == issued.file.read()


def test_download_needs_login(client: Client, issued: ResultDocument) -> None:
    response = client.get(f"/results/{issued.application.public_id}/")
    assert response.status_code == 302
    assert "/accounts/login/" in response["Location"]


def test_another_citizen_gets_not_found(client: Client, issued: ResultDocument) -> None:
    client.force_login(make_citizen().user)
    assert client.get(f"/results/{issued.application.public_id}/").status_code == 404


def test_officer_of_another_agency_is_forbidden(client: Client, issued: ResultDocument) -> None:
    client.force_login(make_officer(AgencyFactory()).user)
    assert client.get(f"/results/{issued.application.public_id}/").status_code == 403
    assert not AuditEntry.objects.filter(action="document.view").exists()


def test_officer_of_the_issuing_agency_downloads_and_is_audited(
    client: Client, issued: ResultDocument
) -> None:
    officer = make_officer(issued.agency)
    client.force_login(officer.user)
    response = client.get(f"/results/{issued.application.public_id}/")
    assert response.status_code == 200
    [entry] = AuditEntry.objects.filter(action="document.view")
    assert entry.actor_id == officer.user_id
    assert entry.person_id == issued.application.applicant_id


def test_not_yet_issued_is_not_found(client: Client, signing_dir: Path) -> None:
    application = make_application(state=Case.State.IN_REVIEW)
    client.force_login(application.applicant.user)
    assert client.get(f"/results/{application.public_id}/").status_code == 404
