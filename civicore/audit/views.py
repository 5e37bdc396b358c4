""" "Who viewed my data": the audit entries about a citizen written by someone else (officers'
reads, and what agency systems received or were told), as a page and as a CSV download. Only the
logged-in citizen's own entries are ever shown."""

from __future__ import annotations

import csv
from collections.abc import Iterable, Iterator
from itertools import islice
from typing import Any

from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.utils import timezone
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy
from django.views.decorators.http import require_GET

from civicore.audit.models import AuditEntry
from civicore.audit.selectors import (
    EXCHANGE_PREFIX,
    ExchangeParties,
    accesses_to_person_data,
    entry_details,
    exchange_parties,
)
from civicore.consent.presentation import item_label, purpose_name
from civicore.identity.selectors import person_for_user
from civicore.portal.pagination import paginate_page

PAGE_SIZE = 25
CSV_BATCH = 500

# What an officer did, in words a citizen understands.
ACTION_LABELS = {
    "case.view": gettext_lazy("viewed your application"),
    "application.view": gettext_lazy("viewed your application"),
    "document.view": gettext_lazy("opened a document from your application"),
    "document.download": gettext_lazy("downloaded a document"),
    "profile.view": gettext_lazy("viewed your personal details"),
}
FALLBACK_LABEL = gettext_lazy("looked at your data")

# What an agency system did, by exchange operation.
EXCHANGE_LABELS = {
    "exchange.person.read": gettext_lazy("received your data with your consent"),
    "exchange.payment.delivered": gettext_lazy("was told about your payment"),
}
CHANGE_DELIVERED = "exchange.change.delivered"

# Spreadsheet programs run a cell that starts with one of these as a formula.
_FORMULA_PREFIXES = ("=", "+", "-", "@", "\t", "\r")


def action_label(action: str) -> str:
    return str(ACTION_LABELS.get(action, FALLBACK_LABEL))


def exchange_label(action: str, details: dict[str, Any], items: list[str]) -> str:
    if action == CHANGE_DELIVERED:
        if items:
            return _("was told of a change to: %(items)s") % {"items": ", ".join(items)}
        return _("was told of a change to your data")
    status = details.get("status")
    if isinstance(status, int) and status >= 400:
        return _("asked for your data and was refused")
    if action in EXCHANGE_LABELS:
        return str(EXCHANGE_LABELS[action])
    if details.get("direction") == "in":
        return _("sent information about you")
    return _("received your data")


def _text(details: dict[str, Any], key: str) -> str:
    value = details.get(key)
    return value if isinstance(value, str) else ""


def _exchange_row(entry: AuditEntry, parties: ExchangeParties) -> dict[str, Any]:
    details = entry_details(entry)
    client_id = _text(details, "client_id")
    application = parties.applications.get(client_id)
    consent_id = _text(details, "consent")
    consent = parties.consents.get(consent_id)
    raw_items = details.get("items")
    keys = raw_items if isinstance(raw_items, list) else []
    items = [item_label(key) for key in keys if isinstance(key, str)]
    purpose_code = _text(details, "purpose")
    if consent is not None:
        purpose = consent.purpose_name
    elif purpose_code:
        purpose = purpose_name(application.purpose(purpose_code) if application else None, purpose_code)
    else:
        purpose = ""
    return {
        "at": entry.at,
        "officer": application.name if application else client_id or entry.actor_label,
        "agency": entry.agency.name if entry.agency else "",
        "what": exchange_label(entry.action, details, items),
        "items": items,
        "purpose": purpose,
        "consent": consent,
        "consent_id": consent_id,
    }


def _rows(entries: Iterable[AuditEntry], parties: ExchangeParties) -> Iterator[dict[str, Any]]:
    for entry in entries:
        if entry.action.startswith(EXCHANGE_PREFIX):
            yield _exchange_row(entry, parties)
            continue
        yield {
            "at": entry.at,
            "officer": entry.actor_label,
            "agency": entry.agency.name if entry.agency else "",
            "what": action_label(entry.action),
            "items": [],
            "purpose": "",
            "consent": None,
            "consent_id": "",
        }


@login_required
@require_GET
def my_data(request: HttpRequest) -> HttpResponse:
    person = person_for_user(request.user)  # type: ignore[arg-type]
    if person is None:
        return render(request, "audit/my_data.html", {"person": None})
    context = paginate_page(request, accesses_to_person_data(person=person), PAGE_SIZE)
    entries = list(context["page"].object_list)
    context["person"] = person
    context["rows"] = list(_rows(entries, exchange_parties(entries)))
    return render(request, "audit/my_data.html", context)


def csv_safe(value: str) -> str:
    """Keep a value as text when the CSV is opened in a spreadsheet."""
    if value.startswith(_FORMULA_PREFIXES):
        return "'" + value
    return value


def _batched(entries: Iterator[AuditEntry]) -> Iterator[list[AuditEntry]]:
    while batch := list(islice(entries, CSV_BATCH)):
        yield batch


@login_required
@require_GET
def export_csv(request: HttpRequest) -> HttpResponse:
    person = person_for_user(request.user)  # type: ignore[arg-type]
    response = HttpResponse(content_type="text/csv; charset=utf-8")
    response["Content-Disposition"] = 'attachment; filename="who-viewed-my-data.csv"'
    response["Cache-Control"] = "no-store"
    # The byte-order mark makes spreadsheet programs read the file as UTF-8 (Vietnamese names).
    response.write("\ufeff")
    writer = csv.writer(response)
    writer.writerow(
        [
            _("Date and time"),
            _("Officer or system"),
            _("Agency"),
            _("What they did"),
            _("Data items"),
            _("Purpose"),
            _("Consent"),
        ]
    )
    if person is None:
        return response
    for batch in _batched(accesses_to_person_data(person=person).iterator(chunk_size=CSV_BATCH)):
        for row in _rows(batch, exchange_parties(batch)):
            writer.writerow(
                [
                    timezone.localtime(row["at"]).isoformat(timespec="seconds"),
                    csv_safe(row["officer"]),
                    csv_safe(row["agency"]),
                    csv_safe(row["what"]),
                    csv_safe(", ".join(row["items"])),
                    csv_safe(row["purpose"]),
                    csv_safe(row["consent_id"]),
                ]
            )
    return response
