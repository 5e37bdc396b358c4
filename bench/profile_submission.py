"""Where a submission's time goes: the benchmark's request, profiled in one process.

Prepares the same database as bench/submission.py (drop, migrate, seed), then in a Django process
sends N submissions through django.test.Client (the whole stack: middleware, token auth, ninja,
application_file) under cProfile, and prints the costliest functions, the SQL statements per
submission and how long the section that holds the reference-counter row lock and the audit
advisory lock lasts: that section is serial across all workers, so it bounds throughput.

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
from django.db import connection, transaction
from django.test import Client
from django.test.utils import CaptureQueriesContext

from civicore.applications import services as application_services

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

# Time from taking the reference number (row lock on the counter) to the end of the commit:
# every other submission waits for this section.
serial = []
original_next_reference = application_services._next_reference
def timed_next_reference(svc):
    began = time.perf_counter()
    transaction.on_commit(lambda: serial.append((time.perf_counter() - began) * 1000))
    return original_next_reference(svc)
application_services._next_reference = timed_next_reference

for i in range(20):  # warm caches, connections, token last_used_at
    post(10_000 + i)
serial.clear()

with CaptureQueriesContext(connection) as queries:
    post(20_000)
per_request = [q["sql"] for q in queries.captured_queries]

# Wall time per kind of SQL statement, without the profiler: which round trips are slow.
sql_time = collections.defaultdict(list)
def timed(execute, sql, params, many, context):
    began = time.perf_counter()
    try:
        return execute(sql, params, many, context)
    finally:
        sql_time[" ".join(sql.split()[:4])[:90]].append((time.perf_counter() - began) * 1000)
plain_began = time.perf_counter()
with connection.execute_wrapper(timed):
    for i in range(requests):
        post(30_000 + i)
plain = (time.perf_counter() - plain_began) / requests * 1000
in_sql = sum(sum(v) for v in sql_time.values()) / requests
print(f"without profiler: {plain:.2f} ms per submission, {in_sql:.2f} ms of it waiting on SQL "
      f"({plain - in_sql:.2f} ms Python)")
print("SQL time per submission by statement (ms, total per request / median per call / calls per request):")
for key, values in sorted(sql_time.items(), key=lambda kv: -sum(kv[1]))[:15]:
    total, each, calls = sum(values) / requests, statistics.median(values), len(values) / requests
    print(f"  {total:7.2f} {each:7.2f} {calls:5.1f}  {key}")
serial_plain = statistics.median(serial)
serial.clear()

profiler = cProfile.Profile()
began = time.perf_counter()
profiler.enable()
for i in range(requests):
    post(i)
profiler.disable()
elapsed = time.perf_counter() - began
print(f"{requests} submissions in {elapsed:.2f}s: {elapsed / requests * 1000:.2f} ms each, "
      f"{requests / elapsed:.0f}/s in one process")
print(f"locked section (reference number -> commit), without profiler: median {serial_plain:.2f} ms, "
      f"so at most ~{1000 / serial_plain:.0f} submissions/s across all workers")
print(f"\n{len(per_request)} SQL statements per submission request:")
for sql in per_request:
    print("  " + sql[:150])
# The project's own functions and the libraries it leans on, by cumulative time.
out = io.StringIO()
project = r"(services|selectors|api|answers|crypto|jobs|workdays|api_auth|views)\.py"
pstats.Stats(profiler, stream=out).strip_dirs().sort_stats("cumulative").print_stats(project, top)
print(f"\n--- project functions by cumulative time ---")
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
