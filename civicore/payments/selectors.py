"""Reads of the payments ledger: a payer's own payments, and an officer's agency's payments and
reconciliation queue (officers holding payment.view, their own agency only)."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from typing import Any

from django.db.models import BigIntegerField, Count, Exists, F, OuterRef, Prefetch, Q, QuerySet, Subquery, Sum
from django.db.models.fields.json import KT
from django.db.models.functions import Coalesce
from django.utils import timezone
from django.utils.translation import gettext as _

from civicore.agencies import permissions
from civicore.agencies.models import Officer
from civicore.applications.models import Application
from civicore.audit import services as audit
from civicore.audit.models import AuditEntry
from civicore.catalogue.models import Service
from civicore.core.errors import NotFound
from civicore.identity.models import Person
from civicore.organisations import selectors as organisation_selectors
from civicore.organisations.models import Organisation
from civicore.payments import fees, vietqr
from civicore.payments.fees import FeeQuote
from civicore.payments.models import (
    CollectionAccount,
    Payment,
    PaymentEvent,
    Refund,
    StatementImport,
    StatementLine,
)

QUEUE = (StatementLine.Status.UNMATCHED, StatementLine.Status.MISMATCH, StatementLine.Status.PAID_TWICE)


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


SETTLED = (Payment.Status.PAID, Payment.Status.PARTIALLY_REFUNDED, Payment.Status.REFUNDED)


@dataclass(frozen=True, slots=True)
class FeeStatus:
    """Where an application stands with its fee: what it owes, and the payment that paid it or
    the open one the payer is in the middle of."""

    quote: FeeQuote
    paid: Payment | None
    open: Payment | None

    @property
    def charged(self) -> bool:
        return self.quote.total > 0

    @property
    def owed(self) -> bool:
        """A fee is charged and nothing has paid it yet."""
        return self.charged and self.paid is None

    @property
    def blocks_decision(self) -> bool:
        """Officers decide only once a fee due at submission is paid."""
        return self.owed and self.quote.due == fees.SUBMISSION

    @property
    def blocks_release(self) -> bool:
        """The result is handed over only once the fee is paid."""
        return self.owed


def application_quote(application: Application, *, today: Any = None) -> FeeQuote:
    """The fee this application owes, from the definition it was filed under."""
    day = today or timezone.localdate(application.submitted_at or timezone.now())
    return fees.quote(
        application.service_version.definition["fee"],
        answers=application.answers,
        verified=set(application.prefill),
        today=day,
    )


def fee_status(*, application: Application, now: Any = None) -> FeeStatus | None:
    """The fee standing of a submitted application; None for a draft or a service with no fee."""
    if application.status != Application.Status.SUBMITTED:
        return None
    if not application.service_version.definition.get("fee"):
        return None
    quote = application_quote(application)
    payments = list(payments_of(application=application).order_by("-created_at"))
    paid = next((p for p in payments if p.status in SETTLED), None)
    moment = now or timezone.now()
    open_ = next((p for p in payments if p.is_open and p.expires_at > moment), None)
    return FeeStatus(quote=quote, paid=paid, open=open_)


@dataclass(frozen=True, slots=True)
class TransferDetails:
    """What a payer needs to pay an open VietQR payment from any banking app: the code to scan
    and the same details to type."""

    bank_bin: str
    bank_name: str
    account_number: str
    account_name: str
    amount_minor: int
    currency: str
    reference: str
    qr_payload: str


def takes_transfers(*, agency_id: int, currency: str = "VND") -> bool:
    """Whether the agency has an account to collect fees by bank transfer."""
    return CollectionAccount.objects.filter(agency_id=agency_id, currency=currency, active=True).exists()


def transfer_details(*, payment: Payment) -> TransferDetails | None:
    """The transfer details of a bank-transfer payment; None for other methods."""
    account = payment.collection_account
    if payment.method != Payment.Method.VIETQR or account is None:
        return None
    return TransferDetails(
        bank_bin=account.bank_bin,
        bank_name=account.bank_name,
        account_number=account.account_number,
        account_name=account.account_name,
        amount_minor=payment.amount_minor,
        currency=payment.currency,
        reference=payment.reference,
        qr_payload=vietqr.payload(
            bank_bin=account.bank_bin,
            account=account.account_number,
            amount_minor=payment.amount_minor,
            reference=payment.reference,
            currency=payment.currency,
        ),
    )


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


def reconciliation_queue(*, officer: Officer | None) -> QuerySet[StatementLine]:
    """Statement lines an officer must look at: no matching payment, the wrong amount, or money
    for a payment already paid; those that came into the officer's agency's accounts."""
    officer = permissions.require(officer, permissions.PAYMENT_VIEW)
    return (
        StatementLine.objects.filter(status__in=QUEUE, collection_account__agency_id=officer.agency_id)
        .select_related("payment", "statement")
        .order_by("booked_on", "pk")
    )


# --- the payments API: what a payer, a business member or an officer may see ----------------------


def _require_business_grant(*, person: Person, organisation: Organisation, application: Application) -> None:
    """A current grant to pay for, or to see, the application's service on the business's behalf;
    otherwise 403 no_business_role (paying itself needs `pay`, which the service checks)."""
    try:
        organisation_selectors.require_grant(
            person=person,
            organisation=organisation,
            service=application.service,
            ability=organisation_selectors.PAY,
        )
    except organisation_selectors.NoBusinessRole:
        organisation_selectors.require_grant(
            person=person,
            organisation=organisation,
            service=application.service,
            ability=organisation_selectors.VIEW,
        )


def application_for_payer(
    *, person: Person, public_id: Any, organisation: Organisation | None = None
) -> Application:
    """An application whose fee the person may pay and whose payments they may follow: their own,
    or, acting for a business, one of its applications (with a current pay, view or file grant
    for its service, else 403 no_business_role). Any other is not found."""
    qs = Application.objects.select_related("service", "service__agency", "service_version")
    if organisation is None:
        qs = qs.filter(applicant=person, organisation__isnull=True)
    else:
        qs = qs.filter(organisation=organisation)
    application = qs.filter(public_id=public_id).first()
    if application is None:
        raise NotFound(_("Application not found."), code="application_not_found")
    if organisation is not None:
        _require_business_grant(person=person, organisation=organisation, application=application)
    return application


def payments_of(*, application: Application) -> QuerySet[Payment]:
    """The payments for one application (already checked to be the caller's), for a list."""
    return Payment.objects.filter(application=application).select_related("application", "collection_account")


def payment_for_caller(
    *,
    user: Any,
    person: Person | None,
    officer: Officer | None,
    public_id: Any,
    organisation: Organisation | None = None,
) -> Payment:
    """A payment as the API shows it: acting for a business, one of the business's payments (with
    a grant for its service); otherwise the person's own, or, for an officer holding payment.view,
    one of the agency's. Reading a payment someone else made is audited; anything else is 404."""
    payment: Payment | None = None
    if organisation is not None and person is not None:
        payment = (
            Payment.objects.filter(organisation=organisation, public_id=public_id)
            .select_related("application", "service", "agency", "collection_account")
            .first()
        )
        if payment is not None:
            _require_business_grant(person=person, organisation=organisation, application=payment.application)
    else:
        if person is not None:
            try:
                payment = payment_of_payer(person=person, public_id=public_id)
            except NotFound:
                payment = None
        if payment is None and permissions.has_perm(officer, permissions.PAYMENT_VIEW):
            payment = payment_for(officer=officer, public_id=public_id)
    if payment is None:
        raise NotFound(_("Payment not found."), code="payment_not_found")
    if person is None or payment.payer_id != person.pk:
        audit.record(
            actor=user,
            action="payment.view",
            subject=payment,
            person=payment.payer,
            agency=payment.agency,
            details={"reference": payment.reference},
        )
    return payment


def refunds_of(*, payment: Payment) -> QuerySet[Refund]:
    """The refunds of one payment (already checked to be visible to the caller), for a list."""
    return Refund.objects.filter(payment=payment)


# --- officers: the payments pages --------------------------------------------------------------
# The office list, its totals and the treasury export filter as `payments_for` does, with two more
# choices: the date range is on the created or the paid date, and the reference searched is the
# payment's or its application's.

DATE_FIELDS = ("created", "paid")


@dataclass(frozen=True, slots=True)
class PaymentSearch:
    status: str = ""
    service: int | None = None
    method: str = ""
    date_field: str = "created"  # or "paid"
    since: date | None = None
    until: date | None = None
    reference: str = ""


def _day_start(day: date) -> datetime:
    """Midnight at the start of `day` in the site's time zone: a range on the column itself, so
    the (agency, created_at) index serves it."""
    return timezone.make_aware(datetime.combine(day, time.min))


def payments_search(*, officer: Officer | None, search: PaymentSearch = PaymentSearch()) -> QuerySet[Payment]:
    """The officer's agency's payments matching the office list's filters, newest first."""
    qs = payments_for(
        officer=officer,
        filters=PaymentFilters(status=search.status, service=search.service, method=search.method),
    )
    field = "paid_at" if search.date_field == "paid" else "created_at"
    if search.since:
        qs = qs.filter(**{f"{field}__gte": _day_start(search.since)})
    if search.until:
        qs = qs.filter(**{f"{field}__lt": _day_start(search.until + timedelta(days=1))})
    text = search.reference.strip().upper()
    if text:
        # Banks and people put spaces into payment references; application references have none.
        qs = qs.filter(Q(reference="".join(text.split())) | Q(application__reference=text))
    return qs


def payments_search_totals(
    *, officer: Officer | None, search: PaymentSearch = PaymentSearch()
) -> list[dict[str, Any]]:
    """Count, paid, refunded and net of the filtered payments, one row per currency (money in two
    currencies is never added up)."""
    rows = (
        payments_search(officer=officer, search=search)
        .order_by()
        .values("currency")
        .annotate(
            count=Count("pk"),
            paid=Sum("paid_minor", default=0),
            refunded=Sum("refunded_minor", default=0),
        )
        .order_by("currency")
    )
    return [{**row, "net": row["paid"] - row["refunded"]} for row in rows]


def payments_for_export(
    *, officer: Officer | None, search: PaymentSearch = PaymentSearch()
) -> QuerySet[Payment]:
    """The settled payments (paid, partly refunded, refunded) among the filtered ones, in the order
    the money arrived: what the treasury books. Exporting is audited, with the filters used."""
    officer = permissions.require(officer, permissions.PAYMENT_VIEW)
    qs = payments_search(officer=officer, search=search)
    filters = {
        "status": search.status,
        "service": search.service,
        "method": search.method,
        "date_field": search.date_field,
        "since": search.since,
        "until": search.until,
        "reference": search.reference,
    }
    audit.record(
        actor=officer.user,
        action="payment.export",
        subject_type="payments.payment",
        agency=officer.agency,
        details={"filters": filters},
    )
    return qs.filter(status__in=SETTLED).select_related("agency").order_by("paid_at", "pk")


def payment_services_for(*, officer: Officer | None) -> QuerySet[Service]:
    """The agency's services, for the list's filter."""
    officer = permissions.require(officer, permissions.PAYMENT_VIEW)
    return Service.objects.filter(agency_id=officer.agency_id).order_by("code")


def payment_for_officer(*, officer: Officer | None, public_id: Any) -> Payment:
    """One of the officer's agency's payments with its events, refunds and statement lines. The
    page shows the payer's name, so reading it is audited as an access to the payer's data."""
    officer = permissions.require(officer, permissions.PAYMENT_VIEW)
    payment = (
        Payment.objects.filter(agency_id=officer.agency_id, public_id=public_id)
        .select_related("service", "application", "payer__user", "agency", "collection_account")
        .prefetch_related(
            "events",
            Prefetch(
                "refunds", queryset=Refund.objects.select_related("requested_by").order_by("-created_at")
            ),
            "statement_lines",
        )
        .first()
    )
    if payment is None:
        raise NotFound(_("Payment not found."), code="payment_not_found")
    audit.record(
        actor=officer.user,
        action="payment.view",
        subject=payment,
        person=payment.payer,
        agency=payment.agency,
        details={"reference": payment.reference, "fields": ["payer"]},
    )
    return payment


def refund_of_payment(*, payment: Payment, reference: str) -> Refund:
    """A refund of a payment the caller already may see."""
    refund = Refund.objects.select_related("payment").filter(payment=payment, reference=reference).first()
    if refund is None:
        raise NotFound(_("Refund not found."), code="refund_not_found")
    return refund


def _subject_ids(pks: Iterable[Any]) -> str:
    """As many of the ids, comma-separated, as an audit entry's subject column holds; the entry's
    details name every one."""
    limit = AuditEntry._meta.get_field("subject_id").max_length or 0
    ids = ""
    for pk in pks:
        more = f"{ids},{pk}" if ids else str(pk)
        if len(more) > limit:
            break
        ids = more
    return ids


def queue_viewed(*, officer: Officer, lines: Iterable[StatementLine]) -> None:
    """Record that the officer was shown these queued lines, the debtors' names with them."""
    shown = [line.pk for line in lines]
    if shown:
        audit.record(
            actor=officer.user,
            action="payment.queue_view",
            subject_type="payments.statementline",
            subject_id=_subject_ids(shown),
            agency=officer.agency,
            details={"lines": shown, "fields": ["debtor_name"]},
        )


def statement_line_for(*, officer: Officer | None, line_id: int) -> StatementLine:
    """A statement line credited to one of the officer's agency's accounts, whatever its status
    (a queue line resolved a moment ago is still found, so a repeated form post is harmless)."""
    officer = permissions.require(officer, permissions.PAYMENT_VIEW)
    line = (
        StatementLine.objects.filter(pk=line_id, collection_account__agency_id=officer.agency_id)
        .select_related("collection_account", "payment")
        .first()
    )
    if line is None:
        raise NotFound(_("Statement line not found."), code="statement_line_not_found")
    return line


def statement_imports_for(*, officer: Officer | None, limit: int = 20) -> list[StatementImport]:
    """Recent statement files with a credit to the agency's accounts, or imported by one of its
    officers."""
    officer = permissions.require(officer, permissions.PAYMENT_VIEW)
    ours = StatementLine.objects.filter(
        statement=OuterRef("pk"), collection_account__agency_id=officer.agency_id
    )
    return list(
        StatementImport.objects.filter(Q(Exists(ours)) | Q(imported_by__officer__agency_id=officer.agency_id))
        .select_related("imported_by")
        .order_by("-imported_at", "-pk")[:limit]
    )


# --- officers: refunds proposed for rejected applications' fees ---------------------------------
# `services.refund_propose` proposes a rejected application's paid fee for refund; a payments
# officer accepts or declines. A decided refund is known to have been a proposal by the event
# that proposed it.

PROPOSALS_DECIDED_SHOWN = 20


def _events_of_refund(*kinds: str) -> QuerySet[PaymentEvent]:
    """The events of the outer query's refund, of these kinds (matched by the refund's
    reference, which the event's data carries)."""
    return PaymentEvent.objects.annotate(refund_reference=KT("data__refund")).filter(
        payment_id=OuterRef("payment_id"), kind__in=kinds, refund_reference=OuterRef("reference")
    )


def _with_refundable(qs: QuerySet[Refund]) -> QuerySet[Refund]:
    """Each refund with `refundable`: what its payment may still refund (paid, less refunded,
    less refunds on their way), as `services` counts it."""
    waiting = (
        Refund.objects.filter(payment_id=OuterRef("payment_id"), status=Refund.Status.REQUESTED)
        .order_by()
        .values("payment_id")
        .annotate(total=Sum("amount_minor"))
        .values("total")
    )
    return qs.annotate(
        refundable=F("payment__paid_minor")
        - F("payment__refunded_minor")
        - Coalesce(Subquery(waiting, output_field=BigIntegerField()), 0)
    )


def _reference(text: str) -> str:
    """A payment reference as people type it: spaces and case do not matter."""
    return "".join(text.split()).upper()


def refund_proposals_open(*, officer: Officer | None, payment_reference: str = "") -> QuerySet[Refund]:
    """The refunds proposed for the officer's agency's payments that nobody has decided yet,
    oldest first, each with `refundable` (see `_with_refundable`)."""
    officer = permissions.require(officer, permissions.PAYMENT_VIEW)
    qs = Refund.objects.filter(payment__agency_id=officer.agency_id, status=Refund.Status.PROPOSED)
    if payment_reference.strip():
        qs = qs.filter(payment__reference=_reference(payment_reference))
    return _with_refundable(qs.select_related("payment__service", "payment__application")).order_by(
        "created_at", "pk"
    )


def refund_proposals_decided(
    *, officer: Officer | None, payment_reference: str = "", limit: int = PROPOSALS_DECIDED_SHOWN
) -> list[Refund]:
    """The officer's agency's proposed refunds decided most recently, with `decided_at` and, for
    a declined one, `decline_reason`."""
    officer = permissions.require(officer, permissions.PAYMENT_VIEW)
    decisions = _events_of_refund("refund_request", "refund_declined").order_by("-at", "-pk")
    declines = _events_of_refund("refund_declined").annotate(note=KT("data__reason")).order_by("-at", "-pk")
    qs = Refund.objects.filter(
        Exists(_events_of_refund("refund_proposed")), payment__agency_id=officer.agency_id
    ).exclude(status=Refund.Status.PROPOSED)
    if payment_reference.strip():
        qs = qs.filter(payment__reference=_reference(payment_reference))
    return list(
        qs.select_related("payment__service", "payment__application", "requested_by")
        .annotate(
            decided_at=Subquery(decisions.values("at")[:1]),
            decline_reason=Subquery(declines.values("note")[:1]),
        )
        .order_by(F("decided_at").desc(nulls_last=True), "-pk")[:limit]
    )


def refund_proposal_for(*, officer: Officer | None, refund_id: int) -> Refund:
    """A refund proposed for one of the officer's agency's payments, decided or not (a proposal
    decided a moment ago is still found, so a repeated form post is told so), with
    `refundable`."""
    officer = permissions.require(officer, permissions.PAYMENT_VIEW)
    refund = (
        _with_refundable(
            Refund.objects.filter(
                Exists(_events_of_refund("refund_proposed")),
                pk=refund_id,
                payment__agency_id=officer.agency_id,
            )
        )
        .select_related("payment")
        .first()
    )
    if refund is None:
        raise NotFound(_("Refund proposal not found."), code="refund_proposal_not_found")
    return refund


def proposals_viewed(*, officer: Officer, refunds: Iterable[Refund]) -> None:
    """Record that the officer was shown these proposals, with the reasons the applications were
    rejected for."""
    shown = list(refunds)
    if not shown:
        return
    audit.record(
        actor=officer.user,
        action="payment.proposals_view",
        subject_type="payments.refund",
        subject_id=_subject_ids(refund.pk for refund in shown),
        agency=officer.agency,
        details={"refunds": [refund.reference for refund in shown], "fields": ["reason"]},
    )
