from __future__ import annotations

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile

from civicore.applications import services
from civicore.applications.models import Application
from civicore.applications.tests.factories import VALID_ANSWERS, make_service, make_submitted, pdf_upload
from civicore.audit.models import AuditEntry
from civicore.cases.models import Case
from civicore.core.models import Job
from civicore.identity.tests.factories import make_citizen
from civicore.notify.models import Notification

pytestmark = pytest.mark.django_db


def test_start_prefills_from_verified_profile_with_provenance():
    person = make_citizen(full_name="Lê Văn Cường")
    application = services.application_start(person=person, service=make_service())
    assert application.answers["applicant_full_name"] == "Lê Văn Cường"
    assert application.answers["applicant_national_id"] == person.national_id
    provenance = application.prefill["applicant_full_name"]
    # The agency's name in both languages: the page shows the one the citizen reads.
    assert (provenance["source"], provenance["source_en"]) == (
        "Cơ sở dữ liệu quốc gia về dân cư",
        "National Population Database",
    )
    assert provenance["agency"]
    assert application.prefill["applicant_full_name"]["verified_at"]


def test_starting_twice_returns_the_same_draft():
    person = make_citizen()
    service = make_service()
    first = services.application_start(person=person, service=service)
    assert services.application_start(person=person, service=service).pk == first.pk


def test_draft_keeps_answers_and_verified_values_cannot_be_overwritten():
    person = make_citizen(full_name="Phạm Minh Đức")
    application = services.application_start(person=person, service=make_service())
    services.application_save_draft(
        application=application, answers={"child_full_name": "Bé Na", "applicant_full_name": "Someone Else"}
    )
    application.refresh_from_db()
    assert application.answers["child_full_name"] == "Bé Na"
    assert application.answers["applicant_full_name"] == "Phạm Minh Đức"


def test_answers_are_encrypted_at_rest():
    from django.db import connection

    person = make_citizen()
    application = services.application_start(person=person, service=make_service())
    services.application_save_draft(application=application, answers={"child_full_name": "Tên Bí Mật"})
    with connection.cursor() as cursor:
        cursor.execute("SELECT answers FROM applications_application WHERE id = %s", [application.pk])
        raw = cursor.fetchone()[0]
    assert "Tên Bí Mật" not in raw and raw.startswith("enc2:")


def test_submit_files_one_case_audit_and_notification():
    person = make_citizen()
    application = make_submitted(person)
    assert application.status == Application.Status.SUBMITTED
    assert application.reference and application.reference.endswith("-000001")
    case = Case.objects.get(application=application)
    assert case.state == Case.State.SUBMITTED and case.due_at > application.submitted_at
    assert AuditEntry.objects.filter(action="application.submit", subject_id=str(application.pk)).count() == 1
    notification = Notification.objects.get(user=person.user)
    assert application.reference in notification.subject
    assert Job.objects.filter(name="notify.email", payload__notification_id=notification.pk).exists()


def test_submitting_twice_files_once():
    person = make_citizen()
    application = make_submitted(person)
    again = services.application_submit(application=application)
    assert again.reference == application.reference
    assert Case.objects.filter(application=application).count() == 1


def test_invalid_answers_give_a_message_per_field_and_save_nothing():
    person = make_citizen()
    application = services.application_start(person=person, service=make_service())
    services.document_attach(application=application, requirement="birth-certificate", upload=pdf_upload())
    with pytest.raises(services.InvalidAnswers) as caught:
        services.application_submit(
            application=application,
            answers={
                "child_full_name": "X",
                "child_date_of_birth": "2026-02-30",
                "child_gender": "robot",
                "birth_weight_grams": "heavy",
            },
        )
    details = caught.value.details
    assert set(details) == {"child_full_name", "child_date_of_birth", "child_gender", "birth_weight_grams"}
    application.refresh_from_db()
    assert application.status == Application.Status.DRAFT and application.reference is None
    assert not Case.objects.exists()


def test_missing_required_document_blocks_submission():
    person = make_citizen()
    application = services.application_start(person=person, service=make_service())
    with pytest.raises(services.MissingDocuments) as caught:
        services.application_submit(application=application, answers=dict(VALID_ANSWERS))
    assert "birth-certificate" in caught.value.details


@pytest.mark.parametrize(
    ("name", "data", "code"),
    [
        ("photo.pdf", b"MZ\x90\x00" + b"\x00" * 100, "file_harmful"),  # a renamed Windows executable
        ("script.pdf", b"#!/bin/sh\nrm -rf /\n", "file_harmful"),
        ("notes.pdf", b"just some text, not a PDF", "file_type_not_allowed"),
        ("empty.pdf", b"", "file_empty"),
        ("big.pdf", b"%PDF-1.4\n" + b"0" * (1024 * 1024 + 10), "file_too_large"),
    ],
)
def test_uploads_are_checked_by_content(name, data, code):
    person = make_citizen()
    application = services.application_start(person=person, service=make_service())
    with pytest.raises(services.DocumentRejected) as caught:
        services.document_attach(
            application=application, requirement="birth-certificate", upload=SimpleUploadedFile(name, data)
        )
    assert caught.value.code == code
    assert not application.documents.exists()


def test_upload_for_unknown_requirement_is_refused():
    person = make_citizen()
    application = services.application_start(person=person, service=make_service())
    with pytest.raises(services.DocumentRejected) as caught:
        services.document_attach(application=application, requirement="../../etc/passwd", upload=pdf_upload())
    assert caught.value.code == "unknown_requirement"


def test_submitted_application_cannot_be_edited():
    person = make_citizen()
    application = make_submitted(person)
    with pytest.raises(services.NotEditable):
        services.application_save_draft(application=application, answers={"child_full_name": "Changed"})


def test_application_keeps_the_definition_version_it_was_filed_under():
    from civicore.catalogue.models import ServiceVersion

    person = make_citizen()
    service = make_service()
    application = make_submitted(person, service)
    definition = dict(service.current_version.definition, version=2)
    newer = ServiceVersion.objects.create(service=service, number=2, definition=definition, checksum="y")
    service.current_version = newer
    service.save()
    application.refresh_from_db()
    assert application.service_version.number == 1


def test_idempotency_key_files_once():
    person = make_citizen()
    service = make_service(documents=[])
    first, created = services.application_file(
        person=person, service=service, answers=dict(VALID_ANSWERS), submit=True, idempotency_key="abc-123"
    )
    second, created_again = services.application_file(
        person=person, service=service, answers=dict(VALID_ANSWERS), submit=True, idempotency_key="abc-123"
    )
    assert first.pk == second.pk and created and not created_again
    assert Application.objects.filter(applicant=person).count() == 1
