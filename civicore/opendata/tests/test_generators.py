"""The published datasets from live data: what they count, and that no cell of 1 to 4 people
is ever published."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest
from django.utils import timezone

from civicore.applications.tests.factories import make_service, make_submitted
from civicore.cases.models import Case
from civicore.identity.tests.factories import make_citizen
from civicore.opendata import datastore, services
from civicore.opendata.datastore import Query
from civicore.opendata.generators import MIN_CELL, REGISTRY, Suppressor
from civicore.opendata.models import Dataset

pytestmark = pytest.mark.django_db


def records(name: str) -> list[dict[str, Any]]:
    resource = Dataset.objects.get(name=name).resources.get()
    return datastore.search(Query(resource=resource, limit=1000))["records"]


@pytest.fixture
def applications() -> dict[str, Any]:
    busy, quiet = make_service(), make_service()
    citizen = make_citizen()
    busy_apps = [make_submitted(citizen, busy) for _ in range(6)]
    quiet_apps = [make_submitted(citizen, quiet) for _ in range(2)]
    # Five of the busy service's are decided after three days: four approved, one rejected.
    for position, application in enumerate(busy_apps[:5]):
        case = application.case
        case.state = Case.State.REJECTED if position == 0 else Case.State.APPROVED
        case.closed_at = case.opened_at + dt.timedelta(days=3)
        case.save()
    quiet_apps[0].case.state = Case.State.APPROVED
    quiet_apps[0].case.closed_at = timezone.now()
    quiet_apps[0].case.save()
    return {"busy": busy, "quiet": quiet}


def test_every_dataset_is_generated_and_small_counts_never_published(applications: dict[str, Any]) -> None:
    done = services.datasets_refresh()
    assert {d.generator for d in done} == set(REGISTRY)
    busy, quiet = applications["busy"], applications["quiet"]
    monthly = {r["service_code"]: r for r in records("applications-monthly")}
    assert monthly[busy.code]["submitted"] == 6 and monthly[busy.code]["decided"] == 5
    assert monthly[busy.code]["approved"] is None and monthly[busy.code]["rejected"] is None  # 4 and 1
    assert monthly[busy.code]["median_days_to_decision"] == 3.0
    assert monthly[quiet.code]["submitted"] is None and monthly[quiet.code]["decided"] is None
    assert monthly[quiet.code]["median_days_to_decision"] is None  # derived from one person
    resource = Dataset.objects.get(name="applications-monthly").resources.get()
    assert resource.suppressed_cells == 6
    # No integer cell of any published resource lies between 1 and MIN_CELL - 1.
    for dataset in Dataset.objects.all():
        for resource in dataset.resources.all():
            counts = [f["id"] for f in resource.fields if f["type"] == "int" and f["id"] != "readings"]
            for record in datastore.search(Query(resource=resource, limit=32000))["records"]:
                assert all(not (0 < (record[c] or 0) < MIN_CELL) for c in counts), (dataset.name, record)
    catalogue = {r["service_code"]: r for r in records("service-catalogue")}
    assert catalogue[busy.code]["agency_code"] == busy.agency.code and catalogue[busy.code]["online"] == "yes"


def test_a_refresh_that_is_not_due_is_skipped_and_a_forced_one_replaces_rows(
    applications: dict[str, Any],
) -> None:
    services.datasets_refresh()
    assert services.datasets_refresh(force=False) == []
    make_submitted(make_citizen(), applications["busy"])
    again = services.datasets_refresh(only=["applications-monthly"])
    assert [d.name for d in again] == ["applications-monthly"]
    monthly = {r["service_code"]: r for r in records("applications-monthly")}
    assert monthly[applications["busy"].code]["submitted"] == 7


def test_a_failing_generator_does_not_stop_the_others(monkeypatch: Any) -> None:
    spec = REGISTRY["reports-monthly"]

    def broken() -> list[Any]:
        raise RuntimeError("boom")

    monkeypatch.setitem(REGISTRY, "reports-monthly", type(spec)(**{**spec.__dict__, "build": broken}))
    done = {d.generator for d in services.datasets_refresh()}
    assert "reports-monthly" not in done and "service-catalogue" in done


def test_a_hidden_part_hides_its_complement_so_the_total_cannot_give_it_away() -> None:
    hide = Suppressor()
    assert hide.parts(6, 1) == (None, None) and hide.hidden == 2
    assert hide.parts(3, 0) == (None, 0) and hide.hidden == 3
    assert hide.parts(6, 5) == (6, 5) and hide.parts(0, 0) == (0, 0) and hide.hidden == 3
    assert hide.count(0) == 0 and hide.count(4) is None and hide.count(5) == 5
    assert hide.derived(2, 3.5) is None and hide.derived(9, 3.5) == 3.5
