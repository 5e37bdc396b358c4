"""Every change to the payments ledger.

A payment moves created -> pending -> paid, or to failed or expired; a paid one to partly
refunded and refunded. Outside events (gateway callbacks and status answers, bank statement
lines) are applied by key, under the payment's row lock, so one that arrives twice, late or out
of order is counted once: a failure after the money arrived changes nothing, money after an
expiry still counts (and is marked late), money that arrives twice or with another amount waits
for an officer instead of being counted. Every change is an event and an audit entry.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any

from django.conf import settings
from django.db import transaction
from django.db.models import Sum
from django.utils import timezone
from django.utils.translation import gettext as _

from civicore.agencies import permissions
from civicore.applications.models import Application
from civicore.audit import services as audit
from civicore.core import jobs
from civicore.core.errors import ApplicationError, Conflict, NotFound, ValidationFailed
from civicore.identity.models import Person
from civicore.organisations import selectors as organisation_selectors
from civicore.payments import camt, fees, references
from civicore.payments.gateways import (
    ForgedMessage,
    GatewayError,
    GatewayResult,
    GatewayStatus,
    PaymentStart,
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
SETTLED = (Status.PAID, Status.PARTIALLY_REFUNDED, Status.REFUNDED)
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
# (the application's case, the receipt, the agency's webhooks), so the ledger knows none of them.
# A hook must be idempotent: the job is retried after a failure or a crash.
paid_hooks: list[Callable[[Payment], None]] = []


def _ttl(method: str) -> timedelta:
    minutes = (
        settings.PAYMENT_VIETQR_TTL_MINUTES
        if method == Payment.Method.VIETQR
        else settings.PAYMENT_GATEWAY_TTL_MINUTES
    )
    return timedelta(minutes=minutes)


def application_quote(application: Application, *, today: Any = None) -> fees.FeeQuote:
    """The fee this application owes, from the definition it was filed under."""
    day = today or timezone.localdate(application.submitted_at or timezone.now())
    return fees.quote(
        application.service_version.definition["fee"],
        answers=application.answers,
        verified=set(application.prefill),
        today=day,
    )


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
) -> PaymentEvent:
    event = PaymentEvent.objects.create(
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
    audit.record(
        actor=actor if actor is not None else f"payments:{source}",
        action=f"payment.{kind}",
        subject=payment,
        person=None,
        agency=payment.agency,
        details={
            "reference": payment.reference,
            "from": payment.status,
            "to": to_status,
            "amount": amount,
            "key": key,
            **(data or {}),
        },
    )
    return event


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
    quote = application_quote(application)
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


def _locked(reference: str) -> Payment | None:
    return Payment.objects.select_for_update().filter(reference=reference).first()


def _seen(key: str) -> bool:
    return PaymentEvent.objects.filter(key=key).exists()


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


@transaction.atomic
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
    """Money arrived for a payment (a gateway said so, or a bank statement showed it)."""
    payment = _locked(reference)
    if payment is None:
        return Settled(Outcome.UNKNOWN, None)
    # Checked under the lock: a twin of this event that got the lock first has committed by now.
    if _seen(key):
        return Settled(Outcome.REPEATED, payment)
    details = {**(data or {}), "gateway_transaction": gateway_transaction, "bank_reference": bank_reference}
    if amount_minor != payment.amount_minor or currency != payment.currency:
        details.update(expected=payment.amount_minor, currency=currency)
        _record(
            payment, kind="mismatch", source=source, to_status=payment.status, key=key,
            amount=amount_minor, data=details, at=at,
        )  # fmt: skip
        return Settled(Outcome.MISMATCH, payment)
    if payment.status in SETTLED:
        _record(
            payment, kind="paid_twice", source=source, to_status=payment.status, key=key,
            amount=amount_minor, data=details, at=at,
        )  # fmt: skip
        return Settled(Outcome.PAID_TWICE, payment)
    late = payment.status in (Status.FAILED, Status.EXPIRED)
    _record(
        payment, kind="paid", source=source, to_status=Status.PAID, key=key, amount=amount_minor,
        data={**details, "late": late}, at=at,
    )  # fmt: skip
    payment.status = Status.PAID
    payment.paid_minor = amount_minor
    payment.paid_at = at
    payment.late = late
    payment.gateway_transaction = gateway_transaction or payment.gateway_transaction
    payment.bank_reference = bank_reference or payment.bank_reference
    payment.save(
        update_fields=[
            "status", "paid_minor", "paid_at", "late", "gateway_transaction", "bank_reference", "updated_at",
        ]
    )  # fmt: skip
    # A durable job in the same transaction: what follows the money (the case, the receipt, the
    # agency's systems) happens even if this process dies right after the commit.
    jobs.enqueue("payments.paid", payment_id=payment.pk)
    return Settled(Outcome.APPLIED, payment)


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
    if _seen(key):
        return Settled(Outcome.REPEATED, payment)
    details = {**(data or {}), "code": code}
    if Status.FAILED not in _ALLOWED[payment.status]:
        _record(
            payment, kind="ignored", source=source, to_status=payment.status, key=key, data=details, at=at
        )
        return Settled(Outcome.IGNORED, payment)
    _record(payment, kind="fail", source=source, to_status=Status.FAILED, key=key, data=details, at=at)
    payment.status = Status.FAILED
    payment.save(update_fields=["status", "updated_at"])
    return Settled(Outcome.APPLIED, payment)


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


def payment_expire_due(*, now: datetime | None = None, batch: int = 500) -> int:
    """Expire open payments past their time (bank transfers only: gateway payments are asked
    about first, by the reconciler). Returns how many expired."""
    now = now or timezone.now()
    expired = 0
    due = Payment.objects.filter(status__in=OPEN, expires_at__lte=now, method=Payment.Method.VIETQR)
    for reference in due.values_list("reference", flat=True)[:batch]:
        with transaction.atomic():
            payment = _locked(reference)
            if payment is None or not payment.is_open or payment.expires_at > now:
                continue
            _record(payment, kind="expire", source=Source.SYSTEM, to_status=Status.EXPIRED, at=now)
            payment.status = Status.EXPIRED
            payment.save(update_fields=["status", "updated_at"])
            expired += 1
    return expired


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
    )  # fmt: skip
    locked.refunded_minor = refunded
    locked.status = to
    locked.save(update_fields=["refunded_minor", "status", "updated_at"])
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


_LINE_STATUS = {
    Outcome.APPLIED: StatementLine.Status.MATCHED,
    Outcome.REPEATED: StatementLine.Status.MATCHED,
    Outcome.MISMATCH: StatementLine.Status.MISMATCH,
    Outcome.PAID_TWICE: StatementLine.Status.PAID_TWICE,
}


def _accounts_of(statement: camt.Statement) -> dict[str, CollectionAccount]:
    wanted = {report.account.id for report in statement.reports}
    found = {a.account_number: a for a in CollectionAccount.objects.filter(account_number__in=wanted)}
    unknown = sorted(wanted - set(found))
    if unknown:
        raise StatementAccountUnknown(
            _("The statement is for accounts no agency collects fees into: %(accounts)s.")
            % {"accounts": ", ".join(unknown)},
            details={"accounts": unknown},
        )
    return found


def _match(
    line: camt.StatementLine, account: CollectionAccount, bank_reference: str, at: datetime
) -> tuple[str, Payment | None]:
    text = " ".join(filter(None, (line.remittance_info, line.creditor_reference, line.end_to_end_id)))
    for reference in references.find(text):
        settled = payment_settle(
            reference=reference,
            amount_minor=line.amount,
            currency=line.currency,
            source=Source.STATEMENT,
            key=f"bank:{account.bank_bin}:{account.account_number}:{bank_reference}",
            at=at,
            bank_reference=bank_reference,
        )
        if settled.outcome is not Outcome.UNKNOWN:
            return _LINE_STATUS[settled.outcome], settled.payment
    return StatementLine.Status.UNMATCHED, None


def _bank_reference(line: camt.StatementLine, checksum: str, report_id: str, index: int) -> str:
    """The bank's own id for the entry; without one, the entry is known only in this file."""
    return (line.servicer_reference or line.entry_reference or f"{checksum[:16]}:{report_id}:{index}")[:80]


@transaction.atomic
def statement_import(*, data: bytes, filename: str, actor: Any = None) -> StatementImport:
    """Read a camt.053 statement or camt.054 notification and match each credit booked to an
    agency's collection account by reference and amount. A line the bank reported before (in a
    notification, then in the day's statement) counts once; what matches nothing, or matches with
    another amount, waits in the account's agency's reconciliation queue. All or nothing: a file
    that cannot be read, or names an unknown account, changes nothing."""
    checksum = camt.statement_checksum(data)
    if StatementImport.objects.filter(checksum=checksum).exists():
        raise StatementRepeated(_("This statement file has been imported already."))
    statement = camt.read_statement(data)
    accounts = _accounts_of(statement)
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
    # Lines reported before: one query for the file, not one per line.
    seen = set(
        StatementLine.objects.filter(
            account__in={account.account_number for account, _, _ in credits},
            bank_reference__in={reference for _, _, reference in credits},
        ).values_list("account", "bank_reference")
    )
    for account, line, bank_reference in credits:
        counts["lines"] += 1
        if (account.account_number, bank_reference) in seen:
            counts["repeated"] += 1
            continue
        seen.add((account.account_number, bank_reference))
        booked = line.booking_date or line.value_date or timezone.localdate()
        at = timezone.make_aware(datetime.combine(booked, datetime.min.time()))
        status, payment = _match(line, account, bank_reference, at)
        StatementLine.objects.create(
            statement=imported,
            collection_account=account,
            account=account.account_number,
            bank_reference=bank_reference,
            booked_on=booked,
            amount_minor=line.amount,
            currency=line.currency,
            remittance=line.remittance_info[:500],
            debtor_name=line.debtor_name or "",
            status=status,
            payment=payment,
        )
        counts["matched" if status == StatementLine.Status.MATCHED else "queued"] += 1
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
