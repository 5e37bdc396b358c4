"""The open data portal's pages, downloads and DCAT-AP metadata, and the pages in Chromium
checked with axe-core (WCAG 2.2 AA) in both languages."""

from __future__ import annotations

import csv
import io
import json
from typing import Any

import pyarrow.parquet as pq
import pytest
from django.test import Client

from civicore.core.tests.accessibility import axe_in_chromium
from civicore.opendata import services
from civicore.opendata.tests.factories import make_resource, row


@pytest.mark.django_db
def test_the_catalogue_page_lists_and_searches_datasets() -> None:
    make_resource(rows=5)
    services.datasets_refresh()
    english = Client(HTTP_ACCEPT_LANGUAGE="en")
    page = english.get("/data/").content.decode()
    assert "Sample data" in page and "Catalogue of online public services" in page
    assert "/api/3/action/package_list" in page
    found = english.get("/data/", {"q": "catalogue"}).content.decode()
    assert "Catalogue of online public services" in found and "Sample data" not in found
    assert "No dataset matches your search." in english.get("/data/", {"q": "zzz"}).content.decode()
    vietnamese = Client().get("/data/").content.decode()
    assert "Danh mục dịch vụ công trực tuyến" in vietnamese


@pytest.mark.django_db
def test_a_dataset_page_previews_its_rows_and_the_csv_holds_them_all() -> None:
    resource = make_resource(rows=2500)
    client = Client(HTTP_ACCEPT_LANGUAGE="en")
    page = client.get("/data/sample/").content.decode()
    assert "District" in page and "Ba Đình" in page and "2500 rows" in page
    assert str(resource.id) in page
    response = client.get(f"/data/sample/{resource.id}.csv")
    assert response.status_code == 200 and response["Content-Type"].startswith("text/csv")
    text = b"".join(response.streaming_content).decode("utf-8-sig")
    lines = list(csv.reader(io.StringIO(text)))
    assert lines[0] == ["district", "category", "count", "share", "day", "open"]
    assert len(lines) == 2501 and lines[1][:3] == [row(1)[0], row(1)[1], "1"]
    parquet = client.get(f"/data/sample/{resource.id}.parquet")
    assert parquet.status_code == 200 and parquet["Content-Type"] == "application/vnd.apache.parquet"
    table = pq.read_table(io.BytesIO(b"".join(parquet.streaming_content)))
    assert table.num_rows == 2500 and table.column_names == lines[0]
    first = table.slice(0, 1).to_pylist()[0]
    assert first == dict(zip(lines[0], row(1), strict=True))
    assert client.get(f"/data/sample/{resource.id}.exe").status_code == 404
    assert client.get("/data/sample/00000000-0000-0000-0000-000000000000.csv").status_code == 404
    assert client.get("/data/nothing-here/").status_code == 404


@pytest.mark.django_db
def test_dcat_ap_metadata_describes_every_dataset_and_distribution() -> None:
    resource = make_resource(rows=3)
    client = Client()
    catalog = json.loads(client.get("/data/catalog.jsonld").content)
    assert catalog["@type"] == "dcat:Catalog" and catalog["@context"]["dcat"] == "http://www.w3.org/ns/dcat#"
    (dataset,) = catalog["dcat:dataset"]
    assert dataset["@type"] == "dcat:Dataset" and dataset["dct:identifier"] == str(resource.dataset_id)
    assert {t["@language"] for t in dataset["dct:title"]} == {"vi", "en"}
    csv_file, parquet_file = dataset["dcat:distribution"]
    assert csv_file["dcat:downloadURL"]["@id"].endswith(f"/data/sample/{resource.id}.csv")
    assert parquet_file["dct:format"]["@id"].endswith("/file-type/PARQUET")
    one = client.get("/data/sample.jsonld")
    assert one["Content-Type"].startswith("application/ld+json")
    assert json.loads(one.content)["@id"] == dataset["@id"]


@pytest.mark.browser
@pytest.mark.django_db(transaction=True)
def test_the_open_data_pages_pass_axe(live_server: Any) -> None:
    make_resource(rows=30)
    services.datasets_refresh()
    base = live_server.url
    found = axe_in_chromium(
        base_url=base,
        pages={"catalogue": f"{base}/data/", "dataset": f"{base}/data/sample/"},
    )
    assert len(found) == 2 * 2
