"""Districts: loading boundaries from GeoJSON (and refusing bad files whole), finding the district of
a place, reports filed under their district, and the reports dataset by district with no cell
that can be worked out from the totals."""

from __future__ import annotations

import json
from io import StringIO
from pathlib import Path
from typing import Any

import pytest
from django.core.management import CommandError, call_command

from civicore.areas import services
from civicore.areas.models import Area
from civicore.audit.models import AuditEntry
from civicore.opendata import datastore
from civicore.opendata import services as opendata
from civicore.opendata.datastore import Query
from civicore.opendata.models import Dataset
from civicore.reports.models import Report
from civicore.reports.services import districts_reassign
from civicore.reports.tests.factories import file_report

pytestmark = pytest.mark.django_db

SOUTH, NORTH = 21.00, 21.05


def square(west: float, east: float, south: float = SOUTH, north: float = NORTH) -> list[list[float]]:
    return [[west, south], [east, south], [east, north], [west, north], [west, south]]


def feature(code: Any, name: Any, geometry: Any) -> dict[str, Any]:
    return {"type": "Feature", "properties": {"code": code, "name": name}, "geometry": geometry}


def collection(*features: Any) -> str:
    return json.dumps({"type": "FeatureCollection", "features": list(features)})


# Two districts side by side along longitude 105.85; the eastern one has a lake (a hole) and an
# island apart from it (a MultiPolygon).
WEST = feature("D01", "Quận Một", {"type": "Polygon", "coordinates": [square(105.80, 105.85)]})
EAST = feature(
    "D02",
    "Quận  Hai\u200b",
    {
        "type": "MultiPolygon",
        "coordinates": [
            [square(105.85, 105.90), square(105.87, 105.88, 21.02, 21.03)],
            [square(105.95, 105.96)],
        ],
    },
)


def load(*features: Any) -> int:
    return services.load(services.parse(collection(*features)))


def test_a_place_is_found_in_its_district() -> None:
    assert load(WEST, EAST) == 2
    assert services.district_at(21.01, 105.82) == "D01"
    assert services.district_at(21.01, 105.86) == "D02"
    assert services.district_at(21.01, 105.955) == "D02"  # the island
    assert services.district_at(21.025, 105.875) == ""  # the lake
    assert services.district_at(21.10, 105.82) == ""  # outside the city
    assert services.district_at(21.01, 105.85) == "D01"  # on the shared border: the smaller code
    assert services.names() == {"D01": "Quận Một", "D02": "Quận Hai"}  # control characters gone
    index = services.index()
    places = [(21.01, 105.82), (21.01, 105.86), (21.025, 105.875), (21.01, 105.85), (0.0, 0.0)]
    assert index.codes_at([p[0] for p in places], [p[1] for p in places]) == [
        index.code_at(*p) for p in places
    ]
    assert AuditEntry.objects.filter(action="areas.load").count() == 1


def test_a_new_load_replaces_every_district_and_the_lookup_follows() -> None:
    load(WEST, EAST)
    assert services.district_at(21.01, 105.82) == "D01"
    load(feature("X9", "Quận Mới", {"type": "Polygon", "coordinates": [square(105.80, 105.90)]}))
    assert services.district_at(21.01, 105.82) == "X9"
    assert list(Area.objects.values_list("code", flat=True)) == ["X9"]


BOWTIE = {
    "type": "Polygon",
    "coordinates": [[[105.8, 21.0], [105.9, 21.1], [105.9, 21.0], [105.8, 21.1], [105.8, 21.0]]],
}


@pytest.mark.parametrize(
    ("document", "fragment"),
    [
        ("{not json", "not JSON"),
        (b"\xff\xfe\x00", "not JSON"),
        ('{"type": "Feature"}', "not a GeoJSON FeatureCollection"),
        ("[1, 2]", "not a GeoJSON FeatureCollection"),
        ('{"type": "FeatureCollection", "features": []}', "no features"),
        (collection({"type": "Feature"}), "Feature 1: a feature needs properties and a geometry"),
        (collection(WEST, feature("", "X", WEST["geometry"])), "Feature 2: the property code"),
        (collection(feature("'; DROP TABLE areas_area; --", "X", WEST["geometry"])), "the property code"),
        (
            collection(WEST, feature("d01", "Again", EAST["geometry"])),
            "Feature 2: the code d01 is used twice",
        ),
        (collection(feature("D03", "", WEST["geometry"])), "the property name must be a name"),
        (collection(feature("D03", "x" * 201, WEST["geometry"])), "the property name must be a name"),
        (collection(feature("D03", "P", {"type": "Point", "coordinates": [105.8, 21.0]})), "Polygon or a"),
        (collection(feature("D03", "P", {"type": "Polygon", "coordinates": [["a", "b"]]})), "do not form"),
        (collection(feature("D03", "P", {"type": "Polygon", "coordinates": "x"})), "do not form"),
        (collection(feature("D03", "P", BOWTIE)), "not a valid polygon (Self-intersection"),
        (
            collection(feature("D03", "P", {"type": "Polygon", "coordinates": [square(2105.8, 2105.9)]})),
            "longitude and latitude in degrees",
        ),
    ],
)
def test_a_bad_file_is_refused_whole_with_the_feature_and_the_reason(document: Any, fragment: str) -> None:
    load(WEST)
    with pytest.raises(services.InvalidBoundaries) as refused:
        services.parse(document)
    assert fragment in refused.value.message and refused.value.code == "invalid_boundaries"
    assert refused.value.status == 422
    assert list(Area.objects.values_list("code", flat=True)) == ["D01"]  # what was loaded stays


def test_too_many_features_or_points_are_refused(monkeypatch: Any) -> None:
    monkeypatch.setattr(services, "MAX_AREAS", 1)
    with pytest.raises(services.InvalidBoundaries, match="more than 1 features"):
        services.parse(collection(WEST, EAST))
    monkeypatch.setattr(services, "MAX_AREAS", 10)
    monkeypatch.setattr(services, "MAX_COORDINATES", 12)
    with pytest.raises(services.InvalidBoundaries, match="Feature 2: the file has more than 12 points"):
        services.parse(collection(WEST, EAST))


def test_reports_are_filed_under_their_district_and_moved_when_boundaries_change() -> None:
    before = file_report(latitude=21.01, longitude=105.82)
    assert before.district == ""  # no districts loaded yet
    load(WEST, EAST)
    west = file_report(latitude=21.01, longitude=105.82)
    east = file_report(latitude=21.01, longitude=105.86)
    assert (west.district, east.district) == ("D01", "D02")
    assert districts_reassign(batch=2) == 1  # only the report filed before the load moves
    before.refresh_from_db()
    assert before.district == "D01"
    load(feature("X9", "Quận Mới", {"type": "Polygon", "coordinates": [square(105.85, 105.90)]}))
    assert districts_reassign() == 3
    assert dict(Report.objects.values_list("pk", "district")) == {before.pk: "", west.pk: "", east.pk: "X9"}


def test_the_command_loads_a_file_reassigns_reports_and_refuses_a_bad_one(tmp_path: Path) -> None:
    report = file_report(latitude=21.01, longitude=105.86)
    good = tmp_path / "districts.geojson"
    renamed = [
        {**f, "properties": {"ma": f["properties"]["code"], "ten": f["properties"]["name"]}}
        for f in (WEST, EAST)
    ]
    good.write_text(json.dumps({"type": "FeatureCollection", "features": renamed}), encoding="utf-8")
    out = StringIO()
    call_command("areas", "load", str(good), "--code-property", "ma", "--name-property", "ten", stdout=out)
    assert "2 districts loaded" in out.getvalue() and "1 reports moved" in out.getvalue()
    report.refresh_from_db()
    assert report.district == "D02"
    listing = StringIO()
    call_command("areas", "list", stdout=listing)
    assert listing.getvalue().splitlines() == ["D01\tQuận Một", "D02\tQuận Hai"]
    bad = tmp_path / "bad.geojson"
    bad.write_text(collection(feature("D03", "P", BOWTIE)), encoding="utf-8")
    with pytest.raises(CommandError, match="Feature 1: .*Nothing was changed"):
        call_command("areas", "load", str(bad))
    with pytest.raises(CommandError, match="missing.geojson"):
        call_command("areas", "load", str(tmp_path / "missing.geojson"))
    assert Area.objects.count() == 2


def _district_records() -> list[dict[str, Any]]:
    resource = Dataset.objects.get(name="reports-monthly").resources.get(key="districts")
    return datastore.search(Query(resource=resource, limit=1000))["records"]


def test_the_reports_dataset_counts_by_district_and_hides_what_the_totals_would_give_away(
    settings: Any,
) -> None:
    settings.REPORT_RATE_PER_HOUR = 100
    load(WEST, EAST)
    for _ in range(7):
        file_report(latitude=21.01, longitude=105.82)  # D01: 7
    for _ in range(6):
        file_report(latitude=21.01, longitude=105.86)  # D02: 6
    for _ in range(2):
        file_report(latitude=21.20, longitude=105.82)  # in no district: 2
    opendata.datasets_refresh(force=True)
    rows = {r["district_code"]: r for r in _district_records()}
    assert set(rows) == {"D01", "D02", None}
    assert rows[None]["received"] is None  # 2: too few to publish
    # With one cell hidden, the month's total (which the category table gives away) less the
    # others would reveal it: the smallest other cell is hidden too.
    assert rows["D02"]["received"] is None and rows["D01"]["received"] == 7
    assert rows["D01"]["district_name"] == "Quận Một" and rows[None]["district_name"] is None
    resource = Dataset.objects.get(name="reports-monthly").resources.get(key="districts")
    assert resource.suppressed_cells == 2
