"""Reads of people and their verified data."""

from __future__ import annotations

from civicore.identity.models import Person, ProfileItem, User


def person_for_user(user: User) -> Person | None:
    try:
        return user.person
    except Person.DoesNotExist:
        return None


def profile_items(person: Person) -> dict[str, ProfileItem]:
    return {item.key: item for item in person.items.all()}


def display_name(user: User) -> str:
    return user.full_name or user.email
