"""Where an OpenID Connect flow's time goes: the benchmark's five requests, profiled in one process.

Prepares the same database as bench/tokens.py (drop, migrate, seed one application and logged-in
citizens), then in a Django process runs N complete flows through django.test.Client (the whole
stack: middleware, sessions, CSRF, Authlib, templates), PAR -> consent screen -> approve -> token
-> userinfo, with client assertions made outside the measured part. For every step it prints the
CPU time of the Django process, the CPU time of its PostgreSQL backend (from the kernel's
scheduler statistics, so both sides of a round trip are counted), the wall time and the SQL
statements; then the statements of one flow and the costliest functions of each step under
cProfile.

    python bench/profile_tokens.py [--flows N] [--top K] [--citizens C] [--no-par]

With --top 0 there is no cProfile pass: run it under a sampling profiler (py-spy record
--subprocesses) to see where the CPU time goes without cProfile's overhead. PROFILE_TOKENS_DUMP=file
keeps the whole flow's cProfile data for pstats. The PostgreSQL column needs the server on the
same Linux machine.
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

from submission import REPO, child_env, database_urls, recreate_database, run  # noqa: E402

TOKENS_SCRIPT = Path(__file__).resolve().parent / "tokens.py"

INNER = r"""
import base64, collections, cProfile, gc, hashlib, io, json, os, pstats, secrets, statistics, sys, time
from pathlib import Path
from urllib.parse import parse_qs, urlencode, urlsplit

import config.wsgi  # noqa: F401 - set up as a gunicorn worker is (django.setup, gc.freeze)
from django.conf import settings
from django.db import connection
from django.test import Client
from joserfc import jwt
from joserfc.jwk import ECKey

sys.path.insert(0, sys.argv[4])
from tokens import ASSERTION_TYPE, CLIENT_ID, REDIRECT_URI, SCOPE, STEPS

flows, top, seeded = int(sys.argv[1]), int(sys.argv[2]), json.loads(Path(sys.argv[3]).read_text())
par = sys.argv[5] == "par"
steps = STEPS if par else STEPS[1:]
key = ECKey.import_key(seeded["private_jwk"])
site = settings.SITE_URL
# The citizen's browser carries its session and CSRF cookies; the relying party sends none.
browser = Client(HTTP_HOST="127.0.0.1", enforce_csrf_checks=True)
rp = Client(HTTP_HOST="127.0.0.1", enforce_csrf_checks=True)
csrf = secrets.token_hex(16)

def assertion(audience):
    now = int(time.time())
    claims = {"iss": CLIENT_ID, "sub": CLIENT_ID, "aud": audience, "iat": now, "exp": now + 60,
              "jti": secrets.token_urlsafe(16)}
    return jwt.encode({"alg": "ES256", "kid": key.kid}, claims, key)

def backend_cpu_ns():
    # Field 1 of schedstat: nanoseconds the PostgreSQL backend process ran on a CPU (0 when the
    # server runs elsewhere, or not on Linux: the column then reads 0).
    try:
        with open(f"/proc/{backend_pid}/schedstat") as handle:
            return int(handle.read().split()[0])
    except OSError:
        return 0

connection.ensure_connection()
with connection.cursor() as cursor:
    cursor.execute("SELECT pg_backend_pid()")
    backend_pid = cursor.fetchone()[0]

queries = []
def capture(execute, sql, params, many, context):
    queries.append(sql)
    return execute(sql, params, many, context)
connection.execute_wrappers.append(capture)

# Time spent in the garbage collector, per generation.
gc_time = {"began": 0.0, "total": collections.Counter(), "count": collections.Counter()}

def gc_callback(phase, info):
    if phase == "start":
        gc_time["began"] = time.process_time()
    else:
        gc_time["total"][info["generation"]] += time.process_time() - gc_time["began"]
        gc_time["count"][info["generation"]] += 1

gc.callbacks.append(gc_callback)
cpu = collections.defaultdict(list)      # Django process CPU ms per step
db_cpu = collections.defaultdict(list)   # PostgreSQL backend CPU ms per step
wall = collections.defaultdict(list)
sql = collections.defaultdict(list)
# CPU time, not wall time: waiting for PostgreSQL is counted on its own side above.
profiles = {name: cProfile.Profile(time.process_time) for name in steps}
one_flow = {}

def timed(name, call, profile):
    queries.clear()
    began_wall, began_cpu, began_db = time.perf_counter(), time.process_time(), backend_cpu_ns()
    if profile:
        profiles[name].enable()
    response = call()
    if profile:
        profiles[name].disable()
    else:
        wall[name].append((time.perf_counter() - began_wall) * 1000)
        cpu[name].append((time.process_time() - began_cpu) * 1000)
        db_cpu[name].append((backend_cpu_ns() - began_db) / 1e6)
        sql[name].append(len(queries))
        one_flow[name] = list(queries)
    return response

def flow(n, profile=False):
    session = seeded["sessions"][n % len(seeded["sessions"])]

    def as_browser():
        browser.cookies.clear()
        browser.cookies[seeded["session_cookie"]] = session
        browser.cookies[seeded["csrf_cookie"]] = csrf
        return browser

    def as_rp():
        rp.cookies.clear()
        return rp
    verifier = secrets.token_urlsafe(48)
    challenge = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).rstrip(b"=").decode()
    request = {"response_type": "code", "client_id": CLIENT_ID, "redirect_uri": REDIRECT_URI,
               "scope": SCOPE, "purpose": "login", "state": secrets.token_urlsafe(12),
               "nonce": secrets.token_urlsafe(12), "code_challenge": challenge,
               "code_challenge_method": "S256"}
    form = "application/x-www-form-urlencoded"
    if par:
        body = urlencode({**request, "client_assertion_type": ASSERTION_TYPE,
                          "client_assertion": assertion(site + "/oauth/par")})
        r = timed("par", lambda: as_rp().post("/oauth/par", body, content_type=form), profile)
        assert r.status_code == 201, r.content
        query = urlencode({"client_id": CLIENT_ID, "request_uri": r.json()["request_uri"]})
    else:
        query = urlencode(request)
    path = "/oauth/authorize?" + query
    r = timed("authorize", lambda: as_browser().get(path), profile)
    assert r.status_code == 200, r.content[:300]
    body = urlencode({"csrfmiddlewaretoken": csrf, "decision": "approve"})
    r = timed("approve", lambda: as_browser().post(path, body, content_type=form), profile)
    assert r.status_code == 302, r.content[:300]
    code = parse_qs(urlsplit(r["Location"]).query)["code"][0]
    body = urlencode({"grant_type": "authorization_code", "code": code, "redirect_uri": REDIRECT_URI,
                      "code_verifier": verifier, "client_assertion_type": ASSERTION_TYPE,
                      "client_assertion": assertion(site + "/oauth/token")})
    r = timed("token", lambda: as_rp().post("/oauth/token", body, content_type=form), profile)
    assert r.status_code == 200, r.content[:300]
    access = r.json()["access_token"]
    r = timed("userinfo", lambda: as_rp().get("/oauth/userinfo", HTTP_AUTHORIZATION=f"Bearer {access}"),
              profile)
    assert r.status_code == 200, r.content[:300]

# Warm caches, connections, templates and translations, and bring every citizen once through a
# flow, as the benchmark's rounds do: from then on each approval replaces the citizen's previous
# consent and the session's activity record is fresh.
for n in range(max(20, len(seeded["sessions"]))):
    flow(n)
for name in list(cpu):
    for table in (cpu, db_cpu, wall, sql):
        table[name].clear()
gc_time["total"].clear()
gc_time["count"].clear()
for n in range(flows):
    flow(n)
gc_measured = {g: (gc_time["count"][g], gc_time["total"][g] * 1000 / flows) for g in sorted(gc_time["count"])}
if top:
    for n in range(flows):
        flow(5000 + n, profile=True)

def med(values):
    return statistics.median(values) if values else 0.0

def mean(values):
    return statistics.fmean(values) if values else 0.0

print(f"{flows} flows in one process (no profiler), per step: mean / median ms")
print(f"{'step':>10} | {'app CPU':>15} | {'PostgreSQL CPU':>15} | {'wall':>15} | {'SQL':>4}")
for name in steps:
    print(f"{name:>10} | {mean(cpu[name]):6.2f} / {med(cpu[name]):6.2f} | {mean(db_cpu[name]):6.2f} / "
          f"{med(db_cpu[name]):6.2f} | {mean(wall[name]):6.2f} / {med(wall[name]):6.2f} | "
          f"{med(sql[name]):4.0f}")
total_cpu = sum(mean(cpu[name]) for name in steps)
total_db = sum(mean(db_cpu[name]) for name in steps)
print(f"{'flow':>10} | {total_cpu:15.2f} | {total_db:15.2f} | {sum(mean(wall[n]) for n in steps):15.2f} | "
      f"{sum(med(sql[n]) for n in steps):4.0f}")
print("garbage collections during the measured flows, per generation (count, CPU ms per flow):",
      {g: (count, round(ms, 2)) for g, (count, ms) in gc_measured.items()})
print(f"CPU per flow, application + PostgreSQL: {total_cpu + total_db:.2f} ms "
      f"(~{2000 / (total_cpu + total_db):.0f} flows/s on two cores if nothing else ran)")

for name in steps:
    print(f"\n--- {name}: {len(one_flow.get(name, []))} SQL statements ---")
    for statement in one_flow.get(name, []):
        print("  " + " ".join(statement.split())[:160])
if top:
    for order in ("tottime", "cumulative"):
        out = io.StringIO()
        merged = pstats.Stats(profiles[steps[0]], stream=out)
        for name in steps[1:]:
            merged.add(profiles[name])
        if order == "tottime" and os.environ.get("PROFILE_TOKENS_DUMP"):
            merged.dump_stats(os.environ["PROFILE_TOKENS_DUMP"])  # for pstats' callers/callees
        merged.strip_dirs().sort_stats(order).print_stats(top)
        print(f"\n=== whole flow: top {top} by {order} ({flows} flows) ===")
        print("\n".join(line for line in out.getvalue().splitlines() if line.strip())[:16000])
for name in steps if top else ():
    out = io.StringIO()
    stats = pstats.Stats(profiles[name], stream=out).strip_dirs()
    stats.sort_stats("cumulative").print_stats(top)
    print(f"\n=== {name}: top {top} by cumulative time ({flows} calls) ===")
    print("\n".join(line for line in out.getvalue().splitlines() if line.strip())[:12000])
    out = io.StringIO()
    pstats.Stats(profiles[name], stream=out).strip_dirs().sort_stats("tottime").print_stats(top)
    print(f"\n=== {name}: top {top} by own time ===")
    print("\n".join(line for line in out.getvalue().splitlines() if line.strip())[:8000])
"""


def main() -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--flows", type=int, default=200)
    parser.add_argument(
        "--top", type=int, default=25, help="functions listed per step; 0 skips the cProfile pass"
    )
    parser.add_argument("--citizens", type=int, default=40)
    parser.add_argument("--no-par", dest="par", action="store_false")
    parser.add_argument("--database", default="civicore_bench_tokens")
    args = parser.parse_args()
    admin_url = os.environ.get("BENCH_POSTGRES_URL", "postgres://postgres@127.0.0.1:5432/postgres")
    admin_url, database_url = database_urls(admin_url, args.database)
    work = Path(tempfile.mkdtemp(prefix="civicore-profile-tokens-"))
    try:
        env = child_env(work / "var", database_url, conn_max_age=600)
        env["SITE_URL"] = "http://127.0.0.1"
        recreate_database(admin_url, args.database)
        run([sys.executable, "-m", "civicore", "migrate", "--no-input", "--verbosity", "0"], env)
        seed_file = work / "seed.json"
        run([sys.executable, str(TOKENS_SCRIPT), "seed", str(seed_file), str(args.citizens)], env)
        inner = work / "profile_tokens_inner.py"  # a file, so that samplers show a short command
        inner.write_text(INNER, encoding="utf-8")
        cmd = [
            sys.executable, str(inner), str(args.flows), str(args.top), str(seed_file),
            str(TOKENS_SCRIPT.parent), "par" if args.par else "query",
        ]  # fmt: skip
        env["PYTHONPATH"] = str(REPO)  # this checkout, whatever the virtualenv points at
        return subprocess.run(cmd, env=env, cwd=REPO, check=False).returncode  # noqa: S603
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
