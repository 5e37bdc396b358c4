"""The delivery engine that `civicore worker` runs beside its job loop (in a process of its own).

The dispatcher claims due deliveries in batches (leased, SKIP LOCKED), builds their requests,
hands them to the Transport (sender threads, keep-alive pools per receiver; each request signed
as it goes out) and, as answers come back, records them in bulk. While deliveries are queued or
in flight their lease is renewed; a worker that dies simply lets its leases run out. Idle, it
waits for a PostgreSQL NOTIFY from a commit that created deliveries, or polls.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import os
import queue
import socket
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from django.db import connection

from civicore.core.jose import signing_key
from civicore.exchange import conf, selectors, services, signing
from civicore.exchange.models import ChangeEvent
from civicore.exchange.transport import Outgoing, Response, Transport, transport_from_settings
from civicore.identity import items as item_registry

logger = logging.getLogger(__name__)

EVENT_TYPE = "person.changed"
# Payment events are sent as their own type, recorded with the event: services.PAYMENT_EVENT_TYPES
# (payment.paid, payment.refunded, payment.held).
# Queued deliveries per receiver before the worker stops claiming more for it (in connections).
BACKLOG_PER_CONNECTION = 32
STATS_EVERY_SECONDS = 10.0


def _iso(value: dt.datetime | None) -> str | None:
    if value is None:
        return None
    return value.astimezone(dt.UTC).isoformat().replace("+00:00", "Z")


def _item_out(key: str, item: Any) -> dict[str, Any]:
    try:
        value = item_registry.get(key).type.parse(item.value)
    except item_registry.UnknownItem:
        value = item.value
    agency = item.agency
    return {
        "value": value,
        "source": {
            "kind": item.source_kind,
            "agency": agency.code if agency else None,
            "agency_name": {"vi": agency.name_vi, "en": agency.name_en} if agency else None,
        },
        "verified_at": _iso(item.verified_at),
    }


def body_for(event: selectors.EventData, items: list[str], values: dict[tuple[int, str], Any]) -> bytes:
    """The JSON a subscriber receives: the event, the person's national ID number and, for each
    changed item it may receive, its current value, source and verification time, in the shape
    the person-query API answers (null when the person no longer holds the item)."""
    data: dict[str, Any] = {}
    for key in items:
        item = values.get((event.person_id, key))
        data[key] = _item_out(key, item) if item is not None else None
    payload = {
        "type": EVENT_TYPE,
        "timestamp": _iso(event.created_at),
        "data": {
            "event_id": event.uuid,
            "occurred_at": _iso(event.created_at),
            "cause": event.cause,
            "person": {"national_id": event.national_id},
            "items": data,
        },
    }
    return json.dumps(payload, ensure_ascii=False, separators=(",", ":")).encode()


def payment_body_for(event: selectors.EventData) -> bytes:
    """The JSON a subscriber of payment events receives: the payload written with the event (the
    payment as the ledger had it then, never read again) and the payer's national ID number,
    as profile changes carry the person's."""
    data = dict(event.data)
    event_type = data.pop("type")
    payload = {
        "type": event_type,
        "timestamp": _iso(event.created_at),
        "data": {
            "event_id": event.uuid,
            **data,
            "person": {"national_id": event.national_id},
        },
    }
    return json.dumps(payload, ensure_ascii=False, separators=(",", ":")).encode()


def _signer(
    private_key: Ed25519PrivateKey, kid: str, msg_id: str, body: bytes
) -> Callable[[], dict[str, str]]:
    """Signs when called, so webhook-timestamp is the moment the request is sent."""

    def sign() -> dict[str, str]:
        return signing.sign_headers(
            private_key=private_key, key_id=kid, msg_id=msg_id, timestamp=int(time.time()), body=body
        )

    return sign


@dataclass(slots=True)
class _InFlight:
    claimed: services.Claimed
    application: selectors.ApplicationData
    event: selectors.EventData
    items: list[str]
    request_digest: str


class Dispatcher:
    def __init__(self, *, transport: Transport | None = None, worker_id: str = "") -> None:
        self.transport = transport or transport_from_settings()
        self.worker_id = worker_id or f"{socket.gethostname()}:{os.getpid()}:deliveries"
        self.batch = conf.get_int("EXCHANGE_CLAIM_BATCH")
        self.max_in_flight = max(conf.get_int("EXCHANGE_MAX_IN_FLIGHT"), self.batch)
        self.backlog_per_receiver = conf.get_int("EXCHANGE_CONNECTIONS_PER_RECEIVER") * BACKLOG_PER_CONNECTION
        self.lease_seconds = conf.get_float("EXCHANGE_LEASE_SECONDS")
        self.poll_seconds = conf.get_float("EXCHANGE_POLL_SECONDS")
        self._results: queue.SimpleQueue[Response | services.Attempt] = queue.SimpleQueue()
        self._in_flight: dict[int, _InFlight] = {}
        self._per_application: Counter[int] = Counter()
        self._unrecorded: list[services.Attempt] = []
        self._listener: Any = None
        self._last_renewal = time.monotonic()
        self.stats: Counter[str] = Counter()

    # --- one step at a time (tests drive these directly) ---

    def claim_and_send(self) -> int:
        """Claim what is due (within the in-flight limits) and submit it; returns how many."""
        room = self.max_in_flight - len(self._in_flight)
        if room <= 0:
            return 0
        saturated = [app for app, n in self._per_application.items() if n >= self.backlog_per_receiver]
        claimed = services.deliveries_claim(
            worker_id=self.worker_id, limit=min(self.batch, room), skip_applications=saturated
        )
        if not claimed:
            return 0
        events, applications, values = selectors.batch_context(
            event_ids=(c.event_id for c in claimed),
            application_ids=(c.application_id for c in claimed),
            keys={key for c in claimed for key in c.items},
        )
        key = signing_key("EdDSA")
        private_key, kid = key.private_key, str(key.kid)
        if not isinstance(private_key, Ed25519PrivateKey):
            raise TypeError("The EdDSA platform key is not an Ed25519 private key")
        bodies: dict[tuple[int, tuple[str, ...]], tuple[bytes, str]] = {}
        outgoing: list[Outgoing] = []
        for c in claimed:
            if c.id in self._in_flight:
                continue  # still ours: its lease ran out while it waited, and we claimed it again
            event = events.get(c.event_id)
            application = applications.get(c.application_id)
            if event is None or application is None:
                continue  # deleted since: nothing left to send
            payment = event.kind == ChangeEvent.Kind.PAYMENT
            if payment:
                # Only to a system of the payment's own agency that still asks for payments.
                items: list[str] = []
                withdrawn = not application.payment_events or application.agency_id != event.agency_id
            else:
                items = [k for k in c.items if k in application.allowed_items]
                withdrawn = not items
            flight = _InFlight(c, application, event, items, "")
            self._in_flight[c.id] = flight
            self._per_application[c.application_id] += 1
            if not application.active or not application.webhook_url or withdrawn:
                reason = (
                    "application withdrawn" if withdrawn else "application inactive or without a webhook URL"
                )
                self._results.put(self._attempt(flight, None, reason, time.time(), permanent=True))
                continue
            cache_key = (c.event_id, tuple(items))
            if cache_key not in bodies:
                body = payment_body_for(event) if payment else body_for(event, items, values)
                bodies[cache_key] = (body, services.sha256(body))
            body, digest = bodies[cache_key]
            flight.request_digest = digest
            outgoing.append(
                Outgoing(
                    c.id, application.webhook_url, {}, body, _signer(private_key, kid, c.webhook_id, body)
                )
            )
        for request in outgoing:
            self.transport.submit(request, self._results.put)
        self.stats["claimed"] += len(claimed)
        return len(claimed)

    def _attempt(
        self, flight: _InFlight, status: int | None, error: str, finished: float, *, digest: str = "",
        permanent: bool = False,
    ) -> services.Attempt:  # fmt: skip
        return services.Attempt(
            delivery_id=flight.claimed.id,
            attempts_before=flight.claimed.attempts,
            status=status,
            error=error,
            finished_at=dt.datetime.fromtimestamp(finished, tz=dt.UTC),
            application_id=flight.claimed.application_id,
            agency_id=flight.application.agency_id,
            client_id=flight.application.client_id,
            person_id=flight.event.person_id,
            event_uuid=flight.event.uuid,
            items=flight.items,
            webhook_id=flight.claimed.webhook_id,
            request_digest=flight.request_digest,
            response_digest=digest,
            permanent=permanent,
            event_kind=flight.event.kind,
        )

    def record_results(self) -> int:
        """Write every answer received so far, in one transaction; returns how many."""
        attempts = self._unrecorded
        self._unrecorded = []
        pending: list[Response | services.Attempt] = []
        while True:
            try:
                pending.append(self._results.get_nowait())
            except queue.Empty:
                break
        for item in pending:
            if isinstance(item, services.Attempt):
                attempts.append(item)
                continue
            flight = self._in_flight.get(item.delivery_id)
            if flight is not None:
                attempts.append(
                    self._attempt(
                        flight, item.status, item.error, item.finished_at, digest=item.response_digest
                    )
                )
        if not attempts:
            return 0
        try:
            services.deliveries_record(attempts=attempts)
        except Exception:
            self._unrecorded = attempts  # kept (and the leases renewed) until the database is back
            raise
        for a in attempts:
            if self._in_flight.pop(a.delivery_id, None) is not None:
                self._per_application[a.application_id] -= 1
                if self._per_application[a.application_id] <= 0:
                    del self._per_application[a.application_id]
            self.stats["confirmed" if a.confirmed else "failed"] += 1
        return len(attempts)

    def renew_leases(self, *, force: bool = False) -> None:
        if not force and time.monotonic() - self._last_renewal < self.lease_seconds / 3:
            return
        self._last_renewal = time.monotonic()
        if self._in_flight:
            services.deliveries_lease_renew(worker_id=self.worker_id, ids=list(self._in_flight))

    @property
    def in_flight(self) -> int:
        return len(self._in_flight)

    # --- the loop ---

    def run(self, *, stop: Callable[[], bool] = lambda: False, until_idle: bool = False) -> int:
        """Deliver until `stop()` (or, with until_idle, until nothing is due or in flight).
        Returns how many answers were recorded."""
        last_stats = time.monotonic()
        try:
            while not stop():
                try:
                    recorded = self.record_results()
                    self.renew_leases()
                    claimed = self.claim_and_send()
                except Exception:
                    logger.exception("delivery dispatcher step failed; retrying in a second")
                    self._reset_database()
                    time.sleep(1.0)
                    continue
                if until_idle and not claimed and not recorded and not self._in_flight:
                    break
                if not claimed and not recorded:
                    if self._in_flight:
                        self._wait_for_answers(0.05)
                    else:
                        self._idle_wait(self.poll_seconds)
                if time.monotonic() - last_stats >= STATS_EVERY_SECONDS:
                    last_stats = time.monotonic()
                    self._log_stats()
        finally:
            self._shutdown()
        return self.stats["confirmed"] + self.stats["failed"]

    def _wait_for_answers(self, seconds: float) -> None:
        try:
            self._results.put(self._results.get(timeout=seconds))  # only waits; recorded next step
        except queue.Empty:
            pass

    def _idle_wait(self, seconds: float) -> None:
        if connection.vendor != "postgresql":
            time.sleep(seconds)
            return
        try:
            if self._listener is None:
                self._listener = connection.get_new_connection(connection.get_connection_params())
                self._listener.autocommit = True
                self._listener.execute(f"LISTEN {services.NOTIFY_CHANNEL}")
            for _ in self._listener.notifies(timeout=seconds, stop_after=1):
                pass
        except Exception:
            logger.warning("LISTEN for deliveries failed; polling instead", exc_info=True)
            self._close_listener()
            time.sleep(seconds)

    def _close_listener(self) -> None:
        if self._listener is not None:
            try:
                self._listener.close()
            except Exception:  # noqa: S110 - already broken, nothing more to do
                pass
            self._listener = None

    def _reset_database(self) -> None:
        try:
            connection.close()
        except Exception:  # noqa: S110 - the next query reconnects
            pass

    def _log_stats(self) -> None:
        logger.info(
            "deliveries: %s claimed, %s confirmed, %s failed attempts, %s in flight",
            self.stats["claimed"], self.stats["confirmed"], self.stats["failed"], len(self._in_flight),
        )  # fmt: skip

    def _shutdown(self) -> None:
        """Let requests already on the wire finish and record them; what was claimed but never
        sent is released for another worker at once instead of waiting for its lease."""
        self.transport.close()
        try:
            self.record_results()
            if self._in_flight:
                services.deliveries_release(worker_id=self.worker_id, ids=list(self._in_flight))
        except Exception:
            logger.exception("could not record the last answers; their leases will run out")
        self._close_listener()
