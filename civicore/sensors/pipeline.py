"""From a device's message to stored readings: decode SenML, check every record against the
device type, refuse what does not fit (counted and kept, with the reason), batch the rest.

The same path serves MQTT (civicore.sensors.ingest, many messages per batch) and HTTPS
(`ingest_payload`, one message). Nothing here is state another process needs: the device cache
is a read-through copy refreshed every few seconds, and the per-device rate limit is this
process's share of the device's allowance.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime

from django.conf import settings
from django.db import close_old_connections

from civicore.sensors import commands, rules, senml
from civicore.sensors.models import Device, Rejection
from civicore.sensors.storage import Batch, store
from civicore.sensors.types import StoredReading

CLOCK_SKEW_S = 5.0
CACHE_SECONDS = 10.0
Reason = Rejection.Reason


@dataclass(slots=True)
class DeviceInfo:
    pk: int
    device_id: str
    active: bool
    # quantity -> (unit, minimum, maximum)
    quantities: dict[str, tuple[str, float, float]]
    rate_per_minute: int
    retention_s: float
    loaded_at: float
    tokens: float = 0.0
    refilled_at: float = 0.0


@dataclass(slots=True)
class IngestResult:
    accepted: int = 0
    duplicates: int = 0
    rejected: list[tuple[str, str]] = field(default_factory=list)


def _info(device: Device, now: float) -> DeviceInfo:
    kind = device.device_type
    quantities = {}
    for item in kind.quantities:
        low = item.get("min")
        high = item.get("max")
        quantities[str(item.get("name"))] = (
            str(item.get("unit") or ""),
            float(low) if low is not None else float("-inf"),
            float(high) if high is not None else float("inf"),
        )
    return DeviceInfo(
        pk=device.pk,
        device_id=device.device_id,
        active=device.status == Device.Status.ACTIVE,
        quantities=quantities,
        rate_per_minute=kind.rate_per_minute,
        retention_s=kind.retention_days * 86400.0,
        loaded_at=now,
        tokens=float(kind.rate_per_minute),
        refilled_at=now,
    )


def printable(text: str) -> str:
    """Text safe to keep and show: control characters (NUL included) become U+FFFD."""
    return "".join(char if char.isprintable() else "\ufffd" for char in text)


class Ingestor:
    """Turns messages into a Batch; `flush` stores it and runs the rules."""

    def __init__(self) -> None:
        self.devices: dict[str, DeviceInfo] = {}
        # device pk -> device id, for the readings handed to the rules
        self.device_ids: dict[int, str] = {}
        self.batch = Batch()
        self.readings_pending: list[tuple[int, str, str, float, float]] = []
        self.stats = {"messages": 0, "accepted": 0, "duplicates": 0, "rejected": 0}
        self._rejections: dict[tuple[int | None, str, str], Rejection] = {}

    # -- devices ------------------------------------------------------------------------------

    def prefetch(self, device_ids: Sequence[str], *, now: float) -> None:
        """Load (in one query) the devices a batch of messages names that are missing or stale."""
        wanted = {
            device_id
            for device_id in device_ids
            if (info := self.devices.get(device_id)) is None or now - info.loaded_at > CACHE_SECONDS
        }
        if not wanted:
            return
        for device in Device.objects.filter(device_id__in=wanted).select_related("device_type"):
            old = self.devices.get(device.device_id)
            info = _info(device, now)
            if old is not None:
                info.tokens, info.refilled_at = old.tokens, old.refilled_at
            self.remember(info)
            wanted.discard(device.device_id)
        for device_id in wanted:
            self.devices.pop(device_id, None)

    def remember(self, info: DeviceInfo) -> None:
        self.devices[info.device_id] = info
        self.device_ids[info.pk] = info.device_id

    def _allow(self, info: DeviceInfo, now: float) -> bool:
        rate = info.rate_per_minute / 60.0
        info.tokens = min(float(info.rate_per_minute), info.tokens + (now - info.refilled_at) * rate)
        info.refilled_at = now
        if info.tokens < 1.0:
            return False
        info.tokens -= 1.0
        return True

    # -- messages -----------------------------------------------------------------------------

    def _reject(
        self,
        device_pk: int | None,
        device_ref: str,
        reason: str,
        detail: str,
        excerpt: bytes = b"",
        *,
        result: IngestResult | None = None,
    ) -> None:
        if result is not None:
            result.rejected.append((reason, detail))
        key = (device_pk, device_ref, reason)
        row = self._rejections.get(key)
        if row is None:
            row = Rejection(
                device_id=device_pk,
                device_ref=device_ref[:80],
                reason=reason,
                detail=printable(detail[:300]),
                excerpt=printable(excerpt[:200].decode("utf-8", "replace")),
            )
            self._rejections[key] = row
            self.batch.rejections.append(row)
        else:
            row.count += 1
        if device_pk is not None:
            self.batch.touch(device_pk, rejected=1)
        self.stats["rejected"] += 1

    def add(self, device_id: str, payload: bytes, *, now: float, result: IngestResult | None = None) -> None:
        """Check one message from `device_id` and add what is good to the batch."""
        self.stats["messages"] += 1
        info = self.devices.get(device_id)
        if info is None or not info.active:
            detail = "no active device with this id"
            self._reject(None, device_id, Reason.UNKNOWN_DEVICE, detail, payload, result=result)
            return
        if len(payload) > settings.SENSOR_MAX_PAYLOAD_BYTES:
            detail = f"{len(payload)} bytes, over {settings.SENSOR_MAX_PAYLOAD_BYTES}"
            self._reject(info.pk, device_id, Reason.TOO_LARGE, detail, result=result)
            return
        if not self._allow(info, now):
            detail = f"over {info.rate_per_minute} messages a minute"
            self._reject(info.pk, device_id, Reason.RATE_LIMITED, detail, result=result)
            return
        try:
            records = senml.resolve(senml.decode(payload), now=now)
        except senml.SenMLError as exc:
            self._reject(info.pk, device_id, Reason.MALFORMED, exc.detail, payload, result=result)
            return
        latest = now + CLOCK_SKEW_S
        oldest = now - info.retention_s
        quantities = info.quantities
        batch = self.batch
        added = 0
        names: dict[str, tuple[str, bool]] = {}
        for record in records:
            if record.problem:
                reason, detail = (
                    (Reason.NOT_A_NUMBER if "value" in record.problem else Reason.MALFORMED),
                    record.problem,
                )
            else:
                named = names.get(record.name)
                if named is None:
                    named = names[record.name] = senml.split_name(record.name, device_id)
                quantity, owned = named
                spec = quantities.get(quantity)
                if not owned:
                    reason, detail = Reason.WRONG_TOPIC, f"{record.name!r} names another device"
                elif spec is None:
                    reason, detail = (
                        Reason.UNKNOWN_QUANTITY,
                        f"{quantity!r} is not measured by this device type",
                    )
                elif record.unit and record.unit != spec[0]:
                    reason, detail = Reason.WRONG_UNIT, f"{quantity} in {record.unit!r}, expected {spec[0]!r}"
                elif not spec[1] <= record.value <= spec[2]:  # type: ignore[operator]
                    reason, detail = (
                        Reason.OUT_OF_RANGE,
                        f"{quantity} = {record.value} outside {spec[1]}..{spec[2]}",
                    )
                elif record.time > latest:
                    reason, detail = Reason.FUTURE, f"{quantity} at {record.time:.0f}, after now ({now:.0f})"
                elif record.time < oldest:
                    reason, detail = Reason.TOO_OLD, f"{quantity} at {record.time:.0f}, past retention"
                else:
                    batch.add(info.pk, quantity, record.time, record.value)  # type: ignore[arg-type]
                    added += 1
                    continue
            self._reject(info.pk, device_id, reason, detail, result=result)
        if added and result is not None:
            result.accepted += added

    def take(self) -> Batch:
        """The batch built so far; the next message starts a new one."""
        batch, self.batch = self.batch, Batch()
        self._rejections = {}
        return batch

    def discard(self) -> None:
        """Forget the batch being built (its messages will be checked again)."""
        self.take()

    def flush(self, *, now: float | None = None) -> tuple[int, int]:
        """Store the batch and run the rules over it; returns (inserted, duplicates)."""
        return self.commit(self.take(), now=now)

    def commit(self, batch: Batch, *, now: float | None = None) -> tuple[int, int]:
        """Store a batch taken earlier and run the rules over it; returns (inserted, duplicates).

        May run on another thread than the one adding messages: it reads the device id map,
        which only grows, and touches only the counters of what was stored.
        """
        if not batch.devices and not batch.deltas and not batch.rejections:
            return 0, 0
        outcome = store(batch)
        self.stats["accepted"] += outcome.inserted
        self.stats["duplicates"] += outcome.duplicates
        if batch.devices:
            _run_rules(batch, self.device_ids, now=now if now is not None else time.time())
        return outcome.inserted, outcome.duplicates


def _run_rules(batch: Batch, ids: dict[int, str], *, now: float) -> None:
    watched = rules.watched_quantities()
    if not watched:
        return
    readings = []
    for device_pk, quantity, when, value in zip(
        batch.devices, batch.quantities, batch.times, batch.values, strict=True
    ):
        if quantity in watched:
            readings.append(
                StoredReading(
                    device_pk, ids.get(device_pk, ""), quantity, datetime.fromtimestamp(when, UTC), value
                )
            )
    if readings:
        readings.sort(key=lambda reading: (reading.device_pk, reading.time))
        rules.evaluate(readings, now=datetime.fromtimestamp(now, UTC))


_http_buckets: dict[str, tuple[float, float]] = {}
_http_lock = threading.Lock()


def ingest_payload(device: Device, payload: bytes, *, content_type: str | None = None) -> IngestResult:
    """One message from one device over HTTPS: checked, stored and run through the rules."""
    ingestor = Ingestor()
    now = time.time()
    info = _info(device, now)
    with _http_lock:
        # The device's allowance in this process carries over from its earlier requests.
        info.tokens, info.refilled_at = _http_buckets.get(device.device_id, (info.tokens, now))
        ingestor.remember(info)
        result = IngestResult()
        ingestor.add(device.device_id, payload, now=now, result=result)
        _http_buckets[device.device_id] = (info.tokens, info.refilled_at)
    inserted, duplicates = ingestor.flush(now=now)
    result.accepted = inserted
    result.duplicates = duplicates
    return result


def handle_ack(device_id: str, payload: bytes, *, now: float) -> None:
    commands.acknowledge(device_id, payload, now=datetime.fromtimestamp(now, UTC))


def tick(*, now: float) -> None:
    """Work that does not wait for a message: command time-outs, interlocks, offline devices."""
    close_old_connections()
    moment = datetime.fromtimestamp(now, UTC)
    commands.supervise(now=moment)
    rules.check_offline(now=moment)
