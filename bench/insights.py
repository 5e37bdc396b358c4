"""Service performance and open data at scale: scorecard pages over 1,000,000 applications and
CKAN's datastore_search over a 1,000,000-row resource, beside /healthz in the same run.

Set-up (timed, reported apart). A fresh PostgreSQL database holds four agencies with five services
each (the shipped birth-registration form under other codes) and a pool of citizens, made through
the application's own services. Then --applications applications (1,000,000) are written with
set-based SQL, spread over the last twelve months and the twenty services: about one in six is a
draft left at some step, the rest are submitted, a share with verified pre-fill; each submitted one
has a case, most of them decided (some after their due date), the rest open. `civicore insights
rebuild` then computes the tallies from those rows, as an operator does for data loaded before
the tallies existed (the time it takes is reported). A dataset with one resource of --rows rows
(1,000,000; text, integer, numeric, date and boolean columns, each indexed) is written through
the datastore's own COPY path.

Latency. gunicorn serves the application (--workers sync workers); one client sends, in each of
--runs rounds, --requests requests of each kind in an interleaved order over keep-alive
connections: GET /healthz (the baseline: one SELECT 1), the public platform scorecard
/performance/, a service's scorecard /performance/<code>/, and datastore_search calls of five
shapes (first page, a page at a random offset up to 10,000, two filters, a sort on an indexed
column, a full-text `q`). Every answer must be 200 (and `success: true` for the API).

Medians of the rounds' p50 and p95 go to bench/results/insights.json with the ratios to /healthz;
nothing is asserted. Targets: scorecard p95 < 200 ms, datastore_search p95 < 50 ms.

    python bench/insights.py [--applications 1000000] [--rows 1000000] [--runs 3] [--requests 200]
                             [--workers 2] [--quick]        (--quick: 100,000 of each)

The administrative PostgreSQL URL comes from BENCH_POSTGRES_URL, default
postgres://postgres@127.0.0.1:5432/postgres; the database civicore_bench_insights is created
afresh and dropped at the end.
"""

# ruff: noqa: E501 - the seeding SQL reads best one line each

from __future__ import annotations

import argparse
import datetime as dt
import http.client
import json
import os
import random
import statistics
import sys
import tempfile
import time
import urllib.parse
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

import submission as base  # noqa: E402 - the shared helpers of bench/submission.py

REPO = base.REPO
RESULTS = REPO / "bench" / "results" / "insights.json"
DATABASE = "civicore_bench_insights"
SHIPPED_DEFINITION = REPO / "civicore" / "catalogue" / "data" / "services" / "birth-registration.yaml"
AGENCIES = 4
SERVICES_PER_AGENCY = 5
CITIZENS = 200
DATASET = "bench-million"
SCORECARD_KINDS = ("scorecard_platform", "scorecard_service")
DATASTORE_KINDS = ("ds_first_page", "ds_offset", "ds_filters", "ds_sort", "ds_q")


# --- the child: Django against the bench database --------------------------------------------


def _setup() -> dict[str, Any]:
    """Agencies, services and citizens, through the application's own services."""
    import yaml
    from django.db import transaction

    from civicore.agencies.models import Agency
    from civicore.catalogue.services import agencies_load, service_load
    from civicore.identity.models import User
    from civicore.identity.services import person_register

    with tempfile.NamedTemporaryFile("w", suffix=".yaml", encoding="utf-8", delete=False) as handle:
        for a in range(AGENCIES):
            handle.write(f"- {{code: bench-agency-{a}, name_vi: Sở số {a}, name_en: Department {a}}}\n")
    try:
        agencies_load(path=handle.name)
    finally:
        Path(handle.name).unlink()
    shipped = yaml.safe_load(SHIPPED_DEFINITION.read_text(encoding="utf-8"))
    services: list[dict[str, Any]] = []
    for a in range(AGENCIES):
        for s in range(SERVICES_PER_AGENCY):
            definition = dict(shipped)
            definition.update(code=f"bench-service-{a}-{s}", version=1, agency=f"bench-agency-{a}")
            version = service_load(definition=definition)
            services.append({"id": version.service_id, "version": version.pk, "code": definition["code"]})
    agencies = {agency.code: agency.pk for agency in Agency.objects.filter(code__startswith="bench-agency-")}
    people = []
    with transaction.atomic():
        for n in range(CITIZENS):
            user = User.objects.create_user(
                username=f"citizen{n}",
                email=f"citizen{n}@example.test",
                password=None,
                full_name=f"Lê Thị {n}",
            )
            person = person_register(
                user=user,
                national_id=f"0793{n:08d}",
                full_name=f"Lê Thị {n}",
                date_of_birth=dt.date(1990, 5, 17),
                address=f"{n} Phố Huế, phường Hai Bà Trưng",
                agency=Agency.objects.get(code="bench-agency-0"),
            )
            people.append(person.pk)
    return {"services": services, "agencies": agencies, "people": people}


def _seed_applications(setup: dict[str, Any], count: int) -> None:
    """`count` applications over twelve months and all services, with their cases, in set-based
    SQL (the benchmark's set-up, not the code under test)."""
    from django.db import connection, transaction
    from django.utils import timezone

    from civicore.applications.models import Application

    now = timezone.now()
    answers = Application._meta.get_field("answers").get_prep_value({"bench": True})
    services = setup["services"]
    service_ids = [s["id"] for s in services]
    version_ids = [s["version"] for s in services]
    agency_of = {}
    for s in services:
        agency_code = "-".join(s["code"].split("-")[:3]).replace("service", "agency")
        agency_of[s["id"]] = setup["agencies"][agency_code]
    agency_ids = [agency_of[i] for i in service_ids]
    with transaction.atomic(), connection.cursor() as cursor:
        # n decides everything: the service (n mod 20), the day (n mod 365), draft or submitted
        # (n mod 6 = 0: draft), pre-fill (n mod 3 = 0).
        cursor.execute(
            """
            INSERT INTO applications_application (public_id, reference, status, answers, prefill,
                created_at, updated_at, submitted_at, applicant_id, service_id, service_version_id,
                prefill_consented_at, prefill_items, filed_by_id, organisation_id)
            SELECT gen_random_uuid(),
                CASE WHEN n %% 6 = 0 THEN NULL ELSE 'BENCH-' || n END,
                CASE WHEN n %% 6 = 0 THEN 'draft' ELSE 'submitted' END,
                %s, '{}', t.created, t.created, CASE WHEN n %% 6 = 0 THEN NULL ELSE t.created + interval '20 minutes' END,
                p, (%s::bigint[])[1 + n %% 20], (%s::bigint[])[1 + n %% 20],
                CASE WHEN n %% 3 = 0 THEN t.created ELSE NULL END, '[]', p, NULL
            FROM generate_series(1, %s) AS n,
                LATERAL (SELECT (%s::bigint[])[1 + n %% cardinality(%s::bigint[])] AS p,
                                %s::timestamptz - make_interval(days => (n %% 365)::int, mins => (n %% 600)::int) AS created) AS t
            """,
            [answers, service_ids, version_ids, count, setup["people"], setup["people"], now],
        )
        # Cases: decided after 1-30 days (due after 15), open when younger than 30 days and n mod 4 = 1.
        cursor.execute(
            """
            INSERT INTO cases_case (application_id, agency_id, state, assignee_id, opened_at, due_at,
                paused_at, closed_at, decision_reason)
            SELECT a.id, (%s::bigint[])[array_position(%s::bigint[], a.service_id)],
                CASE WHEN open THEN 'in_review' WHEN a.id %% 9 = 0 THEN 'rejected' ELSE 'approved' END,
                NULL, a.submitted_at, a.submitted_at + interval '15 days', NULL,
                CASE WHEN open THEN NULL ELSE a.submitted_at + make_interval(days => 1 + (a.id %% 30)::int) END, ''
            FROM applications_application a,
                LATERAL (SELECT (a.submitted_at > %s::timestamptz - interval '30 days' AND a.id %% 4 = 1) AS open) AS o
            WHERE a.status = 'submitted'
            """,
            [agency_ids, service_ids, now],
        )
        cursor.execute("ANALYZE")


def _seed_resource(rows: int) -> str:
    from civicore.opendata.tests.factories import make_resource

    return str(make_resource(rows=rows, name=DATASET).id)


def child(task: dict[str, Any]) -> dict[str, Any]:
    import django

    sys.path.insert(0, str(REPO))
    django.setup()
    from django.core.management import call_command

    timings: dict[str, float] = {}
    started = time.perf_counter()
    setup = _setup()
    timings["setup_s"] = time.perf_counter() - started
    started = time.perf_counter()
    _seed_applications(setup, task["applications"])
    timings["seed_applications_s"] = time.perf_counter() - started
    started = time.perf_counter()
    call_command("insights", "rebuild", verbosity=0)
    timings["rebuild_s"] = time.perf_counter() - started
    started = time.perf_counter()
    resource_id = _seed_resource(task["rows"])
    timings["seed_resource_s"] = time.perf_counter() - started

    port = base.free_port()
    log = Path(task["var_dir"]) / "gunicorn.log"
    server = base.start_server(
        argparse.Namespace(app="config.wsgi", workers=task["workers"], worker_class="sync", threads=1),
        dict(os.environ),
        port,
        log,
    )
    try:
        base.wait_healthy(server, port, log)
        rounds = [
            _round(port, setup["services"][0]["code"], resource_id, task["requests"], seed)
            for seed in range(task["runs"] + 1)
        ][1:]  # the first round warms the workers up
    finally:
        base.stop_server(server)
    return {"timings": timings, "rounds": rounds}


# --- the client ------------------------------------------------------------------------------


def _datastore(kind: str, resource_id: str, rng: random.Random) -> str:
    from civicore.opendata.tests.factories import CATEGORIES, DISTRICTS

    params: dict[str, Any] = {"resource_id": resource_id, "limit": 100}
    if kind == "ds_offset":
        params["offset"] = rng.randrange(0, 10_000)
    elif kind == "ds_filters":
        params["filters"] = json.dumps(
            {"district": rng.choice(DISTRICTS), "category": rng.choice(CATEGORIES)}
        )
    elif kind == "ds_sort":
        params["sort"] = "count desc"
    elif kind == "ds_q":
        params["q"] = rng.choice(["flooding", "pothole", "Cầu Giấy", "streetlight"])
    return "/api/3/action/datastore_search?" + urllib.parse.urlencode(params)


def _round(port: int, service_code: str, resource_id: str, requests: int, seed: int) -> dict[str, Any]:
    rng = random.Random(seed)
    kinds = ["healthz", *SCORECARD_KINDS, *DATASTORE_KINDS]
    order = [kind for kind in kinds for _ in range(requests)]
    rng.shuffle(order)
    latencies: dict[str, list[float]] = {kind: [] for kind in kinds}
    failures: list[str] = []
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    for kind in order:
        if kind == "healthz":
            path = "/healthz"
        elif kind == "scorecard_platform":
            path = "/performance/"
        elif kind == "scorecard_service":
            path = f"/performance/{service_code}/"
        else:
            path = _datastore(kind, resource_id, rng)
        started = time.perf_counter()
        conn.request("GET", path, headers={"Accept-Language": "en"})
        response = conn.getresponse()
        body = response.read()
        latencies[kind].append((time.perf_counter() - started) * 1000)
        if response.status != 200 or (kind.startswith("ds_") and not json.loads(body).get("success")):
            failures.append(f"{kind} {path}: {response.status} {body[:200]!r}")
        if response.getheader("Connection", "").lower() == "close":
            conn.close()
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    conn.close()
    figures: dict[str, Any] = {}
    for kind, values in latencies.items():
        values.sort()
        figures[kind] = {"p50_ms": base.percentile(values, 0.50), "p95_ms": base.percentile(values, 0.95)}
    for group, members in (("scorecard", SCORECARD_KINDS), ("datastore_search", DATASTORE_KINDS)):
        values = sorted(v for kind in members for v in latencies[kind])
        figures[group] = {"p50_ms": base.percentile(values, 0.50), "p95_ms": base.percentile(values, 0.95)}
    figures["failures"] = failures[:5]
    figures["failure_count"] = len(failures)
    return figures


# --- the parent ------------------------------------------------------------------------------


def measure(args: argparse.Namespace) -> dict[str, Any]:
    admin_url = os.environ.get("BENCH_POSTGRES_URL", "postgres://postgres@127.0.0.1:5432/postgres")
    _admin, database_url = base.database_urls(admin_url, DATABASE)
    base.recreate_database(admin_url, DATABASE)
    with tempfile.TemporaryDirectory(prefix="civicore-bench-insights-") as var_dir:
        env = base.child_env(Path(var_dir), database_url, conn_max_age=60)
        try:
            base.run([sys.executable, "-m", "civicore", "migrate", "--no-input", "--verbosity", "0"], env)
            task = {
                "applications": args.applications,
                "rows": args.rows,
                "runs": args.runs,
                "requests": args.requests,
                "workers": args.workers,
                "var_dir": var_dir,
            }
            out = Path(var_dir) / "result.json"
            cmd = [sys.executable, str(Path(__file__).resolve()), "--child", json.dumps(task), str(out)]
            base.run(cmd, env)
            result = json.loads(out.read_text())
        finally:
            _drop(admin_url)
        result["facts"] = base.facts(admin_url)
    return result


def _drop(admin_url: str) -> None:
    import psycopg
    from psycopg import sql

    with psycopg.connect(admin_url, autocommit=True) as conn:
        conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(DATABASE)))


def summary(result: dict[str, Any]) -> dict[str, Any]:
    rounds = result["rounds"]
    kinds = [k for k in rounds[0] if isinstance(rounds[0][k], dict)]
    medians = {
        kind: {
            figure: round(statistics.median(r[kind][figure] for r in rounds), 2)
            for figure in ("p50_ms", "p95_ms")
        }
        for kind in kinds
    }
    healthz = medians["healthz"]["p95_ms"]
    for kind in kinds:
        medians[kind]["p95_ratio_to_healthz"] = base.ratio(medians[kind]["p95_ms"], healthz)
    return {
        "medians": medians,
        "targets": {"scorecard_p95_ms": 200, "datastore_search_p95_ms": 50},
        "timings_s": {k: round(v, 1) for k, v in result["timings"].items()},
        "failures": sum(r["failure_count"] for r in rounds),
        "failure_samples": [s for r in rounds for s in r["failures"]][:5],
    }


def print_table(report: dict[str, Any]) -> None:
    medians = report["summary"]["medians"]
    print(f"{'request':<22} {'p50 ms':>9} {'p95 ms':>9} {'p95 / healthz':>14}")
    for kind, figures in medians.items():
        print(
            f"{kind:<22} {figures['p50_ms']:>9} {figures['p95_ms']:>9} {figures['p95_ratio_to_healthz']:>14}"
        )
    print("set-up (s):", report["summary"]["timings_s"])
    print("failures:", report["summary"]["failures"], report["summary"]["failure_samples"])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--applications", type=int, default=None)
    parser.add_argument("--rows", type=int, default=None)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--requests", type=int, default=200)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--child", nargs=2, metavar=("TASK", "OUT"), help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        Path(args.child[1]).write_text(json.dumps(child(json.loads(args.child[0]))))
        return 0
    size = 100_000 if args.quick else 1_000_000
    args.applications = args.applications or size
    args.rows = args.rows or size
    result = measure(args)
    report = {
        "benchmark": "insights",
        "parameters": {k: v for k, v in vars(args).items() if k != "child"},
        "summary": summary(result),
        "rounds": result["rounds"],
        "facts": result["facts"],
    }
    print_table(report)
    base.write_report(RESULTS, report)
    return 0


if __name__ == "__main__":
    sys.exit(main())
