"""Writes for officers: an agency admin adds officers, grants and revokes roles, sets teams and
deactivates officers, for their own agency only; platform administrators appoint officers.

Every change is one transaction with one audit entry holding the roles before and after. An
agency always keeps at least one active admin, and nobody grants a role to themselves.
"""

from __future__ import annotations

from typing import Any

from django.db import transaction
from django.utils.translation import gettext as _

from civicore.agencies import permissions
from civicore.agencies.models import Agency, Officer, Team
from civicore.audit import services as audit
from civicore.core.errors import Conflict, NotFound, PermissionDenied, ValidationFailed
from civicore.identity.models import User

MAX_TEAM_NAME = 100


def _admin(admin: Officer | None) -> Officer:
    return permissions.require(
        admin,
        permissions.AGENCY_ADMIN,
        message=_("Only the agency's administrators manage its officers."),
        code="not_agency_admin",
    )


def _locked_officer(admin: Officer, officer: Officer) -> Officer:
    """The officer's row, locked, after checking it belongs to the admin's agency."""
    if officer.agency_id != admin.agency_id:
        raise PermissionDenied(_("This officer belongs to another agency."), code="other_agency")
    return Officer.objects.select_for_update(of=("self",)).select_related("user", "team").get(pk=officer.pk)


def _record(
    *,
    actor: Any,
    action: str,
    officer: Officer,
    before: dict[str, Any],
    details: dict[str, Any] | None = None,
) -> None:
    after = _snapshot(officer)
    audit.record(
        actor=actor,
        action=action,
        subject=officer,
        agency=officer.agency,
        details={"officer": officer.user.email, "before": before, "after": after, **(details or {})},
    )


def _snapshot(officer: Officer | None) -> dict[str, Any]:
    if officer is None or officer.pk is None:
        return {}
    return {
        "roles": sorted(officer.roles or []),
        "active": officer.active,
        "team": officer.team.name if officer.team_id and officer.team else None,
    }


def _admins_left(agency_id: int, *, without: Officer) -> int:
    """Active admins of the agency other than `without`, counted under lock so two admins
    removing each other at once cannot both succeed."""
    rows = Officer.objects.select_for_update().filter(agency_id=agency_id, active=True).exclude(pk=without.pk)
    return sum(1 for other in rows if permissions.AGENCY_ADMIN in other.permissions)


def _role(name: str) -> permissions.Role:
    role = permissions.ROLES.get(name)
    if role is None:
        raise ValidationFailed(_("There is no such role."), code="unknown_role", details={"role": name})
    return role


@transaction.atomic
def officer_add(*, admin: Officer, email: str) -> Officer:
    """Make an existing user an officer of the admin's agency, with no roles until granted.
    A former officer of this agency comes back the same way."""
    admin = _admin(admin)
    email = (email or "").strip()
    if not email or len(email) > 254:
        raise ValidationFailed(_("Enter an e-mail address."), code="email_required", details={"email": ""})
    user = User.objects.filter(email__iexact=email).first()
    if user is None:
        raise NotFound(_("Nobody has an account with this e-mail address."), code="user_not_found")
    existing = Officer.objects.select_for_update().filter(user=user).first()
    before = _snapshot(existing)
    if existing is not None:
        if existing.agency_id != admin.agency_id:
            raise Conflict(_("This user is already an officer of another agency."), code="officer_elsewhere")
        if existing.active:
            raise Conflict(_("This user is already one of your officers."), code="already_officer")
        existing.active = True
        existing.roles = []
        existing.team = None
        existing.full_clean()
        existing.save(update_fields=["active", "roles", "team"])
        officer = existing
    else:
        officer = Officer(user=user, agency=admin.agency, roles=[], active=True)
        officer.full_clean()
        officer.save()
    _record(actor=admin.user, action="agency.officer.add", officer=officer, before=before)
    return officer


@transaction.atomic
def officer_role_grant(*, admin: Officer, officer: Officer, role: str) -> Officer:
    admin = _admin(admin)
    granted = _role(role)
    officer = _locked_officer(admin, officer)
    if officer.pk == admin.pk:
        raise PermissionDenied(
            _("Another administrator must grant you a role."), code="self_grant", details={"role": role}
        )
    if not officer.active:
        raise Conflict(_("This officer is deactivated."), code="officer_inactive")
    if granted.name in officer.roles:
        return officer
    before = _snapshot(officer)
    officer.roles = sorted({*officer.roles, granted.name})
    officer.full_clean()
    officer.save(update_fields=["roles"])
    _record(
        actor=admin.user,
        action="agency.officer.role_grant",
        officer=officer,
        before=before,
        details={"role": granted.name},
    )
    return officer


@transaction.atomic
def officer_role_revoke(*, admin: Officer, officer: Officer, role: str) -> Officer:
    admin = _admin(admin)
    revoked = _role(role)
    officer = _locked_officer(admin, officer)
    if revoked.name not in officer.roles:
        return officer
    remaining = permissions.permissions_for(r for r in officer.roles if r != revoked.name)
    losing_admin = (
        permissions.AGENCY_ADMIN in officer.permissions and permissions.AGENCY_ADMIN not in remaining
    )
    if losing_admin and officer.active and _admins_left(officer.agency_id, without=officer) == 0:
        raise Conflict(_("The agency must keep at least one administrator."), code="last_admin")
    before = _snapshot(officer)
    officer.roles = sorted(r for r in officer.roles if r != revoked.name)
    officer.save(update_fields=["roles"])
    _record(
        actor=admin.user,
        action="agency.officer.role_revoke",
        officer=officer,
        before=before,
        details={"role": revoked.name},
    )
    return officer


@transaction.atomic
def officer_deactivate(*, admin: Officer, officer: Officer) -> Officer:
    """The officer loses the back office at once, with every role and their team."""
    admin = _admin(admin)
    officer = _locked_officer(admin, officer)
    if officer.pk == admin.pk:
        raise PermissionDenied(_("Another administrator must deactivate you."), code="self_deactivate")
    if not officer.active:
        return officer
    before = _snapshot(officer)
    officer.active = False
    officer.roles = []
    officer.team = None
    officer.save(update_fields=["active", "roles", "team"])
    _record(actor=admin.user, action="agency.officer.deactivate", officer=officer, before=before)
    return officer


@transaction.atomic
def officer_team_set(*, admin: Officer, officer: Officer, team: Team | None) -> Officer:
    admin = _admin(admin)
    officer = _locked_officer(admin, officer)
    if team is not None and team.agency_id != admin.agency_id:
        raise PermissionDenied(_("This team belongs to another agency."), code="other_agency")
    if officer.team_id == (team.pk if team else None):
        return officer
    before = _snapshot(officer)
    officer.team = team
    officer.save(update_fields=["team"])
    _record(actor=admin.user, action="agency.officer.team_set", officer=officer, before=before)
    return officer


@transaction.atomic
def team_create(*, admin: Officer, name: str) -> Team:
    admin = _admin(admin)
    name = " ".join((name or "").split())
    if not name:
        raise ValidationFailed(_("Enter a name for the team."), code="name_required", details={"name": ""})
    if len(name) > MAX_TEAM_NAME:
        raise ValidationFailed(_("The name is too long."), code="name_too_long", details={"name": ""})
    if Team.objects.filter(agency_id=admin.agency_id, name__iexact=name).exists():
        raise Conflict(_("Your agency already has a team with this name."), code="team_exists")
    team = Team.objects.create(agency_id=admin.agency_id, name=name)
    audit.record(
        actor=admin.user,
        action="agency.team.create",
        subject=team,
        agency=admin.agency,
        details={"name": name},
    )
    return team


@transaction.atomic
def officer_provision(
    *,
    actor: Any,
    user: User,
    agency: Agency,
    roles: list[str],
    team: Team | None = None,
    active: bool = True,
) -> Officer:
    """A platform administrator (or the demo loader, actor None) appoints or changes an officer
    of any agency, for instance an agency's first admin. Audited like an agency admin's change."""
    for name in roles:
        _role(name)
    officer = Officer.objects.select_for_update(of=("self",)).select_related("team").filter(user=user).first()
    before = _snapshot(officer)
    if officer is None:
        officer = Officer(user=user)
    officer.agency = agency
    officer.roles = sorted(set(roles)) if active else []
    officer.team = team if active else None
    officer.active = active
    officer.full_clean()
    officer.save()
    if before != _snapshot(officer):
        _record(actor=actor, action="agency.officer.provision", officer=officer, before=before)
    return officer
