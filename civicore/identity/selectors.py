"""Reads of people and their verified data."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from django.db.models import Prefetch

from civicore.core.crypto import lookup_hash
from civicore.identity import items as item_registry
from civicore.identity.models import Person, ProfileItem, ProfileItemChange, User

NATIONAL_ID_PURPOSE = "national_id"


def person_for_user(user: User) -> Person | None:
    try:
        return user.person
    except Person.DoesNotExist:
        return None


def profile_items(person: Person) -> dict[str, ProfileItem]:
    return {item.key: item for item in person.items.select_related("agency")}


def display_name(user: User) -> str:
    return user.full_name or user.email


def person_find(*, key: str, value: str) -> Person | None:
    """The person an identifying item (national_id, phone, e-mail) belongs to, by keyed hash.
    None when nobody, or more than one person, has that value."""
    definition = item_registry.get(key)
    if not definition.identifies:
        raise ValueError(f"{key!r} does not identify a person")
    if key == NATIONAL_ID_PURPOSE:
        return Person.objects.filter(
            national_id_hash=lookup_hash("".join(value.split()), purpose=NATIONAL_ID_PURPOSE)
        ).first()
    try:
        canonical = definition.clean(value)
    except item_registry.ItemValueError:
        return None
    matches = list(
        Person.objects.filter(
            items__key=key, items__lookup_hash=lookup_hash(canonical, purpose=key)
        ).distinct()[:2]
    )
    return matches[0] if len(matches) == 1 else None


def items_for_agency(*, person: Person, keys: list[str]) -> dict[str, ProfileItem]:
    return {
        item.key: item
        for item in ProfileItem.objects.filter(person=person, key__in=keys).select_related("agency")
    }


@dataclass
class HistoryRow:
    at: Any
    old: dict[str, Any] | None
    new: dict[str, Any]
    source_label: str
    declared: bool
    cause: str


@dataclass
class ProfileRow:
    """One line of the citizen's profile page, for every registered item, held or not."""

    definition: item_registry.ItemDefinition
    item: ProfileItem | None
    display: dict[str, Any] | None
    history: list[HistoryRow] = field(default_factory=list)

    @property
    def key(self) -> str:
        return self.definition.key

    @property
    def declared(self) -> bool:
        return self.item is not None and self.item.is_declared

    @property
    def can_edit(self) -> bool:
        """The citizen may change it here: contact details always, declarable items while no
        agency of record holds them."""
        if self.definition.correctable:
            return True
        return self.definition.declarable and (self.item is None or self.item.is_declared)


def profile_page(*, person: Person) -> list[ProfileRow]:
    """The person's own profile with each item's provenance and history, in registry order.
    Three queries whatever the number of items and changes."""
    held = {
        item.key: item
        for item in ProfileItem.objects.filter(person=person)
        .select_related("agency")
        .prefetch_related(
            Prefetch(
                "changes",
                queryset=ProfileItemChange.objects.select_related("agency").order_by("-at", "-id"),
            )
        )
    }
    rows = []
    for definition in item_registry.all_items():
        item = held.get(definition.key)
        if item is None:
            rows.append(ProfileRow(definition=definition, item=None, display=None))
            continue
        history = [
            HistoryRow(
                at=change.at,
                old=definition.type.display(change.old_value) if change.old_value else None,
                new=definition.type.display(change.new_value),
                source_label=change.agency.name if change.agency else "",
                declared=change.source_kind == ProfileItem.Source.DECLARED,
                cause=change.get_cause_display(),
            )
            for change in item.changes.all()
        ]
        rows.append(
            ProfileRow(
                definition=definition,
                item=item,
                display=definition.type.display(item.value),
                history=history,
            )
        )
    return rows
