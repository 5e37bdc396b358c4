""" "Who viewed my data": the audit entries about a citizen written by someone else, as a page
and as a CSV download. Only the logged-in citizen's own entries are ever shown."""

from __future__ import annotations

import csv
from collections.abc import Iterable, Iterator
from typing import Any

from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.utils import timezone
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy
from django.views.decorators.http import require_GET

from civicore.audit.models import AuditEntry
from civicore.audit.selectors import accesses_to_person_data
from civicore.identity.selectors import person_for_user
from civicore.portal.pagination import paginate_page

PAGE_SIZE = 25

# What an officer did, in words a citizen understands.
ACTION_LABELS = {
    "case.view": gettext_lazy("viewed your application"),
    "application.view": gettext_lazy("viewed your application"),
    "document.view": gettext_lazy("opened a document from your application"),
    "document.download": gettext_lazy("downloaded a document"),
    "profile.view": gettext_lazy("viewed your personal details"),
}
FALLBACK_LABEL = gettext_lazy("looked at your data")

# Spreadsheet programs run a cell that starts with one of these as a formula.
_FORMULA_PREFIXES = ("=", "+", "-", "@", "\t", "\r")


def action_label(action: str) -> str:
    return str(ACTION_LABELS.get(action, FALLBACK_LABEL))


def _rows(entries: Iterable[AuditEntry]) -> Iterator[dict[str, Any]]:
    for entry in entries:
        yield {
            "at": entry.at,
            "officer": entry.actor_label,
            "agency": entry.agency.name if entry.agency else "",
            "what": action_label(entry.action),
        }


@login_required
@require_GET
def my_data(request: HttpRequest) -> HttpResponse:
    person = person_for_user(request.user)  # type: ignore[arg-type]
    if person is None:
        return render(request, "audit/my_data.html", {"person": None})
    context = paginate_page(request, accesses_to_person_data(person=person), PAGE_SIZE)
    context["person"] = person
    context["rows"] = list(_rows(context["page"].object_list))
    return render(request, "audit/my_data.html", context)


def csv_safe(value: str) -> str:
    """Keep a value as text when the CSV is opened in a spreadsheet."""
    if value.startswith(_FORMULA_PREFIXES):
        return "'" + value
    return value


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
    writer.writerow([_("Date and time"), _("Officer"), _("Agency"), _("What they did")])
    if person is None:
        return response
    for row in _rows(accesses_to_person_data(person=person).iterator()):
        writer.writerow(
            [
                timezone.localtime(row["at"]).isoformat(timespec="seconds"),
                csv_safe(row["officer"]),
                csv_safe(row["agency"]),
                csv_safe(row["what"]),
            ]
        )
    return response
