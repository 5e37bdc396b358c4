"""CKAN's Action API, through `ckanapi` (CKAN's own client) against a live server, and its
errors in CKAN's shape for bad and hostile requests."""

from __future__ import annotations

import json
from typing import Any

import ckanapi
import pytest
from django.test import Client

from civicore.opendata import services
from civicore.opendata.models import Dataset
from civicore.opendata.tests.factories import make_resource, row


@pytest.fixture
def published(transactional_db: Any) -> dict[str, Any]:
    services.datasets_refresh()
    resource = make_resource(rows=1234)
    return {"resource": resource}


@pytest.fixture(params=[False, True], ids=["post", "get"])
def remote(request: Any, live_server: Any) -> ckanapi.RemoteCKAN:
    with ckanapi.RemoteCKAN(live_server.url, get_only=request.param) as ckan:
        yield ckan


def test_ckanapi_lists_shows_and_searches_packages(
    published: dict[str, Any], remote: ckanapi.RemoteCKAN
) -> None:
    names = remote.action.package_list()
    assert names == sorted(Dataset.objects.values_list("name", flat=True))
    assert {"service-catalogue", "applications-monthly", "sample"} <= set(names)
    package = remote.action.package_show(id="applications-monthly")
    assert package["name"] == "applications-monthly" and package["num_resources"] == 1
    assert package["title_translated"]["en"] == "Applications by service and month"
    assert package["organization"]["name"] == "civicore"
    assert package["resources"][0]["datastore_active"] is True
    assert remote.action.package_show(id=package["id"])["name"] == "applications-monthly"  # by id too
    found = remote.action.package_search(q="sample", rows=5)
    assert found["count"] == 1 and found["results"][0]["name"] == "sample"
    assert remote.action.package_search(fq="tags:sample")["count"] == 1
    everything = remote.action.package_search(rows=2, start=0, sort="name asc")
    assert everything["count"] == len(names) and [p["name"] for p in everything["results"]] == names[:2]
    organizations = remote.action.organization_list()
    assert organizations == ["civicore"]
    org = remote.action.organization_show(id="civicore", include_datasets=True)
    assert org["package_count"] == len(names) and len(org["packages"]) == len(names)
    resource = remote.action.resource_show(id=str(published["resource"].id))
    assert resource["package_id"] == str(published["resource"].dataset_id)


def test_ckanapi_pages_through_a_datastore_resource(
    published: dict[str, Any], remote: ckanapi.RemoteCKAN
) -> None:
    resource_id = str(published["resource"].id)
    collected: list[dict[str, Any]] = []
    offset = 0
    while True:
        page = remote.action.datastore_search(resource_id=resource_id, limit=500, offset=offset)
        collected += page["records"]
        if len(page["records"]) < 500:
            break
        offset += 500
    assert page["total"] == 1234 and [r["_id"] for r in collected] == list(range(1, 1235))
    assert collected[41]["district"] == row(42)[0]
    # In a query string CKAN takes filters as JSON text; in a POST body, as an object.
    filters: Any = {"category": "pothole"}
    filters = json.dumps(filters) if remote.get_only else filters
    filtered = remote.action.datastore_search(
        resource_id=resource_id, filters=filters, sort="count desc", fields="count", limit=3
    )
    assert [r["count"] for r in filtered["records"]] == [1234, 1231, 1228]


def test_ckanapi_gets_ckan_errors(published: dict[str, Any], remote: ckanapi.RemoteCKAN) -> None:
    resource_id = str(published["resource"].id)
    with pytest.raises(ckanapi.NotFound):
        remote.action.package_show(id="no-such-dataset")
    with pytest.raises(ckanapi.NotFound):
        remote.action.datastore_search(resource_id="00000000-0000-0000-0000-000000000000")
    with pytest.raises(ckanapi.ValidationError) as unknown:
        remote.action.datastore_search(resource_id=resource_id, filters={"password": "x"})
    assert "filters" in unknown.value.error_dict
    with pytest.raises(ckanapi.ValidationError) as huge:
        remote.action.datastore_search(resource_id=resource_id, limit=10_000_000)
    assert "limit" in huge.value.error_dict
    with pytest.raises(ckanapi.ValidationError) as sort:
        remote.action.datastore_search(resource_id=resource_id, sort="count; DROP TABLE opendata_dataset")
    assert "sort" in sort.value.error_dict
    with pytest.raises(ckanapi.SearchQueryError):
        remote.action.package_search(fq="secret:1")
    with pytest.raises(ckanapi.NotFound):
        remote.action.organization_show(id="nobody")
    assert remote.action.datastore_search(resource_id=resource_id, limit=1)["total"] == 1234  # nothing lost


@pytest.mark.django_db
def test_bad_requests_get_ckan_error_objects() -> None:
    client = Client()
    unknown = client.get("/api/3/action/package_delete")
    assert unknown.status_code == 400
    assert unknown.json()["success"] is False and unknown.json()["error"]["__type"] == "Bad request"
    for body in (b"{not json", b"[1, 2]", b"[" * 50_000, b"x" * 70_000):
        response = client.post("/api/3/action/package_show", body, content_type="application/json")
        assert response.status_code == 400 and response.json()["success"] is False, body[:20]
    missing = client.get("/api/3/action/package_show")
    assert missing.status_code == 409 and missing.json()["error"]["id"] == ["Missing value"]
    extra = client.get("/api/3/action/datastore_search", {"resource_id": "x", "bogus": "1"})
    assert extra.status_code == 404  # the resource is checked first, as CKAN does
    assert client.get("/api/3").json() == {"version": 3}
    assert client.put("/api/3/action/package_list").status_code == 405
    status = client.get("/api/action/status_show").json()
    assert status["success"] and status["result"]["api_version"] == 3


@pytest.mark.django_db
def test_datastore_search_in_a_query_string_takes_json_filters() -> None:
    resource = make_resource(rows=20)
    client = Client()
    response = client.get(
        "/api/3/action/datastore_search",
        {"resource_id": str(resource.id), "filters": json.dumps({"district": "Ba Đình"}), "limit": "2"},
    )
    body = response.json()
    assert response.status_code == 200 and body["success"]
    assert body["result"]["total"] == 5 and len(body["result"]["records"]) == 2
    assert body["result"]["_links"]["next"].endswith("offset=2")
    bad = client.get("/api/3/action/datastore_search", {"resource_id": str(resource.id), "filters": "{bad"})
    assert bad.status_code == 409 and "filters" in bad.json()["error"]
    extra = client.get("/api/3/action/datastore_search", {"resource_id": str(resource.id), "bogus": "1"})
    assert extra.status_code == 409 and "bogus" in extra.json()["error"]
