"""Applications filed for a business: who may start, file, see and answer them, and what the
audit log says about it."""

from __future__ import annotations

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from civicore.agencies.tests.factories import make_officer
from civicore.applications import selectors as application_selectors
from civicore.applications import services as application_services
from civicore.applications.models import Application
from civicore.applications.tests.factories import VALID_ANSWERS, make_service, pdf_upload
from civicore.audit.models import AuditEntry
from civicore.cases.services import case_claim, case_provide_info, case_request_info
from civicore.core.errors import NotFound
from civicore.identity.tests.factories import make_citizen
from civicore.organisations.selectors import NoBusinessRole
from civicore.organisations.tests.factories import add_member, expire, grant, make_organisation, member_with

pytestmark = pytest.mark.django_db


def _file(person, organisation, service) -> Application:  # type: ignore[no-untyped-def]
    draft = application_services.application_start(person=person, service=service, organisation=organisation)
    application_services.document_attach(
        application=draft, requirement="birth-certificate", upload=pdf_upload()
    )
    return application_services.application_submit(
        application=draft, answers=dict(VALID_ANSWERS), actor=person
    )


def test_a_member_with_file_files_for_the_business_and_the_audit_names_both() -> None:
    organisation = make_organisation()
    service = make_service()
    filer = member_with(organisation, "file", service)
    application = _file(filer, organisation, service)
    assert application.organisation == organisation and application.filed_by == filer
    assert application.case.state == "submitted"
    for action in ("application.start", "application.submit"):
        entry = AuditEntry.objects.get(action=action)
        assert entry.actor == filer.user
        assert entry.details["acted_for"] == {
            "organisation": organisation.registration_number,
            "name": organisation.name,
        }


def test_view_only_members_and_strangers_cannot_start() -> None:
    organisation = make_organisation()
    service = make_service()
    viewer = member_with(organisation, "view", service)
    for person in (viewer, make_citizen()):
        with pytest.raises(NoBusinessRole) as caught:
            application_services.application_start(person=person, service=service, organisation=organisation)
        assert caught.value.code == "no_business_role"
    assert not Application.objects.exists()


def test_a_grant_for_another_service_does_not_count() -> None:
    organisation = make_organisation()
    filer = member_with(organisation, "file", make_service())
    with pytest.raises(NoBusinessRole):
        application_services.application_file(
            person=filer,
            service=make_service(documents=[]),
            answers=VALID_ANSWERS,
            submit=True,
            idempotency_key=None,
            organisation=organisation,
        )


def test_a_draft_cannot_be_filed_once_the_grant_has_expired() -> None:
    organisation = make_organisation()
    service = make_service()
    membership = add_member(organisation)
    role = grant(membership, "file", service)
    draft = application_services.application_start(
        person=membership.person, service=service, organisation=organisation
    )
    application_services.document_attach(
        application=draft, requirement="birth-certificate", upload=pdf_upload()
    )
    expire(role)
    with pytest.raises(NoBusinessRole):
        application_services.application_submit(
            application=draft, answers=dict(VALID_ANSWERS), actor=membership.person
        )
    draft.refresh_from_db()
    assert draft.status == Application.Status.DRAFT and draft.reference is None


def test_a_colleague_with_file_may_finish_a_draft_and_becomes_its_filer() -> None:
    organisation = make_organisation()
    service = make_service()
    starter = member_with(organisation, "file", service)
    finisher = member_with(organisation, "file", service)
    draft = application_services.application_start(person=starter, service=service, organisation=organisation)
    application_services.document_attach(
        application=draft, requirement="birth-certificate", upload=pdf_upload()
    )
    filed = application_services.application_submit(
        application=draft, answers=dict(VALID_ANSWERS), actor=finisher
    )
    assert filed.applicant == starter and filed.filed_by == finisher
    assert AuditEntry.objects.get(action="application.submit").actor == finisher.user


def test_business_filings_are_not_personal_and_personal_ones_not_the_business() -> None:
    organisation = make_organisation()
    service = make_service()
    filer = member_with(organisation, "file", service)
    business = _file(filer, organisation, service)
    personal = _file(filer, None, service)
    assert personal.organisation is None and personal.filed_by == filer
    assert list(application_selectors.applications_of(person=filer)) == [personal]
    assert list(application_selectors.applications_of(person=filer, organisation=organisation)) == [business]
    with pytest.raises(NotFound):
        application_selectors.application_of(person=filer, public_id=business.public_id)
    with pytest.raises(NotFound):
        application_selectors.application_of(
            person=filer, public_id=personal.public_id, organisation=organisation
        )


def test_viewers_see_the_services_they_hold_and_their_reading_is_audited() -> None:
    organisation = make_organisation()
    seen, hidden = make_service(), make_service()
    filer = member_with(organisation, "file")  # every service
    visible = _file(filer, organisation, seen)
    _file(filer, organisation, hidden)
    viewer = member_with(organisation, "view", seen)
    assert list(application_selectors.applications_of(person=viewer, organisation=organisation)) == [visible]
    opened = application_selectors.application_of(
        person=viewer, public_id=visible.public_id, organisation=organisation
    )
    assert opened == visible
    entry = AuditEntry.objects.get(action="application.view")
    assert entry.actor == viewer.user and entry.person == filer
    assert entry.details["acted_for"]["organisation"] == organisation.registration_number
    with pytest.raises(NoBusinessRole):
        application_selectors.application_of(
            person=viewer, public_id=visible.public_id, organisation=organisation, change=True
        )


def test_another_organisations_member_finds_nothing() -> None:
    organisation = make_organisation()
    service = make_service()
    application = _file(member_with(organisation, "file", service), organisation, service)
    other = make_organisation()
    outsider = member_with(other, "view")
    assert not application_selectors.applications_of(person=outsider, organisation=other).exists()
    with pytest.raises(NotFound):
        application_selectors.application_of(
            person=outsider, public_id=application.public_id, organisation=other
        )


def test_the_business_answers_an_information_request_through_a_filer() -> None:
    organisation = make_organisation()
    service = make_service()
    officer = make_officer(agency=service.agency)
    starter = member_with(organisation, "file", service)
    colleague = member_with(organisation, "file", service)
    viewer = member_with(organisation, "view", service)
    application = _file(starter, organisation, service)
    case = case_request_info(
        case=case_claim(case=application.case, officer=officer), officer=officer, message="?"
    )
    from civicore.core.errors import PermissionDenied

    with pytest.raises(PermissionDenied):
        case_provide_info(case=case, applicant_user=viewer.user, message="I only view")
    case = case_provide_info(case=case, applicant_user=colleague.user, message="Đây ạ")
    assert case.state == "in_review"
    entry = AuditEntry.objects.get(action="case.provide_info")
    assert (
        entry.actor == colleague.user
        and entry.details["acted_for"]["organisation"] == organisation.registration_number
    )


def test_filing_for_oneself_touches_no_business_table() -> None:
    person = make_citizen()
    service = make_service(documents=[])
    with CaptureQueriesContext(connection) as queries:
        application, created = application_services.application_file(
            person=person, service=service, answers=VALID_ANSWERS, submit=True, idempotency_key="k"
        )
    assert created and application.filed_by_id == person.pk and application.organisation_id is None
    assert not [q["sql"] for q in queries.captured_queries if "organisations_" in q["sql"]]
    details = AuditEntry.objects.get(action="application.submit").details
    assert "acted_for" not in details


def test_idempotency_keys_are_kept_apart_per_business() -> None:
    organisation = make_organisation()
    service = make_service(documents=[])
    filer = member_with(organisation, "file", service)
    arguments = {"service": service, "answers": VALID_ANSWERS, "submit": False, "idempotency_key": "same"}
    personal, _created = application_services.application_file(person=filer, **arguments)
    business, created = application_services.application_file(
        person=filer, organisation=organisation, **arguments
    )
    again, created_again = application_services.application_file(
        person=filer, organisation=organisation, **arguments
    )
    assert created and not created_again
    assert personal.pk != business.pk == again.pk and business.organisation == organisation
