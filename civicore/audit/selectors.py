"""Reads of the audit log."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from django.db.models import Q, QuerySet

from civicore.audit.models import AuditEntry
from civicore.identity.models import Person

# What a citizen sees on "who viewed my data": officers' reads, and every message an agency
# system exchanged about them (consented reads, change notices), all by someone else.
ACCESS_ACTIONS = ("case.view", "application.view", "document.view", "profile.view")
EXCHANGE_PREFIX = "exchange."


def accesses_to_person_data(*, person: Person) -> QuerySet[AuditEntry]:
    return (
        AuditEntry.objects.filter(person=person)
        .filter(Q(action__in=ACCESS_ACTIONS) | Q(action__startswith=EXCHANGE_PREFIX))
        .exclude(actor__person=person)
        .select_related("agency")
        .order_by("-id")
    )


def entry_details(entry: AuditEntry) -> dict[str, Any]:
    return entry.details if isinstance(entry.details, dict) else {}


@dataclass
class ExchangeParties:
    """The agency applications (by client_id) and consents (by public id) that a batch of
    exchange entries names."""

    applications: dict[str, Any] = field(default_factory=dict)
    consents: dict[str, Any] = field(default_factory=dict)


def exchange_parties(entries: Iterable[AuditEntry]) -> ExchangeParties:
    """Everything a batch of entries refers to, in at most two queries whatever its size."""
    from civicore.consent.selectors import consents_by_public_id
    from civicore.registry.models import AgencyApplication

    client_ids: set[str] = set()
    consent_ids: set[str] = set()
    for entry in entries:
        if not entry.action.startswith(EXCHANGE_PREFIX):
            continue
        details = entry_details(entry)
        if isinstance(details.get("client_id"), str) and details["client_id"]:
            client_ids.add(details["client_id"])
        if isinstance(details.get("consent"), str) and details["consent"]:
            consent_ids.add(details["consent"])
    parties = ExchangeParties()
    if client_ids:
        parties.applications = {
            app.client_id: app for app in AgencyApplication.objects.filter(client_id__in=client_ids)
        }
    if consent_ids:
        parties.consents = consents_by_public_id(consent_ids)
    return parties
