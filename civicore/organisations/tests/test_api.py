"""The applications API acting for a business with the X-Acting-For header."""

from __future__ import annotations

import pytest
from django.test import Client

from civicore.applications.models import Application
from civicore.applications.tests.factories import VALID_ANSWERS, make_service
from civicore.audit.models import AuditEntry
from civicore.identity.services import api_token_create
from civicore.identity.tests.factories import make_citizen
from civicore.organisations.tests.factories import add_member, expire, grant, make_organisation, member_with

pytestmark = pytest.mark.django_db
URL = "/api/v1/applications"


def _client(person, acting_for: str | None = None) -> Client:  # type: ignore[no-untyped-def]
    _token, secret = api_token_create(user=person.user, name="test")
    headers = {"HTTP_AUTHORIZATION": f"Bearer {secret}"}
    if acting_for is not None:
        headers["HTTP_X_ACTING_FOR"] = acting_for
    return Client(**headers)


def _file(client: Client, service, **extra):  # type: ignore[no-untyped-def]
    body = {"service": service.code, "answers": VALID_ANSWERS, "submit": True, **extra}
    return client.post(URL, body, content_type="application/json")


@pytest.fixture
def business():  # type: ignore[no-untyped-def]
    organisation = make_organisation()
    service = make_service(documents=[])
    return organisation, service


def test_filing_for_the_business_with_a_file_role(business) -> None:  # type: ignore[no-untyped-def]
    organisation, service = business
    filer = member_with(organisation, "file", service)
    response = _file(_client(filer, organisation.registration_number), service)
    assert response.status_code == 201, response.content
    body = response.json()
    assert body["organisation"] == organisation.registration_number and body["case_state"] == "submitted"
    application = Application.objects.get(public_id=body["id"])
    assert application.organisation == organisation and application.filed_by == filer
    entry = AuditEntry.objects.get(action="application.submit")
    assert (
        entry.actor == filer.user
        and entry.details["acted_for"]["organisation"] == organisation.registration_number
    )


def test_the_header_takes_the_number_in_any_accepted_spelling(business) -> None:  # type: ignore[no-untyped-def]
    organisation, service = business
    filer = member_with(organisation, "file", service)
    spelled = " " + organisation.registration_number[:4] + "." + organisation.registration_number[4:]
    assert _file(_client(filer, spelled), service).status_code == 201


def test_a_view_role_may_not_file(business) -> None:  # type: ignore[no-untyped-def]
    organisation, service = business
    viewer = member_with(organisation, "view", service)
    response = _file(_client(viewer, organisation.registration_number), service)
    assert response.status_code == 403 and response.json()["code"] == "no_business_role"
    assert not Application.objects.exists()


@pytest.mark.parametrize("number", ["0399999999", None])
def test_unknown_businesses_and_non_members_are_refused_alike(business, number) -> None:  # type: ignore[no-untyped-def]
    organisation, service = business
    outsider = make_citizen()
    response = _file(_client(outsider, number or organisation.registration_number), service)
    assert response.status_code == 403 and response.json()["code"] == "no_business_role"


@pytest.mark.parametrize(
    "header", ["<script>alert(1)</script>", "0312345678-000", "x" * 3000, "'; DROP TABLE --"]
)
def test_malformed_headers_are_422(business, header: str) -> None:  # type: ignore[no-untyped-def]
    _organisation, service = business
    response = _file(_client(make_citizen(), header), service)
    assert response.status_code == 422 and response.json()["code"] == "invalid_registration_number"
    assert "<script>" not in response.content.decode()


def test_an_expired_role_is_refused_at_once(business) -> None:  # type: ignore[no-untyped-def]
    organisation, service = business
    membership = add_member(organisation)
    role = grant(membership, "file", service)
    client = _client(membership.person, organisation.registration_number)
    assert _file(client, service).status_code == 201
    expire(role)
    response = _file(client, service)
    assert response.status_code == 403 and response.json()["code"] == "no_business_role"


def test_list_and_detail_for_viewers_and_not_for_others(business) -> None:  # type: ignore[no-untyped-def]
    organisation, service = business
    filer = member_with(organisation, "file", service)
    filed = _file(_client(filer, organisation.registration_number), service).json()
    personal = _file(_client(filer), service).json()
    viewer = member_with(organisation, "view", service)
    client = _client(viewer, organisation.registration_number)
    listed = client.get(URL).json()["items"]
    assert [item["id"] for item in listed] == [filed["id"]] and listed[0]["organisation"]
    detail = client.get(f"{URL}/{filed['id']}")
    assert detail.status_code == 200 and detail.json()["answers"]["child_full_name"]
    assert client.get(f"{URL}/{personal['id']}").status_code == 404
    assert AuditEntry.objects.filter(action="application.view", actor=viewer.user).count() == 1
    # Acting for themselves, the filer sees only their personal filing.
    own = _client(filer).get(URL).json()["items"]
    assert [item["id"] for item in own] == [personal["id"]] and own[0]["organisation"] is None
    # A member of another business finds nothing of this one's.
    other = make_organisation()
    outsider = member_with(other, "view")
    assert _client(outsider, other.registration_number).get(f"{URL}/{filed['id']}").status_code == 404
    assert _client(outsider, organisation.registration_number).get(URL).status_code == 403


def test_viewers_cannot_change_or_submit(business) -> None:  # type: ignore[no-untyped-def]
    organisation, service = business
    filer = member_with(organisation, "file", service)
    draft = _file(_client(filer, organisation.registration_number), service, submit=False).json()
    viewer = _client(member_with(organisation, "view", service), organisation.registration_number)
    patch = viewer.patch(f"{URL}/{draft['id']}", {"answers": {}}, content_type="application/json")
    assert patch.status_code == 403 and patch.json()["code"] == "no_business_role"
    assert viewer.post(f"{URL}/{draft['id']}/submit", {}, content_type="application/json").status_code == 403
    submitted = _client(filer, organisation.registration_number).post(
        f"{URL}/{draft['id']}/submit", {}, content_type="application/json"
    )
    assert submitted.status_code == 200 and submitted.json()["status"] == "submitted"


def test_a_list_without_any_current_role_is_empty(business) -> None:  # type: ignore[no-untyped-def]
    organisation, service = business
    filer = member_with(organisation, "file", service)
    _file(_client(filer, organisation.registration_number), service)
    member = add_member(organisation).person
    response = _client(member, organisation.registration_number).get(URL)
    assert response.status_code == 200 and response.json()["items"] == []


def test_list_queries_do_not_grow_with_applications(business, django_assert_max_num_queries) -> None:  # type: ignore[no-untyped-def]
    organisation, service = business
    filer = member_with(organisation, "file", service)
    client = _client(filer, organisation.registration_number)
    for _ in range(5):
        _file(client, service)
    with django_assert_max_num_queries(8):
        assert len(client.get(URL).json()["items"]) == 5


def test_a_colleague_below_the_services_level_cannot_submit_a_verified_colleagues_draft() -> None:
    from civicore.identity.models import Person

    organisation = make_organisation()
    service = make_service(documents=[], assurance_level=2)
    starter = member_with(organisation, "file", service)  # level 2, like every make_citizen()
    colleague = member_with(organisation, "file", service)
    Person.objects.filter(pk=colleague.pk).update(
        assurance_level=1, assurance_verified_at=None, assurance_verified_by=None
    )
    draft = _client(starter, organisation.registration_number).post(
        URL, {"service": service.code, "answers": VALID_ANSWERS}, content_type="application/json"
    )
    assert draft.status_code == 201, draft.content
    response = _client(colleague, organisation.registration_number).post(
        f"{URL}/{draft.json()['id']}/submit", {}, content_type="application/json"
    )
    assert response.status_code == 403
    assert response.json()["code"] == "assurance_level_too_low"
    assert Application.objects.get(public_id=draft.json()["id"]).status == Application.Status.DRAFT
