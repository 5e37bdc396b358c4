"""The public map (/reports/map/), its GeoJSON feed and published photos: anonymous, and showing
nothing personal (civicore.reports.public_views)."""

from __future__ import annotations

import datetime as dt
import json
from typing import Any

import pytest
from django.core.files.base import ContentFile
from django.test import Client
from django.utils import timezone

from civicore.core.middleware import CONTENT_SECURITY_POLICY
from civicore.open311.tests.factories import make_categories
from civicore.reports import services as report_services
from civicore.reports.models import Report, ReportPhoto
from civicore.reports.tests.factories import file_report, jpeg_bytes, make_handler

pytestmark = pytest.mark.django_db

MAP, FEED = "/reports/map/", "/reports/map.geojson"
SECRET_WORDS = "Nguyễn Văn Bình ở số 12 gọi 0987654321"


@pytest.fixture(autouse=True)
def no_model(monkeypatch: pytest.MonkeyPatch, settings: Any) -> None:
    monkeypatch.setattr(report_services, "predict", lambda text: None)
    settings.REPORT_RATE_PER_HOUR = 1000  # every report here comes from the same (test) client


@pytest.fixture
def world() -> dict[str, Any]:
    categories = make_categories()
    officer = make_handler(categories["streetlight"])
    common = {
        "description": f"Đèn hỏng, {SECRET_WORDS}",
        "contact_name": "Nguyễn Văn Bình",
        "contact_email": "binh@example.test",
        "contact_phone": "0987654321",
        "address": "Ngõ 5, nhà ông Bình",
    }
    open_report = file_report(category_code="streetlight", latitude=21.028549, longitude=105.854151, **common)
    triage = file_report(**common)
    road = file_report(category_code="road_damage", **common)
    fixed = file_report(category_code="streetlight", **common)
    report_services.report_resolve(report=fixed, officer=officer, note="Đã thay bóng, báo ông Bình")
    long_fixed = file_report(category_code="streetlight", **common)
    report_services.report_resolve(report=long_fixed, officer=officer, note="Đã sửa")
    Report.objects.filter(pk=long_fixed.pk).update(resolved_at=timezone.now() - dt.timedelta(days=31))
    duplicate = file_report(category_code="streetlight", **common)
    report_services.report_merge(report=duplicate, into_reference=open_report.reference, officer=officer)
    shown = ReportPhoto(report=open_report, width=40, height=30, published=True)
    shown.file.save("shown.jpg", ContentFile(jpeg_bytes()), save=True)
    hidden = ReportPhoto(report=open_report, width=40, height=30)
    hidden.file.save("hidden.jpg", ContentFile(jpeg_bytes()), save=True)
    return {
        "open": open_report,
        "triage": triage,
        "road": road,
        "fixed": fixed,
        "long_fixed": long_fixed,
        "duplicate": duplicate,
        "shown": shown,
        "hidden": hidden,
    }


def _no_personal_data(text: str) -> None:
    for value in ("Bình", "binh@example.test", "0987654321", "Ngõ 5", "Đã thay bóng", "Đèn hỏng"):
        assert value not in text, value


def test_feed_lists_open_and_recently_fixed_reports_once_without_personal_data(world: dict[str, Any]) -> None:
    response = Client(HTTP_ACCEPT_LANGUAGE="en").get(FEED)
    assert response.status_code == 200
    assert response["Content-Type"].startswith("application/geo+json")
    text = response.content.decode()
    _no_personal_data(text)
    collection = json.loads(text)
    assert collection["type"] == "FeatureCollection"
    features = {f["properties"]["reference"]: f for f in collection["features"]}
    assert set(features) == {
        w.reference for w in (world["open"], world["triage"], world["road"], world["fixed"])
    }
    assert world["duplicate"].reference not in features, "a merged duplicate is not shown twice"
    assert world["long_fixed"].reference not in features, "fixed more than 30 days ago"
    feature = features[world["open"].reference]
    assert feature["geometry"] == {"type": "Point", "coordinates": [105.8542, 21.0285]}
    assert set(feature["properties"]) == {
        "reference", "category", "category_name", "status", "status_label", "open", "created", "updated",
        "photos",
    }  # fmt: skip
    assert feature["properties"]["category"] == "streetlight"
    assert feature["properties"]["photos"] == [f"/reports/photos/{world['shown'].public_id}/"]
    assert features[world["fixed"].reference]["properties"]["status"] == "resolved"
    assert features[world["fixed"].reference]["properties"]["open"] is False
    assert features[world["triage"].reference]["properties"]["category"] is None


def test_feed_filters_by_category(world: dict[str, Any]) -> None:
    client = Client()
    features = client.get(FEED, {"category": "road_damage"}).json()["features"]
    assert [f["properties"]["reference"] for f in features] == [world["road"].reference]
    response = client.get(FEED, {"category": "<script>"})
    assert response.status_code == 400 and response.json()["code"] == "unknown_category"


def test_feed_query_count_does_not_grow(world: dict[str, Any], django_assert_max_num_queries: Any) -> None:
    for _n in range(5):
        report = file_report(category_code="streetlight")
        photo = ReportPhoto(report=report, width=40, height=30, published=True)
        photo.file.save("p.jpg", ContentFile(jpeg_bytes()), save=True)
    with django_assert_max_num_queries(4):
        assert len(Client().get(FEED).json()["features"]) == 9


def test_map_page_is_public_with_an_accessible_list_and_no_personal_data(world: dict[str, Any]) -> None:
    response = Client(HTTP_ACCEPT_LANGUAGE="en").get(MAP)
    assert response.status_code == 200
    html = response.content.decode()
    _no_personal_data(html)
    assert '<table class="usa-table' in html and "<caption>" in html
    for key in ("open", "triage", "road", "fixed"):
        assert f'<th scope="row" data-label="Reference">{world[key].reference}</th>' in html
    assert world["duplicate"].reference not in html and world["long_fixed"].reference not in html
    assert "21.0285, 105.8542" in html and "21.028549" not in html
    assert f"/reports/photos/{world['shown'].public_id}/" in html
    assert str(world["hidden"].public_id) not in html
    assert 'data-feed-url="/reports/map.geojson"' in html
    assert "<script>" not in html and " style=" not in html, "no inline script or style (CSP)"
    assert '<label class="usa-label" for="public-map-category">' in html


def test_map_page_filters_and_explains_an_unknown_category(world: dict[str, Any]) -> None:
    client = Client(HTTP_ACCEPT_LANGUAGE="en")
    html = client.get(MAP, {"category": "road_damage"}).content.decode()
    assert world["road"].reference in html and world["open"].reference not in html
    assert 'data-feed-url="/reports/map.geojson?category=road_damage"' in html
    response = client.get(MAP, {"category": "nope"})
    assert response.status_code == 400
    assert 'aria-invalid="true"' in response.content.decode()


def test_only_the_map_page_lets_tiles_in(world: dict[str, Any], settings: Any) -> None:
    client = Client()
    policy = client.get(MAP)["Content-Security-Policy"]
    assert "img-src 'self' data: blob: https://tile.openstreetmap.org" in policy
    assert "script-src 'self';" in policy and "unsafe-inline" not in policy
    assert client.get(FEED)["Content-Security-Policy"] == CONTENT_SECURITY_POLICY
    assert client.get("/open311/v2/services.json")["Content-Security-Policy"] == CONTENT_SECURITY_POLICY


def test_published_photos_are_served_and_others_are_404(world: dict[str, Any]) -> None:
    client = Client()
    response = client.get(f"/reports/photos/{world['shown'].public_id}/")
    assert response.status_code == 200 and response["Content-Type"] == "image/jpeg"
    assert b"".join(response.streaming_content).startswith(b"\xff\xd8")
    assert response["Cross-Origin-Resource-Policy"] == "cross-origin"
    assert client.get(f"/reports/photos/{world['hidden'].public_id}/").status_code == 404
    assert client.get("/reports/photos/00000000-0000-0000-0000-000000000001/").status_code == 404
    officer = make_handler(world["open"].category)
    report_services.photo_publish(
        report=world["open"], photo_id=world["shown"].public_id, officer=officer, published=False
    )
    assert client.get(f"/reports/photos/{world['shown'].public_id}/").status_code == 404
    assert client.post(f"/reports/photos/{world['hidden'].public_id}/").status_code in (403, 405)
