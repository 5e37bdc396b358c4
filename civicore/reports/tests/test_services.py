from __future__ import annotations

import io
import struct
import zlib
from datetime import timedelta
from pathlib import Path

import pytest
from django.core import mail
from django.utils import timezone, translation
from django.utils.translation import gettext
from PIL import Image

from civicore.agencies.tests.factories import AgencyFactory, make_officer
from civicore.audit.models import AuditEntry
from civicore.core.errors import PermissionDenied
from civicore.identity.tests.factories import UserFactory
from civicore.notify.models import Notification
from civicore.reports import references, selectors, services
from civicore.reports.models import Report, ReportEvent, ReportPhoto, ReportSupporter
from civicore.reports.tests.factories import (
    HANOI,
    Decision,
    file_report,
    gps_exif,
    jpeg_bytes,
    make_category,
    make_handler,
)

pytestmark = pytest.mark.django_db


@pytest.fixture
def streetlight():
    return make_category("streetlight")


@pytest.fixture
def model(monkeypatch):
    """The routing model's answer for the next filings (none active by default)."""
    holder: dict[str, Decision | None] = {"decision": None}
    monkeypatch.setattr(services, "predict", lambda text: holder["decision"])
    return holder


def _png_bomb(width: int = 30000, height: int = 30000) -> bytes:
    """A real decompression bomb: a ~100 kB 1-bit PNG that decodes to 900 million pixels."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return (
            struct.pack(">I", len(data))
            + kind
            + data
            + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)
        )

    row = b"\x00" + b"\x00" * ((width + 7) // 8)
    compressor = zlib.compressobj(9)
    body = b"".join(compressor.compress(row) for _ in range(height)) + compressor.flush()
    header = struct.pack(">IIBBBBB", width, height, 1, 0, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", body) + chunk(b"IEND", b"")


# --- filing and routing --------------------------------------------------------------------------


def test_a_sure_model_sends_the_report_to_the_agency_with_an_sla(streetlight, model):
    model["decision"] = Decision(label="streetlight", confidence=0.93, threshold=0.8, auto=True)
    citizen = UserFactory()
    report = file_report(reporter=citizen)
    assert report.status == Report.Status.OPEN
    assert report.agency == streetlight.agency and report.category == streetlight
    assert report.routed_by == "ai" and report.routing_model_id == 7 and report.routing_confidence == 0.93
    assert report.due_at is not None and report.due_at > timezone.now() + timedelta(days=2)
    assert report.reference.startswith("PA-") and len(report.reference) == 9
    decision = AuditEntry.objects.get(action="ai.route", subject_id=str(report.pk))
    assert decision.details["outcome"] == "auto"
    assert Notification.objects.filter(user=citizen, subject__contains=report.reference).exists()
    # The description is encrypted at rest.
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("SELECT description FROM reports_report WHERE id = %s", [report.pk])
        assert "Đèn đường" not in cursor.fetchone()[0]


def test_an_unsure_model_or_no_model_leaves_the_report_in_triage(streetlight, model):
    model["decision"] = Decision(confidence=0.4, auto=False)
    unsure = file_report()
    assert unsure.status == Report.Status.TRIAGE and unsure.agency is None and unsure.routed_by == ""
    assert AuditEntry.objects.get(action="ai.route", subject_id=str(unsure.pk)).details["outcome"] == "triage"
    model["decision"] = None
    no_model = file_report()
    assert no_model.status == Report.Status.TRIAGE
    assert not AuditEntry.objects.filter(action="ai.route", subject_id=str(no_model.pk)).exists()


def test_a_sure_prediction_of_an_inactive_category_goes_to_triage(model):
    make_category("waste", active=False)
    model["decision"] = Decision(label="waste", auto=True)
    assert file_report().status == Report.Status.TRIAGE


def test_the_citizens_category_wins_and_the_models_decision_is_still_recorded(streetlight, model):
    waste = make_category("waste")
    model["decision"] = Decision(label="streetlight", auto=True)
    report = file_report(category_code="waste")
    assert report.category == waste and report.agency == waste.agency and report.routed_by == "citizen"
    entry = AuditEntry.objects.get(action="ai.route", subject_id=str(report.pk))
    assert entry.details["outcome"] == "citizen_category"


@pytest.mark.parametrize(
    ("description", "code"),
    [
        ("short", "description_too_short"),
        ("   a  b  c   ", "description_too_short"),
        ("x" * 10000, "description_too_long"),
        ("!!!!!!!! 123456 ??? 😡😡😡", "description_without_words"),
        ("\u200b" * 30 + "ab", "description_too_short"),
    ],
)
def test_bad_descriptions_are_refused_not_truncated(description, code):
    with pytest.raises(services.ReportInvalid) as excinfo:
        file_report(description=description)
    assert excinfo.value.code == code and "description" in excinfo.value.details
    assert not Report.objects.exists()


def test_control_and_invisible_characters_are_removed_before_saving():
    report = file_report(description="Đèn\u202e đường\x00 hỏng\u200b trước nhà\nsố 12")
    assert report.description == "Đèn đường hỏng trước nhà\nsố 12"


@pytest.mark.parametrize(
    "description",
    [
        "ไฟถนนดับหน้าบ้านเลขที่ 12 มาสามวันแล้ว",  # Thai
        "집 앞 가로등이 사흘째 꺼져 있어요",  # Korean
        "Уличный фонарь не горит уже три дня",  # Russian
    ],
)
def test_text_in_another_script_is_kept_as_written(description):
    assert file_report(description=description).description == description


def test_exactly_2000_characters_are_accepted():
    assert len(file_report(description="y" * 2000).description) == 2000


@pytest.mark.parametrize(("lat", "lon"), [(48.85, 2.35), (7.9, 105.0), (21.0, 110.5)])
def test_a_place_outside_the_service_area_is_refused(lat, lon):
    with pytest.raises(services.OutsideArea) as excinfo:
        file_report(latitude=lat, longitude=lon)
    assert excinfo.value.code == "outside_area" and not Report.objects.exists()


@pytest.mark.parametrize(("lat", "lon"), [("abc", "1"), (float("nan"), 105.0), (None, None)])
def test_missing_or_invalid_coordinates_are_refused(lat, lon):
    with pytest.raises(services.ReportInvalid):
        file_report(latitude=lat, longitude=lon)


def test_service_area_comes_from_settings(settings):
    settings.REPORT_AREA = [48.0, 2.0, 49.0, 3.0]
    assert file_report(latitude=48.85, longitude=2.35).latitude == 48.85
    with pytest.raises(services.OutsideArea):
        file_report()


def test_an_unknown_category_is_refused():
    with pytest.raises(services.ReportInvalid) as excinfo:
        file_report(category_code="no-such")
    assert excinfo.value.code == "unknown_category"


# --- photos --------------------------------------------------------------------------------------


def test_photos_are_stripped_of_exif_resized_and_stored_privately(settings):
    big = jpeg_bytes((3200, 2000), exif=gps_exif(21.03, 105.85))
    assert Image.open(io.BytesIO(big)).getexif()
    report = file_report(photos=[io.BytesIO(big)])
    photo = report.photos.get()
    path = Path(photo.file.path)
    assert path.is_relative_to(Path(settings.MEDIA_ROOT))
    stored = Image.open(path)
    assert stored.format == "JPEG"
    assert max(stored.size) == 1600 and (photo.width, photo.height) == (1600, 1000)
    assert not stored.getexif() and "exif" not in stored.info
    assert b"PhoneMaker" not in path.read_bytes()
    assert not photo.published


def test_the_photos_gps_places_a_report_without_a_pin():
    photo = jpeg_bytes(exif=gps_exif(21.0301, 105.8502))
    report = file_report(latitude=None, longitude=None, photos=[photo])
    assert report.latitude == pytest.approx(21.0301, abs=1e-4)
    assert report.longitude == pytest.approx(105.8502, abs=1e-4)


def test_png_and_webp_are_accepted():
    report = file_report(photos=[jpeg_bytes(fmt="PNG"), jpeg_bytes(fmt="WEBP")])
    assert report.photos.count() == 2


def test_a_text_file_named_jpg_is_refused():
    upload = io.BytesIO(b"this is not an image, only text pretending\n" * 10)
    upload.name = "holiday.jpg"
    with pytest.raises(services.ReportInvalid) as excinfo:
        file_report(photos=[upload])
    assert excinfo.value.code == "photo_type_not_allowed" and "holiday.jpg" in excinfo.value.message
    assert not Report.objects.exists() and not ReportPhoto.objects.exists()


def test_a_gif_is_refused():
    with pytest.raises(services.ReportInvalid) as excinfo:
        file_report(photos=[jpeg_bytes(fmt="GIF")])
    assert excinfo.value.code == "photo_type_not_allowed"


def test_a_decompression_bomb_is_refused_without_decoding_it():
    bomb = _png_bomb()
    assert len(bomb) < 400_000
    with pytest.raises(services.ReportInvalid) as excinfo:
        file_report(photos=[bomb])
    assert excinfo.value.code == "photo_too_many_pixels"
    assert not Report.objects.exists()


def test_the_pixel_limit_is_a_setting(settings):
    settings.PHOTO_MAX_PIXELS = 1000
    with pytest.raises(services.ReportInvalid) as excinfo:
        file_report(photos=[jpeg_bytes((100, 100))])
    assert excinfo.value.code == "photo_too_many_pixels"


def test_a_truncated_jpeg_is_refused():
    with pytest.raises(services.ReportInvalid) as excinfo:
        file_report(photos=[jpeg_bytes((400, 300))[:300]])
    assert excinfo.value.code == "photo_type_not_allowed"


def test_more_than_five_photos_are_refused():
    with pytest.raises(services.ReportInvalid) as excinfo:
        file_report(photos=[jpeg_bytes() for _ in range(6)])
    assert excinfo.value.code == "too_many_photos"


# --- rate limit ----------------------------------------------------------------------------------


def test_the_rate_limit_counts_per_client_per_hour(settings):
    settings.REPORT_RATE_PER_HOUR = 3
    for _ in range(3):
        file_report(client_key="ip:abc")
    with pytest.raises(services.RateLimited) as excinfo:
        file_report(client_key="ip:abc")
    assert excinfo.value.code == "rate_limited" and excinfo.value.status == 429
    file_report(client_key="ip:other")  # another client is not affected
    Report.objects.filter(client_key="ip:abc").update(created_at=timezone.now() - timedelta(minutes=61))
    file_report(client_key="ip:abc")
    assert Report.objects.count() == 5


def test_a_logged_in_citizen_is_counted_by_account(settings):
    settings.REPORT_RATE_PER_HOUR = 1
    citizen = UserFactory()
    file_report(reporter=citizen)
    with pytest.raises(services.RateLimited):
        file_report(reporter=citizen)


# --- "is this already reported?" -----------------------------------------------------------------


def _offset_north(metres: float) -> float:
    return HANOI[0] + metres / 111_195.0


def test_nearby_finds_reports_within_50_metres_not_60(streetlight):
    near = file_report(latitude=_offset_north(40), category_code="streetlight")
    file_report(latitude=_offset_north(60), category_code="streetlight")
    found = selectors.nearby_open_reports(HANOI[0], HANOI[1], category_code="streetlight")
    assert [r.pk for r in found] == [near.pk]
    assert 35 <= found[0].distance_m <= 45


def test_nearby_finds_reports_of_the_last_14_days_only(streetlight):
    recent = file_report(category_code="streetlight")
    old = file_report(category_code="streetlight")
    Report.objects.filter(pk=recent.pk).update(created_at=timezone.now() - timedelta(days=13))
    Report.objects.filter(pk=old.pk).update(created_at=timezone.now() - timedelta(days=15))
    assert [r.pk for r in selectors.nearby_open_reports(*HANOI, category_code="streetlight")] == [recent.pk]


def test_nearby_ignores_other_categories_and_closed_reports(streetlight):
    make_category("waste")
    file_report(category_code="waste")
    resolved = file_report(category_code="streetlight")
    Report.objects.filter(pk=resolved.pk).update(status=Report.Status.RESOLVED)
    assert selectors.nearby_open_reports(*HANOI, category_code="streetlight") == []
    assert len(selectors.nearby_open_reports(*HANOI)) == 1


def test_me_too_follows_a_report_once_and_is_notified_of_changes(streetlight):
    report = file_report(category_code="streetlight")
    neighbour = UserFactory()
    services.report_support(report=report, user=neighbour)
    services.report_support(report=report, user=neighbour)
    assert ReportSupporter.objects.filter(report=report).count() == 1
    anonymous = services.report_support(report=report, client_key="ip:x", contact_email="ban@example.vn")
    assert anonymous.contact_email == "ban@example.vn"
    services.report_start(report=report, officer=make_handler(streetlight))
    assert Notification.objects.filter(user=neighbour, subject__contains=report.reference).exists()
    from civicore.core.models import Job

    supporter_jobs = Job.objects.filter(
        name=services.EMAIL_JOB, payload__recipient=f"supporter:{anonymous.pk}"
    )
    assert supporter_jobs.exists()


def test_me_too_on_a_closed_report_is_refused(streetlight):
    report = file_report(category_code="streetlight")
    Report.objects.filter(pk=report.pk).update(status=Report.Status.RESOLVED)
    with pytest.raises(services.TransitionNotAllowed):
        services.report_support(report=report, user=UserFactory())


# --- officers ------------------------------------------------------------------------------------


def test_triage_officer_routes_to_a_suggestion_and_a_disagreement_is_kept(streetlight, model):
    traffic = make_category("traffic_signal")
    model["decision"] = Decision(label="streetlight", confidence=0.5, auto=False)
    report = file_report()
    triager = make_officer(roles=("report_triager",))
    routed = services.report_route(report=report, officer=triager, category_code="traffic_signal")
    assert (
        routed.status == Report.Status.OPEN
        and routed.agency == traffic.agency
        and routed.routed_by == "officer"
    )
    assert routed.due_at is not None
    assert AuditEntry.objects.filter(action="report.routed", subject_id=str(report.pk)).exists()


def test_a_handler_cannot_route_from_triage(streetlight):
    report = file_report()
    with pytest.raises(PermissionDenied):
        services.report_route(report=report, officer=make_handler(streetlight), category_code="streetlight")


def test_reroute_needs_a_reason_and_records_a_correction(streetlight, model, monkeypatch):
    water = make_category("water_leak")
    model["decision"] = Decision(label="streetlight", auto=True)
    report = file_report(reporter=UserFactory())
    handler = make_handler(streetlight)
    with pytest.raises(services.ReportInvalid) as excinfo:
        services.report_route(report=report, officer=handler, category_code="water_leak", reason="  ")
    assert excinfo.value.code == "reason_required"
    corrections = []
    monkeypatch.setattr(services, "_record_correction", lambda **kw: corrections.append(kw))
    moved = services.report_route(
        report=report, officer=handler, category_code="water_leak", reason="Ống nước vỡ"
    )
    assert moved.agency == water.agency and moved.category == water
    assert corrections[0]["predicted"] == "streetlight" and corrections[0]["label"] == "water_leak"
    assert corrections[0]["reason"] == "Ống nước vỡ"
    entry = AuditEntry.objects.get(action="report.rerouted", subject_id=str(report.pk))
    assert entry.details["reason"] == "Ống nước vỡ"
    # The reporter is told in the report's language (Vietnamese by default).
    with translation.override(report.language):
        told = gettext("Your report %(ref)s was sent to another agency: %(agency)s") % {
            "ref": report.reference,
            "agency": water.agency.name,
        }
    assert Notification.objects.filter(user=report.reporter, subject=told).exists()


def test_an_officer_of_another_agency_cannot_touch_the_report(streetlight):
    report = file_report(category_code="streetlight")
    stranger = make_officer(agency=AgencyFactory(), roles=("report_handler",))
    with pytest.raises(PermissionDenied):
        services.report_resolve(report=report, officer=stranger, note="done")
    with pytest.raises(PermissionDenied):
        selectors.report_for_officer(officer=stranger, report_id=report.pk)
    assert Report.objects.get(pk=report.pk).status == Report.Status.OPEN


def test_assign_to_a_team_or_contractor(streetlight):
    from civicore.agencies.models import Team

    report = file_report(category_code="streetlight")
    handler = make_handler(streetlight)
    team = Team.objects.create(agency=streetlight.agency, name="Đội 3")
    other_team = Team.objects.create(agency=AgencyFactory(), name="Other")
    with pytest.raises(services.ReportInvalid):
        services.report_assign(report=report, officer=handler, team_id=other_team.pk)
    assigned = services.report_assign(report=report, officer=handler, team_id=team.pk)
    assert assigned.assigned_team == team and assigned.status == Report.Status.IN_PROGRESS
    assigned = services.report_assign(report=report, officer=handler, contractor="Công ty Ánh Sáng")
    assert assigned.assigned_to_label == "Công ty Ánh Sáng" and assigned.assigned_team is None


def test_merge_shares_later_updates_with_the_duplicates_followers(streetlight):
    main = file_report(category_code="streetlight", reporter=UserFactory())
    duplicate_reporter = UserFactory()
    duplicate = file_report(category_code="streetlight", reporter=duplicate_reporter)
    handler = make_handler(streetlight)
    with pytest.raises(services.ReportInvalid):
        services.report_merge(report=duplicate, into_reference=duplicate.reference, officer=handler)
    merged = services.report_merge(report=duplicate, into_reference=main.reference.lower(), officer=handler)
    assert merged.status == Report.Status.MERGED and merged.merged_into == main
    Notification.objects.all().delete()
    services.report_resolve(report=main, officer=handler, note="Đã thay bóng đèn")
    assert Notification.objects.filter(user=duplicate_reporter, subject__contains=main.reference).exists()
    assert Notification.objects.filter(user=main.reporter, subject__contains=main.reference).exists()


def test_resolve_with_a_note_and_a_fix_photo(streetlight):
    report = file_report(category_code="streetlight", reporter=UserFactory())
    handler = make_handler(streetlight)
    with pytest.raises(services.ReportInvalid):
        services.report_resolve(report=report, officer=handler, note="")
    resolved = services.report_resolve(report=report, officer=handler, note="Đã sửa xong", photo=jpeg_bytes())
    assert resolved.status == Report.Status.RESOLVED and resolved.resolved_at is not None
    assert resolved.photos.get().kind == ReportPhoto.Kind.FIX
    assert ReportEvent.objects.filter(
        report=report, kind="resolved", note="Đã sửa xong", public=True
    ).exists()
    with pytest.raises(services.TransitionNotAllowed):
        services.report_resolve(report=report, officer=handler, note="again")


def test_publish_and_unpublish_a_photo_is_audited(streetlight):
    report = file_report(category_code="streetlight", photos=[jpeg_bytes()])
    handler = make_handler(streetlight)
    photo = report.photos.get()
    assert services.photo_publish(
        report=report, photo_id=photo.public_id, officer=handler, published=True
    ).published
    assert not services.photo_publish(
        report=report, photo_id=photo.public_id, officer=handler, published=False
    ).published
    assert AuditEntry.objects.filter(action="report.photo_publish").exists()
    assert AuditEntry.objects.filter(action="report.photo_unpublish").exists()


def test_reading_a_report_as_an_officer_is_audited(streetlight):
    report = file_report(category_code="streetlight", contact_email="a@example.vn")
    handler = make_handler(streetlight)
    selectors.report_for_officer(officer=handler, report_id=report.pk)
    assert AuditEntry.objects.filter(
        action="report.view", subject_id=str(report.pk), actor=handler.user
    ).exists()


# --- citizens after filing -----------------------------------------------------------------------


def test_not_resolved_reopens_and_tells_the_agency(streetlight):
    citizen = UserFactory()
    report = file_report(category_code="streetlight", reporter=citizen)
    handler = make_handler(streetlight)
    services.report_resolve(report=report, officer=handler, note="Xong")
    with pytest.raises(PermissionDenied):
        services.report_rate(report=report, user=UserFactory(), resolved=True, stars=5)
    with pytest.raises(services.ReportInvalid):
        services.report_rate(report=report, user=citizen, resolved=False, stars=9)
    reopened = services.report_rate(report=report, user=citizen, resolved=False, stars=1, comment="Vẫn tối")
    assert (
        reopened.status == Report.Status.OPEN and reopened.rating_stars == 1 and reopened.resolved_at is None
    )
    assert ReportEvent.objects.filter(report=report, kind="reopened").exists()
    assert Notification.objects.filter(user=handler.user, subject__contains="reopened").exists()


def test_resolved_rating_keeps_it_resolved(streetlight):
    citizen = UserFactory()
    report = file_report(category_code="streetlight", reporter=citizen)
    services.report_resolve(report=report, officer=make_handler(streetlight), note="Xong")
    rated = services.report_rate(report=report, user=citizen, resolved=True, stars=5)
    assert rated.status == Report.Status.RESOLVED and rated.rating_resolved is True
    with pytest.raises(services.TransitionNotAllowed):
        services.report_rate(report=file_report(reporter=citizen), user=citizen, resolved=True, stars=5)


def test_human_review_moves_an_ai_routed_report_to_triage(streetlight, model):
    model["decision"] = Decision(label="streetlight", auto=True)
    citizen = UserFactory()
    report = file_report(reporter=citizen)
    with pytest.raises(PermissionDenied):
        services.report_request_human_review(report=report, user=UserFactory())
    reviewed = services.report_request_human_review(report=report, user=citizen)
    assert reviewed.status == Report.Status.TRIAGE and reviewed.agency is None
    assert reviewed.human_review_requested_at is not None
    assert AuditEntry.objects.filter(action="report.human_review", subject_id=str(report.pk)).exists()
    with pytest.raises(services.TransitionNotAllowed):
        services.report_request_human_review(report=reviewed, user=citizen)


def test_an_anonymous_reporter_is_recognised_by_the_session_reference(streetlight, model):
    model["decision"] = Decision(label="streetlight", auto=True)
    report = file_report()
    reviewed = services.report_request_human_review(report=report, user=None, session_refs=[report.reference])
    assert reviewed.status == Report.Status.TRIAGE


def test_anonymous_contact_gets_email_updates(streetlight, settings):
    settings.JOBS_RUN_INLINE = True
    report = file_report(category_code="streetlight", contact_email="dan@example.vn")
    from civicore.core.models import Job

    assert Job.objects.filter(name=services.EMAIL_JOB).exists()
    services.report_email_contact(report_id=report.pk, recipient="reporter", subject="S", body="B")
    assert mail.outbox[-1].to == ["dan@example.vn"] and report.reference in mail.outbox[-1].body


def test_unknown_category_codes_for_routing():
    make_category("streetlight")
    make_category("waste", active=False)
    assert selectors.unknown_category_codes(["streetlight", "waste", "bogus"]) == ["bogus", "waste"]


def test_report_by_reference_accepts_what_citizens_type(streetlight):
    report = file_report()
    assert selectors.report_by_reference(report.reference[3:].lower()) == report
    assert selectors.report_by_reference(" " + report.reference.lower()) == report
    assert selectors.report_by_reference("PA-0000") is None


@pytest.mark.parametrize(
    ("typed", "canonical"),
    [
        ("pa3fcw", "PA-PA3FCW"),
        ("PAPA3FCW", "PA-PA3FCW"),
        ("pa-pa3fcw", "PA-PA3FCW"),
        ("PA 3F CW", "PA-PA3FCW"),
        ("pa7kq4m9", "PA-7KQ4M9"),
        ("7kq4m9", "PA-7KQ4M9"),
        (" PA-7KQ4M9 ", "PA-7KQ4M9"),
    ],
)
def test_references_that_begin_with_pa_survive_a_missing_prefix(typed, canonical):
    """A code may itself begin with "PA": typed without the prefix, it is still that code."""
    assert references.normalise(typed) == canonical
    assert references.is_valid(references.normalise(typed))
