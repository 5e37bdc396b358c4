"""The sensor pages as officers and the public use them: each officer sees their own agency only,
operators watch and act, engineers also register, provision and edit rules; credentials are shown
once; forms keep what was typed and say what is wrong; the public page shows aggregates only."""

from __future__ import annotations

import json
import re
from datetime import timedelta
from typing import Any

import pytest
from django.test import Client
from django.utils import timezone

from civicore.agencies.tests.factories import AgencyFactory, back_office_client, make_officer
from civicore.sensors import storage
from civicore.sensors.models import Alarm, Command, Device, DeviceType, Rejection, Rollup, Rule, RuleFiring
from civicore.sensors.tests.factories import (
    make_device,
    make_provisioned_device,
    rain_gauge_type,
    sensor_engineer,
    sensor_operator,
    soil_moisture_type,
    valve_type,
)

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _fresh_partitions() -> None:
    storage.forget_partitions()


@pytest.fixture
def agency() -> Any:
    return AgencyFactory()


@pytest.fixture
def operator(agency: Any) -> Client:
    return back_office_client(sensor_operator(agency).user)


@pytest.fixture
def engineer(agency: Any) -> Client:
    return back_office_client(sensor_engineer(agency).user)


def _store(device: Device, quantity: str, points: list[tuple[Any, float]]) -> None:
    batch = storage.Batch()
    for when, value in points:
        batch.add(device.pk, quantity, when.timestamp(), value)
    storage.store(batch)


def _seen(device: Device, ago: timedelta = timedelta(seconds=5)) -> Device:
    Device.objects.filter(pk=device.pk).update(last_seen_at=timezone.now() - ago)
    device.refresh_from_db()
    return device


# --- who may see what ------------------------------------------------------------------------------


def test_anonymous_and_officers_without_the_role_are_kept_out(agency: Any) -> None:
    assert Client().get("/office/sensors/")["Location"].startswith("/accounts/login/")
    caseworker = back_office_client(make_officer(agency, roles=("caseworker",)).user)
    for url in ("/office/sensors/", "/office/sensors/alarms/", "/office/sensors/rules/"):
        assert caseworker.get(url).status_code == 403
    operator = back_office_client(sensor_operator(agency).user)
    for url in (
        "/office/sensors/add/device/",
        "/office/sensors/add/device-type/",
        "/office/sensors/add/rule/",
    ):
        assert operator.get(url).status_code == 403, url


def test_the_dashboard_shows_the_agencys_devices_on_a_map_and_in_a_list(
    agency: Any, operator: Client
) -> None:
    kind = soil_moisture_type(agency)
    online = _seen(make_device(kind, device_id="soil-online", group="park-1"))
    _seen(make_device(kind, device_id="soil-offline", group="park-2", district="Đống Đa"), timedelta(hours=2))
    make_device(kind, device_id="soil-new")
    theirs = make_device(soil_moisture_type(AgencyFactory()), device_id="soil-theirs")
    _store(online, "soil_moisture", [(timezone.now() - timedelta(seconds=30), 41.5)])
    Alarm.objects.create(device=online, agency=agency, message="Dry")
    Rejection.objects.create(device=online, reason=Rejection.Reason.OUT_OF_RANGE, count=3)

    response = operator.get("/office/sensors/")
    page = response.content.decode()
    assert response.status_code == 200
    table = page[page.index('id="device-table"') :]
    assert "soil-online" in table and "soil-offline" in table and "soil-new" in table
    assert theirs.device_id not in page
    assert "Online" in table and "Offline" in table and "Never seen" in table
    assert "Soil moisture: 41.5 %" in table
    assert re.search(r'id="count-alarms">1<', page) and re.search(r'id="count-rejected">3<', page)
    data = json.loads(
        re.search(r'<script id="device-map-data" type="application/json">(.*?)</script>', page).group(1)
    )
    assert {item["id"]: item["status"] for item in data} == {
        "soil-new": "never_seen",
        "soil-offline": "offline",
        "soil-online": "online",
    }
    assert "sensors-map.js" in page and "tile.openstreetmap.org" in response["Content-Security-Policy"]
    assert "<script>" not in page  # no inline script: the map reads the JSON block

    filtered = operator.get("/office/sensors/?group=park-2").content.decode()
    filtered_table = filtered[filtered.index('id="device-table"') :]
    assert "soil-offline" in filtered_table and "soil-online" not in filtered_table


def test_the_header_links_to_the_sensors_for_operators_only(agency: Any, operator: Client) -> None:
    assert 'href="/office/sensors/"' in operator.get("/office/sensors/").content.decode()
    caseworker = back_office_client(make_officer(agency, roles=("caseworker",)).user)
    assert 'href="/office/sensors/"' not in caseworker.get("/office/").content.decode()


def test_another_agencys_device_is_not_found(operator: Client) -> None:
    theirs = make_device(soil_moisture_type(AgencyFactory()))
    assert operator.get(f"/office/sensors/devices/{theirs.device_id}/").status_code == 404
    assert operator.get(f"/office/sensors/devices/{theirs.device_id}/charts/").status_code == 404


# --- a device ---------------------------------------------------------------------------------------


def test_the_device_page_draws_accessible_charts_with_tables(agency: Any, operator: Client) -> None:
    device = _seen(make_device(soil_moisture_type(agency), device_id="soil-chart"))
    now = timezone.now()
    bucket = (now - timedelta(minutes=15)).replace(second=0, microsecond=0)
    bucket -= timedelta(minutes=bucket.minute % 5)
    _store(
        device,
        "soil_moisture",
        [(bucket + timedelta(minutes=1), 30.0), (bucket + timedelta(minutes=2), 34.0)],
    )
    _store(device, "soil_moisture", [(now - timedelta(days=3), 55.0)])
    Rejection.objects.create(
        device=device, reason=Rejection.Reason.WRONG_UNIT, detail="unit 'F' for soil_moisture"
    )
    page = operator.get(f"/office/sensors/devices/{device.device_id}/").content.decode()
    for window in ("24h", "7d", "30d"):
        assert (
            f'id="chart-soil_moisture-{window}"' in page
            and f'id="table-chart-soil_moisture-{window}"' in page
        )
    assert 'role="img" aria-labelledby="chart-soil_moisture-24h-title chart-soil_moisture-24h-desc"' in page
    table_24h = page[page.index('id="table-chart-soil_moisture-24h"') :]
    table_24h = table_24h[: table_24h.index("</table>")]
    assert "<td>32</td><td>30</td><td>34</td><td>2</td>" in table_24h
    assert "Unit does not match the device type" in page and "unit &#x27;F&#x27; for soil_moisture" in page
    assert 'hx-trigger="every 10s"' in page and "Pause live updates" in page
    assert "style=" not in page[page.index('id="device-charts"') :]


def test_the_chart_fragment_shows_new_rollups_and_can_be_paused(agency: Any, operator: Client) -> None:
    device = make_device(soil_moisture_type(agency), device_id="soil-live")
    url = f"/office/sensors/devices/{device.device_id}/charts/"
    before = operator.get(url, HTTP_HX_REQUEST="true").content.decode()
    assert "<html" not in before and "77.25" not in before
    bucket = timezone.now().replace(second=0, microsecond=0) - timedelta(minutes=10)
    bucket -= timedelta(minutes=bucket.minute % 5)
    Rollup.objects.create(
        device=device,
        quantity="soil_moisture",
        period="5m",
        bucket=bucket,
        count=4,
        total=309.0,
        minimum=70,
        maximum=80,
    )
    after = operator.get(url, HTTP_HX_REQUEST="true").content.decode()
    assert "<td>77.25</td><td>70</td><td>80</td><td>4</td>" in after
    assert 'hx-trigger="every 10s"' in after
    paused = operator.get(url + "?live=0").content.decode()
    assert "hx-trigger" not in paused and "live updates are paused" in paused
    assert (
        "Resume live updates"
        in operator.get(f"/office/sensors/devices/{device.device_id}/?live=0").content.decode()
    )


def test_an_operator_sends_a_command_to_an_online_valve(agency: Any, operator: Client) -> None:
    valve, _credentials = make_provisioned_device(valve_type(agency), device_id="valve-1")
    _seen(valve)
    response = operator.post(
        f"/office/sensors/devices/{valve.device_id}/command/",
        {"name": "open", "params": '{"duration_s": 120}'},
    )
    assert response.status_code == 302 and response["Location"].endswith("#commands")
    command = Command.objects.get(device=valve, interlock=False)
    assert (command.name, command.params, command.status) == (
        "open",
        {"duration_s": 120},
        Command.Status.SENT,
    )
    page = operator.get(f"/office/sensors/devices/{valve.device_id}/").content.decode()
    history = page[page.index('id="device-commands"') :]
    assert "open" in history and "{&quot;duration_s&quot;: 120}" in history and "Sent, waiting" in history
    listing = operator.get("/office/sensors/commands/").content.decode()
    assert "valve-1" in listing or valve.name in listing


def test_command_errors_stay_in_the_form(agency: Any, operator: Client) -> None:
    valve, _credentials = make_provisioned_device(valve_type(agency), device_id="valve-2")
    url = f"/office/sensors/devices/{valve.device_id}/command/"
    bad_json = operator.post(url, {"name": "open", "params": "{duration: 5"})
    page = bad_json.content.decode()
    assert bad_json.status_code == 422 and "This is not valid JSON" in page and "{duration: 5" in page
    assert not Command.objects.exists()
    offline = operator.post(url, {"name": "open", "params": '{"duration_s": 60}'})
    assert offline.status_code == 422 and "The device is offline" in offline.content.decode()
    assert Command.objects.get().status == Command.Status.REFUSED  # kept, with why
    too_long = operator.post(url, {"name": "open", "params": '{"duration_s": 999999}'})
    assert too_long.status_code == 422 and "duration_s must be a whole number" in too_long.content.decode()


def test_credentials_are_shown_once_after_provisioning(agency: Any, engineer: Client) -> None:
    device = make_device(soil_moisture_type(agency), device_id="soil-prov")
    response = engineer.post(f"/office/sensors/devices/{device.device_id}/credentials/provision/")
    page = response.content.decode()
    assert response.status_code == 200 and response["Cache-Control"] == "private, no-store"
    password = re.search(r"MQTT password</th><td><code class=\"sensor-secret\">([^<]+)</code>", page).group(1)
    token = re.search(r"HTTPS token</th><td><code class=\"sensor-secret\">([^<]+)</code>", page).group(1)
    assert len(password) > 20 and len(token) > 20
    assert "civicore/v1/devices/soil-prov/senml" in page
    device.refresh_from_db()
    assert device.status == Device.Status.ACTIVE and token not in device.http_token_hash
    later = engineer.get(f"/office/sensors/devices/{device.device_id}/").content.decode()
    assert password not in later and token not in later and "Rotate the credentials" in later

    rotated = engineer.post(
        f"/office/sensors/devices/{device.device_id}/credentials/rotate/"
    ).content.decode()
    assert "New credentials" in rotated and password not in rotated
    again = engineer.post(f"/office/sensors/devices/{device.device_id}/credentials/provision/", follow=True)
    assert "already has credentials" in again.content.decode()
    revoked = engineer.post(f"/office/sensors/devices/{device.device_id}/credentials/revoke/", follow=True)
    assert "was revoked" in revoked.content.decode()
    device.refresh_from_db()
    assert device.status == Device.Status.REVOKED


def test_operators_cannot_provision(agency: Any, operator: Client) -> None:
    device = make_device(soil_moisture_type(agency))
    assert (
        operator.post(f"/office/sensors/devices/{device.device_id}/credentials/provision/").status_code == 403
    )
    page = operator.get(f"/office/sensors/devices/{device.device_id}/").content.decode()
    assert "Provision the device" not in page
    device.refresh_from_db()
    assert device.status == Device.Status.REGISTERED


# --- registration -----------------------------------------------------------------------------------


def test_an_engineer_adds_a_device_type_and_registers_a_device(agency: Any, engineer: Client) -> None:
    quantities = json.dumps([{"name": "pm25", "unit": "ug/m3", "min": 0, "max": 1000, "label_en": "PM2.5"}])
    response = engineer.post(
        "/office/sensors/add/device-type/",
        {
            "code": "air-quality",
            "name_vi": "Trạm đo không khí",
            "name_en": "Air quality station",
            "role": "sensor",
            "quantities": quantities,
            "commands": "[]",
            "expected_interval_s": "120",
            "offline_after_intervals": "3",
            "retention_days": "400",
            "rate_per_minute": "60",
            "command_timeout_s": "30",
            "command_retries": "2",
        },
    )
    assert response.status_code == 302, response.content.decode()[:3000]
    kind = DeviceType.objects.get(code="air-quality")
    assert kind.agency == agency and kind.expected_interval_s == 120
    registered = engineer.post(
        "/office/sensors/add/device/",
        {
            "device_id": "air-hoan-kiem-1",
            "name": "Hồ Hoàn Kiếm",
            "device_type": "air-quality",
            "group": "hoan-kiem",
            "district": "Hoàn Kiếm",
            "latitude": "21,0287",
            "longitude": "105.8524",
        },
    )
    assert (
        registered.status_code == 302 and registered["Location"] == "/office/sensors/devices/air-hoan-kiem-1/"
    )
    device = Device.objects.get(device_id="air-hoan-kiem-1")
    assert device.status == Device.Status.REGISTERED and device.latitude == pytest.approx(21.0287)


def test_registration_errors_keep_what_was_typed(agency: Any, engineer: Client) -> None:
    bad_json = engineer.post(
        "/office/sensors/add/device-type/",
        {
            "code": "x-1",
            "name_vi": "Loại X",
            "role": "sensor",
            "quantities": '[{"name": "pm25",]',
            "commands": "",
        },
    )
    page = bad_json.content.decode()
    assert bad_json.status_code == 422 and 'href="#id_quantities"' in page and "not valid JSON" in page
    assert "[{&quot;name&quot;: &quot;pm25&quot;,]" in page and 'value="Loại X"' in page
    bad_code = engineer.post(
        "/office/sensors/add/device-type/",
        {
            "code": "Not A Slug",
            "name_vi": "Loại X",
            "role": "sensor",
            "quantities": '[{"name": "pm25", "unit": "ug/m3"}]',
            "expected_interval_s": "many",
        },
    )
    assert "Enter a whole number." in bad_code.content.decode()
    service_error = engineer.post(
        "/office/sensors/add/device-type/",
        {
            "code": "Not A Slug",
            "name_vi": "Loại X",
            "role": "sensor",
            "quantities": '[{"name": "pm25", "unit": "ug/m3"}]',
        },
    )
    assert 'id="id_code-error"' in service_error.content.decode()
    assert not DeviceType.objects.exists()
    kind = soil_moisture_type(agency)
    bad_device = engineer.post(
        "/office/sensors/add/device/",
        {
            "device_id": "ok-device-1",
            "name": "A",
            "device_type": kind.code,
            "latitude": "north",
            "longitude": "105.8",
        },
    )
    page = bad_device.content.decode()
    assert (
        bad_device.status_code == 422 and 'id="id_latitude-error"' in page and 'value="ok-device-1"' in page
    )
    other_type = soil_moisture_type(AgencyFactory())
    foreign = engineer.post(
        "/office/sensors/add/device/",
        {
            "device_id": "ok-device-2",
            "name": "A",
            "device_type": other_type.code,
            "latitude": "21",
            "longitude": "105",
        },
    )
    assert "Choose a device type of your agency." in foreign.content.decode()
    assert not Device.objects.filter(device_id__startswith="ok-device").exists()


# --- alarms, commands and rejections ---------------------------------------------------------------


def test_operators_acknowledge_and_clear_alarms_with_a_note(agency: Any, operator: Client) -> None:
    device = make_device(soil_moisture_type(agency))
    alarm = Alarm.objects.create(device=device, agency=agency, message="Soil too dry", severity="critical")
    theirs = Alarm.objects.create(
        device=make_device(soil_moisture_type(AgencyFactory())), agency=AgencyFactory(), message="Not yours"
    )
    page = operator.get("/office/sensors/alarms/").content.decode()
    assert "Soil too dry" in page and "Not yours" not in page and "Critical" in page
    acknowledged = operator.post(
        f"/office/sensors/alarms/{alarm.pk}/acknowledge/", {"note": "Team on the way"}
    )
    assert acknowledged.status_code == 302
    alarm.refresh_from_db()
    assert alarm.status == Alarm.Status.ACKNOWLEDGED and alarm.note == "Team on the way"
    listed = operator.get("/office/sensors/alarms/").content.decode()
    assert "Team on the way" in listed[listed.index('id="acknowledged-alarms"') :]
    operator.post(f"/office/sensors/alarms/{alarm.pk}/clear/", {"note": "Watered"})
    alarm.refresh_from_db()
    assert alarm.status == Alarm.Status.CLEARED and alarm.note == "Watered"
    assert operator.post(f"/office/sensors/alarms/{theirs.pk}/clear/").status_code == 404
    again = operator.post(f"/office/sensors/alarms/{alarm.pk}/clear/", follow=True).content.decode()
    assert "already cleared" in again


def test_the_rejection_page_counts_by_device_and_reason(agency: Any, operator: Client) -> None:
    device = make_device(soil_moisture_type(agency), device_id="soil-rej")
    Rejection.objects.create(device=device, reason=Rejection.Reason.OUT_OF_RANGE, count=7)
    Rejection.objects.create(device=device, reason=Rejection.Reason.OUT_OF_RANGE, count=2)
    Rejection.objects.create(device=device, reason=Rejection.Reason.MALFORMED)
    page = operator.get("/office/sensors/rejections/").content.decode()
    rows = re.findall(r"<td data-label=\"Reason\">([^<]+)</td>\s*<td data-label=\"Count\">(\d+)</td>", page)
    assert rows == [("Value outside the plausible range", "9"), ("Not valid SenML", "1")]


# --- rules ------------------------------------------------------------------------------------------

DRY = {
    "target": {"device_type": "__type__", "groups": ["park-1"]},
    "when": {"threshold": {"quantity": "soil_moisture", "op": "below", "value": 20}},
    "on_fire": [{"alarm": {"severity": "warning", "message": "Soil is dry"}}],
}


def _definition(kind: DeviceType, **changes: Any) -> str:
    body = json.loads(json.dumps(DRY).replace("__type__", kind.code))
    body.update(changes)
    return json.dumps(body)


def test_an_engineer_writes_a_rule_and_edits_it_into_a_new_version(agency: Any, engineer: Client) -> None:
    kind = soil_moisture_type(agency)
    created = engineer.post(
        "/office/sensors/add/rule/",
        {"code": "dry-soil", "name": "Dry soil", "definition": _definition(kind), "note": "first"},
    )
    assert created.status_code == 302 and created["Location"] == "/office/sensors/rules/dry-soil/"
    edited = engineer.post(
        "/office/sensors/rules/dry-soil/edit/",
        {
            "name": "Dry soil (15%)",
            "definition": _definition(
                kind, when={"threshold": {"quantity": "soil_moisture", "op": "below", "value": 15}}
            ),
            "note": "lower threshold",
        },
    )
    assert edited.status_code == 302
    rule = Rule.objects.get(code="dry-soil")
    assert rule.current_version.number == 2 and rule.name == "Dry soil (15%)"
    device = make_device(kind, device_id="soil-rule")
    RuleFiring.objects.create(
        rule_version=rule.current_version,
        device=device,
        kind="fired",
        readings=[
            {
                "device": "soil-rule",
                "quantity": "soil_moisture",
                "time": "2026-12-05T05:00:00+00:00",
                "value": 12.5,
            }
        ],
    )
    page = engineer.get("/office/sensors/rules/dry-soil/").content.decode()
    assert "Version 2" in page and "Version 1" in page and "lower threshold" in page
    assert "&quot;value&quot;: 15" in page and "&quot;value&quot;: 20" in page  # both definitions, formatted
    assert "soil-rule · soil_moisture = 12.5" in page
    engineer.post("/office/sensors/rules/dry-soil/disable/")
    rule.refresh_from_db()
    assert not rule.enabled
    engineer.post("/office/sensors/rules/dry-soil/enable/")
    rule.refresh_from_db()
    assert rule.enabled


def test_a_rule_with_mistakes_comes_back_with_the_text_and_the_reason(agency: Any, engineer: Client) -> None:
    kind = soil_moisture_type(agency)
    not_json = engineer.post(
        "/office/sensors/add/rule/",
        {"code": "r-1", "name": "R", "definition": '{"when": ', "note": "keep me"},
    )
    page = not_json.content.decode()
    assert not_json.status_code == 422 and "Not valid JSON" in page and 'href="#id_definition"' in page
    assert "{&quot;when&quot;: " in page and 'value="keep me"' in page and 'value="r-1"' in page
    wrong_op = _definition(
        kind, when={"threshold": {"quantity": "soil_moisture", "op": "beneath", "value": 1}}
    )
    invalid = engineer.post("/office/sensors/add/rule/", {"code": "r-1", "name": "R", "definition": wrong_op})
    text = invalid.content.decode()
    assert invalid.status_code == 422 and "when.threshold.op" in text and "beneath" in text
    unknown = _definition(kind, when={"threshold": {"quantity": "rainfall", "op": "below", "value": 1}})
    refused = engineer.post("/office/sensors/add/rule/", {"code": "r-1", "name": "R", "definition": unknown})
    assert refused.status_code == 422 and "rainfall" in refused.content.decode()
    assert not Rule.objects.exists()
    operator = back_office_client(sensor_operator(agency).user)
    assert (
        operator.post(
            "/office/sensors/add/rule/", {"code": "r-2", "name": "R", "definition": "{}"}
        ).status_code
        == 403
    )


def test_the_rule_form_speaks_vietnamese(agency: Any) -> None:
    client = back_office_client(sensor_engineer(agency).user, language="vi")
    page = client.post(
        "/office/sensors/add/rule/", {"code": "r-1", "name": "R", "definition": "["}
    ).content.decode()
    assert '<html lang="vi">' in page and 'id="id_definition-error"' in page


# --- the public page --------------------------------------------------------------------------------


def test_the_public_page_shows_aggregates_only() -> None:
    agency = AgencyFactory()
    soil, rain = soil_moisture_type(agency), rain_gauge_type(agency)
    a, _ = make_provisioned_device(soil, device_id="secret-soil-a", district="Ba Đình")
    b, _ = make_provisioned_device(soil, device_id="secret-soil-b", district="Ba Đình")
    r, _ = make_provisioned_device(rain, device_id="secret-rain", district="Đống Đa")
    hour = timezone.now().replace(minute=0, second=0, microsecond=0) - timedelta(hours=1)
    _store(a, "soil_moisture", [(hour, 30.0)])
    _store(b, "soil_moisture", [(hour, 50.0)])
    _store(r, "rainfall", [(hour, 2.5), (hour + timedelta(minutes=5), 1.5)])
    response = Client(HTTP_ACCEPT_LANGUAGE="en").get("/environment/")
    page = response.content.decode()
    assert response.status_code == 200
    assert "secret-" not in page and "105.83" not in page and "21.03" not in page
    soil_table = page[page.index('id="env-table-soil_moisture"') :]
    assert re.search(r"<th scope=\"row\">Ba Đình</th><td class=\"env-value\">40</td>", soil_table)
    rain_table = page[page.index('id="env-table-rainfall"') :]
    assert re.search(r"<th scope=\"row\">Đống Đa</th><td class=\"env-value\">4</td>", rain_table)
    assert "total over the last 24 hours" in page and 'role="img"' in page
    only = Client(HTTP_ACCEPT_LANGUAGE="en").get("/environment/", {"area": "Đống Đa"}).content.decode()
    assert "env-table-rainfall" in only and "env-table-soil_moisture" not in only
    unknown = Client().get("/environment/", {"area": "Atlantis"})
    assert unknown.status_code == 400 and 'aria-invalid="true"' in unknown.content.decode()
