"""Reads of agencies and officers. An agency admin sees only their own agency's officers."""

from __future__ import annotations

from typing import Any

from django.db.models import QuerySet
from django.utils.translation import gettext as _

from civicore.agencies.models import Officer, Team
from civicore.core.errors import NotFound, PermissionDenied


def officer_for_user(user: Any) -> Officer | None:
    if not getattr(user, "is_authenticated", False):
        return None
    try:
        officer = user.officer
    except Officer.DoesNotExist:
        return None
    return officer if officer.active else None


def officers_of_agency(*, agency_id: int) -> QuerySet[Officer]:
    return (
        Officer.objects.filter(agency_id=agency_id)
        .select_related("user", "team")
        .order_by("-active", "user__full_name", "user__email", "pk")
    )


def officer_of_agency(*, admin: Officer, officer_id: int) -> Officer:
    """Another agency's officer is 403, a missing one 404."""
    officer = Officer.objects.select_related("user", "team", "agency").filter(pk=officer_id).first()
    if officer is None:
        raise NotFound(_("Officer not found."))
    if officer.agency_id != admin.agency_id:
        raise PermissionDenied(_("This officer belongs to another agency."), code="other_agency")
    return officer


def teams_of_agency(*, agency_id: int) -> QuerySet[Team]:
    return Team.objects.filter(agency_id=agency_id).order_by("name")


def team_of_agency(*, admin: Officer, team_id: int) -> Team:
    team = Team.objects.filter(pk=team_id).first()
    if team is None:
        raise NotFound(_("Team not found."))
    if team.agency_id != admin.agency_id:
        raise PermissionDenied(_("This team belongs to another agency."), code="other_agency")
    return team
