from __future__ import annotations

import datetime as dt

import pytest
from django.utils import timezone

from civicore.applications.tests.factories import make_service
from civicore.audit.models import AuditEntry
from civicore.core.errors import Conflict, NotFound, PermissionDenied, ValidationFailed
from civicore.identity.tests.factories import make_citizen
from civicore.organisations import numbers, selectors, services
from civicore.organisations.models import Membership, Organisation
from civicore.organisations.tests.factories import (
    add_member,
    admin_of,
    expire,
    grant,
    make_organisation,
    registry_entry,
)

pytestmark = pytest.mark.django_db


# --- registration numbers -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "canonical"),
    [
        ("0312345678", "0312345678"),
        (" 0312345678 ", "0312345678"),
        ("0312.345.678", "0312345678"),
        ("0312345678-001", "0312345678-001"),
        ("0312345678001", "0312345678-001"),
    ],
)
def test_registration_numbers_are_written_one_way(raw: str, canonical: str) -> None:
    assert numbers.normalise(raw) == canonical


@pytest.mark.parametrize(
    "raw",
    [
        "",
        "031234567",  # 9 digits
        "03123456789",  # 11 digits
        "0312345678-000",  # no branch zero
        "0312345678-01",
        "0312345678-0001",
        "０３１２３４５６７８",  # full-width digits
        "0312345678<script>",
        "0312345678\x00",
        "1" * 5000,
        None,
        12345678901,
    ],
)
def test_bad_registration_numbers_are_refused(raw: object) -> None:
    with pytest.raises(numbers.InvalidRegistrationNumber) as caught:
        numbers.normalise(raw)
    assert caught.value.code == "invalid_registration_number" and caught.value.status == 422


# --- registering a business -----------------------------------------------------------------------


def test_the_legal_representative_registers_the_business_and_becomes_its_admin() -> None:
    person = make_citizen()
    record = registry_entry(person, number="0311111111-002", name="Chi nhánh Thử")
    organisation = services.organisation_register(person=person, registration_number="0311111111002")
    assert organisation.registration_number == "0311111111-002"
    assert organisation.name == "Chi nhánh Thử" and organisation.verified_source
    membership = Membership.objects.get(organisation=organisation)
    assert membership.person == person and membership.is_admin and membership.is_current
    entry = AuditEntry.objects.get(action="organisation.register")
    assert (
        entry.actor == person.user
        and entry.details["acted_for"]["organisation"] == record.registration_number
    )


def test_only_the_representative_may_register() -> None:
    record = registry_entry(make_citizen())
    with pytest.raises(PermissionDenied) as caught:
        services.organisation_register(person=make_citizen(), registration_number=record.registration_number)
    assert caught.value.code == "not_representative"
    assert not Organisation.objects.exists()


def test_unknown_inactive_and_registered_businesses_are_refused() -> None:
    person = make_citizen()
    with pytest.raises(NotFound) as caught:
        services.organisation_register(person=person, registration_number="0399999998")
    assert caught.value.code == "business_not_found"
    closed = registry_entry(person, active=False)
    with pytest.raises(NotFound):
        services.organisation_register(person=person, registration_number=closed.registration_number)
    organisation = make_organisation(person)
    with pytest.raises(Conflict) as caught_again:
        services.organisation_register(person=person, registration_number=organisation.registration_number)
    assert caught_again.value.code == "organisation_exists"


def test_the_demo_registry_file_is_readable() -> None:
    from civicore.organisations.registry import FileBusinessRegistry

    record = FileBusinessRegistry().lookup("8123456789")
    assert record is not None and record.name == "Hộ kinh doanh Bình An"


# --- members --------------------------------------------------------------------------------------


def test_invited_people_act_only_once_they_accept() -> None:
    organisation = make_organisation()
    admin = admin_of(organisation)
    person = make_citizen()
    invitation = services.member_invite(
        admin=admin, organisation=organisation, national_id=person.national_id
    )
    assert not invitation.is_current
    assert list(selectors.invitations_of(person=person)) == [invitation]
    grant(invitation, "file")
    service = make_service()
    with pytest.raises(selectors.NoBusinessRole):
        selectors.require_grant(person=person, organisation=organisation, service=service, ability="file")
    services.member_accept(person=person, membership=invitation)
    assert selectors.require_grant(person=person, organisation=organisation, service=service, ability="file")
    entry = AuditEntry.objects.get(action="organisation.member_invite")
    assert entry.actor == admin.user and entry.person == person
    assert entry.details["acted_for"]["organisation"] == organisation.registration_number


def test_declined_invitations_end_and_can_be_sent_again() -> None:
    organisation = make_organisation()
    person = make_citizen()
    invitation = services.member_invite(
        admin=admin_of(organisation), organisation=organisation, national_id=person.national_id
    )
    services.member_decline(person=person, membership=invitation)
    with pytest.raises(NotFound):
        services.member_accept(person=person, membership=invitation)
    again = services.member_invite(
        admin=admin_of(organisation), organisation=organisation, national_id=person.national_id
    )
    assert again.pk == invitation.pk and again.removed_at is None and again.accepted_at is None


def test_someone_else_cannot_accept_an_invitation() -> None:
    organisation = make_organisation()
    invitation = services.member_invite(
        admin=admin_of(organisation), organisation=organisation, national_id=make_citizen().national_id
    )
    with pytest.raises(NotFound):
        services.member_accept(person=make_citizen(), membership=invitation)


@pytest.mark.parametrize("national_id", ["", "12345", "07909000123x", "<script>alert(1)</script>", "0" * 500])
def test_bad_national_ids_are_refused(national_id: str) -> None:
    organisation = make_organisation()
    with pytest.raises(ValidationFailed) as caught:
        services.member_invite(
            admin=admin_of(organisation), organisation=organisation, national_id=national_id
        )
    assert caught.value.code == "invalid_national_id"


def test_inviting_nobody_or_a_member_again_is_refused() -> None:
    organisation = make_organisation()
    admin = admin_of(organisation)
    with pytest.raises(NotFound) as caught:
        services.member_invite(admin=admin, organisation=organisation, national_id="079999999999")
    assert caught.value.code == "person_not_found"
    with pytest.raises(Conflict) as again:
        services.member_invite(admin=admin, organisation=organisation, national_id=admin.national_id)
    assert again.value.code == "already_member"


def test_only_the_organisations_admins_manage_it() -> None:
    organisation = make_organisation()
    member = add_member(organisation)
    other_admin = admin_of(make_organisation())
    for intruder in (member.person, other_admin, make_citizen()):
        with pytest.raises(PermissionDenied) as caught:
            services.member_invite(
                admin=intruder, organisation=organisation, national_id=make_citizen().national_id
            )
        assert caught.value.code == "not_organisation_admin"
        with pytest.raises(PermissionDenied):
            services.role_grant(
                admin=intruder,
                organisation=organisation,
                membership=member,
                permission="file",
                service=None,
                expires_at=timezone.now() + dt.timedelta(days=1),
            )
        with pytest.raises(PermissionDenied):
            services.admin_grant(admin=intruder, organisation=organisation, membership=member)
    assert not AuditEntry.objects.filter(
        action__in=["organisation.role_grant", "organisation.admin_grant"]
    ).exists()


def test_an_admin_cannot_manage_another_organisations_member_through_their_own() -> None:
    mine = make_organisation()
    theirs = make_organisation()
    stranger = add_member(theirs)
    with pytest.raises(NotFound):
        services.admin_grant(admin=admin_of(mine), organisation=mine, membership=stranger)
    grant_for_other = grant(add_member(theirs), "view")
    with pytest.raises(NotFound):
        services.role_revoke(admin=admin_of(mine), organisation=mine, grant=grant_for_other)
    assert grant_for_other.membership.grants.get().revoked_at is None


def test_the_last_admin_stays() -> None:
    organisation = make_organisation()
    admin = admin_of(organisation)
    own = Membership.objects.get(organisation=organisation, person=admin)
    with pytest.raises(Conflict) as caught:
        services.admin_revoke(admin=admin, organisation=organisation, membership=own)
    assert caught.value.code == "last_admin"
    with pytest.raises(Conflict):
        services.member_remove(admin=admin, organisation=organisation, membership=own)
    second = add_member(organisation, is_admin=True)
    services.admin_revoke(admin=second.person, organisation=organisation, membership=own)
    entry = AuditEntry.objects.get(action="organisation.admin_revoke")
    assert entry.actor == second.person.user and entry.person == admin
    assert entry.details["before"] == {"is_admin": True} and entry.details["after"] == {"is_admin": False}


def test_removing_a_member_revokes_their_roles_at_once() -> None:
    organisation = make_organisation()
    service = make_service()
    member = add_member(organisation)
    grant(member, "file", service)
    services.member_remove(admin=admin_of(organisation), organisation=organisation, membership=member)
    with pytest.raises(selectors.NoBusinessRole):
        selectors.require_grant(
            person=member.person, organisation=organisation, service=service, ability="file"
        )
    assert not member.grants.filter(revoked_at__isnull=True).exists()
    assert AuditEntry.objects.get(action="organisation.member_remove").details["grants_revoked"] == 1


# --- roles ----------------------------------------------------------------------------------------


def test_a_grant_covers_one_service_or_all_and_file_includes_view() -> None:
    organisation = make_organisation()
    one, other = make_service(), make_service()
    member = add_member(organisation)
    grant(member, "file", one)
    person = member.person
    assert selectors.require_grant(person=person, organisation=organisation, service=one, ability="view")
    with pytest.raises(selectors.NoBusinessRole) as caught:
        selectors.require_grant(person=person, organisation=organisation, service=other, ability="file")
    assert caught.value.code == "no_business_role" and caught.value.status == 403
    with pytest.raises(selectors.NoBusinessRole):
        selectors.require_grant(person=person, organisation=organisation, service=one, ability="pay")
    grant(member, "view")  # every service
    assert selectors.visible_services(person=person, organisation=organisation) is None
    assert selectors.require_grant(person=person, organisation=organisation, service=other, ability="view")


def test_view_does_not_include_file() -> None:
    organisation = make_organisation()
    service = make_service()
    member = add_member(organisation)
    grant(member, "view", service)
    with pytest.raises(selectors.NoBusinessRole):
        selectors.require_grant(
            person=member.person, organisation=organisation, service=service, ability="file"
        )
    assert selectors.visible_services(person=member.person, organisation=organisation) == {service.pk}


def test_an_expired_grant_stops_working_at_once() -> None:
    organisation = make_organisation()
    service = make_service()
    member = add_member(organisation)
    role = grant(member, "file", service)
    assert selectors.require_grant(
        person=member.person, organisation=organisation, service=service, ability="file"
    )
    expire(role)
    with pytest.raises(selectors.NoBusinessRole):
        selectors.require_grant(
            person=member.person, organisation=organisation, service=service, ability="file"
        )
    assert selectors.visible_services(person=member.person, organisation=organisation) == set()


def test_a_revoked_grant_stops_working_and_is_audited() -> None:
    organisation = make_organisation()
    service = make_service()
    member = add_member(organisation)
    role = grant(member, "file", service)
    admin = admin_of(organisation)
    services.role_revoke(admin=admin, organisation=organisation, grant=role)
    with pytest.raises(selectors.NoBusinessRole):
        selectors.require_grant(
            person=member.person, organisation=organisation, service=service, ability="file"
        )
    entry = AuditEntry.objects.get(action="organisation.role_revoke")
    assert entry.actor == admin.user and entry.person == member.person
    assert entry.details["permission"] == "file" and entry.details["service"] == service.code
    assert entry.details["acted_for"] == {
        "organisation": organisation.registration_number,
        "name": organisation.name,
    }


@pytest.mark.parametrize(
    ("delta", "field"),
    [(dt.timedelta(seconds=-1), "expires_at"), (dt.timedelta(days=367), "expires_at")],
)
def test_grants_end_in_the_future_and_within_a_year(delta: dt.timedelta, field: str) -> None:
    organisation = make_organisation()
    with pytest.raises(ValidationFailed) as caught:
        services.role_grant(
            admin=admin_of(organisation),
            organisation=organisation,
            membership=add_member(organisation),
            permission="view",
            service=None,
            expires_at=timezone.now() + delta,
        )
    assert caught.value.code == "invalid_grant" and field in caught.value.details


def test_unknown_permissions_are_refused() -> None:
    organisation = make_organisation()
    with pytest.raises(ValidationFailed) as caught:
        services.role_grant(
            admin=admin_of(organisation),
            organisation=organisation,
            membership=add_member(organisation),
            permission="admin",
            service=None,
            expires_at=timezone.now() + dt.timedelta(days=1),
        )
    assert caught.value.code == "invalid_permission"


def test_granting_the_same_role_again_replaces_it() -> None:
    organisation = make_organisation()
    service = make_service()
    member = add_member(organisation)
    first = grant(member, "file", service, days=10)
    second = grant(member, "file", service, days=100)
    first.refresh_from_db()
    assert first.revoked_at is not None and second.revoked_at is None
    entry = AuditEntry.objects.filter(action="organisation.role_grant").latest("id")
    assert entry.details["replaces"] == [first.pk] and entry.details["expires_at"]
