"""The daily reconciliation report: for one agency and one day, what the ledger counts as paid
beside what the gateway confirmed in signed messages and what the bank's statements showed,
with every difference listed for an officer to clear.

Reads only (a selector module). Days are local days (settings.TIME_ZONE), as bank statements book
them. Money is counted by method: bank transfers against the statements, gateway payments against
the gateway's own messages (callbacks and status answers, verified before they were recorded).
"""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from dataclasses import dataclass, field

from django.db.models import Q
from django.utils import timezone
from django.utils.translation import gettext as _

from civicore.agencies import permissions
from civicore.agencies.models import Officer
from civicore.payments.models import Payment, PaymentEvent, Refund, StatementLine

GATEWAY_SOURCES = (PaymentEvent.Source.GATEWAY_CALLBACK, PaymentEvent.Source.GATEWAY_QUERY)
QUEUED = (StatementLine.Status.UNMATCHED, StatementLine.Status.MISMATCH, StatementLine.Status.PAID_TWICE)


@dataclass
class Column:
    """One way of counting the day's money: how many, and how much."""

    count: int = 0
    amount_minor: int = 0

    def add(self, amount: int) -> None:
        self.count += 1
        self.amount_minor += amount


@dataclass(frozen=True, slots=True)
class Difference:
    kind: str  # a stable code, for the CSV and for filters
    reference: str  # the payment's reference, or the bank's for a statement line
    amount_minor: int
    currency: str
    note: str  # what an officer should look at, in the reader's language


@dataclass
class Report:
    day: dt.date
    currency: str
    ledger: dict[str, Column] = field(default_factory=lambda: defaultdict(Column))
    confirmed: dict[str, Column] = field(default_factory=lambda: defaultdict(Column))
    refunded: Column = field(default_factory=Column)
    differences: list[Difference] = field(default_factory=list)

    @property
    def balanced(self) -> bool:
        return not self.differences


def _day_bounds(day: dt.date) -> tuple[dt.datetime, dt.datetime]:
    start = timezone.make_aware(dt.datetime.combine(day, dt.time.min))
    return start, start + dt.timedelta(days=1)


def reconciliation_report(*, officer: Officer | None, day: dt.date, currency: str = "VND") -> Report:
    """The day's reconciliation for the officer's agency (payment.view)."""
    officer = permissions.require(officer, permissions.PAYMENT_VIEW)
    start, end = _day_bounds(day)
    report = Report(day=day, currency=currency)
    agency = officer.agency_id

    paid = list(
        Payment.objects.filter(agency_id=agency, currency=currency, paid_at__gte=start, paid_at__lt=end)
        .only("pk", "reference", "method", "gateway", "paid_minor", "amount_minor", "currency")
        .order_by("pk")
    )
    for payment in paid:
        report.ledger[_column(payment)].add(payment.paid_minor)

    # What the bank booked to the agency's accounts that day, and what the gateway confirmed.
    lines = list(
        StatementLine.objects.filter(collection_account__agency_id=agency, currency=currency, booked_on=day)
        .only("pk", "bank_reference", "amount_minor", "currency", "status", "payment_id")
        .order_by("pk")
    )
    for line in lines:
        if line.status in (StatementLine.Status.MATCHED, StatementLine.Status.RESOLVED) and line.payment_id:
            report.confirmed[Payment.Method.VIETQR].add(line.amount_minor)
    gateway_paid = {
        event.payment_id: event
        for event in PaymentEvent.objects.filter(
            payment__agency_id=agency, kind="paid", source__in=GATEWAY_SOURCES, at__gte=start, at__lt=end
        ).only("payment_id", "amount_minor", "data")
    }
    for payment in paid:
        event = gateway_paid.get(payment.pk)
        if payment.method == Payment.Method.GATEWAY and event is not None:
            report.confirmed[_column(payment)].add(event.amount_minor or 0)

    # Differences, each with what to look at.
    matched_payments = {line.payment_id for line in lines if line.payment_id}
    earlier_lines = set(
        StatementLine.objects.filter(payment__in=[p.pk for p in paid], booked_on__lt=day).values_list(
            "payment_id", flat=True
        )
    )
    for payment in paid:
        if payment.method == Payment.Method.VIETQR and payment.pk not in matched_payments | earlier_lines:
            report.differences.append(
                Difference(
                    "transfer_not_on_statement",
                    payment.reference,
                    payment.paid_minor,
                    payment.currency,
                    _("Counted as paid, but no statement line for this day shows the transfer."),
                )  # fmt: skip
            )
        if payment.method == Payment.Method.GATEWAY and payment.pk not in gateway_paid:
            report.differences.append(
                Difference(
                    "gateway_not_confirmed",
                    payment.reference,
                    payment.paid_minor,
                    payment.currency,
                    _("Counted as paid, but no message from the gateway that day confirms it."),
                )  # fmt: skip
            )
    for line in lines:
        if line.status in QUEUED:
            report.differences.append(
                Difference(
                    f"statement_{line.status}",
                    line.bank_reference,
                    line.amount_minor,
                    line.currency,
                    str(StatementLine.Status(line.status).label),
                )  # fmt: skip
            )
    for event in PaymentEvent.objects.filter(
        Q(kind="mismatch") | Q(kind="paid_twice"),
        payment__agency_id=agency,
        source__in=GATEWAY_SOURCES,
        at__gte=start,
        at__lt=end,
    ).select_related("payment"):
        report.differences.append(
            Difference(
                f"gateway_{event.kind}",
                event.payment.reference,
                event.amount_minor or 0,
                event.payment.currency,
                _("The gateway reported money this payment cannot take; settle it with the gateway."),
            )  # fmt: skip
        )
    for payment in Payment.objects.filter(
        agency_id=agency,
        currency=currency,
        method=Payment.Method.GATEWAY,
        status__in=(Payment.Status.CREATED, Payment.Status.PENDING),
        expires_at__lt=end,
        created_at__lt=end,
    ).only("reference", "amount_minor", "currency"):
        report.differences.append(
            Difference(
                "gateway_unresolved",
                payment.reference,
                payment.amount_minor,
                payment.currency,
                _("Past its time and the gateway has not said whether it was paid."),
            )  # fmt: skip
        )
    for refund in Refund.objects.filter(
        payment__agency_id=agency,
        payment__currency=currency,
        completed_at__gte=start,
        completed_at__lt=end,
        status=Refund.Status.SUCCEEDED,
    ).only("amount_minor"):
        report.refunded.add(refund.amount_minor)
    return report


def _column(payment: Payment) -> str:
    return payment.gateway if payment.method == Payment.Method.GATEWAY else Payment.Method.VIETQR
