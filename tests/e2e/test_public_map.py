"""The public map in a real browser: the script draws one marker per report of the feed under
the page's own Content-Security-Policy, the popup shows the details as text, the category
filter works without the script, and axe-core finds no WCAG 2.2 AA problem."""

from __future__ import annotations

from typing import Any

import pytest

from civicore.open311.tests.factories import make_categories
from civicore.reports import services as report_services
from civicore.reports.tests.factories import file_report
from tests.e2e.accessibility import assert_accessible

pytestmark = pytest.mark.django_db(transaction=True)


def test_public_map_draws_the_feed_and_is_accessible(
    browser: Any, live_server: Any, settings: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(report_services, "predict", lambda text: None)
    settings.REPORT_RATE_PER_HOUR = 100
    make_categories()
    light = file_report(category_code="streetlight", latitude=21.0285, longitude=105.8542)
    road = file_report(category_code="road_damage", latitude=21.0300, longitude=105.8500)

    context = browser.new_context(locale="en-GB")
    page = context.new_page()
    # No network here: tiles are refused, which the page must survive.
    page.route("https://tile.openstreetmap.org/**", lambda route: route.abort())
    problems: list[str] = []
    page.on("console", lambda message: message.type == "error" and "tile" not in message.text
            and problems.append(message.text))  # fmt: skip
    page.on("pageerror", lambda error: problems.append(str(error)))

    page.goto(f"{live_server.url}/reports/map/")
    page.wait_for_selector("#public-map path.leaflet-interactive")
    assert page.locator("#public-map path.leaflet-interactive").count() == 2
    assert page.locator("#public-reports tbody tr").count() == 2
    assert_accessible(page, "public map")
    page.locator("#public-map path.leaflet-interactive").first.click(force=True)
    popup = page.locator(".leaflet-popup-content")
    popup.wait_for()
    assert light.reference in popup.inner_text() or road.reference in popup.inner_text()
    assert not [p for p in problems if "Content Security Policy" in p or "Refused" in p], problems
    # Once the popup has faded in (Leaflet animates its opacity), it must pass too.
    opacity = "() => getComputedStyle(document.querySelector('.leaflet-popup')).opacity"
    for _attempt in range(50):
        if page.evaluate(opacity) == "1":
            break
        page.wait_for_timeout(50)
    assert_accessible(page, "public map with a report's popup open")

    page.select_option("#public-map-category", "road_damage")
    page.click("#public-map-filter button[type=submit]")
    page.wait_for_url("**/reports/map/?category=road_damage")
    page.wait_for_selector("#public-map path.leaflet-interactive")
    assert page.locator("#public-reports tbody tr").count() == 1
    assert road.reference in page.locator("#public-reports").inner_text()
    context.close()
