"""Durable background jobs.

`enqueue()` writes a Job row inside the caller's transaction, so work is recorded exactly when
the change that caused it commits. A worker (`civicore worker`) runs each due job in one
transaction that locks the job's row, runs the handler registered under its name and marks the
job done: the handler's database writes and the done-marker commit together or not at all. A
worker killed mid-job, or cut off from the database, leaves no trace, and the job is run again
by the next worker that gets to it. Failures are retried with exponential back-off; a job that
keeps failing ends up DEAD for an operator to inspect and replay. What a handler does outside the
database (an e-mail) can happen again when a worker dies between doing it and committing, so
handlers must be idempotent.
"""

from __future__ import annotations

import functools
import json
import logging
import time
import traceback
from collections.abc import Callable, Sequence
from datetime import timedelta
from importlib import import_module
from typing import Any

from django.apps import apps
from django.conf import settings
from django.db import DatabaseError, connections, transaction
from django.db.models import Q, QuerySet
from django.utils import timezone

from civicore.core import request_ids, rowsql
from civicore.core.models import Job

logger = logging.getLogger(__name__)

Handler = Callable[..., Any]
_registry: dict[str, Handler] = {}
_periodic: list[tuple[float, Callable[[], Any]]] = []


def job(name: str) -> Callable[[Handler], Handler]:
    """Register a function as the handler for jobs called `name`."""

    def register(func: Handler) -> Handler:
        _registry[name] = func
        return func

    return register


def periodic(*, seconds: float) -> Callable[[Callable[[], Any]], Callable[[], Any]]:
    """Register housekeeping that every worker runs about every `seconds` (it must be safe to
    run concurrently in several workers)."""

    def register(func: Callable[[], Any]) -> Callable[[], Any]:
        _periodic.append((seconds, func))
        return func

    return register


def _run_periodic(last_run: dict[int, float]) -> None:
    now = time.monotonic()
    for index, (seconds, func) in enumerate(_periodic):
        if now - last_run.get(index, 0.0) >= seconds:
            last_run[index] = now
            try:
                func()
            except Exception:
                logger.exception("periodic task %s failed", func.__name__)


def autodiscover() -> None:
    for config in apps.get_app_configs():
        if config.name.startswith("civicore."):
            try:
                import_module(f"{config.name}.tasks")
            except ModuleNotFoundError as exc:
                if exc.name != f"{config.name}.tasks":
                    raise


def handler_for(name: str) -> Handler:
    return _registry[name]


def enqueue(name: str, *, delay: timedelta | None = None, **payload: Any) -> Job:
    if name not in _registry:
        raise KeyError(f"No job handler registered for {name!r}")
    created = Job.objects.create(
        name=name,
        payload=payload,
        max_attempts=settings.JOBS_MAX_ATTEMPTS,
        run_after=timezone.now() + (delay or timedelta()),
    )
    if settings.JOBS_RUN_INLINE:
        transaction.on_commit(lambda: run_one(created.pk))
    return created


def job_row(name: str, **payload: Any) -> Job:
    """The row `enqueue` writes, not yet saved, for a service that writes it in one statement
    with the change it follows (`rowsql.insert`) and then calls `enqueued`."""
    if name not in _registry:
        raise KeyError(f"No job handler registered for {name!r}")
    return Job(name=name, payload=payload, max_attempts=settings.JOBS_MAX_ATTEMPTS, run_after=timezone.now())


def enqueued(*written: Job) -> None:
    """After rows from `job_row` are written: what `enqueue` does then."""
    if settings.JOBS_RUN_INLINE:
        for each in written:
            transaction.on_commit(functools.partial(run_one, each.pk))


def enqueue_many(name: str, payloads: Sequence[dict[str, Any]]) -> None:
    """`enqueue` for a batch of jobs of one kind (a bank statement's payments), in the caller's
    transaction: one COPY on PostgreSQL instead of an INSERT per job."""
    if name not in _registry:
        raise KeyError(f"No job handler registered for {name!r}")
    if settings.JOBS_RUN_INLINE:  # each is run after the commit, so each needs its id
        for payload in payloads:
            enqueue(name, **payload)
        return
    now = timezone.now()
    attempts = settings.JOBS_MAX_ATTEMPTS
    request_id = request_ids.get()
    rowsql.insert_many(
        Job,
        ("name", "payload", "status", "attempts", "max_attempts", "run_after", "locked_by", "last_error",
         "created_at", "request_id"),
        ((name, payload, Job.Status.PENDING, 0, attempts, now, "", "", now, request_id)
         for payload in payloads),
    )  # fmt: skip


def enqueue_each(name: str, field: str, ids: Sequence[int]) -> None:
    """`enqueue_many` of one job `{field: id}` per id, in the caller's transaction; on PostgreSQL
    the database builds the rows from the ids, sent as one JSON array (a bank statement's payments)."""
    conn = transaction.get_connection()
    if conn.vendor != "postgresql" or settings.JOBS_RUN_INLINE:
        enqueue_many(name, [{field: pk} for pk in ids])
        return
    if name not in _registry:
        raise KeyError(f"No job handler registered for {name!r}")
    if not ids:
        return
    now = timezone.now()
    table = conn.ops.quote_name(Job._meta.db_table)
    with conn.cursor() as cursor:
        cursor.execute(
            f"""INSERT INTO {table} (name, payload, status, attempts, max_attempts, run_after, locked_by,
                    last_error, created_at, request_id)
                SELECT %s, jsonb_build_object(%s::text, t.id), %s, 0, %s, %s, '', '', %s, %s
                FROM jsonb_array_elements(%s::jsonb) WITH ORDINALITY AS t(id, n) ORDER BY t.n""",  # noqa: S608
            [
                name,
                field,
                Job.Status.PENDING,
                settings.JOBS_MAX_ATTEMPTS,
                now,
                now,
                request_ids.get(),
                json.dumps(list(ids)),
            ],
        )


def backoff(attempts: int) -> timedelta:
    """2, 4, 8 ... seconds, capped at one hour."""
    return timedelta(seconds=min(2**attempts, 3600))


def _lockable(queryset: QuerySet[Job]) -> QuerySet[Job]:
    """Lock the rows read, skipping those another worker holds; on SQLite, where a write
    transaction already excludes every other, as they are."""
    if transaction.get_connection().features.has_select_for_update_skip_locked:
        return queryset.select_for_update(skip_locked=True)
    return queryset


def _due() -> QuerySet[Job]:
    now = timezone.now()
    # locked_until: a lease taken by a worker of an earlier version, respected until it ends.
    return Job.objects.filter(
        Q(locked_until__isnull=True) | Q(locked_until__lt=now), status=Job.Status.PENDING, run_after__lte=now
    ).order_by("run_after", "id")


def _execute(current: Job) -> bool:
    """Run a locked job inside the caller's transaction and record its outcome there, under the
    id of the request that enqueued it, so the job's log lines can be found with the request's."""
    with request_ids.bound(current.request_id):
        return _execute_job(current)


def _execute_job(current: Job) -> bool:
    attempt = current.attempts + 1
    try:
        # A savepoint: a failing handler's writes are undone, the record of its failure is kept.
        with transaction.atomic():
            handler_for(current.name)(**current.payload)
    except Exception as exc:
        connection = transaction.get_connection()
        if connection.needs_rollback or connection.closed_in_transaction:
            raise  # the connection failed and took the transaction along: the job stays as it was
        status = Job.Status.DEAD if attempt >= current.max_attempts else Job.Status.PENDING
        logger.warning("job %s#%s failed (attempt %s): %s", current.name, current.pk, attempt, exc)
        Job.objects.filter(pk=current.pk).update(
            attempts=attempt,
            status=status,
            run_after=timezone.now() + backoff(attempt),
            locked_until=None,
            last_error="".join(traceback.format_exception_only(exc))[-2000:],
            finished_at=timezone.now() if status == Job.Status.DEAD else None,
        )
        return False
    Job.objects.filter(pk=current.pk).update(
        attempts=attempt, status=Job.Status.DONE, locked_until=None, finished_at=timezone.now()
    )
    return True


def _run_next() -> bool | None:
    """Run the next due job nobody else is running; None when there is none."""
    with transaction.atomic():
        current = _lockable(_due()).first()
        if current is None:
            return None
        return _execute(current)


def run_one(job_id: int) -> bool:
    """Run one job now, due or not; returns True when it succeeded (or was already done) and
    False when it failed or another worker is running it."""
    with transaction.atomic():
        current = _lockable(Job.objects.filter(pk=job_id)).first()
        if current is None:
            return Job.objects.filter(pk=job_id).exclude(status=Job.Status.PENDING).exists()
        if current.status != Job.Status.PENDING:
            return True
        return _execute(current)


def _release_broken_connections() -> None:
    """What Django does between two requests: drop connections that failed or outlived
    CONN_MAX_AGE, so the next query reconnects. Connections inside a transaction are left alone."""
    for conn in connections.all(initialized_only=True):
        if not conn.in_atomic_block:
            conn.close_if_unusable_or_obsolete()


def work(
    *, once: bool = False, batch: int = 20, idle_sleep: float = 0.5, stop: Callable[[], bool] | None = None
) -> int:
    """Process due jobs until `stop()` is true (or the queue is empty, with once=True).

    Losing the database (a restart, a fail-over, a terminated session) does not stop the worker:
    it waits a little longer after each failure, reconnects and carries on."""
    done = 0
    outages = 0
    last_periodic: dict[int, float] = {}
    while not (stop and stop()):
        ran = 0
        try:
            _release_broken_connections()
            _run_periodic(last_periodic)
            while ran < batch and not (stop and stop()) and _run_next() is not None:
                ran += 1
                done += 1
        except DatabaseError as exc:  # the database went away; the job in hand was rolled back
            outages += 1
            if once and outages >= 3:
                raise
            logger.warning("database unavailable (%s); trying again", exc)
            _release_broken_connections()
            time.sleep(min(idle_sleep * 2**outages, 5.0))
            continue
        outages = 0
        if not ran:
            if once:
                break
            time.sleep(idle_sleep)
    return done


def replay(job_id: int) -> Job:
    """Put a dead job back in the queue with a fresh set of attempts."""
    Job.objects.filter(pk=job_id, status=Job.Status.DEAD).update(
        status=Job.Status.PENDING, attempts=0, run_after=timezone.now(), locked_until=None, finished_at=None
    )
    return Job.objects.get(pk=job_id)
