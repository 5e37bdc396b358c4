"""Open311 as a client written elsewhere sees it: the `georeport` package (a GeoReport v2 client
for city endpoints) against a live Civicore server over HTTP, in JSON and in XML.

georeport reads services, service definitions and requests; it does not create requests, so the
POST goes through `requests` (the library georeport itself uses) with the client's api_key, as a
311 app would send it: form-encoded, to the same root address.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from typing import Any

import pytest
import requests
from georeport import GeoReport

from civicore.open311.tests.factories import make_categories, make_client, request_body
from civicore.reports import services as report_services
from civicore.reports.models import Report
from civicore.reports.tests.factories import Decision, make_handler

# The live server's threads must see what the test writes: no transaction wraps the test.
pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def root(live_server: Any, settings: Any, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    settings.SITE_URL = live_server.url
    monkeypatch.setattr(
        report_services, "predict", lambda text: Decision(label="road_damage", confidence=0.97)
    )
    yield f"{live_server.url}/open311/v2"


def test_a_311_app_lists_services_files_a_request_and_follows_it(root: str) -> None:
    categories = make_categories()
    _client, key = make_client("Bloomington-style 311 app")

    for fmt in ("json", "xml"):
        app = GeoReport(root, jurisdiction="civicore", api_key=key, output_format=fmt)
        services = app.get_service_list()
        assert [s["service_code"] for s in services] == ["road_damage", "streetlight"], fmt
        assert services[1]["service_name"] == "Đèn đường hỏng"  # the server's default language
        assert str(services[1]["metadata"]).lower() == "false"
        definition = app.get_service_definition("streetlight")
        assert definition["service_code"] == "streetlight"

    # POST requests.json with the api_key, as a 311 app does (georeport has no create call).
    app = GeoReport(root, jurisdiction="civicore", api_key=key)
    posted = requests.post(
        f"{app.root_address}/requests.json",
        data={**request_body(app.api_key), "jurisdiction_id": app.jurisdiction},
        timeout=30,
    )
    assert posted.status_code == 201, posted.text
    reference = posted.json()[0]["service_request_id"]
    # Without service_code (Civicore's extension), the model routes it.
    routed = requests.post(
        f"{app.root_address}/requests.xml",
        data=request_body(
            key, service_code=None, description="A deep pothole on Lê Lợi street near the school"
        ),
        timeout=30,
    )
    assert routed.status_code == 201, routed.text
    assert "<service_request_id>PA-" in routed.text

    # Read it back by id, in both formats.
    one = app.get_service_request(reference)
    assert one["service_request_id"] == reference and one["status"] == "open"
    assert one["service_code"] == "streetlight" and one["lat"] == 21.0285
    assert "email" not in one and "phone" not in one and one["description"] is None
    as_xml = GeoReport(root, jurisdiction="civicore", output_format="xml").get_service_request(reference)
    assert as_xml["service_request_id"] == reference and as_xml["long"] == "105.8542"

    # By status and date.
    start = (dt.datetime.now(dt.UTC) - dt.timedelta(days=1)).strftime("%Y-%m-%dT%H:%M:%SZ")
    end = (dt.datetime.now(dt.UTC) + dt.timedelta(minutes=5)).strftime("%Y-%m-%dT%H:%M:%SZ")
    listed = app.get_service_requests(status="open", start_date=start, end_date=end)
    assert len(listed) == 2 and listed[1]["service_request_id"] == reference
    assert {r["service_code"] for r in listed} == {"streetlight", "road_damage"}
    assert app.get_service_requests(status="closed") == []
    by_code = app.get_service_requests(service_code="streetlight")
    assert [r["service_request_id"] for r in by_code] == [reference]

    # The agency fixes it: the app sees it closed.
    report = Report.objects.get(reference=reference)
    report_services.report_resolve(
        report=report, officer=make_handler(categories["streetlight"]), note="Replaced the lamp."
    )
    closed = app.get_service_requests(status="closed")
    assert [r["service_request_id"] for r in closed] == [reference]
    assert closed[0]["status"] == "closed"

    # A 404 is an HTTP error georeport raises, with the Open311 error body.
    with pytest.raises(requests.HTTPError) as raised:
        app.get_service_request("PA-AAAAAA")
    assert raised.value.response.status_code == 404
    assert raised.value.response.json()[0]["code"] == 404
    with pytest.raises(requests.HTTPError) as raised:
        GeoReport(root, jurisdiction="elsewhere").get_service_list()
    assert raised.value.response.status_code == 400


def test_a_revoked_key_cannot_file(root: str) -> None:
    from civicore.open311.services import open311_client_revoke

    make_categories()
    _client, key = make_client()
    open311_client_revoke(prefix=key[:12])
    response = requests.post(
        f"{root}/requests.json", data=request_body(key), headers={"Accept-Language": "en"}, timeout=30
    )
    assert response.status_code == 403
    assert response.json() == [{"code": 403, "description": "api_key is not valid (unknown or revoked)."}]
    assert not Report.objects.exists()
