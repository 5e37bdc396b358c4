"""Sending webhook requests: the Transport protocol, the real HTTP one and an in-process fake.

HttpTransport sends from a pool of threads with http.client and keeps a few keep-alive
connections per receiver (scheme, host, port). A receiver never has more than
EXCHANGE_CONNECTIONS_PER_RECEIVER requests in flight; the rest wait in its own queue, so a slow or
hanging receiver holds at most that many threads and never delays the others.
"""

from __future__ import annotations

import hashlib
import http.client
import logging
import socket
import ssl
import threading
import time
from collections import deque
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Protocol
from urllib.parse import urlsplit

from django.utils.module_loading import import_string

from civicore.exchange import conf

logger = logging.getLogger(__name__)

USER_AGENT = "Civicore-Webhooks/1.0"
# Receivers answer with a short acknowledgement; anything longer is cut (and the connection
# dropped rather than reused).
MAX_RESPONSE_BYTES = 64 * 1024
_STALE_CONNECTION = (
    http.client.RemoteDisconnected,
    BrokenPipeError,
    ConnectionResetError,
    ConnectionAbortedError,
)


@dataclass(slots=True)
class Outgoing:
    delivery_id: int
    url: str
    headers: dict[str, str]
    body: bytes
    # Called just before the request goes out, for headers that must be fresh then (the signed
    # timestamp: a request may wait behind a slow receiver for a while).
    sign: Callable[[], dict[str, str]] | None = None


@dataclass(slots=True)
class Response:
    delivery_id: int
    status: int | None  # None: no HTTP answer (refused, timed out, broken)
    error: str
    finished_at: float  # time.time() when the answer (or failure) came
    response_digest: str = ""


Done = Callable[[Response], None]


class Transport(Protocol):
    def submit(self, request: Outgoing, done: Done) -> None:
        """Send `request` (now or when the receiver has a free connection); call `done` once."""

    def close(self) -> None:
        """Finish what was submitted and release connections."""


def transport_from_settings() -> Transport:
    cls = import_string(conf.get_str("EXCHANGE_TRANSPORT"))
    return cls()  # type: ignore[no-any-return]


@dataclass(frozen=True, slots=True)
class _Target:
    scheme: str
    host: str
    port: int
    path: str


@lru_cache(maxsize=4096)
def _target(url: str) -> _Target:
    parts = urlsplit(url)
    scheme = parts.scheme.lower()
    default_port = 443 if scheme == "https" else 80
    path = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    return _Target(scheme, parts.hostname or "", parts.port or default_port, path)


@dataclass
class _Receiver:
    target: _Target
    active: int = 0
    waiting: deque[tuple[Outgoing, Done]] = field(default_factory=deque)
    idle: list[http.client.HTTPConnection] = field(default_factory=list)


def _describe(exc: BaseException) -> str:
    if isinstance(exc, TimeoutError | socket.timeout):
        return "timeout"
    if isinstance(exc, ConnectionRefusedError):
        return "connection refused"
    text = str(exc) or type(exc).__name__
    return f"{type(exc).__name__}: {text}"[:500]


class HttpTransport:
    def __init__(
        self,
        *,
        threads: int | None = None,
        per_receiver: int | None = None,
        timeout: float | None = None,
    ) -> None:
        self.threads = threads or conf.get_int("EXCHANGE_SENDER_THREADS")
        self.per_receiver = per_receiver or conf.get_int("EXCHANGE_CONNECTIONS_PER_RECEIVER")
        self.timeout = timeout or conf.get_float("EXCHANGE_TIMEOUT_SECONDS")
        self._executor = ThreadPoolExecutor(self.threads, thread_name_prefix="exchange-send")
        self._receivers: dict[tuple[str, str, int], _Receiver] = {}
        self._lock = threading.Lock()
        self._ssl = ssl.create_default_context()
        self._closing = False

    def submit(self, request: Outgoing, done: Done) -> None:
        try:
            target = _target(request.url)
        except ValueError as exc:
            done(Response(request.delivery_id, None, f"invalid URL: {exc}", time.time()))
            return
        key = (target.scheme, target.host, target.port)
        with self._lock:
            if self._closing:
                return  # never sent: the caller releases it
            receiver = self._receivers.get(key)
            if receiver is None:
                receiver = self._receivers[key] = _Receiver(target)
            if receiver.active >= self.per_receiver:
                receiver.waiting.append((request, done))
                return
            receiver.active += 1
        self._executor.submit(self._run, receiver, request, done)

    def _run(self, receiver: _Receiver, request: Outgoing, done: Done) -> None:
        try:
            response = self._send(receiver, request)
        except Exception as exc:  # a bug here must not lose the delivery: report it as a failure
            logger.exception("webhook send failed unexpectedly")
            response = Response(request.delivery_id, None, _describe(exc), time.time())
        try:
            done(response)
        except Exception:
            logger.exception("webhook outcome callback failed")
        with self._lock:
            if receiver.waiting and not self._closing:
                following = receiver.waiting.popleft()
            else:
                receiver.active -= 1
                return
        # Back through the pool's queue rather than looping here, so receivers take turns.
        self._executor.submit(self._run, receiver, *following)

    def _connect(self, target: _Target) -> http.client.HTTPConnection:
        if target.scheme == "https":
            return http.client.HTTPSConnection(
                target.host, target.port, timeout=self.timeout, context=self._ssl
            )
        return http.client.HTTPConnection(target.host, target.port, timeout=self.timeout)

    def _send(self, receiver: _Receiver, request: Outgoing) -> Response:
        target = receiver.target
        with self._lock:
            conn = receiver.idle.pop() if receiver.idle else None
        reused = conn is not None
        if conn is None:
            conn = self._connect(target)
        headers = {"Content-Type": "application/json", "User-Agent": USER_AGENT, **request.headers}
        if request.sign is not None:
            headers.update(request.sign())
        while True:
            try:
                conn.request("POST", target.path, body=request.body, headers=headers)
                answer = conn.getresponse()
                data = answer.read(MAX_RESPONSE_BYTES)
                status = answer.status
                finished = time.time()
                if answer.will_close or not answer.isclosed():
                    conn.close()
                else:
                    with self._lock:
                        receiver.idle.append(conn)
                return Response(
                    request.delivery_id,
                    status,
                    "" if 200 <= status < 300 else f"HTTP {status}",
                    finished,
                    hashlib.sha256(data).hexdigest() if data else "",
                )
            except _STALE_CONNECTION as exc:
                conn.close()
                if reused:
                    # The receiver closed an idle keep-alive connection: try once on a new one.
                    reused = False
                    conn = self._connect(target)
                    continue
                return Response(request.delivery_id, None, _describe(exc), time.time())
            except (OSError, http.client.HTTPException, ValueError) as exc:
                conn.close()
                return Response(request.delivery_id, None, _describe(exc), time.time())

    def close(self) -> None:
        """Wait for the requests on the wire; drop the queued ones unsent (their `done` is never
        called, so the caller still holds them and can release them)."""
        with self._lock:
            self._closing = True
            for receiver in self._receivers.values():
                receiver.waiting.clear()
        self._executor.shutdown(wait=True, cancel_futures=True)
        with self._lock:
            for receiver in self._receivers.values():
                for conn in receiver.idle:
                    conn.close()
                receiver.idle.clear()


class InProcessTransport:
    """The fake: answers in the caller's thread from handlers registered by URL prefix.

    A handler takes the Outgoing request and returns an HTTP status (or raises OSError to act as
    an unreachable receiver). Unregistered URLs answer 200.
    """

    handlers: dict[str, Callable[[Outgoing], int]] = {}
    sent: list[Outgoing] = []

    @classmethod
    def reset(cls) -> None:
        cls.handlers = {}
        cls.sent = []

    def submit(self, request: Outgoing, done: Done) -> None:
        if request.sign is not None:
            request.headers = {**request.headers, **request.sign()}
        type(self).sent.append(request)
        handler = next((h for prefix, h in self.handlers.items() if request.url.startswith(prefix)), None)
        try:
            status = handler(request) if handler else 200
        except OSError as exc:
            done(Response(request.delivery_id, None, _describe(exc), time.time()))
            return
        error = "" if 200 <= status < 300 else f"HTTP {status}"
        done(Response(request.delivery_id, status, error, time.time()))

    def close(self) -> None:
        return None
