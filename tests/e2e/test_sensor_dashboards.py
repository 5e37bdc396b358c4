"""The sensor pages in a real browser, in Vietnamese and English: a sensor engineer logs in with a
second factor, sees the devices on the map and in the list, opens a device whose charts refresh by
themselves when a new reading arrives (no page load, the opened table stays open), acknowledges an
alarm; anyone reads the public environment page. axe-core finds no WCAG 2.2 AA problem on any."""

from __future__ import annotations

import re
from datetime import timedelta
from typing import Any

import pytest
from allauth.mfa.totp.internal.auth import TOTP
from django.utils import timezone

from civicore.agencies.models import Officer
from civicore.agencies.tests.factories import TOTP_SECRET, AgencyFactory
from civicore.core import demo
from civicore.identity.tests.factories import UserFactory
from civicore.sensors import storage
from civicore.sensors.models import Alarm, Device
from civicore.sensors.tests.factories import make_provisioned_device, rain_gauge_type, soil_moisture_type
from tests.e2e.accessibility import assert_accessible
from tests.e2e.test_citizen_journey import _login

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def _store(device: Device, quantity: str, points: list[tuple[Any, float]]) -> None:
    batch = storage.Batch()
    for when, value in points:
        batch.add(device.pk, quantity, when.timestamp(), value)
    storage.store(batch)


@pytest.fixture
def city() -> dict[str, Any]:
    storage.forget_partitions()
    agency = AgencyFactory(name_vi="Ban Quản lý công viên", name_en="Parks board")
    user = UserFactory(password=demo.DEMO_PASSWORD)
    TOTP.activate(user, TOTP_SECRET)
    Officer.objects.create(user=user, agency=agency, roles=["sensor_engineer"])
    soil = soil_moisture_type(agency)
    rain = rain_gauge_type(agency)
    probe, _ = make_provisioned_device(
        soil, device_id="tn-soil-01", name="Thống Nhất 1", district="Hai Bà Trưng"
    )
    quiet, _ = make_provisioned_device(
        soil, device_id="tn-soil-02", name="Thống Nhất 2", district="Hai Bà Trưng"
    )
    gauge, _ = make_provisioned_device(
        rain,
        device_id="hk-rain-01",
        name="Hoàn Kiếm",
        district="Hoàn Kiếm",
        latitude=21.0287,
        longitude=105.8524,
    )
    now = timezone.now()
    hour = now.replace(minute=0, second=0, microsecond=0)
    _store(probe, "soil_moisture", [(hour - timedelta(hours=h), 30.0 + h) for h in range(1, 30)])
    _store(probe, "soil_moisture", [(now - timedelta(minutes=20), 31.0)])
    _store(quiet, "soil_moisture", [(now - timedelta(hours=3), 44.0)])
    _store(gauge, "rainfall", [(hour - timedelta(hours=2), 1.5), (hour - timedelta(hours=1), 3.0)])
    Alarm.objects.create(device=probe, agency=agency, message="Đất khô ở Thống Nhất 1", severity="warning")
    return {"user": user, "probe": probe}


@pytest.mark.parametrize("locale", ["vi-VN", "en-GB"])
def test_sensor_pages_work_live_and_are_accessible(
    browser: Any, live_server: Any, city: Any, locale: str
) -> None:
    base = live_server.url
    context = browser.new_context(locale=locale)
    page = context.new_page()
    page.route("https://tile.openstreetmap.org/**", lambda route: route.abort())
    page.route("https://*.tile.openstreetmap.org/**", lambda route: route.abort())
    problems: list[str] = []
    page.on("pageerror", lambda error: problems.append(str(error)))
    page.on(
        "console",
        lambda message: (
            message.type == "error" and "tile" not in message.text and problems.append(message.text)
        ),
    )
    _login(page, base, city["user"].email, TOTP_SECRET)

    page.goto(f"{base}/office/sensors/")
    page.wait_for_selector("#device-map .leaflet-interactive")
    assert page.locator("#device-map .leaflet-interactive").count() == 3
    assert page.locator("#device-table tbody tr").count() == 3
    assert_accessible(page, "device list and map")

    probe = city["probe"]
    page.goto(f"{base}/office/sensors/devices/{probe.device_id}/")
    page.wait_for_selector("#chart-soil_moisture-24h")
    assert page.locator("svg[role=img]").count() == 9  # 3 quantities x 3 windows
    assert_accessible(page, "device page with charts")
    page.evaluate("window.__sameDocument = true")
    page.click("#details-chart-soil_moisture-24h summary")
    assert not re.search(r"88[.,]75", page.locator("#device-charts").inner_text())

    _store(Device.objects.get(pk=probe.pk), "soil_moisture", [(timezone.now() - timedelta(seconds=5), 88.75)])
    # The page polls the charts every 10 seconds: the new value comes without a page load.
    new_value = re.compile(r"88[.,]75")  # 88,75 in Vietnamese
    page.locator("#latest-readings td.latest-value", has_text=new_value).wait_for(timeout=30_000)
    # The table the reader had opened is open again after the swap, and holds the new bucket.
    page.locator("#details-chart-soil_moisture-24h[open]").wait_for(timeout=5_000)
    assert re.search(r"88[.,]75", page.locator("#table-chart-soil_moisture-24h").inner_text())
    assert page.evaluate("window.__sameDocument === true")  # updated in place, not reloaded
    assert_accessible(page, "device page after a live update")

    page.goto(f"{base}/office/sensors/alarms/")
    assert_accessible(page, "alarms")
    page.fill("#active-alarms input[name=note]", "Đã cử người tưới")
    with page.expect_navigation():
        page.click("#active-alarms form button[type=submit]")
    assert page.locator("#acknowledged-alarms").count() == 1
    assert "Đã cử người tưới" in page.locator("#acknowledged-alarms").inner_text()
    assert_accessible(page, "alarms after acknowledging")
    assert not [p for p in problems if "Content Security Policy" in p or "Refused" in p], problems
    context.close()

    visitor = browser.new_context(locale=locale).new_page()
    visitor.goto(f"{base}/environment/")
    assert visitor.locator("svg[role=img]").count() >= 2
    text = visitor.locator("main").inner_text()
    assert "Hai Bà Trưng" in text and "tn-soil-01" not in text
    assert_accessible(visitor, "public environment page")
    visitor.close()
