"""Payments: signed gateway callbacks per second beside /healthz, and bank statement lines per
second beside reading the file alone and a raw insert of as many rows, in the same run.

Callbacks. A fresh PostgreSQL database holds an agency, a service charging 50,000 VND, a
collection account and gateway payments seeded in bulk for submitted applications. gunicorn
serves the application; concurrent clients send VNPAY IPN callbacks, signed with HMAC-SHA512
under the run's hash secret exactly as VNPAY signs them (civicore.payments.vnpay), over HTTP to
/payments/gateways/vnpay/callback/: each is verified, settles its payment under the row lock
(event, audit entry, payment update, durable `payments.paid` job) and is answered RspCode 00. A
share of the callbacks repeat one the same client sent before (VNPAY sends again until it is
answered): each must be answered 02 and change nothing. Each round sends a fixed number of
callbacks and as many GET /healthz requests (one SELECT 1) with the same clients, alternately;
afterwards every payment of the round must be paid exactly once, with one `paid` event, one
audit entry and one job. Then a worker drains the jobs (reported apart).

Statements. Each round seeds fresh VietQR payments, writes a camt.053 of --lines credits (most
pay an open payment with the right amount; some pay an expired one, some carry a wrong amount,
pay a payment twice, carry no reference, or repeat an earlier line) and imports it through
`statement_import`, timed from the bytes to the commit. Baselines in the same round: reading the
file with camt.read_statement alone, and inserting as many rows with executemany into a scratch
table. Afterwards the counts must equal what the file was made of.

Medians of the rounds and ratios go to bench/results/payments.json; nothing is asserted.

    python bench/payments.py [--runs 3] [--callbacks 6000] [--concurrency 16] [--workers 4]
                             [--lines 100000] [--statement-runs 3]    (0 rounds: that part is skipped)

The administrative PostgreSQL URL comes from BENCH_POSTGRES_URL, default
postgres://postgres@127.0.0.1:5432/postgres; the database civicore_bench_payments is dropped and
recreated, and left for inspection.
"""

# ruff: noqa: E501 - the report's table rows and the seeding SQL read best one line each

from __future__ import annotations

import argparse
import datetime as dt
import http.client
import json
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
RESULTS = REPO / "bench" / "results" / "payments.json"
CALLBACK_PATH = "/payments/gateways/vnpay/callback/"
TMN_CODE = "CIVICORE"
AGENCY_CODE = "bench-payments-agency"
SERVICE_CODE = "bench-payments-fee"
FEE = 50_000
BANK_BIN = "970436"
ACCOUNT_NUMBER = "0011000000001"
SHIPPED_DEFINITION = REPO / "civicore" / "catalogue" / "data" / "services" / "birth-registration.yaml"


# --- child processes: Django with the benchmark's environment ---------------------------------
# `python bench/payments.py --child TASK OUT [ARGS]` runs one task below and writes its JSON to OUT.


def _django() -> None:
    sys.path.insert(0, str(REPO))
    import django

    django.setup()


def child_setup(citizens: int) -> dict[str, Any]:
    """The agency, a service charging FEE, its collection account and a pool of payers, through
    the application's own services."""
    import yaml
    from django.db import transaction

    from civicore.agencies.models import Agency
    from civicore.catalogue.services import agencies_load, service_load
    from civicore.identity.models import User
    from civicore.identity.services import person_register
    from civicore.payments.models import CollectionAccount

    with tempfile.NamedTemporaryFile("w", suffix=".yaml", encoding="utf-8", delete=False) as handle:
        handle.write(f"- {{code: {AGENCY_CODE}, name_vi: Cơ quan thu phí, name_en: Fee-collecting agency}}\n")
    try:
        agencies_load(path=handle.name)
    finally:
        Path(handle.name).unlink()
    definition = yaml.safe_load(SHIPPED_DEFINITION.read_text(encoding="utf-8"))
    definition.update(
        code=SERVICE_CODE, version=1, agency=AGENCY_CODE, documents=[], fee={"amount": FEE, "currency": "VND"}
    )
    version = service_load(definition=definition)
    agency = Agency.objects.get(code=AGENCY_CODE)
    account = CollectionAccount.objects.create(
        agency=agency,
        bank_bin=BANK_BIN,
        bank_name="Vietcombank",
        account_number=ACCOUNT_NUMBER,
        account_name="KHO BAC NHA NUOC",
    )
    people = []
    with transaction.atomic():
        for n in range(citizens):
            user = User.objects.create_user(
                username=f"payer{n}", email=f"payer{n}@example.test", password=None, full_name=f"Trần Văn {n}"
            )
            person = person_register(
                user=user,
                national_id=f"0792{n:08d}",
                full_name=f"Trần Văn {n}",
                date_of_birth=dt.date(1988, 3, 9),
                address=f"{n} Đường Hai Bà Trưng, xã An Bình",
                agency=agency,
            )
            people.append(person.pk)
    return {
        "agency": agency.pk,
        "service": version.service_id,
        "version": version.pk,
        "account": account.pk,
        "people": people,
    }


def seed_payments(
    setup: dict[str, Any], count: int, *, method: str, status: str = "pending", expired: int = 0
) -> list[tuple[int, str, str]]:
    """`count` submitted applications, each with one open payment of FEE, written with two
    statements (the benchmark's set-up, not the code under test); the first `expired` payments
    have expired. Returns (id, reference, created_at in VNPAY's format) per payment."""
    from django.db import connection
    from django.utils import timezone

    from civicore.applications.models import Application
    from civicore.payments import references, vnpay

    now = timezone.now()
    answers = Application._meta.get_field("answers").get_prep_value({"bench": True})
    breakdown = json.dumps({"total": FEE, "currency": "VND", "lines": [{"code": "base", "amount": FEE}]})
    tag = secrets.token_hex(4)
    refs = list({references.new_reference() for _ in range(count + 100)})[:count]
    with connection.cursor() as cursor:
        cursor.execute(
            """
            INSERT INTO applications_application (public_id, reference, status, answers, prefill,
                created_at, updated_at, submitted_at, applicant_id, service_id, service_version_id,
                prefill_consented_at, prefill_items, filed_by_id, organisation_id)
            SELECT gen_random_uuid(), %s || n, 'submitted', %s, '{}', %s, %s, %s, p, %s, %s, NULL, '[]', p, NULL
            FROM generate_series(1, %s) AS n,
                LATERAL (SELECT (%s::bigint[])[1 + n %% cardinality(%s::bigint[])] AS p) AS payer
            ORDER BY n
            RETURNING id
            """,
            [f"BENCH-{tag}-", answers, now, now, now, setup["service"], setup["version"], count,
             setup["people"], setup["people"]],
        )  # fmt: skip
        applications = [row[0] for row in cursor.fetchall()]
        expires = now + dt.timedelta(minutes=15 if method == "gateway" else 7 * 24 * 60)
        cursor.execute(
            """
            INSERT INTO payments_payment (public_id, reference, method, gateway, amount_minor, currency,
                breakdown, status, paid_minor, refunded_minor, gateway_transaction, bank_reference, late,
                created_at, expires_at, paid_at, updated_at, agency_id, application_id,
                collection_account_id, organisation_id, payer_id, service_id)
            SELECT gen_random_uuid(), t.reference, %s, %s, %s, 'VND', %s::jsonb,
                CASE WHEN t.n <= %s THEN 'expired' ELSE %s END, 0, 0, '', '', false,
                %s, %s, NULL, %s, %s, a.id, %s, NULL, a.applicant_id, a.service_id
            FROM unnest(%s::text[], %s::bigint[]) WITH ORDINALITY AS t(reference, application, n)
            JOIN applications_application a ON a.id = t.application
            ORDER BY t.n
            RETURNING id, reference
            """,
            [method, "vnpay" if method == "gateway" else "", FEE, breakdown, expired, status, now, expires, now,
             setup["agency"], setup["account"] if method == "vietqr" else None, refs, applications],
        )  # fmt: skip
        rows = cursor.fetchall()
    created = vnpay.format_time(now)
    return [(pk, reference, created) for pk, reference in rows]


def child_gateway(setup: dict[str, Any], count: int) -> list[tuple[int, str, str]]:
    from django.db import transaction

    with transaction.atomic():
        return seed_payments(setup, count, method="gateway")


def child_drain(limit: float) -> dict[str, Any]:
    """Time a worker draining the queued jobs the callbacks left (`payments.paid` and what its
    hooks enqueue: the receipt, the payer's notification), for at most `limit` seconds."""
    from django.db.models import Count

    from civicore.core import jobs
    from civicore.core.models import Job

    def by_name_and_status() -> dict[str, int]:
        rows = (
            Job.objects.values_list("name", "status")
            .annotate(n=Count("id"))
            .values_list("name", "status", "n")
        )
        return {f"{name} {status}": n for name, status, n in rows}

    jobs.autodiscover()
    before = by_name_and_status()
    began = time.perf_counter()
    deadline = began + limit
    # once: until no job is due (a failed one waits for its back-off), or the time limit.
    ran = jobs.work(once=True, batch=500, idle_sleep=0.05, stop=lambda: time.perf_counter() > deadline)
    seconds = time.perf_counter() - began
    return {
        "jobs_run": ran,
        "seconds": round(seconds, 3),
        "jobs_per_s": round(ran / seconds, 1) if seconds else None,
        "before": before,
        "after": by_name_and_status(),
        "stopped_by_limit": time.perf_counter() > deadline,
    }


# --- statements (in a child process) -----------------------------------------------------------

# What a statement round's file is made of, as shares of its credit lines. "repeated" lines copy
# the bank reference of an earlier line (the same credit reported twice: counted once, no row).
MIX = {"pays": 0.92, "late": 0.02, "mismatch": 0.02, "twice": 0.01, "unmatched": 0.02, "repeated": 0.01}


def statement_file(
    setup: dict[str, Any], lines: int, rng: random.Random, round_no: int
) -> tuple[bytes, dict[str, Any]]:
    """Fresh payments and a camt.053 paying them; returns the file and what the import must find."""
    from django.db import transaction

    from civicore.payments import camt

    sizes = {kind: int(lines * share) for kind, share in MIX.items()}
    sizes["pays"] += lines - sum(sizes.values())
    with transaction.atomic():
        late = seed_payments(setup, sizes["late"], method="vietqr", status="created", expired=sizes["late"])
        open_ = seed_payments(setup, sizes["pays"] + sizes["mismatch"], method="vietqr", status="created")
    paying = open_[: sizes["pays"]]
    kinds: list[tuple[str, str]] = (
        [("pays", p[1]) for p in paying]
        + [("late", p[1]) for p in late]
        + [("mismatch", p[1]) for p in open_[sizes["pays"] :]]
        + [("unmatched", "") for _ in range(sizes["unmatched"])]
    )
    rng.shuffle(kinds)
    # A second payment for a payment paid earlier in the file, and repeats of earlier lines,
    # each placed after the line it follows up.
    half = len(kinds) // 2
    paid_in_first_half = [ref for kind, ref in kinds[:half] if kind == "pays"]
    for _ in range(sizes["twice"]):
        paid_before = rng.choice(paid_in_first_half)
        kinds.insert(rng.randrange(half, len(kinds)), ("twice", paid_before))
    banks = [f"FT{round_no:02d}{n:09d}" for n in range(len(kinds))]
    statement_lines: list[Any] = []
    day = dt.date(2026, 12, 5)
    for (kind, reference), bank_reference in zip(kinds, banks, strict=True):
        amount = FEE - 1000 if kind == "mismatch" else FEE
        text = f"{reference} NGUYEN VAN AN NOP LE PHI" if reference else "NGUYEN VAN AN CHUYEN TIEN"
        statement_lines.append(
            camt.StatementLine(
                amount=amount, currency="VND", credit=True, servicer_reference=bank_reference,
                booking_date=day, value_date=day, remittance_info=text, debtor_name="NGUYEN VAN AN",
            )
        )  # fmt: skip
    for _ in range(sizes["repeated"]):
        earlier = statement_lines[rng.randrange(0, len(statement_lines) // 2)]
        statement_lines.insert(rng.randrange(len(statement_lines) // 2, len(statement_lines)), earlier)
    data = camt.write_camt053(
        message_id=f"BENCH-{round_no}-{secrets.token_hex(4)}",
        account=ACCOUNT_NUMBER,
        currency="VND",
        lines=statement_lines,
        created_at=dt.datetime(2026, 12, 5, 17, 0, tzinfo=dt.UTC),
    )
    expected = {
        "lines": len(statement_lines),
        "matched": sizes["pays"] + sizes["late"],
        "queued": sizes["mismatch"] + sizes["twice"] + sizes["unmatched"],
        "repeated": sizes["repeated"],
        "late": sizes["late"],
        "mismatch": sizes["mismatch"],
        "paid_twice": sizes["twice"],
        "unmatched": sizes["unmatched"],
    }
    payment_ids = [p[0] for p in paying + late + open_[sizes["pays"] :]]
    return data, {"expected": expected, "payment_ids": payment_ids}


def raw_insert(rows: list[tuple[Any, ...]]) -> float:
    """The baseline write: as many rows as the file has lines, executemany into a scratch table
    shaped like a statement line, in one transaction."""
    from django.db import connection, transaction

    with connection.cursor() as cursor:
        cursor.execute(
            """CREATE TABLE IF NOT EXISTS bench_scratch_lines (id bigserial PRIMARY KEY, account text NOT NULL,
            bank_reference text NOT NULL, booked_on date NOT NULL, amount_minor bigint NOT NULL,
            currency text NOT NULL, remittance text NOT NULL, debtor_name text NOT NULL)"""
        )
        cursor.execute("TRUNCATE bench_scratch_lines")
    began = time.perf_counter()
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.executemany(
            "INSERT INTO bench_scratch_lines (account, bank_reference, booked_on, amount_minor, currency, "
            "remittance, debtor_name) VALUES (%s, %s, %s, %s, %s, %s, %s)",
            rows,
        )
    return time.perf_counter() - began


def statement_check(imported: Any, made: dict[str, Any]) -> dict[str, Any]:
    """What the import recorded, counted in the database, against what the file was made of."""
    from django.db.models import Count

    from civicore.audit.models import AuditEntry
    from civicore.core.models import Job
    from civicore.payments.models import Payment, PaymentEvent, StatementLine

    ids = made["payment_ids"]
    expected = made["expected"]
    paid = Payment.objects.filter(pk__in=ids, status="paid")
    events = dict(
        PaymentEvent.objects.filter(payment_id__in=ids, source="statement")
        .values_list("kind")
        .annotate(n=Count("id"))
        .values_list("kind", "n")
    )
    lines = dict(
        StatementLine.objects.filter(statement=imported).values_list("status").annotate(n=Count("id"))
        .values_list("status", "n")
    )  # fmt: skip
    found = {
        "lines": imported.lines,
        "matched": imported.matched,
        "queued": imported.queued,
        "repeated": imported.repeated,
        "payments_paid": paid.count(),
        "late": paid.filter(late=True).count(),
        "paid_events": events.get("paid", 0),
        "mismatch": events.get("mismatch", 0),
        "paid_twice": events.get("paid_twice", 0),
        "unmatched": lines.get("unmatched", 0),
        "line_rows": sum(lines.values()),
        "jobs": Job.objects.filter(name="payments.paid", payload__payment_id__in=ids).count()
        if len(ids) < 50_000
        else Job.objects.filter(name="payments.paid").count(),
        "audit_paid": AuditEntry.objects.filter(
            action="payment.paid", subject_type="payments.payment", subject_id__in=[str(i) for i in ids]
        ).count(),
    }
    ok = (
        found["lines"] == expected["lines"]
        and found["matched"] == expected["matched"] == found["payments_paid"] == found["paid_events"]
        and found["queued"] == expected["queued"]
        and found["repeated"] == expected["repeated"]
        and found["late"] == expected["late"]
        and found["mismatch"] == expected["mismatch"]
        and found["paid_twice"] == expected["paid_twice"]
        and found["unmatched"] == expected["unmatched"]
        and found["line_rows"] == expected["lines"] - expected["repeated"]
        and found["audit_paid"] == expected["matched"]
    )
    return {"found": found, "expected": expected, "ok": ok}


def child_statements(setup: dict[str, Any], runs: int, lines: int) -> dict[str, Any]:
    from django.db import connection

    from civicore.core.models import Job
    from civicore.payments import camt, services

    rng = random.Random(20261205)  # noqa: S311 - test data
    rounds = []
    for round_no in range(1, runs + 1):
        made_began = time.perf_counter()
        data, made = statement_file(setup, lines, rng, round_no)
        made_seconds = time.perf_counter() - made_began
        n = made["expected"]["lines"]
        # Rows shaped like the statement's lines, for the raw insert.
        statement = camt.read_statement(data)
        rows = [
            (ACCOUNT_NUMBER, line.servicer_reference or "", line.booking_date, line.amount, line.currency,
             line.remittance_info, line.debtor_name or "")
            for line in statement.lines
        ]  # fmt: skip
        del statement
        timings: dict[str, float] = {}
        began = time.perf_counter()
        camt.read_statement(data)
        timings["read"] = time.perf_counter() - began
        began = time.perf_counter()
        imported = services.statement_import(data=data, filename=f"bench-{round_no}.xml")
        timings["import"] = time.perf_counter() - began
        timings["raw_insert"] = raw_insert(rows)
        check = statement_check(imported, made)
        # The worker is not part of this measure: the round's jobs are marked done so the next
        # round's count starts clean (they would only load each payment: no hook is registered).
        Job.objects.filter(name="payments.paid", status=Job.Status.PENDING).update(status=Job.Status.DONE)
        figures = {
            "lines": n,
            "file_mb": round(len(data) / 1e6, 1),
            "prepare_s": round(made_seconds, 2),
            "seconds": {k: round(v, 3) for k, v in timings.items()},
            "lines_per_s": {k: round(n / v, 1) for k, v in timings.items()},
            "ratio_import_to_read": round(timings["read"] / timings["import"], 3),
            "ratio_import_to_raw_insert": round(timings["raw_insert"] / timings["import"], 3),
            "check": check,
        }
        rounds.append(figures)
        print(
            f"  statement round {round_no}: {n} lines; import {figures['lines_per_s']['import']} lines/s, "
            f"read alone {figures['lines_per_s']['read']}/s, raw insert {figures['lines_per_s']['raw_insert']} "
            f"rows/s; counts {'match' if check['ok'] else 'DO NOT MATCH'}",
            flush=True,
        )
        connection.close()
    return {"rounds": rounds}


def child_main(argv: list[str]) -> None:
    task, out = argv[0], Path(argv[1])
    _django()
    result: Any
    if task == "setup":
        result = child_setup(int(argv[2]))
    else:
        setup = json.loads(Path(argv[2]).read_text(encoding="utf-8"))
        if task == "gateway":
            result = child_gateway(setup, int(argv[3]))
        elif task == "drain":
            result = child_drain(float(argv[3]))
        elif task == "statements":
            result = child_statements(setup, int(argv[3]), int(argv[4]))
        else:
            raise SystemExit(f"unknown task {task}")
    out.write_text(json.dumps(result), encoding="utf-8")


def child(env: dict[str, str], task: str, work: Path, *args: str, echo: bool = False) -> Any:
    out = work / f"{task}.json"
    cmd = [sys.executable, str(Path(__file__).resolve()), "--child", task, str(out), *args]
    if echo:  # progress lines as they come
        done = subprocess.run(cmd, env=env, cwd=REPO, check=False)  # noqa: S603
        if done.returncode != 0:
            raise RuntimeError(f"{task} failed with exit code {done.returncode}")
    else:
        base.run(cmd, env)
    return json.loads(out.read_text(encoding="utf-8"))


# --- callback clients ----------------------------------------------------------------------------


def _client_thread(spec: dict[str, Any], requests: list[tuple[str, str]], out: dict[str, Any],
                   lock: threading.Lock) -> None:  # fmt: skip
    latencies: dict[str, list[float]] = {"first": [], "repeat": [], "healthz": []}
    answers: Counter[str] = Counter()
    samples: list[str] = []
    conn = http.client.HTTPConnection(spec["host"], spec["port"], timeout=60)
    try:
        conn.connect()
    except OSError:
        conn.close()
    while time.time() < spec["start_at"]:
        time.sleep(0.001)
    for path, kind in requests:
        began = time.perf_counter()
        try:
            conn.request("GET", path)
            response = conn.getresponse()
            payload = response.read()
            status = str(response.status)
        except (OSError, http.client.HTTPException) as exc:
            status, payload = type(exc).__name__, str(exc).encode()
            conn.close()
        elapsed_ms = (time.perf_counter() - began) * 1000
        if kind == "healthz":
            answer = "200" if status == "200" else status
            expected = "200"
        else:
            try:
                answer = json.loads(payload)["RspCode"] if status == "200" else status
            except (ValueError, KeyError):
                answer = f"unreadable {status}"
            expected = "00" if kind == "first" else "02"
        latencies[kind].append(elapsed_ms)
        answers[f"{kind} {answer}"] += 1
        if answer != expected and len(samples) < 5:
            samples.append(f"{kind} {status}: {payload[:300].decode(errors='replace')}")
    finished = time.time()
    conn.close()
    with lock:
        for kind, values in latencies.items():
            out["latencies"][kind].extend(values)
        out["answers"].update(answers)
        out["samples"].extend(samples)
        out["finished"] = max(out["finished"], finished)


def client_process(spec: dict[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {
        "latencies": {"first": [], "repeat": [], "healthz": []},
        "answers": Counter(),
        "samples": [],
        "finished": 0.0,
    }
    lock = threading.Lock()
    threads = [
        threading.Thread(target=_client_thread, args=(spec, requests, out, lock), daemon=True)
        for requests in spec["threads"]
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return out


def ipn_path(payment: tuple[int, str, str], secret: str) -> str:
    """The IPN VNPAY sends when the payment succeeds, signed as VNPAY signs it."""
    from civicore.payments import vnpay

    pk, reference, created = payment
    params = {
        "vnp_TmnCode": TMN_CODE,
        "vnp_Amount": str(FEE * 100),
        "vnp_BankCode": "NCB",
        "vnp_BankTranNo": f"VNP{pk:09d}",
        "vnp_CardType": "ATM",
        "vnp_PayDate": created,
        "vnp_OrderInfo": f"Civicore fee {reference}",
        "vnp_TransactionNo": str(14_000_000 + pk),
        "vnp_ResponseCode": "00",
        "vnp_TransactionStatus": "00",
        "vnp_TxnRef": reference,
    }
    params["vnp_SecureHash"] = vnpay.sign_params(params, secret=secret)
    return f"{CALLBACK_PATH}?{urllib.parse.urlencode(params)}"


def thread_plans(
    payments: list[tuple[int, str, str]], threads: int, repeat_every: int, secret: str
) -> list[list[tuple[str, str]]]:
    """Each thread's callbacks in order: its share of the payments, and after every
    `repeat_every`-th one a repeat of a callback it sent (and had answered) a few requests before."""
    plans: list[list[tuple[str, str]]] = [[] for _ in range(threads)]
    for index, payment in enumerate(payments):
        plan = plans[index % threads]
        plan.append((ipn_path(payment, secret), "first"))
        firsts = [path for path, kind in plan if kind == "first"]
        if repeat_every and len(firsts) % repeat_every == 0:
            plan.append((firsts[-min(len(firsts), 3)], "repeat"))
    return plans


class Load:
    def __init__(self, pool: Any, args: argparse.Namespace, port: int) -> None:
        self.pool, self.args, self.port = pool, args, port
        self.meter: base.CpuMeter | None = None

    def run(self, plans: list[list[tuple[str, str]]]) -> dict[str, Any]:
        procs = max(1, min(self.args.client_processes, len(plans)))
        start_at = time.time() + 0.5
        specs = [
            {"host": "127.0.0.1", "port": self.port, "start_at": start_at, "threads": plans[i::procs]}
            for i in range(procs)
        ]
        before = self.meter.snapshot() if self.meter else {}
        results = self.pool.map(client_process, specs)
        after = self.meter.snapshot() if self.meter else {}
        seconds = max(r["finished"] for r in results) - start_at
        answers: Counter[str] = Counter()
        for r in results:
            answers.update(r["answers"])
        figures: dict[str, Any] = {"seconds": round(seconds, 3), "answers": dict(answers)}
        total = 0
        for kind in ("first", "repeat", "healthz"):
            values = sorted(x for r in results for x in r["latencies"][kind])
            if not values:
                continue
            total += len(values)
            figures[kind] = {
                "requests": len(values),
                "per_s": round(len(values) / seconds, 1),
                "p50_ms": round(base.percentile(values, 0.50) or 0, 2),
                "p99_ms": round(base.percentile(values, 0.99) or 0, 2),
            }
        everything = sorted(x for r in results for kinds in r["latencies"].values() for x in kinds)
        figures["all"] = {
            "requests": total,
            "per_s": round(total / seconds, 1),
            "p50_ms": round(base.percentile(everything, 0.50) or 0, 2),
            "p99_ms": round(base.percentile(everything, 0.99) or 0, 2),
        }
        figures["samples"] = [s for r in results for s in r["samples"]][:5]
        figures["cpu_ms_per_request"] = base.CpuMeter.per_request(before, after, total)
        return figures


def callback_check(database_url: str, payment_ids: list[int]) -> dict[str, Any]:
    """Every payment of the round paid exactly once: status, `paid` events, audit entries, jobs."""
    import psycopg

    subjects = [str(i) for i in payment_ids]
    with psycopg.connect(database_url) as conn:

        def one(sql: str, *params: Any) -> int:
            return int(conn.execute(sql, params).fetchone()[0])  # type: ignore[index]

        found = {
            "payments": len(payment_ids),
            "paid": one("SELECT count(*) FROM payments_payment WHERE id = ANY(%s) AND status = 'paid'", payment_ids),
            "paid_events": one(
                "SELECT count(*) FROM payments_paymentevent WHERE payment_id = ANY(%s) AND kind = 'paid'", payment_ids
            ),
            "payments_with_one_paid_event": one(
                "SELECT count(*) FROM (SELECT payment_id FROM payments_paymentevent WHERE payment_id = ANY(%s) "
                "AND kind = 'paid' GROUP BY payment_id HAVING count(*) = 1) AS once",
                payment_ids,
            ),
            "other_events": one(
                "SELECT count(*) FROM payments_paymentevent WHERE payment_id = ANY(%s) AND kind <> 'paid'",
                payment_ids,
            ),
            "audit_paid": one(
                "SELECT count(*) FROM audit_auditentry WHERE action = 'payment.paid' "
                "AND subject_type = 'payments.payment' AND subject_id = ANY(%s)",
                subjects,
            ),
            "jobs": one(
                "SELECT count(*) FROM core_job WHERE name = 'payments.paid' "
                "AND (payload->>'payment_id')::bigint = ANY(%s)",
                payment_ids,
            ),
        }  # fmt: skip
    n = len(payment_ids)
    found["ok"] = (
        found["paid"] == found["paid_events"] == found["payments_with_one_paid_event"] == n
        and found["audit_paid"] == found["jobs"] == n
        and found["other_events"] == 0
    )
    return found


def callbacks(
    args: argparse.Namespace, env: dict[str, str], work: Path, database_url: str, setup_file: Path
) -> dict[str, Any]:
    secret = env["VNPAY_HASH_SECRET"]
    warmup = min(args.callbacks, 1000)
    total = warmup + args.callbacks * args.runs
    print(f"Seeding {total} gateway payments ...", flush=True)
    seeded = [tuple(p) for p in child(env, "gateway", work, str(setup_file), str(total))]
    batches = [seeded[:warmup]] + [
        seeded[warmup + i * args.callbacks : warmup + (i + 1) * args.callbacks] for i in range(args.runs)
    ]
    threads = args.concurrency
    plans = [thread_plans(batch, threads, args.repeat_every, secret) for batch in batches]  # type: ignore[arg-type]
    healthz = [[("/healthz", "healthz")] * len(plan) for plan in plans[1]]

    server = None
    pool = None
    try:
        port = args.port or base.free_port()
        log = work / "gunicorn.log"
        server = base.start_server(args, env, port, log)
        base.wait_healthy(server, port, log)
        print(f"gunicorn on 127.0.0.1:{port}: {args.workers} {args.worker_class} workers; {threads} clients in "
              f"{args.client_processes} processes; {args.runs} rounds of {args.callbacks} callbacks "
              f"(+1 repeat every {args.repeat_every}) and as many GET /healthz.", flush=True)  # fmt: skip
        pool = multiprocessing.get_context("spawn").Pool(args.client_processes)
        load = Load(pool, args, port)
        clients = [process.pid for process in getattr(pool, "_pool", []) if process.pid]
        load.meter = base.CpuMeter(server.pid, args.database, clients)
        load.run([[("/healthz", "healthz")] * 100 for _ in range(threads)])
        warm = load.run(plans[0])
        rounds = []
        for i in range(args.runs):
            baseline = load.run(healthz)
            measured = load.run(plans[i + 1])
            check = callback_check(database_url, [p[0] for p in batches[i + 1]])  # type: ignore[misc]
            answered = measured["answers"]
            check["all_first_answered_00"] = answered.get("first 00", 0) == len(batches[i + 1])
            check["all_repeats_answered_02"] = answered.get("repeat 02", 0) == measured.get("repeat", {}).get(
                "requests", 0
            )
            rounds.append(
                {
                    "baseline": baseline,
                    "callbacks": measured,
                    "ratio": {
                        "throughput": base.ratio(measured["all"]["per_s"], baseline["all"]["per_s"]),
                        "p50": base.ratio(measured["all"]["p50_ms"], baseline["all"]["p50_ms"]),
                    },
                    "check": check,
                }
            )
            ok = check["ok"] and check["all_first_answered_00"] and check["all_repeats_answered_02"]
            print(f"  round {i + 1}: /healthz {baseline['all']['per_s']} req/s; callbacks {measured['all']['per_s']}/s "
                  f"({measured['first']['per_s']} settled/s), p50 {measured['all']['p50_ms']} ms, "
                  f"p99 {measured['all']['p99_ms']} ms; {'every payment paid once' if ok else 'CHECK FAILED'}",
                  flush=True)  # fmt: skip
        base.stop_server(server)
        server = None
    finally:
        if pool is not None:
            pool.terminate()
            pool.join()
        base.stop_server(server)

    def med(side: str, kind: str, key: str) -> float | None:
        return base.median([r[side].get(kind, {}).get(key) for r in rounds])

    medians = {
        "healthz": {key: med("baseline", "all", key) for key in ("per_s", "p50_ms", "p99_ms")},
        "callbacks_all": {key: med("callbacks", "all", key) for key in ("per_s", "p50_ms", "p99_ms")},
        "callbacks_first": {key: med("callbacks", "first", key) for key in ("per_s", "p50_ms", "p99_ms")},
        "callbacks_repeat": {key: med("callbacks", "repeat", key) for key in ("per_s", "p50_ms", "p99_ms")},
        "ratio": {key: base.median([r["ratio"][key] for r in rounds]) for key in ("throughput", "p50")},
        "cpu_ms_per_request": {
            side: {
                group: base.median([r[side]["cpu_ms_per_request"].get(group) for r in rounds])
                for group in rounds[0][side]["cpu_ms_per_request"]
            }
            for side in ("baseline", "callbacks")
        },
    }
    print_callbacks(rounds, medians)
    print("Worker draining the payments.paid jobs ...", flush=True)
    drain = child(env, "drain", work, str(setup_file), str(args.drain_limit))
    print(f"  {drain['jobs_run']} jobs in {drain['seconds']} s: {drain['jobs_per_s']} jobs/s"
          f"{' (stopped at the time limit)' if drain['stopped_by_limit'] else ''}; jobs now: {drain['after']}")  # fmt: skip
    audit = base.audit_check(env)
    return {"warmup": warm, "rounds": rounds, "median": medians, "worker_drain": drain, "audit_verify": audit}


def print_callbacks(rounds: list[dict[str, Any]], medians: dict[str, Any]) -> None:
    head = (
        f"{'round':>6} | {'healthz/s':>9} {'p50 ms':>7} {'p99 ms':>7} | {'callbacks/s':>11} {'p50 ms':>7} "
        f"{'p99 ms':>7} | {'settled/s':>9} {'repeat p50':>10} | {'ratio':>6} | check"
    )
    print()
    print(head)
    print("-" * len(head))
    for i, r in enumerate(rounds, 1):
        b, c = r["baseline"]["all"], r["callbacks"]
        check = r["check"]
        ok = check["ok"] and check["all_first_answered_00"] and check["all_repeats_answered_02"]
        print(f"{i:>6} | {b['per_s']:>9} {b['p50_ms']:>7} {b['p99_ms']:>7} | {c['all']['per_s']:>11} "
              f"{c['all']['p50_ms']:>7} {c['all']['p99_ms']:>7} | {c['first']['per_s']:>9} "
              f"{c.get('repeat', {}).get('p50_ms', '-')!s:>10} | {r['ratio']['throughput']!s:>6} | "
              f"{'ok' if ok else 'FAILED'}")  # fmt: skip
    print("-" * len(head))
    h, a, f, rep = (medians[k] for k in ("healthz", "callbacks_all", "callbacks_first", "callbacks_repeat"))
    print(f"{'median':>6} | {h['per_s']:>9} {h['p50_ms']:>7} {h['p99_ms']:>7} | {a['per_s']:>11} {a['p50_ms']:>7} "
          f"{a['p99_ms']:>7} | {f['per_s']:>9} {rep['p50_ms']!s:>10} | {medians['ratio']['throughput']!s:>6} |")  # fmt: skip
    cpu = medians["cpu_ms_per_request"]
    if cpu["callbacks"]:
        print("CPU ms per request (median): " + "; ".join(
            f"{side} " + ", ".join(f"{group} {value}" for group, value in cpu[side].items())
            for side in ("baseline", "callbacks")
        ))  # fmt: skip


def statements(args: argparse.Namespace, env: dict[str, str], work: Path, setup_file: Path) -> dict[str, Any]:
    print(f"\nStatement import: {args.statement_runs} rounds of {args.lines} credit lines (fresh payments "
          f"and file each round) ...", flush=True)  # fmt: skip
    result = child(
        env, "statements", work, str(setup_file), str(args.statement_runs), str(args.lines), echo=True
    )
    rounds = result["rounds"]
    medians = {
        "lines_per_s": {
            key: base.median([r["lines_per_s"][key] for r in rounds])
            for key in ("import", "read", "raw_insert")
        },
        "seconds": {
            key: base.median([r["seconds"][key] for r in rounds]) for key in ("import", "read", "raw_insert")
        },
        "ratio_import_to_read": base.median([r["ratio_import_to_read"] for r in rounds]),
        "ratio_import_to_raw_insert": base.median([r["ratio_import_to_raw_insert"] for r in rounds]),
    }
    m = medians["lines_per_s"]
    print(f"  median: import {m['import']} lines/s ({medians['seconds']['import']} s); read alone {m['read']} "
          f"lines/s; raw insert {m['raw_insert']} rows/s; import/read {medians['ratio_import_to_read']}, "
          f"import/raw insert {medians['ratio_import_to_raw_insert']}; counts "
          f"{'match in every round' if all(r['check']['ok'] for r in rounds) else 'DO NOT MATCH'}")  # fmt: skip
    return {"rounds": rounds, "median": medians}


def _interrupt(signum: int, frame: Any) -> None:
    raise KeyboardInterrupt


def benchmark(args: argparse.Namespace) -> int:
    signal.signal(signal.SIGINT, _interrupt)
    signal.signal(signal.SIGTERM, _interrupt)
    admin_url = os.environ.get("BENCH_POSTGRES_URL", "postgres://postgres@127.0.0.1:5432/postgres")
    admin_url, database_url = base.database_urls(admin_url, args.database)
    work = Path(tempfile.mkdtemp(prefix="civicore-bench-payments-"))
    env = base.child_env(work / "var", database_url, args.conn_max_age)
    env.update(VNPAY_TMN_CODE=TMN_CODE, VNPAY_HASH_SECRET=secrets.token_hex(32))
    report: dict[str, Any] = {
        "benchmark": "payments",
        "timestamp": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "parameters": {
            key: getattr(args, key)
            for key in (
                "runs",
                "callbacks",
                "repeat_every",
                "concurrency",
                "client_processes",
                "workers",
                "worker_class",
                "conn_max_age",
                "lines",
                "statement_runs",
            )
        },  # fmt: skip
    }
    try:
        print(f"Preparing database {args.database} ...", flush=True)
        base.recreate_database(admin_url, args.database)
        base.run([sys.executable, "-m", "civicore", "migrate", "--no-input", "--verbosity", "0"], env)
        base.run([sys.executable, "-m", "civicore", "setup", "signing"], env)  # receipts are signed
        setup = child(env, "setup", work, str(args.citizens))
        setup_file = work / "setup-data.json"
        setup_file.write_text(json.dumps(setup), encoding="utf-8")
        report["machine"] = base.facts(database_url)
        if args.callbacks and args.runs:
            report["callbacks"] = callbacks(args, env, work, database_url, setup_file)
        if args.lines and args.statement_runs:
            report["statements"] = statements(args, env, work, setup_file)
        base.write_report(args.output, report)
        return 0
    except KeyboardInterrupt:
        print("\nInterrupted.", file=sys.stderr)
        return 130
    finally:
        shutil.rmtree(work, ignore_errors=True)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=3, help="callback rounds (0: none)")
    parser.add_argument("--callbacks", type=int, default=6000, help="payments settled by callback per round")
    parser.add_argument(
        "--repeat-every", type=int, default=10, help="each client repeats a callback after every N (0: never)"
    )
    parser.add_argument("--concurrency", type=int, default=16, help="concurrent client connections")
    parser.add_argument("--client-processes", type=int, default=2)
    parser.add_argument("--workers", type=int, default=4, help="gunicorn worker processes")
    parser.add_argument("--worker-class", choices=("sync", "gthread"), default="sync")
    parser.add_argument("--threads", type=int, default=4, help="threads per worker with gthread")
    parser.add_argument("--conn-max-age", type=int, default=600)
    parser.add_argument("--citizens", type=int, default=50, help="payers the payments are spread over")
    parser.add_argument("--drain-limit", type=float, default=120, help="seconds the worker may drain jobs")
    parser.add_argument("--lines", type=int, default=100_000, help="credit lines per statement file")
    parser.add_argument("--statement-runs", type=int, default=3, help="statement rounds (0: none)")
    parser.add_argument("--database", default="civicore_bench_payments")
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--app", default="config.wsgi:application", help="WSGI application to serve")
    parser.add_argument("--output", type=Path, default=RESULTS)
    return parser.parse_args(argv)


if __name__ == "__main__":
    if len(sys.argv) > 2 and sys.argv[1] == "--child":
        child_main(sys.argv[2:])
        sys.exit(0)
    sys.exit(benchmark(parse_args()))
