"""Reads of organisations, their members and grants, and the one check every business act goes
through: does this person hold a current grant of this permission for this service?

A grant counts only while its membership is accepted and not removed, it is not revoked and it
has not expired, compared with the clock at the moment of use. `file` includes `view`.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field

from django.db.models import Prefetch, Q, QuerySet
from django.utils import timezone
from django.utils.translation import gettext as _

from civicore.catalogue.models import Service
from civicore.core.errors import NotFound, PermissionDenied
from civicore.identity.models import Person
from civicore.organisations import numbers
from civicore.organisations.models import Membership, Organisation, RoleGrant

FILE = RoleGrant.Permission.FILE.value
VIEW = RoleGrant.Permission.VIEW.value
PAY = RoleGrant.Permission.PAY.value

# The grants that give each ability: whoever may file for a service may also see its filings.
SATISFIED_BY: dict[str, tuple[str, ...]] = {FILE: (FILE,), VIEW: (VIEW, FILE), PAY: (PAY,)}


class NoBusinessRole(PermissionDenied):
    """You do not hold a role that allows this for the business."""

    code = "no_business_role"


def _current_membership_q(prefix: str = "") -> Q:
    return Q(**{f"{prefix}accepted_at__isnull": False, f"{prefix}removed_at__isnull": True})


def current_grants(
    *, person: Person, organisation: Organisation, ability: str, at: dt.datetime | None = None
) -> QuerySet[RoleGrant]:
    """The person's grants in the organisation that give `ability` (file, view, pay) now."""
    return RoleGrant.objects.filter(
        _current_membership_q("membership__"),
        membership__person=person,
        membership__organisation=organisation,
        permission__in=SATISFIED_BY[ability],
        revoked_at__isnull=True,
        expires_at__gt=at or timezone.now(),
    )


def require_grant(*, person: Person, organisation: Organisation, service: Service, ability: str) -> RoleGrant:
    """The grant that lets the person do `ability` for `service` on the organisation's behalf,
    checked now, in one query; otherwise 403 no_business_role."""
    grant = (
        current_grants(person=person, organisation=organisation, ability=ability)
        .filter(Q(service=service) | Q(service__isnull=True))
        .order_by("-expires_at")
        .first()
    )
    if grant is None:
        raise NoBusinessRole(
            _("You do not hold a current role for this service on behalf of %(name)s.")
            % {"name": organisation.name},
            details={"organisation": organisation.registration_number, "permission": ability},
        )
    return grant


def visible_services(*, person: Person, organisation: Organisation) -> set[int] | None:
    """Ids of the services whose filings the person may see for the organisation; None when a
    grant covers every service. Empty when they may see none."""
    ids: set[int] = set()
    for service_id in current_grants(person=person, organisation=organisation, ability=VIEW).values_list(
        "service_id", flat=True
    ):
        if service_id is None:
            return None
        ids.add(service_id)
    return ids


def organisation_for_member(*, person: Person, registration_number: str) -> Organisation:
    """The organisation, if the person is a current member. An organisation that does not exist
    and one the person does not belong to look the same (403), so nobody learns which exist."""
    number = numbers.normalise(registration_number)
    membership = (
        Membership.objects.filter(
            _current_membership_q(), person=person, organisation__registration_number=number
        )
        .select_related("organisation")
        .first()
    )
    if membership is None:
        raise NoBusinessRole(_("You do not act for this business."), details={"organisation": number})
    return membership.organisation


def memberships_of(*, person: Person) -> QuerySet[Membership]:
    """The organisations the person belongs to, with their own current grants."""
    now = timezone.now()
    return (
        Membership.objects.filter(_current_membership_q(), person=person)
        .select_related("organisation")
        .prefetch_related(
            Prefetch(
                "grants",
                queryset=RoleGrant.objects.filter(revoked_at__isnull=True, expires_at__gt=now)
                .select_related("service")
                .order_by("permission", "expires_at"),
                to_attr="current_grants",
            )
        )
        .order_by("organisation__name", "organisation__registration_number")
    )


def invitations_of(*, person: Person) -> QuerySet[Membership]:
    return (
        Membership.objects.filter(person=person, accepted_at__isnull=True, removed_at__isnull=True)
        .select_related("organisation", "granted_by__user")
        .order_by("-granted_at")
    )


def invitation_of(*, person: Person, membership_id: int) -> Membership:
    invitation = invitations_of(person=person).filter(pk=membership_id).first()
    if invitation is None:
        raise NotFound(_("Invitation not found."))
    return invitation


def organisation_admin(*, person: Person, registration_number: str) -> Organisation:
    """The organisation, if the person is one of its current admins; 403 otherwise (including
    when it does not exist)."""
    number = numbers.normalise(registration_number)
    membership = (
        Membership.objects.filter(
            _current_membership_q(), person=person, is_admin=True, organisation__registration_number=number
        )
        .select_related("organisation")
        .first()
    )
    if membership is None:
        raise PermissionDenied(
            _("Only the business's administrators manage its members."), code="not_organisation_admin"
        )
    return membership.organisation


@dataclass
class MemberRow:
    membership: Membership
    grants: list[RoleGrant] = field(default_factory=list)
    past_grants: list[RoleGrant] = field(default_factory=list)
    national_id_hint: str = ""


def members_page(*, organisation: Organisation) -> list[MemberRow]:
    """Members (current and invited, not removed) with their grants split into current and past,
    in three queries. An invited member is shown by the end of their national ID only, until
    they accept."""
    now = timezone.now()
    memberships = (
        Membership.objects.filter(organisation=organisation, removed_at__isnull=True)
        .select_related("person__user")
        .prefetch_related(
            Prefetch(
                "grants", queryset=RoleGrant.objects.select_related("service").order_by("-granted_at", "-id")
            )
        )
        .order_by("-is_admin", "person__user__full_name", "pk")
    )
    rows = []
    for membership in memberships:
        row = MemberRow(membership=membership)
        for grant in membership.grants.all():
            (row.grants if grant.is_current(now) else row.past_grants).append(grant)
        if membership.accepted_at is None:
            row.national_id_hint = "…" + (membership.person.national_id or "")[-3:]
        rows.append(row)
    return rows


def membership_in(*, organisation: Organisation, membership_id: int) -> Membership:
    membership = (
        Membership.objects.select_related("person__user", "organisation")
        .filter(pk=membership_id, organisation=organisation)
        .first()
    )
    if membership is None:
        raise NotFound(_("Member not found."))
    return membership


def grant_in(*, organisation: Organisation, grant_id: int) -> RoleGrant:
    grant = (
        RoleGrant.objects.select_related("membership__person__user", "membership__organisation", "service")
        .filter(pk=grant_id, membership__organisation=organisation)
        .first()
    )
    if grant is None:
        raise NotFound(_("Role not found."))
    return grant


def organisation_by_id(pk: int) -> Organisation | None:
    return Organisation.objects.filter(pk=pk).first()
