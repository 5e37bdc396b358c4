"""The sensor query API: an officer (session) or an agency system (API token of an officer)
holding sensor.operate lists its agency's devices and reads series of one device, a group or a
box; bad queries are 400 with stable codes, another agency's devices are 404, and the device list
costs the same number of queries however many devices there are."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from django.test import Client
from django.utils import timezone

from civicore.agencies.tests.factories import AgencyFactory, back_office_client, make_officer
from civicore.identity.services import api_token_create
from civicore.identity.tests.factories import make_citizen
from civicore.sensors import storage
from civicore.sensors.models import Device
from civicore.sensors.tests.factories import make_device, rain_gauge_type, sensor_operator, soil_moisture_type

pytestmark = pytest.mark.django_db

API = "/api/v1/sensors"


@pytest.fixture(autouse=True)
def _fresh_partitions() -> None:
    storage.forget_partitions()


@pytest.fixture
def agency() -> Any:
    return AgencyFactory()


@pytest.fixture
def client(agency: Any) -> Client:
    return back_office_client(sensor_operator(agency).user)


def _store(device: Device, quantity: str, points: list[tuple[Any, float]]) -> None:
    batch = storage.Batch()
    for when, value in points:
        batch.add(device.pk, quantity, when.timestamp(), value)
    storage.store(batch)


def _hour_ago() -> Any:
    return timezone.now().replace(minute=0, second=0, microsecond=0) - timedelta(hours=1)


def test_devices_are_listed_page_by_page_for_the_own_agency_only(agency: Any, client: Client) -> None:
    kind = soil_moisture_type(agency)
    for number in range(5):
        make_device(kind, device_id=f"soil-{number}", group="park-1" if number < 3 else "park-2")
    make_device(soil_moisture_type(AgencyFactory()), device_id="soil-theirs")
    seen = Device.objects.get(device_id="soil-0")
    _store(seen, "soil_moisture", [(timezone.now() - timedelta(seconds=20), 37.5)])

    first = client.get(f"{API}/devices", {"limit": 2})
    body = first.json()
    assert first.status_code == 200 and [d["device_id"] for d in body["items"]] == ["soil-0", "soil-1"]
    device = body["items"][0]
    assert device["connectivity"] == "online" and device["status"] == "registered"
    assert (
        device["last_values"][0]["quantity"] == "soil_moisture" and device["last_values"][0]["value"] == 37.5
    )
    assert device["device_type"] == kind.code and device["group"] == "park-1"
    assert body["items"][1]["connectivity"] == "never_seen"
    ids = [d["device_id"] for d in body["items"]]
    cursor = body["next_cursor"]
    while cursor:
        page = client.get(f"{API}/devices", {"limit": 2, "cursor": cursor}).json()
        ids += [d["device_id"] for d in page["items"]]
        cursor = page["next_cursor"]
    assert ids == [f"soil-{n}" for n in range(5)]
    grouped = client.get(f"{API}/devices", {"group": "park-2"}).json()
    assert [d["device_id"] for d in grouped["items"]] == ["soil-3", "soil-4"]
    tampered = client.get(f"{API}/devices", {"cursor": "not-a-cursor"})
    assert tampered.status_code == 422 and tampered.json()["code"] == "invalid_cursor"


def test_the_device_list_does_not_query_per_device(
    agency: Any, client: Client, django_assert_max_num_queries: Any
) -> None:
    kind = soil_moisture_type(agency)
    for number in range(3):
        make_device(kind, device_id=f"few-{number}")
    client.get(f"{API}/devices")  # the session and officer are warm from here on
    with django_assert_max_num_queries(6) as few:
        assert len(client.get(f"{API}/devices").json()["items"]) == 3
    for number in range(30):
        make_device(kind, device_id=f"many-{number:02d}")
    with django_assert_max_num_queries(6) as many:
        assert len(client.get(f"{API}/devices").json()["items"]) == 33
    assert len(many.captured_queries) == len(few.captured_queries)


def test_who_may_query(agency: Any) -> None:
    make_device(soil_moisture_type(agency), device_id="soil-auth")
    assert Client().get(f"{API}/devices").json()["code"] == "unauthenticated"
    citizen = Client()
    citizen.force_login(make_citizen().user)
    refused = citizen.get(f"{API}/devices")
    assert refused.status_code == 403 and refused.json()["code"] == "not_an_officer"
    caseworker = back_office_client(make_officer(agency, roles=("caseworker",)).user)
    assert caseworker.get(f"{API}/devices").json()["code"] == "missing_permission"
    # An agency system: an API token of an officer's account holding sensor.operate.
    _token, secret = api_token_create(user=sensor_operator(agency).user, name="scada")
    system = Client(HTTP_AUTHORIZATION=f"Bearer {secret}")
    assert [d["device_id"] for d in system.get(f"{API}/devices").json()["items"]] == ["soil-auth"]
    other = back_office_client(sensor_operator(AgencyFactory()).user)
    assert other.get(f"{API}/devices").json()["items"] == []
    missing = other.get(f"{API}/devices/soil-auth/series", {"quantity": "soil_moisture"})
    assert missing.status_code == 404 and missing.json()["code"] == "sensors.unknown_device"


def test_a_device_series_raw_and_rolled_up(agency: Any, client: Client) -> None:
    device = make_device(soil_moisture_type(agency), device_id="soil-series")
    start = _hour_ago()
    _store(device, "soil_moisture", [(start + timedelta(minutes=m), 20.0 + m) for m in range(0, 10)])
    window = {"start": start.isoformat(), "end": (start + timedelta(hours=1)).isoformat()}
    raw = client.get(
        f"{API}/devices/soil-series/series", {"quantity": "soil_moisture", "period": "raw", **window}
    )
    body = raw.json()
    assert raw.status_code == 200 and body["device_id"] == "soil-series" and not body["truncated"]
    assert [p["value"] for p in body["points"]] == [20.0 + m for m in range(10)]
    five = client.get(
        f"{API}/devices/soil-series/series", {"quantity": "soil_moisture", "period": "5m", **window}
    )
    assert [(p["value"], p["min"], p["max"], p["count"]) for p in five.json()["points"]] == [
        (22.0, 20.0, 24.0, 5),
        (27.0, 25.0, 29.0, 5),
    ]
    daily = client.get(
        f"{API}/devices/soil-series/series", {"quantity": "soil_moisture", "period": "1d"}
    ).json()
    assert sum(p["count"] for p in daily["points"]) == 10


@pytest.mark.parametrize(
    ("params", "code"),
    [
        ({"quantity": "soil_moisture", "period": "10m"}, "sensors.invalid_period"),
        (
            {
                "quantity": "soil_moisture",
                "period": "1h",
                "start": "2026-12-05T10:00Z",
                "end": "2026-12-05T09:00Z",
            },
            "sensors.invalid_range",
        ),
        (
            {
                "quantity": "soil_moisture",
                "period": "raw",
                "start": "2026-01-01T00:00Z",
                "end": "2026-12-01T00:00Z",
            },
            "sensors.range_too_large",
        ),
        ({"quantity": "soil_moisture", "period": "1h", "start": "last tuesday"}, "sensors.invalid_time"),
        ({"period": "1h"}, "sensors.invalid_quantity"),
        ({"quantity": "rainfall", "period": "1h"}, "sensors.unknown_quantity"),
    ],
)
def test_bad_series_queries_are_400_with_a_stable_code(
    agency: Any, client: Client, params: dict[str, str], code: str
) -> None:
    make_device(soil_moisture_type(agency), device_id="soil-bad")
    response = client.get(f"{API}/devices/soil-bad/series", params)
    assert response.status_code == 400 and response.json()["code"] == code, response.json()
    assert response.json()["message"]


def test_a_group_and_an_area_aggregate_the_agencys_devices(agency: Any, client: Client) -> None:
    kind = rain_gauge_type(agency)
    west = make_device(kind, device_id="rain-west", group="west", latitude=21.02, longitude=105.80)
    east = make_device(kind, device_id="rain-east", group="west", latitude=21.03, longitude=105.86)
    theirs = make_device(rain_gauge_type(AgencyFactory()), device_id="rain-theirs", group="west")
    hour = _hour_ago()
    _store(west, "rainfall", [(hour, 2.0)])
    _store(east, "rainfall", [(hour, 4.0), (hour + timedelta(minutes=1), 6.0)])
    _store(theirs, "rainfall", [(hour, 400.0)])
    group = client.get(f"{API}/groups/west/series", {"quantity": "rainfall", "period": "1h"}).json()
    assert group["devices"] == 2 and group["group"] == "west"
    assert [(p["value"], p["min"], p["max"], p["count"]) for p in group["points"]] == [(4.0, 2.0, 6.0, 3)]
    area = client.get(
        f"{API}/area/series", {"bbox": "21.0,105.75,21.1,105.82", "quantity": "rainfall", "period": "1h"}
    ).json()
    assert area["devices"] == 1 and area["bbox"] == [21.0, 105.75, 21.1, 105.82]
    assert [p["value"] for p in area["points"]] == [2.0]
    unknown = client.get(f"{API}/groups/east/series", {"quantity": "rainfall"})
    assert unknown.status_code == 404 and unknown.json()["code"] == "sensors.unknown_group"
    raw = client.get(f"{API}/groups/west/series", {"quantity": "rainfall", "period": "raw"})
    assert raw.status_code == 400 and raw.json()["code"] == "sensors.invalid_period"
    for bbox in ("", "21,105", "21.1,105.7,21.0,105.9", "x,y,z,w", "95,0,96,1"):
        bad = client.get(f"{API}/area/series", {"bbox": bbox, "quantity": "rainfall"})
        assert bad.status_code == 400 and bad.json()["code"] == "sensors.invalid_bbox", bbox


def test_the_endpoints_are_documented() -> None:
    from config.api import api

    paths = api.get_openapi_schema()["paths"]
    series = paths["/api/v1/sensors/devices/{device_id}/series"]["get"]
    names = {parameter["name"] for parameter in series["parameters"]}
    assert {"device_id", "quantity", "period", "start", "end"} <= names
    assert "400" in series["responses"] and "404" in series["responses"]
    assert "raw" in next(p for p in series["parameters"] if p["name"] == "period")["description"]
    for path in (
        "/api/v1/sensors/devices",
        "/api/v1/sensors/groups/{group}/series",
        "/api/v1/sensors/area/series",
    ):
        assert "get" in paths[path]
