"""The scorecard pages, their CSV, the API with bad input, who may see an agency's scorecard, the
open dataset, and the pages in Chromium checked with axe-core in both languages."""

from __future__ import annotations

from typing import Any

import pytest
from django.test import Client

from civicore.agencies.tests.factories import back_office_client, make_officer
from civicore.applications.tests.factories import make_service, make_submitted
from civicore.core.tests.accessibility import axe_in_chromium
from civicore.identity.services import api_token_create
from civicore.identity.tests.factories import make_citizen
from civicore.insights import events
from civicore.opendata import datastore
from civicore.opendata import services as opendata
from civicore.opendata.datastore import Query
from civicore.opendata.models import Dataset

pytestmark = pytest.mark.django_db


@pytest.fixture
def world() -> dict[str, Any]:
    head = make_officer(roles=("agency_head",))
    service = make_service(head.agency)
    for _index in range(5):
        make_submitted(make_citizen(), service)
    return {"head": head, "service": service}


def test_the_platform_page_shows_figures_definitions_chart_and_table(world: dict[str, Any]) -> None:
    page = Client(HTTP_ACCEPT_LANGUAGE="en").get("/performance/").content.decode()
    assert "Service performance" in page and "Transactions completed end to end digitally" in page
    assert "<dl>" in page and "Ratings of 5 out of 5, out of all ratings given." in page
    assert 'role="img"' in page and "<caption>" in page and 'scope="row"' in page
    assert "90 to 95%" in page and "(5/5)" in page  # completion: five started, five submitted


def test_a_service_page_and_its_csv(world: dict[str, Any]) -> None:
    client = Client(HTTP_ACCEPT_LANGUAGE="en")
    service = world["service"]
    page = client.get(f"/performance/{service.code}/").content.decode()
    assert "Performance of Birth registration" in page
    response = client.get(f"/performance/{service.code}/", {"format": "csv"})
    assert response["Content-Type"].startswith("text/csv")
    assert response.content.startswith(b"\xef\xbb\xbf")
    text = response.content.decode("utf-8-sig")
    assert f"service,{service.code}," in text and ",completion,5,5,100.0," in text
    assert client.get("/performance/no-such-service/").status_code == 404


def test_a_bad_month_on_a_page_is_a_message_not_an_error(world: dict[str, Any]) -> None:
    client = Client(HTTP_ACCEPT_LANGUAGE="en")
    for hostile in ("2026-13", "<script>", "9999-01", "'; DROP TABLE x; --"):
        response = client.get("/performance/", {"month": hostile})
        assert response.status_code == 200
        page = response.content.decode()
        assert "usa-error-message" in page and "<script>" not in page.split("<main", 1)[1].split("</main>")[0]


def test_the_api_scorecard_and_its_errors(world: dict[str, Any]) -> None:
    client = Client(HTTP_ACCEPT_LANGUAGE="en")
    ok = client.get("/api/v1/insights/scorecard", {"scope": "service", "code": world["service"].code})
    assert ok.status_code == 200
    figures = {f["key"]: f for f in ok.json()["figures"]}
    assert (figures["completion"]["numerator"], figures["completion"]["percent"]) == (5, 100.0)
    for hostile in ("2026-1x", "2026-13", "0000-00", "' OR 1=1 --"):
        bad = client.get("/api/v1/insights/scorecard", {"month": hostile})
        assert bad.status_code == 422 and bad.json()["code"], hostile
    assert (
        client.get("/api/v1/insights/scorecard", {"month": "2199-01"}).json()["figures"][0]["denominator"]
        == 0
    )
    missing = client.get("/api/v1/insights/scorecard", {"scope": "service", "code": "nothing"})
    assert missing.status_code == 404 and missing.json()["code"] == "service_not_found"
    nobody = client.get("/api/v1/insights/scorecard", {"scope": "agency", "code": "nothing"})
    assert nobody.status_code == 404 and nobody.json()["code"] == "agency_not_found"
    assert client.get("/api/v1/insights/scorecard", {"scope": "galaxy"}).status_code == 422
    assert (
        client.get("/api/v1/insights/scorecard", {"scope": "service"}).json()["code"] == "service_not_found"
    )


def test_an_agency_scorecard_is_for_its_own_officers(world: dict[str, Any]) -> None:
    code = world["head"].agency.code
    url = "/api/v1/insights/scorecard"
    anonymous = Client().get(url, {"scope": "agency", "code": code})
    assert anonymous.status_code == 403 and anonymous.json()["code"] == "performance_not_allowed"
    other = back_office_client(make_officer(roles=("agency_head",)).user)
    assert other.get(url, {"scope": "agency", "code": code}).status_code == 403
    caseworker = back_office_client(make_officer(world["head"].agency).user)
    assert caseworker.get(url, {"scope": "agency", "code": code}).status_code == 403
    head = back_office_client(world["head"].user)
    assert head.get(url, {"scope": "agency", "code": code}).json()["code"] == code
    page = head.get("/office/performance/").content.decode()
    assert "Agency performance" in page and world["service"].code in page
    assert caseworker.get("/office/performance/").status_code == 403


def test_an_agency_scorecard_answers_its_officers_api_token(world: dict[str, Any]) -> None:
    code, url = world["head"].agency.code, "/api/v1/insights/scorecard"
    _token, secret = api_token_create(user=world["head"].user, name="Dashboard")
    _other, stranger = api_token_create(user=make_officer(roles=("agency_head",)).user, name="Other")
    answer = Client().get(url, {"scope": "agency", "code": code}, HTTP_AUTHORIZATION=f"Bearer {secret}")
    assert answer.status_code == 200 and answer.json()["code"] == code
    refused = Client().get(url, {"scope": "agency", "code": code}, HTTP_AUTHORIZATION=f"Bearer {stranger}")
    assert refused.status_code == 403 and refused.json()["code"] == "performance_not_allowed"
    for wrong in ("Bearer cvc_not-a-token", "Bearer " + "x" * 500, "bearer "):
        answer = Client().get(url, {"scope": "platform"}, HTTP_AUTHORIZATION=wrong)
        assert answer.status_code == 401 and answer.json()["code"] == "unauthenticated", wrong
    assert Client().get(url, {"scope": "platform"}).status_code == 200  # the public scopes need nothing


def test_offline_volumes_from_the_office_page_and_the_api(world: dict[str, Any]) -> None:
    head = back_office_client(world["head"].user)
    code, month = world["service"].code, f"{events.month_of():%Y-%m}"
    response = head.post("/office/performance/offline/", {"service": code, "month": month, "count": "5"})
    assert response.status_code == 302
    page = head.get("/office/performance/", {"service": code}).content.decode()
    assert 'id="kpi-take_up"' in page and "(5/10)" in page
    refused = head.post("/office/performance/offline/", {"service": code, "month": month, "count": "lots"})
    assert "Enter a whole number" in head.get(refused["Location"]).content.decode()
    api = head.put(
        "/api/v1/insights/offline-volumes",
        {"service": code, "month": month, "count": 15},
        content_type="application/json",
    )
    assert api.status_code == 200 and api.json()["count"] == 15
    future = head.put(
        "/api/v1/insights/offline-volumes",
        {"service": code, "month": "2999-01", "count": 1},
        content_type="application/json",
    )
    assert future.status_code == 422 and future.json()["code"] == "invalid_month"
    other = back_office_client(make_officer(roles=("agency_head",)).user)
    stranger = other.put(
        "/api/v1/insights/offline-volumes",
        {"service": code, "month": month, "count": 1},
        content_type="application/json",
    )
    assert stranger.status_code == 404 and stranger.json()["code"] == "service_not_found"


def test_the_open_dataset_suppresses_small_counts(world: dict[str, Any]) -> None:
    quiet = make_service(world["head"].agency)
    make_submitted(make_citizen(), quiet)
    opendata.datasets_refresh(only=["kpi-scorecards"])
    resource = Dataset.objects.get(name="kpi-scorecards").resources.get()
    rows = {r["service_code"]: r for r in datastore.search(Query(resource=resource, limit=100))["records"]}
    busy = rows[world["service"].code]
    assert busy["submitted"] == 5 and busy["completion_rate"] == 100.0
    assert rows[quiet.code]["submitted"] is None and rows[quiet.code]["completion_rate"] is None


@pytest.mark.browser
@pytest.mark.django_db(transaction=True)
def test_the_performance_pages_pass_axe(live_server: Any) -> None:
    head = make_officer(roles=("agency_head",))
    service = make_service(head.agency)
    make_submitted(make_citizen(), service)
    session = back_office_client(head.user).cookies["sessionid"].value
    base = live_server.url
    found = axe_in_chromium(
        base_url=base,
        pages={
            "platform": f"{base}/performance/",
            "service": f"{base}/performance/{service.code}/",
            "office": f"{base}/office/performance/",
        },
        session=session,
    )
    assert len(found) == 3 * 2
