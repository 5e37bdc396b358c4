"""Report filing throughput: POST /open311/v2/requests.json with AI routing in the request path,
against a one-query baseline.

Sets up a fresh PostgreSQL database with the demo report categories and their agencies, the demo
routing model (`civicore routing demo-model`, when that command exists; otherwise reports go to
triage and the figures say so) and one Open311 API key per client thread, starts gunicorn, then
alternates two loads with the same client and concurrency: GET /healthz (one SELECT 1) and POST
/open311/v2/requests.json without service_code (API key check, validation, the model's
prediction, reference number, report and events, audit entries, notifications). Prints
throughput and latency per round, their medians and the filing/baseline ratios, writes them to
bench/results/report_filing.json, then proves the work happened: reports, Open311 submissions and
audit entries each equal the 201 responses, and `civicore audit verify` passes. This prints
figures; it asserts no target.

    python bench/report_filing.py [--duration S] [--concurrency N] [--workers W] [--runs R]

The administrative PostgreSQL URL comes from BENCH_POSTGRES_URL, default
postgres://postgres@127.0.0.1:5432/postgres. The rate limit per client (OPEN311_RATE_PER_HOUR) is
lifted for the run: the benchmark measures filing, not refusals.
"""

from __future__ import annotations

import argparse
import datetime as dt
import http.client
import multiprocessing
import os
import random
import secrets
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
import urllib.parse
from collections import Counter
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

import submission as base  # noqa: E402 - the shared helpers of bench/submission.py

REPO = base.REPO
RESULTS = REPO / "bench" / "results" / "report_filing.json"
PATH = "/open311/v2/requests.json"
# Around Hoàn Kiếm, inside the default service area; texts the demo model has categories for.
CENTRE = (21.0285, 105.8542)
TEXTS = [
    "Đèn đường trước số {n} phố Huế không sáng mấy đêm nay",
    "Ổ gà lớn giữa làn đường trước nhà số {n}, rất nguy hiểm",
    "Rác thải chất đống ở đầu ngõ {n} chưa được thu gom",
    "Cống thoát nước bị tắc, mưa là ngập ở ngõ {n}",
    "Ống nước sạch bị vỡ, nước chảy tràn ra đường trước số {n}",
    "Cây xanh nghiêng sắp đổ trước số {n}",
    "The streetlight outside number {n} has been out for days",
    "Cars parked on the pavement in front of number {n} all day",
    "Loud karaoke after midnight at number {n}",
    "Đèn tín hiệu giao thông ở ngã tư gần số {n} bị hỏng",
]


# --- set-up, run in the benchmark's environment (python bench/report_filing.py --setup FILE N) --


def setup(keys_path: Path, keys: int) -> None:
    sys.path.insert(0, str(REPO))
    import django

    django.setup()
    from django.db import transaction

    from civicore.agencies.models import Agency
    from civicore.open311.services import open311_client_create
    from civicore.reports.categories import DEFAULT_FILE, categories_load
    from civicore.reports.demo import AGENCIES, EXISTING

    names = {code: (vi, en) for code, vi, en in AGENCIES}
    names.update({code: (code, code) for code in EXISTING})
    for code, (name_vi, name_en) in names.items():
        Agency.objects.update_or_create(code=code, defaults={"name_vi": name_vi, "name_en": name_en})
    created, updated = categories_load(DEFAULT_FILE)
    secrets_out = []
    with transaction.atomic():
        for n in range(keys):
            _client, secret = open311_client_create(name=f"Bench 311 app {n}")
            secrets_out.append(secret)
    keys_path.write_text("\n".join(secrets_out), encoding="utf-8")
    districts = _districts(int(os.environ.get("BENCH_DISTRICTS", "0") or 0))
    try:
        from civicore.routing.services import route

        decision = route("Đèn đường hỏng không sáng")
    except ImportError:
        decision = None
    model = f"{decision.model_version} (threshold {decision.threshold})" if decision else "none"
    print(f"categories {created + updated}; keys {len(secrets_out)}; districts {districts}; model {model}")


def _districts(count: int) -> int:
    """A grid of about `count` square districts over the reports' area (synthetic boundaries, for
    measuring what finding a report's district costs), loaded as an operator would."""
    if count <= 0:
        return 0
    import json
    import math

    from civicore.areas import services as areas

    side = math.ceil(math.sqrt(count))
    south, west = CENTRE[0] - 0.05, CENTRE[1] - 0.05
    step = 0.1 / side
    features = []
    for row in range(side):
        for column in range(side):
            s, w = south + row * step, west + column * step
            ring = [[w, s], [w + step, s], [w + step, s + step], [w, s + step], [w, s]]
            features.append(
                {
                    "type": "Feature",
                    "properties": {"code": f"B{row:03d}{column:03d}", "name": f"Bench {row}-{column}"},
                    "geometry": {"type": "Polygon", "coordinates": [ring]},
                }
            )
    return areas.load(areas.parse(json.dumps({"type": "FeatureCollection", "features": features})))


# --- load client -------------------------------------------------------------------------------


def _client_thread(spec: dict[str, Any], index: int, out: dict[str, Any], lock: threading.Lock) -> None:
    filing = spec["kind"] == "filing"
    key = spec["keys"][(spec["thread_base"] + index) % len(spec["keys"])]
    rng = random.Random(f"{spec['run_id']}-{spec['thread_base'] + index}")  # noqa: S311 - load data
    latencies: list[float] = []
    statuses: Counter[str] = Counter()
    created = 0
    samples: list[str] = []
    conn = http.client.HTTPConnection(spec["host"], spec["port"], timeout=60)
    try:
        conn.connect()
    except OSError:
        conn.close()
    while time.time() < spec["start_at"]:
        time.sleep(0.001)
    while time.time() < spec["end_at"]:
        if filing:
            fields = {
                "api_key": key,
                "lat": f"{CENTRE[0] + rng.uniform(-0.02, 0.02):.6f}",
                "long": f"{CENTRE[1] + rng.uniform(-0.02, 0.02):.6f}",
                "description": rng.choice(TEXTS).format(n=rng.randint(1, 400)),
                "address_string": f"{rng.randint(1, 400)} Phố Huế",
            }
            body: bytes | None = urllib.parse.urlencode(fields).encode()
            headers = {"Content-Type": "application/x-www-form-urlencoded", "Accept-Language": "vi"}
            method, path = "POST", PATH
        else:
            body, headers, method, path = None, {}, "GET", "/healthz"
        began = time.perf_counter()
        try:
            conn.request(method, path, body=body, headers=headers)
            response = conn.getresponse()
            payload = response.read()
            status = str(response.status)
        except (OSError, http.client.HTTPException) as exc:
            status, payload = type(exc).__name__, str(exc).encode()
            conn.close()
        elapsed_ms = (time.perf_counter() - began) * 1000
        expected = "201" if filing else "200"
        if status == "201":
            created += 1
        if status != expected and len(samples) < 5:
            samples.append(f"{status}: {payload[:300].decode(errors='replace')}")
        if time.time() <= spec["end_at"]:
            latencies.append(elapsed_ms)
            statuses[status] += 1
    conn.close()
    with lock:
        out["latencies"].extend(latencies)
        out["statuses"].update(statuses)
        out["created"] += created
        out["samples"].extend(samples)


def client_process(spec: dict[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {"latencies": [], "statuses": Counter(), "created": 0, "samples": []}
    lock = threading.Lock()
    threads = [
        threading.Thread(target=_client_thread, args=(spec, i, out, lock), daemon=True)
        for i in range(spec["threads"])
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return out


class Load:
    def __init__(self, pool: Any, args: argparse.Namespace, port: int, keys: list[str]) -> None:
        self.pool, self.args, self.port, self.keys = pool, args, port, keys
        self.created = 0
        self.run_id = secrets.token_hex(4)
        self.windows = 0
        self.meter: base.CpuMeter | None = None

    def window(self, kind: str, seconds: float) -> dict[str, Any]:
        procs = max(1, min(self.args.client_processes, self.args.concurrency))
        per = [
            self.args.concurrency // procs + (1 if i < self.args.concurrency % procs else 0)
            for i in range(procs)
        ]
        start_at = time.time() + 0.5
        self.windows += 1
        specs = [
            {
                "kind": kind, "host": "127.0.0.1", "port": self.port, "keys": self.keys,
                "threads": per[i], "thread_base": sum(per[:i]), "start_at": start_at,
                "end_at": start_at + seconds, "run_id": f"{self.run_id}-{self.windows}",
            }
            for i in range(procs)
        ]  # fmt: skip
        before = self.meter.snapshot() if self.meter else {}
        results = self.pool.map(client_process, specs)
        after = self.meter.snapshot() if self.meter else {}
        self.created += sum(r["created"] for r in results)
        figures = base.summarise(results, seconds, "201" if kind == "filing" else "200")
        figures["cpu_ms_per_request"] = base.CpuMeter.per_request(before, after, figures["ok"])
        return figures


def count_rows(database_url: str) -> dict[str, int]:
    import psycopg

    queries = {
        "reports_open311": "SELECT count(*) FROM reports_report WHERE source = 'open311'",
        "open311_submissions": "SELECT count(*) FROM open311_open311submission",
        "audit_report_file": "SELECT count(*) FROM audit_auditentry WHERE action = 'report.file'",
        "audit_ai_route": "SELECT count(*) FROM audit_auditentry WHERE action = 'ai.route'",
        "routed_by_ai": "SELECT count(*) FROM reports_report WHERE routed_by = 'ai'",
        "in_triage": "SELECT count(*) FROM reports_report WHERE status = 'triage'",
    }
    with psycopg.connect(database_url) as conn:
        return {name: conn.execute(query).fetchone()[0] for name, query in queries.items()}


def _demo_model(env: dict[str, str]) -> str:
    """Train and activate the demo routing model if this version has the command."""
    probe = subprocess.run(  # noqa: S603
        [sys.executable, "-m", "civicore", "help", "routing"], env=env, cwd=REPO,
        capture_output=True, text=True, check=False,
    )  # fmt: skip
    if probe.returncode != 0 or "demo-model" not in probe.stdout:
        return "skipped: no `civicore routing demo-model` command"
    done = base.run([sys.executable, "-m", "civicore", "routing", "demo-model"], env)
    return (done.stdout.strip().splitlines() or ["trained"])[-1]


def print_table(rounds: list[dict[str, Any]], medians: dict[str, Any]) -> None:
    head = f"{'round':>6} | {'baseline req/s':>14} {'p50 ms':>8} {'p99 ms':>8} | {'filing req/s':>12} {'p50 ms':>8} {'p99 ms':>8} | {'thr ratio':>9} {'p50 ratio':>9}"  # noqa: E501
    print(head)
    print("-" * len(head))

    def line(label: str, b: dict[str, Any], s: dict[str, Any], r: dict[str, Any]) -> str:
        return (
            f"{label:>6} | {b['throughput_rps']:>14} {b['p50_ms']:>8} {b['p99_ms']:>8} | "
            f"{s['throughput_rps']:>12} {s['p50_ms']:>8} {s['p99_ms']:>8} | "
            f"{r['throughput']!s:>9} {r['p50']!s:>9}"
        )

    for i, rnd in enumerate(rounds, 1):
        print(line(str(i), rnd["baseline"], rnd["filing"], rnd["ratio"]))
    print("-" * len(head))
    print(line("median", medians["baseline"], medians["filing"], medians["ratio"]))


def _interrupt(signum: int, frame: Any) -> None:
    raise KeyboardInterrupt


def run_filing(args: argparse.Namespace) -> dict[str, Any]:
    """Run the benchmark; return (and write) its figures. {} when interrupted."""
    signal.signal(signal.SIGINT, _interrupt)
    signal.signal(signal.SIGTERM, _interrupt)
    admin_url = os.environ.get("BENCH_POSTGRES_URL", "postgres://postgres@127.0.0.1:5432/postgres")
    admin_url, database_url = base.database_urls(admin_url, args.database)
    work = Path(tempfile.mkdtemp(prefix="civicore-bench-filing-"))
    env = base.child_env(work / "var", database_url, args.conn_max_age)
    env["OPEN311_RATE_PER_HOUR"] = str(10**9)
    env["BENCH_DISTRICTS"] = str(args.districts)
    server = None
    pool = None
    try:
        print(f"Preparing database {args.database} ...", flush=True)
        base.recreate_database(admin_url, args.database)
        base.run([sys.executable, "-m", "civicore", "migrate", "--no-input", "--verbosity", "0"], env)
        keys_file = work / "keys.txt"
        model = _demo_model_after_categories(env, keys_file, args)
        keys = keys_file.read_text(encoding="utf-8").split()
        print(f"Routing model: {model}")

        port = args.port or base.free_port()
        log = work / "gunicorn.log"
        server = base.start_server(args, env, port, log)
        base.wait_healthy(server, port, log)
        print(f"gunicorn on 127.0.0.1:{port}: {args.workers} {args.worker_class} workers; "
              f"{args.concurrency} clients in {args.client_processes} processes; "
              f"{args.runs} rounds of {args.duration}s each.", flush=True)  # fmt: skip

        pool = multiprocessing.get_context("spawn").Pool(args.client_processes)
        load = Load(pool, args, port, keys)
        clients = [process.pid for process in getattr(pool, "_pool", []) if process.pid]
        load.meter = base.CpuMeter(server.pid, args.database, clients)
        if args.warmup > 0:
            load.window("baseline", args.warmup)
            load.window("filing", args.warmup)

        rounds = []
        for i in range(args.runs):
            baseline = load.window("baseline", args.duration)
            filing = load.window("filing", args.duration)
            rounds.append(
                {
                    "baseline": baseline,
                    "filing": filing,
                    "ratio": {
                        "throughput": base.ratio(filing["throughput_rps"], baseline["throughput_rps"]),
                        "p50": base.ratio(filing["p50_ms"], baseline["p50_ms"]),
                    },
                }
            )
            print(f"  round {i + 1}: baseline {baseline['throughput_rps']} req/s, "
                  f"filing {filing['throughput_rps']} req/s", flush=True)  # fmt: skip
        base.stop_server(server)
        server = None

        medians: dict[str, Any] = {
            side: {
                key: base.median([r[side][key] for r in rounds])
                for key in ("throughput_rps", "p50_ms", "p99_ms")
            }
            for side in ("baseline", "filing")
        }
        medians["ratio"] = {
            key: base.median([r["ratio"][key] for r in rounds]) for key in ("throughput", "p50")
        }
        print()
        print_table(rounds, medians)

        errors = {side: sum(r[side]["errors"] for r in rounds) for side in ("baseline", "filing")}
        for side in ("baseline", "filing"):
            if errors[side]:
                print(f"\n{errors[side]} {side} requests did not succeed. Samples:")
                for rnd in rounds:
                    for sample in rnd[side]["error_samples"]:
                        print(f"  {sample}")
        if not any(errors.values()):
            print("\nEvery request in the measured windows succeeded (201 / 200).")

        rows = count_rows(database_url)
        checked = ["reports_open311", "open311_submissions", "audit_report_file"]
        if not model.startswith("skipped"):
            checked.append("audit_ai_route")  # every filing asked the model, and said so
        matches = all(rows[name] == load.created for name in checked)
        verdict = f" - {', '.join(checked)} all equal." if matches else " - MISMATCH."
        print(f"\nWork done: {load.created} responses 201 (warm-up included); database holds "
              + ", ".join(f"{k} {v}" for k, v in rows.items()) + verdict)  # fmt: skip
        audit_verify = base.audit_check(env)

        report = {
            "benchmark": "report_filing",
            "timestamp": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
            "parameters": {
                "duration_s": args.duration,
                "warmup_s": args.warmup,
                "runs": args.runs,
                "concurrency": args.concurrency,
                "client_processes": args.client_processes,
                "workers": args.workers,
                "worker_class": args.worker_class,
                "threads": args.threads if args.worker_class == "gthread" else 1,
                "database_conn_max_age": args.conn_max_age,
                "app": args.app,
                "routing_model": model,
                "districts": args.districts,
            },
            "machine": base.facts(database_url),
            "rounds": rounds,
            "median": medians,
            "verification": {
                "responses_201": load.created,
                "rows": rows,
                "rows_match_responses": matches,
                "audit_verify": audit_verify,
            },
        }
        base.write_report(args.output, report)
        return report
    except KeyboardInterrupt:
        print("\nInterrupted; stopping the server.", file=sys.stderr)
        return {}
    finally:
        if pool is not None:
            pool.terminate()
            pool.join()
        base.stop_server(server)
        shutil.rmtree(work, ignore_errors=True)


def _demo_model_after_categories(env: dict[str, str], keys_file: Path, args: argparse.Namespace) -> str:
    """Categories first (the model's labels must be known categories), then the model, then the
    keys and a check that the model answers."""
    seeded = base.run([sys.executable, str(Path(__file__).resolve()), "--setup", str(keys_file), "0"], env)
    print(seeded.stdout.strip().splitlines()[-1])
    model = _demo_model(env)
    seeded = base.run(
        [sys.executable, str(Path(__file__).resolve()), "--setup", str(keys_file), str(args.concurrency)], env
    )
    print(f"Seeded: {seeded.stdout.strip().splitlines()[-1]}")
    return model


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--duration", type=float, default=15, help="seconds measured per load and round")
    parser.add_argument("--warmup", type=float, default=3, help="seconds of each load before measuring")
    parser.add_argument("--runs", type=int, default=3, help="rounds of baseline + filing")
    parser.add_argument("--concurrency", type=int, default=16, help="concurrent client connections")
    parser.add_argument(
        "--client-processes", type=int, default=2, help="processes the clients are spread over"
    )
    parser.add_argument("--workers", type=int, default=4, help="gunicorn worker processes")
    parser.add_argument("--worker-class", choices=("sync", "gthread"), default="sync")
    parser.add_argument(
        "--threads", type=int, default=4, help="threads per worker with --worker-class gthread"
    )
    parser.add_argument("--conn-max-age", type=int, default=600, help="DATABASE_CONN_MAX_AGE for the server")
    parser.add_argument("--database", default="civicore_bench_filing", help="database to drop and recreate")
    parser.add_argument("--port", type=int, default=0, help="server port (default: first free from 18000)")
    parser.add_argument("--output", type=Path, default=RESULTS)
    parser.add_argument(
        "--districts", type=int, default=0, help="load a grid of about this many districts over the area"
    )
    parser.add_argument("--app", default="config.wsgi:application", help="WSGI application to serve")
    return parser.parse_args(argv)


if __name__ == "__main__":
    if len(sys.argv) == 4 and sys.argv[1] == "--setup":
        setup(Path(sys.argv[2]), int(sys.argv[3]))
        sys.exit(0)
    sys.exit(0 if run_filing(parse_args()) else 1)
