"""Transparency log: appends per second beside a raw INSERT of the same rows, inclusion proofs in a
log of a million entries beside a bare SELECT by primary key, and a witness check through the API.

Appends. Each round empties the log and appends --entries entries (100,000) through
`services.log_append` in batches of 1,000, one transaction a batch, as the issuing services do.
Baseline in the same round: the same rows (position, leaf hash, kind, document hash, time)
inserted with psycopg's executemany, 1,000 a transaction, into a scratch copy of the entries table
with the same indexes. The log also writes the complete subtrees' hashes and its new root.

Proofs. The log is then seeded to --log-size entries (1,000,000) with the same fast path, and
--samples random inclusion proofs are built (`selectors.inclusion`: state, entry, subtrees) and
verified (`merkle.check_inclusion` against the root), each timed; baseline: a bare
`SELECT ... WHERE id = %s` of one entry through the same connection.

Witness. Half-way through seeding (at --log-size / 2) a tree head is signed and a witness sees it
for the first time; at --log-size another head is signed and the witness checks the consistency
proof from the first. The witness is `civicore.transparency.witness` in this process, talking
HTTP to a gunicorn serving the application (1 sync worker), as `civicore transparency witness`
does less its interpreter start-up.

Medians of --runs rounds (3). `measure()` returns the table's rows as dicts for bench/verify.py;
run alone, this prints the table and writes bench/results/verify_log.json. --quick: 20,000
entries a round and a log of 100,000.

    python bench/verify_log.py [--quick] [--runs 3] [--entries 100000] [--log-size 1000000]

The administrative PostgreSQL URL comes from BENCH_POSTGRES_URL, default
postgres://postgres@127.0.0.1:5432/postgres; the database civicore_bench_verify_log is created
afresh and dropped at the end.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

import submission as base  # noqa: E402 - the shared helpers of bench/submission.py

REPO = base.REPO
RESULTS = REPO / "bench" / "results" / "verify_log.json"
DATABASE = "civicore_bench_verify_log"
BATCH = 1000
SEED_BATCH = 10_000
KINDS = ["issued", "revoked", "suspended", "reinstated", "reissued"]


def _pairs(start: int, count: int) -> list[tuple[str, str]]:
    import hashlib

    return [
        (KINDS[n % len(KINDS)], hashlib.sha256(n.to_bytes(8, "big")).hexdigest())
        for n in range(start, start + count)
    ]


def _percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(fraction * len(ordered)))]


# --- the child: Django on the benchmark's database ---------------------------------------------


def _empty_log() -> None:
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute(
            "TRUNCATE transparency_logentry, transparency_subtree, transparency_logstate, "
            "transparency_treehead RESTART IDENTITY"
        )


def _appends(entries: int) -> dict[str, Any]:
    from django.db import connection

    from civicore.transparency import services

    _empty_log()
    batches = [_pairs(start, BATCH) for start in range(0, entries, BATCH)]
    started = time.perf_counter()
    for batch in batches:
        services.log_append(entries=batch)  # its own transaction, autocommit outside
    log_seconds = time.perf_counter() - started

    # The baseline: the very rows the log stored, inserted plainly.
    with connection.cursor() as cursor:
        cursor.execute("DROP TABLE IF EXISTS bench_raw_entries")
        cursor.execute("CREATE TABLE bench_raw_entries (LIKE transparency_logentry INCLUDING ALL)")
        cursor.execute(
            "SELECT position, leaf_hash, kind, document_hash, created_at FROM transparency_logentry "
            "ORDER BY position"
        )
        rows = cursor.fetchall()
    raw = connection.connection  # the psycopg connection under Django's
    started = time.perf_counter()
    for start in range(0, len(rows), BATCH):
        with raw.transaction(), raw.cursor() as cursor:
            cursor.executemany(
                "INSERT INTO bench_raw_entries (position, leaf_hash, kind, document_hash, created_at) "
                "VALUES (%s, %s, %s, %s, %s)",
                rows[start : start + BATCH],
            )
    raw_seconds = time.perf_counter() - started
    with connection.cursor() as cursor:
        cursor.execute("DROP TABLE bench_raw_entries")
    return {"log_per_s": entries / log_seconds, "raw_per_s": entries / raw_seconds}


def _seed(upto: int) -> None:
    from civicore.transparency import selectors, services

    size, _root = selectors.state()
    while size < upto:
        count = min(SEED_BATCH, upto - size)
        services.log_append(entries=_pairs(size, count))
        size += count


def _proofs(samples: int) -> dict[str, Any]:
    from django.db import connection

    from civicore.transparency import merkle, selectors

    size, root = selectors.state()
    ids = list(range(1, size + 1))
    proof_ms, select_ms = [], []
    positions = [random.randrange(size) for _ in range(samples)]  # noqa: S311 - not for security
    for position in positions:
        started = time.perf_counter()
        proof = selectors.inclusion(position, size)
        merkle.check_inclusion(bytes(proof.entry.leaf_hash), position, size, proof.proof, root)
        proof_ms.append((time.perf_counter() - started) * 1000)
    with connection.cursor() as cursor:
        for _ in range(samples):
            started = time.perf_counter()
            cursor.execute(
                "SELECT id, position, leaf_hash, kind, document_hash, created_at FROM transparency_logentry "
                "WHERE id = %s",
                [random.choice(ids)],  # noqa: S311
            )
            cursor.fetchone()
            select_ms.append((time.perf_counter() - started) * 1000)
    return {
        "size": size,
        "proof_p50_ms": _percentile(proof_ms, 0.5),
        "proof_p99_ms": _percentile(proof_ms, 0.99),
        "select_p50_ms": _percentile(select_ms, 0.5),
        "select_p99_ms": _percentile(select_ms, 0.99),
    }


def child(task: dict[str, Any]) -> dict[str, Any]:
    import django

    sys.path.insert(0, str(REPO))
    django.setup()
    from civicore.transparency import services, witness

    result: dict[str, Any] = {"appends": [], "proofs": [], "first_sight_s": [], "consistency_s": []}
    for _round in range(task["runs"]):
        result["appends"].append(_appends(task["entries"]))

    _empty_log()
    half = task["log_size"] // 2
    started = time.perf_counter()
    _seed(half)
    services.tree_head_sign_now()
    port = base.free_port()
    log = Path(task["var_dir"]) / "gunicorn.log"
    server = base.start_server(
        argparse.Namespace(app="config.wsgi", workers=1, worker_class="sync", threads=1),
        dict(os.environ),
        port,
        log,
    )
    try:
        base.wait_healthy(server, port, log)
        url = f"http://127.0.0.1:{port}"
        states = Path(task["var_dir"]) / "witness"
        for run in range(task["runs"]):
            begun = time.perf_counter()
            verdict = witness.witness(url, states / f"first-{run}.json")
            result["first_sight_s"].append(time.perf_counter() - begun)
            assert verdict.kind == "first_sight", verdict.message  # noqa: S101
        _seed(task["log_size"])
        result["seed_per_s"] = task["log_size"] / (time.perf_counter() - started)
        services.tree_head_sign_now()
        for run in range(task["runs"]):
            begun = time.perf_counter()
            verdict = witness.witness(url, states / f"first-{run}.json")
            result["consistency_s"].append(time.perf_counter() - begun)
            assert verdict.kind == "consistent", verdict.message  # noqa: S101
    finally:
        base.stop_server(server)
    for _round in range(task["runs"]):
        result["proofs"].append(_proofs(task["samples"]))
    return result


# --- the parent: database, child process, table ------------------------------------------------


def measure(
    *,
    quick: bool = False,
    runs: int = 3,
    entries: int | None = None,
    log_size: int | None = None,
    samples: int = 2000,
) -> list[dict[str, Any]]:
    """Run the benchmark on a fresh database and return one dict per figure: name, value, unit,
    baseline name and value, ratio (value / baseline), target if any."""
    entries = entries or (20_000 if quick else 100_000)
    log_size = log_size or (100_000 if quick else 1_000_000)
    admin_url = os.environ.get("BENCH_POSTGRES_URL", "postgres://postgres@127.0.0.1:5432/postgres")
    _admin, database_url = base.database_urls(admin_url, DATABASE)
    base.recreate_database(admin_url, DATABASE)
    with tempfile.TemporaryDirectory(prefix="civicore-bench-log-") as var_dir:
        env = base.child_env(Path(var_dir), database_url, conn_max_age=60)
        try:
            base.run([sys.executable, "-m", "civicore", "migrate", "--no-input", "--verbosity", "0"], env)
            task = {
                "runs": runs,
                "entries": entries,
                "log_size": log_size,
                "samples": samples,
                "var_dir": var_dir,
            }
            out = Path(var_dir) / "result.json"
            cmd = [sys.executable, str(Path(__file__).resolve()), "--child", json.dumps(task), str(out)]
            base.run(cmd, env)
            result = json.loads(out.read_text())
        finally:
            _drop(admin_url)
    return _rows(result, entries=entries, log_size=log_size)


def _drop(admin_url: str) -> None:
    import psycopg
    from psycopg import sql

    with psycopg.connect(admin_url, autocommit=True) as conn:
        conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(DATABASE)))


def _median(values: list[float]) -> float:
    return statistics.median(values)


def _rows(result: dict[str, Any], *, entries: int, log_size: int) -> list[dict[str, Any]]:
    appends = result["appends"]
    proofs = result["proofs"]
    log_rate = _median([a["log_per_s"] for a in appends])
    raw_rate = _median([a["raw_per_s"] for a in appends])

    def row(
        name: str, value: float, unit: str, baseline_name: str, baseline: float, **extra: Any
    ) -> dict[str, Any]:
        return {
            "name": name,
            "value": round(value, 3),
            "unit": unit,
            "baseline_name": baseline_name,
            "baseline": round(baseline, 3),
            "ratio": round(value / baseline, 2) if baseline else None,
            **extra,
        }

    return [
        row(
            f"log appends, batches of {BATCH} ({entries:,} entries)",
            log_rate,
            "entries/s",
            "raw INSERT of the same rows (executemany)",
            raw_rate,
            target=">= 20,000 entries/s",
            rounds=[round(a["log_per_s"]) for a in appends],
        ),
        row(
            f"inclusion proof build + verify, p50 ({log_size:,} entries)",
            _median([p["proof_p50_ms"] for p in proofs]),
            "ms",
            "SELECT one entry by primary key, p50",
            _median([p["select_p50_ms"] for p in proofs]),
            target="< 1 ms",
        ),
        row(
            f"inclusion proof build + verify, p99 ({log_size:,} entries)",
            _median([p["proof_p99_ms"] for p in proofs]),
            "ms",
            "SELECT one entry by primary key, p99",
            _median([p["select_p99_ms"] for p in proofs]),
        ),
        row(
            f"witness: first sight at {log_size // 2:,} (HTTP, gunicorn)",
            _median(result["first_sight_s"]) * 1000,
            "ms",
            "",
            0.0,
        ),
        row(
            f"witness: consistency {log_size // 2:,} -> {log_size:,} (HTTP, gunicorn)",
            _median(result["consistency_s"]) * 1000,
            "ms",
            "",
            0.0,
            seeding_entries_per_s=round(result["seed_per_s"]),
        ),
    ]


def print_table(rows: list[dict[str, Any]]) -> None:
    head = f"{'figure':<62} | {'value':>12} {'unit':<10} | {'baseline':>10} | {'ratio':>6}"
    print(head)
    print("-" * len(head))
    for r in rows:
        baseline = f"{r['baseline']:,.3f}" if r["baseline_name"] else "-"
        ratio = f"{r['ratio']}" if r["ratio"] is not None else "-"
        print(f"{r['name']:<62} | {r['value']:>12,.3f} {r['unit']:<10} | {baseline:>10} | {ratio:>6}")
    for r in rows:
        if r["baseline_name"]:
            print(f"  baseline of '{r['name']}': {r['baseline_name']}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--entries", type=int)
    parser.add_argument("--log-size", type=int)
    parser.add_argument("--samples", type=int, default=2000)
    args = parser.parse_args(argv)
    rows = measure(
        quick=args.quick, runs=args.runs, entries=args.entries, log_size=args.log_size, samples=args.samples
    )
    print_table(rows)
    if not args.quick:
        RESULTS.parent.mkdir(parents=True, exist_ok=True)
        RESULTS.write_text(
            json.dumps({"rows": rows, "facts": {"python": sys.version.split()[0]}}, indent=2) + "\n"
        )
    return 0


if __name__ == "__main__":
    if len(sys.argv) > 2 and sys.argv[1] == "--child":
        task = json.loads(sys.argv[2])
        Path(sys.argv[3]).write_text(json.dumps(child(task)))
        sys.exit(0)
    sys.exit(main())
