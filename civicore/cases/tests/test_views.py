from __future__ import annotations

import pytest
from django.test import Client

from civicore.agencies.tests.factories import back_office_client, make_officer
from civicore.applications.tests.factories import make_service, make_submitted
from civicore.audit.models import AuditEntry
from civicore.cases.models import Case
from civicore.identity.tests.factories import make_citizen

pytestmark = pytest.mark.django_db


def _login(user) -> Client:
    """The back office needs the second factor; the officer confirmed it at login."""
    return back_office_client(user)


@pytest.fixture
def setup():
    officer = make_officer()
    application = make_submitted(make_citizen(), make_service(agency=officer.agency))
    return application.case, officer


def test_inbox_lists_the_agencys_cases_with_due_dates(setup):
    case, officer = setup
    page = _login(officer.user).get("/office/").content.decode()
    assert case.application.reference in page
    htmx = _login(officer.user).get("/office/?state=approved", HTTP_HX_REQUEST="true").content.decode()
    assert "<html" not in htmx and "No cases match" in htmx


def test_officer_claims_requests_info_and_approves(setup):
    case, officer = setup
    client = _login(officer.user)
    detail = client.get(f"/office/cases/{case.pk}/")
    assert detail.status_code == 200
    assert AuditEntry.objects.filter(action="case.view", person=case.application.applicant).exists()
    client.post(f"/office/cases/{case.pk}/claim/")
    client.post(f"/office/cases/{case.pk}/request_info/", {"message": "Ảnh rõ hơn"})
    assert Case.objects.get(pk=case.pk).state == "info_requested"

    citizen = _login(case.application.applicant.user)
    status = citizen.get(f"/applications/{case.application.public_id}/").content.decode()
    assert "Ảnh rõ hơn" in status
    citizen.post(f"/applications/{case.application.public_id}/respond/", {"message": "Đã gửi"})
    assert Case.objects.get(pk=case.pk).state == "in_review"

    client.post(f"/office/cases/{case.pk}/approve/", {"message": ""})
    assert Case.objects.get(pk=case.pk).state == "approved"


def test_document_view_is_audited(setup):
    case, officer = setup
    document = case.application.documents.get()
    response = _login(officer.user).get(f"/office/cases/{case.pk}/documents/{document.public_id}/")
    assert response.status_code == 200
    assert AuditEntry.objects.filter(action="document.view", person=case.application.applicant).exists()


@pytest.mark.parametrize(
    ("method", "suffix"),
    [
        ("get", "/"),
        ("post", "/claim/"),
        ("post", "/approve/"),
        ("post", "/reject/"),
        ("post", "/request_info/"),
    ],
)
def test_officer_of_another_agency_gets_403(setup, method, suffix):
    case, _officer = setup
    response = getattr(_login(make_officer().user), method)(f"/office/cases/{case.pk}{suffix}")
    assert response.status_code == 403
    assert Case.objects.get(pk=case.pk).state == "submitted"


def test_other_agency_cannot_open_documents(setup):
    case, _officer = setup
    document = case.application.documents.get()
    response = _login(make_officer().user).get(f"/office/cases/{case.pk}/documents/{document.public_id}/")
    assert response.status_code == 403


def test_citizens_cannot_open_the_back_office(setup):
    case, _officer = setup
    assert _login(case.application.applicant.user).get("/office/").status_code == 403


def test_unknown_case_and_action(setup):
    case, officer = setup
    client = _login(officer.user)
    assert client.get("/office/cases/999999/").status_code == 404
    assert client.post(f"/office/cases/{case.pk}/delete-everything/").status_code == 404
