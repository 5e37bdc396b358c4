"""Address lookup against a real local HTTP server that answers like Nominatim: what is found,
what is not, what goes wrong on the wire, and what a report filed with an address only becomes."""

from __future__ import annotations

import json
import logging
import threading
import time
import urllib.parse
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
from django.core.exceptions import ImproperlyConfigured
from django.db import connection
from django.test import Client

from civicore.audit.models import AuditEntry
from civicore.open311.models import Open311Submission
from civicore.open311.tests.factories import API, make_categories, make_client, request_body
from civicore.reports import geocoding, services
from civicore.reports.geocoding import NoGeocoder, NominatimGeocoder, Place
from civicore.reports.models import Report, ReportEvent
from civicore.reports.tests.factories import file_report

pytestmark = pytest.mark.django_db

NOMINATIM = "civicore.reports.geocoding.NominatimGeocoder"
ADDRESS = "12 Phố Huế, Hai Bà Trưng, Hà Nội"
INSIDE = [
    {"lat": "21.0160", "lon": "105.8510", "display_name": "12, Phố Huế, Hai Bà Trưng, Hà Nội, Việt Nam"}
]
OUTSIDE = [{"lat": "48.8566", "lon": "2.3522", "display_name": "Paris, France"}]
Answer = tuple[int, dict[str, str], bytes]
NOT_FOUND_MESSAGE = "We could not place this address on the map. Mark the place on the map as well."


def _found(handler: BaseHTTPRequestHandler) -> Answer:
    return 200, {}, json.dumps(INSIDE).encode()


@dataclass
class FakeNominatim:
    """A Nominatim stand-in on a real socket: records each request and answers with `answer`."""

    answer: Callable[[BaseHTTPRequestHandler], Answer] = _found
    requests: list[dict[str, Any]] = field(default_factory=list)
    url: str = ""

    def query(self, index: int = -1) -> dict[str, str]:
        return dict(urllib.parse.parse_qsl(urllib.parse.urlsplit(self.requests[index]["path"]).query))


def _serve(host: str = "127.0.0.1") -> Iterator[FakeNominatim]:
    fake = FakeNominatim()

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # noqa: N802 - the standard library's name
            fake.requests.append({"path": self.path, "headers": dict(self.headers)})
            status, headers, body = fake.answer(self)
            try:
                self.send_response(status)
                for name, value in {"Content-Type": "application/json", **headers}.items():
                    self.send_header(name, value)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)
            except (BrokenPipeError, ConnectionResetError):
                pass  # the client gave up waiting, as it should

        def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - the standard library's name
            return

    server = ThreadingHTTPServer((host, 0), Handler)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    fake.url = f"http://{host}:{server.server_address[1]}"
    try:
        yield fake
    finally:
        server.shutdown()
        server.server_close()


@pytest.fixture
def nominatim() -> Iterator[FakeNominatim]:
    yield from _serve()


@pytest.fixture
def other_host() -> Iterator[FakeNominatim]:
    yield from _serve()


@pytest.fixture
def configured(settings: Any, nominatim: FakeNominatim) -> FakeNominatim:
    settings.GEOCODER = NOMINATIM
    settings.GEOCODER_URL = nominatim.url
    return nominatim


def answer_json(payload: Any, status: int = 200) -> Callable[[BaseHTTPRequestHandler], Answer]:
    return lambda handler: (status, {}, json.dumps(payload).encode())


def refused(**kwargs: Any) -> services.ReportInvalid | services.OutsideArea:
    with pytest.raises((services.ReportInvalid, services.OutsideArea)) as excinfo:
        file_report(latitude=None, longitude=None, **kwargs)
    assert not Report.objects.exists() and not ReportEvent.objects.exists()
    return excinfo.value


# --- the Nominatim client -------------------------------------------------------------------------


def test_a_found_place_and_the_query_nominatim_receives(nominatim: FakeNominatim, settings: Any) -> None:
    settings.SITE_URL = "https://dichvucong.example.vn"
    place = NominatimGeocoder(nominatim.url).locate(ADDRESS, language="vi")
    assert place == Place(21.016, 105.851, INSIDE[0]["display_name"])
    request = nominatim.requests[0]
    assert urllib.parse.urlsplit(request["path"]).path == "/search"
    assert nominatim.query() == {
        "q": ADDRESS,
        "format": "jsonv2",
        "limit": "1",
        "countrycodes": "vn",
        "accept-language": "vi",
        "viewbox": "102.0,23.5,110.0,8.0",  # west,north,east,south of REPORT_AREA
        "bounded": "1",
    }
    agent = request["headers"]["User-Agent"]
    assert agent.startswith("Civicore/") and "https://dichvucong.example.vn" in agent
    assert "Python-urllib" not in agent


def test_country_codes_language_and_area_follow_the_settings(nominatim: FakeNominatim, settings: Any) -> None:
    settings.GEOCODER_COUNTRY_CODES = "vn, la"
    settings.REPORT_AREA = [20.9, 105.7, 21.1, 105.95]
    NominatimGeocoder(nominatim.url + "/").locate("Hoan Kiem lake", language="en")
    query = nominatim.query()
    assert query["countrycodes"] == "vn,la" and query["accept-language"] == "en"
    assert query["viewbox"] == "105.7,21.1,105.95,20.9"


def test_an_empty_list_is_not_found(nominatim: FakeNominatim) -> None:
    nominatim.answer = answer_json([])
    assert NominatimGeocoder(nominatim.url).locate(ADDRESS, language="vi") is None


@pytest.mark.parametrize(
    ("answer", "logged"),
    [
        (answer_json({"error": "boom"}, status=500), "HTTP 500"),
        (lambda handler: (200, {}, b"<html>not json</html>"), "not JSON"),
        (lambda handler: (200, {}, b"\xff\xfe\x00garbage"), "not JSON"),
        (answer_json({"lat": "21", "lon": "105"}), "not a list"),
        (answer_json([{"lat": "north", "lon": "105.8"}]), "no usable lat/lon"),
        (answer_json([{"display_name": "nowhere"}]), "no usable lat/lon"),
        (answer_json([{"lat": "NaN", "lon": "105.8"}]), "not numbers"),
        (answer_json([{"lat": "95", "lon": "105.8"}]), "off the globe"),
    ],
)
def test_errors_and_bad_answers_are_not_found_and_logged(
    nominatim: FakeNominatim, caplog: pytest.LogCaptureFixture, answer: Any, logged: str
) -> None:
    nominatim.answer = answer
    with caplog.at_level(logging.WARNING, logger="civicore.reports.geocoding"):
        assert NominatimGeocoder(nominatim.url).locate(ADDRESS, language="vi") is None
    assert any(logged in record.getMessage() for record in caplog.records), caplog.text
    assert ADDRESS not in caplog.text  # an address may be someone's home: never in the logs


def test_a_slow_geocoder_is_given_up_on(nominatim: FakeNominatim, caplog: pytest.LogCaptureFixture) -> None:
    def slow(handler: BaseHTTPRequestHandler) -> Answer:
        time.sleep(1.5)
        return 200, {}, json.dumps(INSIDE).encode()

    nominatim.answer = slow
    started = time.monotonic()
    with caplog.at_level(logging.WARNING, logger="civicore.reports.geocoding"):
        assert NominatimGeocoder(nominatim.url, timeout=0.2).locate(ADDRESS, language="vi") is None
    assert time.monotonic() - started < 1.2
    assert "did not answer within 0.2 s" in caplog.text


def test_a_redirect_to_another_host_is_not_followed(
    nominatim: FakeNominatim, other_host: FakeNominatim, caplog: pytest.LogCaptureFixture
) -> None:
    other_host.answer = answer_json(INSIDE)
    elsewhere = other_host.url.replace("127.0.0.1", "localhost") + "/search?q=x"
    nominatim.answer = lambda handler: (302, {"Location": elsewhere}, b"")
    with caplog.at_level(logging.WARNING, logger="civicore.reports.geocoding"):
        assert NominatimGeocoder(nominatim.url).locate(ADDRESS, language="vi") is None
    assert other_host.requests == [] and "redirect to another host refused" in caplog.text


def test_a_redirect_on_the_same_host_is_followed(nominatim: FakeNominatim) -> None:
    def moved(handler: BaseHTTPRequestHandler) -> Answer:
        if handler.path.startswith("/search?"):
            return 301, {"Location": handler.path.replace("/search?", "/v2/search?")}, b""
        return 200, {}, json.dumps(INSIDE).encode()

    nominatim.answer = moved
    assert NominatimGeocoder(nominatim.url).locate(ADDRESS, language="vi") is not None
    assert [r["path"].split("?")[0] for r in nominatim.requests] == ["/search", "/v2/search"]


@pytest.mark.parametrize("url", ["file:///etc/passwd", "ftp://nominatim.example", "nominatim.example", ""])
def test_a_geocoder_url_that_is_not_http_is_a_configuration_error(url: str) -> None:
    with pytest.raises(ImproperlyConfigured, match="GEOCODER_URL"):
        NominatimGeocoder(url or " ")


def test_the_same_address_is_asked_once_and_cached(configured: FakeNominatim) -> None:
    first = geocoding.locate(ADDRESS, language="vi")
    again = geocoding.locate("  12 phố huế,  Hai Bà Trưng, Hà Nội ", language="vi")
    assert first == again == Place(21.016, 105.851, INSIDE[0]["display_name"])
    assert len(configured.requests) == 1
    configured.answer = answer_json([])
    assert geocoding.locate("somewhere unknown", language="vi") is None
    assert geocoding.locate("somewhere unknown", language="vi") is None
    assert len(configured.requests) == 3  # "not found" may be a passing failure: not cached


def test_the_default_is_no_geocoder_and_nothing_leaves_the_machine(nominatim: FakeNominatim) -> None:
    assert isinstance(geocoding.geocoder(), NoGeocoder) and not geocoding.geocoder_configured()
    assert NoGeocoder().locate(ADDRESS, language="vi") is None
    error = refused(address=ADDRESS)
    assert error.code == "location_required" and error.message == NOT_FOUND_MESSAGE
    assert nominatim.requests == []


# --- filing a report with an address only ---------------------------------------------------------


def test_a_found_address_places_the_report_and_says_so(configured: FakeNominatim) -> None:
    report = file_report(latitude=None, longitude=None, address=f"  {ADDRESS} ", language="en")
    assert (report.latitude, report.longitude) == (21.016, 105.851)
    assert report.address == ADDRESS  # the citizen's words, not the geocoder's display name
    assert configured.query()["accept-language"] == "en"
    filed = report.events.get(kind=ReportEvent.Kind.FILED)
    assert filed.note == "Placed on the map from the address."
    entry = AuditEntry.objects.get(action="report.file", subject_id=str(report.pk))
    assert entry.details["placed_from_address"] is True


def test_a_pin_wins_over_the_address_and_nothing_is_looked_up(configured: FakeNominatim) -> None:
    report = file_report(address=ADDRESS)
    assert configured.requests == [] and report.events.get(kind=ReportEvent.Kind.FILED).note == ""
    entry = AuditEntry.objects.get(action="report.file", subject_id=str(report.pk))
    assert entry.details["placed_from_address"] is False


@pytest.mark.parametrize(
    ("answer", "code"),
    [
        (answer_json([]), "location_required"),
        (answer_json({"error": "boom"}, status=500), "location_required"),
        (lambda handler: (200, {}, b"{not json"), "location_required"),
        (answer_json(OUTSIDE), "outside_area"),
    ],
)
def test_an_address_that_cannot_be_placed_in_the_area_saves_nothing(
    configured: FakeNominatim, answer: Any, code: str
) -> None:
    configured.answer = answer
    error = refused(address=ADDRESS)
    assert error.code == code
    if code == "location_required":
        assert error.message == NOT_FOUND_MESSAGE and error.details == {"location": NOT_FOUND_MESSAGE}
    else:
        assert error.details == {"location": "This place is outside the area this service covers."}


def test_an_address_that_is_too_long_is_refused_before_any_lookup(configured: FakeNominatim) -> None:
    assert refused(address="Phố " * 200).code == "report_invalid"
    with pytest.raises(services.ReportInvalid):
        services.place_address("Phố " * 200, language="vi")
    assert configured.requests == []


class RecordingGeocoder:
    """Notes how deep in transactions each lookup runs."""

    depths: list[int] = []

    def locate(self, address: str, *, language: str) -> Place | None:
        RecordingGeocoder.depths.append(len(connection.atomic_blocks))
        return Place(21.016, 105.851, address)


def test_the_lookup_runs_outside_the_filing_transaction(settings: Any, client_and_key: Any) -> None:
    settings.GEOCODER = f"{__name__}.RecordingGeocoder"
    RecordingGeocoder.depths = []
    outer = len(connection.atomic_blocks)  # the test's own transaction
    file_report(latitude=None, longitude=None, address=ADDRESS)
    client, key = client_and_key
    response = client.post(
        f"{API}/requests.json", request_body(key, lat=None, long=None, address_string="5 Tràng Tiền")
    )
    assert response.status_code == 201, response.content
    assert RecordingGeocoder.depths == [outer, outer]


# --- the web form and Open311 ---------------------------------------------------------------------


def test_the_form_says_addresses_are_looked_up_only_with_a_geocoder(settings: Any) -> None:
    hint = "Without a pin, we look this address up to place the report on the map."
    page = Client(HTTP_ACCEPT_LANGUAGE="en").get("/report/").content.decode()
    assert hint not in page and 'aria-describedby="address-hint"' not in page
    settings.GEOCODER = NOMINATIM
    page = Client(HTTP_ACCEPT_LANGUAGE="en").get("/report/").content.decode()
    assert hint in page and 'aria-describedby="address-hint"' in page


def test_the_web_form_files_a_report_with_an_address_only(configured: FakeNominatim) -> None:
    client = Client(HTTP_ACCEPT_LANGUAGE="vi")
    response = client.post("/report/", {"description": "Đèn đường trước số 12 bị hỏng", "address": ADDRESS})
    report = Report.objects.get()
    assert response.status_code == 302 and response["Location"] == f"/report/{report.reference}/"
    assert (report.latitude, report.longitude) == (21.016, 105.851) and report.address == ADDRESS
    assert configured.query()["accept-language"] == "vi"


def test_the_web_form_explains_an_address_that_was_not_found(configured: FakeNominatim) -> None:
    configured.answer = answer_json([])
    client = Client(HTTP_ACCEPT_LANGUAGE="en")
    response = client.post("/report/", {"description": "Đèn đường trước số 12 bị hỏng", "address": ADDRESS})
    page = response.content.decode()
    assert response.status_code == 200 and NOT_FOUND_MESSAGE in page and f'value="{ADDRESS}"' in page
    assert not Report.objects.exists()


@pytest.fixture
def client_and_key() -> tuple[Client, str]:
    make_categories()
    return Client(HTTP_ACCEPT_LANGUAGE="en"), make_client()[1]


def _post_address_only(client: Client, key: str) -> Any:
    body = request_body(key, lat=None, long=None, address_string=ADDRESS)
    return client.post(f"{API}/requests.json", body)


def test_open311_address_only_is_refused_without_a_geocoder(client_and_key: Any) -> None:
    response = _post_address_only(*client_and_key)
    assert response.status_code == 400
    assert "addresses are not looked up" in response.json()[0]["description"]
    assert not Report.objects.exists()


def test_open311_address_only_works_with_a_geocoder(configured: FakeNominatim, client_and_key: Any) -> None:
    response = _post_address_only(*client_and_key)
    assert response.status_code == 201, response.content
    report = Report.objects.get(reference=response.json()[0]["service_request_id"])
    assert (report.latitude, report.longitude) == (21.016, 105.851)
    assert report.address == ADDRESS and report.source == Report.Source.OPEN311
    assert Open311Submission.objects.filter(report=report).exists()
    assert report.events.get(kind=ReportEvent.Kind.FILED).note == "Placed on the map from the address."
    assert configured.query()["q"] == ADDRESS


@pytest.mark.parametrize(
    ("answer", "fragment"),
    [
        (answer_json([]), "lat/long: We could not place this address on the map"),
        (answer_json(OUTSIDE), "lat/long: This place is outside the area"),
        (answer_json({"error": "boom"}, status=503), "lat/long: We could not place this address on the map"),
    ],
)
def test_open311_address_that_cannot_be_placed_is_400(
    configured: FakeNominatim, client_and_key: Any, answer: Any, fragment: str
) -> None:
    configured.answer = answer
    response = _post_address_only(*client_and_key)
    assert response.status_code == 400
    assert any(fragment in error["description"] for error in response.json()), response.json()
    assert not Report.objects.exists() and not Open311Submission.objects.exists()
