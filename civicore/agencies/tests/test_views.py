"""/office/officers/: an agency admin manages their own agency's officers, nobody else does."""

from __future__ import annotations

import pytest
from django.test import Client

from civicore.agencies.models import Officer, Team
from civicore.agencies.tests.factories import back_office_client, make_agency_admin, make_officer
from civicore.audit.models import AuditEntry
from civicore.identity.tests.factories import UserFactory, make_citizen

pytestmark = pytest.mark.django_db
URL = "/office/officers/"


def test_the_admin_sees_their_agencys_officers_and_what_roles_allow() -> None:
    admin = make_agency_admin()
    colleague = make_officer(agency=admin.agency, roles=("decider",))
    stranger = make_officer()
    page = back_office_client(admin.user).get(URL).content.decode()
    assert colleague.user.email in page and "Decider" in page and "case.decide" in page
    assert stranger.user.email not in page


@pytest.mark.parametrize("roles", [(), ("caseworker",), ("decider", "issuer")])
def test_officers_without_agency_admin_are_refused(roles: tuple[str, ...]) -> None:
    officer = make_officer(roles=roles)
    client = back_office_client(officer.user)
    assert client.get(URL).status_code == 403
    assert (
        client.post(f"{URL}{officer.pk}/roles/", {"action": "grant", "role": "agency_admin"}).status_code
        == 403
    )
    officer.refresh_from_db()
    assert list(officer.roles) == sorted(roles)


def test_citizens_and_anonymous_are_refused() -> None:
    client = Client()
    client.force_login(make_citizen().user)
    assert client.get(URL).status_code == 403
    response = Client().get(URL)
    assert response.status_code == 302 and "/accounts/login/" in response["Location"]


def test_another_agencys_officer_is_403_and_unchanged() -> None:
    admin = make_agency_admin()
    stranger = make_officer(roles=("caseworker",))
    client = back_office_client(admin.user)
    for suffix, data in (
        ("roles/", {"action": "grant", "role": "decider"}),
        ("roles/", {"action": "revoke", "role": "caseworker"}),
        ("team/", {"team": ""}),
        ("deactivate/", {}),
    ):
        assert client.post(f"{URL}{stranger.pk}/{suffix}", data).status_code == 403
    assert client.post(f"{URL}999999/deactivate/").status_code == 404
    stranger.refresh_from_db()
    assert stranger.roles == ["caseworker"] and stranger.active
    foreign_team = Team.objects.create(agency=stranger.agency, name="Khác")
    colleague = make_officer(agency=admin.agency)
    assert client.post(f"{URL}{colleague.pk}/team/", {"team": foreign_team.pk}).status_code == 403


def test_add_grant_revoke_and_deactivate_through_the_page() -> None:
    admin = make_agency_admin()
    user = UserFactory()
    client = back_office_client(admin.user)
    assert client.post(f"{URL}add/", {"email": user.email}).status_code == 302
    officer = Officer.objects.get(user=user)
    assert officer.roles == [] and officer.agency == admin.agency
    client.post(f"{URL}{officer.pk}/roles/", {"action": "grant", "role": "caseworker"})
    client.post(f"{URL}{officer.pk}/roles/", {"action": "grant", "role": "issuer"})
    client.post(f"{URL}{officer.pk}/roles/", {"action": "revoke", "role": "issuer"})
    officer.refresh_from_db()
    assert officer.roles == ["caseworker"]
    client.post(f"{URL}teams/add/", {"name": "Tổ thẩm định"})
    team = Team.objects.get(agency=admin.agency)
    client.post(f"{URL}{officer.pk}/team/", {"team": team.pk})
    client.post(f"{URL}{officer.pk}/deactivate/")
    officer.refresh_from_db()
    assert not officer.active and officer.roles == [] and officer.team is None
    actions = list(AuditEntry.objects.filter(actor=admin.user).values_list("action", flat=True))
    assert actions == [
        "agency.officer.add",
        "agency.officer.role_grant",
        "agency.officer.role_grant",
        "agency.officer.role_revoke",
        "agency.team.create",
        "agency.officer.team_set",
        "agency.officer.deactivate",
    ]


def test_refusals_are_explained_on_the_page() -> None:
    admin = make_agency_admin()
    client = back_office_client(admin.user)
    page = client.post(f"{URL}add/", {"email": "nobody@example.test"}, follow=True).content.decode()
    assert "Nobody has an account with this e-mail address." in page
    page = client.post(f"{URL}{admin.pk}/roles/", {"action": "grant", "role": "decider"}, follow=True)
    assert "Another administrator must grant you a role." in page.content.decode()
    page = client.post(f"{URL}{admin.pk}/roles/", {"action": "revoke", "role": "agency_admin"}, follow=True)
    assert "at least one administrator" in page.content.decode()


def test_names_are_shown_as_text_and_the_page_costs_few_queries() -> None:
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    admin = make_agency_admin()
    hostile = '<script>alert("x")</script>'
    Officer.objects.create(user=UserFactory(full_name=hostile), agency=admin.agency, roles=["caseworker"])
    client = back_office_client(admin.user)
    client.get(URL)  # the session's first request records it; count the ones after
    with CaptureQueriesContext(connection) as few:
        page = client.get(URL).content.decode()
    assert "<script>alert" not in page and "&lt;script&gt;" in page
    for _ in range(5):
        make_officer(agency=admin.agency)
    with CaptureQueriesContext(connection) as more:
        client.get(URL)
    assert len(more.captured_queries) == len(few.captured_queries)


def test_the_header_offers_each_officer_what_their_roles_allow() -> None:
    admin = make_agency_admin()
    page = back_office_client(admin.user).get(URL).content.decode()
    assert 'href="/office/officers/"' in page and 'href="/office/systems/"' in page
    assert 'href="/office/"' not in page  # no case.view: no case inbox
    caseworker = make_officer()
    page = back_office_client(caseworker.user).get("/office/").content.decode()
    assert 'href="/office/"' in page and 'href="/office/officers/"' not in page
    assert 'href="/office/systems/"' not in page
