"""Writes of the exchange: the outbox rows for a change or a payment event, delivery outcomes,
receipts and replays.

`change_events_record` runs inside the transaction that changes the profile, and
`payment_events_record` inside the ledger's, so an event and its deliveries exist exactly when
the change committed. Delivery outcomes are written in bulk, one
statement per batch, with an audit entry and a message-log entry for every confirmed delivery.
Everything here is safe to run in several workers at once: claims skip rows another worker
holds, outcome writes only touch deliveries that are still pending.
"""

from __future__ import annotations

import hashlib
import random
import uuid
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from django.db import connection, transaction
from django.db.models import Exists, OuterRef, QuerySet
from django.urls import reverse
from django.utils import timezone, translation
from django.utils.formats import date_format
from django.utils.translation import gettext as _

from civicore.audit.models import AuditEntry
from civicore.exchange import conf
from civicore.exchange.models import ChangeEvent, Delivery
from civicore.registry.models import AgencyApplication, MessageLogEntry

# PostgreSQL channel a worker listens on; a commit that creates due deliveries wakes it at once.
NOTIFY_CHANNEL = "civicore_exchange"
DELIVERED_ACTION = "exchange.change.delivered"
PAYMENT_DELIVERED_ACTION = "exchange.payment.delivered"
REPLAY_ACTION = "exchange.delivery.replay"
OPERATION = "change.deliver"
PAYMENT_OPERATION = "payment.deliver"
_WEBHOOK_NAMESPACE = uuid.UUID("6f1b8a52-3c0e-4d7a-9a43-2b1f6d2c9e10")


def webhook_id_for(event_uuid: uuid.UUID, client_id: str) -> str:
    """The idempotency key of one event for one subscriber: derived, so it never changes."""
    return "msg_" + uuid.uuid5(_WEBHOOK_NAMESPACE, f"{event_uuid}:{client_id}").hex


def backoff(attempt: int, *, jitter: bool = True) -> float:
    """Seconds to wait after the `attempt`-th failure: base, 2 base, 4 base ... capped, +-25%."""
    base = conf.get_float("EXCHANGE_BACKOFF_BASE_SECONDS")
    cap = conf.get_float("EXCHANGE_BACKOFF_MAX_SECONDS")
    delay = min(base * 2 ** max(attempt - 1, 0), cap)
    if jitter:
        # Spread retries so deliveries that failed together (a receiver went down) do not all
        # come back in the same instant.
        delay *= 0.75 + random.random() * 0.5  # noqa: S311 - timing jitter, not security
    return min(delay, cap)


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _notify_workers() -> None:
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute(f"NOTIFY {NOTIFY_CHANNEL}")


# --- the outbox -------------------------------------------------------------------------------


@dataclass
class Change:
    """One change to one person's profile, as the identity signal describes it."""

    person: Any
    changes: list[dict[str, Any]]
    cause: str = ""
    agency: Any = None
    actor: Any = None
    keys: list[str] = field(init=False)

    def __post_init__(self) -> None:
        self.keys = sorted({str(c["key"]) for c in self.changes if c.get("key")})


def _subscribers() -> list[tuple[int, str, set[str]]]:
    rows = (
        AgencyApplication.objects.filter(active=True)
        .exclude(webhook_url="")
        .values_list("id", "client_id", "subscribed_items", "allowed_items")
    )
    return [
        (app_id, client_id, set(subscribed or []) & set(allowed or []))
        for app_id, client_id, subscribed, allowed in rows
        if subscribed
    ]


def change_events_record(*, changes: Sequence[Change]) -> list[ChangeEvent]:
    """Write one ChangeEvent per change and one pending Delivery per subscribed application whose
    subscribed items intersect it, in the caller's transaction: the same four statements (the
    subscribers, two bulk inserts, a NOTIFY) for one change or ten thousand."""
    changes = [c for c in changes if c.keys]
    if not changes:
        return []
    subscribers = _subscribers()
    now = timezone.now()
    events = [
        ChangeEvent(
            person=c.person,
            items=c.keys,
            changes=[
                {"key": ch.get("key"), "source": ch.get("source", ""), "verified_at": ch.get("verified_at")}
                for ch in c.changes
            ],
            cause=(c.cause or "")[:60],
            agency=c.agency,
            actor_label=str(c.actor)[:200] if c.actor is not None else "",
            created_at=now,
        )
        for c in changes
    ]
    with transaction.atomic(savepoint=False):
        ChangeEvent.objects.bulk_create(events)
        deliveries = [
            Delivery(
                event=event,
                application_id=app_id,
                webhook_id=webhook_id_for(event.uuid, client_id),
                items=sorted(items & set(event.items)),
                next_attempt_at=now,
                created_at=now,
            )
            for event in events
            for app_id, client_id, items in subscribers
            if items & set(event.items)
        ]
        if deliveries:
            Delivery.objects.bulk_create(deliveries, batch_size=2000)
            _notify_workers()
    return events


def change_event_record(
    *, person: Any, changes: list[dict[str, Any]], cause: str = "", agency: Any = None, actor: Any = None
) -> ChangeEvent | None:
    """The outbox for one change (see change_events_record); None when no item key was given."""
    events = change_events_record(
        changes=[Change(person=person, changes=changes, cause=cause, agency=agency, actor=actor)]
    )
    return events[0] if events else None


def on_profile_items_changed(sender: Any, **kwargs: Any) -> None:
    """Receiver of identity's `profile_items_changed`, sent inside the change's transaction."""
    change_event_record(
        person=kwargs["person"],
        changes=list(kwargs.get("changes") or []),
        cause=kwargs.get("cause") or "",
        agency=kwargs.get("agency"),
        actor=kwargs.get("actor"),
    )


# --- payment events -----------------------------------------------------------------------------

# The ledger's event kinds the paying agency's systems are told about, and the webhook type each
# is sent as. Anything else the ledger records (created, pending, failed, expired, refund
# requests) stays between the payer and Civicore.
PAYMENT_EVENT_TYPES: dict[str, str] = {
    "paid": "payment.paid",
    "refund": "payment.refunded",
    "mismatch": "payment.held",
    "paid_twice": "payment.held",
}
_HELD_REASONS = {"mismatch": "amount_mismatch", "paid_twice": "paid_twice"}


@dataclass(slots=True)
class PaymentChange:
    """One ledger event of a payment, as `payment_events_record` takes it. The payment's row must
    already show its state after the event (its other facts are read from it)."""

    payment_id: int
    agency_id: int
    kind: str  # the ledger's PaymentEvent.kind: paid, refund, mismatch, paid_twice (others ignored)
    from_status: str
    to_status: str
    amount_minor: int | None  # the money of this event: paid, refunded now, or the credit held
    occurred_at: datetime
    currency: str = ""  # that money's currency when it is not the payment's (a mismatched credit)


def _iso(value: datetime) -> str:
    return value.astimezone(UTC).isoformat().replace("+00:00", "Z")


def _payment_subscribers(agency_ids: set[int]) -> dict[int, list[tuple[int, str]]]:
    """(id, client_id) of the active applications with a webhook URL that asked for their own
    agency's payment events, by agency: one query."""
    found: dict[int, list[tuple[int, str]]] = {}
    rows = (
        AgencyApplication.objects.filter(agency_id__in=agency_ids, active=True, payment_events=True)
        .exclude(webhook_url="")
        .order_by("id")
        .values_list("agency_id", "id", "client_id")
    )
    for agency_id, app_id, client_id in rows:
        found.setdefault(agency_id, []).append((app_id, client_id))
    return found


def payment_subscribed_sql(agency: str = "%s") -> str:
    """SQL selecting one boolean column `yes`: whether any application of the agency `agency`
    (by default a parameter; or an SQL expression, such as an outer query's column) asked for
    payment events (what `_payment_subscribers` reads).
    A writer that already sends one statement per ledger change makes it part of that statement
    and calls `payment_event_record` only when it says yes: the change pays no query of its own
    for agencies without a subscriber."""
    qn = connection.ops.quote_name
    table = qn(AgencyApplication._meta.db_table)
    return (
        f"SELECT EXISTS (SELECT 1 FROM {table} WHERE {qn('agency_id')} = {agency} AND {qn('active')}"  # noqa: S608
        f" AND {qn('payment_events')} AND {qn('webhook_url')} <> '') AS yes"
    )


def _payment_facts(payment_ids: set[int]) -> dict[int, tuple[Any, ...]]:
    from civicore.payments.models import Payment

    rows = Payment.objects.filter(id__in=payment_ids).values_list(
        "id", "agency_id", "payer_id", "reference", "application__reference", "service__code", "method",
        "amount_minor", "currency", "paid_minor", "refunded_minor", "late",
    )  # fmt: skip
    return {row[0]: row[1:] for row in rows}


def payment_events_record(*, events: Sequence[PaymentChange]) -> list[ChangeEvent]:
    """Write one payment ChangeEvent and one pending Delivery per application of the payment's
    own agency that subscribed to payment events, in the caller's transaction; events nobody
    subscribed to are not written. One query when no agency concerned has a subscriber; else
    that, one read of the payments, two bulk inserts and a NOTIFY, for one event or a
    statement's thousands."""
    wanted = [e for e in events if e.kind in PAYMENT_EVENT_TYPES]
    if not wanted:
        return []
    subscribers = _payment_subscribers({e.agency_id for e in wanted})
    wanted = [e for e in wanted if e.agency_id in subscribers]
    if not wanted:
        return []
    facts = _payment_facts({e.payment_id for e in wanted})
    now = timezone.now()
    built: list[tuple[ChangeEvent, int]] = []
    for e in wanted:
        fact = facts.get(e.payment_id)
        if fact is None:
            continue
        agency_id, payer_id, reference, application_reference, service_code, method = fact[:6]
        amount, currency, paid_minor, refunded_minor, late = fact[6:]
        if agency_id != e.agency_id:
            # Only ever the payment's own agency's systems: a caller naming another is a bug.
            raise ValueError(f"payment {e.payment_id} belongs to agency {agency_id}, not {e.agency_id}")
        event_type = PAYMENT_EVENT_TYPES[e.kind]
        data: dict[str, Any] = {
            "type": event_type,
            "occurred_at": _iso(e.occurred_at),
            "payment": {
                "reference": reference,
                "application_reference": application_reference,
                "service_code": service_code,
                "method": method,
                "amount_minor": amount,
                "currency": currency,
                "paid_minor": paid_minor,
                "refunded_minor": refunded_minor,
                "late": late,
            },
            "status_from": e.from_status,
            "status_to": e.to_status,
            "amount_minor": e.amount_minor,
            "currency": e.currency or currency,
            "held_reason": _HELD_REASONS.get(e.kind),
        }
        event = ChangeEvent(
            kind=ChangeEvent.Kind.PAYMENT,
            person_id=payer_id,
            agency_id=e.agency_id,
            items=[],
            changes=[],
            data=data,
            cause=event_type,
            created_at=now,
        )
        built.append((event, e.agency_id))
    if not built:
        return []
    with transaction.atomic(savepoint=False):
        ChangeEvent.objects.bulk_create([event for event, _agency in built])
        Delivery.objects.bulk_create(
            [
                Delivery(
                    event=event,
                    application_id=app_id,
                    webhook_id=webhook_id_for(event.uuid, client_id),
                    items=[],
                    next_attempt_at=now,
                    created_at=now,
                )
                for event, agency_id in built
                for app_id, client_id in subscribers[agency_id]
            ],
            batch_size=2000,
        )
        _notify_workers()
    return [event for event, _agency in built]


def payment_event_record(
    *,
    payment: Any,
    kind: str,
    from_status: str,
    to_status: str,
    amount_minor: int | None,
    occurred_at: datetime,
    currency: str = "",
) -> ChangeEvent | None:
    """The outbox for one ledger event of `payment` (see payment_events_record): None when it is
    not an event agencies are told about, or no system of the payment's agency subscribed."""
    events = payment_events_record(
        events=[
            PaymentChange(
                payment_id=payment.pk,
                agency_id=payment.agency_id,
                kind=kind,
                from_status=from_status,
                to_status=to_status,
                amount_minor=amount_minor,
                occurred_at=occurred_at,
                currency=currency,
            )
        ]
    )
    return events[0] if events else None


# --- claiming and recording (the dispatcher's writes) ---------------------------------------


@dataclass(slots=True)
class Claimed:
    id: int
    event_id: int
    application_id: int
    items: list[str]
    attempts: int
    webhook_id: str


def deliveries_claim(*, worker_id: str, limit: int, skip_applications: Iterable[int] = ()) -> list[Claimed]:
    """Lease up to `limit` due deliveries for this worker (SKIP LOCKED on PostgreSQL).

    The lease is next_attempt_at moved forward: if the worker dies, the row is due again when
    the lease runs out, and another worker sends it again (at least once).
    """
    now = timezone.now()
    lease = now + timedelta(seconds=conf.get_float("EXCHANGE_LEASE_SECONDS"))
    with transaction.atomic():
        qs = Delivery.objects.filter(status=Delivery.Status.PENDING, next_attempt_at__lte=now)
        skip = list(skip_applications)
        if skip:
            qs = qs.exclude(application_id__in=skip)
        qs = qs.order_by("next_attempt_at", "id")
        if connection.features.has_select_for_update_skip_locked:
            qs = qs.select_for_update(skip_locked=True)
        rows = list(
            qs.values_list("id", "event_id", "application_id", "items", "attempts", "webhook_id")[:limit]
        )
        if rows:
            Delivery.objects.filter(id__in=[r[0] for r in rows]).update(
                next_attempt_at=lease, locked_until=lease, locked_by=worker_id[:100]
            )
    return [Claimed(*row) for row in rows]


def deliveries_lease_renew(*, worker_id: str, ids: Sequence[int]) -> int:
    """Extend the lease of deliveries this worker still holds (queued behind a slow receiver)."""
    if not ids:
        return 0
    lease = timezone.now() + timedelta(seconds=conf.get_float("EXCHANGE_LEASE_SECONDS"))
    return Delivery.objects.filter(
        id__in=list(ids), status=Delivery.Status.PENDING, locked_by=worker_id[:100]
    ).update(next_attempt_at=lease, locked_until=lease)


def deliveries_release(*, worker_id: str, ids: Sequence[int]) -> int:
    """Give back deliveries this worker claimed but never sent (it is stopping): due at once."""
    if not ids:
        return 0
    return Delivery.objects.filter(
        id__in=list(ids), status=Delivery.Status.PENDING, locked_by=worker_id[:100]
    ).update(next_attempt_at=timezone.now(), locked_until=None, locked_by="")


@dataclass(slots=True)
class Attempt:
    """What happened when one claimed delivery was sent (or could not be)."""

    delivery_id: int
    attempts_before: int
    status: int | None
    error: str
    finished_at: datetime
    application_id: int
    agency_id: int | None
    client_id: str
    person_id: int | None
    event_uuid: str
    items: list[str]
    webhook_id: str
    request_digest: str = ""
    response_digest: str = ""
    permanent: bool = False  # no point retrying (410 Gone, application withdrawn)
    event_kind: str = ChangeEvent.Kind.PROFILE

    @property
    def confirmed(self) -> bool:
        return self.status is not None and 200 <= self.status < 300


_UPDATE_COLUMNS = "status, attempts, next_attempt_at, delivered_at, last_status, last_error"


def _write_outcomes(rows: list[tuple[Any, ...]]) -> None:
    table = Delivery._meta.db_table
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            # One statement for the whole batch, whatever each row's outcome.
            columns = list(zip(*rows, strict=True))
            cursor.execute(
                f"""
                UPDATE {table} AS d SET status = v.status, attempts = v.attempts,
                    next_attempt_at = v.next_at, delivered_at = COALESCE(d.delivered_at, v.delivered_at),
                    last_status = v.last_status, last_error = v.last_error,
                    locked_until = NULL, locked_by = ''
                FROM unnest(%s::bigint[], %s::varchar[], %s::int[], %s::timestamptz[],
                            %s::timestamptz[], %s::int[], %s::text[])
                    AS v(id, status, attempts, next_at, delivered_at, last_status, last_error)
                WHERE d.id = v.id AND d.status = 'pending'
                """,  # noqa: S608 - the table name is our own model's
                [list(c) for c in columns],
            )
        else:
            cursor.executemany(
                f"""
                UPDATE {table} SET status = %s, attempts = %s, next_attempt_at = %s,
                    delivered_at = COALESCE(delivered_at, %s), last_status = %s, last_error = %s,
                    locked_until = NULL, locked_by = ''
                WHERE id = %s AND status = 'pending'
                """,  # noqa: S608 - the table name is our own model's
                [(*row[1:], row[0]) for row in rows],
            )


def deliveries_record(*, attempts: Sequence[Attempt]) -> None:
    """Write the outcome of sent deliveries in one transaction.

    2xx: delivered, with an audit entry (the citizen sees which agency was told what, when) and a
    message-log entry. 410 Gone or a permanent failure: dead at once. Anything else: retried after
    a back-off, dead after EXCHANGE_MAX_ATTEMPTS. A delivery no longer pending (another worker
    recorded it) is left alone, but every confirmed message is logged.
    """
    if not attempts:
        return
    max_attempts = conf.get_int("EXCHANGE_MAX_ATTEMPTS")
    rows: list[tuple[Any, ...]] = []
    confirmed: list[Attempt] = []
    for a in attempts:
        n = a.attempts_before + 1
        error = a.error[:1000]
        if a.confirmed:
            rows.append(
                (
                    a.delivery_id,
                    Delivery.Status.DELIVERED.value,
                    n,
                    a.finished_at,
                    a.finished_at,
                    a.status,
                    "",
                )
            )
            confirmed.append(a)
        elif a.permanent or a.status == 410 or n >= max_attempts:
            rows.append((a.delivery_id, Delivery.Status.DEAD.value, n, a.finished_at, None, a.status, error))
        else:
            retry_at = a.finished_at + timedelta(seconds=backoff(n))
            rows.append((a.delivery_id, Delivery.Status.PENDING.value, n, retry_at, None, a.status, error))
    with transaction.atomic():
        _write_outcomes(rows)
        if confirmed:
            _log_confirmed(confirmed)


def _log_confirmed(confirmed: list[Attempt]) -> None:
    def payment(a: Attempt) -> bool:
        return a.event_kind == ChangeEvent.Kind.PAYMENT

    entries = AuditEntry.objects.bulk_create(
        [
            AuditEntry(
                at=a.finished_at,
                actor=None,
                actor_label="system",
                agency_id=a.agency_id,
                action=PAYMENT_DELIVERED_ACTION if payment(a) else DELIVERED_ACTION,
                subject_type="exchange.delivery",
                subject_id=str(a.delivery_id),
                person_id=a.person_id,
                details={
                    "client_id": a.client_id,
                    "items": a.items,
                    "event": a.event_uuid,
                    "message_id": a.webhook_id,
                    "direction": MessageLogEntry.Direction.OUTBOUND.value,
                    "status": a.status,
                    "request_sha256": a.request_digest,
                    "response_sha256": a.response_digest,
                },
            )
            for a in confirmed
        ]
    )
    MessageLogEntry.objects.bulk_create(
        [
            MessageLogEntry(
                at=a.finished_at,
                application_id=a.application_id,
                direction=MessageLogEntry.Direction.OUTBOUND,
                operation=PAYMENT_OPERATION if payment(a) else OPERATION,
                message_id=a.webhook_id,
                person_id=a.person_id,
                items=a.items,
                status=a.status or 0,
                request_digest=a.request_digest,
                response_digest=a.response_digest,
                audit_entry_id=entry.pk,
            )
            for a, entry in zip(confirmed, entries, strict=True)
        ]
    )


# --- the citizen's receipt --------------------------------------------------------------------


def _settled_events() -> QuerySet[ChangeEvent]:
    """Profile changes whose receipt is due (payment events never get one: the payer is told
    about the payment by the ledger, not by the exchange)."""
    pending = Delivery.objects.filter(event=OuterRef("pk"), status=Delivery.Status.PENDING)
    return ChangeEvent.objects.filter(receipt_sent_at__isnull=True, kind=ChangeEvent.Kind.PROFILE).exclude(
        Exists(pending)
    )


def _receipt_text(event: ChangeEvent, deliveries: list[Delivery]) -> tuple[str, str]:
    subject = _("Who we told about the change to your details")
    if not deliveries:
        body = _("Your details changed. No agency subscribes to these items, so no agency needed telling.")
        return subject, body
    told = [d for d in deliveries if d.status == Delivery.Status.DELIVERED]
    failed = [d for d in deliveries if d.status != Delivery.Status.DELIVERED]
    per_agency = Counter(d.application.agency_id for d in deliveries)

    def recipient(d: Delivery) -> str:
        # An agency told through two of its systems is named with each system.
        if per_agency[d.application.agency_id] > 1:
            return f"{d.application.agency.name} ({d.application.name})"
        return d.application.agency.name

    lines = [_("Your details changed. We told the agencies that keep them, so you do not have to:")]
    for d in told:
        when = date_format(timezone.localtime(d.delivered_at), "SHORT_DATETIME_FORMAT")  # type: ignore[arg-type]
        lines.append("- " + _("%(agency)s (confirmed %(when)s)") % {"agency": recipient(d), "when": when})
    if failed:
        lines.append(
            _(
                "We could not reach these agencies' systems yet. The message is kept and will be "
                "sent again once their system is working:"
            )
        )
        lines.extend("- " + recipient(d) for d in failed)
    lines.append(_("The details page lists each agency and when it confirmed."))
    return subject, "\n".join(lines)


def receipts_send(*, limit: int = 500) -> int:
    """Send the citizen one receipt for each change whose deliveries are all settled (confirmed
    or dead); a change no agency subscribes to is settled at once. Returns how many were sent."""
    from civicore.notify.services import notification_send

    sent = 0
    while True:
        ids = list(_settled_events().order_by("id").values_list("id", flat=True)[:limit])
        if not ids:
            return sent
        with transaction.atomic():
            locked = ChangeEvent.objects.filter(id__in=ids, receipt_sent_at__isnull=True)
            if connection.features.has_select_for_update_skip_locked:
                locked = locked.select_for_update(skip_locked=True, of=("self",))
            events = list(locked.select_related("person__user"))
            deliveries: dict[int, list[Delivery]] = {}
            for d in (
                Delivery.objects.filter(event__in=events)
                .select_related("application__agency")
                .order_by("delivered_at", "id")
            ):
                deliveries.setdefault(d.event_id, []).append(d)
            for event in events:
                user = event.person.user
                with translation.override(user.preferred_language or "vi"):
                    subject, body = _receipt_text(event, deliveries.get(event.pk, []))
                    notification_send(
                        user=user,
                        subject=subject,
                        body=body,
                        link=reverse("exchange:change_receipt", kwargs={"event_uuid": event.uuid}),
                    )
            ChangeEvent.objects.filter(id__in=[e.pk for e in events]).update(receipt_sent_at=timezone.now())
        sent += len(events)
        if len(ids) < limit:
            return sent


# --- officers: replaying dead letters -------------------------------------------------------


def deliveries_replay(*, actor: Any, deliveries: QuerySet[Delivery]) -> int:
    """Send dead (or failing) deliveries again at once with a fresh set of attempts; audited per
    delivery. `deliveries` must already be limited to what the actor may replay (selectors).
    Deliveries a worker holds right now are left to it. Returns how many were replayed."""
    now = timezone.now()
    replayable = (
        deliveries.filter(status__in=[Delivery.Status.DEAD, Delivery.Status.PENDING])
        .exclude(status=Delivery.Status.PENDING, attempts=0)
        .exclude(locked_until__gt=now)
    )
    total = 0
    with transaction.atomic():
        while True:
            batch = list(
                replayable.order_by("id").values_list(
                    "id", "status", "attempts", "event__person_id", "event__uuid", "application__agency_id",
                    "application__client_id",
                )[:5000]
            )  # fmt: skip
            if not batch:
                break
            Delivery.objects.filter(id__in=[row[0] for row in batch]).update(
                status=Delivery.Status.PENDING,
                attempts=0,
                next_attempt_at=now,
                locked_until=None,
                locked_by="",
            )
            AuditEntry.objects.bulk_create(
                [
                    AuditEntry(
                        at=now,
                        actor=actor if getattr(actor, "is_authenticated", False) else None,
                        actor_label=str(actor) if actor is not None else "system",
                        agency_id=agency_id,
                        action=REPLAY_ACTION,
                        subject_type="exchange.delivery",
                        subject_id=str(delivery_id),
                        person_id=person_id,
                        details={
                            "client_id": client_id,
                            "event": str(event_uuid),
                            "previous_status": status,
                            "previous_attempts": attempts,
                        },
                    )
                    for delivery_id, status, attempts, person_id, event_uuid, agency_id, client_id in batch
                ]
            )
            total += len(batch)
        if total:
            _notify_workers()
    return total
