from __future__ import annotations

import os
import uuid
from pathlib import Path

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import Client

from civicore.agencies.tests.factories import AgencyFactory, make_officer
from civicore.audit.models import AuditEntry
from civicore.cases.models import Case
from civicore.credentials.models import ResultDocument
from civicore.credentials.services import result_issue
from civicore.credentials.tests.factories import make_application
from civicore.credentials.tests.helpers import flip_byte_in_signed_range
from civicore.identity.tests.factories import make_citizen

pytestmark = pytest.mark.django_db
BASE = "/api/v1/credentials"


@pytest.fixture
def issued(signing_dir: Path) -> ResultDocument:
    return result_issue(application_id=make_application().pk)


def _upload(client: Client, data: bytes):  # type: ignore[no-untyped-def]
    return client.post(f"{BASE}/verify", {"file": SimpleUploadedFile("doc.pdf", data, "application/pdf")})


def test_verify_upload_valid(client: Client, issued: ResultDocument) -> None:
    response = _upload(client, issued.file.read())
    assert response.status_code == 200
    body = response.json()
    assert body["status"] == "valid"
    assert body["serial"] == str(issued.serial)
    assert body["title"] == issued.title
    assert body["issuer"] == issued.agency.name
    assert body["issued_at"]
    assert set(body) == {"status", "serial", "title", "issuer", "issued_at", "reason"}


def test_verify_upload_tampered_and_unknown(client: Client, issued: ResultDocument) -> None:
    assert _upload(client, flip_byte_in_signed_range(issued.file.read())).json()["status"] == "tampered"
    random = _upload(client, os.urandom(1024)).json()
    assert random["status"] == "unknown" and random["serial"] is None and random["reason"]
    assert _upload(client, b"").json()["status"] == "unknown"


def test_verify_upload_needs_a_file(client: Client) -> None:
    response = client.post(f"{BASE}/verify", {})
    assert response.status_code == 422
    assert response.json()["code"] == "invalid_request"


def test_verify_upload_over_the_limit_is_413(client: Client, settings) -> None:  # type: ignore[no-untyped-def]
    settings.UPLOAD_MAX_BYTES = 1000
    response = _upload(client, b"%PDF-1.7\n" + b"0" * 5000)
    assert response.status_code == 413
    assert response.json()["code"] == "file_too_large"


def test_verify_upload_needs_no_login_and_no_csrf(issued: ResultDocument) -> None:
    strict = Client(enforce_csrf_checks=True)
    assert _upload(strict, issued.file.read()).json()["status"] == "valid"


def test_verify_serial(client: Client, issued: ResultDocument) -> None:
    body = client.get(f"{BASE}/verify/{issued.serial}").json()
    assert body["status"] == "valid" and body["issuer"] == issued.agency.name
    for bad in (str(uuid.uuid4()), "nope", "%27%20OR%201=1"):
        response = client.get(f"{BASE}/verify/{bad}")
        assert response.status_code == 200
        assert response.json()["status"] == "unknown"


def test_result_download_by_applicant(client: Client, issued: ResultDocument) -> None:
    client.force_login(issued.application.applicant.user)
    response = client.get(f"{BASE}/results/{issued.application.public_id}")
    assert response.status_code == 200
    assert response["Content-Type"] == "application/pdf"
    assert b"".join(response.streaming_content) == issued.file.read()
    assert not AuditEntry.objects.filter(action="document.view").exists()


def test_result_download_anonymous_is_401(client: Client, issued: ResultDocument) -> None:
    response = client.get(f"{BASE}/results/{issued.application.public_id}")
    assert response.status_code == 401
    assert response.json()["code"] == "unauthenticated"


def test_result_download_other_citizen_is_404(client: Client, issued: ResultDocument) -> None:
    client.force_login(make_citizen().user)
    response = client.get(f"{BASE}/results/{issued.application.public_id}")
    assert response.status_code == 404
    assert response.json()["code"] == "result_not_found"


def test_result_download_officer_of_other_agency_is_403(client: Client, issued: ResultDocument) -> None:
    client.force_login(make_officer(AgencyFactory()).user)
    response = client.get(f"{BASE}/results/{issued.application.public_id}")
    assert response.status_code == 403
    assert response.json()["code"] == "other_agency"


def test_result_download_inactive_officer_is_404(client: Client, issued: ResultDocument) -> None:
    client.force_login(make_officer(issued.agency, active=False).user)
    assert client.get(f"{BASE}/results/{issued.application.public_id}").status_code == 404


def test_result_download_officer_of_issuing_agency_is_audited(client: Client, issued: ResultDocument) -> None:
    officer = make_officer(issued.agency)
    client.force_login(officer.user)
    response = client.get(f"{BASE}/results/{issued.application.public_id}")
    assert response.status_code == 200
    [entry] = AuditEntry.objects.filter(action="document.view")
    assert entry.person_id == issued.application.applicant_id
    assert entry.agency_id == issued.agency_id


def test_result_not_issued_yet_or_missing_is_404(client: Client, signing_dir: Path) -> None:
    application = make_application(state=Case.State.IN_REVIEW)
    client.force_login(application.applicant.user)
    assert client.get(f"{BASE}/results/{application.public_id}").status_code == 404
    assert client.get(f"{BASE}/results/{uuid.uuid4()}").status_code == 404
    assert client.get(f"{BASE}/results/not-a-uuid").status_code == 422
