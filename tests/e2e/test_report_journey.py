"""Problem reports in a real browser. A citizen on a phone reports a broken streetlight (map pin,
photo, the "already reported?" check, "Me too"); a triage officer routes a report the AI model
was not sure about in one click; the agency's handler re-routes, assigns and resolves; the
citizen sees the fix and says it is not resolved, which reopens it. Map tiles cannot load here
(no network), which the pages must survive. Every page on the way is checked with axe-core."""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from django.utils import translation
from PIL import Image
from playwright.sync_api import expect

from civicore.audit.models import AuditEntry
from civicore.core import demo
from civicore.identity.models import User
from civicore.reports.models import Report, ReportEvent, ReportPhoto
from civicore.reports.services import in_service_area
from civicore.reports.tests.factories import file_report, gps_exif
from tests.e2e.accessibility import assert_accessible
from tests.e2e.test_citizen_journey import _click_and_wait, _login

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

CITIZEN = demo.CITIZENS[0]
NEIGHBOUR = demo.CITIZENS[1]
TRIAGER_EMAIL = "officer.ubnd-xa-an-binh@demo.civicore.invalid"  # report_triager in the demo
LIGHTING_EMAIL = "reports.chieu-sang-do-thi@demo.civicore.invalid"  # handles streetlights
# Where the phone says it is: a street in Hà Nội with no demo report within 50 m.
HERE = (21.0430, 105.8500)
METRES_PER_DEGREE_LAT = 111_320.0
PHONE = {
    "viewport": {"width": 390, "height": 844},
    "device_scale_factor": 3,
    "is_mobile": True,
    "has_touch": True,
    "geolocation": {"latitude": HERE[0], "longitude": HERE[1], "accuracy": 10},
    "permissions": ["geolocation"],
}
ROUTING_DATA = Path(__file__).resolve().parents[2] / "civicore" / "routing" / "data" / "reports-demo.csv"


@pytest.fixture(autouse=True)
def _setup(settings: Any) -> Iterator[None]:
    settings.REPORT_RATE_PER_HOUR = 100
    yield
    try:
        from civicore.routing import selectors as routing_selectors
    except ImportError:
        return
    routing_selectors.forget_cache()  # the next test's database has no such model


def _photo(path: Path, *, with_gps: tuple[float, float] | None = None, colour=(200, 160, 20)) -> Path:
    """A real JPEG as a phone writes it: a camera make and, when asked, the GPS position."""
    image = Image.new("RGB", (640, 480), colour)
    for x in range(0, 640, 40):  # some structure, so it is not a flat colour
        image.paste((30, 30, 30), (x, 200, x + 20, 280))
    kwargs = {"exif": gps_exif(*with_gps)} if with_gps else {}
    image.save(path, format="JPEG", quality=90, **kwargs)
    assert Image.open(path).getexif(), "the test photo must carry EXIF"
    return path


def _assert_no_metadata(photo: ReportPhoto) -> None:
    with photo.file.open("rb") as handle:
        data = handle.read()
    image = Image.open(io.BytesIO(data))
    assert image.format == "JPEG"
    assert not image.getexif(), "the stored photo still has EXIF"
    assert not image.getexif().get_ifd(0x8825), "the stored photo still has a GPS position"
    assert b"Exif\x00\x00" not in data and b"PhoneMaker" not in data


def _phone(browser: Any, locale: str) -> tuple[Any, Any, list[str]]:
    context = browser.new_context(locale=locale, **PHONE)
    # No network here: tiles are refused, which the form must survive.
    context.route(re.compile(r"^https?://([a-z0-9-]+\.)*tile\.openstreetmap\.org/.*"), lambda r: r.abort())
    page = context.new_page()
    problems: list[str] = []
    page.on("pageerror", lambda error: problems.append(str(error)))
    page.on(
        "console",
        lambda m: m.type == "error" and "tile.openstreetmap" not in m.text and "ERR_FAILED" not in m.text
        and problems.append(m.text),
    )  # fmt: skip
    return context, page, problems


def _label(status: str, language: str) -> str:
    """A status as the page shows it in `language` (the shipped translation, whatever it is)."""
    with translation.override(language):
        return str(Report.Status(status).label)


def _coordinates(page: Any) -> tuple[float, float]:
    return float(page.input_value("#id_latitude")), float(page.input_value("#id_longitude"))


def _tap_map(page: Any, x: float, y: float) -> None:
    """Tap the map at a share of its width and height, with a finger."""
    box = page.locator("#report-map")
    box.scroll_into_view_if_needed()
    size = box.bounding_box()
    box.tap(position={"x": size["width"] * x, "y": size["height"] * y})


# --- citizen on a phone ---------------------------------------------------------------------------


def test_citizen_taps_the_map_attaches_a_photo_and_files(browser, live_server, tmp_path: Path):
    demo.load()
    base = live_server.url
    context, page, problems = _phone(browser, "vi-VN")
    _login(page, base, CITIZEN[0], CITIZEN[5])

    filed_before = Report.objects.count()
    page.goto(f"{base}/report/")
    assert page.get_attribute("html", "lang") == "vi"
    page.wait_for_selector("#report-map.leaflet-container")
    assert page.is_visible("#use-my-location")
    assert_accessible(page, "report form (vi, phone)")

    # Too short a description is explained next to the field, in Vietnamese; nothing is filed.
    page.fill("#id_description", "Hỏng")
    _click_and_wait(page, "#report-submit")
    page.wait_for_selector("#error-summary")
    assert page.is_visible("#description-error")
    with translation.override("vi"):
        expected = translation.gettext("Describe the problem in at least %(min)d characters.") % {"min": 10}
    assert page.inner_text("#description-error").strip() == expected
    assert page.get_attribute("#id_description", "aria-invalid") == "true"
    assert_accessible(page, "report form with errors (vi, phone)")
    assert Report.objects.count() == filed_before

    description = "Đèn đường trước cổng trường tiểu học bị tắt ba đêm nay, đường rất tối."
    page.fill("#id_description", description)
    photo = _photo(tmp_path / "IMG_0001.jpg", with_gps=HERE)
    page.set_input_files("#id_photos", str(photo))

    # A tap near Hà Nội on the map of the whole service area puts the pin there, fills in the
    # coordinates and tells a screen reader; nothing is reported near there yet.
    with page.expect_response(re.compile(r".*/report/nearby/\?.*")):
        _tap_map(page, 0.49, 0.32)
    page.wait_for_selector("#report-map .leaflet-marker-icon")
    lat, lon = _coordinates(page)
    assert in_service_area(lat, lon) and lat > 19.5, (lat, lon)  # the north, not the centre
    with translation.override("vi"):
        pinned = translation.gettext("The pin was placed on the map.")
    assert page.inner_text("#map-status") == pinned
    assert page.locator("#nearby-heading").count() == 0

    # Meanwhile a neighbour reported a broken streetlight 20 m from there. Choosing the category
    # checks again, and offers it before a second report is sent.
    earlier = file_report(
        reporter=User.objects.get(email=NEIGHBOUR[0]),
        category_code="streetlight",
        description="Đèn đường ở đây tắt từ tối qua.",
        latitude=lat + 20 / METRES_PER_DEGREE_LAT,
        longitude=lon,
    )
    page.select_option("#id_category", "streetlight")
    page.wait_for_selector("#nearby-heading")
    nearby = page.inner_text("#nearby")
    assert earlier.reference in nearby
    assert re.search(r"\b(19|20|21) m\b", nearby), nearby
    assert_accessible(page, "report form with nearby reports (vi, phone)")

    # The citizen's problem is another one: they send their own report.
    _click_and_wait(page, "#report-submit")
    page.wait_for_url(re.compile(r".*/report/PA-[A-Z0-9]{6}/$"))
    reference = page.url.rstrip("/").rsplit("/", 1)[1]
    assert reference in page.inner_text("main")
    assert page.inner_text("#report-status").strip() == _label("open", "vi")  # sent straight to the agency
    assert page.locator("img[src*='/photos/']").count() == 1
    assert_accessible(page, "status page (vi, phone)")

    report = Report.objects.get(reference=reference)
    assert report.reporter.email == CITIZEN[0]
    assert report.description == description
    assert report.category.code == "streetlight" and report.agency.code == "chieu-sang-do-thi"
    assert (report.latitude, report.longitude) == pytest.approx((lat, lon), abs=1e-6)  # the pin wins
    stored = report.photos.get()
    assert (stored.width, stored.height) == (640, 480)
    _assert_no_metadata(stored)
    # The photo the reporter sees is the cleaned one too.
    response = page.request.get(base + page.get_attribute("img[src*='/photos/']", "src"))
    assert response.ok and b"PhoneMaker" not in response.body()

    page.goto(f"{base}/my-reports/")
    assert reference in page.inner_text("main")
    assert_accessible(page, "my reports (vi, phone)")
    assert not problems, problems
    context.close()


def test_citizen_uses_their_location_and_says_me_too(browser, live_server):
    demo.load()
    base = live_server.url
    earlier = file_report(
        reporter=User.objects.get(email=CITIZEN[0]),
        category_code="streetlight",
        description="The streetlight at the corner has been off for two nights.",
        latitude=HERE[0] + 20 / METRES_PER_DEGREE_LAT,
        longitude=HERE[1],
    )
    context, page, problems = _phone(browser, "en-GB")
    _login(page, base, NEIGHBOUR[0], NEIGHBOUR[5])

    filed_before = Report.objects.count()
    page.goto(f"{base}/report/")
    assert page.get_attribute("html", "lang") == "en"
    page.wait_for_selector("#report-map.leaflet-container")
    assert_accessible(page, "report form (en, phone)")
    page.fill("#id_description", "The streetlight near the bus stop is broken, it is very dark.")

    page.locator("#use-my-location").tap()
    # (wait_for_function would evaluate a string, which the page's CSP rightly refuses)
    expect(page.locator("#id_latitude")).not_to_have_value("")
    assert _coordinates(page) == pytest.approx(HERE, abs=1e-6)
    page.wait_for_selector("#report-map .leaflet-marker-icon")
    assert page.inner_text("#map-status") == "Your location was placed on the map."

    page.wait_for_selector("#nearby-heading")
    assert earlier.reference in page.inner_text("#nearby")
    assert_accessible(page, "report form with nearby reports (en, phone)")

    # "Me too" instead of a second report: the citizen follows the earlier one.
    with page.expect_navigation():
        page.locator("#nearby button", has_text=earlier.reference).tap()
    assert page.url.endswith(f"/report/{earlier.reference}/")
    assert f"You now follow report {earlier.reference}" in page.inner_text("body")
    assert_accessible(page, "status page after me too (en, phone)")
    assert earlier.supporters.filter(user__email=NEIGHBOUR[0]).exists()
    assert earlier.events.filter(kind=ReportEvent.Kind.SUPPORTED).exists()
    assert Report.objects.count() == filed_before

    page.goto(f"{base}/my-reports/")
    followed = page.locator("table", has_text="Problems you follow")
    assert earlier.reference in followed.inner_text()
    assert_accessible(page, "my reports (en, phone)")
    assert not problems, problems
    context.close()


# --- officers -------------------------------------------------------------------------------------


def _activate_model(tmp_path: Path, steward: Any) -> Any:
    """Train a small model on part of the demo data, register it and activate it as a steward."""
    from civicore.routing import ml
    from civicore.routing import services as routing

    rows, seen = [], {}
    with ROUTING_DATA.open(encoding="utf-8") as handle:
        for row in csv.DictReader(handle):
            key = (row["label"], row["language"])
            if seen.get(key, 0) < 20:
                seen[key] = seen.get(key, 0) + 1
                rows.append(ml.Example(row["text"], row["label"]))
    model, held = ml.train(rows, precision=0.9)
    ml.save(model, held, tmp_path / "model")
    registered = routing.model_register(files=ml.read_directory(tmp_path / "model"))
    return routing.model_activate(registered, steward)


def _unsure_text() -> Any:
    """A description the model is not sure about, with the streetlight among its suggestions."""
    from civicore.routing.services import route

    candidates = [
        "Nước chảy tràn ra đường và đèn tắt cả tối, không rõ do đâu.",
        "Có vấn đề ở đầu ngõ, đèn và nước, nhờ kiểm tra giúp.",
        "Chỗ này tối om và có gì đó bị hỏng, nhờ kiểm tra giúp.",
        "Water everywhere and the light is off at the corner.",
    ]
    for text in candidates:
        decision = route(text)
        if decision is not None and not decision.auto and "streetlight" in [c for c, _ in decision.top3]:
            return text
    pytest.fail("none of the texts leaves the model unsure with streetlight among its suggestions")


def test_triage_handler_and_citizen_rating(browser, live_server, tmp_path: Path):
    from civicore.routing.models import TrainingExample

    demo.load()
    base = live_server.url
    citizen_user = User.objects.get(email=CITIZEN[0])
    _activate_model(tmp_path, User.objects.get(email=TRIAGER_EMAIL))

    # The model is unsure about one report (triage); the citizen chose a category for another,
    # wrongly: it is a burst water pipe, not a streetlight.
    unsure = file_report(
        reporter=citizen_user, description=_unsure_text(), latitude=21.0350, longitude=105.8300
    )
    assert unsure.status == Report.Status.TRIAGE and len(unsure.routing_suggestions) == 3
    audited = AuditEntry.objects.get(action="ai.route", subject_id=str(unsure.pk)).details
    assert audited["outcome"] == "triage" and audited["confidence"] < audited["threshold"]
    wrong = file_report(
        reporter=citizen_user,
        category_code="streetlight",
        description="Ống nước sạch bị vỡ dưới chân cột đèn, nước phun lên mặt đường.",
        latitude=21.0360,
        longitude=105.8310,
    )
    assert wrong.agency.code == "chieu-sang-do-thi"

    # Triage: the model's suggestions are shown; one click sends the report to its agency.
    triager = browser.new_context(locale="vi-VN").new_page()
    _login(triager, base, TRIAGER_EMAIL, demo.OFFICER_SECRET)
    triager.goto(f"{base}/office/reports/triage/")
    assert_accessible(triager, "triage queue")
    section = triager.locator(f"section:has(#triage-{unsure.pk})")
    assert unsure.reference in section.inner_text()
    suggestion_forms = section.locator("form:has(input[name=category][type=hidden])")
    assert suggestion_forms.count() == 3
    _click_and_wait(triager, f"section:has(#triage-{unsure.pk}) form:has(input[value=streetlight]) button")
    assert triager.url.endswith("/office/reports/triage/")
    assert triager.locator(f"#triage-{unsure.pk}").count() == 0
    unsure.refresh_from_db()
    assert unsure.status == Report.Status.OPEN and unsure.agency.code == "chieu-sang-do-thi"
    assert unsure.routed_by == Report.RoutedBy.OFFICER

    # The lighting company's handler sees both in the inbox.
    handler = browser.new_context(locale="vi-VN").new_page()
    _login(handler, base, LIGHTING_EMAIL, demo.OFFICER_SECRET)
    handler.goto(f"{base}/office/reports/")
    assert_accessible(handler, "report inbox")
    inbox = handler.inner_text("#report-table")
    assert unsure.reference in inbox and wrong.reference in inbox

    # Not theirs: re-routed to the water company with a reason, kept as a correction.
    _click_and_wait(handler, f"#report-table a:text('{wrong.reference}')")
    assert_accessible(handler, "report detail")
    assert "Ống nước sạch bị vỡ" in handler.inner_text("main")
    handler.select_option("#reroute-category", "water_leak")
    handler.fill("#reroute-reason", "Đây là vỡ ống nước, không phải đèn đường.")
    _click_and_wait(handler, "#action-reroute")
    assert handler.url.endswith("/office/reports/")  # no longer theirs to see
    assert wrong.reference not in handler.inner_text("#report-table")
    wrong.refresh_from_db()
    assert wrong.agency.code == "cap-nuoc" and wrong.category.code == "water_leak"
    correction = TrainingExample.objects.get(source=TrainingExample.Source.CORRECTION, label="water_leak")
    assert correction.predicted_label == "streetlight"
    assert correction.text == wrong.description

    # Theirs: assigned to a field team, then resolved with a note and a photo of the fix.
    _click_and_wait(handler, f"#report-table a:text('{unsure.reference}')")
    handler.select_option("#assign-team", label="Đội hiện trường 1")
    _click_and_wait(handler, "form[action$='/assign/'] button[type=submit]")
    assert handler.inner_text("#report-status").strip() == _label("in_progress", "vi")
    assert "Đội hiện trường 1" in handler.inner_text("main")
    assert_accessible(handler, "report detail, in progress")
    note = "Đã thay bóng đèn và kiểm tra lại đường dây."
    handler.fill("#resolve-note", note)
    handler.set_input_files("#resolve-photo", str(_photo(tmp_path / "fix.jpg", with_gps=(21.035, 105.83))))
    _click_and_wait(handler, "#action-resolve")
    assert handler.inner_text("#report-status").strip() == _label("resolved", "vi")
    assert_accessible(handler, "report detail, resolved")
    unsure.refresh_from_db()
    assert unsure.status == Report.Status.RESOLVED and unsure.assigned_team.name == "Đội hiện trường 1"
    fix = unsure.photos.get(kind=ReportPhoto.Kind.FIX)
    _assert_no_metadata(fix)

    # The citizen sees what was done, and says it is not resolved: the report is reopened.
    citizen = browser.new_context(locale="en-GB").new_page()
    _login(citizen, base, CITIZEN[0], CITIZEN[5])
    citizen.goto(f"{base}/report/{unsure.reference}/")
    assert citizen.inner_text("#report-status").strip() == "Resolved"
    assert citizen.inner_text("#resolution-note").strip() == note
    assert citizen.locator("img[alt='Photo of the fix']").count() == 1
    assert_accessible(citizen, "status page, resolved (en)")
    citizen.click("label[for=resolved-no]")
    citizen.click("label[for=stars-2]")
    assert citizen.is_checked("#resolved-no") and citizen.is_checked("#stars-2")
    citizen.fill("#rate-comment", "The light is still off tonight.")
    _click_and_wait(citizen, "form[action$='/rate/'] button[type=submit]")
    assert citizen.inner_text("#report-status").strip() == "Open"
    assert "Reopened" in citizen.inner_text("main")
    assert_accessible(citizen, "status page, reopened (en)")
    unsure.refresh_from_db()
    assert unsure.status == Report.Status.OPEN and unsure.rating_resolved is False
    assert unsure.events.filter(kind=ReportEvent.Kind.REOPENED).exists()

    # Back in the handler's inbox, with the citizen's verdict on the report's page.
    handler.goto(f"{base}/office/reports/")
    assert unsure.reference in handler.inner_text("#report-table")
    handler.goto(f"{base}/office/reports/{unsure.pk}/")
    assert "2/5" in handler.inner_text("main")


def test_anonymous_citizen_places_the_report_with_a_geotagged_photo(browser, live_server, tmp_path: Path):
    """No account, no location permission: the photo's GPS position places the report."""
    base = live_server.url
    demo.load()
    phone = {key: value for key, value in PHONE.items() if key not in ("geolocation", "permissions")}
    context = browser.new_context(locale="en-GB", **phone)
    context.route(re.compile(r"^https?://([a-z0-9-]+\.)*tile\.openstreetmap\.org/.*"), lambda r: r.abort())
    page = context.new_page()
    problems: list[str] = []
    page.on("pageerror", lambda error: problems.append(str(error)))

    page.goto(f"{base}/report/")
    page.wait_for_selector("#report-map.leaflet-container")
    assert page.is_visible("#id_contact_email")
    assert_accessible(page, "report form, anonymous (en, phone)")

    # The phone refuses to tell where it is: the citizen is told, and taken to the coordinates.
    page.locator("#use-my-location").tap()
    expect(page.locator("#map-status")).to_have_text(
        "Your location is not available. Click the map or type the coordinates.", timeout=20_000
    )
    expect(page.locator("#id_latitude")).to_be_focused()

    # A mistyped e-mail address is explained at the field, and a screen reader hears it there.
    page.fill("#id_description", "Rubbish has not been collected at the end of the lane for three days.")
    page.fill("#id_contact_name", "Lan")
    page.fill("#id_contact_email", "lan@example")
    _click_and_wait(page, "#report-submit")
    page.wait_for_selector("#error-summary")
    email = page.locator("#id_contact_email")
    assert email.get_attribute("aria-invalid") == "true"
    error_id = next(i for i in email.get_attribute("aria-describedby").split() if i.endswith("-error"))
    assert page.inner_text(f"#{error_id}").strip() == "Enter a valid e-mail address."
    assert page.input_value("#id_description").startswith("Rubbish")  # nothing typed is lost
    assert_accessible(page, "report form with errors, anonymous (en, phone)")

    where = (21.0400, 105.8200)
    page.set_input_files("#id_photos", str(_photo(tmp_path / "rubbish.jpg", with_gps=where)))
    page.fill("#id_contact_email", "lan@example.invalid")
    _click_and_wait(page, "#report-submit")
    page.wait_for_url(re.compile(r".*/report/PA-[A-Z0-9]{6}/$"))
    reference = page.url.rstrip("/").rsplit("/", 1)[1]
    assert f"Your reference number is {reference}" in page.inner_text("main")
    assert page.inner_text("#report-status").strip() == _label("triage", "en")
    assert page.locator("img[src*='/photos/']").count() == 1  # this browser filed it
    assert_accessible(page, "status page, anonymous reporter (en, phone)")

    report = Report.objects.get(reference=reference)
    assert report.reporter is None and report.contact_email == "lan@example.invalid"
    assert (report.latitude, report.longitude) == pytest.approx(where, abs=1e-4)
    _assert_no_metadata(report.photos.get())

    # Someone else with the link sees the status but not the unpublished photo.
    other = browser.new_context(locale="en-GB").new_page()
    other.goto(f"{base}/report/{reference}/")
    assert other.inner_text("#report-status").strip() == _label("triage", "en")
    assert other.locator("img[src*='/photos/']").count() == 0
    assert "Your reference number" not in other.inner_text("main")
    assert not problems, problems
    context.close()
