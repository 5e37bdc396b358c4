"""Reports routed by a real trained model (no stand-in): decisions audited, officers' routings kept as
training examples, corrections too."""

from __future__ import annotations

import pytest

from civicore.audit.models import AuditEntry
from civicore.identity.tests.factories import UserFactory
from civicore.reports import services
from civicore.reports.models import Report
from civicore.reports.tests.factories import file_report, make_category, make_handler
from civicore.routing import selectors
from civicore.routing import services as routing
from civicore.routing.models import TrainingExample
from civicore.routing.tests.factories import make_model

pytestmark = pytest.mark.django_db


@pytest.fixture
def active_model():
    selectors.forget_cache()
    streetlight, waste = make_category("streetlight"), make_category("waste")
    model = make_model()
    routing.model_activate(model, operator=True)
    yield model, streetlight, waste
    selectors.forget_cache()


def test_a_sure_report_goes_to_the_agency_and_its_resolution_confirms_the_routing(active_model):
    model, streetlight, _ = active_model
    report = file_report(reporter=UserFactory(), description="Đèn đường hỏng 3 trước nhà số 12")
    assert report.status == Report.Status.OPEN and report.routed_by == Report.RoutedBy.AI
    assert report.agency == streetlight.agency and report.routing_model_id == model.pk
    decision = AuditEntry.objects.get(action="ai.route", subject_id=str(report.pk))
    assert decision.details["outcome"] == "auto" and decision.details["model_version"] == model.version
    handler = make_handler(streetlight)
    services.report_resolve(report=report, officer=handler, note="Đã thay bóng đèn")
    example = TrainingExample.objects.get()
    assert example.source == TrainingExample.Source.CONFIRMED and example.label == "streetlight"
    assert example.model_id == model.pk and example.text == report.description


def test_triage_routing_keeps_a_confirmation_or_a_correction(active_model):
    _, _, waste = active_model
    triager = make_handler(waste, roles=("report_triager",))
    reports = []
    for text in ("rác chưa thu gom 2 ngày nay, bốc mùi", "rác chưa thu gom ở gốc cây đổ"):
        citizen = UserFactory()
        filed = file_report(reporter=citizen, description=text)
        # The citizen asks for a person to look at it: it leaves the agency's inbox for triage.
        reports.append(services.report_request_human_review(report=filed, user=citizen))
    agreed, disputed = reports
    assert agreed.status == disputed.status == Report.Status.TRIAGE
    assert AuditEntry.objects.filter(action="ai.route", details__outcome="human_review").count() == 2
    first = agreed.routing_suggestions[0][0]
    services.report_route(report=agreed, officer=triager, category_code=first)
    other = "streetlight" if disputed.routing_suggestions[0][0] == "waste" else "waste"
    services.report_route(report=disputed, officer=triager, category_code=other, reason="")
    kept = {row.source: row for row in TrainingExample.objects.all()}
    assert kept[TrainingExample.Source.CONFIRMED].label == first
    correction = kept[TrainingExample.Source.CORRECTION]
    assert correction.label == other and correction.predicted_label == disputed.routing_label


def test_text_the_model_cannot_read_waits_for_an_officer(active_model):
    model, _, _ = active_model
    report = file_report(description="ไฟถนนดับหน้าบ้านเลขที่ 12 มาสามวันแล้ว")
    assert report.status == Report.Status.TRIAGE and report.agency is None
    assert report.routing_model_id == model.pk and report.routing_confidence < model.threshold
    assert AuditEntry.objects.get(action="ai.route", subject_id=str(report.pk)).details["outcome"] == "triage"
