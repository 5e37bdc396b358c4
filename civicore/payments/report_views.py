"""The daily reconciliation report for officers, under /office/payments/report/: one local day of
the agency's money, the ledger beside what the gateway confirmed and what the bank's statements
show, with every difference to clear; and the same report as CSV for the treasury.

Needs payment.view, like every office payment page, and shows only an agency the officer works
for. The report names no payer, so reading it is not an access to anyone's personal data.
"""

from __future__ import annotations

import csv
import re
from collections.abc import Iterator
from datetime import date, timedelta
from typing import Any
from urllib.parse import urlencode

from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied as DjangoPermissionDenied
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.urls import reverse
from django.utils import formats, timezone
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy, ngettext
from django.views.decorators.http import require_GET

from civicore.agencies.models import Officer
from civicore.payments import selectors
from civicore.payments.models import Payment
from civicore.payments.office_views import _cell, _money, _no_store, _officer
from civicore.payments.reports import Column, Report, reconciliation_report

# Before this there was no Civicore to reconcile; it also keeps the day arithmetic far from
# date.min.
EARLIEST_DAY = date(2000, 1, 1)
DAY_TEXT = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}")
PARAM_MAX = 40
# The CSV's columns: stable names, whatever the officer's language.
CSV_HEADER = (
    "day",
    "agency",
    "row",
    "method",
    "source",
    "count",
    "kind",
    "reference",
    "amount",
    "currency",
    "note",
)
DIFFERENCE_KINDS = {
    "transfer_not_on_statement": gettext_lazy("Transfer not on the bank statement"),
    "gateway_not_confirmed": gettext_lazy("Not confirmed by the gateway"),
    "statement_unmatched": gettext_lazy("Bank credit matching no payment"),
    "statement_mismatch": gettext_lazy("Bank credit of another amount or currency"),
    "statement_paid_twice": gettext_lazy("Bank credit for a payment already paid"),
    "gateway_mismatch": gettext_lazy("Gateway money of another amount or currency"),
    "gateway_paid_twice": gettext_lazy("Gateway money for a payment already paid"),
    "gateway_unresolved": gettext_lazy("Gateway payment still open past its time"),
}
# Differences whose reference is the bank's, not a payment's.
BANK_KINDS_PREFIX = "statement_"


# --- input ---------------------------------------------------------------------------------------


def _memberships(officer: Officer) -> list[Officer]:
    """The user's memberships that may read payments, one per agency. A user is an officer of
    one agency today; the chooser on the page shows itself once there can be more."""
    return [officer]


def _chosen(request: HttpRequest, officer: Officer) -> tuple[Officer | None, str]:
    """The membership whose agency's report is asked for, or a message about the input. An agency
    the user does not work for is refused outright: nobody reads another agency's report."""
    memberships = _memberships(officer)
    text = str(request.GET.get("agency", "")).strip()[:PARAM_MAX]
    if not text:
        return memberships[0], ""
    if not (text.isascii() and text.isdigit()):
        return None, _("Choose one of your agencies.")
    chosen = next((member for member in memberships if member.agency_id == int(text)), None)
    if chosen is None:
        raise DjangoPermissionDenied(_("You can see the reconciliation report of your own agency only."))
    return chosen, ""


def _day(text: str, today: date) -> tuple[date | None, str]:
    """The local day asked for (yesterday when none is), or a message saying what is wrong."""
    if not text:
        return today - timedelta(days=1), ""
    if not DAY_TEXT.fullmatch(text):
        return None, _("Enter a date such as 2026-12-31.")
    try:
        day = date.fromisoformat(text)
    except ValueError:
        return None, _("Enter a date such as 2026-12-31.")
    if day > today:
        return None, _("There is no report for a day after today. Choose today or an earlier day.")
    if day < EARLIEST_DAY:
        return None, _("Choose a day from %(day)s onwards.") % {"day": _shown(EARLIEST_DAY)}
    return day, ""


def _shown(day: date) -> str:
    return formats.date_format(day, "d/m/Y")


def _query(day: date, agency: str) -> str:
    pairs = {"day": day.isoformat(), "agency": agency}
    return urlencode({name: value for name, value in pairs.items() if value})


# --- the report, ready to show --------------------------------------------------------------------


def _methods(report: Report) -> list[str]:
    """Bank transfers first, then each gateway that counted or confirmed money that day."""
    present = set(report.ledger) | set(report.confirmed)
    gateways = sorted(present - {Payment.Method.VIETQR})
    return ([Payment.Method.VIETQR.value] if Payment.Method.VIETQR in present else []) + gateways


def _method_label(method: str) -> str:
    if method == Payment.Method.VIETQR:
        return str(Payment.Method.VIETQR.label)
    return f"{Payment.Method.GATEWAY.label} ({method})"


def _columns(report: Report, method: str) -> dict[str, Column | None]:
    """The method's three ways of counting; a transfer has no gateway, a gateway no statement."""
    confirmed = report.confirmed.get(method, Column())
    transfer = method == Payment.Method.VIETQR
    return {
        "ledger": report.ledger.get(method, Column()),
        "gateway": None if transfer else confirmed,
        "bank_statement": confirmed if transfer else None,
    }


def _cells(column: Column | None, currency: str) -> dict[str, str]:
    if column is None:
        return {"count": "—", "amount": "—"}
    return {"count": str(column.count), "amount": _money(column.amount_minor, currency)}


def _payment_links(officer: Officer, report: Report) -> dict[str, str]:
    """The detail page of each payment a difference names, in one query."""
    references = {d.reference for d in report.differences if not d.kind.startswith(BANK_KINDS_PREFIX)}
    if not references:
        return {}
    pairs = (
        selectors.payments_for(officer=officer)
        .filter(reference__in=references)
        .values_list("reference", "public_id")
    )
    return {reference: reverse("payments_office:detail", args=[public_id]) for reference, public_id in pairs}


def _report_context(officer: Officer, report: Report) -> dict[str, Any]:
    currency = report.currency
    count = len(report.differences)
    if report.balanced:
        status = _("Balanced: the ledger, the gateway and the bank statements agree for this day.")
    else:
        status = ngettext("%(count)s difference to look at.", "%(count)s differences to look at.", count) % {
            "count": count
        }
    links = _payment_links(officer, report)
    return {
        "report": report,
        "status": status,
        "methods": [
            {
                "label": _method_label(method),
                **{source: _cells(column, currency) for source, column in _columns(report, method).items()},
            }
            for method in _methods(report)
        ],
        "refunds": {
            "count": report.refunded.count,
            "amount": _money(report.refunded.amount_minor, currency),
        },
        "differences": [
            {
                "kind": str(DIFFERENCE_KINDS.get(difference.kind, difference.kind)),
                "code": difference.kind,
                "reference": difference.reference,
                "url": ""
                if difference.kind.startswith(BANK_KINDS_PREFIX)
                else links.get(difference.reference, ""),
                "amount": _money(difference.amount_minor, difference.currency),
                "note": difference.note,
            }
            for difference in report.differences
        ],
    }


# --- the page and the CSV -------------------------------------------------------------------------


@login_required
@require_GET
def report_page(request: HttpRequest) -> HttpResponse:
    officer = _officer(request)
    memberships = _memberships(officer)
    member, agency_error = _chosen(request, officer)
    today = timezone.localdate()
    values = {
        "day": str(request.GET.get("day", "")).strip()[:PARAM_MAX],
        "agency": str(request.GET.get("agency", "")).strip()[:PARAM_MAX],
    }
    day, day_error = _day(values["day"], today)
    errors: dict[str, str] = {}
    if day_error:
        errors["day"] = day_error
    if agency_error:
        errors["agency" if len(memberships) > 1 else "form"] = agency_error
    member = member or officer
    agency = values["agency"] if not agency_error else ""
    context: dict[str, Any] = {
        "officer": member,
        "agencies": [(m.agency_id, m.agency.name) for m in memberships] if len(memberships) > 1 else [],
        "values": {"day": values["day"] or (day.isoformat() if day else ""), "agency": values["agency"]},
        "errors": errors,
        "report": None,
        "yesterday_url": reverse("payments_office:report"),
    }
    if day is not None and not errors:
        report = reconciliation_report(officer=member, day=day)
        base = reverse("payments_office:report")
        before, after = day - timedelta(days=1), day + timedelta(days=1)
        context.update(_report_context(member, report))
        context.update(
            day_shown=_shown(day),
            previous={"url": f"{base}?{_query(before, agency)}", "day": _shown(before)}
            if before >= EARLIEST_DAY
            else None,
            next={"url": f"{base}?{_query(after, agency)}", "day": _shown(after)} if after <= today else None,
            csv_url=f"{reverse('payments_office:report_csv')}?{_query(day, agency)}",
        )
    status = 400 if errors else 200
    return _no_store(render(request, "payments/office/report.html", context, status=status))


def _csv_rows(report: Report, agency: str) -> Iterator[tuple[Any, ...]]:
    day, currency = report.day.isoformat(), report.currency
    for method in _methods(report):
        for source, column in _columns(report, method).items():
            if column is not None:
                yield (day, agency, "summary", method, source, column.count, "", "", column.amount_minor,
                       currency, "")  # fmt: skip
    refunded = report.refunded
    yield (day, agency, "refunds", "", "ledger", refunded.count, "", "", refunded.amount_minor, currency, "")
    for d in report.differences:
        yield (day, agency, "difference", "", "", "", d.kind, d.reference, d.amount_minor, d.currency, d.note)


@login_required
@require_GET
def report_csv(request: HttpRequest) -> HttpResponse:
    """The day's report as CSV: summary rows, the refunds row, then one row per difference."""
    officer = _officer(request)
    member, agency_error = _chosen(request, officer)
    day, day_error = _day(str(request.GET.get("day", "")).strip()[:PARAM_MAX], timezone.localdate())
    if member is None or day is None:
        found = (("agency", agency_error), ("day", day_error))
        problems = " ".join(f"{name}: {message}" for name, message in found if message)
        return _no_store(
            HttpResponse(f"invalid_report: {problems}", status=400, content_type="text/plain; charset=utf-8")
        )
    report = reconciliation_report(officer=member, day=day)
    agency = member.agency.code
    response = HttpResponse(content_type="text/csv; charset=utf-8")
    writer = csv.writer(response)
    writer.writerow(CSV_HEADER)
    for row in _csv_rows(report, agency):
        writer.writerow([_cell(value) for value in row])
    response["Content-Disposition"] = f'attachment; filename="reconciliation-{agency}-{day:%Y%m%d}.csv"'
    return _no_store(response)
