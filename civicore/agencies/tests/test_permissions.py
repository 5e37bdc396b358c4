from __future__ import annotations

import pytest

from civicore.agencies import permissions
from civicore.agencies.tests.factories import make_officer
from civicore.core.errors import PermissionDenied

pytestmark = pytest.mark.django_db


def test_the_roles_bundle_named_permissions() -> None:
    assert permissions.ROLES["caseworker"].permissions == {"case.view"}
    assert permissions.ROLES["decider"].permissions == {"case.view", "case.decide"}
    assert permissions.ROLES["issuer"].permissions == {"result.issue"}
    assert permissions.ROLES["agency_admin"].permissions == {"agency.admin", "systems.manage"}
    every = set().union(*(role.permissions for role in permissions.ROLES.values()))
    assert every == set(permissions.PERMISSIONS)


def test_a_new_officer_holds_no_permission() -> None:
    officer = make_officer(roles=())
    assert officer.permissions == frozenset()
    assert not any(officer.has_perm(name) for name in permissions.PERMISSIONS)
    with pytest.raises(PermissionDenied) as caught:
        permissions.require(officer, permissions.CASE_VIEW)
    assert caught.value.code == "missing_permission" and caught.value.details == {"permission": "case.view"}


def test_permissions_fail_closed() -> None:
    officer = make_officer(roles=("decider", "agency_admin"))
    assert officer.has_perm("case.decide") and officer.has_perm("systems.manage")
    assert not officer.has_perm("result.issue")
    assert not officer.has_perm("case.*") and not officer.has_perm("")
    officer.active = False
    assert not officer.has_perm("case.view")
    assert not permissions.has_perm(None, "case.view")
    officer.roles = ["caseworker", "a-role-that-was-removed"]
    officer.active = True
    assert officer.permissions == {"case.view"}


def test_workflow_roles_map_to_permissions() -> None:
    assert permissions.transition_permission("caseworker") == "case.view"
    assert permissions.transition_permission("supervisor") == "case.decide"
    assert permissions.transition_permission("applicant") is None
    officer = make_officer(roles=("caseworker", "decider", "issuer", "agency_admin"))
    assert not officer.has_perm(permissions.transition_permission("mayor") or "")


def test_unknown_roles_do_not_validate() -> None:
    from django.core.exceptions import ValidationError

    officer = make_officer()
    officer.roles = ["caseworker", "superuser"]
    with pytest.raises(ValidationError):
        officer.full_clean()
