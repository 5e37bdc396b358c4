"""Cases need case.view; each workflow step needs the permission its role maps to
(caseworker steps: case.view, supervisor steps: case.decide)."""

from __future__ import annotations

import copy

import pytest
from django.test import Client

from civicore.agencies.tests.factories import back_office_client, make_officer
from civicore.applications.tests.factories import DEFINITION, make_service, make_submitted
from civicore.cases import selectors, services
from civicore.cases.models import Case
from civicore.core.errors import PermissionDenied
from civicore.identity.services import api_token_create
from civicore.identity.tests.factories import make_citizen

pytestmark = pytest.mark.django_db


def _decisions_by_supervisors() -> dict:
    workflow = copy.deepcopy(DEFINITION["workflow"])
    for transition in workflow["transitions"]:
        if transition["name"] in ("approve", "reject"):
            transition["role"] = "supervisor"
    return workflow


@pytest.fixture
def case() -> Case:
    officer = make_officer()
    service = make_service(agency=officer.agency, workflow=_decisions_by_supervisors())
    return make_submitted(make_citizen(), service).case


@pytest.mark.parametrize("roles", [(), ("agency_admin",), ("issuer",)])
def test_officers_without_case_view_see_no_case(case: Case, roles: tuple[str, ...]) -> None:
    officer = make_officer(agency=case.agency, roles=roles)
    with pytest.raises(PermissionDenied) as caught:
        selectors.inbox(officer=officer)
    assert caught.value.code == "missing_permission"
    with pytest.raises(PermissionDenied):
        selectors.case_for_officer(officer=officer, case_id=case.pk)
    with pytest.raises(PermissionDenied):
        services.case_claim(case=case, officer=officer)
    client = back_office_client(officer.user)
    assert client.get("/office/").status_code == 403
    assert client.get(f"/office/cases/{case.pk}/").status_code == 403
    assert client.post(f"/office/cases/{case.pk}/claim/").status_code == 403
    _token, secret = api_token_create(user=officer.user, name="t")
    api = Client(HTTP_AUTHORIZATION=f"Bearer {secret}")
    response = api.get("/api/v1/cases")
    assert response.status_code == 403 and response.json()["code"] == "missing_permission"
    assert Case.objects.get(pk=case.pk).state == "submitted"


def test_supervisor_steps_need_case_decide(case: Case) -> None:
    caseworker = make_officer(agency=case.agency, roles=("caseworker",))
    decider = make_officer(agency=case.agency, roles=("decider",))
    case = services.case_claim(case=case, officer=caseworker)
    with pytest.raises(PermissionDenied) as caught:
        services.case_approve(case=case, officer=caseworker)
    assert caught.value.code == "role_not_allowed" and caught.value.details == {"permission": "case.decide"}
    assert services.officer_steps(case, caseworker) == {"claim", "request_info"}
    assert services.officer_steps(case, decider) == {"claim", "request_info", "approve", "reject"}
    assert services.case_approve(case=case, officer=decider).state == Case.State.APPROVED


def test_the_case_page_offers_only_the_steps_the_roles_allow(case: Case) -> None:
    caseworker = make_officer(agency=case.agency, roles=("caseworker",))
    services.case_claim(case=case, officer=caseworker)
    page = back_office_client(caseworker.user).get(f"/office/cases/{case.pk}/").content.decode()
    assert 'id="action-request-info"' in page and 'id="action-approve"' not in page
    refused = back_office_client(caseworker.user).post(f"/office/cases/{case.pk}/approve/")
    assert refused.status_code == 403
    decider = make_officer(agency=case.agency, roles=("decider",))
    page = back_office_client(decider.user).get(f"/office/cases/{case.pk}/").content.decode()
    assert 'id="action-approve"' in page and 'id="action-reject"' in page


def test_officers_never_take_the_applicants_step(case: Case) -> None:
    everything = make_officer(agency=case.agency, roles=("caseworker", "decider", "issuer", "agency_admin"))
    case = services.case_request_info(
        case=services.case_claim(case=case, officer=everything), officer=everything, message="?"
    )
    with pytest.raises(PermissionDenied):
        services._check(case, "provide_info", officer=everything)
