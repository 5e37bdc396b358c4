from __future__ import annotations

import pytest
from django.test import Client

from civicore.applications.models import Application
from civicore.applications.tests.factories import VALID_ANSWERS, make_service, make_submitted, pdf_upload
from civicore.identity.tests.factories import make_citizen

pytestmark = pytest.mark.django_db


def _login(person) -> Client:
    client = Client(HTTP_ACCEPT_LANGUAGE="en")
    client.force_login(person.user)
    return client


def test_citizen_fills_saves_uploads_and_submits_in_the_portal():
    person = make_citizen(full_name="Hoàng Thị Mai")
    service = make_service()
    client = _login(person)
    response = client.post(f"/applications/start/{service.code}/")
    assert response.status_code == 302
    url = response["Location"]
    page = client.get(url).content.decode()
    assert "Hoàng Thị Mai" in page and "National Population Database" in page

    saved = client.post(url, {"child_full_name": "Bé Na", "action": "save"})
    assert saved.status_code == 302
    assert Application.objects.get(applicant=person).answers["child_full_name"] == "Bé Na"

    # Submitting with a bad date keeps what was typed and explains per field.
    bad = client.post(url, {**VALID_ANSWERS, "child_date_of_birth": "2026-13-45", "action": "submit"})
    assert bad.status_code == 422
    body = bad.content.decode()
    assert "There is a problem" in body and "Enter a real date" in body
    assert (
        Application.objects.get(applicant=person).answers["child_full_name"]
        == VALID_ANSWERS["child_full_name"]
    )

    missing = client.post(url, {**VALID_ANSWERS, "action": "submit"})
    assert missing.status_code == 422 and "Upload:" in missing.content.decode()

    application = Application.objects.get(applicant=person)
    client.post(
        f"/applications/{application.public_id}/documents/",
        {"requirement": "birth-certificate", "file": pdf_upload()},
    )
    done = client.post(url, {**VALID_ANSWERS, "action": "submit"})
    assert done.status_code == 302 and done["Location"].endswith("/receipt/")
    receipt = client.get(done["Location"]).content.decode()
    application.refresh_from_db()
    assert application.reference in receipt

    status = client.get(url).content.decode()
    assert application.reference in status and "Submitted" in status


def test_double_submit_files_one_application():
    person = make_citizen()
    service = make_service(documents=[])
    client = _login(person)
    url = client.post(f"/applications/start/{service.code}/")["Location"]
    client.post(url, {**VALID_ANSWERS, "action": "submit"})
    client.post(url, {**VALID_ANSWERS, "action": "submit"})
    assert Application.objects.filter(applicant=person, status="submitted").count() == 1


def test_vietnamese_is_the_default_language():
    person = make_citizen()
    client = Client()
    client.force_login(person.user)
    url = client.post(f"/applications/start/{make_service(documents=[]).code}/")["Location"]
    response = client.post(url, {"action": "submit"})
    assert response.status_code == 422
    assert 'lang="vi"' in response.content.decode()


@pytest.mark.parametrize(
    ("method", "suffix"),
    [("get", "/"), ("post", "/"), ("get", "/receipt/"), ("post", "/documents/"), ("post", "/respond/")],
)
def test_another_citizens_application_is_404(method, suffix):
    application = make_submitted(make_citizen())
    client = _login(make_citizen())
    response = getattr(client, method)(f"/applications/{application.public_id}{suffix}")
    assert response.status_code == 404


def test_another_citizens_document_is_404():
    application = make_submitted(make_citizen())
    document = application.documents.get()
    assert _login(make_citizen()).get(f"/applications/documents/{document.public_id}/").status_code == 404
    owner = _login(application.applicant)
    assert owner.get(f"/applications/documents/{document.public_id}/").status_code == 200


def test_anonymous_is_sent_to_login():
    application = make_submitted(make_citizen())
    response = Client().get(f"/applications/{application.public_id}/")
    assert response.status_code == 302 and "/accounts/login/" in response["Location"]


def test_prefill_needs_the_citizens_choice_and_it_is_recorded_per_application(client) -> None:  # type: ignore[no-untyped-def]
    from civicore.audit.models import AuditEntry

    citizen = make_citizen()
    client.force_login(citizen.user)
    service = make_service(documents=[])
    declined = client.post(f"/applications/start/{service.code}/", {"use_profile": "0"})
    application = Application.objects.get(public_id=declined["Location"].rstrip("/").split("/")[-1])
    assert application.prefill == {} and application.answers == {}
    assert application.prefill_consented_at is None and application.prefill_items == []
    page = client.get(declined["Location"], HTTP_ACCEPT_LANGUAGE="en").content.decode()
    assert "You agreed on" not in page
    agreed = client.post(f"/applications/start/{make_service(documents=[]).code}/", {"use_profile": "1"})
    application = Application.objects.get(public_id=agreed["Location"].rstrip("/").split("/")[-1])
    assert application.prefill_consented_at is not None
    assert application.prefill_items == sorted({p["item"] for p in application.prefill.values()})
    assert application.prefill_items  # the test service pre-fills at least one item
    entry = AuditEntry.objects.get(action="application.start", subject_id=str(application.pk))
    assert entry.details["prefill_items"] == application.prefill_items
    page = client.get(agreed["Location"], HTTP_ACCEPT_LANGUAGE="en").content.decode()
    assert "You agreed on" in page
