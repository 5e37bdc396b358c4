"""Writes for organisations: registering a business (its legal representative becomes the first
admin), inviting members by national ID, and granting, revoking and expiring their roles.

Only an organisation's current admins change its members and grants; each change is one
transaction and one audit entry naming who did it and for which business ("acted_for"). The
organisation always keeps at least one admin.
"""

from __future__ import annotations

import datetime as dt
import hmac
import re
from typing import Any

from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils import timezone
from django.utils.translation import gettext as _

from civicore.audit import services as audit
from civicore.catalogue.models import Service
from civicore.core.errors import Conflict, NotFound, PermissionDenied, ValidationFailed
from civicore.identity.models import Person
from civicore.identity.selectors import person_find
from civicore.organisations import numbers
from civicore.organisations.models import MAX_GRANT_DAYS, Membership, Organisation, RoleGrant
from civicore.organisations.registry import business_registry

NATIONAL_ID = re.compile(r"^[0-9]{12}$", re.ASCII)


def acted_for(organisation: Organisation | None) -> dict[str, Any]:
    """What every audit entry of an act on a business's behalf carries besides its actor;
    nothing for a person acting for themselves."""
    if organisation is None:
        return {}
    return {"acted_for": {"organisation": organisation.registration_number, "name": organisation.name}}


def _record(
    *,
    admin: Person | None,
    action: str,
    organisation: Organisation,
    subject: Any,
    person: Person | None,
    details: dict[str, Any] | None = None,
) -> None:
    audit.record(
        actor=admin.user if admin is not None else None,
        action=action,
        subject=subject,
        person=person,
        details={**(details or {}), **acted_for(organisation)},
    )


def _require_admin(admin: Person, organisation: Organisation) -> Membership:
    """The admin's own membership, locked, so two admins demoting each other queue up."""
    membership = (
        Membership.objects.select_for_update()
        .filter(
            organisation=organisation,
            person=admin,
            is_admin=True,
            accepted_at__isnull=False,
            removed_at__isnull=True,
        )
        .first()
    )
    if membership is None:
        raise PermissionDenied(
            _("Only the business's administrators manage its members."), code="not_organisation_admin"
        )
    return membership


def _other_admins(organisation: Organisation, *, without: Membership) -> int:
    """Current admins other than `without`, counted under lock so two admins removing each
    other at once cannot both succeed."""
    return len(
        Membership.objects.select_for_update()
        .filter(organisation=organisation, is_admin=True, accepted_at__isnull=False, removed_at__isnull=True)
        .exclude(pk=without.pk)
        .values_list("pk", flat=True)
    )


def _locked(membership: Membership, organisation: Organisation) -> Membership:
    if membership.organisation_id != organisation.pk:
        raise NotFound(_("Member not found."))
    return (
        Membership.objects.select_for_update(of=("self",))
        .select_related("person__user")
        .get(pk=membership.pk)
    )


@transaction.atomic
def organisation_register(*, person: Person, registration_number: str) -> Organisation:
    """Register a business from the national business registry; only its legal representative
    may, and becomes its first admin."""
    number = numbers.normalise(registration_number)
    registry = business_registry()
    record = registry.lookup(number)
    if record is None or not record.active:
        raise NotFound(
            _("The business registry has no active business with this number."), code="business_not_found"
        )
    if not hmac.compare_digest(record.representative_national_id, person.national_id or ""):
        raise PermissionDenied(
            _("Only the business's legal representative may register it."), code="not_representative"
        )
    if Organisation.objects.filter(registration_number=number).exists():
        raise Conflict(
            _("This business is already registered. Ask one of its administrators to invite you."),
            code="organisation_exists",
        )
    now = timezone.now()
    organisation = Organisation(
        registration_number=number,
        name=record.name[:300],
        address=record.address[:300],
        verified_source=registry.source[:200],
        verified_at=now,
        created_at=now,
    )
    organisation.full_clean()
    organisation.save()
    membership = Membership.objects.create(
        organisation=organisation, person=person, is_admin=True, granted_at=now, accepted_at=now
    )
    _record(
        admin=person,
        action="organisation.register",
        organisation=organisation,
        subject=membership,
        person=person,
        details={"source": organisation.verified_source},
    )
    return organisation


@transaction.atomic
def member_invite(
    *, admin: Person, organisation: Organisation, national_id: str, is_admin: bool = False
) -> Membership:
    """Invite a citizen by national ID; they become a member when they accept."""
    _require_admin(admin, organisation)
    national_id = "".join((national_id or "")[:40].split())
    if not NATIONAL_ID.match(national_id):
        raise ValidationFailed(
            _("Enter a national ID number of 12 digits."),
            code="invalid_national_id",
            details={"national_id": _("Not a valid national ID number.")},
        )
    person = person_find(key="national_id", value=national_id)
    if person is None:
        raise NotFound(_("No citizen with this national ID number uses the portal."), code="person_not_found")
    now = timezone.now()
    membership = (
        Membership.objects.select_for_update().filter(organisation=organisation, person=person).first()
    )
    if membership is not None and membership.removed_at is None:
        if membership.accepted_at is None:
            raise Conflict(_("This person has already been invited."), code="already_invited")
        raise Conflict(_("This person is already a member."), code="already_member")
    if membership is None:
        membership = Membership(organisation=organisation, person=person)
    membership.is_admin = is_admin
    membership.granted_by = admin
    membership.granted_at = now
    membership.accepted_at = None
    membership.removed_at = None
    membership.save()
    _record(
        admin=admin,
        action="organisation.member_invite",
        organisation=organisation,
        subject=membership,
        person=person,
        details={"is_admin": is_admin},
    )
    return membership


@transaction.atomic
def member_accept(*, person: Person, membership: Membership) -> Membership:
    membership = (
        Membership.objects.select_for_update(of=("self",))
        .select_related("organisation")
        .get(pk=membership.pk)
    )
    if membership.person_id != person.pk or membership.removed_at is not None:
        raise NotFound(_("Invitation not found."))
    if membership.accepted_at is not None:
        return membership
    membership.accepted_at = timezone.now()
    membership.save(update_fields=["accepted_at"])
    _record(
        admin=person,
        action="organisation.member_accept",
        organisation=membership.organisation,
        subject=membership,
        person=person,
    )
    return membership


@transaction.atomic
def member_decline(*, person: Person, membership: Membership) -> Membership:
    membership = (
        Membership.objects.select_for_update(of=("self",))
        .select_related("organisation")
        .get(pk=membership.pk)
    )
    if membership.person_id != person.pk or membership.removed_at is not None or membership.accepted_at:
        raise NotFound(_("Invitation not found."))
    membership.removed_at = timezone.now()
    membership.save(update_fields=["removed_at"])
    _record(
        admin=person,
        action="organisation.member_decline",
        organisation=membership.organisation,
        subject=membership,
        person=person,
    )
    return membership


def _revoke_all(membership: Membership, *, by: Person, at: dt.datetime) -> int:
    return RoleGrant.objects.filter(membership=membership, revoked_at__isnull=True).update(
        revoked_at=at, revoked_by=by
    )


@transaction.atomic
def member_remove(*, admin: Person, organisation: Organisation, membership: Membership) -> Membership:
    """The member stops acting for the business at once: every grant of theirs is revoked."""
    _require_admin(admin, organisation)
    membership = _locked(membership, organisation)
    if membership.removed_at is not None:
        return membership
    if (
        membership.is_admin
        and membership.accepted_at
        and _other_admins(organisation, without=membership) == 0
    ):
        raise Conflict(_("The business must keep at least one administrator."), code="last_admin")
    now = timezone.now()
    membership.removed_at = now
    membership.save(update_fields=["removed_at"])
    revoked = _revoke_all(membership, by=admin, at=now)
    _record(
        admin=admin,
        action="organisation.member_remove",
        organisation=organisation,
        subject=membership,
        person=membership.person,
        details={"grants_revoked": revoked, "was_admin": membership.is_admin},
    )
    return membership


@transaction.atomic
def admin_grant(*, admin: Person, organisation: Organisation, membership: Membership) -> Membership:
    _require_admin(admin, organisation)
    membership = _locked(membership, organisation)
    if membership.removed_at is not None:
        raise NotFound(_("Member not found."))
    if membership.is_admin:
        return membership
    membership.is_admin = True
    membership.save(update_fields=["is_admin"])
    _record(
        admin=admin,
        action="organisation.admin_grant",
        organisation=organisation,
        subject=membership,
        person=membership.person,
        details={"before": {"is_admin": False}, "after": {"is_admin": True}},
    )
    return membership


@transaction.atomic
def admin_revoke(*, admin: Person, organisation: Organisation, membership: Membership) -> Membership:
    _require_admin(admin, organisation)
    membership = _locked(membership, organisation)
    if membership.removed_at is not None:
        raise NotFound(_("Member not found."))
    if not membership.is_admin:
        return membership
    if membership.accepted_at and _other_admins(organisation, without=membership) == 0:
        raise Conflict(_("The business must keep at least one administrator."), code="last_admin")
    membership.is_admin = False
    membership.save(update_fields=["is_admin"])
    _record(
        admin=admin,
        action="organisation.admin_revoke",
        organisation=organisation,
        subject=membership,
        person=membership.person,
        details={"before": {"is_admin": True}, "after": {"is_admin": False}},
    )
    return membership


@transaction.atomic
def role_grant(
    *,
    admin: Person,
    organisation: Organisation,
    membership: Membership,
    permission: str,
    service: Service | None,
    expires_at: dt.datetime,
) -> RoleGrant:
    """Grant one permission for one service (None: every service) until `expires_at`, at most a
    year away. A current grant of the same permission and service is replaced."""
    _require_admin(admin, organisation)
    membership = _locked(membership, organisation)
    if membership.removed_at is not None:
        raise NotFound(_("Member not found."))
    if permission not in RoleGrant.Permission.values:
        raise ValidationFailed(
            _("Choose what the role allows."), code="invalid_permission", details={"permission": permission}
        )
    now = timezone.now()
    grant = RoleGrant(
        membership=membership,
        service=service,
        permission=permission,
        expires_at=expires_at,
        granted_by=admin,
        granted_at=now,
    )
    try:
        grant.full_clean()
    except ValidationError as exc:
        raise ValidationFailed(
            " ".join(exc.messages),
            code="invalid_grant",
            details={k: " ".join(v) for k, v in exc.message_dict.items()},
        ) from exc
    replaced = list(
        RoleGrant.objects.select_for_update()
        .filter(
            membership=membership,
            permission=permission,
            service=service,
            revoked_at__isnull=True,
            expires_at__gt=now,
        )
        .values_list("pk", flat=True)
    )
    if replaced:
        RoleGrant.objects.filter(pk__in=replaced).update(revoked_at=now, revoked_by=admin)
    grant.save()
    _record(
        admin=admin,
        action="organisation.role_grant",
        organisation=organisation,
        subject=grant,
        person=membership.person,
        details={
            "permission": permission,
            "service": service.code if service else None,
            "expires_at": expires_at.isoformat(),
            "replaces": replaced,
        },
    )
    return grant


@transaction.atomic
def role_revoke(*, admin: Person, organisation: Organisation, grant: RoleGrant) -> RoleGrant:
    _require_admin(admin, organisation)
    locked = (
        RoleGrant.objects.select_for_update(of=("self",))
        .select_related("membership__person", "service")
        .filter(pk=grant.pk, membership__organisation=organisation)
        .first()
    )
    if locked is None:
        raise NotFound(_("Role not found."))
    if locked.revoked_at is not None:
        return locked
    now = timezone.now()
    locked.revoked_at = now
    locked.revoked_by = admin
    locked.save(update_fields=["revoked_at", "revoked_by"])
    _record(
        admin=admin,
        action="organisation.role_revoke",
        organisation=organisation,
        subject=locked,
        person=locked.membership.person,
        details={
            "permission": locked.permission,
            "service": locked.service.code if locked.service else None,
            "expired": locked.expires_at <= now,
        },
    )
    return locked


def latest_expiry(now: dt.datetime | None = None) -> dt.datetime:
    return (now or timezone.now()) + dt.timedelta(days=MAX_GRANT_DAYS)
