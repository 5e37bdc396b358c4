"""The /business/ pages: acting for a business, invitations, members and roles, and filing in the
portal while acting for one."""

from __future__ import annotations

import datetime as dt

import pytest
from django.test import Client
from django.utils import timezone

from civicore.applications.models import Application
from civicore.applications.tests.factories import make_service
from civicore.audit.models import AuditEntry
from civicore.identity.tests.factories import make_citizen
from civicore.organisations.acting import SESSION_KEY
from civicore.organisations.models import Membership, RoleGrant
from civicore.organisations.tests.factories import (
    add_member,
    admin_of,
    expire,
    grant,
    make_organisation,
    member_with,
    registry_entry,
)

pytestmark = pytest.mark.django_db


def _login(person) -> Client:  # type: ignore[no-untyped-def]
    client = Client(HTTP_ACCEPT_LANGUAGE="en")
    client.force_login(person.user)
    return client


def _acting(client: Client, organisation) -> Client:  # type: ignore[no-untyped-def]
    response = client.post("/business/act-for/", {"organisation": organisation.registration_number})
    assert response.status_code == 302, response
    return client


def test_business_page_lists_memberships_roles_and_invitations() -> None:
    organisation = make_organisation(name="Hộ kinh doanh Thử")
    service = make_service()
    person = member_with(organisation, "file", service)
    inviting = make_organisation(name="Công ty Mời")
    from civicore.organisations.services import member_invite

    member_invite(admin=admin_of(inviting), organisation=inviting, national_id=person.national_id)
    page = _login(person).get("/business/").content.decode()
    assert "Hộ kinh doanh Thử" in page and "File applications" in page and service.name in page
    assert "Công ty Mời" in page and 'value="accept"' in page


def test_accepting_an_invitation_makes_a_member() -> None:
    organisation = make_organisation()
    person = make_citizen()
    from civicore.organisations.services import member_invite

    invitation = member_invite(
        admin=admin_of(organisation), organisation=organisation, national_id=person.national_id
    )
    client = _login(person)
    assert client.post(f"/business/invitations/{invitation.pk}/", {"action": "accept"}).status_code == 302
    invitation.refresh_from_db()
    assert invitation.is_current
    # Someone else's invitation is not found.
    other = make_citizen()
    assert (
        _login(other).post(f"/business/invitations/{invitation.pk}/", {"action": "accept"}).status_code == 404
    )


def test_switching_acting_for_is_shown_in_the_header() -> None:
    organisation = make_organisation(name="Công ty TNHH Sao Mai")
    person = member_with(organisation, "view")
    client = _acting(_login(person), organisation)
    assert client.session[SESSION_KEY]["registration_number"] == organisation.registration_number
    page = client.get("/business/").content.decode()
    assert 'id="acting-for"' in page and "Acting for Công ty TNHH Sao Mai" in page
    client.post("/business/act-for/", {"organisation": ""})
    assert SESSION_KEY not in client.session
    assert 'id="acting-for"' not in client.get("/business/").content.decode()


@pytest.mark.parametrize("number", ["0399999999", "bad<script>", ""])
def test_acting_for_a_business_one_does_not_belong_to_is_refused(number: str) -> None:
    organisation = make_organisation()
    client = _login(make_citizen())
    response = client.post("/business/act-for/", {"organisation": number or organisation.registration_number})
    assert response.status_code == 403
    assert SESSION_KEY not in client.session


def test_registering_a_business_from_the_registry() -> None:
    person = make_citizen()
    record = registry_entry(person, name="Hộ kinh doanh Mới")
    client = _login(person)
    response = client.post("/business/register/", {"registration_number": record.registration_number})
    assert (
        response.status_code == 302
        and f"/business/{record.registration_number}/members/" in response["Location"]
    )
    assert Membership.objects.get(person=person).is_admin
    refused = client.post("/business/register/", {"registration_number": "12"}, follow=True)
    assert "Enter a business registration number" in refused.content.decode()


def test_only_admins_open_the_members_page() -> None:
    organisation = make_organisation()
    member = add_member(organisation).person
    url = f"/business/{organisation.registration_number}/members/"
    assert _login(admin_of(organisation)).get(url).status_code == 200
    assert _login(member).get(url).status_code == 403
    assert _login(admin_of(make_organisation())).get(url).status_code == 403
    assert _login(admin_of(organisation)).get("/business/not-a-number/members/").status_code == 404
    anonymous = Client().get(url)
    assert anonymous.status_code == 302 and "/accounts/login/" in anonymous["Location"]


def test_an_admin_invites_grants_and_revokes_through_the_page() -> None:
    organisation = make_organisation()
    service = make_service()
    admin = admin_of(organisation)
    client = _login(admin)
    base = f"/business/{organisation.registration_number}"
    person = make_citizen()
    client.post(f"{base}/members/invite/", {"national_id": person.national_id})
    membership = Membership.objects.get(person=person)
    assert membership.accepted_at is None
    page = client.get(f"{base}/members/").content.decode()
    assert "Invited (national ID …" + person.national_id[-3:] + ")" in page
    assert person.user.full_name not in page  # not named until they accept
    last_day = (timezone.localdate() + dt.timedelta(days=30)).isoformat()
    client.post(
        f"{base}/grants/",
        {"membership": membership.pk, "permission": "file", "service": service.code, "expires_on": last_day},
    )
    role = RoleGrant.objects.get(membership=membership)
    assert role.service == service and timezone.localtime(role.expires_at).date().isoformat() == last_day
    client.post(f"{base}/grants/{role.pk}/revoke/")
    role.refresh_from_db()
    assert role.revoked_at is not None and role.revoked_by == admin
    assert AuditEntry.objects.filter(action="organisation.role_revoke", actor=admin.user).exists()


@pytest.mark.parametrize(
    ("expires_on", "message"),
    [
        ("not-a-date", "Enter the last day"),
        ("2001-01-01", "must end in the future"),
        ("2999-01-01", "at most one year"),
    ],
)
def test_bad_role_ends_are_explained(expires_on: str, message: str) -> None:
    organisation = make_organisation()
    membership = add_member(organisation)
    client = _login(admin_of(organisation))
    response = client.post(
        f"/business/{organisation.registration_number}/grants/",
        {"membership": membership.pk, "permission": "view", "service": "", "expires_on": expires_on},
        follow=True,
    )
    assert message in response.content.decode()
    assert not RoleGrant.objects.exists()


def test_an_admin_cannot_reach_another_businesss_member_or_grant() -> None:
    mine, theirs = make_organisation(), make_organisation()
    stranger = add_member(theirs)
    role = grant(stranger, "view")
    client = _login(admin_of(mine))
    base = f"/business/{mine.registration_number}"
    assert client.post(f"{base}/members/{stranger.pk}/", {"action": "remove"}).status_code == 404
    assert client.post(f"{base}/grants/{role.pk}/revoke/").status_code == 404
    response = client.post(
        f"{base}/grants/",
        {"membership": stranger.pk, "permission": "file", "service": "", "expires_on": "2030-01-01"},
    )
    assert response.status_code == 404
    stranger.refresh_from_db()
    assert stranger.removed_at is None and RoleGrant.objects.filter(revoked_at__isnull=True).count() == 1


def test_names_from_the_registry_are_shown_as_text() -> None:
    hostile = '<script>alert("x")</script><img src=x onerror=alert(1)>'
    organisation = make_organisation(name=hostile)
    person = member_with(organisation, "view")
    client = _acting(_login(person), organisation)
    for url in ("/business/", "/business/applications/"):
        page = client.get(url).content.decode()
        assert "<script>alert" not in page and "<img src=x" not in page
        assert "&lt;script&gt;" in page
    admin_page = _login(admin_of(organisation)).get(f"/business/{organisation.registration_number}/members/")
    assert "<script>alert" not in admin_page.content.decode()


def test_filing_in_the_portal_while_acting_for_the_business() -> None:
    organisation = make_organisation()
    service = make_service()
    filer = member_with(organisation, "file", service)
    client = _acting(_login(filer), organisation)
    response = client.post(f"/applications/start/{service.code}/")
    assert response.status_code == 302
    application = Application.objects.get()
    assert application.organisation == organisation and application.filed_by == filer
    assert client.get(response["Location"]).status_code == 200
    # "My applications" while acting for the business leads to the business's list.
    listing = client.get("/applications/")
    assert listing.status_code == 302 and listing["Location"] == "/business/applications/"
    assert service.name in client.get("/business/applications/").content.decode()


def test_portal_refuses_to_start_without_a_file_role_and_after_expiry() -> None:
    organisation = make_organisation()
    service = make_service()
    viewer = member_with(organisation, "view", service)
    client = _acting(_login(viewer), organisation)
    assert client.post(f"/applications/start/{service.code}/").status_code == 403
    membership = add_member(organisation)
    role = grant(membership, "file", service)
    filer_client = _acting(_login(membership.person), organisation)
    detail = filer_client.post(f"/applications/start/{service.code}/")["Location"]
    expire(role)
    assert filer_client.get(detail).status_code == 403
    assert filer_client.post(f"/applications/start/{service.code}/").status_code == 403
    assert not Application.objects.filter(organisation__isnull=True).exists()


def test_a_viewer_reads_but_cannot_change_a_business_application() -> None:
    organisation = make_organisation()
    service = make_service()
    filer = member_with(organisation, "file", service)
    filer_client = _acting(_login(filer), organisation)
    detail = filer_client.post(f"/applications/start/{service.code}/")["Location"]
    viewer_client = _acting(_login(member_with(organisation, "view", service)), organisation)
    assert viewer_client.get(detail).status_code == 200
    assert viewer_client.post(detail, {"child_full_name": "Đổi tên"}).status_code == 403
    # Acting for themselves, neither finds it.
    filer_client.post("/business/act-for/", {"organisation": ""})
    assert filer_client.get(detail).status_code == 404
