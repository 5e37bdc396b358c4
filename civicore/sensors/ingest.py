"""`civicore sensors ingest`: the MQTT side of ingestion.

Each process joins the shared subscription `$share/<group>/civicore/v1/devices/+/senml` (and the
acknowledgements topic), so the broker spreads devices' messages over however many processes
run. Messages arrive at QoS 1 on a persistent session and are acknowledged to the broker only
after their batch is committed: a process killed mid-batch leaves its messages unacknowledged,
the broker delivers them again, and the readings' key makes the second copy a no-op. A batch
that fails to store (the database is away) is retried, never dropped.
"""

from __future__ import annotations

import logging
import os
import socket
import ssl
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import paho.mqtt.client as mqtt
from django.conf import settings
from django.db import close_old_connections

from civicore.sensors import pipeline
from civicore.sensors.storage import Batch

logger = logging.getLogger(__name__)

TOPIC_PREFIX = "civicore/v1/devices/"
SENML_FILTER = "civicore/v1/devices/+/senml"
ACKS_FILTER = "civicore/v1/devices/+/acks"
TICK_SECONDS = 1.0


@dataclass(frozen=True)
class BrokerAddress:
    host: str
    port: int
    username: str
    password: str
    tls: bool


def broker_address(url: str | None = None) -> BrokerAddress:
    """Where the broker is (MQTT_URL) and who the platform is there (broker.platform_credentials)."""
    from civicore.sensors.broker import platform_credentials

    parts = urlsplit(url or settings.MQTT_URL)
    if parts.scheme not in ("mqtt", "mqtts") or not parts.hostname:
        raise ValueError("MQTT_URL must look like mqtt://host:1883 or mqtts://host:8883")
    username, password = platform_credentials(url or settings.MQTT_URL)
    tls = parts.scheme == "mqtts"
    return BrokerAddress(parts.hostname, parts.port or (8883 if tls else 1883), username, password, tls)


@dataclass(frozen=True, slots=True)
class _Work:
    """A checked batch on its way to storage, with the messages to acknowledge once stored."""

    batch: Batch
    messages: list[Any]
    acks: list[tuple[str, bytes]]
    now: float


def split_topic(topic: str) -> tuple[str, str] | None:
    """(device id, kind) for civicore/v1/devices/{id}/{senml|acks}; None for anything else."""
    if not topic.startswith(TOPIC_PREFIX):
        return None
    rest = topic[len(TOPIC_PREFIX) :]
    device_id, _, kind = rest.partition("/")
    if not device_id or kind not in ("senml", "acks"):
        return None
    return device_id, kind


class IngestProcess:
    """One ingest process: a paho network thread fills a queue; this thread stores batches."""

    def __init__(
        self,
        address: BrokerAddress,
        *,
        client_id: str | None = None,
        group: str | None = None,
        batch_max: int | None = None,
        batch_ms: int | None = None,
    ) -> None:
        self.address = address
        self.client_id = client_id or f"civicore-ingest-{socket.gethostname()}-{os.getpid()}"
        self.group = group or settings.SENSOR_SHARE_GROUP
        self.batch_max = batch_max or settings.SENSOR_BATCH_MAX
        self.batch_seconds = (batch_ms if batch_ms is not None else settings.SENSOR_BATCH_MS) / 1000.0
        self.ingestor = pipeline.Ingestor()
        self._next_tick = 0.0
        self.stop_event = threading.Event()
        self.connected = threading.Event()
        self._queue: list[Any] = []
        self._ready = threading.Condition()
        self.client = mqtt.Client(
            callback_api_version=mqtt.CallbackAPIVersion.VERSION2,
            client_id=self.client_id,
            # MQTT 3.1.1: a v5 client builds a properties object for every message received,
            # which costs more than the rest of paho's work on it.
            protocol=mqtt.MQTTv311,
            clean_session=False,
            manual_ack=True,
        )
        self.client.username_pw_set(address.username, address.password)
        if address.tls:
            self.client.tls_set(cert_reqs=ssl.CERT_REQUIRED)
        self.client.on_connect = self._on_connect
        self.client.on_message = self._on_message
        self.client.on_disconnect = self._on_disconnect
        self.client.max_queued_messages_set(0)

    # -- network thread -------------------------------------------------------------------------

    def _on_connect(
        self, client: mqtt.Client, userdata: Any, flags: Any, reason: Any, properties: Any
    ) -> None:
        if reason.is_failure:
            logger.error("broker refused the ingest connection: %s", reason)
            return
        client.subscribe(
            [(f"$share/{self.group}/{SENML_FILTER}", 1), (f"$share/{self.group}/{ACKS_FILTER}", 1)]
        )
        self.connected.set()
        logger.info("ingest %s connected (session present: %s)", self.client_id, flags.session_present)

    def _on_disconnect(
        self, client: mqtt.Client, userdata: Any, flags: Any, reason: Any, properties: Any
    ) -> None:
        self.connected.clear()
        if not self.stop_event.is_set():
            logger.warning("ingest %s lost the broker (%s); reconnecting", self.client_id, reason)

    def _on_message(self, client: mqtt.Client, userdata: Any, message: mqtt.MQTTMessage) -> None:
        with self._ready:
            self._queue.append(message)
            if len(self._queue) >= self.batch_max:
                self._ready.notify()

    # -- this thread ----------------------------------------------------------------------------

    def start(self) -> None:
        # A persistent session (clean_session false): what arrives while this process is away,
        # or was delivered and not yet acknowledged, is delivered when it reconnects.
        self.client.connect_async(self.address.host, self.address.port, keepalive=30)
        self.client.loop_start()

    def _take(self) -> list[Any]:
        with self._ready:
            if len(self._queue) < self.batch_max:
                self._ready.wait(self.batch_seconds)
            taken, self._queue = self._queue, []
        return taken

    def process(self, messages: list[Any]) -> None:
        """Check messages, then store them and acknowledge them to the broker, in batches of at
        most `batch_max` readings (a backlog of packs would otherwise make one huge batch).

        Storing on a second thread while the next batch is checked was measured and dropped:
        under the GIL it slowed single-reading messages more than it sped up packs.
        """
        stored: set[int] = set()
        try:
            for work in self._prepare(messages):
                self._commit(work)
                stored.update(map(id, work.messages))
        except Exception:
            # What was stored is acknowledged already: only the rest is retried (acknowledging a
            # message id twice could acknowledge a newer message that reuses it).
            messages[:] = [message for message in messages if id(message) not in stored]
            raise

    def _prepare(self, messages: list[Any]) -> Iterator[_Work]:
        now = time.time()
        readings: list[tuple[str, bytes, Any]] = []
        acks: list[tuple[str, bytes]] = []
        others: list[Any] = []
        for message in messages:
            where = split_topic(message.topic)
            if where is None:
                others.append(message)
            elif where[1] == "senml":
                readings.append((where[0], message.payload, message))
            else:
                acks.append((where[0], message.payload))
                others.append(message)
        ingestor = self.ingestor
        # Acknowledgements from devices and stray messages go with the first batch.
        done = others
        try:
            if readings:
                ingestor.prefetch([device_id for device_id, _, _ in readings], now=now)
            for device_id, payload, message in readings:
                ingestor.add(device_id, payload, now=now)
                done.append(message)
                if len(ingestor.batch) >= self.batch_max:
                    yield _Work(ingestor.take(), done, acks, now)
                    done, acks = [], []
        except Exception:
            ingestor.discard()  # the unstored part is checked again on retry
            raise
        if done or acks:
            yield _Work(ingestor.take(), done, acks, now)

    def _commit(self, work: _Work) -> None:
        self.ingestor.commit(work.batch, now=work.now)
        for device_id, payload in work.acks:
            pipeline.handle_ack(device_id, payload, now=work.now)
        self._acknowledge(work.messages)

    def _tick(self) -> None:
        if time.monotonic() >= self._next_tick:
            self._next_tick = time.monotonic() + TICK_SECONDS
            pipeline.tick(now=time.time())

    def _acknowledge(self, messages: list[Any]) -> None:
        """PUBACK every message of a stored batch.

        paho wakes its network thread once per queued packet (a byte on an internal socket
        pair); for thousands of acknowledgements that costs more than storing the readings. The
        wake-up is held back while the batch's acknowledgements are queued, then sent once.
        """
        client = self.client
        wake = getattr(client, "_sockpairW", None)
        if wake is not None:
            client._sockpairW = None
        try:
            for message in messages:
                if message.qos:
                    client.ack(message.mid, message.qos)
        finally:
            if wake is not None and client._sockpairW is None:
                client._sockpairW = wake
                try:
                    wake.send(b"\0")
                except OSError:
                    pass

    def run(self, *, seconds: float | None = None) -> None:
        """Ingest until stopped (or for `seconds`)."""
        self.start()
        deadline = time.monotonic() + seconds if seconds else None
        pending: list[Any] = []
        try:
            while not self.stop_event.is_set():
                if deadline is not None and time.monotonic() >= deadline:
                    break
                if not pending:
                    pending = self._take()
                try:
                    if pending:
                        self.process(pending)
                        pending = []
                    self._tick()
                except Exception:
                    # Keep the batch: it is acknowledged to the broker only once it is stored.
                    logger.exception("ingest batch of %d messages failed; retrying", len(pending))
                    close_old_connections()
                    time.sleep(1.0)
            if pending:
                self.process(pending)
        finally:
            self.stop()

    def stop(self) -> None:
        self.stop_event.set()
        with self._ready:
            self._ready.notify_all()
        self.client.disconnect()
        self.client.loop_stop()
