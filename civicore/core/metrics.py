"""Prometheus metrics: what operators scrape from GET /metrics (civicore.core.views.metrics).

Counters and histograms are kept by each process (web requests, sign-ins, lockouts); queue
depths are read from the database at scrape time, so any one web process answers for the whole
installation. With PROMETHEUS_MULTIPROC_DIR set (several gunicorn or worker processes),
prometheus_client keeps each process's values in files there and a scrape adds them up.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterator

from prometheus_client import CollectorRegistry, Counter, Histogram, disable_created_metrics, generate_latest
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.metrics_core import Metric
from prometheus_client.multiprocess import MultiProcessCollector
from prometheus_client.registry import REGISTRY, Collector

logger = logging.getLogger(__name__)

UNMATCHED = "unmatched"
# A `_created` series beside every counter doubles the series for nothing Prometheus needs.
disable_created_metrics()

HTTP_REQUESTS = Counter(
    "civicore_http_requests",
    "HTTP requests answered, by the URL pattern that matched, method and status code.",
    ["route", "method", "status"],
)
HTTP_DURATION = Histogram(
    "civicore_http_request_duration_seconds",
    "Time from the request reaching Django to its response, by URL pattern and method.",
    ["route", "method"],
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0),
)
LOGINS = Counter(
    "civicore_logins",
    "Sign-in attempts: success (a completed sign-in) or failure (a wrong password, code or key).",
    ["result"],
)
LOCKOUTS = Counter(
    "civicore_lockouts",
    "Failed attempts that locked an account, address or client (civicore.core.throttle).",
)

# Methods outside this set are counted as "other", so a client cannot grow the label set.
KNOWN_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS", "TRACE"})


def method_label(method: str | None) -> str:
    return method if method in KNOWN_METHODS else "other"


def route_label(route: str | None) -> str:
    """The URL pattern Django resolved, never the path itself (which would give a series per
    application id); the site's root pattern is "/"."""
    if route is None:
        return UNMATCHED
    return route or "/"


class QueueCollector(Collector):
    """Queue depths, read from the database when scraped."""

    def collect(self) -> Iterator[Metric]:
        from django.apps import apps
        from django.db import DatabaseError
        from django.db.models import Count, Min
        from django.utils import timezone

        from civicore.core.models import Job

        queued = GaugeMetricFamily(
            "civicore_jobs_queued", "Background jobs waiting to run, by job name.", labels=["name"]
        )
        oldest = GaugeMetricFamily(
            "civicore_jobs_oldest_age_seconds",
            "Seconds the longest-waiting due job has been due (0 when none is waiting).",
        )
        deliveries = GaugeMetricFamily(
            "civicore_deliveries_pending", "Change notifications to agency systems not yet delivered."
        )
        now = timezone.now()
        try:
            pending = Job.objects.filter(status=Job.Status.PENDING)
            for row in pending.values("name").annotate(count=Count("id")).order_by("name"):
                queued.add_metric([row["name"]], row["count"])
            earliest = pending.filter(run_after__lte=now).aggregate(earliest=Min("run_after"))["earliest"]
            oldest.add_metric([], max(0.0, (now - earliest).total_seconds()) if earliest else 0.0)
            delivery = apps.get_model("exchange", "Delivery")
            deliveries.add_metric([], delivery.objects.filter(status="pending").count())
        except DatabaseError:
            # The request series are still worth having; the database's absence shows in /healthz.
            logger.warning("metrics: the database did not answer; queue gauges left out")
            return
        yield queued
        yield oldest
        yield deliveries


class _ProcessCollector(Collector):
    """This process's own registry (counters, histograms and Python's process metrics)."""

    def collect(self) -> Iterator[Metric]:
        yield from REGISTRY.collect()


def render() -> bytes:
    """The scrape: this process's series, or every process's with PROMETHEUS_MULTIPROC_DIR (read
    from the environment, as prometheus_client itself does), and the queue gauges."""
    registry = CollectorRegistry(auto_describe=False)
    directory = os.environ.get("PROMETHEUS_MULTIPROC_DIR", "")
    if directory:
        MultiProcessCollector(registry, path=directory)
    else:
        registry.register(_ProcessCollector())
    registry.register(QueueCollector())
    return generate_latest(registry)
