"""Submission throughput: filing an application through the REST API, against a one-query baseline.

Sets up a fresh PostgreSQL database with one e-service and a pool of citizens, starts gunicorn,
then alternates two loads with the same client and concurrency: GET /healthz (one SELECT 1: what
the stack costs with no work) and POST /api/v1/applications with submit=true (pre-fill, validation,
reference number, case with SLA, notification and e-mail job, hash-chained audit entry). Prints
throughput and latency per round, their medians and the submission/baseline ratios, and the CPU
each answered request cost the server, PostgreSQL and the clients (from /proc, on Linux), writes
them to bench/results/submission.json, then proves the work happened by counting rows and
verifying the audit chain. This prints figures; it asserts no target.

    python bench/submission.py [--duration S] [--concurrency N] [--workers W] [--runs R]

The administrative PostgreSQL URL (used to drop and recreate the bench database) comes from
BENCH_POSTGRES_URL, default postgres://postgres@127.0.0.1:5432/postgres.
"""

from __future__ import annotations

import argparse
import base64
import datetime as dt
import http.client
import json
import multiprocessing
import os
import platform
import secrets
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.parse
from collections import Counter
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
RESULTS = REPO / "bench" / "results" / "submission.json"
SETUP_SCRIPT = REPO / "bench" / "submission_setup.py"
ANSWERS = {
    "relationship_to_child": "mother",
    "child_full_name": "Nguyễn Thị Hoa",
    "child_date_of_birth": "2025-11-20",
    "child_gender": "female",
    "child_place_of_birth": "Trạm y tế xã An Bình",
    "mother_full_name": "Trần Thị Lan",
}


# --- load client -----------------------------------------------------------------------------
# Runs in separate processes so that 16 client threads do not share one GIL with the bookkeeping,
# and stays on http.client: a heavier client would take CPU from the server on a 2-core machine.


def _client_thread(spec: dict[str, Any], index: int, out: dict[str, Any], lock: threading.Lock) -> None:
    submit = spec["kind"] == "submission"
    tokens = spec["tokens"]
    step = spec["threads_total"]
    token_at = spec["thread_base"] + index  # every thread walks its own stride of the pool
    latencies: list[float] = []
    statuses: Counter[str] = Counter()
    created = 0
    samples: list[str] = []
    conn = http.client.HTTPConnection(spec["host"], spec["port"], timeout=60)
    try:
        conn.connect()  # connect before the window opens; sync workers reconnect per request anyway
    except OSError:
        conn.close()
    while time.time() < spec["start_at"]:
        time.sleep(0.001)
    n = 0
    while time.time() < spec["end_at"]:
        if submit:
            body = json.dumps({"service": spec["service"], "answers": ANSWERS, "submit": True})
            headers = {
                "Authorization": f"Bearer {tokens[token_at % len(tokens)]}",
                "Content-Type": "application/json",
                "Idempotency-Key": f"{spec['run_id']}-{spec['thread_base'] + index}-{n}",
            }
            token_at += step
            method, path = "POST", "/api/v1/applications"
        else:
            body, headers, method, path = None, {}, "GET", "/healthz"
        n += 1
        began = time.perf_counter()
        try:
            conn.request(method, path, body=body, headers=headers)
            response = conn.getresponse()
            payload = response.read()
            status = str(response.status)
        except (OSError, http.client.HTTPException) as exc:
            status, payload = type(exc).__name__, str(exc).encode()
            conn.close()  # http.client reopens it on the next request
        elapsed_ms = (time.perf_counter() - began) * 1000
        expected = "201" if submit else "200"
        if status == "201":
            created += 1
        if status != expected and len(samples) < 5:
            samples.append(f"{status}: {payload[:300].decode(errors='replace')}")
        # A request still running when the window closes is not counted: the window's count
        # divided by its length is the throughput.
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


# --- figures ---------------------------------------------------------------------------------


def percentile(sorted_values: list[float], fraction: float) -> float | None:
    """Nearest-rank percentile: a latency that some request actually had."""
    if not sorted_values:
        return None
    rank = max(1, int(-(-fraction * len(sorted_values) // 1)))
    return sorted_values[min(rank, len(sorted_values)) - 1]


def summarise(results: list[dict[str, Any]], duration: float, expected: str) -> dict[str, Any]:
    latencies = sorted(x for r in results for x in r["latencies"])
    statuses: Counter[str] = Counter()
    for r in results:
        statuses.update(r["statuses"])
    ok = statuses.get(expected, 0)
    return {
        "requests": len(latencies),
        "ok": ok,
        "errors": len(latencies) - ok,
        "statuses": dict(statuses),
        "throughput_rps": round(ok / duration, 1),
        "p50_ms": round(percentile(latencies, 0.50) or 0, 2),
        "p99_ms": round(percentile(latencies, 0.99) or 0, 2),
        "error_samples": [s for r in results for s in r["samples"]][:5],
    }


def ratio(a: float, b: float) -> float | None:
    return round(a / b, 3) if b else None


def median(values: list[float | None]) -> float | None:
    present = [v for v in values if v is not None]
    return round(statistics.median(present), 3) if present else None


# --- environment: database, set-up, server ----------------------------------------------------


def free_port(start: int = 18000) -> int:
    for port in range(start, start + 1000):
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
            try:
                probe.bind(("127.0.0.1", port))
            except OSError:
                continue
            return port
    raise RuntimeError("no free port from 18000 upward")


def database_urls(admin_url: str, name: str) -> tuple[str, str]:
    parts = urllib.parse.urlsplit(admin_url)
    return admin_url, urllib.parse.urlunsplit(parts._replace(path=f"/{name}"))


def recreate_database(admin_url: str, name: str) -> None:
    import psycopg
    from psycopg import sql

    with psycopg.connect(admin_url, autocommit=True) as conn:
        # FORCE ends sessions a previous, interrupted run may have left behind.
        conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))
        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))


def child_env(var_dir: Path, database_url: str, conn_max_age: int) -> dict[str, str]:
    """Fresh secrets per run: the bench database is thrown away, so nothing needs to read it later."""
    env = dict(os.environ)
    env.update(
        SECRET_KEY=secrets.token_urlsafe(50),
        FIELD_ENCRYPTION_KEYS=f"bench:{base64.b64encode(os.urandom(32)).decode()}",
        LOOKUP_HASH_KEY=secrets.token_urlsafe(32),
        DATABASE_URL=database_url,
        DATABASE_CONN_MAX_AGE=str(conn_max_age),
        CIVICORE_VAR_DIR=str(var_dir),
        ALLOWED_HOSTS="127.0.0.1,localhost",
        DJANGO_SETTINGS_MODULE="config.settings.base",
        DEBUG="false",
        PYTHONUNBUFFERED="1",
    )
    env.pop("JOBS_RUN_INLINE", None)  # e-mail jobs are queued, not sent, as in production
    return env


def run(cmd: list[str], env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    result = subprocess.run(cmd, env=env, cwd=REPO, capture_output=True, text=True, check=False)  # noqa: S603
    if result.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd[1:])} failed:\n{result.stdout}\n{result.stderr}")
    return result


def start_server(
    args: argparse.Namespace, env: dict[str, str], port: int, log: Path
) -> subprocess.Popen[bytes]:
    cmd = [
        sys.executable, "-m", "gunicorn", args.app,
        "--bind", f"127.0.0.1:{port}",
        "--workers", str(args.workers),
        "--worker-class", args.worker_class,
        "--backlog", "2048",
        "--graceful-timeout", "10",
    ]  # fmt: skip
    if args.worker_class == "gthread":
        cmd += ["--threads", str(args.threads)]
    with log.open("wb") as handle:
        # Its own session: Ctrl-C in the terminal reaches only this script, which then stops
        # the server gracefully instead of both racing to shut down.
        return subprocess.Popen(
            cmd, env=env, cwd=REPO, stdout=handle, stderr=subprocess.STDOUT, start_new_session=True
        )  # noqa: S603


def wait_healthy(server: subprocess.Popen[bytes], port: int, log: Path, timeout: float = 60) -> None:
    deadline = time.time() + timeout
    while time.time() < deadline:
        if server.poll() is not None:
            raise RuntimeError(
                f"gunicorn exited with {server.returncode}:\n{log.read_text(errors='replace')[-3000:]}"
            )
        try:
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=2)
            conn.request("GET", "/healthz")
            if conn.getresponse().status == 200:
                return
        except OSError:
            pass
        time.sleep(0.2)
    raise RuntimeError(
        f"/healthz did not answer within {timeout}s:\n{log.read_text(errors='replace')[-3000:]}"
    )


def stop_server(server: subprocess.Popen[bytes] | None) -> None:
    if server is None or server.poll() is not None:
        return
    server.send_signal(signal.SIGTERM)  # gunicorn's graceful stop: workers finish their request
    try:
        server.wait(timeout=20)
    except subprocess.TimeoutExpired:
        os.killpg(server.pid, signal.SIGKILL)  # the group this script created for the server
        server.wait()


def facts(database_url: str) -> dict[str, Any]:
    import django
    import psycopg

    with psycopg.connect(database_url) as conn:
        settings = {
            name: conn.execute(f"SHOW {name}").fetchone()[0]  # noqa: S608 - fixed names
            for name in ("server_version", "synchronous_commit", "fsync", "shared_buffers")
        }
    try:
        commit = subprocess.run(  # noqa: S603
            ["git", "rev-parse", "--short", "HEAD"],
            cwd=REPO,
            capture_output=True,
            text=True,
            check=True,  # noqa: S607
        ).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        commit = None
    try:
        import gunicorn

        gunicorn_version = gunicorn.__version__
    except ImportError:
        gunicorn_version = None
    return {
        "cpu_count": os.cpu_count(),
        "platform": platform.platform(),
        "python": platform.python_version(),
        "django": django.__version__,
        "gunicorn": gunicorn_version,
        "postgresql": settings.pop("server_version"),
        "postgresql_settings": settings,
        "git_commit": commit,
    }


def count_rows(database_url: str) -> dict[str, int]:
    import psycopg

    queries = {
        "applications_submitted": "SELECT count(*) FROM applications_application WHERE status = 'submitted'",
        "applications_all": "SELECT count(*) FROM applications_application",
        "cases": "SELECT count(*) FROM cases_case",
        "audit_submit_entries": "SELECT count(*) FROM audit_auditentry WHERE action = 'application.submit'",
        "notifications": "SELECT count(*) FROM notify_notification",
        "email_jobs": "SELECT count(*) FROM core_job WHERE name = 'notify.email'",
    }
    with psycopg.connect(database_url) as conn:
        return {name: conn.execute(query).fetchone()[0] for name, query in queries.items()}


class CpuMeter:
    """CPU seconds used by the server (gunicorn and its workers), the bench database's PostgreSQL
    backends and the client processes, from /proc (Linux only; elsewhere it measures nothing).
    Divided by the requests a window answered, they give the CPU each request cost, a figure that
    moves much less than throughput when other work shares the machine."""

    def __init__(self, server_pid: int, database: str, client_pids: list[int]) -> None:
        self.server_pid, self.database, self.client_pids = server_pid, database, set(client_pids)
        self.tick = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100

    def _stat(self, pid: int) -> tuple[int, float]:
        """(parent pid, CPU seconds) of one process."""
        try:
            text = Path(f"/proc/{pid}/stat").read_text()
        except OSError:
            return 0, 0.0
        fields = text[text.rindex(")") + 2 :].split()
        return int(fields[1]), (int(fields[11]) + int(fields[12])) / self.tick

    def snapshot(self) -> dict[str, float]:
        if not Path("/proc/stat").exists():
            return {}
        used = {"server": 0.0, "postgres": 0.0, "clients": 0.0}
        for entry in Path("/proc").iterdir():
            if not entry.name.isdigit():
                continue
            pid = int(entry.name)
            parent, seconds = self._stat(pid)
            if self.server_pid in (pid, parent):
                used["server"] += seconds
            elif pid in self.client_pids:
                used["clients"] += seconds
            else:
                try:
                    title = (entry / "cmdline").read_bytes()
                except OSError:
                    continue
                if title.startswith(b"postgres:") and f" {self.database} ".encode() in title:
                    used["postgres"] += seconds
        cpu = Path("/proc/stat").read_text().splitlines()[0].split()[1:]
        used["machine"] = sum(int(v) for i, v in enumerate(cpu[:8]) if i not in (3, 4)) / self.tick
        return used

    @staticmethod
    def per_request(before: dict[str, float], after: dict[str, float], requests: int) -> dict[str, float]:
        """CPU milliseconds per answered request, by process group (machine: every process)."""
        if not before or not requests:
            return {}
        return {key: round((after[key] - before[key]) * 1000 / requests, 3) for key in after}


# --- the benchmark ---------------------------------------------------------------------------


class Load:
    """Runs one timed window of one kind of request across the client processes."""

    def __init__(
        self, pool: Any, args: argparse.Namespace, port: int, service: str, tokens: list[str]
    ) -> None:
        self.pool, self.args, self.port, self.service, self.tokens = pool, args, port, service, tokens
        self.created = 0  # every 201, warm-up included: what the database must hold afterwards
        self.run_id = secrets.token_hex(4)
        self.windows = 0
        self.meter: CpuMeter | None = None

    def window(self, kind: str, seconds: float) -> dict[str, Any]:
        procs = max(1, min(self.args.client_processes, self.args.concurrency))
        per = [
            self.args.concurrency // procs + (1 if i < self.args.concurrency % procs else 0)
            for i in range(procs)
        ]
        start_at = time.time() + 0.5  # time for every thread to connect first
        self.windows += 1
        specs = [
            {
                "kind": kind, "host": "127.0.0.1", "port": self.port, "service": self.service,
                "tokens": self.tokens, "threads": per[i], "thread_base": sum(per[:i]),
                "threads_total": self.args.concurrency, "start_at": start_at, "end_at": start_at + seconds,
                "run_id": f"{self.run_id}-{self.windows}",
            }
            for i in range(procs)
        ]  # fmt: skip
        before = self.meter.snapshot() if self.meter else {}
        results = self.pool.map(client_process, specs)
        after = self.meter.snapshot() if self.meter else {}
        self.created += sum(r["created"] for r in results)
        figures = summarise(results, seconds, "201" if kind == "submission" else "200")
        # The window's CPU (including its half-second start and the requests still running when
        # it closed) over the requests it answered.
        figures["cpu_ms_per_request"] = CpuMeter.per_request(before, after, figures["ok"])
        return figures


def print_table(rounds: list[dict[str, Any]], medians: dict[str, Any]) -> None:
    head = f"{'round':>6} | {'baseline req/s':>14} {'p50 ms':>8} {'p99 ms':>8} | {'submit req/s':>12} {'p50 ms':>8} {'p99 ms':>8} | {'thr ratio':>9} {'p50 ratio':>9}"  # noqa: E501
    print(head)
    print("-" * len(head))

    def line(label: str, b: dict[str, Any], s: dict[str, Any], r: dict[str, Any]) -> str:
        return (
            f"{label:>6} | {b['throughput_rps']:>14} {b['p50_ms']:>8} {b['p99_ms']:>8} | "
            f"{s['throughput_rps']:>12} {s['p50_ms']:>8} {s['p99_ms']:>8} | "
            f"{r['throughput']!s:>9} {r['p50']!s:>9}"
        )

    for i, rnd in enumerate(rounds, 1):
        print(line(str(i), rnd["baseline"], rnd["submission"], rnd["ratio"]))
    print("-" * len(head))
    print(line("median", medians["baseline"], medians["submission"], medians["ratio"]))


def print_cpu(medians: dict[str, Any]) -> None:
    cpu = {side: medians[side].get("cpu_ms_per_request") or {} for side in ("baseline", "submission")}
    if not cpu["submission"]:
        return
    print("\nCPU ms per answered request (median of rounds): " + "; ".join(
        f"{side} " + ", ".join(f"{group} {value}" for group, value in cpu[side].items())
        for side in ("baseline", "submission")
    ))  # fmt: skip
    server = [
        cpu[side].get("server", 0) + cpu[side].get("postgres", 0) for side in ("baseline", "submission")
    ]
    if server[0]:
        print(f"server + PostgreSQL: baseline {server[0]:.3f} ms, submission {server[1]:.3f} ms "
              f"({server[1] / server[0]:.1f}x)")  # fmt: skip


def _interrupt(signum: int, frame: Any) -> None:
    raise KeyboardInterrupt


def benchmark(args: argparse.Namespace) -> int:
    # Ctrl-C and a plain `kill` both end up in the cleanup below, which stops the server; SIGINT
    # is reset explicitly because a shell starts background jobs with it ignored.
    signal.signal(signal.SIGINT, _interrupt)
    signal.signal(signal.SIGTERM, _interrupt)
    admin_url = os.environ.get("BENCH_POSTGRES_URL", "postgres://postgres@127.0.0.1:5432/postgres")
    admin_url, database_url = database_urls(admin_url, args.database)
    work = Path(tempfile.mkdtemp(prefix="civicore-bench-"))
    env = child_env(work / "var", database_url, args.conn_max_age)
    server = None
    pool = None
    try:
        print(f"Preparing database {args.database} ...", flush=True)
        recreate_database(admin_url, args.database)
        run([sys.executable, "-m", "civicore", "migrate", "--no-input", "--verbosity", "0"], env)
        tokens_file = work / "tokens.txt"
        seeded = run([sys.executable, str(SETUP_SCRIPT), str(tokens_file), str(args.citizens)], env)
        service = seeded.stdout.strip().splitlines()[-1]
        tokens = tokens_file.read_text(encoding="utf-8").split()
        print(f"Seeded service {service} and {len(tokens)} citizens with API tokens.")

        port = args.port or free_port()
        log = work / "gunicorn.log"
        server = start_server(args, env, port, log)
        wait_healthy(server, port, log)
        threads = f", {args.threads} threads each" if args.worker_class == "gthread" else ""
        print(f"gunicorn on 127.0.0.1:{port}: {args.workers} {args.worker_class} workers{threads}; "
              f"{args.concurrency} clients in {args.client_processes} processes; "
              f"{args.runs} rounds of {args.duration}s each.", flush=True)  # fmt: skip

        # spawn, not fork: the children must not inherit this process's sockets or threads.
        pool = multiprocessing.get_context("spawn").Pool(args.client_processes)
        load = Load(pool, args, port, service, tokens)
        clients = [process.pid for process in getattr(pool, "_pool", []) if process.pid]
        load.meter = CpuMeter(server.pid, args.database, clients)
        if args.warmup > 0:
            load.window("baseline", args.warmup)
            load.window("submission", args.warmup)

        rounds = []
        for i in range(args.runs):
            # Alternating the two loads spreads the machine's noise over both sides of the ratio.
            baseline = load.window("baseline", args.duration)
            submission = load.window("submission", args.duration)
            rounds.append(
                {
                    "baseline": baseline,
                    "submission": submission,
                    "ratio": {
                        "throughput": ratio(submission["throughput_rps"], baseline["throughput_rps"]),
                        "p50": ratio(submission["p50_ms"], baseline["p50_ms"]),
                    },
                }
            )
            print(f"  round {i + 1}: baseline {baseline['throughput_rps']} req/s, "
                  f"submission {submission['throughput_rps']} req/s", flush=True)  # fmt: skip
        stop_server(server)
        server = None

        medians = {
            side: {
                key: median([r[side][key] for r in rounds]) for key in ("throughput_rps", "p50_ms", "p99_ms")
            }
            for side in ("baseline", "submission")
        }
        for side in ("baseline", "submission"):
            groups = rounds[0][side]["cpu_ms_per_request"].keys()
            medians[side]["cpu_ms_per_request"] = {
                group: median([r[side]["cpu_ms_per_request"].get(group) for r in rounds]) for group in groups
            }
        # The median of per-round ratios: each pair ran back to back under similar noise.
        medians["ratio"] = {key: median([r["ratio"][key] for r in rounds]) for key in ("throughput", "p50")}
        print()
        print_table(rounds, medians)
        print_cpu(medians)

        errors = {side: sum(r[side]["errors"] for r in rounds) for side in ("baseline", "submission")}
        for side in ("baseline", "submission"):
            if errors[side]:
                print(f"\n{errors[side]} {side} requests did not succeed. Samples:")
                for rnd in rounds:
                    for sample in rnd[side]["error_samples"]:
                        print(f"  {sample}")
        if not any(errors.values()):
            print("\nEvery request in the measured windows succeeded (201 / 200).")

        rows = count_rows(database_url)
        matches = all(
            rows[name] == load.created
            for name in ("applications_submitted", "applications_all", "cases", "audit_submit_entries",
                         "notifications", "email_jobs")
        )  # fmt: skip
        print(f"\nWork done: {load.created} responses 201 (warm-up included); database holds "
              + ", ".join(f"{k} {v}" for k, v in rows.items())
              + (" - all equal." if matches else " - MISMATCH."))  # fmt: skip
        # No worker runs during the benchmark, so seal the entries the way it would, then check
        # the whole chain.
        audit_verify = audit_check(env)

        report = {
            "benchmark": "submission",
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
                "citizens": args.citizens,
                "app": args.app,
            },
            "machine": facts(database_url),
            "rounds": rounds,
            "median": medians,
            "verification": {
                "responses_201": load.created,
                "rows": rows,
                "rows_match_responses": matches,
                "audit_verify": audit_verify,
            },
        }
        write_report(args.output, report)
        return 0
    except KeyboardInterrupt:
        print("\nInterrupted; stopping the server.", file=sys.stderr)
        return 130
    finally:
        if pool is not None:
            pool.terminate()
            pool.join()
        stop_server(server)
        shutil.rmtree(work, ignore_errors=True)


def audit_check(env: dict[str, str], *, seal: bool = True) -> dict[str, Any]:
    """Seal the audit entries the way the worker would (when none ran), check the whole chain
    with `civicore audit verify`, print and return its verdict."""
    if seal:
        subprocess.run(  # noqa: S603
            [sys.executable, "-m", "civicore", "audit", "seal"], env=env, cwd=REPO,
            capture_output=True, text=True, check=True,
        )  # fmt: skip
    audit = subprocess.run(  # noqa: S603
        [sys.executable, "-m", "civicore", "audit", "verify"], env=env, cwd=REPO,
        capture_output=True, text=True, check=False,
    )  # fmt: skip
    output = (audit.stdout + audit.stderr).strip()
    print(f"civicore audit verify: {output} (exit {audit.returncode})")
    return {"exit_code": audit.returncode, "output": output}


def write_report(path: Path, report: dict[str, Any]) -> None:
    """Write a benchmark's figures as JSON and say where."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(report, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    shown = path.relative_to(REPO) if path.is_relative_to(REPO) else path
    print(f"Figures written to {shown}")


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--duration", type=float, default=15, help="seconds measured per load and round")
    parser.add_argument("--warmup", type=float, default=3, help="seconds of each load before measuring")
    parser.add_argument("--runs", type=int, default=3, help="rounds of baseline + submission")
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
    parser.add_argument("--citizens", type=int, default=200, help="citizens (API tokens) in the pool")
    parser.add_argument("--database", default="civicore_bench", help="database to drop and recreate")
    parser.add_argument("--port", type=int, default=0, help="server port (default: first free from 18000)")
    parser.add_argument("--output", type=Path, default=RESULTS)
    parser.add_argument(
        "--app",
        default="config.wsgi:application",
        help="WSGI application to serve, e.g. a patched one to try a fix",
    )
    return parser.parse_args(argv)


if __name__ == "__main__":
    sys.exit(benchmark(parse_args()))
