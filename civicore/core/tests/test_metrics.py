"""GET /metrics: only for the scraper holding METRICS_TOKEN; request series labelled by the URL
pattern (never the path); queue gauges read at scrape time; sign-ins and lockouts counted."""

from __future__ import annotations

import os
import subprocess
import sys
import uuid
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from django.conf import settings as django_settings
from django.test import Client
from django.utils import timezone
from prometheus_client.parser import text_string_to_metric_families

from civicore.core import jobs
from civicore.core.models import Job
from civicore.identity.tests.factories import PASSWORD, make_citizen

pytestmark = pytest.mark.django_db

TOKEN = "metrics-token-for-tests-0123456789"
LOGIN = "/accounts/login/"


@jobs.job("test.telemetry_noop")
def _noop(**payload: Any) -> None:
    return None


@pytest.fixture
def token(settings: Any) -> str:
    settings.METRICS_TOKEN = TOKEN
    return TOKEN


def scrape(client: Client | None = None) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
    response = (client or Client()).get("/metrics", HTTP_AUTHORIZATION=f"Bearer {TOKEN}")
    assert response.status_code == 200, response.status_code
    samples = {}
    for family in text_string_to_metric_families(response.content.decode()):
        for sample in family.samples:
            samples[(sample.name, frozenset(sample.labels.items()))] = sample.value
    return samples


def value(samples: dict[Any, float], metric: str, /, **labels: str) -> float:
    return samples.get((metric, frozenset(labels.items())), 0.0)


# --- who may read it ------------------------------------------------------------------------------


def test_without_a_token_configured_the_endpoint_does_not_exist(settings: Any) -> None:
    settings.METRICS_TOKEN = ""
    for headers in ({}, {"HTTP_AUTHORIZATION": "Bearer "}, {"HTTP_AUTHORIZATION": f"Bearer {TOKEN}"}):
        response = Client().get("/metrics", **headers)
        assert response.status_code == 404
        assert b"civicore_http_requests_total" not in response.content


@pytest.mark.parametrize(
    "authorization",
    [
        None,
        "",
        "Bearer",
        "Bearer ",
        f"Bearer {TOKEN[:-1]}",
        f"Bearer {TOKEN}x",
        f"Basic {TOKEN}",
        f"Token {TOKEN}",
        "Bearer t\u00f6ken-\u00e9",
        "Bearer " + "A" * 5000,
    ],
)
def test_a_missing_or_wrong_token_gets_401_json(token: str, authorization: str | None) -> None:
    headers = {} if authorization is None else {"HTTP_AUTHORIZATION": authorization}
    response = Client().get("/metrics", **headers)
    assert response.status_code == 401
    body = response.json()
    assert body["code"] == "unauthenticated" and body["message"] and "details" in body
    assert response["WWW-Authenticate"].startswith("Bearer")
    assert "no-store" in response["Cache-Control"]
    assert b"civicore_" not in response.content


def test_an_address_that_keeps_guessing_is_locked_out_and_others_are_not(token: str) -> None:
    guesser = Client(REMOTE_ADDR="203.0.113.9")
    statuses = [
        guesser.get("/metrics", HTTP_AUTHORIZATION=f"Bearer guess-{n}").status_code for n in range(10)
    ]
    assert statuses == [401] * 10
    locked = guesser.get("/metrics", HTTP_AUTHORIZATION=f"Bearer {token}")
    assert locked.status_code == 429 and locked.json()["code"] == "throttled"
    assert int(locked["Retry-After"]) >= 1 and b"civicore_" not in locked.content
    scraper = Client(REMOTE_ADDR="192.0.2.10")
    assert scraper.get("/metrics", HTTP_AUTHORIZATION=f"Bearer {token}").status_code == 200


def test_the_right_token_gets_prometheus_text_never_cached(token: str) -> None:
    response = Client().get("/metrics", HTTP_AUTHORIZATION=f"bearer {token}")
    assert response.status_code == 200
    assert response["Content-Type"].startswith("text/plain")
    assert "no-store" in response["Cache-Control"]
    names = {family.name for family in text_string_to_metric_families(response.content.decode())}
    assert {
        "civicore_http_requests",
        "civicore_http_request_duration_seconds",
        "civicore_jobs_oldest_age_seconds",
        "civicore_deliveries_pending",
    } <= names


def test_only_get_is_answered(token: str) -> None:
    response = Client().post("/metrics", HTTP_AUTHORIZATION=f"Bearer {token}")
    assert response.status_code in (403, 405)  # the CSRF check may refuse first; never a scrape
    assert b"civicore_" not in response.content


# --- request series -------------------------------------------------------------------------------


def test_requests_are_labelled_by_the_resolved_url_pattern(token: str) -> None:
    before = scrape()
    public_id = uuid.uuid4()
    client = Client()
    statuses = {client.get(f"/applications/{public_id}/").status_code for _ in range(3)}
    after = scrape()
    route = "applications/<uuid:public_id>/"
    counted = sum(
        value(after, "civicore_http_requests_total", route=route, method="GET", status=str(status))
        - value(before, "civicore_http_requests_total", route=route, method="GET", status=str(status))
        for status in statuses
    )
    assert counted == 3
    duration = "civicore_http_request_duration_seconds_count"
    assert (
        value(after, duration, route=route, method="GET") - value(before, duration, route=route, method="GET")
        == 3
    )
    assert not any(str(public_id) in dict(labels).get("route", "") for _name, labels in after)


def test_a_path_that_matches_nothing_is_counted_as_unmatched(token: str) -> None:
    before = scrape()
    hostile = "/no-such-page/" + uuid.uuid4().hex
    assert Client().get(hostile).status_code == 404
    after = scrape()
    key = {"route": "unmatched", "method": "GET", "status": "404"}
    assert (
        value(after, "civicore_http_requests_total", **key)
        - value(before, "civicore_http_requests_total", **key)
        == 1
    )
    assert not any(hostile.strip("/") in dict(labels).get("route", "") for _name, labels in after)


def test_unknown_methods_do_not_grow_the_label_set(token: str) -> None:
    before = scrape()
    Client().generic("BREW" + uuid.uuid4().hex[:6].upper(), "/healthz")
    after = scrape()
    key = {"route": "healthz", "method": "other", "status": "405"}
    assert (
        value(after, "civicore_http_requests_total", **key)
        - value(before, "civicore_http_requests_total", **key)
        == 1
    )
    assert not any(dict(labels).get("method", "").startswith("BREW") for _name, labels in after)


# --- queue gauges ---------------------------------------------------------------------------------


def test_job_depth_and_age_are_read_at_scrape_time(token: str) -> None:
    assert value(scrape(), "civicore_jobs_queued", name="test.telemetry_noop") == 0
    first = jobs.enqueue("test.telemetry_noop", n=1)
    jobs.enqueue("test.telemetry_noop", n=2)
    jobs.enqueue("test.telemetry_noop", n=3, delay=timedelta(hours=1))  # queued, not yet waiting
    Job.objects.filter(pk=first.pk).update(run_after=timezone.now() - timedelta(seconds=600))

    samples = scrape()
    assert value(samples, "civicore_jobs_queued", name="test.telemetry_noop") == 3
    assert 600 <= value(samples, "civicore_jobs_oldest_age_seconds") < 700

    assert jobs.work(once=True) == 2  # the two due ones
    samples = scrape()
    assert value(samples, "civicore_jobs_queued", name="test.telemetry_noop") == 1
    assert value(samples, "civicore_jobs_oldest_age_seconds") == 0


def test_pending_deliveries_are_counted(token: str) -> None:
    from civicore.exchange.tests.factories import change, make_subscriber

    before = value(scrape(), "civicore_deliveries_pending")
    make_subscriber("https://agency.example/hook")
    change(make_citizen(), ["address"])
    assert value(scrape(), "civicore_deliveries_pending") == before + 1


# --- sign-ins and lockouts ------------------------------------------------------------------------


def test_sign_ins_are_counted_by_result(token: str) -> None:
    person = make_citizen()
    before = scrape()
    wrong = Client(REMOTE_ADDR="192.0.2.50").post(LOGIN, {"login": person.user.email, "password": "not it"})
    assert wrong.status_code == 200
    right = Client(REMOTE_ADDR="192.0.2.50").post(LOGIN, {"login": person.user.email, "password": PASSWORD})
    assert right.status_code == 302
    after = scrape()
    for result in ("success", "failure"):
        name = "civicore_logins_total"
        assert value(after, name, result=result) - value(before, name, result=result) == 1, result


def test_a_lockout_is_counted_once(token: str) -> None:
    person = make_citizen()
    before = scrape()
    attacker = Client(REMOTE_ADDR="198.51.100.77")
    statuses = [
        attacker.post(LOGIN, {"login": person.user.email, "password": "guess"}).status_code for _ in range(5)
    ]
    assert statuses == [200, 200, 200, 200, 429]
    after = scrape()
    assert value(after, "civicore_lockouts_total") - value(before, "civicore_lockouts_total") == 1
    failures = value(after, "civicore_logins_total", result="failure") - value(
        before, "civicore_logins_total", result="failure"
    )
    assert failures == 5


# --- several processes ----------------------------------------------------------------------------


def test_with_a_multiprocess_directory_a_scrape_adds_up_every_process(
    token: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    env = {**os.environ, "PROMETHEUS_MULTIPROC_DIR": str(tmp_path)}
    script = (
        "from civicore.core import metrics; "
        "metrics.LOGINS.labels(result='success').inc(); "
        "metrics.HTTP_REQUESTS.labels(route='services/', method='GET', status='200').inc(2)"
    )
    for _process in range(2):
        subprocess.run(  # noqa: S603 - our own interpreter and code
            [sys.executable, "-c", script], env=env, check=True, cwd=django_settings.BASE_DIR, timeout=60
        )
    monkeypatch.setenv("PROMETHEUS_MULTIPROC_DIR", str(tmp_path))
    samples = scrape()
    assert value(samples, "civicore_logins_total", result="success") == 2
    assert value(samples, "civicore_http_requests_total", route="services/", method="GET", status="200") == 4
    assert "civicore_jobs_oldest_age_seconds" in {name for name, _labels in samples}
