from __future__ import annotations

import uuid

import pytest
from django.test import Client

from civicore.agencies.tests.factories import make_officer
from civicore.applications.models import Application
from civicore.applications.tests.factories import VALID_ANSWERS, make_service, make_submitted, pdf_upload
from civicore.identity.services import api_token_create
from civicore.identity.tests.factories import make_citizen

pytestmark = pytest.mark.django_db


def _client(user) -> Client:
    _token, secret = api_token_create(user=user, name="test")
    return Client(HTTP_AUTHORIZATION=f"Bearer {secret}")


def test_file_and_submit_in_one_call_with_idempotency_key():
    person = make_citizen()
    service = make_service(documents=[])
    client = _client(person.user)
    body = {"service": service.code, "answers": VALID_ANSWERS, "submit": True}
    first = client.post(
        "/api/v1/applications", body, content_type="application/json", HTTP_IDEMPOTENCY_KEY="k-1"
    )
    second = client.post(
        "/api/v1/applications", body, content_type="application/json", HTTP_IDEMPOTENCY_KEY="k-1"
    )
    assert first.status_code == 201, first.content
    assert first.json()["id"] == second.json()["id"]
    assert first.json()["case_state"] == "submitted"
    assert first.json()["prefilled"]["applicant_full_name"]["source"]
    assert Application.objects.filter(applicant=person).count() == 1


def test_invalid_answers_are_422_with_field_details():
    person = make_citizen()
    service = make_service(documents=[])
    response = _client(person.user).post(
        "/api/v1/applications",
        {"service": service.code, "answers": {"child_full_name": "A", "child_gender": "x"}, "submit": True},
        content_type="application/json",
    )
    assert response.status_code == 422
    body = response.json()
    assert body["code"] == "invalid_answers"
    assert {"child_full_name", "child_date_of_birth", "child_gender"} <= set(body["details"])
    assert not Application.objects.exists()


def test_vietnamese_messages_when_asked():
    person = make_citizen()
    service = make_service(documents=[])
    response = _client(person.user).post(
        "/api/v1/applications",
        {"service": service.code, "answers": {}, "submit": True},
        content_type="application/json",
        HTTP_ACCEPT_LANGUAGE="en",
    )
    assert response.json()["details"]["child_full_name"] == "This field is required."


def test_unknown_service_is_404():
    person = make_citizen()
    response = _client(person.user).post(
        "/api/v1/applications", {"service": "no-such-service"}, content_type="application/json"
    )
    assert response.status_code == 404
    assert response.json()["code"] == "service_not_found"


def test_no_token_is_401_and_bad_token_is_401():
    assert Client().get("/api/v1/applications").status_code == 401
    bad = Client(HTTP_AUTHORIZATION="Bearer cvc_forged").get("/api/v1/applications")
    assert bad.status_code == 401
    assert bad.json()["code"] == "unauthenticated"


def test_draft_upload_submit_flow_and_list_with_cursor():
    person = make_citizen()
    service = make_service()
    client = _client(person.user)
    created = client.post(
        "/api/v1/applications", {"service": service.code}, content_type="application/json"
    ).json()
    app_id = created["id"]
    patched = client.patch(
        f"/api/v1/applications/{app_id}", {"answers": VALID_ANSWERS}, content_type="application/json"
    )
    assert patched.json()["answers"]["child_full_name"] == VALID_ANSWERS["child_full_name"]
    upload = client.post(
        f"/api/v1/applications/{app_id}/documents", {"requirement": "birth-certificate", "file": pdf_upload()}
    )
    assert upload.status_code == 201, upload.content
    submitted = client.post(f"/api/v1/applications/{app_id}/submit", content_type="application/json")
    assert submitted.status_code == 200, submitted.content
    assert submitted.json()["reference"]
    for _ in range(3):
        client.post("/api/v1/applications", {"service": make_service().code}, content_type="application/json")
    page = client.get("/api/v1/applications?limit=2").json()
    assert len(page["items"]) == 2 and page["next_cursor"]
    rest = client.get(f"/api/v1/applications?limit=2&cursor={page['next_cursor']}").json()
    seen = {i["id"] for i in page["items"]} | {i["id"] for i in rest["items"]}
    assert len(seen) == 4
    assert client.get("/api/v1/applications?cursor=garbage").json()["code"] == "invalid_cursor"


def test_renamed_executable_upload_is_refused_with_code():
    from django.core.files.uploadedfile import SimpleUploadedFile

    person = make_citizen()
    client = _client(person.user)
    app_id = client.post(
        "/api/v1/applications", {"service": make_service().code}, content_type="application/json"
    ).json()["id"]
    response = client.post(
        f"/api/v1/applications/{app_id}/documents",
        {"requirement": "birth-certificate", "file": SimpleUploadedFile("cv.pdf", b"MZ\x90\x00" * 50)},
    )
    assert response.status_code == 422
    assert response.json()["code"] == "file_harmful"


@pytest.mark.parametrize(
    ("method", "suffix"),
    [("get", ""), ("patch", ""), ("post", "/submit"), ("post", "/respond"), ("post", "/documents")],
)
def test_another_citizens_application_is_404_on_every_endpoint(method, suffix):
    owner = make_citizen()
    application = make_submitted(owner)
    intruder = _client(make_citizen().user)
    url = f"/api/v1/applications/{application.public_id}{suffix}"
    payload = {"answers": {}, "message": "hi"} if suffix != "/documents" else None
    if suffix == "/documents":
        response = intruder.post(url, {"requirement": "birth-certificate", "file": pdf_upload()})
    else:
        response = getattr(intruder, method)(url, payload, content_type="application/json")
    assert response.status_code == 404
    assert response.json()["code"] == "not_found"


def test_unknown_id_is_404_and_officer_is_not_a_citizen():
    person = make_citizen()
    assert _client(person.user).get(f"/api/v1/applications/{uuid.uuid4()}").status_code == 404
    officer = make_officer()
    response = _client(officer.user).get("/api/v1/applications")
    assert response.status_code == 403 and response.json()["code"] == "not_a_citizen"


def test_without_consent_nothing_is_prefilled_and_the_choice_is_kept():
    person = make_citizen()
    client = _client(person.user)
    service = make_service(documents=[])
    declined = client.post(
        "/api/v1/applications",
        {"service": service.code, "answers": {}, "use_profile": False},
        content_type="application/json",
    )
    assert declined.status_code == 201, declined.content
    assert declined.json()["prefilled"] == {} and declined.json()["prefill_consented_at"] is None
    agreed = client.post(
        "/api/v1/applications", {"service": service.code, "answers": {}}, content_type="application/json"
    )
    assert agreed.json()["prefilled"] and agreed.json()["prefill_consented_at"]
    stored = Application.objects.get(public_id=agreed.json()["id"])
    assert stored.prefill_items == sorted({p["item"] for p in stored.prefill.values()})
    # Without consent a submission must carry every answer itself, so the form reports what is missing.
    refused = client.post(
        "/api/v1/applications",
        {"service": service.code, "answers": {}, "use_profile": False, "submit": True},
        content_type="application/json",
    )
    assert refused.status_code == 422
