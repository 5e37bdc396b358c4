from __future__ import annotations

import pytest
from django.test import Client

from civicore.agencies.tests.factories import make_officer
from civicore.applications.tests.factories import make_service, make_submitted
from civicore.identity.services import api_token_create
from civicore.identity.tests.factories import make_citizen

pytestmark = pytest.mark.django_db


def _client(user) -> Client:
    _token, secret = api_token_create(user=user, name="test")
    return Client(HTTP_AUTHORIZATION=f"Bearer {secret}")


@pytest.fixture
def setup():
    officer = make_officer()
    application = make_submitted(make_citizen(), make_service(agency=officer.agency))
    return application.case, officer


def test_officer_works_a_case_through_the_api(setup):
    case, officer = setup
    client = _client(officer.user)
    inbox = client.get("/api/v1/cases").json()
    assert [c["id"] for c in inbox["items"]] == [case.pk]
    assert (
        client.post(f"/api/v1/cases/{case.pk}/claim", {}, content_type="application/json").json()["state"]
        == "in_review"
    )
    response = client.post(
        f"/api/v1/cases/{case.pk}/approve", {"message": "OK"}, content_type="application/json"
    )
    assert response.status_code == 200 and response.json()["state"] == "approved"


def test_wrong_step_is_409(setup):
    case, officer = setup
    response = _client(officer.user).post(
        f"/api/v1/cases/{case.pk}/approve", {}, content_type="application/json"
    )
    assert response.status_code == 409 and response.json()["code"] == "transition_not_allowed"


@pytest.mark.parametrize(
    ("method", "suffix"),
    [("get", ""), ("post", "/claim"), ("post", "/approve"), ("post", "/reject"), ("post", "/request_info")],
)
def test_another_agencys_officer_gets_403_on_every_endpoint(setup, method, suffix):
    case, _officer = setup
    response = getattr(_client(make_officer().user), method)(
        f"/api/v1/cases/{case.pk}{suffix}", {"message": "x"}, content_type="application/json"
    )
    assert response.status_code == 403 and response.json()["code"] == "forbidden"


def test_citizens_cannot_use_the_back_office(setup):
    case, _officer = setup
    client = _client(case.application.applicant.user)
    assert client.get("/api/v1/cases").status_code == 403
    assert client.get(f"/api/v1/cases/{case.pk}").json()["code"] == "not_an_officer"


def test_unknown_case_is_404(setup):
    _case, officer = setup
    assert _client(officer.user).get("/api/v1/cases/999999").status_code == 404
