"""Reads for the sensor pages and the query API: connectivity, series from readings and rollups
with their bounds, aggregates over a group or a box, and the public environment figures, on
SQLite and PostgreSQL. Readings go in through the same storage as ingestion, so rollups are real."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from django.utils import timezone

from civicore.agencies.models import Agency
from civicore.agencies.tests.factories import AgencyFactory
from civicore.core.errors import NotFound
from civicore.sensors import charts, selectors, storage
from civicore.sensors.models import Alarm, Device, DeviceType, Reading, Rejection, Rollup

pytestmark = pytest.mark.django_db

SOIL = [
    {
        "name": "soil_moisture",
        "unit": "%",
        "min": 0,
        "max": 100,
        "label_vi": "Độ ẩm đất",
        "label_en": "Soil moisture",
    },
    {
        "name": "temperature",
        "unit": "Cel",
        "min": -20,
        "max": 70,
        "label_vi": "Nhiệt độ",
        "label_en": "Temperature",
    },
]
RAIN = [{"name": "rain", "unit": "mm", "min": 0, "max": 500, "label_vi": "Lượng mưa", "label_en": "Rain"}]


@pytest.fixture(autouse=True)
def _fresh_partitions() -> None:
    storage.forget_partitions()


def make_type(
    agency: Agency, code: str = "soil-probe", quantities: list[dict[str, Any]] | None = None, **more: Any
) -> DeviceType:
    return DeviceType.objects.create(
        code=code,
        agency=agency,
        name_vi="Cảm biến độ ẩm đất",
        name_en="Soil moisture probe",
        quantities=SOIL if quantities is None else quantities,
        expected_interval_s=60,
        **more,
    )


def make_device(kind: DeviceType, device_id: str = "soil-1", **more: Any) -> Device:
    values: dict[str, Any] = {
        "name": f"Probe {device_id}",
        "group": "tao-dan",
        "district": "Quận 1",
        "latitude": 10.7743,
        "longitude": 106.6921,
        "status": Device.Status.ACTIVE,
    }
    values.update(more)
    return Device.objects.create(device_id=device_id, device_type=kind, agency=kind.agency, **values)


def store(device: Device, quantity: str, points: list[tuple[datetime, float]]) -> None:
    """Store readings the way ingestion does: readings, rollups and the device's counters."""
    batch = storage.Batch()
    for when, value in points:
        batch.add(device.pk, quantity, when.timestamp(), value)
    storage.store(batch)


def _hour(now: datetime) -> datetime:
    return now.replace(minute=0, second=0, microsecond=0)


def test_connectivity_of_each_kind_of_device() -> None:
    kind = make_type(AgencyFactory())
    now = timezone.now()
    online = make_device(kind, "a-1", last_seen_at=now - timedelta(seconds=30))
    offline = make_device(kind, "a-2", last_seen_at=now - timedelta(minutes=10))
    never = make_device(kind, "a-3", status=Device.Status.REGISTERED)
    revoked = make_device(kind, "a-4", status=Device.Status.REVOKED, last_seen_at=now)
    assert [selectors.connectivity(d, now) for d in (online, offline, never, revoked)] == [
        "online",
        "offline",
        "never_seen",
        "revoked",
    ]


def test_an_officer_reads_only_their_agencys_devices() -> None:
    mine, theirs = make_type(AgencyFactory(), "k-1"), make_type(AgencyFactory(), "k-2")
    make_device(mine, "mine-1", group="g-1")
    make_device(mine, "mine-2", group="g-2", district="Quận 3")
    make_device(theirs, "theirs-1", group="g-1")
    assert [d.device_id for d in selectors.devices_of_agency(agency_id=mine.agency_id)] == [
        "mine-1",
        "mine-2",
    ]
    assert [d.device_id for d in selectors.devices_of_agency(agency_id=mine.agency_id, group="g-2")] == [
        "mine-2"
    ]
    assert selectors.groups_and_districts(agency_id=mine.agency_id) == (["g-1", "g-2"], ["Quận 1", "Quận 3"])
    with pytest.raises(NotFound):
        selectors.device_for_agency(agency_id=mine.agency_id, device_id="theirs-1")


def test_stored_readings_give_raw_points_and_rollups() -> None:
    device = make_device(make_type(AgencyFactory()))
    start = _hour(timezone.now()) - timedelta(hours=2)
    store(device, "soil_moisture", [(start + timedelta(minutes=m), 40.0 + m) for m in range(0, 12)])
    raw = selectors.device_series(
        device=device,
        quantity="soil_moisture",
        period="raw",
        start=start.isoformat(),
        end=(start + timedelta(hours=1)).isoformat(),
    )
    assert [p.value for p in raw.points] == [40.0 + m for m in range(12)]
    five = selectors.device_series(
        device=device,
        quantity="soil_moisture",
        period="5m",
        start=start.isoformat(),
        end=(start + timedelta(hours=1)).isoformat(),
    )
    # 0-4, 5-9, 10-11: mean, minimum, maximum and count of each bucket
    assert [(p.value, p.minimum, p.maximum, p.count) for p in five.points] == [
        (42.0, 40.0, 44.0, 5),
        (47.0, 45.0, 49.0, 5),
        (50.5, 50.0, 51.0, 2),
    ]
    hourly = selectors.device_series(device=device, quantity="soil_moisture", period="1h")
    assert [(p.time, p.count) for p in hourly.points] == [(start, 12)]
    device.refresh_from_db()
    assert selectors.last_values(device)[0].value == 51.0


@pytest.mark.parametrize(
    ("period", "start", "end", "code"),
    [
        ("2h", None, None, "sensors.invalid_period"),
        ("1h", "2026-12-05T10:00:00+00:00", "2026-12-05T09:00:00+00:00", "sensors.invalid_range"),
        ("raw", "2026-11-01T00:00:00+00:00", "2026-12-05T00:00:00+00:00", "sensors.range_too_large"),
        ("5m", "2026-01-01T00:00:00+00:00", "2026-12-05T00:00:00+00:00", "sensors.range_too_large"),
        ("1h", "yesterday", None, "sensors.invalid_time"),
    ],
)
def test_bad_series_queries_have_stable_codes(
    period: str, start: str | None, end: str | None, code: str
) -> None:
    device = make_device(make_type(AgencyFactory()))
    with pytest.raises(selectors.SeriesQueryError) as caught:
        selectors.device_series(device=device, quantity="soil_moisture", period=period, start=start, end=end)
    assert caught.value.code == code and caught.value.status == 400


def test_a_quantity_the_device_does_not_measure_is_refused() -> None:
    device = make_device(make_type(AgencyFactory()))
    with pytest.raises(selectors.SeriesQueryError) as caught:
        selectors.device_series(device=device, quantity="rain", period="1h")
    assert caught.value.code == "sensors.unknown_quantity"


def test_series_are_capped(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(selectors, "MAX_POINTS", 5)
    device = make_device(make_type(AgencyFactory()))
    start = _hour(timezone.now()) - timedelta(hours=1)
    store(device, "temperature", [(start + timedelta(seconds=10 * i), 20.0) for i in range(8)])
    series = selectors.device_series(
        device=device, quantity="temperature", period="raw", start=start.isoformat()
    )
    assert len(series.points) == 5 and series.truncated


def test_a_group_and_a_box_aggregate_their_devices_only() -> None:
    kind = make_type(AgencyFactory())
    north = make_device(kind, "n-1", group="north", latitude=21.05, longitude=105.80)
    north2 = make_device(kind, "n-2", group="north", latitude=21.06, longitude=105.81)
    south = make_device(kind, "s-1", group="south", latitude=20.90, longitude=105.80)
    other = make_device(
        make_type(AgencyFactory(), "other"), "o-1", group="north", latitude=21.05, longitude=105.80
    )
    when = _hour(timezone.now()) - timedelta(hours=1)
    store(north, "soil_moisture", [(when, 10.0)])
    store(north2, "soil_moisture", [(when, 30.0), (when + timedelta(minutes=1), 50.0)])
    store(south, "soil_moisture", [(when, 90.0)])
    store(other, "soil_moisture", [(when, 0.0)])
    series, count = selectors.group_series(
        agency_id=kind.agency_id, group="north", quantity="soil_moisture", period="1h"
    )
    assert count == 2
    assert [(p.value, p.minimum, p.maximum, p.count) for p in series.points] == [(30.0, 10.0, 50.0, 3)]
    boxed, inside = selectors.area_series(
        agency_id=kind.agency_id, bbox="20.8,105.7,20.95,105.9", quantity="soil_moisture", period="1h"
    )
    assert inside == 1 and [p.value for p in boxed.points] == [90.0]
    with pytest.raises(NotFound):
        selectors.group_series(
            agency_id=kind.agency_id, group="nowhere", quantity="soil_moisture", period="1h"
        )
    with pytest.raises(selectors.SeriesQueryError) as raw:
        selectors.group_series(
            agency_id=kind.agency_id, group="north", quantity="soil_moisture", period="raw"
        )
    assert raw.value.code == "sensors.invalid_period"


@pytest.mark.parametrize(
    "bbox", ["", "1,2,3", "21,106,20,107", "a,b,c,d", "-91,0,10,10", "nan,0,1,1", "0,10,1,5"]
)
def test_bad_boxes_are_refused(bbox: str) -> None:
    with pytest.raises(selectors.SeriesQueryError) as caught:
        selectors.parse_bbox(bbox)
    assert caught.value.code == "sensors.invalid_bbox"


def test_device_charts_cover_three_windows_per_quantity() -> None:
    device = make_device(make_type(AgencyFactory()))
    now = timezone.now()
    store(device, "soil_moisture", [(now - timedelta(minutes=7), 33.0), (now - timedelta(days=3), 20.0)])
    charts_ = selectors.device_charts(device, now=now)
    assert [name for name, *_ in charts_] == ["soil_moisture", "temperature"]
    soil = {chart.window: chart for chart in charts_[0][3]}
    assert [p.value for p in soil["24h"].points] == [33.0]
    assert sorted(p.value for p in soil["7d"].points) == [20.0, 33.0]
    assert soil["24h"].period == "5m" and soil["7d"].period == "1h" and soil["30d"].period == "1d"
    assert all(not chart.points for chart in charts_[1][3])


def test_overview_counts_active_alarms_and_recent_rejections() -> None:
    kind = make_type(AgencyFactory())
    device = make_device(kind)
    Alarm.objects.create(device=device, agency=kind.agency, message="Dry")
    Alarm.objects.create(device=device, agency=kind.agency, message="Old", status=Alarm.Status.CLEARED)
    Rejection.objects.create(device=device, reason=Rejection.Reason.OUT_OF_RANGE, count=4)
    Rejection.objects.create(
        device=device, reason=Rejection.Reason.MALFORMED, received_at=timezone.now() - timedelta(days=2)
    )
    summary = selectors.overview(agency_id=kind.agency_id, devices=[device])
    assert (summary.active_alarms, summary.rejected_messages) == (1, 4)
    rows = selectors.rejection_summary(agency_id=kind.agency_id)
    assert [(row["reason"], row["count"]) for row in rows] == [("out_of_range", 4), ("malformed", 1)]


def test_public_environment_aggregates_by_district_without_devices() -> None:
    agency = AgencyFactory()
    soil, rain = make_type(agency), make_type(agency, "rain-gauge", RAIN)
    hour = _hour(timezone.now()) - timedelta(hours=2)
    a = make_device(soil, "soil-a", district="Quận 1")
    b = make_device(soil, "soil-b", district="Quận 1")
    c = make_device(soil, "soil-c", district="", group="cong-vien-le-van-tam")
    r1 = make_device(rain, "rain-1", district="Quận 1")
    r2 = make_device(rain, "rain-2", district="Quận 1")
    hidden = make_device(soil, "soil-revoked", district="Quận 1", status=Device.Status.REVOKED)
    store(a, "soil_moisture", [(hour, 20.0)])
    store(b, "soil_moisture", [(hour, 40.0), (hour + timedelta(minutes=5), 60.0)])
    store(c, "soil_moisture", [(hour, 70.0)])
    store(r1, "rain", [(hour, 2.0), (hour + timedelta(hours=1), 3.0)])
    store(r2, "rain", [(hour, 1.0)])
    store(hidden, "soil_moisture", [(hour, 0.0)])
    store(a, "soil_moisture", [(hour - timedelta(hours=30), 99.0)])  # older than a day
    figures = {item.quantity: item for item in selectors.public_environment()}
    moisture = {row.area: row for row in figures["soil_moisture"].areas}
    assert moisture["Quận 1"].value == pytest.approx(40.0) and moisture["Quận 1"].devices == 2
    assert moisture["cong-vien-le-van-tam"].value == 70.0
    rain_total = figures["rain"].areas[0]
    assert figures["rain"].aggregate == "sum" and rain_total.value == pytest.approx(3.0)  # (5 + 1) / 2 gauges
    assert [p.value for p in figures["rain"].hourly] == [pytest.approx(1.5), pytest.approx(3.0)]
    only = selectors.public_environment(area="cong-vien-le-van-tam")
    assert [item.quantity for item in only] == ["soil_moisture"] and only[0].hourly[0].value == 70.0
    assert selectors.public_areas() == [
        "cong-vien-le-van-tam",
        "Quận 1",
    ] or selectors.public_areas() == sorted(["cong-vien-le-van-tam", "Quận 1"])


def test_line_chart_is_an_accessible_svg_with_escaped_text() -> None:
    start = datetime(2026, 12, 5, 0, 0, tzinfo=UTC)
    points = [
        selectors.Point(
            time=start + timedelta(hours=h), value=10.0 + h, minimum=9.0 + h, maximum=11.0 + h, count=12
        )
        for h in range(6)
    ]
    svg = charts.line_chart(
        chart_id="c-1",
        title="Soil <moisture>",
        points=points,
        start=start,
        end=start + timedelta(hours=6),
        unit="%",
        bucket=timedelta(hours=1),
    )
    assert svg.startswith('<svg class="sensor-chart" id="c-1"') and 'role="img"' in svg
    assert 'aria-labelledby="c-1-title c-1-desc"' in svg and "Soil &lt;moisture&gt;" in svg
    assert "6 values. Lowest 9 %, highest 16 %" in svg and "<polyline" in svg and "style=" not in svg
    empty = charts.line_chart(
        chart_id="c-2",
        title="t",
        points=[],
        start=start,
        end=start + timedelta(days=1),
        unit="",
        bucket=timedelta(minutes=5),
    )
    assert "No readings in this period." in empty and "<polyline" not in empty


def test_a_gap_in_the_data_is_a_gap_in_the_line() -> None:
    start = datetime(2026, 12, 5, 0, 0, tzinfo=UTC)
    hours = [0, 1, 2, 6, 7]
    points = [
        selectors.Point(time=start + timedelta(hours=h), value=1.0, minimum=1.0, maximum=1.0, count=1)
        for h in hours
    ]
    svg = charts.line_chart(
        chart_id="g",
        title="t",
        points=points,
        start=start,
        end=start + timedelta(hours=8),
        unit="",
        bucket=timedelta(hours=1),
    )
    assert svg.count("<polyline") == 2


def test_reading_rows_exist_for_the_stored_values() -> None:
    device = make_device(make_type(AgencyFactory()))
    when = timezone.now() - timedelta(minutes=1)
    store(device, "temperature", [(when, 21.5), (when, 21.5)])  # a retransmission is stored once
    assert Reading.objects.filter(device=device).count() == 1
    assert Rollup.objects.filter(device=device, period="5m").get().count == 1
