"""Writing readings in batches: the readings, their rollups and the devices' counters, in one
transaction; and keeping the PostgreSQL partitions and retention.

On PostgreSQL one statement does it all: the readings are inserted from arrays with
`ON CONFLICT DO NOTHING` (a retransmitted reading is a no-op), and only the rows actually inserted
feed the 5-minute, hourly and daily rollups and the devices' accepted counts, so nothing is
counted twice. SQLite, the embedded default, takes the same steps one row at a time.
"""

from __future__ import annotations

import json
import threading
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from django.db import IntegrityError, connection, transaction
from django.db.utils import ProgrammingError

from civicore.sensors.models import Rejection

PERIODS = (("5m", 300), ("1h", 3600), ("1d", 86400))
# How long each rollup period is kept (days); readings follow their device type's retention.
ROLLUP_RETENTION_DAYS = {"5m": 35, "1h": 400}


@dataclass(slots=True)
class DeviceDelta:
    """What one batch changes on one device."""

    rejected: int = 0
    last_seen: float = 0.0
    # quantity -> (value, epoch time) of the newest reading in the batch
    last_values: dict[str, tuple[float, float]] = field(default_factory=dict)


@dataclass(slots=True)
class Batch:
    """Readings as parallel columns (device pk, quantity, epoch time, value), plus rejections."""

    devices: list[int] = field(default_factory=list)
    quantities: list[str] = field(default_factory=list)
    times: list[float] = field(default_factory=list)
    values: list[float] = field(default_factory=list)
    deltas: dict[int, DeviceDelta] = field(default_factory=dict)
    rejections: list[Rejection] = field(default_factory=list)

    def __len__(self) -> int:
        return len(self.devices)

    def add(self, device_pk: int, quantity: str, when: float, value: float) -> None:
        self.devices.append(device_pk)
        self.quantities.append(quantity)
        self.times.append(when)
        self.values.append(value)
        delta = self.deltas.get(device_pk)
        if delta is None:
            delta = self.deltas[device_pk] = DeviceDelta()
        if when > delta.last_seen:
            delta.last_seen = when
        newest = delta.last_values.get(quantity)
        if newest is None or when >= newest[1]:
            delta.last_values[quantity] = (value, when)

    def touch(self, device_pk: int, *, rejected: int = 0) -> None:
        delta = self.deltas.get(device_pk)
        if delta is None:
            delta = self.deltas[device_pk] = DeviceDelta()
        delta.rejected += rejected


@dataclass(frozen=True, slots=True)
class StoreResult:
    inserted: int
    duplicates: int


def _iso(epoch: float) -> str:
    return datetime.fromtimestamp(epoch, UTC).isoformat()


def _last_values_json(delta: DeviceDelta) -> str:
    return json.dumps({q: [value, _iso(when)] for q, (value, when) in delta.last_values.items()})


# --- PostgreSQL --------------------------------------------------------------------------------

_PG_STORE = """
WITH ins AS (
    INSERT INTO sensors_reading (device_id, quantity, time, value)
    SELECT d, q, to_timestamp(t), v
    FROM unnest(%b::bigint[], %b::text[], %b::float8[], %b::float8[]) AS u(d, q, t, v)
    ON CONFLICT DO NOTHING
    RETURNING device_id, quantity, time, value
), roll AS (
    INSERT INTO sensors_rollup AS r (device_id, quantity, period, bucket, count, total, minimum, maximum)
    SELECT ins.device_id, ins.quantity, p.period,
           date_bin(p.width, ins.time, TIMESTAMPTZ '2000-01-01 00:00+00'),
           count(*), sum(ins.value), min(ins.value), max(ins.value)
    FROM ins CROSS JOIN
         (VALUES ('5m', INTERVAL '5 minutes'), ('1h', INTERVAL '1 hour'), ('1d', INTERVAL '1 day'))
         AS p(period, width)
    GROUP BY 1, 2, 3, 4
    ON CONFLICT (device_id, quantity, period, bucket) DO UPDATE SET
        count = r.count + excluded.count, total = r.total + excluded.total,
        minimum = least(r.minimum, excluded.minimum), maximum = greatest(r.maximum, excluded.maximum)
), counted AS (
    SELECT device_id, count(*) AS n FROM ins GROUP BY device_id
), dev AS (
    UPDATE sensors_device AS dv SET
        accepted_count = dv.accepted_count + coalesce(counted.n, 0),
        rejected_count = dv.rejected_count + u.rej,
        last_seen_at = CASE WHEN u.seen > 0 THEN greatest(dv.last_seen_at, to_timestamp(u.seen))
                            ELSE dv.last_seen_at END,
        last_values = dv.last_values || u.vals::jsonb
    FROM unnest(%b::bigint[], %b::int[], %b::float8[], %b::text[]) AS u(id, rej, seen, vals)
    LEFT JOIN counted ON counted.device_id = u.id
    WHERE dv.id = u.id
    RETURNING 1
)
SELECT (SELECT count(*) FROM ins), (SELECT count(*) FROM dev)
"""

_known_partitions: set[str] = set()
_partition_lock = threading.Lock()


def _partition_name(day: datetime) -> str:
    return f"sensors_reading_p{day:%Y%m%d}"


def ensure_partitions(days: Iterable[datetime]) -> None:
    """Create the daily partitions for these days (UTC) if they are missing (PostgreSQL only)."""
    if connection.vendor != "postgresql":
        return
    wanted = {}
    for day in days:
        start = day.astimezone(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
        name = _partition_name(start)
        if name not in _known_partitions:
            wanted[name] = start
    if not wanted:
        return
    with _partition_lock:
        for name, start in sorted(wanted.items()):
            end = start + timedelta(days=1)
            try:
                with transaction.atomic(), connection.cursor() as cursor:
                    cursor.execute(
                        f"CREATE TABLE IF NOT EXISTS {name} PARTITION OF sensors_reading "  # noqa: S608 - name from a date
                        f"FOR VALUES FROM ('{start.isoformat()}') TO ('{end.isoformat()}')"
                    )
            except (IntegrityError, ProgrammingError):
                # Another ingest process created it at the same moment.
                pass
            _known_partitions.add(name)


def forget_partitions() -> None:
    """Forget which partitions exist (after a test database is rebuilt, or partitions dropped)."""
    _known_partitions.clear()


def _store_postgresql(batch: Batch) -> int:
    ensure_partitions(
        datetime.fromtimestamp(day * 86400, UTC) for day in {int(t // 86400) for t in batch.times}
    )
    ids = list(batch.deltas)
    deltas = [batch.deltas[pk] for pk in ids]
    connection.ensure_connection()
    # A server-side binding cursor with the arrays sent in binary: Django's client-side binding
    # cursor would spell every element out in the SQL text.
    import psycopg

    with psycopg.Cursor(connection.connection) as cursor:
        cursor.execute(
            _PG_STORE,
            [
                batch.devices,
                batch.quantities,
                batch.times,
                batch.values,
                ids,
                [delta.rejected for delta in deltas],
                [delta.last_seen for delta in deltas],
                [_last_values_json(delta) for delta in deltas],
            ],
        )
        row = cursor.fetchone()
    return int(row[0]) if row else 0


# --- SQLite ------------------------------------------------------------------------------------


def _sqlite_time(epoch: float) -> str:
    # The text Django's SQLite backend stores for an aware datetime (UTC, naive, space separator).
    return str(datetime.fromtimestamp(epoch, UTC).replace(tzinfo=None))


def _db_time(moment: datetime) -> datetime | str:
    """A datetime parameter for raw SQL, compared the way Django stores it."""
    return moment if connection.vendor == "postgresql" else _sqlite_time(moment.timestamp())


def _store_sqlite(batch: Batch) -> int:
    rollups: dict[tuple[int, str, str, str], list[float]] = {}
    accepted: dict[int, int] = defaultdict(int)
    inserted = 0
    with connection.cursor() as cursor:
        for device_pk, quantity, when, value in zip(
            batch.devices, batch.quantities, batch.times, batch.values, strict=True
        ):
            cursor.execute(
                "INSERT OR IGNORE INTO sensors_reading (device_id, quantity, time, value) "
                "VALUES (%s, %s, %s, %s)",
                [device_pk, quantity, _sqlite_time(when), value],
            )
            if cursor.rowcount != 1:
                continue
            inserted += 1
            accepted[device_pk] += 1
            for period, width in PERIODS:
                bucket = _sqlite_time(when - (when % width))
                key = (device_pk, quantity, period, bucket)
                agg = rollups.get(key)
                if agg is None:
                    rollups[key] = [1, value, value, value]
                else:
                    agg[0] += 1
                    agg[1] += value
                    agg[2] = min(agg[2], value)
                    agg[3] = max(agg[3], value)
        if rollups:
            cursor.executemany(
                "INSERT INTO sensors_rollup "
                "(device_id, quantity, period, bucket, count, total, minimum, maximum) "
                "VALUES (%s, %s, %s, %s, %s, %s, %s, %s) "
                "ON CONFLICT (device_id, quantity, period, bucket) DO UPDATE SET "
                "count = count + excluded.count, total = total + excluded.total, "
                "minimum = min(minimum, excluded.minimum), maximum = max(maximum, excluded.maximum)",
                [[*key, *agg] for key, agg in rollups.items()],
            )
        rows = []
        for device_pk, delta in batch.deltas.items():
            seen = _sqlite_time(delta.last_seen) if delta.last_seen else None
            rows.append(
                [
                    accepted.get(device_pk, 0),
                    delta.rejected,
                    seen,
                    seen,
                    seen,
                    _last_values_json(delta),
                    device_pk,
                ]
            )
        cursor.executemany(
            "UPDATE sensors_device SET accepted_count = accepted_count + %s, "
            "rejected_count = rejected_count + %s, "
            "last_seen_at = CASE WHEN %s IS NULL THEN last_seen_at "
            "WHEN last_seen_at IS NULL OR last_seen_at < %s "
            "THEN %s ELSE last_seen_at END, last_values = json_patch(last_values, %s) WHERE id = %s",
            rows,
        )
    return inserted


def store(batch: Batch) -> StoreResult:
    """Write a batch in one transaction; return how many readings were new."""
    with transaction.atomic():
        if batch.devices or batch.deltas:
            if connection.vendor == "postgresql":
                inserted = _store_postgresql(batch)
            else:
                inserted = _store_sqlite(batch)
        else:
            inserted = 0
        if batch.rejections:
            Rejection.objects.bulk_create(batch.rejections)
    return StoreResult(inserted=inserted, duplicates=len(batch) - inserted)


# --- retention ---------------------------------------------------------------------------------


def prune(*, now: datetime, type_retention: Sequence[tuple[int, int]]) -> int:
    """Delete readings past their device type's retention, old rollups and old rejections.

    `type_retention` is [(device type pk, days)]. On PostgreSQL, whole daily partitions older
    than the longest retention are dropped, which costs nothing per row.
    """
    from civicore.sensors.models import Rollup

    removed = 0
    if connection.vendor == "postgresql" and type_retention:
        horizon = now - timedelta(days=max(days for _, days in type_retention))
        with connection.cursor() as cursor:
            cursor.execute(
                "SELECT c.relname FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid "
                "JOIN pg_class p ON p.oid = i.inhparent WHERE p.relname = 'sensors_reading'"
            )
            for (name,) in cursor.fetchall():
                try:
                    day = datetime.strptime(name.rsplit("_p", 1)[1], "%Y%m%d").replace(tzinfo=UTC)
                except (IndexError, ValueError):
                    continue
                if day + timedelta(days=1) <= horizon:
                    cursor.execute(f"DROP TABLE IF EXISTS {name}")  # noqa: S608 - a partition's own name
                    _known_partitions.discard(name)
    with connection.cursor() as cursor:
        for type_pk, days in type_retention:
            cursor.execute(
                "DELETE FROM sensors_reading WHERE time < %s AND device_id IN "
                "(SELECT id FROM sensors_device WHERE device_type_id = %s)",
                [_db_time(now - timedelta(days=days)), type_pk],
            )
            removed += max(cursor.rowcount, 0)
    for period, days in ROLLUP_RETENTION_DAYS.items():
        Rollup.objects.filter(period=period, bucket__lt=now - timedelta(days=days))._raw_delete(
            Rollup.objects.db
        )
    Rejection.objects.filter(received_at__lt=now - timedelta(days=90)).delete()
    return removed
