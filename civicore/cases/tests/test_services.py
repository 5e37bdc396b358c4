from __future__ import annotations

import datetime as dt

import pytest
from django.utils import timezone

from civicore.agencies.tests.factories import make_officer
from civicore.applications.tests.factories import make_service, make_submitted
from civicore.audit.models import AuditEntry
from civicore.audit.services import seal, verify
from civicore.cases import selectors, services
from civicore.cases.models import Case
from civicore.core.errors import PermissionDenied, ValidationFailed
from civicore.core.models import Job
from civicore.identity.tests.factories import make_citizen
from civicore.notify.models import Notification

pytestmark = pytest.mark.django_db


@pytest.fixture
def case_and_officer():
    officer = make_officer()
    application = make_submitted(make_citizen(), make_service(agency=officer.agency))
    return application.case, officer


def test_full_path_claim_request_info_answer_approve(case_and_officer):
    case, officer = case_and_officer
    applicant = case.application.applicant.user
    case = services.case_claim(case=case, officer=officer)
    assert case.state == Case.State.IN_REVIEW and case.assignee == officer
    case = services.case_request_info(case=case, officer=officer, message="Please upload a clearer copy")
    assert case.state == Case.State.INFO_REQUESTED and case.paused_at
    assert Notification.objects.filter(user=applicant, body__contains="clearer copy").exists()
    case = services.case_provide_info(case=case, applicant_user=applicant, message="Here it is")
    assert case.state == Case.State.IN_REVIEW and case.paused_at is None
    case = services.case_approve(case=case, officer=officer)
    assert case.state == Case.State.APPROVED and case.closed_at
    assert Job.objects.filter(name="credentials.issue", payload__application_id=case.application_id).exists()
    actions = list(AuditEntry.objects.values_list("action", flat=True))
    assert {"case.claim", "case.request_info", "case.provide_info", "case.approve"} <= set(actions)
    seal()
    assert verify() is None


def test_reject_needs_a_reason_and_tells_the_citizen(case_and_officer):
    case, officer = case_and_officer
    services.case_claim(case=case, officer=officer)
    with pytest.raises(ValidationFailed):
        services.case_reject(case=case, officer=officer, reason="   ")
    case = services.case_reject(case=case, officer=officer, reason="Giấy tờ không hợp lệ")
    assert case.state == Case.State.REJECTED
    assert Notification.objects.filter(body__contains="Giấy tờ không hợp lệ").exists()


def test_steps_out_of_order_are_refused(case_and_officer):
    case, officer = case_and_officer
    with pytest.raises(services.TransitionNotAllowed):
        services.case_approve(case=case, officer=officer)
    with pytest.raises(services.TransitionNotAllowed):
        services.case_provide_info(case=case, applicant_user=case.application.applicant.user, message="x")


def test_officer_of_another_agency_is_forbidden(case_and_officer):
    case, _officer = case_and_officer
    stranger = make_officer()
    with pytest.raises(PermissionDenied):
        services.case_claim(case=case, officer=stranger)
    with pytest.raises(PermissionDenied):
        selectors.case_for_officer(officer=stranger, case_id=case.pk)


def test_only_the_applicant_answers(case_and_officer):
    case, officer = case_and_officer
    services.case_claim(case=case, officer=officer)
    services.case_request_info(case=case, officer=officer, message="More please")
    with pytest.raises(PermissionDenied):
        services.case_provide_info(case=case, applicant_user=make_citizen().user, message="not mine")


def test_waiting_for_the_citizen_moves_the_due_date(case_and_officer):
    case, officer = case_and_officer
    services.case_claim(case=case, officer=officer)
    case = services.case_request_info(case=case, officer=officer, message="More please")
    due_before = case.due_at
    Case.objects.filter(pk=case.pk).update(paused_at=timezone.now() - dt.timedelta(days=14))
    case = services.case_provide_info(case=case, applicant_user=case.application.applicant.user, message="ok")
    assert case.due_at > due_before


def test_reading_a_case_is_audited_against_the_applicant(case_and_officer):
    case, officer = case_and_officer
    selectors.case_for_officer(officer=officer, case_id=case.pk)
    entry = AuditEntry.objects.get(action="case.view")
    assert entry.person_id == case.application.applicant_id and entry.actor_id == officer.user_id


def test_inbox_shows_only_own_agency_and_filters(case_and_officer, django_assert_max_num_queries):
    case, officer = case_and_officer
    other = make_officer()
    make_submitted(make_citizen(), make_service(agency=other.agency))
    for _ in range(5):
        make_submitted(make_citizen(), make_service(agency=officer.agency))
    with django_assert_max_num_queries(2):
        rows = list(selectors.inbox(officer=officer, state="open"))
        [(c.application.reference, c.application.service.name, c.assignee) for c in rows]
    assert len(rows) == 6 and all(c.agency_id == officer.agency_id for c in rows)
    services.case_claim(case=case, officer=officer)
    assert list(selectors.inbox(officer=officer, assigned="me")) == [Case.objects.get(pk=case.pk)]
    assert len(selectors.inbox(officer=officer, assigned="none")) == 5


def test_supervisor_may_decide(case_and_officer):
    case, officer = case_and_officer
    supervisor = make_officer(agency=officer.agency, roles=("decider",))
    services.case_claim(case=case, officer=officer)
    assert services.case_approve(case=case, officer=supervisor).state == Case.State.APPROVED
