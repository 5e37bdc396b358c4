"""Soak: filing applications at half the submission benchmark's throughput for ten minutes, with
the web server and the background worker running, watching for errors and memory growth.

Sets up a fresh PostgreSQL database exactly as bench/submission.py does (one e-service, a pool of
citizens with API tokens), starts gunicorn and `civicore worker` (e-mail jobs, audit sealing,
deliveries), warms up for 30 seconds, then files applications (POST /api/v1/applications with
submit=true) on a fixed schedule: an open loop, so a slow response delays nothing but itself.
Every 10 seconds it samples the resident memory (RSS) of each gunicorn worker and of the job
worker and its delivery process. At the end it prints the errors (any response other than 201,
any exception), the achieved rate, latency percentiles, memory after the warm-up and at the end
per process and in total with its slope, a verdict on flat memory (total growth under 10 %), then
proves the work happened (rows equal to responses, jobs done, the audit chain verified) and writes
bench/results/soak.json. It is not part of the test suite: run it on a quiet machine.

    python bench/soak.py [--duration 600] [--rate R] [--workers W]

--rate is the benchmark's throughput to take half of; by default the median submission
throughput in bench/results/submission.json, or 240/s (a soak at 120/s) when there is none.
The administrative PostgreSQL URL comes from BENCH_POSTGRES_URL, default
postgres://postgres@127.0.0.1:5432/postgres; the database is civicore_bench_soak.
"""

from __future__ import annotations

import argparse
import datetime as dt
import http.client
import json
import math
import multiprocessing
import os
import secrets
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from submission import (  # noqa: E402
    ANSWERS,
    REPO,
    SETUP_SCRIPT,
    audit_check,
    child_env,
    count_rows,
    database_urls,
    facts,
    free_port,
    percentile,
    recreate_database,
    run,
    start_server,
    stop_server,
    wait_healthy,
    write_report,
)

RESULTS = REPO / "bench" / "results" / "soak.json"
SUBMISSION_RESULTS = REPO / "bench" / "results" / "submission.json"
DEFAULT_RATE = 240.0  # the benchmark figure assumed when none has been recorded
SAMPLE_SECONDS = 10.0
FLAT_GROWTH = 0.10  # memory counts as flat if the total grew less than this after the warm-up
RATE_HELD = 0.95  # the schedule counts as kept if this share of the target rate was achieved


# --- load: a fixed schedule, open loop ---------------------------------------------------------
# Request n is due at start + n / rate whatever happened to earlier ones. Threads claim the next
# due slot and wait for it, so how late a request starts (its lag) shows when the clients, not the
# server, fall behind; latency is measured from the moment each request is sent.

_shared: dict[str, Any] = {}


def _client_init(ok: Any, failed: Any) -> None:
    _shared["ok"], _shared["failed"] = ok, failed


def soak_client(spec: dict[str, Any]) -> dict[str, Any]:
    rate, processes, index = spec["rate"], spec["processes"], spec["index"]
    tokens = spec["tokens"]
    lock = threading.Lock()
    next_slot = [0]
    records: list[tuple[float, float, float, str]] = []  # (sent at s, lag ms, latency ms, status)
    samples: list[str] = []

    def claim() -> tuple[int, float]:
        with lock:
            k = next_slot[0]
            next_slot[0] += 1
        n = k * processes + index  # this process's share of the one global schedule
        return n, spec["start_at"] + n / rate

    def loop() -> None:
        conn = http.client.HTTPConnection(spec["host"], spec["port"], timeout=60)
        while True:
            n, due = claim()
            if due >= spec["end_at"]:
                break
            if time.time() >= spec["end_at"]:  # still behind schedule at the end: stop there
                break
            wait = due - time.time()
            if wait > 0:
                time.sleep(wait)
            body = json.dumps({"service": spec["service"], "answers": ANSWERS, "submit": True})
            headers = {
                "Authorization": f"Bearer {tokens[n % len(tokens)]}",
                "Content-Type": "application/json",
                "Idempotency-Key": f"{spec['run_id']}-{n}",
            }
            sent = time.time()
            began = time.perf_counter()
            try:
                conn.request("POST", "/api/v1/applications", body=body, headers=headers)
                response = conn.getresponse()
                payload = response.read()
                status = str(response.status)
            except (OSError, http.client.HTTPException) as exc:
                status, payload = type(exc).__name__, str(exc).encode()
                conn.close()  # http.client opens a new connection for the next request
            latency_ms = (time.perf_counter() - began) * 1000
            counter = _shared["ok"] if status == "201" else _shared["failed"]
            with counter.get_lock():
                counter.value += 1
            with lock:
                records.append((sent - spec["start_at"], (sent - due) * 1000, latency_ms, status))
                if status != "201" and len(samples) < 10:
                    samples.append(f"{status}: {payload[:300].decode(errors='replace')}")
        conn.close()

    threads = [threading.Thread(target=loop, daemon=True) for _ in range(spec["threads"])]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return {"records": records, "samples": samples}


# --- memory ------------------------------------------------------------------------------------


def rss_kib(pid: int) -> int | None:
    try:
        with open(f"/proc/{pid}/status", encoding="ascii") as handle:
            for line in handle:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1])
    except (OSError, ValueError):
        return None
    return None


def children(pid: int) -> list[int]:
    found = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat", encoding="ascii", errors="replace") as handle:
                stat = handle.read()
        except OSError:
            continue
        # The command name may hold spaces; the parent pid is the second field after it.
        if int(stat.rsplit(")", 1)[1].split()[1]) == pid:
            found.append(int(entry))
    return sorted(found)


class MemorySampler:
    """Every SAMPLE_SECONDS, the RSS of each gunicorn worker and of the job worker's processes."""

    def __init__(self, server_pid: int, worker_pid: int, started: float, counters: tuple[Any, Any]) -> None:
        self.server_pid, self.worker_pid, self.started = server_pid, worker_pid, started
        self.counters = counters
        self.samples: list[dict[str, Any]] = []
        self.names: dict[int, str] = {}
        self.stopping = threading.Event()
        self.thread = threading.Thread(target=self._run, name="memory-sampler", daemon=True)

    def processes(self) -> dict[int, str]:
        found = {}
        for n, pid in enumerate(children(self.server_pid), 1):
            found[pid] = self.names.setdefault(pid, f"gunicorn worker {n} (pid {pid})")
        found[self.worker_pid] = f"job worker (pid {self.worker_pid})"
        for pid in children(self.worker_pid):
            found[pid] = self.names.setdefault(pid, f"job worker's delivery process (pid {pid})")
        return found

    def sample(self) -> dict[str, Any]:
        rss = {}
        for pid, name in self.processes().items():
            value = rss_kib(pid)
            if value is not None:
                rss[name] = value
        ok, failed = (counter.value for counter in self.counters)
        entry = {"t": round(time.time() - self.started, 1), "rss_kib": rss, "ok": ok, "failed": failed}
        self.samples.append(entry)
        return entry

    def _run(self) -> None:
        while not self.stopping.wait(SAMPLE_SECONDS):
            entry = self.sample()
            total = sum(entry["rss_kib"].values()) / 1024
            print(
                f"  t={entry['t']:>6.0f}s  201: {entry['ok']:>7}  errors: {entry['failed']:>4}  "
                f"RSS total {total:7.1f} MiB",
                flush=True,
            )

    def start(self) -> None:
        self.sample()
        self.thread.start()

    def stop(self) -> None:
        self.stopping.set()
        self.thread.join()
        self.sample()


def slope_mib_per_minute(points: list[tuple[float, float]]) -> float | None:
    """Least-squares slope of (seconds, MiB)."""
    if len(points) < 2:
        return None
    n = len(points)
    mean_t = sum(t for t, _ in points) / n
    mean_m = sum(m for _, m in points) / n
    spread = sum((t - mean_t) ** 2 for t, _ in points)
    if not spread:
        return None
    return round(sum((t - mean_t) * (m - mean_m) for t, m in points) / spread * 60, 3)


def memory_report(samples: list[dict[str, Any]], warmup_end: float) -> dict[str, Any]:
    measured = [s for s in samples if s["t"] >= warmup_end - 1]
    if len(measured) < 2:
        measured = samples[-2:]
    first, last = measured[0], measured[-1]
    processes = {}
    for name in sorted(set(first["rss_kib"]) | set(last["rss_kib"])):
        start, end = first["rss_kib"].get(name), last["rss_kib"].get(name)
        processes[name] = {
            "start_mib": round(start / 1024, 1) if start else None,
            "end_mib": round(end / 1024, 1) if end else None,
            "growth": round((end - start) / start, 4) if start and end else None,
            "slope_mib_per_min": slope_mib_per_minute(
                [(s["t"], s["rss_kib"][name] / 1024) for s in measured if name in s["rss_kib"]]
            ),
        }
    start_total = sum(first["rss_kib"].values()) / 1024
    end_total = sum(last["rss_kib"].values()) / 1024
    growth = (end_total - start_total) / start_total if start_total else 0.0
    slope = slope_mib_per_minute([(s["t"], sum(s["rss_kib"].values()) / 1024) for s in measured])
    appeared = sorted(set(last["rss_kib"]) - set(first["rss_kib"]))
    vanished = sorted(set(first["rss_kib"]) - set(last["rss_kib"]))
    return {
        "from_t": first["t"],
        "to_t": last["t"],
        "processes": processes,
        "total": {
            "start_mib": round(start_total, 1),
            "end_mib": round(end_total, 1),
            "growth": round(growth, 4),
            "slope_mib_per_min": slope,
        },
        "processes_started_during_soak": appeared,
        "processes_gone_during_soak": vanished,
        "flat": growth < FLAT_GROWTH and not appeared and not vanished,
    }


# --- figures -----------------------------------------------------------------------------------


def load_report(
    records: list[tuple[float, float, float, str]], warmup: float, duration: float, rate: float
) -> dict[str, Any]:
    """Figures by the time each request was sent; the measured window follows the warm-up."""
    measured = [r for r in records if warmup <= r[0] < warmup + duration]
    scheduled = math.ceil((warmup + duration) * rate)
    latencies = sorted(r[2] for r in measured)
    lags = sorted(r[1] for r in measured)
    statuses = Counter(r[3] for r in records)
    ok = sum(1 for r in measured if r[3] == "201")
    minutes = []
    for start in range(0, int(duration), 60):
        window = [r for r in measured if warmup + start <= r[0] < warmup + start + 60]
        window_latencies = sorted(r[2] for r in window)
        span = min(60.0, duration - start)
        minutes.append(
            {
                "from_s": start,
                "rate_rps": round(sum(1 for r in window if r[3] == "201") / span, 1),
                "p50_ms": round(percentile(window_latencies, 0.50) or 0, 2),
                "p99_ms": round(percentile(window_latencies, 0.99) or 0, 2),
                "errors": sum(1 for r in window if r[3] != "201"),
            }
        )
    return {
        "requests": len(records),
        "statuses": dict(statuses),
        "errors": sum(count for status, count in statuses.items() if status != "201"),
        "scheduled": scheduled,
        # Due before the end but never sent because every client thread was still waiting for a
        # response: the server fell behind the schedule.
        "not_sent": max(0, scheduled - len(records)),
        "measured_requests": len(measured),
        "achieved_rps": round(ok / duration, 1),
        "p50_ms": round(percentile(latencies, 0.50) or 0, 2),
        "p99_ms": round(percentile(latencies, 0.99) or 0, 2),
        "max_ms": round(latencies[-1], 2) if latencies else None,
        "start_lag_p99_ms": round(percentile(lags, 0.99) or 0, 2),
        "started_over_1s_late": sum(1 for lag in lags if lag > 1000),
        "per_minute": minutes,
    }


def job_counts(database_url: str) -> dict[str, int]:
    import psycopg

    with psycopg.connect(database_url) as conn:
        rows = conn.execute("SELECT status, count(*) FROM core_job GROUP BY status").fetchall()
        unsealed = conn.execute("SELECT count(*) FROM audit_auditentry WHERE seq IS NULL").fetchone()
    counts = {f"jobs_{status}": count for status, count in rows}
    counts["audit_unsealed_at_end"] = unsealed[0] if unsealed else 0
    return counts


def wait_for_worker(database_url: str, *, timeout: float) -> bool:
    """Wait until no job is pending and no audit entry waits to be sealed."""
    import psycopg

    deadline = time.time() + timeout
    with psycopg.connect(database_url, autocommit=True) as conn:
        while time.time() < deadline:
            pending = conn.execute(
                "SELECT (SELECT count(*) FROM core_job WHERE status = 'pending')"
                " + (SELECT count(*) FROM audit_auditentry WHERE seq IS NULL)"
            ).fetchone()
            if pending and not pending[0]:
                return True
            time.sleep(1)
    return False


def benchmark_rate(explicit: float | None) -> tuple[float, str]:
    if explicit:
        return explicit, "--rate"
    try:
        recorded = json.loads(SUBMISSION_RESULTS.read_text(encoding="utf-8"))
        rate = float(recorded["median"]["submission"]["throughput_rps"])
    except (OSError, ValueError, KeyError, TypeError):
        return DEFAULT_RATE, "no recorded benchmark"
    return rate, f"median submission throughput in {SUBMISSION_RESULTS.relative_to(REPO)}"


def start_worker(env: dict[str, str], log: Path) -> subprocess.Popen[bytes]:
    with log.open("wb") as handle:
        return subprocess.Popen(  # noqa: S603 - our own command
            [sys.executable, "-m", "civicore", "worker"],
            env=env,
            cwd=REPO,
            stdout=handle,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )


def stop_worker(worker: subprocess.Popen[bytes] | None) -> None:
    if worker is None or worker.poll() is not None:
        return
    worker.send_signal(signal.SIGTERM)  # finishes the job in hand, stops its delivery process
    try:
        worker.wait(timeout=60)
    except subprocess.TimeoutExpired:
        os.killpg(worker.pid, signal.SIGKILL)
        worker.wait()


def _interrupt(signum: int, frame: Any) -> None:
    raise KeyboardInterrupt


def soak(args: argparse.Namespace) -> int:
    signal.signal(signal.SIGINT, _interrupt)
    signal.signal(signal.SIGTERM, _interrupt)
    bench_rate, source = benchmark_rate(args.rate)
    rate = bench_rate / 2
    admin_url = os.environ.get("BENCH_POSTGRES_URL", "postgres://postgres@127.0.0.1:5432/postgres")
    admin_url, database_url = database_urls(admin_url, args.database)
    work = Path(tempfile.mkdtemp(prefix="civicore-soak-"))
    env = child_env(work / "var", database_url, args.conn_max_age)
    # A real mail server is outside the soak; the console backend would fill the log instead.
    env["EMAIL_BACKEND"] = "django.core.mail.backends.dummy.EmailBackend"
    server = worker = pool = None
    try:
        print(f"Preparing database {args.database} ...", flush=True)
        recreate_database(admin_url, args.database)
        run([sys.executable, "-m", "civicore", "migrate", "--no-input", "--verbosity", "0"], env)
        tokens_file = work / "tokens.txt"
        seeded = run([sys.executable, str(SETUP_SCRIPT), str(tokens_file), str(args.citizens)], env)
        service = seeded.stdout.strip().splitlines()[-1]
        tokens = tokens_file.read_text(encoding="utf-8").split()

        port = args.port or free_port()
        log = work / "gunicorn.log"
        server = start_server(args, env, port, log)
        wait_healthy(server, port, log)
        worker = start_worker(env, work / "worker.log")
        print(
            f"gunicorn on 127.0.0.1:{port} ({args.workers} {args.worker_class} workers) and the job "
            f"worker; filing {rate:.1f} applications/s (half of {bench_rate:.1f}/s, the {source}) "
            f"for {args.warmup:.0f}s of warm-up and {args.duration:.0f}s measured.",
            flush=True,
        )

        ctx = multiprocessing.get_context("spawn")
        ok, failed = ctx.Value("q", 0), ctx.Value("q", 0)
        pool = ctx.Pool(args.client_processes, initializer=_client_init, initargs=(ok, failed))
        start_at = time.time() + 2.0  # time for the client processes to start
        end_at = start_at + args.warmup + args.duration
        per_process = max(1, args.client_threads // args.client_processes)
        specs = [
            {
                "host": "127.0.0.1", "port": port, "service": service, "tokens": tokens,
                "rate": rate, "processes": args.client_processes, "index": i, "threads": per_process,
                "start_at": start_at, "end_at": end_at, "run_id": secrets.token_hex(4),
            }
            for i in range(args.client_processes)
        ]  # fmt: skip
        pending = pool.map_async(soak_client, specs)
        sampler = MemorySampler(server.pid, worker.pid, start_at, (ok, failed))
        while time.time() < start_at:
            time.sleep(0.05)
        sampler.start()
        results = pending.get()
        sampler.stop()
        pool.close()
        pool.join()
        pool = None
        if worker.poll() is not None:
            print(f"The job worker exited with {worker.returncode} during the soak.", file=sys.stderr)
        stop_server(server)
        server = None
        # The worker's share of the proof: every queued job done, every audit entry sealed.
        drained = wait_for_worker(database_url, timeout=120)
        if not drained:
            print("The job worker had not finished its queue within 120 s.", file=sys.stderr)
        stop_worker(worker)
        worker = None

        records = sorted(r for result in results for r in result["records"])
        samples = [s for result in results for s in result["samples"]][:10]
        load = load_report(records, args.warmup, args.duration, rate)
        memory = memory_report(sampler.samples, args.warmup)
        print_summary(load, memory, samples, rate)

        created = sum(1 for r in records if r[3] == "201")
        rows = count_rows(database_url)
        jobs = job_counts(database_url)
        matches = all(
            rows[name] == created
            for name in (
                "applications_submitted",
                "applications_all",
                "cases",
                "audit_submit_entries",
                "notifications",
                "email_jobs",
            )
        )
        print(
            f"\nWork done: {created} responses 201; database holds "
            + ", ".join(f"{k} {v}" for k, v in {**rows, **jobs}.items())
            + (" - rows match." if matches else " - MISMATCH.")
        )
        verified = audit_check(env)

        report = {
            "benchmark": "soak",
            "timestamp": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
            "parameters": {
                "duration_s": args.duration,
                "warmup_s": args.warmup,
                "target_rps": round(rate, 1),
                "benchmark_rps": bench_rate,
                "benchmark_rps_source": source,
                "workers": args.workers,
                "worker_class": args.worker_class,
                "client_processes": args.client_processes,
                "client_threads": per_process * args.client_processes,
                "database_conn_max_age": args.conn_max_age,
                "citizens": args.citizens,
                "sample_seconds": SAMPLE_SECONDS,
                "flat_growth_below": FLAT_GROWTH,
            },
            "machine": facts(database_url),
            "load": load,
            "error_samples": samples,
            "memory": memory,
            "memory_samples": sampler.samples,
            "verification": {
                "responses_201": created,
                "rows": rows,
                "jobs": jobs,
                "rows_match_responses": matches,
                "audit_verify": verified,
            },
            "verdict": {
                "no_errors": load["errors"] == 0,
                "rate_held": load["achieved_rps"] >= RATE_HELD * rate and not load["not_sent"],
                "flat_memory": memory["flat"],
                "rows_match": matches,
                "worker_kept_up": drained and jobs.get("jobs_done", 0) == rows["email_jobs"],
                "audit_intact": verified["exit_code"] == 0,
            },
        }
        failed_checks = [name for name, passed in report["verdict"].items() if not passed]
        print(f"\nSoak verdict: {'PASS' if not failed_checks else 'FAIL: ' + ', '.join(failed_checks)}")
        write_report(args.output, report)
        return 0 if not failed_checks else 1
    except KeyboardInterrupt:
        print("\nInterrupted; stopping the server and the worker.", file=sys.stderr)
        return 130
    finally:
        if pool is not None:
            pool.terminate()
            pool.join()
        stop_server(server)
        stop_worker(worker)
        shutil.rmtree(work, ignore_errors=True)


def print_summary(load: dict[str, Any], memory: dict[str, Any], samples: list[str], rate: float) -> None:
    print()
    print(
        f"Requests: {load['requests']} sent of {load['scheduled']} scheduled, {load['errors']} errors "
        f"({', '.join(f'{k}: {v}' for k, v in sorted(load['statuses'].items()))})."
    )
    if load["not_sent"]:
        print(
            f"  {load['not_sent']} requests were never sent: the server fell behind the schedule and "
            "every client thread was waiting for a response."
        )
    for sample in samples:
        print(f"  {sample}")
    print(
        f"Measured window: {load['achieved_rps']} applications/s achieved (target {rate:.1f}), "
        f"p50 {load['p50_ms']} ms, p99 {load['p99_ms']} ms, max {load['max_ms']} ms; start lag p99 "
        f"{load['start_lag_p99_ms']} ms, {load['started_over_1s_late']} requests started over 1 s late."
    )
    print(f"{'minute':>6} {'req/s':>8} {'p50 ms':>8} {'p99 ms':>8} {'errors':>7}")
    for minute in load["per_minute"]:
        print(
            f"{minute['from_s'] // 60 + 1:>6} {minute['rate_rps']:>8} {minute['p50_ms']:>8} "
            f"{minute['p99_ms']:>8} {minute['errors']:>7}"
        )
    print(f"\nMemory (RSS) from t={memory['from_t']:.0f}s (after the warm-up) to t={memory['to_t']:.0f}s:")
    print(f"{'process':<44} {'start MiB':>10} {'end MiB':>9} {'growth':>8} {'MiB/min':>8}")
    for name, figures in memory["processes"].items():
        growth = f"{figures['growth'] * 100:+.1f}%" if figures["growth"] is not None else "-"
        print(
            f"{name:<44} {figures['start_mib'] or '-':>10} {figures['end_mib'] or '-':>9} {growth:>8} "
            f"{figures['slope_mib_per_min'] if figures['slope_mib_per_min'] is not None else '-':>8}"
        )
    total = memory["total"]
    print(
        f"{'total':<44} {total['start_mib']:>10} {total['end_mib']:>9} {total['growth'] * 100:>+7.1f}% "
        f"{total['slope_mib_per_min'] if total['slope_mib_per_min'] is not None else '-':>8}"
    )
    for name in memory["processes_started_during_soak"]:
        print(f"  started during the soak (a restart?): {name}")
    for name in memory["processes_gone_during_soak"]:
        print(f"  gone during the soak: {name}")
    verdict = "FLAT" if memory["flat"] else "NOT FLAT"
    print(
        f"Memory verdict: {verdict} (total growth {total['growth'] * 100:+.1f}%, limit "
        f"{FLAT_GROWTH * 100:.0f}%; slope {total['slope_mib_per_min']} MiB/min)."
    )


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--duration", type=float, default=600, help="seconds measured after the warm-up")
    parser.add_argument("--warmup", type=float, default=30, help="seconds of load before measuring")
    parser.add_argument(
        "--rate",
        type=float,
        default=None,
        help="the benchmark's submissions/s; the soak runs at half (default: the recorded median)",
    )
    parser.add_argument("--workers", type=int, default=4, help="gunicorn worker processes")
    parser.add_argument("--worker-class", choices=("sync", "gthread"), default="sync")
    parser.add_argument(
        "--threads", type=int, default=4, help="threads per worker with --worker-class gthread"
    )
    parser.add_argument("--client-processes", type=int, default=2, help="processes sending requests")
    parser.add_argument("--client-threads", type=int, default=32, help="requests in flight at most")
    parser.add_argument("--conn-max-age", type=int, default=600, help="DATABASE_CONN_MAX_AGE for the server")
    parser.add_argument("--citizens", type=int, default=200, help="citizens (API tokens) in the pool")
    parser.add_argument("--database", default="civicore_bench_soak", help="database to drop and recreate")
    parser.add_argument("--port", type=int, default=0, help="server port (default: first free from 18000)")
    parser.add_argument("--output", type=Path, default=RESULTS)
    parser.add_argument(
        "--app", default="config.wsgi:application", help="WSGI application to serve (as bench/submission.py)"
    )
    return parser.parse_args(argv)


if __name__ == "__main__":
    sys.exit(soak(parse_args()))
