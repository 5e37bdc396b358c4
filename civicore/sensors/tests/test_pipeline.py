"""Ingestion from message to database: checks against the device type, rejections kept with their
reason, readings stored once, rollups and device counters maintained, on SQLite and PostgreSQL."""

from __future__ import annotations

import time
from datetime import UTC, datetime

import cbor2
import orjson
import pytest
from django.db import connection

from civicore.agencies.tests.factories import AgencyFactory
from civicore.sensors import pipeline, storage
from civicore.sensors.models import Device, DeviceType, Reading, Rejection, Rollup

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _fresh_partitions() -> None:
    storage.forget_partitions()


def _soil_type(**kwargs: object) -> DeviceType:
    return DeviceType.objects.create(
        code=kwargs.pop("code", "soil-moisture"),
        agency=AgencyFactory(),
        name_vi="Cảm biến độ ẩm đất",
        name_en="Soil moisture sensor",
        quantities=[
            {"name": "soil_moisture", "unit": "%", "min": 0, "max": 100},
            {"name": "temperature", "unit": "Cel", "min": -20, "max": 70},
        ],
        expected_interval_s=60,
        **kwargs,
    )


def _device(kind: DeviceType, device_id: str = "soil-1") -> Device:
    return Device.objects.create(
        device_id=device_id,
        name=device_id,
        device_type=kind,
        agency=kind.agency,
        group="tao-dan",
        latitude=10.7743,
        longitude=106.6921,
        status=Device.Status.ACTIVE,
    )


def _pack(device_id: str, values: list[float], *, start: float, step: float = 60.0) -> bytes:
    records: list[dict[str, object]] = [{"bn": f"{device_id}:", "bt": start, "bu": "%"}]
    records[0].update({"n": "soil_moisture", "v": values[0]})
    records += [{"n": "soil_moisture", "t": step * i, "v": v} for i, v in enumerate(values[1:], start=1)]
    return orjson.dumps(records)


def test_a_pack_is_stored_with_rollups_and_device_counters() -> None:
    device = _device(_soil_type())
    start = float(int(time.time() // 3600 * 3600) - 3600)  # the start of the previous hour
    result = pipeline.ingest_payload(
        device, _pack("soil-1", [30.0, 28.0, 26.0, 24.0, 22.0, 20.0], start=start)
    )
    assert (result.accepted, result.duplicates, result.rejected) == (6, 0, [])
    assert Reading.objects.filter(device=device).count() == 6
    hour = Rollup.objects.get(device=device, period="1h", bucket=datetime.fromtimestamp(start, UTC))
    assert (hour.count, hour.total, hour.minimum, hour.maximum) == (6, 150.0, 20.0, 30.0)
    five = Rollup.objects.filter(device=device, period="5m").order_by("bucket")
    assert [r.count for r in five] == [5, 1]
    device.refresh_from_db()
    assert device.accepted_count == 6
    assert device.last_seen_at == datetime.fromtimestamp(start + 300, UTC)
    assert device.last_values["soil_moisture"][0] == 20.0


def test_a_retransmitted_message_is_stored_once_and_not_counted_twice() -> None:
    device = _device(_soil_type())
    payload = _pack("soil-1", [40.0, 41.0, 42.0], start=time.time() - 600)
    first = pipeline.ingest_payload(device, payload)
    again = pipeline.ingest_payload(device, payload)
    assert (first.accepted, again.accepted, again.duplicates) == (3, 0, 3)
    assert Reading.objects.count() == 3
    assert sum(r.count for r in Rollup.objects.filter(period="1d")) == 3
    device.refresh_from_db()
    assert device.accepted_count == 3


def test_cbor_packs_are_read_too() -> None:
    device = _device(_soil_type())
    pack = [{-2: "soil-1:", -3: time.time() - 10, -4: "%", 0: "soil_moisture", 2: 33.0}]
    result = pipeline.ingest_payload(device, cbor2.dumps(pack), content_type="application/senml+cbor")
    assert result.accepted == 1
    assert Reading.objects.get().value == 33.0


def test_each_bad_record_is_refused_with_its_reason_and_the_good_ones_kept() -> None:
    device = _device(_soil_type())
    now = time.time()
    payload = orjson.dumps(
        [
            {"bn": "soil-1:", "n": "soil_moisture", "u": "%", "v": 25.0, "t": -60},
            {"n": "soil_moisture", "u": "%", "v": 140.0},
            {"n": "soil_moisture", "u": "%RH", "v": 25.0, "t": -30},
            {"n": "ph", "v": 7.0},
            {"n": "soil_moisture", "v": 25.0, "bt": now + 3600},
            {"bn": "soil-2:", "n": "soil_moisture", "v": 25.0, "bt": now - 5},
            {"bn": "soil-1:", "n": "soil_moisture", "vs": "wet", "bt": now - 1},
            {"n": "soil_moisture", "v": 10.0, "bt": 1_000_000_000.0},
        ]
    )
    result = pipeline.ingest_payload(device, payload)
    assert result.accepted == 1
    assert [reason for reason, _ in result.rejected] == [
        "out_of_range",
        "wrong_unit",
        "unknown_quantity",
        "future",
        "wrong_topic",
        "not_a_number",
        "too_old",
    ]
    kept = {row.reason: row for row in Rejection.objects.filter(device=device)}
    assert set(kept) == {reason for reason, _ in result.rejected}
    assert "140.0" in kept["out_of_range"].detail
    device.refresh_from_db()
    assert (device.accepted_count, device.rejected_count) == (1, 7)


@pytest.mark.parametrize(
    "payload",
    [b"{not json", b'{"n":"soil_moisture","v":1}', b"[" * 3000, b"\x00\x01\x02", b"[]", b"<xml/>"],
)
def test_malformed_messages_are_refused_and_kept_for_officers(payload: bytes) -> None:
    device = _device(_soil_type())
    result = pipeline.ingest_payload(device, payload)
    assert result.accepted == 0
    assert [reason for reason, _ in result.rejected] == ["malformed"]
    row = Rejection.objects.get(device=device)
    assert row.reason == "malformed"
    assert row.excerpt == pipeline.printable(payload[:200].decode("utf-8", "replace"))
    assert "\x00" not in row.excerpt


def test_a_message_over_the_size_limit_is_refused_without_being_parsed(settings: object) -> None:
    device = _device(_soil_type())
    big = _pack("soil-1", [20.0] * 2000, start=time.time() - 200_000, step=1.0)
    assert len(big) > 64 * 1024
    result = pipeline.ingest_payload(device, big)
    assert result.rejected[0][0] == "too_large"
    assert Reading.objects.count() == 0


def test_a_flooding_device_is_limited_and_other_devices_are_not_affected() -> None:
    kind = _soil_type(rate_per_minute=5)
    noisy, quiet = _device(kind, "soil-1"), _device(kind, "soil-2")
    ingestor = pipeline.Ingestor()
    now = time.time()
    ingestor.prefetch(["soil-1", "soil-2"], now=now)
    for i in range(20):
        ingestor.add("soil-1", _pack("soil-1", [30.0], start=now - 100 + i), now=now)
    ingestor.add("soil-2", _pack("soil-2", [30.0], start=now - 100), now=now)
    ingestor.flush(now=now)
    assert Reading.objects.filter(device=noisy).count() == 5
    assert Reading.objects.filter(device=quiet).count() == 1
    flood = Rejection.objects.get(device=noisy)
    assert (flood.reason, flood.count) == ("rate_limited", 15)
    noisy.refresh_from_db()
    assert noisy.rejected_count == 15


def test_unknown_and_revoked_devices_are_refused_once_per_batch() -> None:
    kind = _soil_type()
    revoked = _device(kind, "soil-9")
    revoked.status = Device.Status.REVOKED
    revoked.save()
    ingestor = pipeline.Ingestor()
    now = time.time()
    ingestor.prefetch(["soil-9", "ghost"], now=now)
    for _ in range(3):
        ingestor.add("soil-9", _pack("soil-9", [30.0], start=now - 10), now=now)
        ingestor.add("ghost", _pack("ghost", [30.0], start=now - 10), now=now)
    ingestor.flush(now=now)
    assert Reading.objects.count() == 0
    rows = {row.device_ref: row.count for row in Rejection.objects.filter(reason="unknown_device")}
    assert rows == {"soil-9": 3, "ghost": 3}


@pytest.mark.skipif("connection.vendor != 'postgresql'")
def test_postgresql_keeps_readings_in_daily_partitions_with_a_brin_index() -> None:
    device = _device(_soil_type())
    now = time.time()
    pipeline.ingest_payload(device, _pack("soil-1", [30.0, 31.0], start=now - 2 * 86400, step=86400.0))
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT c.relname FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid "
            "JOIN pg_class p ON p.oid = i.inhparent WHERE p.relname = 'sensors_reading' ORDER BY 1"
        )
        partitions = [name for (name,) in cursor.fetchall()]
        cursor.execute(
            "SELECT am.amname FROM pg_class c JOIN pg_am am ON am.oid = c.relam "
            "WHERE c.relname = 'sensors_reading_time'"
        )
        (method,) = cursor.fetchone()
    days = {datetime.fromtimestamp(now - 2 * 86400, UTC), datetime.fromtimestamp(now - 86400, UTC)}
    assert partitions == sorted(f"sensors_reading_p{day:%Y%m%d}" for day in days)
    assert method == "brin"


def test_retention_removes_old_readings_and_rollups() -> None:
    kind = _soil_type(retention_days=2)
    device = _device(kind)
    now = time.time()
    pipeline.ingest_payload(
        device, _pack("soil-1", [30.0, 31.0, 32.0], start=now - 1.25 * 86400, step=43200.0)
    )
    later = datetime.fromtimestamp(now + 86400, UTC)
    storage.prune(now=later, type_retention=[(kind.pk, 2)])
    assert sorted(Reading.objects.values_list("value", flat=True)) == [31.0, 32.0]
    storage.prune(now=datetime.fromtimestamp(now + 400 * 86400, UTC), type_retention=[(kind.pk, 2)])
    assert Reading.objects.count() == 0
    assert not Rollup.objects.filter(period__in=["5m", "1h"]).exists()
    assert Rollup.objects.filter(period="1d").exists()


def test_the_worker_applies_retention_on_schedule() -> None:
    from civicore.sensors.tasks import sensors_apply_retention

    kind = _soil_type(retention_days=3)
    device = _device(kind)
    now = time.time()
    pipeline.ingest_payload(device, _pack("soil-1", [30.0], start=now - 1.5 * 86400))
    assert Reading.objects.count() == 1
    DeviceType.objects.filter(pk=kind.pk).update(retention_days=1)
    sensors_apply_retention()
    assert not Reading.objects.exists()
