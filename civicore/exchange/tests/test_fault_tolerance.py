"""Crash and recovery with the real worker: 10,000 changes fanned out to a good receiver, one that
fails half its deliveries and one that is down; the worker is SIGKILLed mid fan-out and replaced.

PostgreSQL only: the worker runs as a separate process and must see the test database, which an
in-memory SQLite database cannot share. Run it alone with `pytest -m fault`.
"""

from __future__ import annotations

import io
import os
import signal
import subprocess
import sys
import time
import urllib.parse
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from django.conf import settings
from django.core.management import call_command
from django.db import connection, transaction
from django.db.models import Count

from civicore.audit.models import AuditEntry
from civicore.exchange import services
from civicore.exchange.models import ChangeEvent, Delivery
from civicore.exchange.tests.factories import make_subscriber
from civicore.exchange.tests.receivers import Receiver, always, fails_half, free_port
from civicore.identity.tests.factories import make_citizen
from civicore.notify.models import Notification
from civicore.registry.models import MessageLogEntry

REPO = Path(__file__).resolve().parents[3]
EVENTS = 10_000
PEOPLE = 50
MAX_ATTEMPTS = 3

pytestmark = [
    pytest.mark.fault,
    pytest.mark.django_db(transaction=True),
    pytest.mark.skipif(
        settings.DATABASES["default"]["ENGINE"] != "django.db.backends.postgresql",
        reason="needs PostgreSQL: the worker subprocess must see the test database, "
        "which an in-memory SQLite database cannot share",
    ),
]


def _worker_env() -> dict[str, str]:
    parent = os.environ.get("DATABASE_URL", "postgres://postgres@127.0.0.1:5432/postgres")
    test_db = connection.settings_dict["NAME"]
    url = urllib.parse.urlunsplit(urllib.parse.urlsplit(parent)._replace(path=f"/{test_db}"))
    env = dict(os.environ)
    env.update(
        DJANGO_SETTINGS_MODULE="config.settings.test",
        DATABASE_URL=url,
        EXCHANGE_MAX_ATTEMPTS=str(MAX_ATTEMPTS),
        EXCHANGE_BACKOFF_BASE_SECONDS="0.05",
        EXCHANGE_BACKOFF_MAX_SECONDS="0.5",
        EXCHANGE_LEASE_SECONDS="3",
        EXCHANGE_POLL_SECONDS="0.05",
        EXCHANGE_TIMEOUT_SECONDS="5",
        PYTHONUNBUFFERED="1",
    )
    return env


def _start_worker(log: Path) -> subprocess.Popen[bytes]:
    with log.open("ab") as handle:
        return subprocess.Popen(
            [sys.executable, "-m", "civicore", "worker"],
            cwd=REPO,
            env=_worker_env(),
            stdout=handle,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # its own process group: the worker and its dispatcher process
        )


def _wait(condition: Callable[[], bool], *, timeout: float, what: str, worker: Any, log: Path) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return
        if worker is not None and worker.poll() is not None:
            raise AssertionError(f"the worker exited ({worker.returncode}):\n{log.read_text()[-3000:]}")
        time.sleep(0.2)
    stuck = list(
        Delivery.objects.filter(status=Delivery.Status.PENDING)
        .values_list("application__client_id", "attempts", "last_error")
        .annotate(n=Count("id"))
        .order_by("-n")[:10]
    )
    raise AssertionError(f"timed out waiting for {what}; pending: {stuck}\n{log.read_text()[-3000:]}")


def _pending() -> int:
    return Delivery.objects.filter(status=Delivery.Status.PENDING).count()


def test_every_change_reaches_every_subscriber_through_a_crash_and_replay(jwks, tmp_path):
    started = time.monotonic()
    good = Receiver(jwks=jwks, behaviour=always(200), keep_bodies=False).start()
    flaky = Receiver(jwks=jwks, behaviour=fails_half(times=1), keep_bodies=False).start()
    down_port = free_port()  # nobody listens here until the end
    down = Receiver(jwks=jwks, behaviour=always(200), port=down_port, keep_bodies=False)
    apps = {
        "good": make_subscriber(good.url),
        "flaky": make_subscriber(flaky.url),
        "down": make_subscriber(f"http://127.0.0.1:{down_port}/hooks/civicore"),
    }
    people = [make_citizen() for _ in range(PEOPLE)]
    with transaction.atomic():
        services.change_events_record(
            changes=[
                services.Change(
                    person=people[n % PEOPLE],
                    changes=[{"key": "address", "source": "population-register", "verified_at": None}],
                    cause="agency.update",
                )
                for n in range(EVENTS)
            ]
        )
    expected = {
        name: set(Delivery.objects.filter(application=app).values_list("webhook_id", flat=True))
        for name, app in apps.items()
    }
    assert all(len(ids) == EVENTS for ids in expected.values())
    log = tmp_path / "worker.log"
    phases = {"setup": time.monotonic() - started}
    worker = _start_worker(log)
    try:
        # Mid fan-out: some of the good receiver's deliveries are through, most are not.
        _wait(
            lambda: len(good.acknowledged) >= 2_000,
            timeout=60,
            what="the first deliveries",
            worker=worker,
            log=log,
        )
        os.killpg(worker.pid, signal.SIGKILL)  # the whole worker crashes, dispatcher process included
        worker.wait()
        at_kill = len(good.acknowledged)
        assert at_kill < EVENTS, "the fan-out finished before the worker could be killed"

        phases["until_killed"] = time.monotonic() - started
        worker = _start_worker(log)
        _wait(lambda: _pending() == 0, timeout=150, what="every delivery to settle", worker=worker, log=log)

        assert good.acknowledged >= expected["good"]
        assert flaky.acknowledged >= expected["flaky"]
        assert good.invalid == [] and flaky.invalid == []
        dead = set(Delivery.objects.filter(status=Delivery.Status.DEAD).values_list("webhook_id", flat=True))
        assert dead == expected["down"], "the dead letters are exactly the down receiver's deliveries"
        assert set(Delivery.objects.filter(application=apps["down"]).values_list("attempts", flat=True)) == {
            MAX_ATTEMPTS
        }
        assert Delivery.objects.filter(status=Delivery.Status.DELIVERED).count() == 2 * EVENTS
        # A duplicate (sent by the killed worker, never recorded, sent again) is the same message.
        for receiver in (good, flaky):
            assert all(len(events) == 1 for events in receiver.event_ids_by_webhook_id().values())
        duplicates = sum(n - 1 for n in good.seen.values() if n > 1)
        assert AuditEntry.objects.filter(action="exchange.change.delivered").count() >= 2 * EVENTS
        assert MessageLogEntry.objects.filter(operation="change.deliver").count() >= 2 * EVENTS

        phases["settled"] = time.monotonic() - started
        # The down receiver comes back; an officer replays the dead letters.
        down.start()
        call_command("deliveries", "replay", "--all-dead", stdout=io.StringIO())
        _wait(lambda: _pending() == 0, timeout=90, what="the replayed deliveries", worker=worker, log=log)
        assert down.acknowledged >= expected["down"] and down.invalid == []
        assert not Delivery.objects.filter(status=Delivery.Status.DEAD).exists()
        assert Delivery.objects.filter(status=Delivery.Status.DELIVERED).count() == 3 * EVENTS

        phases["replayed"] = time.monotonic() - started
        # One receipt per change, never two, even across the crash and the replay.
        _wait(
            lambda: not ChangeEvent.objects.filter(receipt_sent_at__isnull=True).exists(),
            timeout=180, what="the receipts", worker=worker, log=log,
        )  # fmt: skip
        assert Notification.objects.filter(link__startswith="/my-data/changes/").count() == EVENTS

        phases["receipts"] = time.monotonic() - started
        worker.send_signal(signal.SIGTERM)
        assert worker.wait(timeout=30) == 0
    finally:
        if worker.poll() is None:
            os.killpg(worker.pid, signal.SIGKILL)
            worker.wait()
        for receiver in (good, flaky, down):
            receiver.stop()
    print(
        f"\nfault test: {EVENTS} changes x 3 subscribers in {time.monotonic() - started:.1f}s; killed after "
        f"{at_kill} good deliveries; {duplicates} duplicate deliveries to the good receiver; "
        f"flaky receiver answered {sum(flaky.seen.values())} requests for {EVENTS} deliveries; "
        f"phases (s since start): { {k: round(v, 1) for k, v in phases.items()} }"
    )
