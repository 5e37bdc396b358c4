"""Reads of the payments ledger: a payer's own payments, and an officer's agency's payments and
reconciliation queue (officers holding payment.view, their own agency only)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from typing import Any

from django.db.models import Count, Q, QuerySet, Sum
from django.utils.translation import gettext as _

from civicore.agencies import permissions
from civicore.agencies.models import Officer
from civicore.applications.models import Application
from civicore.core.errors import NotFound
from civicore.identity.models import Person
from civicore.payments.models import Payment, StatementLine

QUEUE = (StatementLine.Status.UNMATCHED, StatementLine.Status.MISMATCH, StatementLine.Status.PAID_TWICE)


def payments_of_application(*, application: Application) -> list[Payment]:
    return list(Payment.objects.filter(application=application).order_by("-created_at"))


def payment_of_payer(*, person: Person | None, public_id: Any) -> Payment:
    """One of the person's own payments (or one for an application filed for them); anyone
    else's is not found."""
    payment = (
        Payment.objects.filter(Q(payer=person) | Q(application__applicant=person), public_id=public_id)
        .select_related("application", "service", "agency")
        .first()
        if person is not None
        else None
    )
    if payment is None:
        raise NotFound(_("Payment not found."), code="payment_not_found")
    return payment


@dataclass(frozen=True, slots=True)
class PaymentFilters:
    status: str = ""
    service: int | None = None
    method: str = ""
    since: date | None = None
    until: date | None = None
    reference: str = ""


def payments_for(*, officer: Officer | None, filters: PaymentFilters = PaymentFilters()) -> QuerySet[Payment]:
    officer = permissions.require(officer, permissions.PAYMENT_VIEW)
    qs = Payment.objects.filter(agency_id=officer.agency_id).select_related("service", "application")
    if filters.status:
        qs = qs.filter(status=filters.status)
    if filters.service:
        qs = qs.filter(service_id=filters.service)
    if filters.method:
        qs = qs.filter(method=filters.method)
    if filters.since:
        qs = qs.filter(created_at__date__gte=filters.since)
    if filters.until:
        qs = qs.filter(created_at__date__lte=filters.until)
    if filters.reference:
        qs = qs.filter(reference=filters.reference.strip().upper())
    return qs.order_by("-created_at", "-pk")


def payment_for(*, officer: Officer | None, public_id: Any) -> Payment:
    officer = permissions.require(officer, permissions.PAYMENT_VIEW)
    payment = (
        Payment.objects.filter(agency_id=officer.agency_id, public_id=public_id)
        .select_related("service", "application", "payer")
        .prefetch_related("events", "refunds", "statement_lines")
        .first()
    )
    if payment is None:
        raise NotFound(_("Payment not found."), code="payment_not_found")
    return payment


def totals_for(*, officer: Officer | None, filters: PaymentFilters = PaymentFilters()) -> dict[str, int]:
    """Counts and sums for the filtered payments: paid, refunded, waiting."""
    qs = payments_for(officer=officer, filters=filters).order_by()
    return qs.aggregate(
        count=Count("pk"),
        paid=Sum("paid_minor", default=0),
        refunded=Sum("refunded_minor", default=0),
        waiting=Count("pk", filter=Q(status__in=[Payment.Status.CREATED, Payment.Status.PENDING])),
    )


def reconciliation_queue(*, officer: Officer | None) -> QuerySet[StatementLine]:
    """Statement lines an officer must look at: no matching payment, the wrong amount, or money
    for a payment already paid; those that came into the officer's agency's accounts."""
    officer = permissions.require(officer, permissions.PAYMENT_VIEW)
    return (
        StatementLine.objects.filter(status__in=QUEUE, collection_account__agency_id=officer.agency_id)
        .select_related("payment", "statement")
        .order_by("booked_on", "pk")
    )
