from __future__ import annotations

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import Client

from civicore.agencies.tests.factories import AgencyFactory, back_office_client, make_officer
from civicore.audit.models import AuditEntry
from civicore.identity.tests.factories import UserFactory
from civicore.reports.models import Report, ReportSupporter
from civicore.reports.tests.factories import HANOI, file_report, jpeg_bytes, make_category, make_handler

pytestmark = pytest.mark.django_db

VALID = {"description": "Đèn đường trước số 12 bị hỏng", "latitude": "21.0285", "longitude": "105.8542"}


@pytest.fixture
def streetlight():
    return make_category("streetlight", name_vi="Đèn đường hỏng", name_en="Broken streetlight")


def _citizen_client(user=None, language: str = "en") -> Client:
    client = Client(HTTP_ACCEPT_LANGUAGE=language)
    if user is not None:
        client.force_login(user)
    return client


def test_the_form_shows_the_map_categories_and_its_own_policy(streetlight):
    response = _citizen_client().get("/report/")
    page = response.content.decode()
    assert response.status_code == 200
    assert 'id="report-map"' in page and "Broken streetlight" in page and 'id="id_latitude"' in page
    assert "report-form.js" in page and "<script>" not in page
    assert "tile.openstreetmap.org" in response["Content-Security-Policy"]
    assert "geolocation=(self)" in response["Permissions-Policy"]


def test_an_anonymous_report_is_filed_and_the_browser_may_follow_it(streetlight):
    client = _citizen_client()
    photo = SimpleUploadedFile("p.jpg", jpeg_bytes(), content_type="image/jpeg")
    response = client.post(
        "/report/", {**VALID, "category": "streetlight", "contact_email": "an@example.vn", "photos": [photo]}
    )
    report = Report.objects.get()
    assert response.status_code == 302 and response["Location"] == f"/report/{report.reference}/"
    page = client.get(response["Location"]).content.decode()
    assert report.reference in page and "Đèn đường trước số 12" in page
    assert report.contact_email == "an@example.vn" and report.photos.count() == 1


@pytest.mark.parametrize(
    ("language", "expected"),
    [("en", "Describe the problem in at least 10 characters."), ("vi", "Hãy mô tả vấn đề")],
)
def test_form_errors_speak_the_users_language(language, expected):
    response = _citizen_client(language=language).post("/report/", {**VALID, "description": "ngắn"})
    page = response.content.decode()
    assert response.status_code == 200 and 'id="error-summary"' in page
    assert f'<html lang="{language}">' in page
    if language == "en":
        assert expected in page
    assert not Report.objects.exists()


def test_a_very_long_text_is_a_form_error_and_keeps_the_other_answers():
    response = _citizen_client().post("/report/", {**VALID, "description": "x" * 10000, "address": "Ngõ 5"})
    page = response.content.decode()
    assert "too long" in page and 'value="Ngõ 5"' in page and not Report.objects.exists()


def test_outside_the_area_and_a_fake_photo_are_form_errors():
    outside = _citizen_client().post("/report/", {**VALID, "latitude": "48.85", "longitude": "2.35"})
    assert "outside the area" in outside.content.decode()
    fake = SimpleUploadedFile("cat.jpg", b"just some text, not a picture at all", content_type="image/jpeg")
    refused = _citizen_client().post("/report/", {**VALID, "photos": [fake]})
    assert "cat.jpg" in refused.content.decode() and "JPEG, PNG or WebP" in refused.content.decode()
    assert not Report.objects.exists()


def test_the_rate_limit_is_a_friendly_429(settings):
    settings.REPORT_RATE_PER_HOUR = 1
    client = _citizen_client()
    assert client.post("/report/", VALID).status_code == 302
    refused = client.post("/report/", VALID)
    assert refused.status_code == 429 and "reports in the last hour" in refused.content.decode()


def test_nearby_lists_open_reports_and_me_too_follows_one(streetlight):
    existing = file_report(category_code="streetlight")
    neighbour = UserFactory()
    client = _citizen_client(neighbour)
    part = client.get(
        "/report/nearby/", {"latitude": HANOI[0], "longitude": HANOI[1], "category": "streetlight"}
    )
    html = part.content.decode()
    assert existing.reference in html and "<html" not in html
    client.post(f"/report/{existing.reference}/me-too/")
    assert ReportSupporter.objects.filter(report=existing, user=neighbour).exists()
    far = client.get("/report/nearby/", {"latitude": 21.05, "longitude": 105.8, "category": "streetlight"})
    assert existing.reference not in far.content.decode()


def test_the_public_status_page_shows_no_personal_data(streetlight):
    report = file_report(
        category_code="streetlight", reporter=UserFactory(), contact_phone="0912345678", photos=[jpeg_bytes()]
    )
    page = _citizen_client().get(f"/report/{report.reference}/").content.decode()
    assert report.reference in page and "Broken streetlight" in page
    assert "Đèn đường trước" not in page and "0912345678" not in page and "/photos/" not in page
    photo = report.photos.get()
    assert _citizen_client().get(f"/report/{report.reference}/photos/{photo.public_id}/").status_code == 404
    photo.published = True
    photo.save()
    assert _citizen_client().get(f"/report/{report.reference}/photos/{photo.public_id}/").status_code == 200


def test_ai_routing_is_shown_with_the_model_card_and_a_review_button(streetlight):
    citizen = UserFactory()
    report = file_report(reporter=citizen, category_code="streetlight")
    Report.objects.filter(pk=report.pk).update(
        routed_by="ai", routing_model_version="2026.1", routing_model_id=3
    )
    client = _citizen_client(citizen)
    page = client.get(f"/report/{report.reference}/").content.decode()
    assert "/ai/models/2026.1/" in page and "Ask for a human review" in page
    client.post(f"/report/{report.reference}/human-review/")
    assert Report.objects.get(pk=report.pk).status == Report.Status.TRIAGE
    assert _citizen_client(UserFactory()).post(f"/report/{report.reference}/human-review/").status_code == 403


def test_my_reports_lists_the_citizens_reports(streetlight):
    citizen = UserFactory()
    mine = file_report(reporter=citizen)
    other = file_report(reporter=UserFactory())
    page = _citizen_client(citizen).get("/my-reports/").content.decode()
    assert mine.reference in page and other.reference not in page
    assert _citizen_client().get("/my-reports/").status_code == 302


def test_rating_a_resolved_report_from_the_status_page(streetlight):
    from civicore.reports import services

    citizen = UserFactory()
    report = file_report(reporter=citizen, category_code="streetlight")
    services.report_resolve(report=report, officer=make_handler(streetlight), note="Đã thay bóng")
    client = _citizen_client(citizen)
    assert "Is the problem fixed?" in client.get(f"/report/{report.reference}/").content.decode()
    client.post(f"/report/{report.reference}/rate/", {"resolved": "no", "stars": "2"})
    assert Report.objects.get(pk=report.pk).status == Report.Status.OPEN


# --- office --------------------------------------------------------------------------------------


def test_inbox_shows_the_agencys_reports_with_overdue_marks(streetlight):
    from datetime import timedelta

    from django.utils import timezone

    handler = make_handler(streetlight)
    report = file_report(category_code="streetlight")
    Report.objects.filter(pk=report.pk).update(due_at=timezone.now() - timedelta(days=1))
    other = file_report(category_code=make_category("waste").code)
    page = back_office_client(handler.user).get("/office/reports/").content.decode()
    assert report.reference in page and "overdue" in page and other.reference not in page
    filtered = back_office_client(handler.user).get(
        "/office/reports/?status=resolved", HTTP_HX_REQUEST="true"
    )
    assert report.reference not in filtered.content.decode() and "<html" not in filtered.content.decode()


def test_an_officer_of_another_agency_gets_403_and_a_plain_citizen_too(streetlight):
    report = file_report(category_code="streetlight")
    stranger = make_officer(agency=AgencyFactory(), roles=("report_handler",))
    client = back_office_client(stranger.user)
    assert client.get(f"/office/reports/{report.pk}/").status_code == 403
    assert client.post(f"/office/reports/{report.pk}/start/").status_code == 403
    assert back_office_client(UserFactory()).get("/office/reports/").status_code == 403
    assert (
        back_office_client(make_handler(streetlight).user).get("/office/reports/999999/").status_code == 404
    )


def test_opening_a_report_and_its_photo_is_audited(streetlight):
    report = file_report(category_code="streetlight", contact_email="x@example.vn", photos=[jpeg_bytes()])
    handler = make_handler(streetlight)
    client = back_office_client(handler.user)
    page = client.get(f"/office/reports/{report.pk}/").content.decode()
    assert "x@example.vn" in page
    assert AuditEntry.objects.filter(action="report.view", actor=handler.user).count() == 1
    photo = report.photos.get()
    assert client.get(f"/office/reports/{report.pk}/photos/{photo.public_id}/").status_code == 200
    assert AuditEntry.objects.filter(action="report.photo_view", actor=handler.user).exists()


def test_triage_page_routes_in_one_click(streetlight):
    report = file_report()
    Report.objects.filter(pk=report.pk).update(routing_suggestions=[["streetlight", 0.61], ["waste", 0.2]])
    triager = make_officer(roles=("report_triager",))
    client = back_office_client(triager.user)
    page = client.get("/office/reports/triage/").content.decode()
    assert report.reference in page and "61%" in page
    response = client.post(
        f"/office/reports/{report.pk}/route/", {"category": "streetlight", "next": "triage"}
    )
    assert response.status_code == 302 and response["Location"] == "/office/reports/triage/"
    assert Report.objects.get(pk=report.pk).agency == streetlight.agency
    assert (
        back_office_client(make_handler(streetlight).user).get("/office/reports/triage/").status_code == 403
    )


def test_officer_resolves_with_a_photo_and_reroute_needs_a_reason(streetlight):
    make_category("water_leak")
    report = file_report(category_code="streetlight")
    handler = make_handler(streetlight)
    client = back_office_client(handler.user)
    client.post(f"/office/reports/{report.pk}/route/", {"category": "water_leak", "reason": ""})
    assert Report.objects.get(pk=report.pk).category == streetlight
    photo = SimpleUploadedFile("fix.png", jpeg_bytes(fmt="PNG"), content_type="image/png")
    client.post(f"/office/reports/{report.pk}/resolve/", {"note": "Đã thay bóng đèn", "photo": photo})
    resolved = Report.objects.get(pk=report.pk)
    assert resolved.status == Report.Status.RESOLVED and resolved.photos.filter(kind="fix").exists()
    public = _citizen_client().get(f"/report/{report.reference}/").content.decode()
    assert "Đã thay bóng đèn" in public


def test_unknown_office_action_is_404(streetlight):
    report = file_report(category_code="streetlight")
    client = back_office_client(make_handler(streetlight).user)
    assert client.post(f"/office/reports/{report.pk}/explode/").status_code == 404
