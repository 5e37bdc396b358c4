"""Writes for the scorecards: the offline volumes an agency reports, and the rebuild that
recomputes every tally from the data (for data loaded before the tallies were kept, and to check
the running counts). Everything else is counted by `events`, in the transaction of its event.
"""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from typing import Any

from django.db import transaction
from django.db.models import Q, QuerySet
from django.utils.translation import gettext as _

from civicore.agencies import permissions
from civicore.agencies.models import Officer
from civicore.audit import services as audit
from civicore.catalogue.models import Service
from civicore.core.errors import PermissionDenied, ValidationFailed
from civicore.insights import events
from civicore.insights.events import month_of
from civicore.insights.models import Tally

# Far above what one service handles at counters in a month; far below the column's range.
OFFLINE_MAX = 10_000_000


class InvalidVolume(ValidationFailed):
    """The number of offline transactions must be a whole number from 0 to 10,000,000."""

    code = "invalid_volume"


@transaction.atomic
def offline_volume_set(*, officer: Officer, service: Service, month: dt.date, count: Any) -> Tally:
    """Record how many transactions of `service` were made offline (at counters, by post) in
    `month`, replacing what was reported before, for digital take-up."""
    permissions.require(officer, permissions.PERFORMANCE_VIEW)
    if service.agency_id != officer.agency_id:
        raise PermissionDenied(_("This service belongs to another agency."))
    if isinstance(count, bool) or not isinstance(count, int) or not 0 <= count <= OFFLINE_MAX:
        raise InvalidVolume(
            _("Enter a whole number from 0 to 10,000,000."), details={"count": _("Not a valid number.")}
        )
    tally, _created = Tally.objects.update_or_create(
        month=month_of(month),
        agency_id=service.agency_id,
        service_key=service.pk,
        metric=events.OFFLINE_TRANSACTIONS,
        defaults={"value": count},
    )
    audit.record(
        actor=officer.user,
        action="insights.offline_volume",
        subject=service,
        agency=officer.agency,
        details={"month": month.isoformat()[:7], "count": count},
    )
    return tally


Key = tuple[dt.date, int, int, str]


def _add(counts: dict[Key, int], at: Any, agency_id: int, service_id: int, metric: str) -> None:
    counts[(month_of(at), agency_id, service_id, metric)] += 1


def tallies_compute() -> dict[Key, int]:
    """Every counted tally, recomputed from the data (reads everything: for maintenance only)."""
    from civicore.applications.models import Application, ApplicationDocument
    from civicore.cases.models import Case
    from civicore.core.workdays import working_days_between
    from civicore.payments.models import Payment

    counts: dict[Key, int] = defaultdict(int)
    applications = Application.objects.values_list(
        "service_id", "service__agency_id", "created_at", "submitted_at", "answers", "prefill",
        "prefill_consented_at",
    )  # fmt: skip
    for service_id, agency_id, created, submitted, answers, prefill, consented in applications.iterator(
        chunk_size=2000
    ):
        _add(counts, created, agency_id, service_id, events.STARTED)
        if events.typed_answers(answers, prefill):
            # When the answers were first saved is not kept: the month the application began.
            _add(counts, created, agency_id, service_id, events.ANSWERS_SAVED)
        if submitted is not None:
            _add(counts, submitted, agency_id, service_id, events.SUBMITTED)
            if consented is not None:
                _add(counts, submitted, agency_id, service_id, events.SUBMITTED_PREFILLED)
    first_document: dict[int, tuple[Any, int, int]] = {}
    documents = ApplicationDocument.objects.filter(uploaded_during="application").values_list(
        "application_id", "uploaded_at", "application__service_id", "application__service__agency_id"
    )
    for application_id, uploaded, service_id, agency_id in documents.iterator(chunk_size=2000):
        seen = first_document.get(application_id)
        if seen is None or uploaded < seen[0]:
            first_document[application_id] = (uploaded, agency_id, service_id)
    for uploaded, agency_id, service_id in first_document.values():
        _add(counts, uploaded, agency_id, service_id, events.DOCUMENTS_ATTACHED)
    first_paid: dict[int, tuple[Any, int, int]] = {}
    paid = Payment.objects.filter(paid_at__isnull=False).values_list(
        "application_id", "paid_at", "agency_id", "service_id"
    )
    for application_id, paid_at, agency_id, service_id in paid.iterator(chunk_size=2000):
        seen = first_paid.get(application_id)
        if seen is None or paid_at < seen[0]:
            first_paid[application_id] = (paid_at, agency_id, service_id)
    for paid_at, agency_id, service_id in first_paid.values():
        _add(counts, paid_at, agency_id, service_id, events.PAID)
    closed = Case.objects.filter(state__in=Case.CLOSED_STATES, closed_at__isnull=False).select_related(
        "application__service_version", "application__service", "application__result_document"
    )
    for case in closed.iterator(chunk_size=500):
        application = case.application
        service_id, agency_id = application.service_id, case.agency_id
        if case.closed_at is None:  # pragma: no cover - filtered out above
            continue
        days = working_days_between(application.submitted_at or case.opened_at, case.closed_at)
        _add(counts, case.closed_at, agency_id, service_id, events.DECIDED)
        bucket = min(max(days, 0), events.PROCESSING_CAP)
        _add(counts, case.closed_at, agency_id, service_id, f"{events.PROCESSING_DAYS}{bucket}")
        if case.closed_at <= case.due_at:
            _add(counts, case.closed_at, agency_id, service_id, events.CLOSED_ON_TIME)
        if case.state == Case.State.REJECTED:
            _add(counts, case.closed_at, agency_id, service_id, events.DECIDED_DIGITAL)
        elif hasattr(application, "result_document") and events.fee_fully_online(application):
            _add(counts, case.closed_at, agency_id, service_id, events.DECIDED_DIGITAL)
    return counts


# Tallies that are not counted from this platform's own records: kept as they are by a rebuild.
KEPT = (events.OFFLINE_TRANSACTIONS, events.RATINGS, events.RATINGS_SCORE)


def counted_tallies() -> QuerySet[Tally]:
    kept = Q()
    for prefix in KEPT:
        kept |= Q(metric__startswith=prefix)
    return Tally.objects.exclude(kept)


@transaction.atomic
def tallies_rebuild() -> int:
    """Replace every counted tally by its recomputed value; returns the number of rows written.
    Offline volumes and ratings (counted by the feedback app) are kept as they are."""
    counts = tallies_compute()
    counted_tallies().delete()
    rows = [
        Tally(month=month, agency_id=agency_id, service_key=service_id, metric=metric, value=value)
        for (month, agency_id, service_id, metric), value in sorted(counts.items())
        if value
    ]
    Tally.objects.bulk_create(rows, batch_size=1000)
    return len(rows)
