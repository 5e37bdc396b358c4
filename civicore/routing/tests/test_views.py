from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from django.test import Client

from civicore.agencies.tests.factories import back_office_client, make_officer
from civicore.audit.models import AuditEntry
from civicore.routing import ml, services
from civicore.routing.models import RoutingModel

pytestmark = pytest.mark.django_db


def register(directory: Path, version: str | None = None, tmp: Path | None = None) -> RoutingModel:
    if version:
        model = ml.load(directory)
        model.manifest = {**model.manifest, "model_version": version}
        ml.save(model, ml.heldout_rows(directory), tmp / version)
        directory = tmp / version
    return services.model_register(files=ml.read_directory(directory))


def test_public_list_marks_the_active_model(model_dir: Path, categories: Any, tmp_path: Path) -> None:
    active = services.model_activate(register(model_dir), None, operator=True)
    register(model_dir, "candidate-2", tmp_path)
    page = Client(HTTP_ACCEPT_LANGUAGE="en").get("/ai/models/").content.decode()
    assert active.version in page and "candidate-2" in page
    assert "Active: routes new reports" in page


def test_model_card_shows_data_metrics_threshold_and_limits(model_dir: Path, categories: Any) -> None:
    row = services.model_activate(register(model_dir), make_officer(roles=("ai_steward",)).user)
    response = Client(HTTP_ACCEPT_LANGUAGE="en").get(f"/ai/models/{row.version}/")
    assert response.status_code == 200
    page = response.content.decode()
    manifest = row.manifest
    assert manifest["training_data"]["input_sha256"] in page
    assert row.sha256 in page
    assert "Results per category on the held-out rows" in page
    assert "Category streetlight" in page  # the category's name from the reports app
    assert "Known limits" in page and "Predicts only the categories it was trained on" in page
    assert "90.0 %" in page  # the precision target the threshold was chosen for
    assert f"by an officer of {row.activated_by_agency.name}" in page
    vi = Client(HTTP_ACCEPT_LANGUAGE="vi").get(f"/ai/models/{row.version}/")
    assert vi.status_code == 200
    assert Client().get("/ai/models/no-such-version/").status_code == 404


def test_office_pages_need_ai_manage(model_dir: Path) -> None:
    row = register(model_dir)
    triager = back_office_client(make_officer(roles=("report_triager",)).user)
    assert triager.get("/office/routing/").status_code == 403
    assert triager.get(f"/office/routing/{row.pk}/").status_code == 403
    assert triager.post(f"/office/routing/{row.pk}/activate/").status_code == 403
    assert RoutingModel.objects.get().state == "candidate"
    assert Client().get("/office/routing/").status_code == 302  # to the login page


def test_steward_compares_and_activates(model_dir: Path, categories: Any, tmp_path: Path) -> None:
    active = services.model_activate(register(model_dir), None, operator=True)
    candidate = register(model_dir, "candidate-2", tmp_path)
    user = make_officer(roles=("ai_steward",)).user
    client = back_office_client(user)
    listing = client.get("/office/routing/").content.decode()
    assert active.version in listing and "candidate-2" in listing
    page = client.get(f"/office/routing/{candidate.pk}/").content.decode()
    assert "Comparison with the active model" in page and f"Active ({active.version})" in page
    assert "Precision at the threshold" in page and "Activate model candidate-2" in page
    response = client.post(f"/office/routing/{candidate.pk}/activate/")
    assert response.status_code == 302
    candidate.refresh_from_db()
    active.refresh_from_db()
    assert candidate.state == "active" and active.state == "retired" and candidate.activated_by == user
    assert AuditEntry.objects.filter(action="ai.model_activated", actor=user).count() == 1
    again = client.post(f"/office/routing/{candidate.pk}/activate/", follow=True)
    assert "already active" in again.content.decode()


def test_activation_from_the_page_needs_the_csrf_token(model_dir: Path, categories: Any) -> None:
    row = register(model_dir)
    client = back_office_client(make_officer(roles=("ai_steward",)).user)
    client.handler.enforce_csrf_checks = True
    assert client.post(f"/office/routing/{row.pk}/activate/").status_code == 403
    assert RoutingModel.objects.get().state == "candidate"
