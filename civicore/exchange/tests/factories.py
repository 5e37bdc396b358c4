"""Subscribed agency applications and profile changes, the way the identity domain announces them."""

from __future__ import annotations

from typing import Any

from django.db import transaction

from civicore.agencies.models import Agency
from civicore.exchange.models import ChangeEvent
from civicore.identity.models import Person, ProfileItem
from civicore.identity.signals import profile_items_changed
from civicore.registry.models import AgencyApplication
from civicore.registry.tests.factories import make_agency, make_application


def make_subscriber(
    url: str, *, items: list[str] | None = None, agency: Agency | None = None, **fields: Any
) -> AgencyApplication:
    items = items or ["address"]
    allowed = sorted({*items, "full_name", "date_of_birth", "address"})
    app, _key = make_application(
        agency=agency or make_agency(),
        webhook_url=url,
        allowed_items=allowed,
        subscribed_items=items,
        **fields,
    )
    return app


def change(
    person: Person, keys: list[str], *, cause: str = "agency.update", agency: Agency | None = None
) -> ChangeEvent | None:
    """Send profile_items_changed inside a transaction, as the identity services do."""
    before = ChangeEvent.objects.filter(person=person).order_by("-id").values_list("id", flat=True).first()
    with transaction.atomic():
        profile_items_changed.send(
            sender=ProfileItem,
            person=person,
            changes=[
                {"key": key, "source": agency.code if agency else "declared", "verified_at": None}
                for key in keys
            ],
            cause=cause,
            actor=None,
            agency=agency,
        )
    latest = ChangeEvent.objects.filter(person=person).order_by("-id").first()
    return latest if latest is not None and latest.pk != before else None
