"""The request id: echoed when well formed, replaced (and never logged) when not, carried by the
request's log lines, stored on the jobs it enqueues and set again while the worker runs them."""

from __future__ import annotations

import io
import json
import logging
import re
from collections.abc import Iterator
from typing import Any

import pytest
from django.core.signals import request_finished
from django.db import close_old_connections
from django.http import HttpRequest, HttpResponse
from django.test import Client, RequestFactory

from civicore.core import jobs, request_ids
from civicore.core.logs import JsonFormatter, RequestIdFilter
from civicore.core.middleware import RequestIdMiddleware
from civicore.core.models import Job

pytestmark = pytest.mark.django_db

GENERATED = re.compile(r"[0-9a-f]{32}")
job_log = logging.getLogger("civicore.tests.telemetry_job")


@jobs.job("test.telemetry_logs")
def _logs(**payload: Any) -> None:
    job_log.warning("job ran for %s", payload.get("what"))


@pytest.fixture
def json_lines() -> Iterator[io.StringIO]:
    """What the root logger writes, formatted at once as in production's LOG_FORMAT=json."""
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(JsonFormatter())
    handler.addFilter(RequestIdFilter())
    root = logging.getLogger()
    root.addHandler(handler)
    try:
        yield stream
    finally:
        root.removeHandler(handler)


def records(stream: io.StringIO) -> list[dict[str, Any]]:
    return [json.loads(line) for line in stream.getvalue().splitlines() if line]


@pytest.mark.parametrize("incoming", ["abc", "req-2026.01_01", "A" * 64, "0"])
def test_a_well_formed_incoming_id_is_returned(incoming: str) -> None:
    response = Client().get("/healthz", HTTP_X_REQUEST_ID=incoming)
    assert response["X-Request-ID"] == incoming


def test_without_one_an_id_is_generated_per_request() -> None:
    client = Client()
    first, second = (client.get("/healthz")["X-Request-ID"] for _ in range(2))
    assert GENERATED.fullmatch(first) and GENERATED.fullmatch(second) and first != second


@pytest.mark.parametrize(
    "hostile",
    [
        "abc\ndef",
        "abc\r\nX-Injected: 1",
        "x" * 300,
        "A" * 65,
        "caf\u00e9",
        "\u202eevil",
        "id with spaces",
        "id;rm -rf",
        "",
        "../../etc",
    ],
)
def test_a_hostile_incoming_id_is_replaced_and_never_logged(hostile: str, json_lines: io.StringIO) -> None:
    response = Client().get("/no-such-page-for-request-ids/", HTTP_X_REQUEST_ID=hostile)
    assert response.status_code == 404
    replaced = response["X-Request-ID"]
    assert GENERATED.fullmatch(replaced)
    assert "X-Injected" not in response.headers
    lines = records(json_lines)
    assert lines, "Django logs the 404"
    assert all(line["request_id"] == replaced for line in lines)
    if hostile:
        assert hostile not in json_lines.getvalue()
        assert json.dumps(hostile)[1:-1] not in json_lines.getvalue()


def test_every_log_line_of_a_request_carries_its_id(json_lines: io.StringIO) -> None:
    response = Client().get("/no-such-page-for-request-ids/", HTTP_X_REQUEST_ID="trace-42")
    lines = records(json_lines)
    assert [line["request_id"] for line in lines] == ["trace-42"] * len(lines) and lines
    assert response["X-Request-ID"] == "trace-42"
    # Once the response is closed the id is gone: later lines belong to no request.
    logging.getLogger("civicore.tests").warning("after the request")
    assert records(json_lines)[-1]["request_id"] is None


def _request_that_enqueues(request_id: str, enqueue: Any) -> HttpResponse:
    def view(request: HttpRequest) -> HttpResponse:
        enqueue()
        return HttpResponse("queued")

    request = RequestFactory().get("/", HTTP_X_REQUEST_ID=request_id)
    response = RequestIdMiddleware(view)(request)
    # request_finished, as the server sends it on closing the response; like Django's test client,
    # without closing the test's database connection.
    request_finished.disconnect(close_old_connections)
    try:
        response.close()
    finally:
        request_finished.connect(close_old_connections)
    return response


def test_a_job_enqueued_in_a_request_carries_its_id_into_the_worker(json_lines: io.StringIO) -> None:
    response = _request_that_enqueues("req-abc", lambda: jobs.enqueue("test.telemetry_logs", what="one"))
    assert response["X-Request-ID"] == "req-abc"
    job = Job.objects.get(name="test.telemetry_logs")
    assert job.request_id == "req-abc"
    assert request_ids.get() == ""  # the request is over

    assert jobs.work(once=True) == 1
    ran = [line for line in records(json_lines) if line["logger"] == "civicore.tests.telemetry_job"]
    assert ran == [
        {
            "time": ran[0]["time"],
            "level": "WARNING",
            "logger": "civicore.tests.telemetry_job",
            "message": "job ran for one",
            "request_id": "req-abc",
        }
    ]
    assert request_ids.get() == ""  # the worker does not keep it for the next job


def test_batches_and_prebuilt_rows_carry_the_id_too() -> None:
    def enqueue_both() -> None:
        jobs.enqueue_many("test.telemetry_logs", [{"what": "a"}, {"what": "b"}])
        jobs.enqueue_each("test.telemetry_logs", "what", [1, 2])
        Job.objects.bulk_create([jobs.job_row("test.telemetry_logs", what="row")])

    _request_that_enqueues("batch-7", enqueue_both)
    assert list(Job.objects.values_list("request_id", flat=True)) == ["batch-7"] * 5


def test_a_job_enqueued_outside_a_request_has_none(json_lines: io.StringIO) -> None:
    job = jobs.enqueue("test.telemetry_logs", what="cron")
    assert job.request_id == ""
    jobs.work(once=True)
    ran = [line for line in records(json_lines) if line["logger"] == "civicore.tests.telemetry_job"]
    assert ran[0]["request_id"] is None


def test_a_failing_jobs_warning_carries_the_id(json_lines: io.StringIO) -> None:
    @jobs.job("test.telemetry_fails")
    def _fails() -> None:
        raise RuntimeError("receiver down")

    _request_that_enqueues("fail-1", lambda: jobs.enqueue("test.telemetry_fails"))
    jobs.work(once=True)
    failed = [line for line in records(json_lines) if "receiver down" in line["message"]]
    assert failed and failed[0]["request_id"] == "fail-1" and failed[0]["logger"] == "civicore.core.jobs"
