"""Every change to the payments ledger.

A payment moves created -> pending -> paid, or to failed or expired; a paid one to partly
refunded and refunded. Outside events (gateway callbacks and status answers, bank statement
lines) are applied by key, under the payment's row lock, so one that arrives twice, late or out
of order is counted once: a failure after the money arrived changes nothing, money after an
expiry still counts (and is marked late), money that arrives twice or with another amount waits
for an officer instead of being counted. Every change is an event and an audit entry.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any

from django.conf import settings
from django.db import IntegrityError, connection, transaction
from django.db.models import Field, Sum
from django.db.transaction import TransactionManagementError
from django.utils import timezone
from django.utils.translation import gettext as _

from civicore.agencies import permissions
from civicore.applications.models import Application
from civicore.audit import services as audit
from civicore.catalogue.presentation import format_money
from civicore.core import jobs, rowsql
from civicore.core.errors import ApplicationError, Conflict, NotFound, ValidationFailed
from civicore.core.models import IdempotencyRecord
from civicore.exchange import services as exchange
from civicore.identity.models import Person
from civicore.organisations import selectors as organisation_selectors
from civicore.payments import camt, references, selectors
from civicore.payments.gateways import (
    ForgedMessage,
    GatewayError,
    GatewayResult,
    GatewayStatus,
    PaymentStart,
    UnsupportedPayment,
    gateway_for,
)
from civicore.payments.models import (
    CollectionAccount,
    Payment,
    PaymentEvent,
    Refund,
    StatementImport,
    StatementLine,
)

Status = Payment.Status
Source = PaymentEvent.Source

OPEN = (Status.CREATED, Status.PENDING)
SETTLED = selectors.SETTLED
# Where a status may go; anything else is recorded as an event that changed nothing.
_ALLOWED: dict[str, set[str]] = {
    Status.CREATED: {Status.PENDING, Status.PAID, Status.FAILED, Status.EXPIRED},
    Status.PENDING: {Status.PAID, Status.FAILED, Status.EXPIRED},
    Status.FAILED: {Status.PAID},
    Status.EXPIRED: {Status.PAID},
    Status.PAID: {Status.PARTIALLY_REFUNDED, Status.REFUNDED},
    Status.PARTIALLY_REFUNDED: {Status.PARTIALLY_REFUNDED, Status.REFUNDED},
    Status.REFUNDED: set(),
}


class NotPayable(Conflict):
    """This application cannot be paid for now."""

    code = "not_payable"


class NothingToPay(Conflict):
    """There is no fee to pay for this application."""

    code = "nothing_to_pay"


class AlreadyPaid(Conflict):
    """The fee for this application has been paid."""

    code = "already_paid"


class PaymentNotFound(NotFound):
    """There is no such payment."""

    code = "payment_not_found"


class Outcome(StrEnum):
    """What applying an outside event did."""

    APPLIED = "applied"  # the payment changed
    REPEATED = "repeated"  # this event was applied before: nothing more
    IGNORED = "ignored"  # too late to matter (a failure after the money arrived)
    MISMATCH = "mismatch"  # amount or currency differs: held for an officer
    PAID_TWICE = "paid_twice"  # money for a payment already paid: held for an officer
    UNKNOWN = "unknown"  # no payment has this reference


@dataclass(frozen=True, slots=True)
class Settled:
    outcome: Outcome
    payment: Payment | None


# Called by the `payments.paid` job with each payment that became paid: other apps register here
# (the application's case, the receipt), so the ledger knows none of them. (The agency's systems
# are told through the exchange's outbox, written by `_record` in the change's own transaction.)
# A hook must be idempotent: the job is retried after a failure or a crash.
paid_hooks: list[Callable[[Payment], None]] = []


def payer_notify_paid(payment: Payment) -> None:
    """Tell the payer the fee is paid (a paid hook): once, however often the job runs."""
    from civicore.notify.services import notification_send

    with transaction.atomic():
        locked = _locked(payment.reference)
        if locked is None or locked.events.filter(kind="payer_notified").exists():
            return
        _record(locked, kind="payer_notified", source=Source.SYSTEM, to_status=locked.status)
        application = locked.application
        notification_send(
            user=locked.payer.user,
            subject=_("Fee paid for application %(ref)s") % {"ref": application.reference},
            body=_("We received %(amount)s for application %(ref)s. Your e-receipt is on the payment's page.")
            % {"amount": format_money(locked.amount_minor, locked.currency), "ref": application.reference},
            link=f"/payments/{locked.public_id}/",
        )


def _ttl(method: str) -> timedelta:
    minutes = (
        settings.PAYMENT_VIETQR_TTL_MINUTES
        if method == Payment.Method.VIETQR
        else settings.PAYMENT_GATEWAY_TTL_MINUTES
    )
    return timedelta(minutes=minutes)


def _record(
    payment: Payment,
    *,
    kind: str,
    source: str,
    to_status: str,
    key: str | None = None,
    amount: int | None = None,
    data: dict[str, Any] | None = None,
    at: datetime | None = None,
    actor: Any = None,
    changes: dict[str, Any] | None = None,
    job: str = "",
    unless_seen: bool = False,
    unlocked: bool = False,
) -> PaymentEvent | None:
    """Record a change to a payment: its event and audit entry and, when given, the payment's new
    field values (`changes`, set on the instance once written) and a job to run after the commit
    (`job`, with the payment's id); on PostgreSQL in one statement. With `unless_seen`, nothing is
    written and None returned when an event with this key has been recorded: checked by that
    same statement, which begins after the caller took the payment's row lock, so it sees a
    twin of the event that held the lock first and committed.

    With `unlocked` (PostgreSQL, outside a transaction: see `_settle_unlocked`) the caller read
    the payment without a lock; the statement writes only if the payment's status is still the
    one read, and raises _RaceLost when it was not (nothing written)."""
    event = PaymentEvent(
        payment=payment,
        key=key,
        source=source,
        kind=kind,
        from_status=payment.status,
        to_status=to_status,
        amount_minor=amount,
        data=data or {},
        at=at or timezone.now(),
    )
    entry = audit.entry(
        actor=actor if actor is not None else f"payments:{source}",
        action=f"payment.{kind}",
        subject=payment,
        person=None,
        agency=None,
        details={
            "reference": payment.reference,
            "from": payment.status,
            "to": to_status,
            "amount": amount,
            "key": key,
            **(data or {}),
        },
    )
    entry.agency_id = payment.agency_id  # the id is enough: loading the agency was a query
    rows: list[Any] = [event, entry]
    if job:
        rows.append(jobs.job_row(job, payment_id=payment.pk))
    fields = {**(changes or {}), "updated_at": timezone.now()} if changes else {}
    # Unlocked, the caller read that no system of the agency asked (else it would be locked).
    told = kind in exchange.PAYMENT_EVENT_TYPES and not unlocked
    written, subscribed = _write(
        payment, fields, rows, unless_seen=key if unless_seen else None, told=told, unlocked=unlocked
    )
    if not written:
        if unlocked and written is None:
            raise _RaceLost()
        return None
    for name, value in fields.items():
        setattr(payment, name, value)
    if job:
        jobs.enqueued(rows[-1])
    if told and subscribed is not False:
        # Paid, refunded or held: the agency's subscribed systems are told, from this transaction.
        exchange.payment_event_record(
            payment=payment, kind=kind, from_status=event.from_status, to_status=to_status,
            amount_minor=amount, occurred_at=event.at, currency=str((data or {}).get("currency") or ""),
        )  # fmt: skip
    return event


_WRITES: dict[tuple[str, ...], tuple[list[tuple[str, str]], str]] = {}


def _write(
    payment: Payment,
    fields: dict[str, Any],
    rows: list[Any],
    *,
    unless_seen: str | None,
    told: bool,
    unlocked: bool = False,
) -> tuple[bool | None, bool | None]:
    """Insert `rows` and update the payment's `fields`, unless an event with the key
    `unless_seen` exists; returns whether anything was written and, when `told` (an event the
    agency's systems may have asked for), whether any of them did (None: not known here). On
    PostgreSQL one statement: the key check, the UPDATE and the subscription check are parts of
    its WITH list, and the rows are written only when the key check passes.

    `unlocked` (PostgreSQL only): the payment was read without a lock, so the statement also
    locks its row on the condition that its status is still `payment.status` (re-checked after
    waiting for a concurrent writer, as PostgreSQL re-checks a row it waited for), and writes
    only then; (None, None) when that condition failed."""
    conn = connection
    if unlocked and conn.vendor != "postgresql":
        raise NotImplementedError("unlocked writes are for PostgreSQL")
    if conn.vendor != "postgresql":
        if unless_seen is not None and _seen(unless_seen):
            return False, None
        if fields:
            Payment.objects.filter(pk=payment.pk).update(**fields)
        rowsql.insert(*rows)
        return True, None
    meta = Payment._meta
    targets: list[Field[Any, Any]] = [meta.get_field(name) for name in fields]  # type: ignore[misc]
    shape = (
        *fields,
        "?" if unless_seen is not None else "",
        "told" if told else "",
        "cas" if unlocked else "",
    )
    if shape not in _WRITES:
        qn = conn.ops.quote_name
        parts = []
        conditions = []
        if unless_seen is not None:
            events = qn(PaymentEvent._meta.db_table)
            check = f"SELECT NOT EXISTS (SELECT 1 FROM {events} WHERE {qn('key')} = %s) AS ok"  # noqa: S608
            parts.append(("fresh", check))
            conditions.append("(SELECT ok FROM fresh)")
        where = f"{qn('id')} = %s" + (f" AND {qn('status')} = %s" if unlocked else "")
        if targets:
            assignments = ", ".join(f"{qn(str(field.column))} = %s" for field in targets)
            update = (
                f"UPDATE {qn(meta.db_table)} SET {assignments} WHERE {where}"  # noqa: S608
                + "".join(f" AND {condition}" for condition in conditions)
                + f" RETURNING {qn('id')}"
            )
            parts.append(("changed", update))
            if unlocked:
                conditions.append("EXISTS (SELECT 1 FROM changed)")
        elif unlocked:
            lock = f"SELECT {qn('id')} FROM {qn(meta.db_table)} WHERE {where} FOR UPDATE"  # noqa: S608
            parts.append(("changed", lock))
            conditions.append("EXISTS (SELECT 1 FROM changed)")
        if told:
            parts.append(("subscribed", exchange.payment_subscribed_sql()))
        _WRITES[shape] = (parts, " AND ".join(conditions))
    parts, condition = _WRITES[shape]
    params: dict[str, list[Any]] = {
        "fresh": [unless_seen],
        "changed": [
            *(field.get_db_prep_save(fields[field.name], connection=conn) for field in targets),
            payment.pk,
            *([payment.status] if unlocked else []),
        ],
        "subscribed": [payment.agency_id],
    }
    asked = {
        "subscribed": "(SELECT yes FROM subscribed)" if told else "",
        "fresh": "(SELECT ok FROM fresh)" if unlocked and unless_seen is not None else "",
        "changed": "EXISTS (SELECT 1 FROM changed)" if unlocked else "",
    }
    returning = {name: sql for name, sql in asked.items() if sql}
    values = rowsql.insert(
        *rows,
        before=[(name, sql, params[name]) for name, sql in parts],
        only_if=condition,
        returning=list(returning.values()),
    )
    returned = dict(zip(returning, values, strict=True))
    if unlocked and returned.get("fresh", True) and not returned["changed"]:
        return None, None  # the status changed since it was read: nothing was written
    return rows[0].pk is not None, bool(returned["subscribed"]) if told else None


@transaction.atomic
def payment_start(
    *, application: Application, payer: Person, method: str, gateway: str = "", now: datetime | None = None
) -> Payment:
    """The payment the payer is to make for an application's fee: the open one for this method,
    or a new one with its own reference."""
    now = now or timezone.now()
    application = (
        Application.objects.select_for_update()
        .select_related("service", "service_version")
        .get(pk=application.pk)
    )
    if application.status != Application.Status.SUBMITTED:
        raise NotPayable(_("Submit the application before paying its fee."))
    if application.organisation is not None:
        # A business's fee is paid only by a member holding a current `pay` grant for the service.
        organisation_selectors.require_grant(
            person=payer,
            organisation=application.organisation,
            service=application.service,
            ability=organisation_selectors.PAY,
        )
    elif application.applicant_id != payer.pk:
        raise NotPayable(_("Only the applicant can pay the fee for this application."))
    payments = list(Payment.objects.filter(application=application))
    if any(p.status in SETTLED for p in payments):
        raise AlreadyPaid(_("The fee for this application has been paid."))
    quote = selectors.application_quote(application)
    if quote.total <= 0:
        raise NothingToPay(_("There is no fee to pay for this application."))
    account = None
    if method == Payment.Method.VIETQR:
        account = (
            CollectionAccount.objects.filter(
                agency=application.service.agency, currency=quote.currency, active=True
            )
            .order_by("pk")
            .first()
        )
        if account is None:
            raise NotPayable(_("This agency does not take bank transfers yet: pay by card or e-wallet."))
    for existing in payments:
        if (
            existing.is_open
            and existing.method == method
            and existing.gateway == gateway
            and existing.amount_minor == quote.total
            and existing.expires_at > now
        ):
            return existing
    payment = Payment.objects.create(
        reference=references.new_reference(),
        application=application,
        service=application.service,
        agency=application.service.agency,
        payer=payer,
        organisation_id=application.organisation_id,
        method=method,
        gateway=gateway,
        collection_account=account,
        amount_minor=quote.total,
        currency=quote.currency,
        breakdown=quote.as_json(),
        created_at=now,
        expires_at=now + _ttl(method),
    )
    _record(
        payment,
        kind="create",
        source=Source.PAYER,
        to_status=Status.CREATED,
        amount=payment.amount_minor,
        data={"method": method, "gateway": gateway},
        at=now,
        actor=payer.user,
    )
    return payment


_LOCK_SQL: dict[str, str] = {}


def _locked(reference: str) -> Payment | None:
    """The payment with this reference, its row locked until the transaction ends; one
    statement, prepared once per connection on PostgreSQL (it is on every callback's path)."""
    conn = connection
    if not conn.in_atomic_block:
        raise TransactionManagementError("_locked() takes a row lock: call it inside a transaction.")
    sql = _LOCK_SQL.get(conn.vendor)
    if sql is None:
        qn = conn.ops.quote_name
        sql = (
            f"SELECT {rowsql.columns(Payment, 'p')} FROM {qn(Payment._meta.db_table)} AS p "  # noqa: S608
            f"WHERE p.{qn('reference')} = %s" + (" FOR UPDATE" if conn.features.has_select_for_update else "")
        )
        _LOCK_SQL[conn.vendor] = sql
    with rowsql.cursor() as cursor:
        cursor.execute(sql, [reference])
        row = cursor.fetchone()
    return rowsql.from_row(Payment, row) if row is not None else None


def _read_unlocked(reference: str) -> tuple[Payment, bool] | None:
    """The payment with this reference, read without a lock, and whether any system of its
    agency asked for payment events: one prepared statement (PostgreSQL)."""
    sql = _LOCK_SQL.get("unlocked")
    if sql is None:
        qn = connection.ops.quote_name
        subscribed = exchange.payment_subscribed_sql(agency=f"p.{qn('agency_id')}")
        sql = (
            f"SELECT {rowsql.columns(Payment, 'p')}, ({subscribed}) FROM {qn(Payment._meta.db_table)} AS p "  # noqa: S608
            f"WHERE p.{qn('reference')} = %s"
        )
        _LOCK_SQL["unlocked"] = sql
    with rowsql.cursor() as cursor:
        cursor.execute(sql, [reference])
        row = cursor.fetchone()
    if row is None:
        return None
    payment = rowsql.from_row(Payment, row[:-1])
    return (payment, bool(row[-1])) if payment is not None else None


def _seen(key: str) -> bool:
    """Whether an event with this outside key has been recorded (committed, or in this transaction)."""
    with rowsql.cursor() as cursor:
        cursor.execute('SELECT 1 FROM "payments_paymentevent" WHERE "key" = %s', [key])
        return cursor.fetchone() is not None


@transaction.atomic
def payment_mark_pending(*, payment: Payment, source: str = Source.PAYER) -> Payment:
    """The payer went to the gateway or was shown the transfer details."""
    locked = _locked(payment.reference)
    if locked is None:
        raise PaymentNotFound()
    if locked.status == Status.CREATED:
        _record(locked, kind="pending", source=source, to_status=Status.PENDING)
        locked.status = Status.PENDING
        locked.save(update_fields=["status", "updated_at"])
    return locked


class _RaceLost(Exception):
    """An unlocked write found the payment changed since it was read: nothing was written."""


def payment_settle(
    *,
    reference: str,
    amount_minor: int,
    currency: str,
    source: str,
    key: str,
    at: datetime,
    gateway_transaction: str = "",
    bank_reference: str = "",
    data: dict[str, Any] | None = None,
) -> Settled:
    """Money arrived for a payment (a gateway said so, or a bank statement showed it).

    On PostgreSQL, outside a transaction, first without one (see `_settle_unlocked`): a
    callback then costs a read and a write instead of BEGIN, a locking read, the write and
    COMMIT. Whenever that cannot decide alone, as `_settle_locked` does, under the row lock."""
    facts: dict[str, Any] = {
        "reference": reference, "amount_minor": amount_minor, "currency": currency, "source": source,
        "key": key, "at": at, "gateway_transaction": gateway_transaction, "bank_reference": bank_reference,
        "data": data,
    }  # fmt: skip
    if connection.vendor == "postgresql" and not connection.in_atomic_block:
        settled = _settle_unlocked(**facts)
        if settled is not None:
            return settled
    return _settle_locked(**facts)


def _settle_unlocked(*, reference: str, **facts: Any) -> Settled | None:
    """`payment_settle` without a transaction: the payment is read without a lock and the one
    write statement (autocommit: its own transaction) applies only if the payment's status is
    still the one read; None when another writer got there first, or the agency's systems asked
    for payment events (their outbox rows must commit with the change, in a transaction), and
    the locked path decides."""
    found = _read_unlocked(reference)
    if found is None:
        return Settled(Outcome.UNKNOWN, None)
    payment, subscribed = found
    if subscribed:
        return None
    try:
        return _settle(payment, unlocked=True, **facts)
    except _RaceLost:
        return None
    except IntegrityError:
        # A twin of this event, with the same key, committed after this statement began and
        # before it wrote: the locked path finds it and answers REPEATED.
        return None


@transaction.atomic
def _settle_locked(*, reference: str, **facts: Any) -> Settled:
    payment = _locked(reference)
    if payment is None:
        return Settled(Outcome.UNKNOWN, None)
    return _settle(payment, unlocked=False, **facts)


def _settle(
    payment: Payment,
    *,
    amount_minor: int,
    currency: str,
    source: str,
    key: str,
    at: datetime,
    gateway_transaction: str,
    bank_reference: str,
    data: dict[str, Any] | None,
    unlocked: bool,
) -> Settled:
    details = {**(data or {}), "gateway_transaction": gateway_transaction, "bank_reference": bank_reference}
    # Each outcome is written unless the key was applied before (checked under the lock: a twin
    # of this event that got the lock first has committed by now).
    if amount_minor != payment.amount_minor or currency != payment.currency:
        details.update(expected=payment.amount_minor, currency=currency)
        outcome, recorded = Outcome.MISMATCH, _record(
            payment, kind="mismatch", source=source, to_status=payment.status, key=key,
            amount=amount_minor, data=details, at=at, unless_seen=True, unlocked=unlocked,
        )  # fmt: skip
    elif payment.status in SETTLED:
        outcome, recorded = Outcome.PAID_TWICE, _record(
            payment, kind="paid_twice", source=source, to_status=payment.status, key=key,
            amount=amount_minor, data=details, at=at, unless_seen=True, unlocked=unlocked,
        )  # fmt: skip
    else:
        late = payment.status in (Status.FAILED, Status.EXPIRED)
        # With a durable job in the same transaction: what follows the money (the case, the
        # receipt, the agency's systems) happens even if this process dies right after the commit.
        outcome, recorded = Outcome.APPLIED, _record(
            payment, kind="paid", source=source, to_status=Status.PAID, key=key, amount=amount_minor,
            data={**details, "late": late}, at=at, job="payments.paid", unless_seen=True, unlocked=unlocked,
            changes={
                "status": Status.PAID, "paid_minor": amount_minor, "paid_at": at, "late": late,
                "gateway_transaction": gateway_transaction or payment.gateway_transaction,
                "bank_reference": bank_reference or payment.bank_reference,
            },
        )  # fmt: skip
    return Settled(outcome if recorded is not None else Outcome.REPEATED, payment)


def paid_followups_run(*, payment_id: int) -> None:
    """Run every registered hook for a payment that became paid. Each hook is idempotent: the
    job may run again after a crash."""
    payment = Payment.objects.select_related("application", "service", "agency").get(pk=payment_id)
    for hook in paid_hooks:
        hook(payment)


@transaction.atomic
def payment_fail(
    *, reference: str, source: str, key: str, at: datetime, code: str = "", data: dict[str, Any] | None = None
) -> Settled:
    """The gateway says the payer did not pay (refused, cancelled): the payer may start again."""
    payment = _locked(reference)
    if payment is None:
        return Settled(Outcome.UNKNOWN, None)
    details = {**(data or {}), "code": code}
    if Status.FAILED not in _ALLOWED[payment.status]:
        outcome, recorded = Outcome.IGNORED, _record(
            payment, kind="ignored", source=source, to_status=payment.status, key=key, data=details, at=at,
            unless_seen=True,
        )  # fmt: skip
    else:
        outcome, recorded = Outcome.APPLIED, _record(
            payment, kind="fail", source=source, to_status=Status.FAILED, key=key, data=details, at=at,
            changes={"status": Status.FAILED}, unless_seen=True,
        )  # fmt: skip
    return Settled(outcome if recorded is not None else Outcome.REPEATED, payment)


class GatewayUnavailable(ApplicationError):
    """The payment gateway cannot be reached now."""

    code = "gateway_unavailable"
    status = 503


def _description(payment: Payment) -> str:
    """What the gateway shows the payer: ASCII, no personal data."""
    return f"Civicore fee {payment.reference}"


def payment_checkout(*, payment: Payment, return_url: str, payer_ip: str, locale: str = "vi") -> str:
    """The gateway page where the payer pays for an open gateway payment; the payment is then
    pending. GatewayUnavailable when the gateway is not offered or cannot be reached."""
    if payment.method != Payment.Method.GATEWAY or not payment.is_open:
        raise NotPayable(_("This payment cannot be paid at a gateway now."))
    try:
        gateway = gateway_for(payment.gateway)
        url = gateway.start(
            PaymentStart(
                reference=payment.reference,
                amount_minor=payment.amount_minor,
                currency=payment.currency,
                description=_description(payment),
                return_url=return_url,
                payer_ip=payer_ip,
                created_at=payment.created_at,
                expires_at=payment.expires_at,
                locale="en" if locale.startswith("en") else "vi",
            )
        )
    except (KeyError, GatewayError) as exc:
        raise GatewayUnavailable(
            _("The payment gateway cannot be reached now. Nothing was charged: try again in a few minutes.")
        ) from exc
    except UnsupportedPayment as exc:
        raise NotPayable(
            _("The payment gateway cannot take this payment. Pay by bank transfer instead."),
            code=UnsupportedPayment.code,
        ) from exc
    payment_mark_pending(payment=payment)
    return url


def payment_query(*, payment: Payment, requester_ip: str = "127.0.0.1") -> str:
    """Ask the gateway how an open gateway payment stands and apply its signed answer (the
    callback may have been lost). Returns the outcome as `gateway_result_apply` does, or
    "unavailable" when the gateway could not answer."""
    if payment.method != Payment.Method.GATEWAY:
        return "ok"
    try:
        result = gateway_for(payment.gateway).query(
            reference=payment.reference, created_at=payment.created_at, requester_ip=requester_ip
        )
    except (KeyError, GatewayError, ForgedMessage):
        return "unavailable"
    return gateway_result_apply(gateway=payment.gateway, result=result, source=Source.GATEWAY_QUERY)


def gateway_payments_reconcile(
    *, now: datetime | None = None, quiet_minutes: int = 5, batch: int = 200
) -> dict[str, int]:
    """Ask the gateway about open gateway payments it has been quiet about for `quiet_minutes`
    (a callback lost, a process killed before it was recorded) and apply its signed answers;
    one still open past its time, which the gateway says was never paid, expires. Returns how
    many were asked, settled and expired."""
    now = now or timezone.now()
    counts = {"asked": 0, "settled": 0, "expired": 0}
    due = Payment.objects.filter(
        status__in=OPEN, method=Payment.Method.GATEWAY, updated_at__lte=now - timedelta(minutes=quiet_minutes)
    ).order_by("pk")
    for payment in due[:batch]:
        counts["asked"] += 1
        outcome = payment_query(payment=payment)
        payment.refresh_from_db(fields=["status"])
        if payment.status == Status.PAID:
            counts["settled"] += outcome == "ok"
            continue
        if outcome != "unavailable":  # never expire what the gateway could not be asked about
            counts["expired"] += _expire(payment.reference, now=now)
    return counts


def payment_expire_due(*, now: datetime | None = None, batch: int = 500) -> int:
    """Expire open payments past their time (bank transfers only: gateway payments are asked
    about first, by the reconciler). Returns how many expired."""
    now = now or timezone.now()
    expired = 0
    due = Payment.objects.filter(status__in=OPEN, expires_at__lte=now, method=Payment.Method.VIETQR)
    for reference in due.values_list("reference", flat=True)[:batch]:
        expired += _expire(reference, now=now)
    return expired


@transaction.atomic
def _expire(reference: str, *, now: datetime) -> int:
    """Expire one open payment past its time, checked again under its row lock; 1 if it expired."""
    payment = _locked(reference)
    if payment is None or not payment.is_open or payment.expires_at > now:
        return 0
    _record(payment, kind="expire", source=Source.SYSTEM, to_status=Status.EXPIRED, at=now)
    payment.status = Status.EXPIRED
    payment.save(update_fields=["status", "updated_at"])
    return 1


# --- refunds -----------------------------------------------------------------------------------


class RefundNotAllowed(Conflict):
    """This payment cannot be refunded."""

    code = "refund_not_allowed"


class RefundInvalid(ValidationFailed):
    """The refund is not valid."""

    code = "refund_invalid"


REFUNDABLE = (Status.PAID, Status.PARTIALLY_REFUNDED)
REASON_MAX = 500


def _refund_reference() -> str:
    return "RF" + references.new_reference()[len(references.PREFIX) :]


def _outstanding(payment: Payment) -> int:
    """What may still be refunded: paid, less refunded, less refunds already on their way."""
    waiting = payment.refunds.filter(status=Refund.Status.REQUESTED).aggregate(total=Sum("amount_minor"))
    return payment.refundable_minor - (waiting["total"] or 0)


def _check_refund(payment: Payment, amount_minor: int, reason: str) -> str:
    if payment.status not in REFUNDABLE:
        raise RefundNotAllowed(_("Only a paid payment can be refunded."))
    outstanding = _outstanding(payment)
    if (
        isinstance(amount_minor, bool)
        or not isinstance(amount_minor, int)
        or not 0 < amount_minor <= outstanding
    ):
        raise RefundInvalid(
            _("The amount must be more than nothing and at most %(left)s.") % {"left": outstanding},
            details={"amount": outstanding},
        )
    reason = " ".join(reason.split())
    if not reason or len(reason) > REASON_MAX:
        raise RefundInvalid(
            _("Give the reason for the refund, in at most %(max)s characters.") % {"max": REASON_MAX},
            details={"reason": REASON_MAX},
        )
    return reason


_REFUND_SCOPE = "payment.refund"


def refund_request_once(
    *, payment: Payment, amount_minor: int, reason: str, officer: Any, idempotency_key: str | None
) -> tuple[Refund, bool]:
    """`refund_request` for an agency's system that may send the same request again (API: the
    `Idempotency-Key` header): with a key, the refund the officer's first request with it
    created is returned and nothing more is refunded. Returns the refund and whether this call
    created it. The same key for another payment or another amount is a conflict."""
    if idempotency_key is None:
        refund = refund_request(payment=payment, amount_minor=amount_minor, reason=reason, officer=officer)
        return refund, True
    if not 1 <= len(idempotency_key) <= 200:
        raise ValidationFailed(
            _("The Idempotency-Key header must be 1 to 200 characters."), code="invalid_idempotency_key"
        )
    with transaction.atomic():
        # Under the payment's row lock: a retry sent at the same moment waits, then finds the key.
        if _locked(payment.reference) is None:
            raise PaymentNotFound()
        record = IdempotencyRecord.objects.filter(
            owner_id=officer.user_id, scope=_REFUND_SCOPE, key=idempotency_key
        ).first()
        if record is not None:
            earlier = Refund.objects.filter(reference=record.result_id).first()
            if earlier is None or earlier.payment_id != payment.pk or earlier.amount_minor != amount_minor:
                raise Conflict(
                    _("This Idempotency-Key was used for another request."), code="idempotency_key_reused"
                )
            return earlier, False
        refund = refund_request(payment=payment, amount_minor=amount_minor, reason=reason, officer=officer)
        IdempotencyRecord.objects.create(
            owner_id=officer.user_id, scope=_REFUND_SCOPE, key=idempotency_key, result_id=refund.reference
        )
        return refund, True


@transaction.atomic
def refund_request(*, payment: Payment, amount_minor: int, reason: str, officer: Any) -> Refund:
    """An officer holding payment.refund refunds all or part of a paid payment; the refund goes
    to the gateway in the background (a bank transfer is refunded by the agency's bank, and an
    officer confirms it)."""
    locked = _locked(payment.reference)
    if locked is None:
        raise PaymentNotFound()
    permissions.require(officer, permissions.PAYMENT_REFUND)
    if officer.agency_id != locked.agency_id:
        raise permissions.MissingPermission(_("This payment belongs to another agency."))
    reason = _check_refund(locked, amount_minor, reason)
    refund = Refund.objects.create(
        payment=locked,
        reference=_refund_reference(),
        amount_minor=amount_minor,
        reason=reason,
        status=Refund.Status.REQUESTED,
        requested_by=officer.user,
    )
    _record(
        locked, kind="refund_request", source=Source.OFFICER, to_status=locked.status, amount=amount_minor,
        data={"refund": refund.reference, "reason": reason}, actor=officer.user,
    )  # fmt: skip
    if locked.method == Payment.Method.GATEWAY:
        jobs.enqueue("payments.refund_send", refund_id=refund.pk)
    return refund


def refund_propose(*, application_id: int, reason: str) -> list[Refund]:
    """A rejected application's paid fee is proposed for refund, in full: a cashier of the agency
    accepts (it is then requested as any refund) or declines it with a reason. Proposing again
    changes nothing."""
    proposed = []
    for reference in Payment.objects.filter(application_id=application_id, status__in=REFUNDABLE).values_list(
        "reference", flat=True
    ):
        with transaction.atomic():
            payment = _locked(reference)
            if payment is None or payment.status not in REFUNDABLE:
                continue
            if payment.refunds.filter(status=Refund.Status.PROPOSED).exists():
                continue
            amount = _outstanding(payment)
            if amount <= 0:
                continue
            text = (_("Application rejected: %(reason)s") % {"reason": " ".join(reason.split())})[:REASON_MAX]
            refund = Refund.objects.create(
                payment=payment,
                reference=_refund_reference(),
                amount_minor=amount,
                reason=text,
                status=Refund.Status.PROPOSED,
            )
            _record(
                payment, kind="refund_proposed", source=Source.SYSTEM, to_status=payment.status,
                amount=amount, data={"refund": refund.reference},
            )  # fmt: skip
            proposed.append(refund)
    return proposed


@transaction.atomic
def refund_proposal_decide(
    *, refund: Refund, officer: Any, accept: bool, reason: str = "", amount_minor: int | None = None
) -> Refund:
    """A cashier accepts a proposed refund, in full or for less (`amount_minor`; it is then
    requested as any refund, and sent to the gateway) or declines it, saying why."""
    locked = _locked(refund.payment.reference)
    if locked is None:
        raise PaymentNotFound()
    permissions.require(officer, permissions.PAYMENT_REFUND)
    if officer.agency_id != locked.agency_id:
        raise permissions.MissingPermission(_("This payment belongs to another agency."))
    current = Refund.objects.select_for_update().get(pk=refund.pk)
    if current.status != Refund.Status.PROPOSED:
        raise RefundNotAllowed(_("This refund has been decided already."))
    if not accept:
        note = " ".join(reason.split())
        if not note or len(note) > REASON_MAX:
            raise RefundInvalid(
                _("Give the reason for declining the refund, in at most %(max)s characters.")
                % {"max": REASON_MAX},
                details={"reason": REASON_MAX},
            )
        current.status = Refund.Status.DECLINED
        current.completed_at = timezone.now()
        current.requested_by = officer.user
        current.save(update_fields=["status", "completed_at", "requested_by"])
        _record(
            locked, kind="refund_declined", source=Source.OFFICER, to_status=locked.status,
            amount=current.amount_minor, data={"refund": current.reference, "reason": note},
            actor=officer.user,
        )  # fmt: skip
        return current
    proposed = current.amount_minor
    if amount_minor is not None:
        if (
            isinstance(amount_minor, bool)
            or not isinstance(amount_minor, int)
            or not 0 < amount_minor <= proposed
        ):
            raise RefundInvalid(
                _("The amount must be more than nothing and at most %(left)s.") % {"left": proposed},
                details={"amount": proposed},
            )
        current.amount_minor = amount_minor
    _check_refund(locked, current.amount_minor, current.reason)
    current.status = Refund.Status.REQUESTED
    current.requested_by = officer.user
    current.save(update_fields=["status", "requested_by", "amount_minor"])
    data: dict[str, Any] = {"refund": current.reference, "reason": current.reason}
    if current.amount_minor != proposed:
        data["proposed"] = proposed
    _record(
        locked, kind="refund_request", source=Source.OFFICER, to_status=locked.status,
        amount=current.amount_minor, data=data, actor=officer.user,
    )  # fmt: skip
    if locked.method == Payment.Method.GATEWAY:
        jobs.enqueue("payments.refund_send", refund_id=current.pk)
    return current


@transaction.atomic
def refund_complete(
    *, refund: Refund, accepted: bool, code: str = "", actor: Any = None, source: str = Source.GATEWAY_QUERY
) -> Refund:
    """Record what became of a requested refund; a second report of the same refund changes nothing."""
    locked = _locked(refund.payment.reference)
    if locked is None:
        raise PaymentNotFound()
    current = Refund.objects.select_for_update().get(pk=refund.pk)
    if current.status != Refund.Status.REQUESTED:
        return current
    now = timezone.now()
    current.gateway_code = code
    current.completed_at = now
    if not accepted:
        current.status = Refund.Status.FAILED
        current.save(update_fields=["status", "gateway_code", "completed_at"])
        _record(
            locked, kind="refund_failed", source=source, to_status=locked.status, amount=current.amount_minor,
            data={"refund": current.reference, "code": code}, actor=actor,
        )  # fmt: skip
        return current
    refunded = locked.refunded_minor + current.amount_minor
    to = Status.REFUNDED if refunded >= locked.paid_minor else Status.PARTIALLY_REFUNDED
    _record(
        locked, kind="refund", source=source, to_status=to, key=f"refund:{current.reference}",
        amount=current.amount_minor, data={"refund": current.reference, "code": code}, actor=actor,
        changes={"refunded_minor": refunded, "status": to},
    )  # fmt: skip
    current.status = Refund.Status.SUCCEEDED
    current.save(update_fields=["status", "gateway_code", "completed_at"])
    return current


def refund_confirm_transfer(*, refund: Refund, officer: Any) -> Refund:
    """An officer confirms that the agency's bank sent a bank-transfer refund."""
    permissions.require(officer, permissions.PAYMENT_REFUND)
    if refund.payment.method != Payment.Method.VIETQR or officer.agency_id != refund.payment.agency_id:
        raise RefundNotAllowed(_("Only a bank-transfer refund of your agency is confirmed by hand."))
    return refund_complete(
        refund=refund, accepted=True, code="transfer", actor=officer.user, source=Source.OFFICER
    )


# --- bank statements ---------------------------------------------------------------------------


class StatementRepeated(Conflict):
    """This statement file has been imported already."""

    code = "statement_repeated"


class StatementAccountUnknown(ValidationFailed):
    """The statement is for an account that is not an agency's collection account."""

    code = "statement_account_unknown"


def _accounts_of(statement: camt.Statement, agency_id: int | None = None) -> dict[str, CollectionAccount]:
    """The collection accounts the statement reports on: all of them agencies' (and, given
    `agency_id`, that agency's), or StatementAccountUnknown names the others."""
    wanted = {report.account.id for report in statement.reports}
    accounts = CollectionAccount.objects.filter(account_number__in=wanted)
    if agency_id is not None:
        accounts = accounts.filter(agency_id=agency_id)
    found = {a.account_number: a for a in accounts}
    unknown = sorted(wanted - set(found))
    if unknown and agency_id is not None:
        raise StatementAccountUnknown(
            _("The statement is for accounts your agency does not collect fees into: %(accounts)s.")
            % {"accounts": ", ".join(unknown)},
            details={"accounts": unknown},
        )
    if unknown:
        raise StatementAccountUnknown(
            _("The statement is for accounts no agency collects fees into: %(accounts)s.")
            % {"accounts": ", ".join(unknown)},
            details={"accounts": unknown},
        )
    return found


def _bank_reference(line: camt.StatementLine, checksum: str, report_id: str, index: int) -> str:
    """The bank's own id for the entry; without one, the entry is known only in this file."""
    return (line.servicer_reference or line.entry_reference or f"{checksum[:16]}:{report_id}:{index}")[:80]


# A statement is settled in batches of lines: a chunk's events, audit entries, jobs, statement
# lines and payment updates are each written with one statement.
_STATEMENT_CHUNK = 2000


def _slices(values: list[Any]) -> Iterator[list[Any]]:
    """`values` in pieces small enough for one SQLite query's parameters (it takes 999); on
    PostgreSQL a list goes as one array parameter instead."""
    for start in range(0, len(values), 900):
        yield values[start : start + 900]


@dataclass(slots=True)
class _Held:
    """A payment a statement may settle, as read under its row lock and as the file changes it."""

    pk: int
    reference: str
    status: str
    amount_minor: int
    currency: str
    agency_id: int


def _locked_many(wanted: set[str]) -> dict[str, _Held]:
    """The payments with these references, their rows locked until the transaction ends, in the
    order of their ids (two imports locking the same payments cannot deadlock)."""
    columns = ("pk", "reference", "status", "amount_minor", "currency", "agency_id")
    if connection.vendor == "postgresql":
        # One statement, the references sent as one JSON array (one string for the driver to
        # pass, not a value per element to quote): the rows are locked as they leave the sort, in
        # the order of their ids.
        with connection.cursor() as cursor:
            cursor.execute(
                "SELECT id, reference, status, amount_minor, currency, agency_id FROM payments_payment "
                "WHERE reference IN (SELECT jsonb_array_elements_text(%s::jsonb)) ORDER BY id FOR UPDATE",
                [json.dumps(sorted(wanted))],
            )
            return {row[1]: _Held(*row) for row in cursor.fetchall()}
    ids: list[int] = []
    for piece in _slices(sorted(wanted)):
        ids.extend(Payment.objects.filter(reference__in=piece).values_list("pk", flat=True))
    ids.sort()
    held: dict[str, _Held] = {}
    for piece in _slices(ids):
        rows = Payment.objects.select_for_update().filter(pk__in=piece).order_by("pk").values_list(*columns)
        for row in rows:
            held[row[1]] = _Held(*row)
    return held


def _lines_seen(credits: list[tuple[CollectionAccount, camt.StatementLine, str]]) -> set[tuple[str, str]]:
    """(account, bank reference) of the file's credits that earlier files reported."""
    accounts = sorted({credit[0].account_number for credit in credits})
    bank_references = sorted({credit[2] for credit in credits})
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute(
                "SELECT account, bank_reference FROM payments_statementline WHERE account = ANY(%s) "
                "AND bank_reference IN (SELECT jsonb_array_elements_text(%s::jsonb))",
                [accounts, json.dumps(bank_references)],
            )
            return set(cursor.fetchall())
    seen: set[tuple[str, str]] = set()
    for piece in _slices(bank_references):
        seen.update(
            StatementLine.objects.filter(account__in=accounts, bank_reference__in=piece).values_list(
                "account", "bank_reference"
            )
        )
    return seen


def _keys_seen(keys: list[str]) -> set[str]:
    """Which of these outside keys have been applied (read after the payments were locked)."""
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute(
                "SELECT key FROM payments_paymentevent "
                "WHERE key IN (SELECT jsonb_array_elements_text(%s::jsonb))",
                [json.dumps(keys)],
            )
            return {key for (key,) in cursor.fetchall()}
    seen: set[str] = set()
    for piece in _slices(keys):
        seen.update(
            key for key in PaymentEvent.objects.filter(key__in=piece).values_list("key", flat=True) if key
        )
    return seen


class _StatementBatch:
    """What a chunk of statement lines does to the ledger, gathered, then written together:
    exactly what `payment_settle` would write line by line (the event, its audit entry, the
    payment's new state and its `payments.paid` job), and the statement lines. On PostgreSQL the
    audit entries and jobs are derived by the database from the events and payments written
    (an INSERT … SELECT each), not built here row by row."""

    def __init__(self, imported: StatementImport) -> None:
        self.imported = imported
        self.in_database = connection.vendor == "postgresql"
        self.events: list[tuple[Any, ...]] = []
        self.entries: list[tuple[str, str, str, int | None, dict[str, Any]]] = []
        self.paid: list[tuple[int, int, datetime, bool, str]] = []
        self.lines: list[tuple[Any, ...]] = []
        self.changes: list[exchange.PaymentChange] = []

    def record(self, held: _Held, kind: str, to_status: str, key: str, amount: int, data: dict[str, Any],
               at: datetime) -> None:  # fmt: skip
        """`_record` for a statement line."""
        self.events.append((held.pk, key, Source.STATEMENT, kind, held.status, to_status, amount, data, at))
        self.changes.append(
            exchange.PaymentChange(
                payment_id=held.pk, agency_id=held.agency_id, kind=kind, from_status=held.status,
                to_status=to_status, amount_minor=amount, occurred_at=at, currency=data.get("currency", ""),
            )
        )  # fmt: skip
        if self.in_database:
            return
        details = {
            "reference": held.reference, "from": held.status, "to": to_status, "amount": amount, "key": key,
            **data,
        }  # fmt: skip
        self.entries.append((f"payment.{kind}", "payments.payment", str(held.pk), held.agency_id, details))

    def settle(
        self, held: _Held, line: camt.StatementLine, *, key: str, bank_reference: str, at: datetime
    ) -> str:
        """`payment_settle` for a credit whose key was not applied before; the line's status."""
        details: dict[str, Any] = {"gateway_transaction": "", "bank_reference": bank_reference}
        if line.amount != held.amount_minor or line.currency != held.currency:
            details.update(expected=held.amount_minor, currency=line.currency)
            self.record(held, "mismatch", held.status, key, line.amount, details, at)
            return StatementLine.Status.MISMATCH
        if held.status in SETTLED:
            self.record(held, "paid_twice", held.status, key, line.amount, details, at)
            return StatementLine.Status.PAID_TWICE
        late = held.status in (Status.FAILED, Status.EXPIRED)
        self.record(held, "paid", Status.PAID, key, line.amount, {**details, "late": late}, at)
        held.status = Status.PAID
        self.paid.append((held.pk, line.amount, at, late, bank_reference))
        return StatementLine.Status.MATCHED

    def line(
        self, account: CollectionAccount, line: camt.StatementLine, bank_reference: str, booked: Any,
        status: str, payment_id: int | None,
    ) -> None:  # fmt: skip
        self.lines.append(
            (
                self.imported.pk, account.pk, account.account_number, bank_reference, booked, line.amount,
                line.currency, line.remittance_info[:500], line.debtor_name or "", status, payment_id, "",
            )
        )  # fmt: skip

    def write(self) -> None:
        if self.paid:
            _mark_paid(self.paid)
        rowsql.insert_many(
            PaymentEvent,
            ("payment_id", "key", "source", "kind", "from_status", "to_status", "amount_minor", "data", "at"),
            self.events,
        )
        actor = f"payments:{Source.STATEMENT}"
        if self.in_database and self.events:
            # Each event's entry, as `_record` details it: built from the rows just written.
            audit.record_selected(
                actor=actor,
                select="""SELECT p.agency_id, 'payment.' || e.kind, 'payments.payment', e.payment_id::text,
                        jsonb_build_object('reference', p.reference, 'from', e.from_status, 'to', e.to_status,
                            'amount', e.amount_minor, 'key', e.key) || e.data
                    FROM payments_paymentevent e JOIN payments_payment p ON p.id = e.payment_id
                    WHERE e.key IN (SELECT jsonb_array_elements_text(%s::jsonb)) ORDER BY e.id""",
                params=[json.dumps([event[1] for event in self.events])],
            )
        else:
            audit.record_many(actor=actor, entries=self.entries)
        # The agency's systems that asked are told, as for a callback (after the payments'
        # rows show their new state).
        exchange.payment_events_record(events=self.changes)
        # What follows the money runs from durable jobs written with it, as for a callback.
        jobs.enqueue_each("payments.paid", "payment_id", [pk for pk, *_rest in self.paid])
        rowsql.insert_many(
            StatementLine,
            ("statement_id", "collection_account_id", "account", "bank_reference", "booked_on",
             "amount_minor", "currency", "remittance", "debtor_name", "status", "payment_id", "resolution"),
            self.lines,
        )  # fmt: skip


def _mark_paid(paid: list[tuple[int, int, datetime, bool, str]]) -> None:
    """The payments a statement paid: (id, amount, paid at, late, bank reference) each; on
    PostgreSQL one UPDATE for the batch."""
    now = timezone.now()
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            cursor.execute(
                """UPDATE payments_payment AS p SET status = %s, paid_minor = v.amount, paid_at = v.at,
                    late = v.late, bank_reference = v.bank, updated_at = %s
                FROM jsonb_to_recordset(%s::jsonb)
                    AS v(id bigint, amount bigint, at timestamptz, late boolean, bank text)
                WHERE p.id = v.id""",
                [
                    Status.PAID,
                    now,
                    json.dumps(
                        [
                            {"id": pk, "amount": amount, "at": at.isoformat(), "late": late, "bank": bank}
                            for pk, amount, at, late, bank in paid
                        ]
                    ),
                ],
            )
            return
        ops = connection.ops
        cursor.executemany(
            "UPDATE payments_payment SET status = %s, paid_minor = %s, paid_at = %s, late = %s, "
            "bank_reference = %s, updated_at = %s WHERE id = %s",
            [
                (Status.PAID, amount, ops.adapt_datetimefield_value(at), late, bank,
                 ops.adapt_datetimefield_value(now), pk)
                for pk, amount, at, late, bank in paid
            ],
        )  # fmt: skip


@transaction.atomic
def statement_import(
    *, data: bytes, filename: str, actor: Any = None, agency_id: int | None = None
) -> StatementImport:
    """Read a camt.053 statement or camt.054 notification and match each credit booked to an
    agency's collection account by reference and amount. A line the bank reported before (in a
    notification, then in the day's statement) counts once; what matches nothing, or matches with
    another amount, waits in the account's agency's reconciliation queue. All or nothing: a file
    that cannot be read, or names an unknown account, changes nothing.

    Each credit is settled as `payment_settle` would settle it, in the file's order (a payment
    paid by an earlier line of the file is paid twice by a later one), but in batches: the
    payments the file names are locked first, in the order of their ids, and each chunk of
    lines is written with a statement per table. With `agency_id`, a file naming an account of
    another agency changes nothing either."""
    checksum = camt.statement_checksum(data)
    if StatementImport.objects.filter(checksum=checksum).exists():
        raise StatementRepeated(_("This statement file has been imported already."))
    statement = camt.read_statement(data)
    accounts = _accounts_of(statement, agency_id)
    imported = StatementImport.objects.create(
        checksum=checksum,
        filename=filename[:255],
        message_id=statement.message_id[:100],
        kind=statement.kind,
        imported_by=actor if getattr(actor, "is_authenticated", False) else None,
    )
    counts = {"lines": 0, "matched": 0, "queued": 0, "repeated": 0}
    credits = [
        (accounts[report.account.id], line, _bank_reference(line, checksum, report.id, index))
        for report in statement.reports
        for index, line in enumerate(report.lines)
        # Fees are credits booked to the account; the rest is the bank's business.
        if line.credit and not line.reversal and line.status == "BOOK"
    ]
    seen = _lines_seen(credits)
    fresh = []
    for account, line, bank_reference in credits:
        counts["lines"] += 1
        if (account.account_number, bank_reference) in seen:
            counts["repeated"] += 1
            continue
        seen.add((account.account_number, bank_reference))
        text = " ".join(filter(None, (line.remittance_info, line.creditor_reference, line.end_to_end_id)))
        key = f"bank:{account.bank_bin}:{account.account_number}:{bank_reference}"
        fresh.append((account, line, bank_reference, key, references.find(text)))
    held = _locked_many({reference for *_rest, found in fresh for reference in found})
    applied = _keys_seen([key for _, _, _, key, found in fresh if any(r in held for r in found)])
    moments: dict[Any, datetime] = {}
    for start in range(0, len(fresh), _STATEMENT_CHUNK):
        batch = _StatementBatch(imported)
        for account, line, bank_reference, key, found in fresh[start : start + _STATEMENT_CHUNK]:
            booked = line.booking_date or line.value_date or timezone.localdate()
            at = moments.get(booked)
            if at is None:
                at = moments[booked] = timezone.make_aware(datetime.combine(booked, datetime.min.time()))
            status: str = StatementLine.Status.UNMATCHED
            payment_id = None
            # The first reference in the text that names a payment decides, as payment_settle
            # would: a key applied before is a credit counted already.
            payment = next((held[reference] for reference in found if reference in held), None)
            if payment is not None:
                payment_id = payment.pk
                if key in applied:
                    status = StatementLine.Status.MATCHED
                else:
                    applied.add(key)
                    status = batch.settle(payment, line, key=key, bank_reference=bank_reference, at=at)
            batch.line(account, line, bank_reference, booked, status, payment_id)
            counts["matched" if status == StatementLine.Status.MATCHED else "queued"] += 1
        batch.write()
    for name, value in counts.items():
        setattr(imported, name, value)
    imported.save(update_fields=list(counts))
    audit.record(
        actor=actor,
        action="payment.statement_import",
        subject=imported,
        details={"message_id": imported.message_id, "kind": imported.kind, **counts},
    )
    return imported


# --- what gateways say -------------------------------------------------------------------------


def gateway_result_apply(*, gateway: str, result: GatewayResult, source: str) -> str:
    """Apply a verified gateway statement (callback or status answer) to the ledger; returns the
    outcome in the words of `PaymentGateway.callback_response`."""
    key = f"{gateway}:{result.gateway_transaction or result.reference}:{result.status}"
    at = result.paid_at or timezone.now()
    if result.status == GatewayStatus.PAID:
        if result.amount_minor is None or result.currency is None:
            return "amount_mismatch"
        settled = payment_settle(
            reference=result.reference,
            amount_minor=result.amount_minor,
            currency=result.currency,
            source=source,
            key=key,
            at=at,
            gateway_transaction=result.gateway_transaction,
            data={"gateway": gateway, "code": result.code},
        )
        return {
            Outcome.APPLIED: "ok",
            Outcome.REPEATED: "already_settled",
            Outcome.PAID_TWICE: "already_settled",
            Outcome.MISMATCH: "amount_mismatch",
            Outcome.UNKNOWN: "unknown_payment",
        }[settled.outcome]
    if result.status == GatewayStatus.FAILED:
        failed = payment_fail(
            reference=result.reference, source=source, key=key, at=at, code=result.code,
            data={"gateway": gateway},
        )  # fmt: skip
        if failed.outcome is Outcome.UNKNOWN:
            return "unknown_payment"
        return "ok" if failed.outcome is Outcome.APPLIED else "already_settled"
    if not Payment.objects.filter(reference=result.reference).exists():
        return "unknown_payment"
    return "ok"  # still pending: nothing to record until it ends


# --- officers: reconciliation queue ------------------------------------------------------------


class StatementLineNotQueued(Conflict):
    """This statement line is not waiting for an officer."""

    code = "statement_line_not_queued"


class StatementLineInvalid(ValidationFailed):
    """The resolution of the statement line is not valid."""

    code = "statement_line_invalid"


class StatementLineMismatch(Conflict):
    """The statement line cannot pay this payment."""

    code = "statement_line_mismatch"


QUEUED = (StatementLine.Status.UNMATCHED, StatementLine.Status.MISMATCH, StatementLine.Status.PAID_TWICE)
NOTE_MAX = 500


def _line_key(line: StatementLine) -> str:
    """The key `statement_import` settles a credit under; a held line (wrong amount, paid twice)
    has spent it on the event that held it, so an officer's settlement takes a key of its own.
    The line's row lock and status keep one resolution per line either way."""
    key = f"bank:{line.collection_account.bank_bin}:{line.account}:{line.bank_reference}"
    return f"{key}:officer" if _seen(key) else key


def _apply_line(line: StatementLine, officer: Any, reference: str) -> Payment:
    payment = Payment.objects.filter(reference=reference, agency_id=officer.agency_id).first()
    if payment is None:
        raise StatementLineInvalid(
            _("No payment of your agency has the reference %(reference)s.") % {"reference": reference},
            details={"payment_reference": reference},
        )
    if payment.status in SETTLED:
        raise StatementLineMismatch(
            _("Payment %(reference)s is paid already: resolve the line with a note instead.")
            % {"reference": payment.reference},
            details={"payment_reference": payment.reference},
        )
    if line.amount_minor != payment.amount_minor or line.currency != payment.currency:
        raise StatementLineMismatch(
            _(
                "The credit (%(credit)s %(credit_currency)s) is not the amount of payment %(reference)s "
                "(%(amount)s %(currency)s): it cannot pay it."
            )
            % {
                "credit": camt.format_amount(line.amount_minor, line.currency),
                "credit_currency": line.currency,
                "reference": payment.reference,
                "amount": camt.format_amount(payment.amount_minor, payment.currency),
                "currency": payment.currency,
            },
            details={"payment_reference": payment.reference},
        )
    settled = payment_settle(
        reference=payment.reference,
        amount_minor=line.amount_minor,
        currency=line.currency,
        source=Source.OFFICER,
        key=_line_key(line),
        at=timezone.make_aware(datetime.combine(line.booked_on, datetime.min.time())),
        bank_reference=line.bank_reference,
        data={"statement_line": line.pk, "officer": officer.user_id},
    )
    if settled.outcome is not Outcome.APPLIED:
        # Paid by someone else between the check and the lock: the whole resolution is undone.
        raise StatementLineMismatch(
            _("Payment %(reference)s could not be paid with this credit (%(outcome)s).")
            % {"reference": payment.reference, "outcome": settled.outcome.value},
            details={"payment_reference": payment.reference, "outcome": settled.outcome.value},
        )
    return payment


@transaction.atomic
def statement_line_resolve(
    *, line: StatementLine, officer: Any, payment_reference: str = "", note: str = ""
) -> StatementLine:
    """An officer holding payment.refund takes a line out of the agency's reconciliation queue:
    either applies the credit to one of the agency's open payments (same amount and currency; it
    is settled as a bank credit would have been), or records what was done instead (returned to
    the sender, refunded). A line already resolved is returned as it is."""
    permissions.require(officer, permissions.PAYMENT_REFUND)
    locked = (
        StatementLine.objects.select_for_update()
        .select_related("collection_account")
        .filter(pk=line.pk)
        .first()
    )
    if locked is None or locked.collection_account.agency_id != officer.agency_id:
        raise NotFound(_("Statement line not found."), code="statement_line_not_found")
    if locked.status == StatementLine.Status.RESOLVED:
        return locked
    if locked.status not in QUEUED:
        raise StatementLineNotQueued(_("This statement line matched a payment: nothing to resolve."))
    reference = "".join(payment_reference.split()).upper()
    note = " ".join(note.split())
    if len(note) > NOTE_MAX:
        raise StatementLineInvalid(
            _("Write the note in at most %(max)s characters.") % {"max": NOTE_MAX}, details={"note": NOTE_MAX}
        )
    if reference:
        payment = _apply_line(locked, officer, reference)
        locked.payment = payment
        resolution = note or _("Applied to payment %(reference)s.") % {"reference": payment.reference}
    elif note:
        resolution = note
    else:
        raise StatementLineInvalid(
            _("Say what was done with this credit (for example: returned to the sender)."),
            details={"note": NOTE_MAX},
        )
    locked.status = StatementLine.Status.RESOLVED
    locked.resolved_by = officer.user
    locked.resolution = resolution
    locked.resolved_at = timezone.now()
    locked.save(update_fields=["status", "payment", "resolved_by", "resolution", "resolved_at"])
    audit.record(
        actor=officer.user,
        action="payment.statement_line_resolve",
        subject=locked,
        agency=locked.collection_account.agency,
        details={
            "bank_reference": locked.bank_reference,
            "account": locked.account,
            "applied_to": reference or None,
            "resolution": resolution,
        },
    )
    return locked


@transaction.atomic
def statement_import_by_officer(*, officer: Any, data: bytes, filename: str) -> StatementImport:
    """`statement_import` for an officer holding payment.refund, of a file for their own agency's
    accounts only: a statement naming another agency's account changes nothing."""
    permissions.require(officer, permissions.PAYMENT_REFUND)
    return statement_import(data=data, filename=filename, actor=officer.user, agency_id=officer.agency_id)
