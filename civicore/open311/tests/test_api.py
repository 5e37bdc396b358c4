"""Open311 GeoReport v2 over Django's test client: each method in JSON and XML, and each way a
request can be wrong, with the specification's error list and HTTP status."""

from __future__ import annotations

import datetime as dt
import json
import xml.etree.ElementTree as ET  # noqa: S405 - parsing our own answers in tests
from typing import Any

import pytest
from django.core.files.base import ContentFile
from django.test import Client
from django.utils import timezone

from civicore.audit.models import AuditEntry
from civicore.open311.models import Open311Submission
from civicore.open311.services import open311_client_revoke
from civicore.open311.tests.factories import API, make_categories, make_client, request_body
from civicore.reports import services as report_services
from civicore.reports.models import Report, ReportPhoto
from civicore.reports.tests.factories import Decision, file_report, jpeg_bytes

pytestmark = pytest.mark.django_db

PERSONAL = ("lan@example.test", "0901234567", "Trần", "Lan ", "three nights")


@pytest.fixture
def categories() -> dict[str, Any]:
    return make_categories()


@pytest.fixture
def key() -> str:
    return make_client()[1]


@pytest.fixture
def client() -> Client:
    return Client(HTTP_ACCEPT_LANGUAGE="en")


@pytest.fixture(autouse=True)
def no_model(monkeypatch: pytest.MonkeyPatch) -> None:
    """No routing model unless a test installs one: reports without a category go to triage."""
    monkeypatch.setattr(report_services, "predict", lambda text: None)


def errors_of(response: Any) -> list[dict[str, Any]]:
    body = response.json()
    assert isinstance(body, list) and body, body
    assert all(set(error) == {"code", "description"} for error in body)
    assert all(error["code"] == response.status_code for error in body)
    return body


def xml_errors(response: Any) -> list[tuple[str, str]]:
    root = ET.fromstring(response.content)  # noqa: S314 - our own document
    assert root.tag == "errors"
    return [(error.findtext("code") or "", error.findtext("description") or "") for error in root]


def post(client: Client, fmt: str = "json", **data: Any) -> Any:
    return client.post(f"{API}/requests.{fmt}", data)


# --- services ---------------------------------------------------------------------------------


def test_services_lists_active_categories_in_the_requested_language(client: Client, categories: Any) -> None:
    english = client.get(f"{API}/services.json").json()
    assert [s["service_code"] for s in english] == ["road_damage", "streetlight"]
    light = english[1]
    assert light == {
        "service_code": "streetlight",
        "service_name": "Broken streetlight",
        "description": "A streetlight is out",
        "metadata": False,
        "type": "realtime",
        "keywords": "lamp, light, đèn",
        "group": "Urban Lighting",
    }
    vietnamese = client.get(f"{API}/services.json", {"locale": "vi_VN"}).json()
    assert vietnamese[1]["service_name"] == "Đèn đường hỏng"
    by_header = Client(HTTP_ACCEPT_LANGUAGE="vi").get(f"{API}/services.json").json()
    assert by_header[1]["group"] == "Công ty Chiếu sáng"


def test_services_xml_uses_the_specification_elements(client: Client, categories: Any) -> None:
    response = client.get(f"{API}/services.xml", {"jurisdiction_id": "civicore"})
    assert response.status_code == 200
    assert response["Content-Type"].startswith("text/xml")
    assert response.content.startswith(b"<?xml version='1.0' encoding='utf-8'?>")
    root = ET.fromstring(response.content)  # noqa: S314
    assert root.tag == "services"
    services = root.findall("service")
    assert [s.findtext("service_code") for s in services] == ["road_damage", "streetlight"]
    assert services[1].findtext("metadata") == "false"
    assert services[1].findtext("type") == "realtime"
    assert {child.tag for child in services[1]} == {
        "service_code", "service_name", "description", "metadata", "type", "keywords", "group",
    }  # fmt: skip


def test_service_definition_and_unknown_service(client: Client, categories: Any) -> None:
    assert client.get(f"{API}/services/streetlight.json").json() == {
        "service_code": "streetlight",
        "attributes": [],
    }
    root = ET.fromstring(client.get(f"{API}/services/streetlight.xml").content)  # noqa: S314
    assert root.tag == "service_definition" and root.findtext("service_code") == "streetlight"
    assert root.find("attributes") is not None and len(root.find("attributes")) == 0
    for code in ("no-such", "retired"):
        response = client.get(f"{API}/services/{code}.json")
        assert response.status_code == 404
        assert "not a known service" in errors_of(response)[0]["description"]
    response = client.get(f"{API}/services/no-such.xml")
    assert response.status_code == 404 and xml_errors(response)[0][0] == "404"


def test_jurisdiction_is_checked(client: Client, categories: Any, settings: Any) -> None:
    response = client.get(f"{API}/services.json", {"jurisdiction_id": "elsewhere.gov"})
    assert response.status_code == 400
    assert "jurisdiction_id elsewhere.gov" in errors_of(response)[0]["description"]
    settings.OPEN311_JURISDICTION = "anbinh.gov.vn"
    assert client.get(f"{API}/services.json", {"jurisdiction_id": "anbinh.gov.vn"}).status_code == 200
    assert client.get(f"{API}/services.json", {"jurisdiction_id": "civicore"}).status_code == 400


# --- POST requests ----------------------------------------------------------------------------


def test_post_files_a_report_with_the_client_and_answers_the_reference(
    client: Client, categories: Any, key: str
) -> None:
    response = post(client, **request_body(key, media_url="https://app.example/photos/1.jpg"))
    assert response.status_code == 201, response.content
    [answer] = response.json()
    assert set(answer) == {"service_request_id", "service_notice", "account_id"}
    assert answer["account_id"] is None
    report = Report.objects.get(reference=answer["service_request_id"])
    assert report.source == "open311" and report.category.code == "streetlight"
    assert report.status == Report.Status.OPEN and report.agency.code == "chieu-sang-do-thi"
    assert report.language == "en"
    assert report.contact_name == "Lan Trần" and report.contact_email == "lan@example.test"
    assert report.contact_phone == "0901234567" and report.address == "12 Phố Huế"
    submission = Open311Submission.objects.get(report=report)
    assert submission.client.prefix == key[:12]
    assert submission.media_url == "https://app.example/photos/1.jpg"
    assert report.client_key == f"open311:{submission.client.pk}"
    assert "Urban Lighting will handle it within 3 working days" in answer["service_notice"]
    assert AuditEntry.objects.filter(action="report.file", subject_id=str(report.pk)).exists()
    assert submission.client.last_used_at is not None


def test_post_in_xml(client: Client, categories: Any, key: str) -> None:
    response = post(client, "xml", **request_body(key))
    assert response.status_code == 201
    root = ET.fromstring(response.content)  # noqa: S314
    assert root.tag == "service_requests"
    [request] = root.findall("request")
    assert Report.objects.filter(reference=request.findtext("service_request_id")).exists()
    assert request.find("account_id") is not None and request.findtext("account_id") == ""


def test_without_service_code_the_model_routes_the_report(
    client: Client, categories: Any, key: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Civicore's extension: service_code may be left out."""
    monkeypatch.setattr(
        report_services, "predict", lambda text: Decision(label="road_damage", confidence=0.95)
    )
    response = post(client, **request_body(key, service_code=""))
    assert response.status_code == 201
    report = Report.objects.get(reference=response.json()[0]["service_request_id"])
    assert report.category.code == "road_damage" and report.routed_by == Report.RoutedBy.AI
    monkeypatch.setattr(
        report_services, "predict", lambda text: Decision(label="road_damage", confidence=0.3, auto=False)
    )
    unsure = post(client, **request_body(key, service_code=None)).json()[0]
    assert Report.objects.get(reference=unsure["service_request_id"]).status == Report.Status.TRIAGE
    assert unsure["service_notice"] == "An officer will send it to the responsible agency."


@pytest.mark.parametrize(
    ("api_key", "fragment"),
    [(None, "api_key is required"), ("o311_not-a-key", "not valid"), ("x" * 500, "too long")],
)
def test_post_without_a_valid_key_is_403(
    client: Client, categories: Any, api_key: str | None, fragment: str
) -> None:
    body = request_body("")
    body.pop("api_key")
    if api_key is not None:
        body["api_key"] = api_key
    response = post(client, **body)
    expected = 400 if fragment == "too long" else 403
    assert response.status_code == expected
    assert fragment in errors_of(response)[0]["description"]
    assert not Report.objects.exists()


def test_a_revoked_key_is_refused(client: Client, categories: Any, key: str) -> None:
    assert post(client, **request_body(key)).status_code == 201
    open311_client_revoke(prefix=key[:12])
    response = post(client, "xml", **request_body(key))
    assert response.status_code == 403 and xml_errors(response)[0][0] == "403"
    assert Report.objects.count() == 1


@pytest.mark.parametrize(
    ("overrides", "fragment"),
    [
        ({"service_code": "no-such"}, "service_code no-such is not a known service"),
        ({"service_code": "retired"}, "service_code retired is not a known service"),
        ({"lat": "north"}, "lat must be a decimal number"),
        ({"lat": "91"}, "lat must be a decimal number"),
        ({"long": "NaN"}, "long must be a decimal number"),
        ({"long": "1e999"}, "long must be a decimal number"),
        ({"long": None}, "Send both lat and long"),
        (
            {"lat": None, "long": None, "address_string": None},
            "lat and long, or address_string, are required",
        ),
        ({"lat": None, "long": None}, "addresses are not looked up"),
        ({"lat": "48.85", "long": "2.35"}, "lat/long: This place is outside the area"),
        ({"description": "   "}, "description is required"),
        ({"description": "too short"}, "description: Describe the problem in at least 10 characters"),
        ({"description": "x" * 2001}, "description: The description is too long: at most 2000 characters"),
        ({"email": "not-an-address"}, "email: Enter a valid e-mail address"),
        ({"phone": "call me<script>"}, "phone: Enter a valid phone number"),
        ({"media_url": "file:///etc/passwd"}, "media_url must be an http or https URL"),
        ({"media_url": "javascript:alert(1)"}, "media_url must be an http or https URL"),
    ],
)
def test_hostile_or_wrong_input_is_400_and_saves_nothing(
    client: Client, categories: Any, key: str, overrides: dict[str, Any], fragment: str
) -> None:
    response = post(client, **request_body(key, **overrides))
    assert response.status_code == 400, response.content
    assert any(fragment in error["description"] for error in errors_of(response)), response.json()
    assert not Report.objects.exists() and not Open311Submission.objects.exists()


def test_rate_limit_is_429_with_retry_after(client: Client, categories: Any, key: str, settings: Any) -> None:
    settings.REPORT_RATE_PER_HOUR = 1  # a citizen's limit does not apply to a 311 app
    settings.OPEN311_RATE_PER_HOUR = 2
    for _n in range(2):
        assert post(client, **request_body(key)).status_code == 201
    response = post(client, **request_body(key))
    assert response.status_code == 429
    assert "in the last hour" in errors_of(response)[0]["description"]
    assert 3500 <= int(response["Retry-After"]) <= 3600
    assert Report.objects.count() == 2
    other_key = make_client("Another app")[1]
    assert post(client, **request_body(other_key)).status_code == 201, "the limit is per client"


def test_unknown_format_is_404_and_wrong_method_405(client: Client, categories: Any, key: str) -> None:
    for url in (f"{API}/services.html", f"{API}/services/streetlight.csv", f"{API}/requests.yaml"):
        response = client.get(url)
        assert response.status_code == 404, url
        assert "Unknown format" in errors_of(response)[0]["description"]
    response = post(client, "php", **request_body(key))
    assert response.status_code == 404 and not Report.objects.exists()
    for method, url in (
        ("post", f"{API}/services.json"),
        ("put", f"{API}/requests.json"),
        ("delete", f"{API}/requests/PA-AAAAAA.json"),
        ("patch", f"{API}/services/streetlight.json"),
    ):
        response = getattr(client, method)(url)
        assert response.status_code == 405, url
        assert "is not allowed here" in errors_of(response)[0]["description"]
        assert "GET" in response["Allow"]
    response = client.put(f"{API}/requests.xml")
    assert response.status_code == 405 and xml_errors(response)[0][0] == "405"


def test_post_needs_no_csrf_token(categories: Any, key: str) -> None:
    """An API authenticated by api_key: no cookie is read, so no CSRF token is asked for."""
    browser = Client(enforce_csrf_checks=True)
    assert browser.post(f"{API}/requests.json", request_body(key)).status_code == 201


# --- GET requests -----------------------------------------------------------------------------


def _filed(client: Client, key: str, **overrides: Any) -> str:
    response = post(client, **request_body(key, **overrides))
    assert response.status_code == 201, response.content
    return str(response.json()[0]["service_request_id"])


def test_get_request_shows_no_personal_data_and_the_description_only_to_its_client(
    client: Client, categories: Any, key: str
) -> None:
    reference = _filed(client, key)
    response = client.get(f"{API}/requests/{reference}.json")
    assert response.status_code == 200
    [request] = response.json()
    assert set(request) == {
        "service_request_id", "status", "status_notes", "service_name", "service_code", "description",
        "agency_responsible", "service_notice", "requested_datetime", "updated_datetime",
        "expected_datetime", "address", "address_id", "zipcode", "lat", "long", "media_url",
    }  # fmt: skip
    assert request["service_request_id"] == reference
    assert request["status"] == "open" and request["service_code"] == "streetlight"
    assert request["service_name"] == "Broken streetlight"
    assert request["agency_responsible"] == "Urban Lighting"
    assert request["description"] is None
    assert request["lat"] == 21.0285 and request["long"] == 105.8542
    assert request["requested_datetime"].endswith("Z") and request["expected_datetime"].endswith("Z")
    assert request["media_url"] is None
    text = response.content.decode()
    for value in PERSONAL:
        assert value not in text
    own = client.get(f"{API}/requests/{reference}.json", {"api_key": key}).json()[0]
    assert own["description"].endswith("for three nights.")
    other = make_client("Other")[1]
    assert client.get(f"{API}/requests/{reference}.json", {"api_key": other}).json()[0]["description"] is None
    assert client.get(f"{API}/requests/{reference}.json", {"api_key": "o311_wrong"}).status_code == 403


def test_coordinates_are_rounded(client: Client, categories: Any, key: str) -> None:
    reference = _filed(client, key, lat="21.028549", long="105.854151")
    request = client.get(f"{API}/requests/{reference}.json").json()[0]
    assert (request["lat"], request["long"]) == (21.0285, 105.8542)


def test_get_request_xml_and_unknown_id(client: Client, categories: Any, key: str) -> None:
    reference = _filed(client, key)
    root = ET.fromstring(client.get(f"{API}/requests/{reference}.xml").content)  # noqa: S314
    assert root.tag == "service_requests"
    [request] = root.findall("request")
    assert request.findtext("service_request_id") == reference
    assert request.findtext("status") == "open"
    assert request.findtext("long") == "105.8542"
    assert request.find("email") is None and request.find("phone") is None
    response = client.get(f"{API}/requests/PA-AAAAAA.json")
    assert response.status_code == 404 and "was not found" in errors_of(response)[0]["description"]
    assert client.get(f"{API}/requests/PA-AAAAAA.xml").status_code == 404


def test_only_published_photos_are_media_urls(client: Client, categories: Any, key: str) -> None:
    reference = _filed(client, key)
    report = Report.objects.get(reference=reference)
    hidden = ReportPhoto(report=report, width=40, height=30)
    hidden.file.save("a.jpg", ContentFile(jpeg_bytes()), save=True)
    assert client.get(f"{API}/requests/{reference}.json").json()[0]["media_url"] is None
    shown = ReportPhoto(report=report, width=40, height=30, published=True)
    shown.file.save("b.jpg", ContentFile(jpeg_bytes()), save=True)
    media_url = client.get(f"{API}/requests/{reference}.json").json()[0]["media_url"]
    assert media_url.endswith(f"/reports/photos/{shown.public_id}/")
    assert str(hidden.public_id) not in media_url
    assert client.get(media_url.split("127.0.0.1:8000", 1)[-1]).status_code == 200


def test_list_defaults_to_90_days_newest_first_and_filters(client: Client, categories: Any, key: str) -> None:
    first = _filed(client, key)
    second = _filed(client, key, service_code="road_damage")
    old = file_report(category_code="streetlight")
    Report.objects.filter(pk=old.pk).update(created_at=timezone.now() - dt.timedelta(days=120))
    listed = client.get(f"{API}/requests.json").json()
    assert [r["service_request_id"] for r in listed] == [second, first]
    by_code = client.get(f"{API}/requests.json", {"service_code": "road_damage"}).json()
    assert [r["service_request_id"] for r in by_code] == [second]
    both = client.get(f"{API}/requests.json", {"service_code": "road_damage,streetlight"}).json()
    assert len(both) == 2
    assert client.get(f"{API}/requests.json", {"status": "closed"}).json() == []
    assert len(client.get(f"{API}/requests.json", {"status": "open,closed"}).json()) == 2
    start = (timezone.now() - dt.timedelta(days=130)).strftime("%Y-%m-%dT%H:%M:%SZ")
    end = (timezone.now() - dt.timedelta(days=100)).strftime("%Y-%m-%dT%H:%M:%S+07:00")
    window = client.get(f"{API}/requests.json", {"start_date": start, "end_date": end}).json()
    assert [r["service_request_id"] for r in window] == [old.reference]
    by_ids = client.get(f"{API}/requests.json", {"service_request_id": f"{first},{old.reference}"}).json()
    assert {r["service_request_id"] for r in by_ids} == {first, old.reference}, "ids override the dates"
    root = ET.fromstring(client.get(f"{API}/requests.xml").content)  # noqa: S314
    assert [r.findtext("service_request_id") for r in root.findall("request")] == [second, first]


def test_list_is_capped_at_1000(client: Client, categories: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    from civicore.open311 import selectors

    monkeypatch.setattr(selectors, "MAX_REQUESTS", 3)
    for _n in range(4):
        file_report(category_code="streetlight")
    assert len(client.get(f"{API}/requests.json").json()) == 3


def test_list_query_count_does_not_grow(
    client: Client, categories: Any, key: str, django_assert_max_num_queries: Any
) -> None:
    for _n in range(6):
        _filed(client, key)
    with django_assert_max_num_queries(6):
        assert len(client.get(f"{API}/requests.json", {"api_key": key}).json()) == 6


@pytest.mark.parametrize(
    ("params", "fragment"),
    [
        ({"start_date": "yesterday"}, "start_date must be a W3C date and time"),
        ({"start_date": "2025-01-01T00:00:00"}, "start_date must be a W3C date and time with a time zone"),
        ({"end_date": "2025-13-40T00:00:00Z"}, "end_date must be a W3C date and time"),
        ({"start_date": "2025-03-01T00:00:00Z", "end_date": "2025-01-01T00:00:00Z"}, "must not be before"),
        ({"start_date": "2025-01-01T00:00:00Z", "end_date": "2025-06-01T00:00:00Z"}, "more than 90 days"),
        ({"status": "pending"}, "status must be open or closed"),
        ({"service_code": "no-such"}, "service_code no-such is not a known service"),
        ({"service_request_id": ",".join(f"PA-{n}" for n in range(101))}, "at most 100"),
    ],
)
def test_list_refuses_bad_parameters(
    client: Client, categories: Any, params: dict[str, str], fragment: str
) -> None:
    response = client.get(f"{API}/requests.json", params)
    assert response.status_code == 400
    assert any(fragment in e["description"] for e in errors_of(response)), response.json()
    response = client.get(f"{API}/requests.xml", params)
    assert response.status_code == 400 and xml_errors(response)[0][0] == "400"


def test_merged_reports_are_closed_and_not_listed_twice(client: Client, categories: Any, key: str) -> None:
    from civicore.reports.tests.factories import make_handler

    main = _filed(client, key)
    duplicate = _filed(client, key)
    officer = make_handler(categories["streetlight"])
    report_services.report_merge(
        report=Report.objects.get(reference=duplicate), into_reference=main, officer=officer
    )
    listed = client.get(f"{API}/requests.json").json()
    assert [r["service_request_id"] for r in listed] == [main]
    [merged] = client.get(f"{API}/requests/{duplicate}.json").json()
    assert merged["status"] == "closed" and main in merged["status_notes"]
    assert main in merged["service_notice"] and merged["expected_datetime"] is None


def test_resolved_is_closed(client: Client, categories: Any, key: str) -> None:
    from civicore.reports.tests.factories import make_handler

    reference = _filed(client, key)
    officer = make_handler(categories["streetlight"])
    report_services.report_resolve(
        report=Report.objects.get(reference=reference), officer=officer, note="Bulb replaced; called Mr Lan."
    )
    [request] = client.get(f"{API}/requests.json", {"status": "closed"}).json()
    assert request["status"] == "closed" and request["status_notes"] == "Resolved"
    assert "Mr Lan" not in json.dumps(request), "officers' notes to the reporter are not published"


def test_xml_is_well_formed_whatever_the_client_sent(client: Client, categories: Any, key: str) -> None:
    hostile = "Light out <b>&amp; \x00\x07\x1b ]]> </request><!-- -->" + "\U0001f4a1"
    response = post(client, "xml", **request_body(key, description=hostile, address_string="<x>&</x>"))
    assert response.status_code == 201, response.content
    reference = ET.fromstring(response.content).findtext("request/service_request_id")  # noqa: S314
    answer = client.get(f"{API}/requests/{reference}.xml", {"api_key": key})
    request = ET.fromstring(answer.content).find("request")  # noqa: S314
    assert request is not None
    assert request.findtext("address") == "<x>&</x>"
    assert request.findtext("description").startswith("Light out <b>&amp; ")
    assert "\x00" not in request.findtext("description")
    assert request.findtext("description").endswith("\U0001f4a1")
