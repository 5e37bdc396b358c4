"""Durable background jobs.

`enqueue()` writes a Job row inside the caller's transaction, so work is recorded exactly when
the change that caused it commits. Workers (`civicore worker`) lease due rows, run the handler
registered under the job's name, and retry failures with exponential back-off; a job that keeps
failing ends up DEAD for an operator to inspect and replay. Handlers must be idempotent.
"""

from __future__ import annotations

import logging
import os
import socket
import time
import traceback
from collections.abc import Callable
from datetime import timedelta
from importlib import import_module
from typing import Any

from django.apps import apps
from django.conf import settings
from django.db import transaction
from django.db.models import Q
from django.utils import timezone

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


def backoff(attempts: int) -> timedelta:
    """2, 4, 8 ... seconds, capped at one hour."""
    return timedelta(seconds=min(2**attempts, 3600))


def _claim(worker_id: str, batch: int) -> list[int]:
    now = timezone.now()
    lease = now + timedelta(seconds=settings.JOBS_LEASE_SECONDS)
    due = Q(status=Job.Status.PENDING, run_after__lte=now) & (
        Q(locked_until__isnull=True) | Q(locked_until__lt=now)
    )
    with transaction.atomic():
        qs = Job.objects.filter(due).order_by("run_after", "id")
        if transaction.get_connection().features.has_select_for_update_skip_locked:
            qs = qs.select_for_update(skip_locked=True)
        ids = list(qs.values_list("id", flat=True)[:batch])
        if ids:
            Job.objects.filter(id__in=ids).update(locked_until=lease, locked_by=worker_id)
    return ids


def run_one(job_id: int) -> bool:
    """Run one job; returns True when it succeeded."""
    current = Job.objects.get(pk=job_id)
    if current.status != Job.Status.PENDING:
        return True
    attempt = current.attempts + 1
    try:
        handler = handler_for(current.name)
        handler(**current.payload)
    except Exception as exc:
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


def work(
    *, once: bool = False, batch: int = 20, idle_sleep: float = 0.5, stop: Callable[[], bool] | None = None
) -> int:
    """Process due jobs until `stop()` is true (or the queue is empty, with once=True)."""
    worker_id = f"{socket.gethostname()}:{os.getpid()}"
    done = 0
    last_periodic: dict[int, float] = {}
    while not (stop and stop()):
        _run_periodic(last_periodic)
        ids = _claim(worker_id, batch)
        for job_id in ids:
            run_one(job_id)
            done += 1
        if not ids:
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
