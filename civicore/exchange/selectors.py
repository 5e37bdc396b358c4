"""Reads of the exchange: a citizen's own changes, an officer's agency's deliveries, and what a
worker needs to build a batch of webhook requests (three queries per batch)."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from django.db.models import Count, Min, Q, QuerySet
from django.utils.translation import gettext as _

from civicore.agencies import permissions
from civicore.core.errors import NotFound, PermissionDenied
from civicore.exchange.models import ChangeEvent, Delivery
from civicore.identity.models import Person, ProfileItem
from civicore.registry.models import AgencyApplication

OFFICE_FILTERS = ("failing", "dead", "pending", "delivered", "all")


# --- citizens ---------------------------------------------------------------------------------


def change_events_of(*, person: Person) -> QuerySet[ChangeEvent]:
    """The person's profile changes (payment events are the paying agency's, not listed here)."""
    return (
        ChangeEvent.objects.filter(person=person, kind=ChangeEvent.Kind.PROFILE)
        .annotate(
            told=Count("deliveries", filter=Q(deliveries__status=Delivery.Status.DELIVERED)),
            subscribers=Count("deliveries"),
        )
        .order_by("-id")
    )


def change_event_of(*, person: Person | None, event_uuid: Any) -> tuple[ChangeEvent, list[Delivery]]:
    """One of the person's own change events with its deliveries; anyone else's is not found."""
    event = (
        ChangeEvent.objects.filter(person=person, uuid=event_uuid, kind=ChangeEvent.Kind.PROFILE)
        .select_related("agency")
        .first()
        if person is not None
        else None
    )
    if event is None:
        raise NotFound(_("Change not found."), code="change_not_found")
    deliveries = list(
        Delivery.objects.filter(event=event)
        .select_related("application__agency")
        .order_by("application__agency__code", "application__client_id")
    )
    return event, deliveries


# --- officers ---------------------------------------------------------------------------------


def _scope(user: Any) -> Q:
    """Which deliveries `user` may see and replay: staff everything; an officer who manages the
    agency's systems, the deliveries to that agency's applications; anyone else none (403)."""
    if getattr(user, "is_authenticated", False) and (user.is_superuser or user.is_staff):
        return Q()
    officer = permissions.officer_with_perm(
        user,
        permissions.SYSTEMS_MANAGE,
        message=_("Only officers who manage the agency's systems can see its deliveries."),
    )
    return Q(application__agency_id=officer.agency_id)


def deliveries_for(*, user: Any, state: str = "failing") -> QuerySet[Delivery]:
    qs = Delivery.objects.filter(_scope(user)).select_related("application__agency", "event")
    if state == "failing":
        qs = qs.filter(Q(status=Delivery.Status.DEAD) | Q(status=Delivery.Status.PENDING, attempts__gt=0))
    elif state in Delivery.Status.values:
        qs = qs.filter(status=state)
    return qs.order_by("-id")


def delivery_for(*, user: Any, delivery_id: int) -> Delivery:
    """One delivery: 404 if it does not exist, 403 if it belongs to another agency."""
    delivery = Delivery.objects.select_related("application__agency", "event").filter(pk=delivery_id).first()
    if delivery is None:
        raise NotFound(_("Delivery not found."), code="delivery_not_found")
    if not Delivery.objects.filter(_scope(user), pk=delivery_id).exists():
        raise PermissionDenied(_("This delivery belongs to another agency."), code="other_agency")
    return delivery


def dead_deliveries_for(*, user: Any) -> QuerySet[Delivery]:
    return Delivery.objects.filter(_scope(user), status=Delivery.Status.DEAD)


def status_counts(*, user: Any = None) -> dict[str, int]:
    qs = Delivery.objects.all() if user is None else Delivery.objects.filter(_scope(user))
    counts = Counter(dict(qs.values_list("status").annotate(n=Count("id")).values_list("status", "n")))
    counts["failing"] = qs.filter(status=Delivery.Status.PENDING, attempts__gt=0).count()
    return {key: counts.get(key, 0) for key in ("pending", "failing", "delivered", "dead")}


def status_by_application() -> list[dict[str, Any]]:
    """Per application: deliveries by status and the oldest still pending (for `deliveries status`)."""
    rows = (
        AgencyApplication.objects.filter(deliveries__isnull=False)
        .annotate(
            pending=Count("deliveries", filter=Q(deliveries__status=Delivery.Status.PENDING)),
            delivered=Count("deliveries", filter=Q(deliveries__status=Delivery.Status.DELIVERED)),
            dead=Count("deliveries", filter=Q(deliveries__status=Delivery.Status.DEAD)),
            oldest_pending=Min(
                "deliveries__created_at", filter=Q(deliveries__status=Delivery.Status.PENDING)
            ),
        )
        .values("client_id", "pending", "delivered", "dead", "oldest_pending")
        .order_by("client_id")
    )
    return [dict(row) for row in rows]


# --- the worker: what a batch of requests is built from ------------------------------------


@dataclass(slots=True)
class EventData:
    uuid: str
    person_id: int
    created_at: datetime
    cause: str
    national_id: str
    kind: str = ChangeEvent.Kind.PROFILE
    agency_id: int | None = None
    data: dict[str, Any] = field(default_factory=dict)  # a payment event's payload


@dataclass(slots=True)
class ApplicationData:
    client_id: str
    agency_id: int | None
    webhook_url: str
    active: bool
    allowed_items: frozenset[str]
    payment_events: bool = False


def batch_context(
    *, event_ids: Iterable[int], application_ids: Iterable[int], keys: Iterable[str]
) -> tuple[dict[int, EventData], dict[int, ApplicationData], dict[tuple[int, str], ProfileItem]]:
    """Events (with the person's national ID, and a payment event's payload), applications and
    the current profile items the deliveries of one batch need (none for payment events)."""
    events: dict[int, EventData] = {}
    rows = ChangeEvent.objects.filter(id__in=set(event_ids)).values_list(
        "id", "uuid", "person_id", "created_at", "cause", "person__national_id", "kind", "agency_id", "data"
    )  # fmt: skip
    for pk, event_uuid, person_id, created_at, cause, national_id, kind, agency_id, data in rows:
        events[pk] = EventData(
            str(event_uuid), person_id, created_at, cause, national_id or "", kind, agency_id, data or {}
        )
    apps = AgencyApplication.objects.filter(id__in=set(application_ids)).values_list(
        "id", "client_id", "agency_id", "webhook_url", "active", "allowed_items", "payment_events"
    )
    applications = {
        pk: ApplicationData(client_id, agency_id, url, active, frozenset(allowed or []), payment_events)
        for pk, client_id, agency_id, url, active, allowed, payment_events in apps
    }
    person_ids = {e.person_id for e in events.values() if e.kind == ChangeEvent.Kind.PROFILE}
    items = {
        (item.person_id, item.key): item
        for item in ProfileItem.objects.filter(person_id__in=person_ids, key__in=set(keys)).select_related(
            "agency"
        )
    }
    return events, applications, items
