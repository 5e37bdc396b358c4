"""Officers' payment pages under /office/payments/: the agency's payments with totals and the
treasury export, one payment's ledger with its refunds, the reconciliation queue and the bank
statement uploads. Thin: they parse input, call one service or selector, render.

Every page needs payment.view and shows the officer's own agency only; refunding, resolving queue
lines and uploading statements need payment.refund. Pages that show a payer's or a debtor's name
are audited by the selectors that read them.
"""

from __future__ import annotations

import csv
import uuid
from collections.abc import Iterable, Iterator, Mapping
from datetime import date
from typing import Any
from urllib.parse import urlencode

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied as DjangoPermissionDenied
from django.http import Http404, HttpRequest, HttpResponse, StreamingHttpResponse
from django.http.response import HttpResponseBase
from django.shortcuts import redirect, render
from django.template.defaultfilters import filesizeformat
from django.urls import reverse
from django.utils import timezone
from django.utils.translation import get_language, gettext_lazy
from django.utils.translation import gettext as _
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from civicore.agencies import permissions
from civicore.agencies.models import Officer
from civicore.catalogue import presentation
from civicore.core.errors import ApplicationError, NotFound, PermissionDenied
from civicore.payments import camt, selectors, services
from civicore.payments.models import Payment, PaymentEvent, Refund, StatementLine
from civicore.portal.pagination import paginate_page

PAGE_SIZE = 25
QUEUE_PAGE_SIZE = 20
STATEMENT_MAX_BYTES = 20 * 1024 * 1024
REFERENCE_MAX = 40
TEXT_MAX = 2000
SEARCH_FIELDS = ("status", "service", "method", "date_field", "since", "until", "reference")
# A spreadsheet runs a cell that starts with one of these as a formula.
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")
# The treasury's columns: stable names, whatever the officer's language.
EXPORT_HEADER = (
    "payment_reference",
    "application_reference",
    "service_code",
    "agency",
    "method",
    "gateway",
    "gateway_transaction",
    "bank_reference",
    "currency",
    "amount",
    "paid",
    "refunded",
    "net",
    "paid_at",
    "status",
    "late",
)
EVENT_KINDS = {
    "create": gettext_lazy("Payment created"),
    "pending": gettext_lazy("Payer went to pay"),
    "paid": gettext_lazy("Money received"),
    "mismatch": gettext_lazy("Money of another amount or currency (held)"),
    "paid_twice": gettext_lazy("Money for a payment already paid (held)"),
    "fail": gettext_lazy("Payment failed"),
    "ignored": gettext_lazy("Late failure report ignored"),
    "expire": gettext_lazy("Payment expired"),
    "refund_proposed": gettext_lazy("Refund proposed"),
    "refund_declined": gettext_lazy("Refund proposal declined"),
    "refund_request": gettext_lazy("Refund requested"),
    "refund": gettext_lazy("Refunded"),
    "refund_failed": gettext_lazy("Refund failed"),
}
CAMT_PROBLEMS = {
    "camt_malformed": gettext_lazy(
        "The file is not a well-formed XML document, or it declares entities or outside documents, "
        "which are refused for safety."
    ),
    "camt_unsupported": gettext_lazy(
        "The file is not a camt.053 statement or a camt.054 notification in a version this service reads."
    ),
    "camt_invalid": gettext_lazy("The file does not follow the camt schema."),
    "camt_too_large": gettext_lazy("The file is too large."),
}


# --- helpers -----------------------------------------------------------------------------------


def _officer(request: HttpRequest, permission: str = permissions.PAYMENT_VIEW) -> Officer:
    try:
        return permissions.officer_with_perm(request.user, permission)
    except PermissionDenied as exc:
        if permission == permissions.PAYMENT_REFUND:
            message = _("Only payments officers can refund, reconcile and upload bank statements.")
        else:
            message = _("Only officers who handle payments can use this page.")
        raise DjangoPermissionDenied(message) from exc


def _no_store(response: HttpResponse) -> HttpResponse:
    response["Cache-Control"] = "private, no-store"
    return response


def _money(amount: int | None, currency: str) -> str:
    """Amounts as officers read them; unlike a fee, nothing is "0 VND", not "Free"."""
    if amount is None:
        return "—"
    if amount == 0:
        return f"0 {currency.upper()}"
    return presentation.format_money(amount, currency)


def _status_label(value: str) -> str:
    return str(Payment.Status(value).label) if value in Payment.Status.values else value


def _parse_date(text: str) -> date | None:
    try:
        return date.fromisoformat(text)
    except ValueError:
        return None


def _search(request: HttpRequest) -> tuple[selectors.PaymentSearch, dict[str, str], dict[str, str]]:
    """The list's filters from the query string: what applies, what was typed, what is wrong. A
    filter that is not one of the choices is ignored; a date that is not a date says so."""
    values = {name: str(request.GET.get(name, "")).strip()[:REFERENCE_MAX] for name in SEARCH_FIELDS}
    errors: dict[str, str] = {}
    dates: dict[str, date | None] = {}
    for name in ("since", "until"):
        dates[name] = _parse_date(values[name]) if values[name] else None
        if values[name] and dates[name] is None:
            errors[name] = _("Enter a date such as 2026-12-31.")
    if dates["since"] and dates["until"] and dates["since"] > dates["until"]:
        errors["until"] = _("The end date is before the start date.")
        dates["until"] = None
    search = selectors.PaymentSearch(
        status=values["status"] if values["status"] in Payment.Status.values else "",
        service=int(values["service"]) if values["service"].isdigit() else None,
        method=values["method"] if values["method"] in Payment.Method.values else "",
        date_field=values["date_field"] if values["date_field"] in selectors.DATE_FIELDS else "created",
        since=dates["since"],
        until=dates["until"],
        reference=values["reference"],
    )
    return search, values, errors


def _query(search: selectors.PaymentSearch) -> str:
    """The query string of the filters that apply, for the export link."""
    pairs = {
        "status": search.status,
        "service": search.service or "",
        "method": search.method,
        "date_field": search.date_field if search.since or search.until else "",
        "since": search.since.isoformat() if search.since else "",
        "until": search.until.isoformat() if search.until else "",
        "reference": search.reference,
    }
    return urlencode({name: value for name, value in pairs.items() if value})


def _payment(officer: Officer, public_id: uuid.UUID) -> Payment:
    """The payment a form posts to, without the audited read of the payer (the page that follows
    reads it again, audited)."""
    try:
        return selectors.payment_for(officer=officer, public_id=public_id)
    except NotFound as exc:
        raise Http404(str(exc)) from exc


# --- the list and the export -------------------------------------------------------------------


def _payment_row(payment: Payment) -> dict[str, Any]:
    return {
        "payment": payment,
        "amount": _money(payment.amount_minor, payment.currency),
        "paid": _money(payment.paid_minor, payment.currency),
        "refunded": _money(payment.refunded_minor, payment.currency),
    }


@login_required
@require_GET
def payment_list(request: HttpRequest) -> HttpResponse:
    officer = _officer(request)
    search, values, errors = _search(request)
    context: dict[str, Any] = paginate_page(
        request, selectors.payments_search(officer=officer, search=search), PAGE_SIZE
    )
    totals = [
        {
            "currency": row["currency"],
            "count": row["count"],
            "paid": _money(row["paid"], row["currency"]),
            "refunded": _money(row["refunded"], row["currency"]),
            "net": _money(row["net"], row["currency"]),
        }
        for row in selectors.payments_search_totals(officer=officer, search=search)
    ]
    query = _query(search)
    context.update(
        officer=officer,
        rows=[_payment_row(payment) for payment in context["page"].object_list],
        totals=totals,
        values=values,
        errors=errors,
        statuses=Payment.Status.choices,
        methods=Payment.Method.choices,
        services=[
            (service.pk, f"{service.name} ({service.code})")
            for service in selectors.payment_services_for(officer=officer)
        ],
        export_url=reverse("payments_office:export") + (f"?{query}" if query else ""),
    )
    template = (
        "payments/office/_results.html" if request.headers.get("HX-Request") else "payments/office/list.html"
    )
    return _no_store(render(request, template, context))


def _cell(value: Any) -> Any:
    if isinstance(value, str) and value.startswith(FORMULA_STARTS):
        return "'" + value
    return value


class _Echo:
    """A file that hands back what is written, so csv.writer formats one row at a time."""

    def write(self, value: str) -> str:
        return value


def _export_rows(payments: Iterable[Payment]) -> Iterator[str]:
    writer = csv.writer(_Echo())
    yield writer.writerow(EXPORT_HEADER)
    for payment in payments:
        paid_at = timezone.localtime(payment.paid_at).isoformat() if payment.paid_at else ""
        row = (
            payment.reference,
            payment.application.reference or "",
            payment.service.code,
            payment.agency.code,
            payment.method,
            payment.gateway,
            payment.gateway_transaction,
            payment.bank_reference,
            payment.currency,
            payment.amount_minor,
            payment.paid_minor,
            payment.refunded_minor,
            payment.paid_minor - payment.refunded_minor,
            paid_at,
            payment.status,
            "true" if payment.late else "false",
        )
        yield writer.writerow([_cell(value) for value in row])


@login_required
@require_GET
def payment_export(request: HttpRequest) -> HttpResponseBase:
    """The treasury export: one row per settled payment in the filter, streamed. No payer names."""
    officer = _officer(request)
    search, _values, errors = _search(request)
    if errors:
        problems = " ".join(f"{name}: {message}" for name, message in errors.items())
        return HttpResponse(
            f"invalid_filter: {problems}", status=400, content_type="text/plain; charset=utf-8"
        )
    payments = selectors.payments_for_export(officer=officer, search=search)
    response = StreamingHttpResponse(
        _export_rows(payments.iterator(chunk_size=500)), content_type="text/csv; charset=utf-8"
    )
    response["Content-Disposition"] = f'attachment; filename="payments-{timezone.localdate():%Y%m%d}.csv"'
    response["Cache-Control"] = "private, no-store"
    return response


# --- one payment -------------------------------------------------------------------------------


def _label(label: Any) -> str:
    """A bilingual label from a fee definition, in the reader's language."""
    if not isinstance(label, Mapping):
        return str(label or "")
    english = (get_language() or "vi").startswith("en")
    return str(label.get("en" if english else "vi") or label.get("vi") or label.get("en") or "")


def _amount(value: Any) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def _breakdown(payment: Payment) -> dict[str, Any]:
    """The fee breakdown the payment carries, ready to show; whatever is not in the expected shape
    is left out rather than failing the page."""
    data = payment.breakdown if isinstance(payment.breakdown, Mapping) else {}
    currency = str(data.get("currency") or payment.currency)
    lines = []
    for item in data.get("lines") or []:
        if not isinstance(item, Mapping):
            continue
        lines.append(
            {
                "label": _label(item.get("label")) or _("Fee"),
                "quantity": item.get("quantity", 1),
                "unit": _money(_amount(item.get("unit_amount")), currency),
                "amount": _money(_amount(item.get("amount")), currency),
            }
        )
    exemption = data.get("exemption")
    return {
        "lines": lines,
        "exemption": _label(exemption.get("label")) if isinstance(exemption, Mapping) else "",
        "subtotal": _money(_amount(data.get("subtotal")), currency),
        "total": _money(_amount(data.get("total")) or payment.amount_minor, currency),
    }


def _event_row(event: PaymentEvent, currency: str) -> dict[str, Any]:
    return {
        "event": event,
        "kind": str(EVENT_KINDS.get(event.kind, event.kind)),
        "source": event.get_source_display(),
        "from": _status_label(event.from_status),
        "to": _status_label(event.to_status),
        "changed": event.from_status != event.to_status,
        "amount": _money(event.amount_minor, currency) if event.amount_minor is not None else "",
    }


def _detail(
    request: HttpRequest,
    officer: Officer,
    public_id: uuid.UUID,
    *,
    refund_values: dict[str, str] | None = None,
    refund_errors: dict[str, str] | None = None,
    status: int = 200,
) -> HttpResponse:
    try:
        payment = selectors.payment_for_officer(officer=officer, public_id=public_id)
    except NotFound as exc:
        raise Http404(str(exc)) from exc
    currency = payment.currency
    refunds = list(payment.refunds.all())
    waiting = sum(refund.amount_minor for refund in refunds if refund.status == Refund.Status.REQUESTED)
    outstanding = max(payment.refundable_minor - waiting, 0)
    may_refund = permissions.has_perm(officer, permissions.PAYMENT_REFUND)
    context = {
        "officer": officer,
        "payment": payment,
        "payer": payment.payer.user,
        "amounts": {
            "amount": _money(payment.amount_minor, currency),
            "paid": _money(payment.paid_minor, currency),
            "refunded": _money(payment.refunded_minor, currency),
            "net": _money(payment.paid_minor - payment.refunded_minor, currency),
            "waiting": _money(waiting, currency) if waiting else "",
            "outstanding": _money(outstanding, currency),
        },
        "breakdown": _breakdown(payment),
        "events": [_event_row(event, currency) for event in payment.events.all()],
        "lines": [
            {"line": line, "amount": _money(line.amount_minor, line.currency)}
            for line in payment.statement_lines.all()
        ],
        "refunds": [
            {
                "refund": refund,
                "amount": _money(refund.amount_minor, currency),
                "confirmable": may_refund
                and refund.status == Refund.Status.REQUESTED
                and payment.method == Payment.Method.VIETQR,
            }
            for refund in refunds
        ],
        "may_refund": may_refund and payment.status in services.REFUNDABLE and outstanding > 0,
        "refund_values": refund_values
        or {"amount": str(outstanding // 10 ** camt.currency_exponent(currency))},
        "refund_errors": refund_errors or {},
        "reason_max": services.REASON_MAX,
    }
    return _no_store(render(request, "payments/office/detail.html", context, status=status))


@login_required
@require_GET
def payment_detail(request: HttpRequest, public_id: uuid.UUID) -> HttpResponse:
    return _detail(request, _officer(request), public_id)


def _parse_amount(text: str, currency: str) -> int | None:
    """Whole units of the payment's currency (dong), digits with optional thousands separators,
    in minor units; None when it is not that."""
    digits = text.replace(" ", "").replace(".", "").replace(",", "")
    if not digits.isascii() or not digits.isdigit() or len(digits) > 15:
        return None
    return int(digits) * 10 ** camt.currency_exponent(currency)


@login_required
@require_POST
def payment_refund(request: HttpRequest, public_id: uuid.UUID) -> HttpResponse:
    officer = _officer(request, permissions.PAYMENT_REFUND)
    payment = _payment(officer, public_id)
    values = {
        "amount": str(request.POST.get("amount", "")).strip()[:30],
        "reason": str(request.POST.get("reason", ""))[:TEXT_MAX],
    }
    errors: dict[str, str] = {}
    amount = _parse_amount(values["amount"], payment.currency)
    if amount is None:
        errors["amount"] = _("Enter the amount in dong, in digits (for example 50000).")
    if not values["reason"].strip():
        errors["reason"] = _("Give the reason for the refund.")
    if amount is not None and not errors:
        try:
            refund = services.refund_request(
                payment=payment, amount_minor=amount, reason=values["reason"], officer=officer
            )
        except PermissionDenied as exc:
            raise DjangoPermissionDenied(exc.message) from exc
        except services.RefundInvalid as exc:
            details = exc.details if isinstance(exc.details, dict) else {}
            errors["reason" if "reason" in details else "amount"] = exc.message
        except ApplicationError as exc:
            errors["form"] = exc.message
        else:
            if payment.method == Payment.Method.VIETQR:
                text = _(
                    "Refund %(reference)s of %(amount)s is requested. Confirm it here once the agency's "
                    "bank has sent the transfer."
                )
            else:
                text = _("Refund %(reference)s of %(amount)s is requested from the gateway.")
            messages.success(
                request, text % {"reference": refund.reference, "amount": _money(amount, payment.currency)}
            )
            return redirect("payments_office:detail", public_id=payment.public_id)
    return _detail(request, officer, public_id, refund_values=values, refund_errors=errors, status=422)


@login_required
@require_POST
def refund_confirm(request: HttpRequest, public_id: uuid.UUID, reference: str) -> HttpResponse:
    """A bank-transfer refund was sent by the agency's bank."""
    officer = _officer(request, permissions.PAYMENT_REFUND)
    payment = _payment(officer, public_id)
    try:
        refund = selectors.refund_of_payment(payment=payment, reference=reference)
    except NotFound as exc:
        raise Http404(str(exc)) from exc
    try:
        done = services.refund_confirm_transfer(refund=refund, officer=officer)
    except PermissionDenied as exc:
        raise DjangoPermissionDenied(exc.message) from exc
    except ApplicationError as exc:
        messages.error(request, exc.message)
    else:
        messages.success(
            request,
            _("Refund %(reference)s is recorded as sent to the payer.") % {"reference": done.reference},
        )
    return redirect("payments_office:detail", public_id=payment.public_id)


# --- the reconciliation queue ------------------------------------------------------------------


def _page_query(request: HttpRequest) -> str:
    page = str(request.GET.get("page", ""))
    return f"?page={page}" if page.isdigit() else ""


def _queue(
    request: HttpRequest,
    officer: Officer,
    *,
    line_errors: dict[int, dict[str, str]] | None = None,
    line_values: dict[int, dict[str, str]] | None = None,
    status: int = 200,
) -> HttpResponse:
    context: dict[str, Any] = paginate_page(
        request, selectors.reconciliation_queue(officer=officer), QUEUE_PAGE_SIZE
    )
    lines: list[StatementLine] = list(context["page"].object_list)
    selectors.queue_viewed(officer=officer, lines=lines)
    context.update(
        officer=officer,
        rows=[
            {
                "line": line,
                "amount": _money(line.amount_minor, line.currency),
                "errors": (line_errors or {}).get(line.pk, {}),
                "values": (line_values or {}).get(line.pk, {}),
                "ids": {"apply": f"line-{line.pk}-payment_reference", "note": f"line-{line.pk}-note"},
            }
            for line in lines
        ],
        # Linked from the top of the page: the line may be far down.
        error_summary={
            f"line-{pk}-{field}": message
            for pk, errors in (line_errors or {}).items()
            for field, message in errors.items()
        },
        may_resolve=permissions.has_perm(officer, permissions.PAYMENT_REFUND),
        page_query=_page_query(request),
        note_max=services.NOTE_MAX,
    )
    return _no_store(render(request, "payments/office/reconciliation.html", context, status=status))


@login_required
@require_GET
def reconciliation(request: HttpRequest) -> HttpResponse:
    return _queue(request, _officer(request))


@login_required
@require_POST
def reconciliation_resolve(request: HttpRequest, line_id: int) -> HttpResponse:
    officer = _officer(request, permissions.PAYMENT_REFUND)
    try:
        line = selectors.statement_line_for(officer=officer, line_id=line_id)
    except NotFound as exc:
        raise Http404(str(exc)) from exc
    action = str(request.POST.get("action", ""))
    values = {
        "payment_reference": str(request.POST.get("payment_reference", "")).strip()[:REFERENCE_MAX],
        "note": str(request.POST.get("note", ""))[:TEXT_MAX],
    }
    errors: dict[str, str] = {}
    field = "payment_reference" if action == "apply" else "note"
    if action == "apply" and not values["payment_reference"]:
        errors[field] = _("Enter the reference of the payment this credit pays, for example CV…")
    elif action == "note" and not values["note"].strip():
        errors[field] = _("Say what was done with this credit (for example: returned to the sender).")
    elif action not in ("apply", "note"):
        errors[field] = _("Choose how to resolve the line.")
    if not errors:
        was_resolved = line.status == StatementLine.Status.RESOLVED
        try:
            if action == "apply":
                services.statement_line_resolve(
                    line=line, officer=officer, payment_reference=values["payment_reference"]
                )
            else:
                services.statement_line_resolve(line=line, officer=officer, note=values["note"])
        except PermissionDenied as exc:
            raise DjangoPermissionDenied(exc.message) from exc
        except NotFound as exc:
            raise Http404(str(exc)) from exc
        except ApplicationError as exc:
            details = exc.details if isinstance(exc.details, dict) else {}
            errors["note" if "note" in details else field] = exc.message
        else:
            if was_resolved:
                messages.info(request, _("This credit had been resolved already."))
            else:
                messages.success(
                    request,
                    _("The credit %(bank_reference)s is resolved.") % {"bank_reference": line.bank_reference},
                )
            return redirect(reverse("payments_office:reconciliation") + _page_query(request))
    return _queue(request, officer, line_errors={line.pk: errors}, line_values={line.pk: values}, status=422)


# --- bank statements ---------------------------------------------------------------------------


def _camt_problem(exc: camt.CamtError) -> str:
    problem = CAMT_PROBLEMS.get(exc.code)
    if problem is None:
        return exc.message
    text = str(problem)
    if exc.code == "camt_invalid":
        text += " " + _("Details: %(detail)s") % {"detail": exc.message}
    return f"{text} ({exc.code})"


@login_required
@require_http_methods(["GET", "POST"])
def statements(request: HttpRequest) -> HttpResponse:
    officer = _officer(request)
    may_upload = permissions.has_perm(officer, permissions.PAYMENT_REFUND)
    errors: dict[str, str] = {}
    status = 200
    if request.method == "POST":
        if not may_upload:
            raise DjangoPermissionDenied(_("Only payments officers can upload bank statements."))
        upload = request.FILES.get("statement")
        if upload is None or not upload.size:
            errors["statement"] = _("Choose a camt.053 statement or camt.054 notification file.")
        elif upload.size > STATEMENT_MAX_BYTES:
            errors["statement"] = _("The file is larger than %(size)s.") % {
                "size": filesizeformat(STATEMENT_MAX_BYTES)
            }
        else:
            try:
                imported = services.statement_import_by_officer(
                    officer=officer,
                    data=upload.read(STATEMENT_MAX_BYTES + 1),
                    filename=upload.name or "statement.xml",
                )
            except PermissionDenied as exc:
                raise DjangoPermissionDenied(exc.message) from exc
            except camt.CamtError as exc:
                errors["statement"] = _camt_problem(exc)
            except ApplicationError as exc:
                errors["statement"] = f"{exc.message} ({exc.code})"
            else:
                messages.success(
                    request,
                    _(
                        "%(file)s is imported. Credits: %(lines)s; matched to payments: %(matched)s; "
                        "waiting in the reconciliation queue: %(queued)s; reported before: %(repeated)s."
                    )
                    % {
                        "file": imported.filename,
                        "lines": imported.lines,
                        "matched": imported.matched,
                        "queued": imported.queued,
                        "repeated": imported.repeated,
                    },
                )
                return redirect("payments_office:statements")
        status = 422
    context = {
        "officer": officer,
        "imports": selectors.statement_imports_for(officer=officer),
        "may_upload": may_upload,
        "errors": errors,
        "max_size": filesizeformat(STATEMENT_MAX_BYTES),
    }
    return _no_store(render(request, "payments/office/statements.html", context, status=status))
