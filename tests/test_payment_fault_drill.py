"""Payments fault drill: web and job workers killed with SIGKILL between a gateway's callback and
the ledger, and callbacks that never arrive; the gateway's retries and its status query must
settle every payment exactly once.

The stack runs as in production, each part in its own process: gunicorn (sync workers), a
`civicore worker`, the local VNPAY (`civicore paysandbox serve`, which sends each IPN again until
the merchant confirms it) and a freshly migrated PostgreSQL database of its own
(`civicore_payment_drill`, or PAYMENT_DRILL_DATABASE). Payers pay open VNPAY payments on the
gateway's page over HTTP; then:

1. the web workers are caught inside the callbacks' ledger transactions (the drill holds the
   payments' row locks, so each callback has been read and verified but has recorded nothing),
   frozen with SIGSTOP for longer than the gateway waits for an answer, and killed with SIGKILL;
   gunicorn starts new ones and the gateway's retries settle the payments;
2. the job worker is caught inside a `payments.paid` job (again behind a row lock), killed with
   SIGKILL and replaced; the job is run once, by the new worker;
3. the gateway holds the IPNs of further payments, and `civicore payments reconcile` settles them
   through VNPAY's status query (querydr); the IPNs, released afterwards, change nothing.

PostgreSQL only (the processes share the database). One drill of about a minute, run once per
module; each test below checks one promise against its outcome. Run alone with `pytest -m fault`.
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import re
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
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import psycopg
import pytest
from django.conf import settings

from bench.submission import (
    child_env,
    database_urls,
    free_port,
    recreate_database,
    run,
    start_server,
    stop_server,
    wait_healthy,
)
from civicore.payments.sandbox import ADMIN_HEADER, admin_signature

REPO = Path(__file__).resolve().parent.parent
SETUP_SCRIPT = REPO / "tests" / "payment_drill_setup.py"
PAYMENTS = 60
CALLBACK_PAYMENTS = 40  # paid while the web workers die; the rest have their IPNs held
PAYERS = 4
WEB_WORKERS = 3
TMN_CODE = "DRILLTMN"
# The sandbox gives up on an IPN after 5 s without an answer; the frozen workers stay frozen
# longer, so every callback sent to them is given up and must be sent again.
FREEZE_S = 6.0
IPN_SCHEDULE = "1,2,3,5,8,13,21"
HEALTHY_WITHIN_S = 10.0
DROP_WITHIN_S = 60
SETTLE_WITHIN_S = 90.0
CONFIRMED = ("00", "02")  # IPN answers that end the gateway's retries

pytestmark = [
    pytest.mark.fault,
    pytest.mark.skipif(
        settings.DATABASES["default"]["ENGINE"] != "django.db.backends.postgresql",
        reason="needs PostgreSQL: gunicorn, the worker and the test share one database",
    ),
]


def _admin_url() -> str:
    if url := os.environ.get("BENCH_POSTGRES_URL"):
        return url
    parent = os.environ.get("DATABASE_URL", "postgres://postgres@127.0.0.1:5432/postgres")
    return urllib.parse.urlunsplit(urllib.parse.urlsplit(parent)._replace(path="/postgres"))


def _children(pid: int) -> list[int]:
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_text()
            except OSError:
                continue
            if int(stat.rsplit(")", 1)[1].split()[1]) == pid:
                found.append(int(entry.name))
    return sorted(found)


def _wait(condition: Callable[[], bool], *, timeout: float, every: float = 0.1) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(every)
    return False


def _require(condition: Callable[[], bool], *, timeout: float, what: str, every: float = 0.1) -> None:
    if not _wait(condition, timeout=timeout, every=every):
        raise AssertionError(f"timed out after {timeout}s waiting for {what}")


@dataclass
class Answer:
    status: int
    headers: dict[str, str]
    body: str


def _http(
    method: str, url: str, *, body: bytes | None = None, headers: dict[str, str] | None = None
) -> Answer:
    parts = urllib.parse.urlsplit(url)
    conn = http.client.HTTPConnection(parts.hostname or "", parts.port, timeout=10)
    try:
        conn.request(
            method, parts.path + (f"?{parts.query}" if parts.query else ""), body=body, headers=headers or {}
        )
        response = conn.getresponse()
        return Answer(response.status, dict(response.getheaders()), response.read().decode(errors="replace"))
    finally:
        conn.close()


# --- the payers and the health probe --------------------------------------------------------


_FORM_FIELD = re.compile(r'name="(session|token)" value="([^"]+)"')


def pay(url: str) -> str:
    """What a payer does on the gateway's page: open it, choose a bank, press pay. Returns the
    gateway's answer to the pay button (302 back to the merchant when paid)."""
    page = _http("GET", url)
    if page.status != 200:
        return f"page {page.status}"
    form = urllib.parse.urlencode({**dict(_FORM_FIELD.findall(page.body)), "bank": "NCB"}).encode()
    parts = urllib.parse.urlsplit(url)
    answer = _http(
        "POST",
        f"{parts.scheme}://{parts.netloc}/paymentv2/pay",
        body=form,
        headers={"Content-Type": "application/x-www-form-urlencoded"},
    )
    return str(answer.status)


def pay_all(urls: list[str]) -> Counter[str]:
    with ThreadPoolExecutor(PAYERS) as payers:
        return Counter(payers.map(pay, urls))


class HealthProbe:
    """GET /healthz every 50 ms from the moment the web workers are killed."""

    def __init__(self, port: int, since: float) -> None:
        self.port, self.since = port, since
        self.results: list[tuple[float, str]] = []
        self.thread = threading.Thread(target=self._poll, daemon=True)
        self.thread.start()

    def _poll(self) -> None:
        streak = 0
        while time.monotonic() - self.since < 3 * HEALTHY_WITHIN_S and streak < 20:
            # As long as the budget: a probe queued behind the callbacks still counts when answered.
            conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=HEALTHY_WITHIN_S)
            try:
                conn.request("GET", "/healthz")
                outcome = str(conn.getresponse().status)
            except (OSError, http.client.HTTPException) as exc:
                outcome = type(exc).__name__
            finally:
                conn.close()
            self.results.append((time.monotonic(), outcome))
            streak = streak + 1 if outcome == "200" else 0
            time.sleep(0.05)

    def healthy_after(self) -> float | None:
        """Seconds from the kill to the first 200 from which every probe answered 200."""
        last_failure = max((i for i, (_, outcome) in enumerate(self.results) if outcome != "200"), default=-1)
        streak = self.results[last_failure + 1 :]
        if len(streak) < 20:
            return None
        return streak[0][0] - self.since


# --- the stack --------------------------------------------------------------------------------


class Stack:
    def __init__(self, work: Path) -> None:
        self.work = work
        # Recreated by every run and left for inspection afterwards, as bench/submission.py does.
        self.database = os.environ.get("PAYMENT_DRILL_DATABASE", "civicore_payment_drill")
        self.admin_url, self.url = database_urls(_admin_url(), self.database)
        self.port = free_port(19400)
        self.gateway_port = free_port(self.port + 1)
        self.gateway = f"http://127.0.0.1:{self.gateway_port}"
        self.secret = secrets.token_hex(32)
        self.env = child_env(work / "var", self.url, 60)
        self.env.update(
            VNPAY_TMN_CODE=TMN_CODE,
            VNPAY_HASH_SECRET=self.secret,
            VNPAY_PAYMENT_URL=f"{self.gateway}/paymentv2/vpcpay.html",
            VNPAY_API_URL=f"{self.gateway}/merchant_webapi/api/transaction",
            VNPAY_TIMEOUT_SECONDS="5",
            EMAIL_BACKEND="django.core.mail.backends.locmem.EmailBackend",
            LOG_LEVEL="WARNING",
        )
        self.server: subprocess.Popen[bytes] | None = None
        self.sandbox: subprocess.Popen[bytes] | None = None
        self.workers: dict[str, subprocess.Popen[bytes]] = {}

    def _spawn(self, name: str, command: list[str], env: dict[str, str]) -> subprocess.Popen[bytes]:
        with (self.work / f"{name}.log").open("ab") as log:
            return subprocess.Popen(  # noqa: S603 - our own command
                [sys.executable, "-m", "civicore", *command],
                cwd=REPO,
                env=env,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )

    def recreate_database(self) -> None:
        """bench/submission.py's drop-and-create, bounded: DROP DATABASE waits for every session on
        the server to acknowledge it, and one stuck elsewhere would otherwise hang the drill."""
        parts = urllib.parse.urlsplit(self.admin_url)
        options = urllib.parse.urlencode(
            {"options": f"-c statement_timeout={DROP_WITHIN_S * 1000}"}, quote_via=urllib.parse.quote
        )
        bounded = urllib.parse.urlunsplit(
            parts._replace(query="&".join(filter(None, (parts.query, options))))
        )
        try:
            recreate_database(bounded, self.database)
        except psycopg.errors.QueryCanceled as exc:
            with psycopg.connect(self.admin_url, autocommit=True) as conn:
                busy = conn.execute(
                    "SELECT pid, datname, state, wait_event, left(query, 80) FROM pg_stat_activity "
                    "WHERE backend_type = 'client backend' AND pid <> pg_backend_pid()"
                ).fetchall()
            raise RuntimeError(
                f"recreating {self.database} took over {DROP_WITHIN_S}s; sessions on the server: {busy}"
            ) from exc

    def prepare(self) -> list[dict[str, str]]:
        """A migrated database with signing material and the seeded payments."""
        self.recreate_database()
        run([sys.executable, "-m", "civicore", "migrate", "--no-input", "--verbosity", "0"], self.env)
        signing = self._spawn("setup-signing", ["setup", "signing"], self.env)
        out = self.work / "payments.json"
        run(
            [sys.executable, str(SETUP_SCRIPT), str(out), str(PAYMENTS), f"http://127.0.0.1:{self.port}"],
            self.env,
        )
        if signing.wait(timeout=120) != 0:
            raise RuntimeError(f"civicore setup signing failed:\n{self.logs()}")
        seeded: list[dict[str, str]] = json.loads(out.read_text(encoding="utf-8"))
        return seeded

    def start_web(self) -> None:
        options = argparse.Namespace(
            app="config.wsgi:application", workers=WEB_WORKERS, worker_class="sync", threads=1
        )
        # PGAPPNAME names each process's database sessions, so the drill can see where they wait.
        env = dict(self.env, PGAPPNAME="drill-web")
        self.server = start_server(options, env, self.port, self.work / "gunicorn.log")

    def start_gateway(self) -> None:
        self.sandbox = self._spawn(
            "paysandbox",
            [
                "paysandbox", "serve", "--port", str(self.gateway_port), "--tmn-code", TMN_CODE,
                "--ipn-url", f"http://127.0.0.1:{self.port}/payments/gateways/vnpay/callback/",
                "--ipn-schedule", IPN_SCHEDULE,
            ],
            self.env,
        )  # fmt: skip

    def start_worker(self, name: str) -> subprocess.Popen[bytes]:
        process = self._spawn(name, ["worker", "--jobs-only"], dict(self.env, PGAPPNAME=f"drill-{name}"))
        self.workers[name] = process
        return process

    def wait_ready(self) -> None:
        assert self.server is not None and self.sandbox is not None
        wait_healthy(self.server, self.port, self.work / "gunicorn.log")

        def gateway_up() -> bool:
            assert self.sandbox is not None
            if self.sandbox.poll() is not None:
                raise RuntimeError(f"the sandbox gateway exited:\n{self.logs()}")
            try:
                return self.admin("GET", "/_sandbox/transactions/none").status == 404
            except OSError:
                return False

        _require(gateway_up, timeout=60, what="the sandbox gateway")

    def admin(self, method: str, path: str, payload: dict[str, Any] | None = None) -> Answer:
        """The sandbox's admin endpoint, signed under the terminal's hash secret."""
        body = json.dumps(payload).encode() if payload is not None else b""
        signature = admin_signature(self.secret, method=method, path=path, body=body)
        return _http(method, self.gateway + path, body=body or None, headers={ADMIN_HEADER: signature})

    def transaction(self, reference: str) -> dict[str, Any]:
        answer = self.admin("GET", f"/_sandbox/transactions/{reference}")
        assert answer.status == 200, (reference, answer)
        found: dict[str, Any] = json.loads(answer.body)
        return found

    def web_workers(self) -> list[int]:
        assert self.server is not None
        return _children(self.server.pid)

    def connect(self, **options: Any) -> psycopg.Connection[Any]:
        return psycopg.connect(self.url, application_name="drill-test", **options)

    def sql(self, query: str, *params: Any) -> list[tuple[Any, ...]]:
        with self.connect(autocommit=True) as conn:
            return conn.execute(query, params).fetchall()  # type: ignore[arg-type]

    def count(self, query: str, *params: Any) -> int:
        return int(self.sql(query, *params)[0][0])

    def waiting_on_locks(self, application: str) -> int:
        """Sessions of a process kind waiting for a lock (here: a payment's row lock)."""
        return self.count(
            "SELECT count(*) FROM pg_stat_activity "
            "WHERE datname = %s AND application_name = %s AND wait_event_type = 'Lock'",
            self.database,
            application,
        )

    def payments_waited_for(self, application: str) -> list[str]:
        """The payments whose row lock sessions of a process kind are waiting for: a waiting
        session holds the lock on the row's tuple while it waits for the row's holder."""
        return sorted(
            reference
            for (reference,) in self.sql(
                "SELECT p.reference FROM pg_locks l JOIN pg_stat_activity a ON a.pid = l.pid "
                "JOIN payments_payment p ON p.ctid = ('(' || l.page || ',' || l.tuple || ')')::tid "
                "WHERE l.locktype = 'tuple' AND l.granted AND l.relation = 'payments_payment'::regclass "
                "AND a.application_name = %s",
                application,
            )
        )

    def lock_payments(self, references: list[str]) -> psycopg.Connection[Any]:
        """Hold the payments' row locks in a transaction until the returned connection rolls back."""
        conn = self.connect()
        conn.execute("SELECT id FROM payments_payment WHERE reference = ANY(%s) FOR UPDATE", [references])
        return conn

    def paid(self, references: list[str]) -> int:
        return self.count(
            "SELECT count(*) FROM payments_payment WHERE status = 'paid' AND reference = ANY(%s)", references
        )

    def logs(self) -> str:
        return "\n".join(
            f"--- {path.name}\n{path.read_text(errors='replace')[-3000:]}"
            for path in sorted(self.work.glob("*.log"))
        )

    def close(self) -> None:
        stop_server(self.server)
        for process in [*self.workers.values(), self.sandbox]:
            if process is None or process.poll() is not None:
                continue
            process.send_signal(signal.SIGCONT)  # in case a failed run left it frozen
            process.send_signal(signal.SIGTERM)
            try:
                process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


@dataclass
class Outcome:
    stack: Stack
    callback_refs: list[str]  # paid while the web workers were caught and killed
    query_refs: list[str]  # paid while the gateway held their IPNs
    payers: Counter[str]
    callbacks_in_flight: list[str]  # payments whose callbacks the killed web workers were applying
    killed_web_workers: list[int]
    job_in_flight: list[int]  # the payments.paid job the killed job worker was running
    job_worker_killed_at: datetime
    paid_before_reconcile: int
    reconcile: subprocess.CompletedProcess[str]
    released: Answer
    transactions: dict[str, dict[str, Any]]  # the sandbox's view of every payment
    probe: HealthProbe
    audit_verify: subprocess.CompletedProcess[str]
    faults: dict[str, float] = field(default_factory=dict)  # seconds since the first payer
    timings: dict[str, float] = field(default_factory=dict)

    @property
    def references(self) -> list[str]:
        return self.callback_refs + self.query_refs

    def rows(self, query: str, *params: Any) -> list[tuple[Any, ...]]:
        return self.stack.sql(query, *params)

    def count(self, query: str, *params: Any) -> int:
        return self.stack.count(query, *params)


def _civicore(stack: Stack, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(  # noqa: S603 - our own command
        [sys.executable, "-m", "civicore", *args],
        env=stack.env, cwd=REPO, capture_output=True, text=True, check=False, timeout=120,
    )  # fmt: skip


def _locked_jobs(stack: Stack) -> list[int]:
    """Pending payments.paid jobs whose row some worker holds (it is running them)."""
    with stack.connect() as conn:
        pending = {
            job_id
            for (job_id,) in conn.execute(
                "SELECT id FROM core_job WHERE name = 'payments.paid' AND status = 'pending'"
            ).fetchall()
        }
        free = {
            job_id
            for (job_id,) in conn.execute(
                "SELECT id FROM core_job WHERE name = 'payments.paid' AND status = 'pending' "
                "FOR UPDATE SKIP LOCKED"
            ).fetchall()
        }
        conn.rollback()
    return sorted(pending - free)


@pytest.fixture(scope="module")
def drill() -> Iterator[Outcome]:
    began = time.monotonic()
    work = Path(tempfile.mkdtemp(prefix="civicore-payment-fault-"))
    stack = Stack(work)
    try:
        seeded = stack.prepare()
        stack.start_web()
        stack.start_gateway()
        worker = stack.start_worker("worker-1")
        stack.wait_ready()
        urls = {item["reference"]: item["url"] for item in seeded}
        references = list(urls)
        callback_refs, query_refs = references[:CALLBACK_PAYMENTS], references[CALLBACK_PAYMENTS:]
        # The worker sends the filings' e-mails, then is paused so that the payments' follow-up
        # jobs wait for the second fault.
        _require(
            lambda: stack.count("SELECT count(*) FROM core_job WHERE status <> 'done'") == 0,
            timeout=60,
            what="the worker to finish the seeded jobs",
        )
        os.kill(worker.pid, signal.SIGSTOP)
        prepared = time.monotonic()
        faults: dict[str, float] = {}

        # (1) Web workers die between the callback and the ledger update.
        blocker = stack.lock_payments(callback_refs)
        t0 = time.monotonic()
        payers = pay_all([urls[ref] for ref in callback_refs])
        _require(
            lambda: stack.waiting_on_locks("drill-web") >= WEB_WORKERS,
            timeout=20,
            what="every web worker to be inside a callback",
        )
        in_flight = stack.payments_waited_for("drill-web")
        frozen = stack.web_workers()
        for pid in frozen:
            os.kill(pid, signal.SIGSTOP)
        faults["web_workers_frozen"] = time.monotonic() - t0
        time.sleep(FREEZE_S)
        for pid in frozen:
            os.kill(pid, signal.SIGKILL)
        killed_at = time.monotonic()
        faults["web_workers_killed"] = killed_at - t0
        probe = HealthProbe(stack.port, killed_at)
        _require(
            lambda: not any(Path(f"/proc/{pid}").exists() for pid in frozen),
            timeout=10,
            what="gunicorn to reap the killed workers",
        )
        blocker.rollback()
        blocker.close()
        _require(
            lambda: stack.paid(callback_refs) == len(callback_refs),
            timeout=SETTLE_WITHIN_S,
            every=0.5,  # the replacement workers are booting: leave them the processor
            what="the gateway's retries to settle the callbacks that died",
        )
        _require(
            lambda: all(
                (attempts := stack.transaction(ref)["ipn_attempts"]) and attempts[-1]["rsp_code"] in CONFIRMED
                for ref in callback_refs
            ),
            timeout=SETTLE_WITHIN_S,
            every=0.5,
            what="the gateway to stop retrying",
        )
        faults["callbacks_settled"] = time.monotonic() - t0
        probe.thread.join(3 * HEALTHY_WITHIN_S + 5)

        # (2) The job worker dies inside a payments.paid job.
        blocker = stack.lock_payments(callback_refs)
        os.kill(worker.pid, signal.SIGCONT)
        _require(
            lambda: stack.waiting_on_locks("drill-worker-1") >= 1,
            timeout=20,
            what="the worker to be inside a payments.paid job",
        )
        job_in_flight = _locked_jobs(stack)
        os.kill(worker.pid, signal.SIGKILL)
        worker.wait()
        job_worker_killed_at = datetime.now(UTC)
        faults["job_worker_killed"] = time.monotonic() - t0
        stack.start_worker("worker-2")
        blocker.rollback()
        blocker.close()

        # (3) IPNs that never arrive: the status query settles those payments.
        held = stack.admin("POST", "/_sandbox/faults", {"hold_ipn": True})
        assert held.status == 200, held
        faults["ipns_held"] = time.monotonic() - t0
        payers += pay_all([urls[ref] for ref in query_refs])
        time.sleep(1.0)  # what a callback would have done by now
        paid_before_reconcile = stack.paid(query_refs)
        reconcile = _civicore(stack, "payments", "reconcile", "--quiet-minutes", "0")
        faults["reconciled"] = time.monotonic() - t0
        # The held IPNs go out now, late: each must find its payment settled.
        released = stack.admin("POST", "/_sandbox/faults", {"hold_ipn": False})

        def settled() -> bool:
            return (
                stack.paid(references) == len(references)
                and stack.count("SELECT count(*) FROM core_job WHERE status <> 'done'") == 0
                and stack.count("SELECT count(*) FROM audit_auditentry WHERE seq IS NULL") == 0
                and all(stack.transaction(ref)["ipn_attempts"] for ref in query_refs)
            )

        # Whether everything settles is for the tests below to judge; waiting is bounded.
        _wait(settled, timeout=SETTLE_WITHIN_S, every=0.5)
        settled_s = time.monotonic() - t0
        transactions = {ref: stack.transaction(ref) for ref in references}
        audit_verify = _civicore(stack, "audit", "verify")
        outcome = Outcome(
            stack=stack,
            callback_refs=callback_refs,
            query_refs=query_refs,
            payers=payers,
            callbacks_in_flight=in_flight,
            killed_web_workers=frozen,
            job_in_flight=job_in_flight,
            job_worker_killed_at=job_worker_killed_at,
            paid_before_reconcile=paid_before_reconcile,
            reconcile=reconcile,
            released=released,
            transactions=transactions,
            probe=probe,
            audit_verify=audit_verify,
            faults=faults,
            timings={
                "prepare_s": prepared - began,
                "faults_and_settling_s": settled_s,
                "healthy_after_kill_s": probe.healthy_after() or float("nan"),
            },
        )
        yield outcome
        outcome.timings["drill_wall_s"] = time.monotonic() - began
        _report(outcome)
    except BaseException:
        print(stack.logs())
        raise
    finally:
        closing = time.monotonic()
        stack.close()
        shutil.rmtree(work, ignore_errors=True)
        print(f"payment fault drill: stopped and cleaned up in {time.monotonic() - closing:.1f}s")


def _attempts(outcome: Outcome) -> Counter[str]:
    return Counter(
        attempt["rsp_code"] or (attempt["error"] or "no answer")
        for transaction in outcome.transactions.values()
        for attempt in transaction["ipn_attempts"]
    )


def _report(outcome: Outcome) -> None:
    print(
        f"\npayment fault drill: {len(outcome.references)} payments, payers {dict(outcome.payers)}; "
        f"callbacks killed in flight {outcome.callbacks_in_flight}, "
        f"job killed in flight {outcome.job_in_flight}; "
        f"IPN attempts by answer {dict(_attempts(outcome))}; reconcile "
        f"'{outcome.reconcile.stdout.strip()}'; faults at "
        f"{ ({k: round(v, 2) for k, v in outcome.faults.items()}) } s; "
        f"timings { ({k: round(v, 2) for k, v in outcome.timings.items()}) }"
    )


# --- what must hold afterwards -----------------------------------------------------------------


def test_every_payment_is_paid_once_with_its_gateway_transaction(drill: Outcome) -> None:
    assert drill.payers == Counter({"302": len(drill.references)})
    payments = {
        reference: (status, paid_minor, amount_minor, gateway_transaction, paid_events)
        for reference, status, paid_minor, amount_minor, gateway_transaction, paid_events in drill.rows(
            "SELECT p.reference, p.status, p.paid_minor, p.amount_minor, p.gateway_transaction, "
            "(SELECT count(*) FROM payments_paymentevent e WHERE e.payment_id = p.id AND e.kind = 'paid') "
            "FROM payments_payment p"
        )
    }
    assert sorted(payments) == sorted(drill.references)
    expected = {}
    for reference, transaction in drill.transactions.items():
        assert transaction["status"] == "00" and transaction["transaction_no"], transaction
        amount = int(transaction["amount"]) // 100
        expected[reference] = ("paid", amount, amount, transaction["transaction_no"], 1)
    assert payments == expected
    # The sandbox numbers its transactions: every payment got one of its own.
    assert len({row[3] for row in payments.values()}) == len(payments)


def test_no_event_is_applied_twice(drill: Outcome) -> None:
    repeated = drill.rows(
        "SELECT key, count(*) FROM payments_paymentevent WHERE key IS NOT NULL "
        "GROUP BY key HAVING count(*) > 1"
    )
    assert repeated == []
    kinds = dict(drill.rows("SELECT kind, count(*) FROM payments_paymentevent GROUP BY kind"))
    assert "mismatch" not in kinds and "paid_twice" not in kinds, kinds
    # create, pending, paid and the payer told once: nothing else happened to any payment.
    assert kinds == dict.fromkeys(("create", "pending", "paid", "payer_notified"), len(drill.references))
    # Each paid event carries the gateway's key for that transaction and status.
    keys = {key for (key,) in drill.rows("SELECT key FROM payments_paymentevent WHERE kind = 'paid'")}
    assert keys == {f"vnpay:{t['transaction_no']}:paid" for t in drill.transactions.values()}


def test_every_paid_job_is_done_once(drill: Outcome) -> None:
    jobs = drill.rows(
        "SELECT (j.payload->>'payment_id')::bigint, j.status, j.attempts, j.finished_at FROM core_job j "
        "WHERE j.name = 'payments.paid' ORDER BY j.id"
    )
    payment_ids = {pk for (pk,) in drill.rows("SELECT id FROM payments_payment")}
    assert Counter(job[0] for job in jobs) == Counter(dict.fromkeys(payment_ids, 1))
    unfinished = [job for job in jobs if job[1] != "done"]
    assert unfinished == [], f"{unfinished}\n{drill.stack.logs()}"
    # The run cut short by the kill left no trace, not even an attempt.
    assert {job[2] for job in jobs} == {1}
    # The job the killed worker was running was done afterwards, by its replacement.
    assert len(drill.job_in_flight) == 1
    [(finished_at,)] = drill.rows("SELECT finished_at FROM core_job WHERE id = %s", drill.job_in_flight[0])
    assert finished_at > drill.job_worker_killed_at
    # What follows the money happened once per payment: one receipt, one notification.
    assert drill.count("SELECT count(*) FROM payments_receipt") == len(payment_ids)
    assert drill.count("SELECT count(*) FROM notify_notification WHERE link LIKE '/payments/%%'") == len(
        payment_ids
    )
    assert set(dict(drill.rows("SELECT status, count(*) FROM core_job GROUP BY status"))) == {"done"}


def test_the_gateways_retries_settled_the_callbacks_that_died(drill: Outcome) -> None:
    # Every web worker was inside a callback's ledger transaction, each for its own payment,
    # when it was killed: those callbacks died before the ledger update, so a retry settled them.
    assert len(drill.callbacks_in_flight) == WEB_WORKERS
    assert set(drill.callbacks_in_flight) <= set(drill.callback_refs)
    assert not set(drill.killed_web_workers) & set(drill.stack.web_workers())
    assert len(drill.stack.web_workers()) == WEB_WORKERS
    attempts = sum(len(t["ipn_attempts"]) for t in drill.transactions.values())
    assert attempts > len(drill.references), _attempts(drill)
    for reference in drill.callback_refs:
        sent = drill.transactions[reference]["ipn_attempts"]
        # The first IPN went unanswered (its worker frozen, then dead); a later one was confirmed.
        assert len(sent) >= 2 and sent[0]["http_status"] is None, sent
        assert sent[-1]["rsp_code"] in CONFIRMED, sent
        assert all(a["rsp_code"] in ("", *CONFIRMED) for a in sent), sent
    sources = Counter(
        source
        for (source,) in drill.rows(
            "SELECT e.source FROM payments_paymentevent e JOIN payments_payment p ON p.id = e.payment_id "
            "WHERE e.kind = 'paid' AND p.reference = ANY(%s)",
            drill.callback_refs,
        )
    )
    assert sources == Counter({"gateway_callback": len(drill.callback_refs)})


def test_callbacks_that_never_arrived_are_settled_by_the_status_query(drill: Outcome) -> None:
    assert drill.paid_before_reconcile == 0
    assert drill.reconcile.returncode == 0, drill.reconcile.stderr
    count = len(drill.query_refs)
    assert drill.reconcile.stdout.strip() == f"asked: {count}, settled: {count}, expired: 0"
    sources = Counter(
        source
        for (source,) in drill.rows(
            "SELECT e.source FROM payments_paymentevent e JOIN payments_payment p ON p.id = e.payment_id "
            "WHERE e.kind = 'paid' AND p.reference = ANY(%s)",
            drill.query_refs,
        )
    )
    assert sources == Counter({"gateway_query": count})
    # The held IPNs, sent once released, found their payments settled and changed nothing.
    assert drill.released.status == 200, drill.released
    for reference in drill.query_refs:
        assert [a["rsp_code"] for a in drill.transactions[reference]["ipn_attempts"]] == ["02"]


def test_healthz_recovers_within_ten_seconds_of_the_kill(drill: Outcome) -> None:
    healthy_after = drill.probe.healthy_after()
    assert healthy_after is not None, drill.probe.results
    assert healthy_after <= HEALTHY_WITHIN_S, drill.probe.results


def test_the_job_worker_was_replaced_and_the_audit_chain_verifies(drill: Outcome) -> None:
    alive = {name for name, process in drill.stack.workers.items() if process.poll() is None}
    assert alive == {"worker-2"}
    assert drill.audit_verify.returncode == 0, drill.audit_verify.stdout + drill.audit_verify.stderr
