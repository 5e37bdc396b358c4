"""Reads of the audit log."""

from __future__ import annotations

from django.db.models import QuerySet

from civicore.audit.models import AuditEntry
from civicore.identity.models import Person

# What a citizen sees on "who viewed my data": reads and decisions by someone else.
ACCESS_ACTIONS = ("case.view", "document.view", "profile.view")


def accesses_to_person_data(*, person: Person) -> QuerySet[AuditEntry]:
    return (
        AuditEntry.objects.filter(person=person, action__in=ACCESS_ACTIONS)
        .exclude(actor__person=person)
        .select_related("agency")
        .order_by("-id")
    )
