"""datastore_search's parameters against a real table: filters, q, sort, fields, paging, and
every kind of bad or hostile parameter refused with the parameter named."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from civicore.opendata import datastore
from civicore.opendata.datastore import DatastoreError, Query
from civicore.opendata.tests.factories import FIELDS, make_resource, row

pytestmark = pytest.mark.django_db


def search(resource: Any, **params: Any) -> dict[str, Any]:
    return datastore.search(Query(resource=resource, **params))


def refused(resource: Any, **params: Any) -> dict[str, list[str]]:
    with pytest.raises(DatastoreError) as exc:
        search(resource, **params)
    return exc.value.errors


def test_rows_come_back_typed_in_order_with_the_total() -> None:
    resource = make_resource(rows=250)
    result = search(resource)
    assert result["total"] == 250 and result["limit"] == 100 and len(result["records"]) == 100
    first = result["records"][0]
    district, category, count, share, day, is_open = row(1)
    assert first == {
        "_id": 1,
        "district": district,
        "category": category,
        "count": count,
        "share": share,
        "day": day.isoformat(),
        "open": is_open,
    }
    assert [f["id"] for f in result["fields"]] == [
        "_id",
        "district",
        "category",
        "count",
        "share",
        "day",
        "open",
    ]
    assert result["fields"][1]["info"]["label"] == "District"


def test_paging_covers_every_row_once() -> None:
    resource = make_resource(rows=250)
    seen = []
    for offset in range(0, 300, 64):
        seen += [r["_id"] for r in search(resource, limit=64, offset=offset)["records"]]
    assert seen == list(range(1, 251))


def test_filters_q_sort_and_fields() -> None:
    resource = make_resource(rows=250)
    result = search(
        resource, filters={"district": "Đống Đa", "open": "true"}, fields="_id,count", sort="count desc"
    )
    expected = sorted((n for n in range(1, 251) if n % 4 == 2 and n % 2 == 0), reverse=True)
    assert [r["count"] for r in result["records"]] == expected[:100]
    assert result["total"] == len(expected)
    assert set(result["records"][0]) == {"_id", "count"}
    several = search(resource, filters={"category": ["pothole", "flooding"]}, include_total=True)
    assert several["total"] == sum(1 for n in range(1, 251) if n % 3 != 0)
    assert search(resource, filters={"count": 17})["records"][0]["_id"] == 17
    assert search(resource, filters={"day": "2026-01-11"})["total"] == 1
    # q: every word, in any text column, case-insensitively where the database can
    words = search(resource, q="Cầu pothole")
    assert words["total"] == sum(1 for n in range(1, 251) if n % 4 == 3 and n % 3 == 1)
    by_field = search(resource, q={"category": "flood"})
    assert by_field["total"] == sum(1 for n in range(1, 251) if n % 3 == 2)
    assert search(resource, q="100%")["total"] == 0  # a wildcard in q is a literal
    assert "total" not in search(resource, include_total=False)


@pytest.mark.parametrize(
    ("params", "parameter"),
    [
        ({"filters": {"nope": 1}}, "filters"),
        ({"filters": {"count": "1 OR 1=1"}}, "filters"),
        ({"filters": {"count": "abc"}}, "filters"),
        ({"filters": {"day": "yesterday"}}, "filters"),
        ({"filters": {"open": "maybe"}}, "filters"),
        ({"filters": {"district": {"$ne": ""}}}, "filters"),
        ({"filters": {"district": list(range(101))}}, "filters"),
        ({"filters": "not json"}, "filters"),
        ({"filters": ["district"]}, "filters"),
        ({"fields": "_id,secret"}, "fields"),
        ({"fields": 'count"; DROP TABLE x; --'}, "fields"),
        ({"sort": "count; DROP TABLE opendata_dataset"}, "sort"),
        ({"sort": "nope desc"}, "sort"),
        ({"sort": "count sideways"}, "sort"),
        ({"sort": 5}, "sort"),
        ({"limit": 10**9}, "limit"),
        ({"limit": -1}, "limit"),
        ({"limit": "ten"}, "limit"),
        ({"limit": True}, "limit"),
        ({"offset": -5}, "offset"),
        ({"q": "x" * 500}, "q"),
        ({"q": {"count": "1"}}, "q"),
        ({"q": ["a"]}, "q"),
    ],
)
def test_bad_and_hostile_parameters_are_refused_by_name(params: dict[str, Any], parameter: str) -> None:
    resource = make_resource(rows=10)
    assert parameter in refused(resource, **params)
    assert search(resource)["total"] == 10  # and the table is as it was


def test_every_problem_is_reported_at_once() -> None:
    resource = make_resource(rows=10)
    errors = refused(resource, limit=-1, sort="nope", fields="nope", filters={"nope": 1})
    assert set(errors) == {"limit", "sort", "fields", "filters"}


def test_sql_in_values_is_only_ever_a_value() -> None:
    resource = make_resource(rows=10)
    hostile = "x' OR '1'='1"
    assert search(resource, filters={"district": hostile})["total"] == 0
    assert search(resource, q=hostile)["total"] == 0
    assert search(resource, q={"district": "'; DROP TABLE opendata_resource; --"})["total"] == 0
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT COUNT(*) FROM {connection.ops.quote_name(resource.table)}")  # noqa: S608
        assert cursor.fetchone()[0] == 10


def test_replacing_rows_leaves_only_the_new_ones_and_rows_streams_them_all() -> None:
    resource = make_resource(rows=30)
    count = datastore.replace_rows(resource, FIELDS, [row(99)])
    assert count == 1
    resource.row_count = 1
    assert [r["count"] for r in search(resource)["records"]] == [99]
    big = make_resource(rows=12_345, name="big")
    streamed = list(datastore.rows(big, batch=1000))
    assert len(streamed) == 12_345 and streamed[-1][2] == 12_345


def test_a_filtered_total_is_counted_once_per_version_of_the_rows() -> None:
    resource = make_resource(rows=120)
    filters = {"district": "Ba Đình"}
    assert search(resource, filters=filters)["total"] == 30
    # The same search again: the rows only, the total comes from the cache.
    with CaptureQueriesContext(connection) as captured:
        assert search(resource, filters=filters)["total"] == 30
    assert [q for q in captured.captured_queries if "SELECT COUNT(*) FROM" in q["sql"]] == []
    # New rows (a regeneration moves modified_at): counted afresh.
    resource.row_count = datastore.replace_rows(resource, FIELDS, (row(n) for n in range(1, 41)))
    resource.modified_at = resource.modified_at + dt.timedelta(seconds=1)
    resource.save()
    assert search(resource, filters=filters)["total"] == 10


def test_new_rows_come_with_planner_statistics() -> None:
    resource = make_resource(rows=300)
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            cursor.execute("SELECT count(*) FROM pg_stats WHERE tablename = %s", [resource.table])
        else:
            cursor.execute("SELECT count(*) FROM sqlite_stat1 WHERE tbl = %s", [resource.table])
        assert cursor.fetchone()[0] > 0
