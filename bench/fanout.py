"""Fan-out throughput: profile changes delivered to N subscribed agencies by the real worker, against
a raw loop of signed HTTP POSTs to the same receivers.

Sets up a fresh PostgreSQL database with N agencies, each with an application subscribed to the
address, and a pool of citizens; starts N local HTTP receivers (one asyncio process, one port each,
acknowledging at once and recording when each webhook-id arrived) and `civicore worker`. Each round
then commits M address changes through the identity service (one transaction each, as a citizen or
an agency would), waits until the receivers have acknowledged all M x N deliveries, and measures
deliveries/s (first commit to last acknowledgement) and end-to-end latency (a change's commit to
its acknowledgement, p50/p99). Beside it, in the same run, the baseline: the same number of
signed POSTs of the same size sent to the same receivers with the same sender (threads,
connections per receiver) and no database. A last phase commits changes one at a time, paced, for
the latency of a change when the worker is idle. Prints a table and the medians, writes
bench/results/fanout.json, and proves the work happened (delivered rows, audit and message-log
entries, webhook-ids the receivers saw, the audit chain verified). This prints figures; it asserts
no target.

    python bench/fanout.py [--agencies N] [--changes M] [--runs R] [--verify]

The administrative PostgreSQL URL (used to drop and recreate the bench database) comes from
BENCH_POSTGRES_URL, default postgres://postgres@127.0.0.1:5432/postgres.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import json
import multiprocessing
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from submission import (  # noqa: E402
    REPO,
    audit_check,
    child_env,
    database_urls,
    facts,
    median,
    percentile,
    ratio,
    recreate_database,
    run,
    write_report,
)

RESULTS = REPO / "bench" / "results" / "fanout.json"
ITEM = "address"


# --- the receivers: one process, one asyncio server per agency -----------------------------


def receivers_main(count: int, conn: Any) -> None:
    """Acknowledge every POST at once with 200 and record (webhook-id, arrival time). Once given
    the platform's JWKS ("verify"), check every signature first (civicore.exchange.signing, which
    needs no Django) and answer 400 when it fails."""
    sys.path.insert(0, str(REPO))
    from civicore.exchange import signing

    jwks: dict[str, Any] | None = None
    arrivals: list[tuple[str, float]] = []
    invalid = [0]
    response = b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"
    refused = b"HTTP/1.1 400 Bad Request\r\nContent-Length: 3\r\n\r\nbad"

    class Receiver(asyncio.Protocol):
        def connection_made(self, transport: Any) -> None:
            self.transport = transport
            self.buffer = b""

        def data_received(self, data: bytes) -> None:
            self.buffer += data
            while True:
                end = self.buffer.find(b"\r\n\r\n")
                if end < 0:
                    return
                head = self.buffer[:end].decode("latin-1")
                headers = {}
                for line in head.split("\r\n")[1:]:
                    name, _, value = line.partition(":")
                    headers[name.strip().lower()] = value.strip()
                length = int(headers.get("content-length", "0"))
                if len(self.buffer) < end + 4 + length:
                    return
                body = self.buffer[end + 4 : end + 4 + length]
                self.buffer = self.buffer[end + 4 + length :]
                if jwks is not None:
                    try:
                        signing.verify(headers=headers, body=body, jwks=jwks)
                    except signing.WebhookVerificationError:
                        invalid[0] += 1
                        self.transport.write(refused)
                        continue
                arrivals.append((headers.get("webhook-id", ""), time.time()))
                self.transport.write(response)  # one write: no Nagle / delayed-ACK stall

    async def serve() -> None:
        loop = asyncio.get_running_loop()
        servers = [await loop.create_server(Receiver, "127.0.0.1", 0, backlog=1024) for _ in range(count)]
        conn.send([s.sockets[0].getsockname()[1] for s in servers])
        stop = asyncio.Event()

        def control() -> None:
            nonlocal jwks
            while True:
                command = conn.recv()
                if isinstance(command, dict):
                    jwks = command
                    conn.send(True)
                elif command == "count":
                    conn.send(len(arrivals))
                elif command == "take":
                    taken = arrivals[:]
                    del arrivals[: len(taken)]
                    conn.send((taken, invalid[0]))
                elif command == "stop":
                    loop.call_soon_threadsafe(stop.set)
                    return

        threading.Thread(target=control, daemon=True).start()
        await stop.wait()

    asyncio.run(serve())


class Receivers:
    def __init__(self, count: int) -> None:
        context = multiprocessing.get_context("spawn")
        self.conn, child = context.Pipe()
        self.process = context.Process(target=receivers_main, args=(count, child), daemon=True)
        self.process.start()
        self.ports: list[int] = self.conn.recv()
        self.lock = threading.Lock()

    def ask(self, command: str | dict[str, Any]) -> Any:
        with self.lock:
            self.conn.send(command)
            return self.conn.recv()

    def wait_for(self, total: int, timeout: float) -> None:
        deadline = time.time() + timeout
        while self.ask("count") < total:
            if time.time() > deadline:
                raise RuntimeError(f"receivers got {self.ask('count')} of {total} deliveries in {timeout}s")
            time.sleep(0.02)

    def stop(self) -> None:
        if self.process.is_alive():
            try:
                self.ask("stop")
            except (OSError, EOFError):
                pass
            self.process.join(5)
            if self.process.is_alive():
                self.process.terminate()


# --- steps that run inside a Django process (child mode) ------------------------------------


def _django() -> None:
    sys.path.insert(0, str(REPO))
    import django

    django.setup()


def child_seed(spec: dict[str, Any]) -> dict[str, Any]:
    """N agencies, each with an application subscribed to the address at its own receiver, and a
    pool of citizens registered by the population register."""
    _django()
    from django.db import transaction
    from joserfc.jwk import ECKey

    from civicore.agencies.models import Agency
    from civicore.core.jose import public_jwks, signing_key
    from civicore.identity.models import User
    from civicore.identity.services import person_register
    from civicore.registry.services import agency_application_register

    signing_key("EdDSA")
    with transaction.atomic():
        register = Agency.objects.create(code="bench-population", name_vi="Cơ sở dữ liệu dân cư")
        public_key = {"keys": [ECKey.generate_key("P-256", auto_kid=True).as_dict(private=False)]}
        for n, port in enumerate(spec["ports"]):
            agency = Agency.objects.create(
                code=f"bench-agency-{n}", name_vi=f"Cơ quan {n}", name_en=f"Agency {n}"
            )
            agency_application_register(
                client_id=f"bench-app-{n}", agency=agency, name_vi=f"Hệ thống {n}", name_en=f"System {n}",
                jwks=public_key, webhook_url=f"http://127.0.0.1:{port}/hooks/civicore",
                allowed_items=["full_name", ITEM], subscribed_items=[ITEM],
                purposes=[{"code": "notify", "name_vi": "Cập nhật hồ sơ", "name_en": "Keep records current"}],
            )  # fmt: skip
        people = []
        for n in range(spec["citizens"]):
            user = User.objects.create_user(
                username=f"fanout{n}",
                email=f"fanout{n}@example.test",
                password=None,
                full_name=f"Trần Văn {n}",
            )
            person = person_register(
                user=user, national_id=f"0791{n:08d}", full_name=f"Trần Văn {n}",
                date_of_birth=dt.date(1985, 3, 9), address=f"{n} Đường Lý Thường Kiệt, xã An Bình",
                agency=register,
            )  # fmt: skip
            people.append(person.pk)
    return {"people": people, "jwks": public_jwks()}


def child_commit(spec: dict[str, Any]) -> dict[str, Any]:
    """Commit changes of address through the identity service, `batch` changes per transaction (an
    agency's batch of updates; 1 = each change on its own); returns each change's event id and the
    time its transaction's commit returned."""
    _django()
    from django.db import transaction

    from civicore.agencies.models import Agency
    from civicore.exchange.models import ChangeEvent
    from civicore.identity.models import Person
    from civicore.identity.services import profile_item_record

    register = Agency.objects.get(code="bench-population")
    people = list(Person.objects.filter(pk__in=spec["people"]))
    batch = max(1, spec.get("batch") or 1)
    committed: list[tuple[str, float]] = []
    for start in range(0, spec["changes"], batch):
        if spec.get("pace"):
            time.sleep(spec["pace"])
        events = []
        with transaction.atomic():
            for n in range(start, min(start + batch, spec["changes"])):
                person = people[n % len(people)]
                profile_item_record(
                    person=person, key=ITEM, value=f"{spec['tag']}-{n} Đường Nguyễn Huệ, phường Bến Nghé",
                    agency=register,
                )  # fmt: skip
                events.append(
                    ChangeEvent.objects.filter(person=person).order_by("-id").values_list("uuid")[0][0]
                )
        at = time.time()
        committed.extend((str(event), at) for event in events)
    return {"committed": committed}


def child_baseline(spec: dict[str, Any]) -> dict[str, Any]:
    """The same deliveries without the database: build, sign and POST each with the worker's own
    sender (same threads, same connections per receiver)."""
    _django()
    import uuid

    from civicore.exchange import dispatcher, selectors
    from civicore.exchange.transport import HttpTransport, Outgoing
    from civicore.identity.models import ProfileItem

    item = ProfileItem.objects.select_related("agency").filter(key=ITEM).first()
    urls = [f"http://127.0.0.1:{port}/hooks/civicore" for port in spec["ports"]]
    transport = HttpTransport()
    done = threading.Semaphore(0)
    failures = [0]

    def finished(response: Any) -> None:
        if response.status != 200:
            failures[0] += 1
        done.release()

    requests = []
    for n in range(spec["changes"]):
        event = selectors.EventData(
            str(uuid.uuid4()), item.person_id, dt.datetime.now(dt.UTC), "agency.update", "079100000001"
        )  # type: ignore[union-attr]  # noqa: E501
        body = dispatcher.body_for(event, [ITEM], {(item.person_id, ITEM): item})  # type: ignore[union-attr]
        for a, url in enumerate(urls):
            requests.append((f"base_{spec['tag']}_{n}_{a}", url, body))
    from civicore.core.jose import signing_key
    from civicore.exchange import signing

    key = signing_key("EdDSA")

    def signer(msg_id: str, body: bytes) -> Any:
        return lambda: signing.sign_headers(
            private_key=key.private_key, key_id=str(key.kid), msg_id=msg_id, timestamp=int(time.time()), body=body,  # type: ignore[arg-type]  # noqa: E501
        )  # fmt: skip

    started = time.time()
    for msg_id, url, body in requests:  # signed as they are sent, as the worker does
        transport.submit(Outgoing(0, url, {}, body, signer(msg_id, body)), finished)
    for _ in requests:
        done.acquire()
    transport.close()
    return {
        "started": started,
        "sent": len(requests),
        "failures": failures[0],
        "body_bytes": len(requests[0][2]),
    }


def child_proof(spec: dict[str, Any]) -> dict[str, Any]:
    _django()
    from civicore.audit.models import AuditEntry
    from civicore.exchange.models import ChangeEvent, Delivery
    from civicore.registry.models import MessageLogEntry

    statuses = {s: Delivery.objects.filter(status=s).count() for s in ("pending", "delivered", "dead")}
    return {
        "change_events": ChangeEvent.objects.count(),
        "deliveries": statuses,
        "audit_delivered": AuditEntry.objects.filter(action="exchange.change.delivered").count(),
        "message_log_out": MessageLogEntry.objects.filter(operation="change.deliver").count(),
        "receipts_sent": ChangeEvent.objects.filter(receipt_sent_at__isnull=False).count(),
    }


def child_ids(spec: dict[str, Any]) -> dict[str, Any]:
    """webhook-id -> event id, for the deliveries of the given events."""
    _django()
    from civicore.exchange.models import Delivery

    rows = Delivery.objects.filter(event__uuid__in=spec["events"]).values_list("webhook_id", "event__uuid")
    return {"ids": {webhook_id: str(event) for webhook_id, event in rows}}


CHILDREN = {
    "seed": child_seed,
    "commit": child_commit,
    "baseline": child_baseline,
    "proof": child_proof,
    "ids": child_ids,
}


def in_child(step: str, spec: dict[str, Any], env: dict[str, str], work: Path) -> dict[str, Any]:
    spec_file = work / f"{step}-in.json"
    out_file = work / f"{step}-out.json"
    spec_file.write_text(json.dumps(spec), encoding="utf-8")
    run([sys.executable, str(Path(__file__).resolve()), "--child", step, str(spec_file), str(out_file)], env)
    return json.loads(out_file.read_text(encoding="utf-8"))  # type: ignore[no-any-return]


# --- figures ---------------------------------------------------------------------------------


class CpuMeter:
    """CPU seconds used by the worker (job loop and dispatcher processes), the receivers, the
    bench database's PostgreSQL backends and the whole machine, from /proc (Linux only)."""

    def __init__(self, worker_pid: int, receivers_pid: int, database: str) -> None:
        self.worker_pid, self.receivers_pid, self.database = worker_pid, receivers_pid, database
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
        groups = {"worker_jobs": 0.0, "worker_dispatcher": 0.0, "receivers": 0.0, "postgres": 0.0}
        for entry in Path("/proc").iterdir():
            if not entry.name.isdigit():
                continue
            pid = int(entry.name)
            parent, seconds = self._stat(pid)
            if pid == self.worker_pid:
                groups["worker_jobs"] += seconds
            elif parent == self.worker_pid:
                groups["worker_dispatcher"] += seconds
            elif pid == self.receivers_pid:
                groups["receivers"] += seconds
            else:
                try:
                    title = (entry / "cmdline").read_bytes()
                except OSError:
                    continue
                if title.startswith(b"postgres:") and self.database.encode() in title:
                    groups["postgres"] += seconds
        cpu = Path("/proc/stat").read_text().splitlines()[0].split()[1:]
        busy = sum(int(v) for i, v in enumerate(cpu[:8]) if i not in (3, 4))  # all but idle, iowait
        groups["machine_busy"] = busy / self.tick
        return groups

    @staticmethod
    def used(before: dict[str, float], after: dict[str, float]) -> dict[str, float]:
        return {key: round(after[key] - before.get(key, 0.0), 2) for key in after}


def latency_figures(latencies: list[float]) -> dict[str, Any]:
    ordered = sorted(latencies)
    return {
        "p50_ms": round((percentile(ordered, 0.50) or 0) * 1000, 1),
        "p99_ms": round((percentile(ordered, 0.99) or 0) * 1000, 1),
        "max_ms": round((ordered[-1] if ordered else 0) * 1000, 1),
    }


def worker_round(
    receivers: Receivers,
    env: dict[str, str],
    work: Path,
    people: list[int],
    changes: int,
    agencies: int,
    tag: str,
    batch: int,
    meter: CpuMeter | None = None,
) -> dict[str, Any]:
    receivers.ask("take")
    total = changes * agencies
    spec = {"people": people, "changes": changes, "tag": tag, "batch": batch}
    committed = in_child("commit", spec, env, work)["committed"]
    before = meter.snapshot() if meter else {}
    receivers.wait_for(total, timeout=600)
    cpu = CpuMeter.used(before, meter.snapshot()) if meter else {}
    arrivals, invalid = receivers.ask("take")
    ids = in_child("ids", {"events": [event for event, _ in committed]}, env, work)["ids"]
    commit_at = dict(committed)
    first_ack: dict[str, float] = {}
    for webhook_id, at in arrivals:
        if webhook_id in ids and webhook_id not in first_ack:
            first_ack[webhook_id] = at
    latencies = [at - commit_at[ids[webhook_id]] for webhook_id, at in first_ack.items()]
    first_commit = min(at for _, at in committed)
    last_commit = max(at for _, at in committed)
    last_ack = max(first_ack.values())
    return {
        "deliveries": len(first_ack),
        "expected": total,
        "duplicates": len(arrivals) - len(first_ack),
        "invalid_signatures": invalid,
        "commit_seconds": round(last_commit - first_commit, 3),
        "seconds": round(last_ack - first_commit, 3),
        "deliveries_per_s": round(len(first_ack) / (last_ack - first_commit), 1),
        **latency_figures(latencies),
        # CPU seconds used from the last commit to the last acknowledgement (with batch=all: the
        # whole delivery); other engineers' processes show in machine_busy only.
        "cpu_seconds": cpu,
    }


def baseline_round(
    receivers: Receivers, env: dict[str, str], work: Path, ports: list[int], changes: int, tag: str
) -> dict[str, Any]:
    receivers.ask("take")
    result = in_child("baseline", {"ports": ports, "changes": changes, "tag": tag}, env, work)
    arrivals, invalid = receivers.ask("take")
    started = result["started"]
    last = max(at for _, at in arrivals)
    return {
        "deliveries": len(arrivals),
        "failures": result["failures"],
        "invalid_signatures": invalid,
        "body_bytes": result["body_bytes"],
        "seconds": round(last - started, 3),
        "deliveries_per_s": round(len(arrivals) / (last - started), 1),
        # Every request is "committed" at the start of the loop, as a burst of changes is.
        **latency_figures([at - started for _, at in arrivals]),
    }


def start_worker(env: dict[str, str], log: Path, args: list[str]) -> subprocess.Popen[bytes]:
    with log.open("ab") as handle:
        return subprocess.Popen(
            [sys.executable, "-m", "civicore", "worker", *args], env=env, cwd=REPO, stdout=handle,
            stderr=subprocess.STDOUT, start_new_session=True,
        )  # fmt: skip


def stop_worker(worker: subprocess.Popen[bytes] | None) -> int | None:
    if worker is None or worker.poll() is not None:
        return worker.returncode if worker else None
    worker.send_signal(signal.SIGTERM)
    try:
        return worker.wait(timeout=30)
    except subprocess.TimeoutExpired:
        os.killpg(worker.pid, signal.SIGKILL)
        return worker.wait()


def _interrupt(signum: int, frame: Any) -> None:
    raise KeyboardInterrupt


def print_table(rounds: list[dict[str, Any]], medians: dict[str, Any]) -> None:
    head = (
        f"{'round':>6} | {'baseline del/s':>14} {'p50 ms':>8} {'p99 ms':>8} | "
        f"{'worker del/s':>12} {'p50 ms':>8} {'p99 ms':>8} | {'ratio':>6}"
    )
    print(head)
    print("-" * len(head))

    def line(label: str, b: dict[str, Any], w: dict[str, Any], r: Any) -> str:
        return (
            f"{label:>6} | {b['deliveries_per_s']!s:>14} {b['p50_ms']!s:>8} {b['p99_ms']!s:>8} | "
            f"{w['deliveries_per_s']!s:>12} {w['p50_ms']!s:>8} {w['p99_ms']!s:>8} | {r!s:>6}"
        )

    for i, rnd in enumerate(rounds, 1):
        print(line(str(i), rnd["baseline"], rnd["worker"], rnd["ratio"]))
    print("-" * len(head))
    print(line("median", medians["baseline"], medians["worker"], medians["ratio"]))


def benchmark(args: argparse.Namespace) -> int:
    signal.signal(signal.SIGINT, _interrupt)
    signal.signal(signal.SIGTERM, _interrupt)
    admin_url = os.environ.get("BENCH_POSTGRES_URL", "postgres://postgres@127.0.0.1:5432/postgres")
    admin_url, database_url = database_urls(admin_url, args.database)
    work = Path(tempfile.mkdtemp(prefix="civicore-bench-fanout-"))
    env = child_env(work / "var", database_url, 600)
    receivers: Receivers | None = None
    workers: list[subprocess.Popen[bytes]] = []
    try:
        print(f"Preparing database {args.database} ...", flush=True)
        recreate_database(admin_url, args.database)
        run([sys.executable, "-m", "civicore", "migrate", "--no-input", "--verbosity", "0"], env)
        receivers = Receivers(args.agencies)
        ports = receivers.ports
        seeded = in_child("seed", {"ports": ports, "citizens": args.citizens}, env, work)
        if args.verify:
            receivers.ask(seeded["jwks"])
        people = seeded["people"]
        worker_env = {
            **env,
            "EXCHANGE_SENDER_THREADS": str(args.threads),
            "EXCHANGE_CONNECTIONS_PER_RECEIVER": str(args.connections),
        }
        env = worker_env  # the baseline's sender reads the same settings
        log = work / "worker.log"
        workers = [start_worker(worker_env, log, [])]
        meter = CpuMeter(workers[0].pid, receivers.process.pid or 0, args.database)
        print(
            f"{args.agencies} subscribed agencies with a receiver each, {len(people)} citizens; "
            f"`civicore worker` with {args.threads} sender threads, {args.connections} connections per "
            f"receiver; {args.runs} rounds of {args.changes} changes ({args.changes * args.agencies} "
            f"deliveries); signatures {'checked' if args.verify else 'not checked'} by the receivers.",
            flush=True,
        )
        warm = max(10, args.changes // 10)
        worker_round(receivers, env, work, people, warm, args.agencies, "warm", args.batch or warm)
        baseline_round(receivers, env, work, ports, warm, "warm")

        rounds = []
        for i in range(args.runs):
            measured = worker_round(
                receivers, env, work, people, args.changes, args.agencies, f"r{i}",
                args.batch or args.changes, meter,
            )  # fmt: skip
            base = baseline_round(receivers, env, work, ports, args.changes, f"r{i}")
            rounds.append(
                {
                    "worker": measured,
                    "baseline": base,
                    "ratio": ratio(measured["deliveries_per_s"], base["deliveries_per_s"]),
                }
            )
            print(
                f"  round {i + 1}: worker {measured['deliveries_per_s']} deliveries/s "
                f"(p50 {measured['p50_ms']} ms, p99 {measured['p99_ms']} ms), "
                f"baseline {base['deliveries_per_s']}/s",
                flush=True,
            )
        receivers.ask("take")
        paced = in_child(
            "commit", {"people": people, "changes": args.paced, "tag": "paced", "pace": args.pace}, env, work
        )["committed"]
        receivers.wait_for(args.paced * args.agencies, timeout=120)
        arrivals, _invalid = receivers.ask("take")
        ids = in_child("ids", {"events": [event for event, _ in paced]}, env, work)["ids"]
        commit_at = dict(paced)
        idle = latency_figures([at - commit_at[ids[w]] for w, at in arrivals if w in ids])
        print(
            f"  one change at a time ({args.paced} changes, {args.pace}s apart): "
            f"p50 {idle['p50_ms']} ms, p99 {idle['p99_ms']} ms"
        )

        time.sleep(2.5)  # let the worker seal the last audit entries and send the last receipts
        worker_exit = max((stop_worker(w) or 0) for w in workers)
        workers = []
        medians: dict[str, Any] = {
            side: {
                key: median([r[side][key] for r in rounds])
                for key in ("deliveries_per_s", "p50_ms", "p99_ms")
            }
            for side in ("worker", "baseline")
        }
        medians["ratio"] = median([r["ratio"] for r in rounds])
        print()
        print_table(rounds, medians)

        proof = in_child("proof", {}, env, work)
        committed = warm + args.changes * args.runs + args.paced
        expected = committed * args.agencies
        ok = (
            proof["deliveries"]["delivered"] == expected
            and proof["audit_delivered"] >= expected
            and proof["message_log_out"] == proof["audit_delivered"]
            and all(r["worker"]["deliveries"] == r["worker"]["expected"] for r in rounds)
        )
        print(
            f"\nWork done: {committed} changes committed, {expected} deliveries expected; database holds "
            f"{proof['deliveries']} deliveries, {proof['audit_delivered']} `exchange.change.delivered` audit "
            f"entries, {proof['message_log_out']} message-log entries, {proof['receipts_sent']} receipts sent"
            + (" - all as expected." if ok else " - MISMATCH.")
        )
        audit_verify = audit_check(env, seal=False)  # the worker sealed them
        print(f"worker exit {worker_exit}")

        report = {
            "benchmark": "fanout",
            "timestamp": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
            "parameters": {
                "agencies": args.agencies,
                "changes_per_round": args.changes,
                "runs": args.runs,
                "citizens": args.citizens,
                "sender_threads": args.threads,
                "connections_per_receiver": args.connections,
                "receivers_verify_signatures": args.verify,
                "paced_changes": args.paced,
                "pace_s": args.pace,
            },  # fmt: skip
            "machine": facts(database_url),
            "rounds": rounds,
            "median": medians,
            "one_change_at_a_time": idle,
            "verification": {
                "changes_committed": committed,
                "deliveries_expected": expected,
                **proof,
                "as_expected": ok,
                "audit_verify": audit_verify,
                "worker_exit": worker_exit,
            },
        }
        write_report(args.output, report)
        return 0
    except KeyboardInterrupt:
        print("\nInterrupted; stopping the worker and the receivers.", file=sys.stderr)
        return 130
    finally:
        for w in workers:
            stop_worker(w)
        if receivers is not None:
            receivers.stop()
        shutil.rmtree(work, ignore_errors=True)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--agencies", type=int, default=20, help="subscribed agencies, one receiver each")
    parser.add_argument("--changes", type=int, default=500, help="changes committed per round")
    parser.add_argument("--runs", type=int, default=3, help="rounds of worker + baseline")
    parser.add_argument(
        "--batch", type=int, default=0,
        help="changes per committed transaction (default: the whole round in one; 1: one each)",
    )  # fmt: skip
    parser.add_argument("--citizens", type=int, default=100, help="citizens whose address changes")
    parser.add_argument("--threads", type=int, default=32, help="sender threads (worker and baseline)")
    parser.add_argument("--connections", type=int, default=4, help="keep-alive connections per receiver")
    parser.add_argument("--paced", type=int, default=40, help="changes committed one at a time at the end")
    parser.add_argument("--pace", type=float, default=0.1, help="seconds between the paced changes")
    parser.add_argument("--verify", action="store_true", help="receivers check every signature")
    parser.add_argument("--database", default="civicore_bench_fanout", help="database to drop and recreate")
    parser.add_argument("--output", type=Path, default=RESULTS)
    return parser.parse_args(argv)


if __name__ == "__main__":
    if len(sys.argv) == 5 and sys.argv[1] == "--child":
        result = CHILDREN[sys.argv[2]](json.loads(Path(sys.argv[3]).read_text(encoding="utf-8")))
        Path(sys.argv[4]).write_text(json.dumps(result), encoding="utf-8")
        sys.exit(0)
    sys.exit(benchmark(parse_args()))
