"""The one way other apps count something for the scorecards: `record(metric, ...)`, called in the
transaction of the event it counts, so a count is never kept for a change that rolled back.

An increment is a single upsert (`INSERT ... ON CONFLICT DO UPDATE SET value = value + n`), which
SQLite and PostgreSQL both run atomically: concurrent events on the same service and month add up.
The named events below (`application_started`, `case_decided`, ...) are what the hooks call: each
writes its metrics in one statement and reads nothing the caller had not already loaded.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

from django.db import connection
from django.utils import timezone

from civicore.insights.models import Tally

if TYPE_CHECKING:
    from civicore.applications.models import Application
    from civicore.cases.models import Case
    from civicore.payments.models import Payment

# The steps of an application, in the order a citizen meets them (see `FUNNEL`).
STARTED = "started"
ANSWERS_SAVED = "answers_saved"
DOCUMENTS_ATTACHED = "documents_attached"
SUBMITTED = "submitted"
PAID = "paid"
FUNNEL = (STARTED, ANSWERS_SAVED, DOCUMENTS_ATTACHED, SUBMITTED, PAID)
SUBMITTED_PREFILLED = "submitted_prefilled"
DECIDED = "decided"
DECIDED_DIGITAL = "decided_digital"
CLOSED_ON_TIME = "closed_on_time"
PROCESSING_DAYS = "processing_days_"
# Durations are kept in one bucket per working day up to this many; longer ones share the last.
PROCESSING_CAP = 60
OFFLINE_TRANSACTIONS = "offline_transactions"
RATINGS = "ratings"
RATINGS_SCORE = "ratings_score_"


def month_of(at: dt.datetime | dt.date | None = None) -> dt.date:
    """The first day of the month `at` falls in, in the platform's time zone."""
    if at is None:
        at = timezone.now()
    if isinstance(at, dt.datetime):
        at = timezone.localtime(at).date() if timezone.is_aware(at) else at.date()
    return at.replace(day=1)


def record(
    metric: str,
    *,
    agency_id: int,
    service_id: int | None = None,
    at: dt.datetime | dt.date | None = None,
    amount: int = 1,
) -> None:
    """Add `amount` to `metric` for the agency (and service) in the month of `at` (now)."""
    record_many([(metric, agency_id, service_id or 0, month_of(at), amount)])


_TABLE = Tally._meta.db_table


def _upsert_sql(table: str, rows: str) -> str:
    return (
        f"INSERT INTO {table} (month, agency_id, service_key, metric, value) {rows} "
        f"ON CONFLICT (month, agency_id, service_key, metric) "
        f"DO UPDATE SET value = {table}.value + excluded.value"
    )


def record_many(rows: Iterable[tuple[str, int, int, dt.date, int]]) -> None:
    """Add to several tallies at once: (metric, agency_id, service_key, month, amount) each."""
    rows = [row for row in rows if row[4]]
    if not rows:
        return
    table = connection.ops.quote_name(_TABLE)
    placeholders = ", ".join(["(%s, %s, %s, %s, %s)"] * len(rows))
    params: list[Any] = []
    for metric, agency_id, service_key, month, amount in rows:
        params += [month, agency_id, service_key, metric, amount]
    with connection.cursor() as cursor:
        cursor.execute(_upsert_sql(table, f"VALUES {placeholders}"), params)


def _for_service(agency_id: int, service_id: int, at: Any, metrics: Iterable[str]) -> None:
    month = month_of(at)
    record_many([(metric, agency_id, service_id, month, 1) for metric in metrics])


def rating_given(*, agency_id: int, service_id: int | None, score: int, at: Any) -> None:
    """A citizen's rating from 1 to 5 (a report's has no service): the count and its score's."""
    month = month_of(at)
    record_many(
        [(metric, agency_id, service_id or 0, month, 1) for metric in (RATINGS, f"{RATINGS_SCORE}{score}")]
    )


def typed_answers(answers: Any, prefill: Any) -> bool:
    """Whether the citizen has given any answer of their own (pre-filled ones do not count)."""
    return isinstance(answers, dict) and bool(set(answers) - set(prefill or {}))


def filing_metrics(application: Application, *, new: bool, saved_now: bool) -> list[str]:
    """What filing an application counts: started (when it is created by the same call), its
    answers saved for the first time, submitted, and whether it used verified pre-fill."""
    metrics = [STARTED] if new else []
    if saved_now:
        metrics.append(ANSWERS_SAVED)
    if application.status == "submitted":
        metrics.append(SUBMITTED)
        if application.prefill_consented_at is not None:
            metrics.append(SUBMITTED_PREFILLED)
    return metrics


# --- the events the hooks call -----------------------------------------------------------------


def application_started(application: Application) -> None:
    _for_service(application.service.agency_id, application.service_id, application.created_at, [STARTED])


def answers_saved(application: Application, *, had_answers: bool) -> None:
    """A draft saved: counted the first time the citizen's own answers are in it."""
    if not had_answers and typed_answers(application.answers, application.prefill):
        _by_service_id(application.service_id, ANSWERS_SAVED)


def document_first_attached(application: Application) -> None:
    """Before a document is stored on a draft: counted when the draft has no document yet, in one
    statement (the check is part of the upsert)."""
    from civicore.applications.models import ApplicationDocument

    documents = connection.ops.quote_name(ApplicationDocument._meta.db_table)
    _by_service_id(
        application.service_id,
        DOCUMENTS_ATTACHED,
        f"NOT EXISTS (SELECT 1 FROM {documents} WHERE application_id = %s)",  # noqa: S608
        [application.pk],
    )


def application_submitted(application: Application, *, saved_now: bool) -> None:
    """Filed through the portal (or the API's submit): submitted, pre-filled, answers saved."""
    metrics = filing_metrics(application, new=False, saved_now=saved_now)
    _for_service(application.service.agency_id, application.service_id, application.submitted_at, metrics)


def application_filed(application: Application) -> None:
    """Started (and maybe submitted) by one API call, written a statement at a time."""
    saved = typed_answers(application.answers, application.prefill)
    metrics = filing_metrics(application, new=True, saved_now=saved)
    _for_service(application.service.agency_id, application.service_id, application.created_at, metrics)


def filing_cte(application: Application, *, only_if: str = "") -> tuple[str, str, list[Any]]:
    """PostgreSQL: `application_filed` as a part of the WITH list of the filing's one statement
    (written only when `only_if`, a condition on earlier parts, holds)."""
    saved = typed_answers(application.answers, application.prefill)
    metrics = filing_metrics(application, new=True, saved_now=saved)
    month = month_of(application.created_at)
    table = connection.ops.quote_name(_TABLE)
    values = ", ".join(["(%s::date, %s::bigint, %s::bigint, %s, 1::bigint)"] * len(metrics))
    params: list[Any] = []
    for metric in metrics:
        params += [month, application.service.agency_id, application.service_id, metric]
    rows = f"SELECT * FROM (VALUES {values}) AS v" + (f" WHERE {only_if}" if only_if else "")  # noqa: S608
    return ("insights_counted", _upsert_sql(table, rows) + " RETURNING 1", params)


def case_decided(case: Case) -> None:
    """A case approved or rejected: decided, on time or late, its processing time; a rejection is
    end to end digital at once (no result to issue), an approval once its result is issued."""
    from civicore.core.workdays import working_days_between

    application = case.application
    closed = case.closed_at or timezone.now()
    days = working_days_between(application.submitted_at or case.opened_at, closed)
    metrics = [DECIDED, f"{PROCESSING_DAYS}{min(max(days, 0), PROCESSING_CAP)}"]
    if closed <= case.due_at:
        metrics.append(CLOSED_ON_TIME)
    if case.state == "rejected":
        metrics.append(DECIDED_DIGITAL)
    _for_service(case.agency_id, application.service_id, closed, metrics)


def fee_fully_online(application: Application) -> bool:
    """No fee was owed, or it was paid (every fee on the platform is paid online)."""
    from civicore.payments import selectors as payment_selectors

    fee = payment_selectors.fee_status(application=application)
    return fee is None or not fee.owed


def result_issued(application: Application) -> None:
    """An approved application's signed result was issued: its decision (in the month decided)
    was digital end to end if its fee, if any, was paid."""
    case = application.case
    if fee_fully_online(application):
        record(
            DECIDED_DIGITAL, agency_id=case.agency_id, service_id=application.service_id, at=case.closed_at
        )


def fee_paid(payment: Payment) -> None:
    """A `payments.paid` hook (run in the job's transaction, once per payment that became paid):
    the application reached the paid step, unless an earlier payment of it was paid already."""
    from civicore.payments.models import Payment as PaymentModel

    if payment.paid_at is None:
        return
    earlier = PaymentModel.objects.filter(
        application_id=payment.application_id, paid_at__isnull=False, paid_at__lt=payment.paid_at
    ).exclude(pk=payment.pk)
    if earlier.exists():
        return
    record(PAID, agency_id=payment.agency_id, service_id=payment.service_id, at=payment.paid_at)


def _by_service_id(service_id: int, metric: str, condition: str = "", params: Iterable[Any] = ()) -> None:
    """Count `metric` for a service whose agency the caller has not loaded: the agency is read by
    the upsert itself, which adds nothing unless `condition` (SQL, with `params`) holds."""
    from civicore.catalogue.models import Service

    table = connection.ops.quote_name(_TABLE)
    services = connection.ops.quote_name(Service._meta.db_table)
    rows = f"SELECT %s, s.agency_id, s.id, %s, 1 FROM {services} AS s WHERE s.id = %s"  # noqa: S608
    with connection.cursor() as cursor:
        cursor.execute(
            _upsert_sql(table, rows + (f" AND {condition}" if condition else "")),
            [month_of(), metric, service_id, *params],
        )
