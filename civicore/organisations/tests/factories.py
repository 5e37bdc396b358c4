"""Businesses in the embedded registry, registered by their representative, with members."""

from __future__ import annotations

import datetime as dt
import itertools
from typing import Any

from django.utils import timezone

from civicore.catalogue.models import Service
from civicore.identity.models import Person
from civicore.identity.tests.factories import make_citizen
from civicore.organisations import services
from civicore.organisations.models import Membership, Organisation, RoleGrant
from civicore.organisations.registry import BusinessRecord, FileBusinessRegistry

_numbers = itertools.count(1)


def registry_entry(
    representative: Person, *, number: str = "", name: str = "", **extra: Any
) -> BusinessRecord:
    record = BusinessRecord(
        registration_number=number or f"03{next(_numbers):08d}",
        name=name or "Công ty TNHH Thử Nghiệm",
        address=extra.pop("address", "1 Đường Thử, xã An Bình"),
        representative_national_id=representative.national_id,
        **extra,
    )
    FileBusinessRegistry.add(record)
    return record


def make_organisation(admin: Person | None = None, **kwargs: Any) -> Organisation:
    """A business registered by its representative (`admin`, a new citizen by default)."""
    admin = admin or make_citizen()
    record = registry_entry(admin, **kwargs)
    return services.organisation_register(person=admin, registration_number=record.registration_number)


def admin_of(organisation: Organisation) -> Person:
    return Membership.objects.filter(organisation=organisation, is_admin=True).first().person  # type: ignore[union-attr]


def add_member(
    organisation: Organisation, person: Person | None = None, *, is_admin: bool = False
) -> Membership:
    """A member who accepted the admin's invitation."""
    person = person or make_citizen()
    invited = services.member_invite(
        admin=admin_of(organisation),
        organisation=organisation,
        national_id=person.national_id,
        is_admin=is_admin,
    )
    return services.member_accept(person=person, membership=invited)


def grant(
    membership: Membership, permission: str, service: Service | None = None, *, days: int = 30
) -> RoleGrant:
    return services.role_grant(
        admin=admin_of(membership.organisation),
        organisation=membership.organisation,
        membership=membership,
        permission=permission,
        service=service,
        expires_at=timezone.now() + dt.timedelta(days=days),
    )


def member_with(
    organisation: Organisation,
    permission: str,
    service: Service | None = None,
    *,
    person: Person | None = None,
) -> Person:
    membership = add_member(organisation, person)
    grant(membership, permission, service)
    return membership.person


def expire(role: RoleGrant) -> None:
    """As if the grant's last moment had just passed."""
    RoleGrant.objects.filter(pk=role.pk).update(expires_at=timezone.now() - dt.timedelta(seconds=1))
