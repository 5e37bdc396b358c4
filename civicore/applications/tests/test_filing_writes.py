"""Filing through the API writes every row a filing needs, consistent with each other and with
the response, however the database gets them written (one statement on PostgreSQL, one at a time
elsewhere); a retried key writes nothing and numbers nothing."""

from __future__ import annotations

import pytest
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext

from civicore.applications.models import Application, ReferenceCounter
from civicore.applications.tests.factories import VALID_ANSWERS, make_service
from civicore.audit.models import AuditEntry
from civicore.cases.models import Case, CaseEvent
from civicore.core.models import IdempotencyRecord, Job
from civicore.identity.services import api_token_create
from civicore.identity.tests.factories import make_citizen
from civicore.notify.models import Notification

pytestmark = pytest.mark.django_db

URL = "/api/v1/applications"


def _client(person) -> Client:
    _token, secret = api_token_create(user=person.user, name="test")
    return Client(HTTP_AUTHORIZATION=f"Bearer {secret}", HTTP_ACCEPT_LANGUAGE="en")


def _file(client: Client, service, key: str | None = None, answers=None, submit: bool = True):
    headers = {"HTTP_IDEMPOTENCY_KEY": key} if key else {}
    body = {
        "service": service.code,
        "answers": VALID_ANSWERS if answers is None else answers,
        "submit": submit,
    }
    return client.post(URL, body, content_type="application/json", **headers)


def test_a_filing_writes_its_case_receipt_email_job_and_audit_entry_all_naming_each_other() -> None:
    person = make_citizen()
    service = make_service(documents=[])
    response = _file(_client(person), service, key="first")
    assert response.status_code == 201, response.content
    body = response.json()

    application = Application.objects.get(public_id=body["id"])
    assert application.status == Application.Status.SUBMITTED
    assert application.reference == body["reference"] and body["reference"].endswith("-000001")
    assert application.answers["child_full_name"] == VALID_ANSWERS["child_full_name"]
    assert application.prefill["applicant_full_name"]["item"] == "full_name"
    case = Case.objects.get(application=application)
    assert body["case_state"] == case.state == "submitted"
    assert body["due_at"] is not None and case.due_at > case.opened_at
    event = CaseEvent.objects.get(case=case)
    assert (event.kind, event.actor_id) == ("opened", person.user.pk)
    receipt = Notification.objects.get(user=person.user)
    assert receipt.subject == f"Application {application.reference} received"
    assert receipt.link == f"/applications/{application.public_id}/"
    job = Job.objects.get(name="notify.email")
    assert job.payload == {"notification_id": receipt.pk} and job.status == Job.Status.PENDING
    entry = AuditEntry.objects.get(action="application.submit")
    assert (entry.subject_type, entry.subject_id) == ("applications.application", str(application.pk))
    assert entry.details["reference"] == application.reference
    assert entry.details["prefill_items"] == application.prefill_items
    assert (entry.actor_id, entry.person_id, entry.agency_id) == (person.user.pk, person.pk, case.agency_id)
    record = IdempotencyRecord.objects.get(owner_id=person.pk, key="first")
    assert record.result_id == str(application.public_id)


def test_a_retried_key_writes_and_numbers_nothing_even_if_its_answers_no_longer_pass() -> None:
    person = make_citizen()
    service = make_service(documents=[])
    client = _client(person)
    first = _file(client, service, key="k").json()
    counter = ReferenceCounter.objects.get().last
    rows = (
        Application.objects.count(),
        Case.objects.count(),
        Notification.objects.count(),
        Job.objects.count(),
    )
    audit_entries = AuditEntry.objects.count()

    again = _file(client, service, key="k")
    broken = _file(client, service, key="k", answers={"child_gender": "neither"})
    for response in (again, broken):
        assert response.status_code == 201, response.content
        assert (response.json()["id"], response.json()["reference"]) == (first["id"], first["reference"])
    assert ReferenceCounter.objects.get().last == counter
    after = (
        Application.objects.count(),
        Case.objects.count(),
        Notification.objects.count(),
        Job.objects.count(),
    )
    assert after == rows and AuditEntry.objects.count() == audit_entries

    fresh = _file(client, service, key="other").json()
    assert fresh["reference"].endswith("-000002")
    invalid = _file(client, service, key="never", answers={"child_gender": "neither"})
    assert invalid.status_code == 422 and invalid.json()["code"] == "invalid_answers"
    assert not IdempotencyRecord.objects.filter(key="never").exists()


def test_a_key_used_for_another_service_is_409() -> None:
    person = make_citizen()
    client = _client(person)
    assert _file(client, make_service(documents=[]), key="k").status_code == 201
    response = _file(client, make_service(documents=[]), key="k")
    assert response.status_code == 409 and response.json()["code"] == "idempotency_key_reused"


def test_filings_without_a_key_are_each_numbered_once() -> None:
    person = make_citizen()
    service = make_service(documents=[])
    client = _client(person)
    references = [_file(client, service).json()["reference"] for _ in range(3)]
    assert [ref[-6:] for ref in references] == ["000001", "000002", "000003"]
    assert Case.objects.count() == Notification.objects.count() == Job.objects.count() == 3


def test_the_number_grows_past_six_digits() -> None:
    person = make_citizen()
    service = make_service(documents=[])
    client = _client(person)
    first = _file(client, service).json()["reference"]
    ReferenceCounter.objects.update(last=999_999)
    reference = _file(client, service).json()["reference"]
    assert reference == first[: -len("000001")] + "1000000"
    assert Notification.objects.filter(subject=f"Application {reference} received").exists()


def test_a_draft_is_written_with_its_start_entry() -> None:
    person = make_citizen()
    service = make_service(documents=[])
    response = _file(_client(person), service, key="draft", submit=False)
    assert response.status_code == 201, response.content
    application = Application.objects.get(public_id=response.json()["id"])
    assert application.status == Application.Status.DRAFT and application.reference is None
    entry = AuditEntry.objects.get(action="application.start")
    assert (entry.subject_id, entry.person_id) == (str(application.pk), person.pk)
    assert not Case.objects.exists() and not Notification.objects.exists()


@pytest.mark.skipif(connection.vendor != "postgresql", reason="the one-statement write is PostgreSQL's")
def test_on_postgresql_a_filing_takes_three_statements() -> None:
    person = make_citizen()
    service = make_service(documents=[])
    client = _client(person)
    _file(client, service)  # the token's first use is recorded; later ones within minutes are not
    with CaptureQueriesContext(connection) as queries:
        assert _file(client, service, key="counted").status_code == 201
    # The encryption key created in this test is looked up again while its creation is not
    # committed, which a test's transaction never is; a running server has it cached.
    statements = [
        q["sql"]
        for q in queries.captured_queries
        if not q["sql"].startswith(("SAVEPOINT", "RELEASE")) and "core_datakey" not in q["sql"]
    ]
    assert len(statements) == 3, [s[:80] for s in statements]
