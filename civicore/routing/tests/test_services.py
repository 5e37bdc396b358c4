from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from django.db import IntegrityError, connection, transaction

from civicore.agencies.models import Officer
from civicore.agencies.tests.factories import make_officer
from civicore.audit.models import AuditEntry
from civicore.core.errors import Conflict, PermissionDenied, ValidationFailed
from civicore.routing import ml, selectors, services
from civicore.routing.models import RoutingModel, TrainingExample

pytestmark = pytest.mark.django_db


def register(directory: Path) -> RoutingModel:
    return services.model_register(files=ml.read_directory(directory))


def steward() -> Any:
    return make_officer(roles=("ai_steward",)).user


def test_route_is_none_without_an_active_model(model_dir: Path) -> None:
    assert services.route("Đèn đường hỏng") is None
    register(model_dir)  # a candidate does not route
    assert services.route("Đèn đường hỏng") is None


def test_route_with_the_active_model(model_dir: Path, categories: Any) -> None:
    row = services.model_activate(register(model_dir), steward())
    decision = services.route("Đèn đường trước nhà tôi bị hỏng, tối om")
    assert decision is not None
    assert decision.model_id == row.pk and decision.model_version == row.version
    assert decision.label == "streetlight" and decision.top3[0][0] == "streetlight"
    assert decision.threshold == row.threshold
    assert decision.auto == (decision.confidence >= decision.threshold)


def test_activation_needs_ai_manage(model_dir: Path, categories: Any) -> None:
    row = register(model_dir)
    with pytest.raises(PermissionDenied):
        services.model_activate(row, make_officer(roles=("report_triager",)).user)
    with pytest.raises(PermissionDenied):
        services.model_activate(row, None)  # only the operator's command line may pass nobody
    assert RoutingModel.objects.get().state == "candidate"


def test_activation_refuses_unknown_labels(model_dir: Path, categories: Any) -> None:
    categories[0].active = False
    categories[0].save()
    with pytest.raises(ValidationFailed) as caught:
        services.model_activate(register(model_dir), steward())
    assert caught.value.code == "unknown_labels" and caught.value.details == {"labels": [categories[0].code]}


def test_activation_retires_the_previous_model_and_is_audited(
    model_dir: Path, trained_dir: Path, categories: Any, tmp_path: Path
) -> None:
    first = services.model_activate(register(model_dir), steward())
    model = ml.load(trained_dir)
    model.manifest = {**model.manifest, "model_version": "second"}
    ml.save(model, ml.heldout_rows(trained_dir), tmp_path / "second")
    user = steward()
    second = services.model_activate(register(tmp_path / "second"), user)
    first.refresh_from_db()
    assert first.state == "retired" and second.state == "active"
    assert second.activated_by == user and second.activated_by_agency == Officer.objects.get(user=user).agency
    entry = AuditEntry.objects.filter(action="ai.model_activated").latest("id")
    assert entry.details["version"] == "second" and entry.details["previous"] == first.version
    assert entry.actor == user
    with pytest.raises(Conflict):
        services.model_activate(second, steward())
    assert services.route("rác không ai thu gom").model_version == "second"


def test_only_one_model_can_be_active(model_dir: Path, tmp_path: Path) -> None:
    first = register(model_dir)
    RoutingModel.objects.filter(pk=first.pk).update(state="active")
    model = ml.load(model_dir)
    model.manifest = {**model.manifest, "model_version": "other"}
    ml.save(model, ml.heldout_rows(model_dir), tmp_path / "other")
    other = register(tmp_path / "other")
    with pytest.raises(IntegrityError), transaction.atomic():
        RoutingModel.objects.filter(pk=other.pk).update(state="active")


def test_a_tampered_active_model_is_refused_and_audited(model_dir: Path, categories: Any) -> None:
    row = services.model_activate(register(model_dir), steward())
    assert services.route("đèn đường hỏng") is not None
    weights = bytearray(row.artifact)
    weights[-20] ^= 0xFF
    RoutingModel.objects.filter(pk=row.pk).update(artifact=bytes(weights), sha256=row.sha256)
    selectors.forget_cache()
    assert services.route("đèn đường hỏng") is None
    assert services.route("đèn đường hỏng") is None
    refusals = AuditEntry.objects.filter(action="ai.model_refused", subject_id=str(row.pk))
    assert refusals.count() == 1  # once per process, not once per report
    assert "does not match" in refusals.get().details["reason"]


def test_the_same_version_with_other_files_is_refused(model_dir: Path, tmp_path: Path) -> None:
    register(model_dir)
    model = ml.load(model_dir)
    model.threshold = 0.5
    ml.save(model, [], tmp_path / "same-version")
    with pytest.raises(Conflict):
        register(tmp_path / "same-version")


def test_decision_record_writes_the_audit_entry(model_dir: Path, categories: Any) -> None:
    services.model_activate(register(model_dir), steward())
    decision = services.route("Karaoke hàng xóm hát tới nửa đêm")
    services.decision_record(decision, subject_type="reports.report", subject_id="42", outcome="triage")
    entry = AuditEntry.objects.get(action="ai.route")
    assert entry.subject_type == "reports.report" and entry.subject_id == "42"
    details = entry.details
    assert details["model_version"] == decision.model_version
    assert details["confidence"] == decision.confidence and details["threshold"] == decision.threshold
    assert details["outcome"] == "triage" and len(details["top3"]) == 3
    with pytest.raises(ValidationFailed):
        services.decision_record(decision, subject_type="reports.report", subject_id="42", outcome="maybe")


def test_a_correction_is_kept_encrypted(model_dir: Path) -> None:
    row = register(model_dir)
    officer = make_officer(roles=("report_handler",))
    services.correction_record(
        text="Nhà số 5 Lê Lợi: đèn giao thông hỏng",
        predicted="streetlight",
        label="traffic_signal",
        reason="Đèn tín hiệu, không phải đèn đường",
        officer=officer,
        model_id=row.pk,
    )
    example = TrainingExample.objects.get()
    assert (example.label, example.predicted_label, example.source) == (
        "traffic_signal",
        "streetlight",
        "correction",
    )
    assert example.officer == officer and example.model == row
    with connection.cursor() as cursor:
        cursor.execute("SELECT text FROM routing_trainingexample")
        assert cursor.fetchone()[0].startswith("enc2:")
        cursor.execute("SELECT heldout FROM routing_routingmodel")
        assert cursor.fetchone()[0].startswith("enc2:")
    with pytest.raises(ValidationFailed):
        services.correction_record(text=" ", predicted="a", label="b", reason="", officer=None, model_id=None)
