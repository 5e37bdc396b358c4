from __future__ import annotations

import pytest

from civicore.agencies import services
from civicore.agencies.models import Officer, Team
from civicore.agencies.tests.factories import AgencyFactory, make_agency_admin, make_officer
from civicore.audit.models import AuditEntry
from civicore.core.errors import Conflict, NotFound, PermissionDenied, ValidationFailed
from civicore.identity.tests.factories import UserFactory

pytestmark = pytest.mark.django_db


def test_an_admin_adds_an_officer_with_no_roles() -> None:
    admin = make_agency_admin()
    user = UserFactory(email="Lan.Nguyen@example.test")
    officer = services.officer_add(admin=admin, email=" lan.nguyen@EXAMPLE.test ")
    assert officer.user == user and officer.agency == admin.agency and officer.roles == []
    assert officer.permissions == frozenset()
    entry = AuditEntry.objects.get(action="agency.officer.add")
    assert entry.actor == admin.user and entry.agency == admin.agency
    assert entry.details["before"] == {} and entry.details["after"]["roles"] == []


def test_adding_unknown_or_taken_users_is_refused() -> None:
    admin = make_agency_admin()
    with pytest.raises(NotFound) as caught:
        services.officer_add(admin=admin, email="nobody@example.test")
    assert caught.value.code == "user_not_found"
    with pytest.raises(ValidationFailed):
        services.officer_add(admin=admin, email="")
    elsewhere = make_officer()
    with pytest.raises(Conflict) as caught_elsewhere:
        services.officer_add(admin=admin, email=elsewhere.user.email)
    assert caught_elsewhere.value.code == "officer_elsewhere"
    colleague = make_officer(agency=admin.agency)
    with pytest.raises(Conflict) as caught_again:
        services.officer_add(admin=admin, email=colleague.user.email)
    assert caught_again.value.code == "already_officer"


def test_a_former_officer_comes_back_without_their_old_roles() -> None:
    admin = make_agency_admin()
    officer = make_officer(agency=admin.agency, roles=("decider",))
    services.officer_deactivate(admin=admin, officer=officer)
    back = services.officer_add(admin=admin, email=officer.user.email)
    assert back.pk == officer.pk and back.active and back.roles == []


@pytest.mark.parametrize("roles", [(), ("caseworker",), ("decider", "issuer")])
def test_only_agency_admins_manage_officers(roles: tuple[str, ...]) -> None:
    actor = make_officer(roles=roles)
    target = make_officer(agency=actor.agency)
    with pytest.raises(PermissionDenied) as caught:
        services.officer_role_grant(admin=actor, officer=target, role="decider")
    assert caught.value.code == "not_agency_admin"
    with pytest.raises(PermissionDenied):
        services.officer_add(admin=actor, email=UserFactory().email)
    with pytest.raises(PermissionDenied):
        services.officer_deactivate(admin=actor, officer=target)
    target.refresh_from_db()
    assert target.roles == ["caseworker"] and target.active


def test_an_admin_manages_their_own_agency_only() -> None:
    admin = make_agency_admin()
    stranger = make_officer(roles=("caseworker",))
    for call in (
        lambda: services.officer_role_grant(admin=admin, officer=stranger, role="decider"),
        lambda: services.officer_role_revoke(admin=admin, officer=stranger, role="caseworker"),
        lambda: services.officer_deactivate(admin=admin, officer=stranger),
        lambda: services.officer_team_set(admin=admin, officer=stranger, team=None),
    ):
        with pytest.raises(PermissionDenied) as caught:
            call()
        assert caught.value.code == "other_agency"
    stranger.refresh_from_db()
    assert stranger.roles == ["caseworker"] and stranger.active
    assert not AuditEntry.objects.exists()


def test_granting_and_revoking_roles_is_audited_with_before_and_after() -> None:
    admin = make_agency_admin()
    officer = make_officer(agency=admin.agency, roles=("caseworker",))
    services.officer_role_grant(admin=admin, officer=officer, role="decider")
    officer.refresh_from_db()
    assert officer.roles == ["caseworker", "decider"] and officer.has_perm("case.decide")
    services.officer_role_revoke(admin=admin, officer=officer, role="caseworker")
    officer.refresh_from_db()
    assert officer.roles == ["decider"]
    grant, revoke = AuditEntry.objects.filter(action__startswith="agency.officer.role_").order_by("id")
    assert grant.action == "agency.officer.role_grant" and grant.actor == admin.user
    assert grant.details["before"]["roles"] == ["caseworker"]
    assert grant.details["after"]["roles"] == ["caseworker", "decider"]
    assert revoke.details["role"] == "caseworker" and revoke.details["after"]["roles"] == ["decider"]
    # Granting what is held, or revoking what is not, changes and records nothing.
    services.officer_role_grant(admin=admin, officer=officer, role="decider")
    services.officer_role_revoke(admin=admin, officer=officer, role="issuer")
    assert AuditEntry.objects.filter(action__startswith="agency.officer.role_").count() == 2


def test_unknown_roles_and_self_grants_are_refused() -> None:
    admin = make_agency_admin()
    officer = make_officer(agency=admin.agency)
    with pytest.raises(ValidationFailed) as caught:
        services.officer_role_grant(admin=admin, officer=officer, role="superuser")
    assert caught.value.code == "unknown_role"
    with pytest.raises(PermissionDenied) as self_grant:
        services.officer_role_grant(admin=admin, officer=admin, role="decider")
    assert self_grant.value.code == "self_grant"
    admin.refresh_from_db()
    assert admin.roles == ["agency_admin"]


def test_the_last_admin_stays_and_nobody_deactivates_themselves() -> None:
    admin = make_agency_admin()
    with pytest.raises(Conflict) as caught:
        services.officer_role_revoke(admin=admin, officer=admin, role="agency_admin")
    assert caught.value.code == "last_admin"
    with pytest.raises(PermissionDenied):
        services.officer_deactivate(admin=admin, officer=admin)
    second = make_agency_admin(agency=admin.agency)
    services.officer_role_revoke(admin=second, officer=admin, role="agency_admin")
    admin.refresh_from_db()
    assert admin.roles == []


def test_deactivating_takes_every_role_at_once() -> None:
    admin = make_agency_admin()
    team = services.team_create(admin=admin, name="Bộ phận một cửa")
    officer = make_officer(agency=admin.agency, roles=("decider",))
    services.officer_team_set(admin=admin, officer=officer, team=team)
    services.officer_deactivate(admin=admin, officer=officer)
    officer.refresh_from_db()
    assert not officer.active and officer.roles == [] and officer.team is None
    entry = AuditEntry.objects.get(action="agency.officer.deactivate")
    assert entry.details["before"] == {"roles": ["decider"], "active": True, "team": "Bộ phận một cửa"}
    assert entry.details["after"] == {"roles": [], "active": False, "team": None}
    with pytest.raises(Conflict):
        services.officer_role_grant(admin=admin, officer=officer, role="caseworker")


def test_teams_belong_to_one_agency() -> None:
    admin = make_agency_admin()
    team = services.team_create(admin=admin, name="  Tổ   tiếp nhận ")
    assert team.name == "Tổ tiếp nhận" and team.agency == admin.agency
    with pytest.raises(Conflict):
        services.team_create(admin=admin, name="tổ tiếp nhận")
    with pytest.raises(ValidationFailed):
        services.team_create(admin=admin, name="x" * 101)
    foreign = Team.objects.create(agency=AgencyFactory(), name="Khác")
    officer = make_officer(agency=admin.agency)
    with pytest.raises(PermissionDenied):
        services.officer_team_set(admin=admin, officer=officer, team=foreign)
    services.officer_team_set(admin=admin, officer=officer, team=team)
    assert AuditEntry.objects.get(action="agency.officer.team_set").details["after"]["team"] == "Tổ tiếp nhận"


def test_platform_provisioning_is_audited() -> None:
    user = UserFactory()
    staff = UserFactory(is_staff=True)
    agency = AgencyFactory()
    officer = services.officer_provision(actor=staff, user=user, agency=agency, roles=["agency_admin"])
    assert officer.has_perm("agency.admin")
    entry = AuditEntry.objects.get(action="agency.officer.provision")
    assert entry.actor == staff and entry.details["after"]["roles"] == ["agency_admin"]
    # The same again changes nothing and records nothing.
    services.officer_provision(actor=staff, user=user, agency=agency, roles=["agency_admin"])
    assert AuditEntry.objects.filter(action="agency.officer.provision").count() == 1
    with pytest.raises(ValidationFailed):
        services.officer_provision(actor=staff, user=user, agency=agency, roles=["root"])
    assert Officer.objects.get(user=user).roles == ["agency_admin"]
