"""Reads for consented sharing: the citizen's consents, and what a code or token stands for."""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from django.db.models import Q, QuerySet
from django.utils import timezone

from civicore.consent.models import AccessToken, AuthorizationCode, Consent, RefreshToken
from civicore.identity import items as item_registry
from civicore.identity.models import Person, ProfileItem
from civicore.registry.models import AgencyApplication


def application_for_client(client_id: object) -> AgencyApplication | None:
    """The active application registered under `client_id`, with its agency."""
    if not isinstance(client_id, str) or not client_id or len(client_id) > 100:
        return None
    return AgencyApplication.objects.select_related("agency").filter(client_id=client_id, active=True).first()


def consents_for(*, person: Person) -> QuerySet[Consent]:
    return (
        Consent.objects.filter(person=person)
        .select_related("application__agency")
        .order_by("-granted_at", "-id")
    )


def active_consents_for(*, person: Person) -> QuerySet[Consent]:
    return consents_for(person=person).filter(revoked_at__isnull=True, expires_at__gt=timezone.now())


def ended_consents_for(*, person: Person) -> QuerySet[Consent]:
    return consents_for(person=person).filter(Q(revoked_at__isnull=False) | Q(expires_at__lte=timezone.now()))


def active_consent_for(*, person: Person, application: AgencyApplication, purpose: str) -> Consent | None:
    return active_consents_for(person=person).filter(application=application, purpose=purpose).first()


def consent_for_update(*, pk: int) -> Consent | None:
    """The consent, row-locked until the end of the caller's transaction."""
    return (
        Consent.objects.select_for_update(of=("self",))
        .select_related("person", "application__agency")
        .filter(pk=pk)
        .first()
    )


def code_by_hash(*, code_hash: str, application: AgencyApplication) -> AuthorizationCode | None:
    return (
        AuthorizationCode.objects.select_related("consent__person__user", "consent__application__agency")
        .filter(code_hash=code_hash, application=application)
        .first()
    )


def token_by_hash(token_hash: str) -> AccessToken | None:
    return AccessToken.objects.filter(token_hash=token_hash).first()


def refresh_token_by_hash(token_hash: str) -> RefreshToken | None:
    """The refresh token with what a refresh needs: its consent, person and family's code."""
    return (
        RefreshToken.objects.select_related("consent__person", "consent__application__agency", "code")
        .filter(token_hash=token_hash)
        .first()
    )


@dataclass(frozen=True)
class HeldItem:
    """A profile item as consented sharing hands it out and shows it."""

    key: str
    value: Any  # as a JSON value, the way the Agency API answers everywhere
    display: dict[str, Any]  # for identity/_value.html
    source: dict[str, Any]  # {"kind": "agency" | "declared", "agency", "agency_name": {vi, en}}
    source_label: str  # who stands behind the value, in the active language
    verified_at: datetime | None


def _held(item: ProfileItem) -> HeldItem:
    """The one place this app reads a ProfileItem's value and provenance."""
    try:
        value_type = item_registry.get(item.key).type
        value, display = value_type.parse(item.value), value_type.display(item.value)
    except (item_registry.UnknownItem, ValueError):
        value, display = item.value, {"kind": "text", "text": item.value}
    agency = item.agency
    return HeldItem(
        key=item.key,
        value=value,
        display=display,
        source={
            "kind": item.source_kind,
            "agency": agency.code if agency else None,
            "agency_name": {"vi": agency.name_vi, "en": agency.name_en} if agency else None,
        },
        source_label=item.source_label,
        verified_at=item.verified_at,
    )


def profile_items_for(*, person: Person, keys: list[str]) -> dict[str, HeldItem]:
    """The person's items among `keys`, with their agencies, in one query."""
    return {item.key: _held(item) for item in person.items.filter(key__in=keys).select_related("agency")}


def consents_by_public_id(public_ids: Iterable[object]) -> dict[str, Consent]:
    """The consents named in audit details, in one query."""
    valid: set[uuid.UUID] = set()
    for value in public_ids:
        try:
            valid.add(uuid.UUID(str(value)))
        except ValueError:
            continue
    if not valid:
        return {}
    return {str(c.public_id): c for c in Consent.objects.filter(public_id__in=valid)}
