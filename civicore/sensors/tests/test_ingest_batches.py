"""How the ingest process cuts a backlog into database batches and acknowledges what it stored:
batches stay within SENSOR_BATCH_MAX readings, and a batch that fails is retried without
acknowledging anything twice."""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

import orjson
import pytest

from civicore.sensors import ingest, storage
from civicore.sensors.models import Device, Reading
from civicore.sensors.tests.factories import make_device, soil_moisture_type

pytestmark = pytest.mark.django_db


@dataclass
class _Message:
    topic: str
    payload: bytes
    mid: int
    qos: int = 1


class _Client:
    """Records the acknowledgements the ingest process sends to the broker."""

    def __init__(self) -> None:
        self.acked: list[int] = []

    def ack(self, mid: int, qos: int) -> None:
        self.acked.append(mid)


@pytest.fixture(autouse=True)
def _fresh_partitions() -> None:
    storage.forget_partitions()


def _packs(device_id: str, count: int, size: int) -> list[_Message]:
    start = float(int(time.time() // 3600 * 3600) - 86_400)
    messages = []
    for n in range(count):
        first = start + n * size * 60
        records: list[dict[str, Any]] = [
            {"bn": f"{device_id}:", "bt": first, "bu": "%", "n": "soil_moisture", "v": 40}
        ]
        records += [{"n": "soil_moisture", "t": k * 60, "v": 30 + k % 10} for k in range(1, size)]
        topic = f"civicore/v1/devices/{device_id}/senml"
        messages.append(_Message(topic, orjson.dumps(records), mid=n + 1))
    return messages


def _active_device() -> Device:
    device = make_device(device_type=soil_moisture_type())
    Device.objects.filter(pk=device.pk).update(status=Device.Status.ACTIVE)  # as if provisioned
    return device


def _process(batch_max: int) -> tuple[ingest.IngestProcess, _Client]:
    process = ingest.IngestProcess(
        ingest.BrokerAddress("127.0.0.1", 1883, "ingest", "", False), client_id="batches", batch_max=batch_max
    )
    client = _Client()
    process.client = client  # type: ignore[assignment]
    return process, client


def test_a_backlog_of_packs_is_stored_in_batches_of_at_most_batch_max_readings(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    device = _active_device()
    process, client = _process(batch_max=250)
    sizes: list[int] = []
    commit = process.ingestor.commit

    def measured(batch: storage.Batch, **kwargs: Any) -> tuple[int, int]:
        sizes.append(len(batch))
        return commit(batch, **kwargs)

    monkeypatch.setattr(process.ingestor, "commit", measured)
    process.process(_packs(device.device_id, count=7, size=100))

    assert sizes == [300, 300, 100]  # cut after the pack that reaches 250 readings
    assert Reading.objects.filter(device=device).count() == 700
    assert sorted(client.acked) == list(range(1, 8))


def test_a_failed_batch_is_retried_without_acknowledging_the_stored_ones_again(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    device = _active_device()
    process, client = _process(batch_max=200)
    commit = process.ingestor.commit
    calls = {"n": 0}

    def failing_second(batch: storage.Batch, **kwargs: Any) -> tuple[int, int]:
        calls["n"] += 1
        if calls["n"] == 2:
            raise RuntimeError("database went away")
        return commit(batch, **kwargs)

    monkeypatch.setattr(process.ingestor, "commit", failing_second)
    pending: list[Any] = _packs(device.device_id, count=6, size=100)
    with pytest.raises(RuntimeError):
        process.process(pending)

    # The first batch (two packs) is stored and acknowledged; only the rest waits for a retry.
    assert client.acked == [1, 2]
    assert [message.mid for message in pending] == [3, 4, 5, 6]
    assert Reading.objects.filter(device=device).count() == 200

    process.process(pending)
    assert sorted(client.acked) == [1, 2, 3, 4, 5, 6]
    assert Reading.objects.filter(device=device).count() == 600
    assert process.ingestor.stats["accepted"] == 600
