"""Local agency webhook endpoints for tests: real HTTP servers in threads that check every delivery
with civicore.exchange.signing (as an agency would) and remember what they received."""

from __future__ import annotations

import hashlib
import json
import socket
import threading
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from civicore.exchange import signing

# (webhook_id, how many times this id arrived before, including this one) -> HTTP status
Behaviour = Callable[[str, int], int]


def always(status: int) -> Behaviour:
    return lambda webhook_id, seen: status


def unlucky(webhook_id: str) -> bool:
    """Half of all webhook ids, fixed by the id itself."""
    return hashlib.sha256(webhook_id.encode()).digest()[0] % 2 == 0


def fails_half(times: int = 2) -> Behaviour:
    """500 for the first `times` attempts of half the webhook ids, then 200: every delivery gets
    through within times + 1 attempts, and about half of the first attempts fail."""
    return lambda webhook_id, seen: 500 if unlucky(webhook_id) and seen <= times else 200


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 128

    def handle_error(self, request: Any, client_address: Any) -> None:
        # A client that gave up (timed out) closes its end first: not worth a traceback.
        return None


@dataclass
class Arrival:
    webhook_id: str
    status: int
    at: float
    payload: dict[str, Any]
    headers: dict[str, str]
    body: bytes


@dataclass
class Receiver:
    jwks: dict[str, Any]
    behaviour: Behaviour = field(default_factory=lambda: always(200))
    port: int = 0
    delay: float = 0.0
    keep_bodies: bool = True
    arrivals: list[Arrival] = field(default_factory=list)
    seen: Counter[str] = field(default_factory=Counter)
    acknowledged: set[str] = field(default_factory=set)
    invalid: list[str] = field(default_factory=list)
    _server: ThreadingHTTPServer | None = None
    _lock: threading.Lock = field(default_factory=threading.Lock)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/hooks/civicore"

    def start(self) -> Receiver:
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"  # keep-alive, as the dispatcher expects
            # Headers and body go out in two writes; with Nagle's algorithm the second waits for
            # the client's delayed ACK (40 ms per request).
            disable_nagle_algorithm = True

            def do_POST(self) -> None:  # noqa: N802 - http.server's naming
                length = int(self.headers.get("Content-Length", "0"))
                body = self.rfile.read(length)
                if len(body) < length:  # the sender died mid-request (the crash test kills it)
                    self.close_connection = True
                    return
                status = receiver.handle(dict(self.headers.items()), body)
                self.send_response(status)
                self.send_header("Content-Length", "2")
                self.end_headers()
                self.wfile.write(b"ok")

            def log_message(self, format: str, *args: Any) -> None:  # noqa: A002
                return None

        self._server = _Server(("127.0.0.1", self.port), Handler)
        self.port = self._server.server_address[1]
        threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        ).start()
        return self

    def handle(self, headers: dict[str, str], body: bytes) -> int:
        if self.delay:
            time.sleep(self.delay)
        try:
            payload = signing.verify(headers=headers, body=body, jwks=self.jwks)
        except signing.WebhookVerificationError as exc:
            with self._lock:
                self.invalid.append(exc.code)
            return 400
        webhook_id = headers.get("webhook-id") or headers.get("Webhook-Id") or ""
        with self._lock:
            self.seen[webhook_id] += 1
            status = self.behaviour(webhook_id, self.seen[webhook_id])
            if 200 <= status < 300:
                self.acknowledged.add(webhook_id)
            self.arrivals.append(
                Arrival(
                    webhook_id,
                    status,
                    time.time(),
                    payload if self.keep_bodies else {"data": {"event_id": payload["data"]["event_id"]}},
                    headers if self.keep_bodies else {},
                    body if self.keep_bodies else b"",
                )
            )
        return status

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    def event_ids_by_webhook_id(self) -> dict[str, set[str]]:
        found: dict[str, set[str]] = {}
        with self._lock:
            for arrival in self.arrivals:
                found.setdefault(arrival.webhook_id, set()).add(arrival.payload["data"]["event_id"])
        return found


def payload_of(arrival: Arrival) -> dict[str, Any]:
    return json.loads(arrival.body)
