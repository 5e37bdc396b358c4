"""Fault drills: a burst of filings over the REST API while a web worker and a job worker are
killed with SIGKILL and every database connection is terminated.

The whole stack runs as in production, each part in its own process: gunicorn (sync workers,
persistent database connections), two `civicore worker` processes sending e-mail over SMTP to a
local mail server, and a freshly migrated PostgreSQL database of its own (`civicore_fault_drill`,
or FAULT_DRILL_DATABASE, on the server DATABASE_URL or BENCH_POSTGRES_URL names). Clients retry
every failed or uncertain request with the same Idempotency-Key. Afterwards every filing must be
whole and filed once, every job done once, the audit chain intact and /healthz healthy again
quickly.

PostgreSQL only (the processes must share the database). One drill, about a minute, run once per
module; the tests below each check one promise against its outcome. Run alone with `pytest -m fault`.
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
import urllib.parse
from collections import Counter, defaultdict
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psycopg
import pytest
from django.conf import settings

from bench.submission import (
    ANSWERS,
    SETUP_SCRIPT,
    child_env,
    database_urls,
    free_port,
    recreate_database,
    run,
    start_server,
    stop_server,
    wait_healthy,
)
from tests.mail_sink import MailSink

REPO = Path(__file__).resolve().parent.parent
CLIENTS = 8
WEB_WORKERS = 3
JOB_WORKERS = 2
HEALTHY_WITHIN_S = 10.0

pytestmark = [
    pytest.mark.fault,
    pytest.mark.skipif(
        settings.DATABASES["default"]["ENGINE"] != "django.db.backends.postgresql",
        reason="needs PostgreSQL: gunicorn, the workers and the test share one database",
    ),
]


def _admin_url() -> str:
    if url := os.environ.get("BENCH_POSTGRES_URL"):
        return url
    parent = os.environ.get("DATABASE_URL", "postgres://postgres@127.0.0.1:5432/postgres")
    return urllib.parse.urlunsplit(urllib.parse.urlsplit(parent)._replace(path="/postgres"))


# --- the clients -------------------------------------------------------------------------------


@dataclass
class Attempt:
    at: float
    key: str
    outcome: str  # HTTP status, or the exception's name when no answer came


@dataclass
class Filing:
    key: str
    final: str = ""
    ids: set[str] = field(default_factory=set)  # application id in every 201 for this key
    attempts: int = 0


class Burst:
    """Clients filing applications, each retrying a failed or uncertain request with the same
    Idempotency-Key until it gets a 201 or a definite 4xx."""

    def __init__(self, port: int, service: str, tokens: list[str]) -> None:
        self.port, self.service, self.tokens = port, service, tokens
        self.stop_new = threading.Event()
        self.lock = threading.Lock()
        self.attempts: list[Attempt] = []
        self.filings: dict[str, Filing] = {}
        self.created_at: list[float] = []
        self.threads = [threading.Thread(target=self._client, args=(n,), daemon=True) for n in range(CLIENTS)]

    def start(self) -> Burst:
        self.started_at = time.monotonic()
        for thread in self.threads:
            thread.start()
        return self

    def join(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        for thread in self.threads:
            thread.join(max(0.0, deadline - time.monotonic()))
        alive = [t.name for t in self.threads if t.is_alive()]
        assert not alive, f"clients still retrying after {timeout}s: {alive}"

    def created(self) -> int:
        with self.lock:
            return len(self.created_at)

    def _post(self, token: str, key: str) -> tuple[str, dict[str, Any] | None]:
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=30)
        try:
            conn.request(
                "POST",
                "/api/v1/applications",
                body=json.dumps({"service": self.service, "answers": ANSWERS, "submit": True}),
                headers={
                    "Authorization": f"Bearer {token}",
                    "Content-Type": "application/json",
                    "Idempotency-Key": key,
                },
            )
            response = conn.getresponse()
            payload = response.read()
        except (OSError, http.client.HTTPException) as exc:
            return type(exc).__name__, None
        finally:
            conn.close()
        body = None
        if response.getheader("Content-Type", "").startswith("application/json"):
            body = json.loads(payload)
        return str(response.status), body

    def _client(self, n: int) -> None:
        token = self.tokens[n % len(self.tokens)]
        serial = 0
        while not self.stop_new.is_set():
            key = f"drill-{n}-{serial}"
            serial += 1
            filing = Filing(key=key)
            with self.lock:
                self.filings[key] = filing
            delay = 0.05
            while True:
                outcome, body = self._post(token, key)
                filing.attempts += 1
                with self.lock:
                    self.attempts.append(Attempt(time.monotonic(), key, outcome))
                if outcome == "201" and body is not None:
                    filing.ids.add(body["id"])
                    with self.lock:
                        self.created_at.append(time.monotonic())
                if outcome == "201" or (outcome.startswith("4") and outcome != "429"):
                    filing.final = outcome
                    break
                time.sleep(delay)  # 5xx, 429 or no answer: maybe filed, maybe not; ask again
                delay = min(delay * 2, 0.5)


class HealthProbe:
    """GET /healthz every 50 ms from the moment the connections are terminated."""

    def __init__(self, port: int) -> None:
        self.port = port
        self.results: list[tuple[float, str]] = []
        self.done = threading.Event()
        self.thread = threading.Thread(target=self._poll, daemon=True)

    def start(self, since: float) -> HealthProbe:
        self.since = since
        self.thread.start()
        return self

    def _poll(self) -> None:
        streak = 0
        while not self.done.is_set() and time.monotonic() - self.since < 3 * HEALTHY_WITHIN_S:
            conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=5)
            try:
                conn.request("GET", "/healthz")
                outcome = str(conn.getresponse().status)
            except (OSError, http.client.HTTPException) as exc:
                outcome = type(exc).__name__
            finally:
                conn.close()
            self.results.append((time.monotonic(), outcome))
            streak = streak + 1 if outcome == "200" else 0
            if streak >= 20:  # every web worker has had its turn many times over
                break
            time.sleep(0.05)
        self.done.set()

    def healthy_after(self) -> float | None:
        """Seconds from the termination to the first 200 from which every probe answered 200."""
        last_failure = max((i for i, (_, outcome) in enumerate(self.results) if outcome != "200"), default=-1)
        streak = self.results[last_failure + 1 :]
        if len(streak) < 20:
            return None
        return streak[0][0] - self.since


# --- the stack ---------------------------------------------------------------------------------


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


def _wait(condition: Callable[[], bool], *, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.1)
    return False


def _require(condition: Callable[[], bool], *, timeout: float, what: str) -> None:
    if not _wait(condition, timeout=timeout):
        raise AssertionError(f"timed out after {timeout}s waiting for {what}")


class Stack:
    def __init__(self, work: Path) -> None:
        self.work = work
        # Recreated by every run and left for inspection afterwards, as bench/submission.py does:
        # dropping it at the end would cost a checkpoint of the whole server.
        self.database = os.environ.get("FAULT_DRILL_DATABASE", "civicore_fault_drill")
        self.admin_url, self.url = database_urls(_admin_url(), self.database)
        self.sink = MailSink().start()
        self.env = child_env(work / "var", self.url, conn_max_age=600)
        self.env.update(
            EMAIL_BACKEND="django.core.mail.backends.smtp.EmailBackend",
            EMAIL_HOST="127.0.0.1",
            EMAIL_PORT=str(self.sink.port),
            LOG_LEVEL="WARNING",
        )
        self.server: subprocess.Popen[bytes] | None = None
        self.workers: dict[str, subprocess.Popen[bytes]] = {}
        self.port = 0

    def migrate(self) -> None:
        recreate_database(self.admin_url, self.database)
        run([sys.executable, "-m", "civicore", "migrate", "--no-input", "--verbosity", "0"], self.env)

    def seed(self) -> tuple[str, list[str]]:
        """One e-service and a citizen with an API token per client (bench/submission_setup.py)."""
        tokens_file = self.work / "tokens.txt"
        seeded = run([sys.executable, str(SETUP_SCRIPT), str(tokens_file), str(CLIENTS)], self.env)
        return seeded.stdout.strip().splitlines()[-1], tokens_file.read_text(encoding="utf-8").split()

    def start_web(self) -> None:
        self.port = free_port(19000)
        options = argparse.Namespace(
            app="config.wsgi:application", workers=WEB_WORKERS, worker_class="sync", threads=1
        )
        self.server = start_server(options, self.env, self.port, self.work / "gunicorn.log")

    def wait_web(self) -> None:
        assert self.server is not None
        wait_healthy(self.server, self.port, self.work / "gunicorn.log")

    def start_worker(self, name: str) -> subprocess.Popen[bytes]:
        """A job worker whose e-mail says which worker sent it."""
        env = dict(self.env, DEFAULT_FROM_EMAIL=f"Civicore <{name}@civicore.invalid>")
        with (self.work / f"{name}.log").open("ab") as log:
            process = subprocess.Popen(  # noqa: S603 - our own command
                [sys.executable, "-m", "civicore", "worker", "--jobs-only"],
                cwd=REPO,
                env=env,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        self.workers[name] = process
        return process

    def web_workers(self) -> list[int]:
        assert self.server is not None
        return _children(self.server.pid)

    def sql(self, query: str, *params: Any) -> list[tuple[Any, ...]]:
        with psycopg.connect(self.url, autocommit=True) as conn:
            return conn.execute(query, params).fetchall()  # type: ignore[arg-type]

    def connections(self) -> int:
        """Sessions of the server and the workers: every one of them once all are up."""
        return int(
            self.sql(
                "SELECT count(*) FROM pg_stat_activity WHERE datname = %s AND pid <> pg_backend_pid()",
                self.database,
            )[0][0]
        )

    def terminate_connections(self) -> int:
        rows = self.sql(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
            "WHERE datname = %s AND pid <> pg_backend_pid()",
            self.database,
        )
        return sum(1 for (ok,) in rows if ok)

    def logs(self) -> str:
        return "\n".join(
            f"--- {path.name}\n{path.read_text(errors='replace')[-3000:]}" for path in self.work.glob("*.log")
        )

    def close(self) -> None:
        stop_server(self.server)
        for process in self.workers.values():
            if process.poll() is None:
                process.send_signal(signal.SIGTERM)
                try:
                    process.wait(timeout=20)
                except subprocess.TimeoutExpired:
                    process.kill()
                    process.wait()
        self.sink.stop()


@dataclass
class Outcome:
    stack: Stack
    burst: Burst
    probe: HealthProbe
    faults: dict[str, float]  # seconds since the burst started
    killed_web_worker: int
    held_message: Any
    terminated: int
    timings: dict[str, float]
    audit_verify: subprocess.CompletedProcess[str]

    def rows(self, query: str, *params: Any) -> list[tuple[Any, ...]]:
        return self.stack.sql(query, *params)

    def count(self, query: str, *params: Any) -> int:
        return int(self.rows(query, *params)[0][0])


@pytest.fixture(scope="module")
def drill() -> Iterator[Outcome]:
    began = time.monotonic()
    work = Path(tempfile.mkdtemp(prefix="civicore-fault-"))
    stack = Stack(work)
    try:
        stack.migrate()
        # The processes boot while the citizens are being registered.
        stack.start_web()
        stack.start_worker("worker-a")
        stack.start_worker("worker-b")
        service, tokens = stack.seed()
        stack.wait_web()
        prepared = time.monotonic()

        burst = Burst(stack.port, service, tokens).start()
        t0 = burst.started_at
        faults: dict[str, float] = {}
        _require(lambda: burst.created() >= 40, timeout=30, what="the first filings")

        # (a) A web worker dies mid-burst; gunicorn starts another.
        victim = stack.web_workers()[0]
        os.kill(victim, signal.SIGKILL)
        faults["web_worker_killed"] = time.monotonic() - t0
        _require(lambda: burst.created() >= 80, timeout=30, what="filings after the web worker died")

        # (b) A job worker dies while its job is in flight: its e-mail is sent, the mail server
        # has not answered yet, the job has not been marked done.
        held = stack.sink.hold_next(timeout=20)
        holder = held.mail_from.split("@")[0]
        os.kill(stack.workers[holder].pid, signal.SIGKILL)
        stack.workers[holder].wait()
        faults["job_worker_killed"] = time.monotonic() - t0
        stack.start_worker(f"{holder}-2")
        _require(lambda: burst.created() >= 120, timeout=30, what="filings after the job worker died")

        # (c) Every connection to the database is cut, once the replacement processes have theirs.
        _require(
            lambda: stack.connections() >= WEB_WORKERS + JOB_WORKERS,
            timeout=30,
            what="every web and job worker to be connected",
        )
        terminated_at = time.monotonic()
        terminated = stack.terminate_connections()
        probe = HealthProbe(stack.port).start(terminated_at)
        faults["connections_terminated"] = terminated_at - t0
        probe.thread.join(3 * HEALTHY_WITHIN_S + 5)
        created_before = burst.created()
        _require(lambda: burst.created() >= created_before + 40, timeout=30, what="filings after the cut")

        burst.stop_new.set()
        burst.join(timeout=45)
        burst_s = time.monotonic() - t0

        # Whether the workers get there is for the tests below to judge.
        _wait(
            lambda: (
                stack.sql("SELECT count(*) FROM core_job WHERE status <> 'done'")[0][0] == 0
                and stack.sql("SELECT count(*) FROM audit_auditentry WHERE seq IS NULL")[0][0] == 0
            ),
            timeout=30,
        )
        settled_s = time.monotonic() - t0 - burst_s
        audit_verify = subprocess.run(  # noqa: S603
            [sys.executable, "-m", "civicore", "audit", "verify"],
            env=stack.env, cwd=REPO, capture_output=True, text=True, check=False,
        )  # fmt: skip
        outcome = Outcome(
            stack=stack,
            burst=burst,
            probe=probe,
            faults=faults,
            killed_web_worker=victim,
            held_message=held,
            terminated=terminated,
            timings={
                "prepare_s": prepared - began,
                "burst_s": burst_s,
                "settle_s": settled_s,
                "healthy_after_s": probe.healthy_after() or float("nan"),
            },
            audit_verify=audit_verify,
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
        print(f"fault drill: stopped and cleaned up in {time.monotonic() - closing:.1f}s")


def _report(outcome: Outcome) -> None:
    statuses = Counter(a.outcome for a in outcome.burst.attempts)
    probes = Counter(result for _, result in outcome.probe.results)
    resent = sum(len(items) - 1 for items in _emails_by_application(outcome).values())
    print(
        f"\nfault drill: {len(outcome.burst.filings)} filings, {len(outcome.burst.attempts)} requests "
        f"{dict(statuses)}; faults at { ({k: round(v, 2) for k, v in outcome.faults.items()}) } s; "
        f"{outcome.terminated} connections terminated; /healthz after the cut {dict(probes)}; "
        f"{len(outcome.stack.sink.accepted)} e-mails, {resent} sent again; "
        f"timings { ({k: round(v, 2) for k, v in outcome.timings.items()}) }"
    )


# --- what must hold afterwards -----------------------------------------------------------------


def _application_ids(outcome: Outcome) -> dict[str, str]:
    """Idempotency-Key -> the application filed for it, from the database."""
    return {
        key: str(result)
        for key, result in outcome.rows(
            "SELECT key, result_id FROM core_idempotencyrecord WHERE scope = 'application.file'"
        )
    }


def test_every_key_is_filed_exactly_once(drill: Outcome) -> None:
    filings = drill.burst.filings
    assert {f.final for f in filings.values()} == {"201"}, Counter(f.final for f in filings.values())
    # Every 201 for one key named the same application: a retry got the first filing back.
    assert all(len(f.ids) == 1 for f in filings.values())
    recorded = _application_ids(drill)
    assert recorded == {key: next(iter(f.ids)) for key, f in filings.items()}
    assert drill.count("SELECT count(*) FROM applications_application") == len(filings)
    retried = sum(1 for f in filings.values() if f.attempts > 1)
    assert retried > 0, "no request failed: the faults did not hit the burst"


def test_every_filing_is_whole(drill: Outcome) -> None:
    filed = len(drill.burst.filings)
    counts = {
        "submitted": "SELECT count(*) FROM applications_application WHERE status = 'submitted'",
        "cases": "SELECT count(*) FROM cases_case",
        "audit_submit": "SELECT count(*) FROM audit_auditentry WHERE action = 'application.submit'",
        "notifications": "SELECT count(*) FROM notify_notification",
        "email_jobs": "SELECT count(*) FROM core_job WHERE name = 'notify.email'",
    }
    assert {name: drill.count(query) for name, query in counts.items()} == dict.fromkeys(counts, filed)
    orphans = {
        "application_without_case": "SELECT count(*) FROM applications_application a "
        "LEFT JOIN cases_case c ON c.application_id = a.id WHERE c.id IS NULL",
        "application_without_audit": "SELECT count(*) FROM applications_application a "
        "WHERE NOT EXISTS (SELECT 1 FROM audit_auditentry e WHERE e.action = 'application.submit' "
        "AND e.subject_id IN (a.id::text, a.public_id::text))",
        "notification_without_application": "SELECT count(*) FROM notify_notification n "
        "WHERE NOT EXISTS (SELECT 1 FROM applications_application a "
        "WHERE n.link = '/applications/' || a.public_id::text || '/')",
        "key_without_application": "SELECT count(*) FROM core_idempotencyrecord r "
        "WHERE NOT EXISTS (SELECT 1 FROM applications_application a WHERE a.public_id::text = r.result_id)",
        "job_without_notification": "SELECT count(*) FROM core_job j WHERE j.name = 'notify.email' "
        "AND NOT EXISTS (SELECT 1 FROM notify_notification n "
        "WHERE n.id = (j.payload->>'notification_id')::bigint)",
    }
    assert {name: drill.count(query) for name, query in orphans.items()} == dict.fromkeys(orphans, 0)


_LINK = re.compile(r"/applications/([0-9a-f-]{36})/")


def test_every_job_is_done_once(drill: Outcome) -> None:
    statuses = dict(drill.rows("SELECT status, count(*) FROM core_job GROUP BY status"))
    unfinished = drill.rows(
        "SELECT id, status, attempts, locked_by, locked_until, last_error FROM core_job "
        "WHERE status <> 'done' ORDER BY id LIMIT 5"
    )
    assert set(statuses) == {"done"}, f"{statuses} {unfinished}\n{drill.stack.logs()}"
    # A run that did not commit (its worker killed, its session cut) left no trace, not even an
    # attempt: every job was recorded as run exactly once.
    assert drill.count("SELECT count(*) FROM core_job WHERE attempts <> 1") == 0
    assert drill.count("SELECT count(*) FROM notify_notification WHERE emailed_at IS NULL") == 0
    sent = _emails_by_application(drill)
    links = {link for (link,) in drill.rows("SELECT link FROM notify_notification")}
    assert {f"/applications/{public_id}/" for public_id in sent} == links
    # The message in flight when its worker was killed was never accepted by the mail server;
    # the job was done again by another worker, at once, and its e-mail accepted once.
    held = _LINK.search(drill.held_message.text)
    assert held and len(sent[held.group(1)]) == 1
    [copy] = sent[held.group(1)]
    assert not copy.mail_from.startswith(drill.held_message.mail_from)
    assert drill.stack.sink.discarded == [drill.held_message]
    # Run again as soon as its worker was gone, not when some lease ran out.
    killed_at = drill.burst.started_at + drill.faults["job_worker_killed"]
    assert copy.at - killed_at < 5, copy.at - killed_at


def _emails_by_application(drill: Outcome) -> dict[str, list[Any]]:
    sent: defaultdict[str, list[Any]] = defaultdict(list)
    for item in drill.stack.sink.accepted:
        match = _LINK.search(item.text)
        assert match, item.text
        sent[match.group(1)].append(item)
    return sent


def test_an_email_is_sent_again_only_when_the_cut_fell_between_sending_and_commit(drill: Outcome) -> None:
    """Everything a job writes in the database happens once (above). Its e-mail is handed to the
    mail server before the job's transaction commits, so a session cut between the two makes
    the next run send it again: the same message, only at the cut, at most once per job worker.
    """
    cut = drill.burst.started_at + drill.faults["connections_terminated"]
    duplicates = [items for items in _emails_by_application(drill).values() if len(items) > 1]
    assert len(duplicates) <= JOB_WORKERS
    for items in duplicates:
        first, *again = items
        assert len(again) == 1 and cut - 2 <= first.at <= cut + 1
        assert (again[0].message["Subject"], again[0].text, again[0].recipients) == (
            first.message["Subject"],
            first.text,
            first.recipients,
        )


def test_audit_chain_verifies_after_sealing(drill: Outcome) -> None:
    assert drill.audit_verify.returncode == 0, drill.audit_verify.stdout + drill.audit_verify.stderr


def test_healthz_recovers_within_ten_seconds_of_the_cut(drill: Outcome) -> None:
    assert drill.terminated >= WEB_WORKERS + JOB_WORKERS
    healthy_after = drill.probe.healthy_after()
    assert healthy_after is not None, drill.probe.results
    assert healthy_after <= HEALTHY_WITHIN_S, drill.probe.results


def test_processes_survive_or_are_replaced(drill: Outcome) -> None:
    web = drill.stack.web_workers()
    assert len(web) == WEB_WORKERS and drill.killed_web_worker not in web
    alive = {name for name, process in drill.stack.workers.items() if process.poll() is None}
    assert len(alive) == JOB_WORKERS, {name: p.returncode for name, p in drill.stack.workers.items()}


def test_clients_saw_errors_only_during_the_faults(drill: Outcome) -> None:
    """Every error a client saw was answered, on retry, by the one filing (checked above); none
    came long after a fault."""
    t0 = drill.burst.started_at
    windows = [(at, at + HEALTHY_WITHIN_S) for at in drill.faults.values()]
    late = [
        (round(a.at - t0, 2), a.outcome)
        for a in drill.burst.attempts
        if a.outcome != "201" and not any(start <= a.at - t0 <= end for start, end in windows)
    ]
    assert late == []
    # A lost database is a 503 to send again, never a 500; nothing was refused.
    assert not [a for a in drill.burst.attempts if a.outcome == "500" or a.outcome.startswith("4")]
