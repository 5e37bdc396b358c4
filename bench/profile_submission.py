"""Where a submission's time goes: the benchmark's request, profiled in one process.

Prepares the same database as bench/submission.py (drop, migrate, seed), then in a Django process
sends submissions and `GET /healthz` requests through django.test.Client (the whole stack:
middleware, token auth, ninja, application_file) and prints, without a profiler, the CPU each
costs in this process and in its PostgreSQL backend (read from /proc, so Linux only) and their
ratio; the SQL statements of one submission and the time each kind takes; how long the statement
that takes the reference number runs (the service's counter row stays locked until it commits,
so one service files at most one submission per that time); then, under cProfile counting CPU
time only, the costliest functions.

    python bench/profile_submission.py [--requests N] [--top K]
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from submission import (  # noqa: E402
    REPO,
    SETUP_SCRIPT,
    child_env,
    database_urls,
    recreate_database,
    run,
)

INNER = r"""
import collections, cProfile, io, json, pstats, statistics, sys, time
import django
django.setup()
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext

requests, top, tokens_path, service = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3], sys.argv[4]
tokens = open(tokens_path, encoding="utf-8").read().split()
answers = {"relationship_to_child": "mother", "child_full_name": "Nguyễn Thị Hoa",
           "child_date_of_birth": "2025-11-20", "child_gender": "female",
           "child_place_of_birth": "Trạm y tế", "mother_full_name": "Trần Thị Lan"}
client = Client(HTTP_HOST="127.0.0.1")  # the bench ALLOWED_HOSTS, not "testserver"

def post(i):
    response = client.post(
        "/api/v1/applications",
        data=json.dumps({"service": service, "answers": answers, "submit": True}),
        content_type="application/json",
        headers={"Authorization": f"Bearer {tokens[i % len(tokens)]}", "Idempotency-Key": f"profile-{i}"},
    )
    assert response.status_code == 201, response.content

def healthz(i):
    assert client.get("/healthz").status_code == 200

connection.ensure_connection()
with connection.cursor() as cursor:
    cursor.execute("SELECT pg_backend_pid()")
    backend = cursor.fetchone()[0]

def backend_cpu_ms():
    # Field 1 of schedstat: nanoseconds the PostgreSQL backend ran on a CPU.
    with open(f"/proc/{backend}/schedstat") as handle:
        return int(handle.read().split()[0]) / 1e6

for i in range(20):  # warm caches, connections, prepared statements, token last_used_at
    post(10_000 + i)
    healthz(i)

# CPU per request, in rounds that alternate the two kinds (the machine's noise falls on both);
# the quietest round of each is the best estimate of what a request costs.
rounds = {"healthz": [], "submission": []}
per_round = max(20, requests // 5)
for r in range(5):
    for kind, call, base in (("healthz", healthz, 0), ("submission", post, 100_000 * (r + 1))):
        cpu, db = time.process_time(), backend_cpu_ms()
        began = time.perf_counter()
        for i in range(per_round):
            call(base + i)
        rounds[kind].append(((time.process_time() - cpu) * 1000 / per_round,
                             (backend_cpu_ms() - db) / per_round,
                             (time.perf_counter() - began) * 1000 / per_round))
best = {kind: min(values, key=lambda v: v[0] + v[1]) for kind, values in rounds.items()}
print("CPU per request in one process (quietest of 5 rounds): Django + PostgreSQL backend = total; wall")
for kind, (app, db, wall) in best.items():
    print(f"  {kind:>10}: {app:6.2f} + {db:5.2f} = {app + db:6.2f} ms; wall {wall:6.2f} ms")
ratio = sum(best["submission"][:2]) / sum(best["healthz"][:2])
print(f"  a submission costs {ratio:.1f} times a /healthz request")

with CaptureQueriesContext(connection) as queries:
    post(20_000)
per_request = [q["sql"] for q in queries.captured_queries]

# Wall time per kind of statement: which round trips are slow, and how long the statement that
# takes the reference number runs (it commits on its own, which ends the counter row's lock).
sql_time = collections.defaultdict(list)
def timed(execute, sql, params, many, context):
    began = time.perf_counter()
    try:
        return execute(sql, params, many, context)
    finally:
        sql_time[" ".join(sql.split()[:4])[:90]].append((time.perf_counter() - began) * 1000)
with connection.execute_wrapper(timed):
    for i in range(requests):
        post(30_000 + i)
print("\nSQL wall time per submission by statement (ms: per request / median per call / calls)")
for key, values in sorted(sql_time.items(), key=lambda kv: -sum(kv[1])):
    total, each, calls = sum(values) / requests, statistics.median(values), len(values) / requests
    print(f"  {total:7.2f} {each:7.2f} {calls:5.1f}  {key}")
numbering = [v for key, values in sql_time.items() if "claim" in key or "number" in key for v in values]
if numbering:
    locked = statistics.median(numbering)
    print(f"the statement that takes the reference number and commits: median {locked:.2f} ms, "
          f"so one service files at most ~{1000 / locked:.0f} submissions/s")

print(f"\n{len(per_request)} SQL statements per submission request:")
for sql in per_request:
    print("  " + sql[:150])

profiler = cProfile.Profile(time.process_time)  # CPU time: waiting on PostgreSQL is not counted
profiler.enable()
for i in range(requests):
    post(i)
profiler.disable()
# The project's own functions and the libraries it leans on, by cumulative time.
out = io.StringIO()
project = r"(services|selectors|api|answers|crypto|jobs|workdays|api_auth|views|rowsql)\.py"
pstats.Stats(profiler, stream=out).strip_dirs().sort_stats("cumulative").print_stats(project, top)
print("\n--- project functions by cumulative CPU time (under the profiler, which slows calls) ---")
print("\n".join(line for line in out.getvalue().splitlines() if line.strip()))
for order in ("tottime", "cumulative"):
    out = io.StringIO()
    pstats.Stats(profiler, stream=out).strip_dirs().sort_stats(order).print_stats(top)
    print(f"\n--- top {top} by {order} ---")
    print("\n".join(line for line in out.getvalue().splitlines() if line.strip())[:20000])
"""


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--requests", type=int, default=500)
    parser.add_argument("--top", type=int, default=30)
    parser.add_argument("--database", default="civicore_bench")
    args = parser.parse_args()
    admin_url = os.environ.get("BENCH_POSTGRES_URL", "postgres://postgres@127.0.0.1:5432/postgres")
    admin_url, database_url = database_urls(admin_url, args.database)
    work = Path(tempfile.mkdtemp(prefix="civicore-profile-"))
    try:
        env = child_env(work / "var", database_url, conn_max_age=600)
        recreate_database(admin_url, args.database)
        run([sys.executable, "-m", "civicore", "migrate", "--no-input", "--verbosity", "0"], env)
        tokens = work / "tokens.txt"
        service = run([sys.executable, str(SETUP_SCRIPT), str(tokens), "200"], env).stdout.split()[-1]
        cmd = [sys.executable, "-c", INNER, str(args.requests), str(args.top), str(tokens), service]
        return subprocess.run(cmd, env=env, cwd=REPO, check=False).returncode  # noqa: S603
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
