"""The AI routing pages in a real browser: anyone reads the model cards; an officer holding
ai.manage compares a candidate with the active model on the same held-out rows and activates it.
Every page is checked with axe-core in Vietnamese and English."""

from __future__ import annotations

import csv
from pathlib import Path
from typing import Any

import pytest

from civicore.audit.models import AuditEntry
from civicore.core import demo
from civicore.identity.models import User
from civicore.routing import ml, selectors
from civicore.routing import services as routing
from civicore.routing.models import RoutingModel
from tests.e2e.accessibility import assert_accessible
from tests.e2e.test_citizen_journey import _click_and_wait, _login

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

STEWARD_EMAIL = "officer.ubnd-xa-an-binh@demo.civicore.invalid"  # ai_steward in the demo
DATA = Path(__file__).resolve().parents[2] / "civicore" / "routing" / "data" / "reports-demo.csv"


def _register(tmp_path: Path, name: str, per_label_language: int) -> RoutingModel:
    rows, seen = [], {}
    with DATA.open(encoding="utf-8") as handle:
        for row in csv.DictReader(handle):
            key = (row["label"], row["language"])
            if seen.get(key, 0) < per_label_language:
                seen[key] = seen.get(key, 0) + 1
                rows.append(ml.Example(row["text"], row["label"]))
    model, held = ml.train(rows, precision=0.9)
    ml.save(model, held, tmp_path / name)
    return routing.model_register(files=ml.read_directory(tmp_path / name))


@pytest.fixture
def models(tmp_path: Path) -> Any:
    selectors.forget_cache()
    demo.load()
    active = routing.model_activate(_register(tmp_path, "first", 10), operator=True)
    candidate = _register(tmp_path, "second", 25)
    yield active, candidate
    selectors.forget_cache()


@pytest.mark.parametrize("locale", ["vi-VN", "en-GB"])
def test_cards_comparison_and_activation(browser: Any, live_server: Any, models: Any, locale: str) -> None:
    active, candidate = models
    base = live_server.url
    visitor = browser.new_context(locale=locale).new_page()
    visitor.goto(f"{base}/ai/models/")
    assert_accessible(visitor, "model list")
    assert active.version in visitor.locator("main table").inner_text()
    visitor.goto(f"{base}/ai/models/{active.version}/")
    assert_accessible(visitor, "model card")
    card = visitor.locator("main").inner_text()
    assert active.manifest["files"]["model.npz"] in card  # the weights file's sha256 is published
    assert visitor.locator("#threshold").count() == 1

    steward = browser.new_context(locale=locale).new_page()
    _login(steward, base, STEWARD_EMAIL, demo.OFFICER_SECRET)
    steward.goto(f"{base}/office/routing/")
    assert_accessible(steward, "office model list")
    steward.goto(f"{base}/office/routing/{candidate.pk}/")
    assert_accessible(steward, "candidate beside the active model")
    assert steward.locator("#comparison-table tbody tr").count() >= 3
    _click_and_wait(steward, "main form button[type=submit]")
    candidate.refresh_from_db()
    active.refresh_from_db()
    assert candidate.state == RoutingModel.State.ACTIVE and active.state == RoutingModel.State.RETIRED
    steward_user = User.objects.get(email=STEWARD_EMAIL)
    assert AuditEntry.objects.filter(action="ai.model_activated", actor=steward_user).exists()
    assert_accessible(steward, "after activation")
