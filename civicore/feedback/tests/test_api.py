"""The ratings API: a citizen rates their own finished transaction once and reads it back; every
bad input is a 4xx with a stable code and saves nothing."""

from __future__ import annotations

from typing import Any

import pytest
from django.test import Client

from civicore.agencies.tests.factories import back_office_client, make_officer
from civicore.cases.models import Case
from civicore.feedback.models import Rating
from civicore.feedback.tests.factories import decided_application, paid_payment, resolved_report
from civicore.identity.services import api_token_create
from civicore.identity.tests.factories import make_citizen

pytestmark = pytest.mark.django_db

URL = "/api/v1/feedback/ratings"


def token_client(user: Any) -> Client:
    _token, secret = api_token_create(user=user, name="test")
    return Client(headers={"Authorization": f"Bearer {secret}", "Accept-Language": "en"})


def rate(client: Client, body: Any) -> Any:
    return client.post(URL, body, content_type="application/json")


def body(application: Any, **more: Any) -> dict[str, Any]:
    return {"kind": "application", "id": str(application.public_id), "score": 5, **more}


def test_a_citizen_rates_a_decided_application_and_reads_it_back() -> None:
    application = decided_application()
    client = token_client(application.applicant.user)
    assert client.get(f"{URL}/application/{application.public_id}").json()["code"] == "rating_not_found"
    response = rate(client, body(application, score=4, comment="Nhanh, gọi 0912345678 nếu cần"))
    assert response.status_code == 201, response.content
    created = response.json()
    assert created["score"] == 4 and created["score_label"] == "Satisfied"
    assert created["comment"] == "Nhanh, gọi 0912345678 nếu cần"  # their own words, to them
    again = client.get(f"{URL}/application/{application.public_id}")
    assert again.status_code == 200 and again.json() == created


@pytest.mark.parametrize("kind", ["report", "payment"])
def test_reports_and_payments_are_rated_the_same_way(kind: str) -> None:
    citizen = make_citizen()
    subject = resolved_report(citizen.user) if kind == "report" else paid_payment(citizen)
    client = token_client(citizen.user)
    response = rate(client, {"kind": kind, "id": str(subject.public_id), "score": 2})
    assert response.status_code == 201 and response.json()["score_label"] == "Dissatisfied"
    assert client.get(f"{URL}/{kind}/{subject.public_id}").json()["score"] == 2


@pytest.mark.parametrize(
    "change",
    [
        {"score": 0},
        {"score": 6},
        {"score": -3},
        {"score": 4.5},
        {"score": "5"},
        {"score": "five"},
        {"score": True},
        {"score": None},
        {"score": 10**30},
        {"comment": "x" * 1001},
        {"comment": 42},
        {"kind": "case"},
        {"kind": None},
        {"id": "not-a-uuid"},
        {"id": "'; DROP TABLE feedback_rating; --"},
    ],
    ids=repr,
)
def test_bad_input_is_422_invalid_request(change: dict[str, Any]) -> None:
    application = decided_application()
    response = rate(token_client(application.applicant.user), body(application, **change))
    assert response.status_code == 422, response.content
    assert response.json()["code"] == "invalid_request"
    assert not Rating.objects.exists()


def test_a_missing_score_or_a_body_that_is_not_json_is_refused() -> None:
    application = decided_application()
    client = token_client(application.applicant.user)
    missing = rate(client, {"kind": "application", "id": str(application.public_id)})
    assert (missing.status_code, missing.json()["code"]) == (422, "invalid_request")
    broken = client.post(URL, "{not json", content_type="application/json")
    assert (broken.status_code, broken.json()["code"]) == (400, "malformed_body")
    assert not Rating.objects.exists()


def test_an_undecided_application_is_409_not_rateable() -> None:
    application = decided_application(state=Case.State.INFO_REQUESTED)
    response = rate(token_client(application.applicant.user), body(application))
    assert (response.status_code, response.json()["code"]) == (409, "not_rateable")


def test_an_unpaid_payment_is_409_not_rateable() -> None:
    payment = paid_payment(paid=False)
    response = rate(
        token_client(payment.payer.user), {"kind": "payment", "id": str(payment.public_id), "score": 5}
    )
    assert (response.status_code, response.json()["code"]) == (409, "not_rateable")


def test_someone_elses_transaction_is_404_like_one_that_does_not_exist() -> None:
    application = decided_application()
    stranger = token_client(make_citizen().user)
    theirs = rate(stranger, body(application))
    nobodys = rate(stranger, body(application, id="00000000-0000-0000-0000-000000000000"))
    assert theirs.status_code == nobodys.status_code == 404
    assert theirs.json() == nobodys.json()
    rate(token_client(application.applicant.user), body(application))
    assert stranger.get(f"{URL}/application/{application.public_id}").status_code == 404


def test_a_second_rating_is_409_already_rated_and_the_first_stays() -> None:
    application = decided_application()
    client = token_client(application.applicant.user)
    assert rate(client, body(application, score=5)).status_code == 201
    second = rate(client, body(application, score=1))
    assert (second.status_code, second.json()["code"]) == (409, "already_rated")
    assert client.get(f"{URL}/application/{application.public_id}").json()["score"] == 5


def test_an_unknown_kind_in_the_path_is_422() -> None:
    application = decided_application()
    response = token_client(application.applicant.user).get(f"{URL}/case/{application.public_id}")
    assert (response.status_code, response.json()["code"]) == (422, "invalid_request")


def test_only_signed_in_citizens_rate() -> None:
    application = decided_application()
    anonymous = rate(Client(), body(application))
    assert (anonymous.status_code, anonymous.json()["code"]) == (401, "unauthenticated")
    officer = make_officer(application.case.agency, roles=("caseworker",))
    refused = rate(token_client(officer.user), body(application))
    assert (refused.status_code, refused.json()["code"]) == (403, "not_a_citizen")


def test_a_session_needs_the_csrf_token() -> None:
    application = decided_application()
    client = Client(enforce_csrf_checks=True, HTTP_ACCEPT_LANGUAGE="en")
    client.force_login(application.applicant.user)
    refused = rate(client, body(application))
    assert (refused.status_code, refused.json()["code"]) == (403, "csrf_failed")
    client.get(f"/feedback/application/{application.public_id}/")
    token = client.cookies["csrftoken"].value
    accepted = client.post(URL, body(application), content_type="application/json", HTTP_X_CSRFTOKEN=token)
    assert accepted.status_code == 201


def test_the_operations_are_in_the_openapi_document() -> None:
    paths = back_office_client(make_citizen().user).get("/api/v1/openapi.json").json()["paths"]
    assert set(paths[URL]["post"]["responses"]) >= {"201", "401", "403", "404", "409", "422"}
    assert "200" in paths[URL + "/{kind}/{id}"]["get"]["responses"]
