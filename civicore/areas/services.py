"""Loading district boundaries and finding the district of a place.

The operator loads the city's districts from a GeoJSON FeatureCollection (their own GIS's export);
each feature is one district, a Polygon or MultiPolygon in WGS 84 longitude/latitude, with its code
and name in its properties. A load replaces every district at once and is refused whole, with the
feature and the reason named, when any feature is wrong. Places are matched with Shapely (GEOS): a
point on a shared border belongs to the district with the smaller code, so the answer is stable.
"""

from __future__ import annotations

import json
import re
import unicodedata
from dataclasses import dataclass
from typing import Any

import numpy as np
import shapely
from django.db import transaction
from django.db.models import Count, Max
from django.utils import timezone
from django.utils.translation import gettext as _
from shapely.geometry import shape
from shapely.validation import explain_validity

from civicore.areas.models import Area
from civicore.audit import services as audit
from civicore.core.errors import ValidationFailed

MAX_BYTES = 64 * 1024 * 1024
MAX_AREAS = 5000
MAX_COORDINATES = 5_000_000
CODE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,39}$")
NAME_MAX = 200


class InvalidBoundaries(ValidationFailed):
    """The boundaries file cannot be loaded."""

    code = "invalid_boundaries"


def _refuse(message: str, *, feature: int | None = None) -> InvalidBoundaries:
    where = {"feature": feature} if feature is not None else {}
    if feature is not None:
        message = _("Feature %(n)d: %(problem)s") % {"n": feature, "problem": message}
    return InvalidBoundaries(message, details=where or None)


def _name(value: Any) -> str:
    text = unicodedata.normalize("NFC", str(value or ""))
    return " ".join("".join(c for c in text if unicodedata.category(c)[0] != "C").split())


@dataclass(frozen=True)
class Boundary:
    code: str
    name: str
    geometry: dict[str, Any]
    shape: Any


def parse(data: bytes | str, *, code_property: str = "code", name_property: str = "name") -> list[Boundary]:
    """The districts in a GeoJSON FeatureCollection, each checked; InvalidBoundaries names the
    first feature that is wrong and why."""
    if len(data) > MAX_BYTES:
        raise _refuse(_("The file is larger than %(mb)d MB.") % {"mb": MAX_BYTES // (1024 * 1024)})
    try:
        document = json.loads(data)
    except (ValueError, UnicodeDecodeError):
        raise _refuse(_("The file is not JSON.")) from None
    features = document.get("features") if isinstance(document, dict) else None
    if (
        not isinstance(document, dict)
        or document.get("type") != "FeatureCollection"
        or not isinstance(features, list)
    ):
        raise _refuse(_("The file is not a GeoJSON FeatureCollection."))
    if not features:
        raise _refuse(_("The file has no features."))
    if len(features) > MAX_AREAS:
        raise _refuse(_("The file has more than %(max)d features.") % {"max": MAX_AREAS})
    found: list[Boundary] = []
    seen: set[str] = set()
    coordinates = 0
    for n, feature in enumerate(features, start=1):
        properties = feature.get("properties") if isinstance(feature, dict) else None
        geometry = feature.get("geometry") if isinstance(feature, dict) else None
        if not isinstance(properties, dict) or not isinstance(geometry, dict):
            raise _refuse(_("a feature needs properties and a geometry."), feature=n)
        code = str(properties.get(code_property) or "").strip()
        if not CODE.match(code):
            raise _refuse(
                _("the property %(p)s must be a code of 1 to 40 letters, digits, dots, dashes, underscores.")
                % {"p": code_property},
                feature=n,
            )
        if code.casefold() in seen:
            raise _refuse(_("the code %(code)s is used twice.") % {"code": code}, feature=n)
        name = _name(properties.get(name_property))
        if not name or len(name) > NAME_MAX:
            raise _refuse(
                _("the property %(p)s must be a name of 1 to %(max)d characters.")
                % {"p": name_property, "max": NAME_MAX},
                feature=n,
            )
        if geometry.get("type") not in ("Polygon", "MultiPolygon"):
            raise _refuse(_("the geometry must be a Polygon or a MultiPolygon."), feature=n)
        try:
            area = shape(geometry)
        except Exception:  # Shapely raises several kinds for malformed coordinates
            raise _refuse(_("the coordinates do not form polygons."), feature=n) from None
        coordinates += int(shapely.get_num_coordinates(area))
        if coordinates > MAX_COORDINATES:
            raise _refuse(_("the file has more than %(max)d points.") % {"max": MAX_COORDINATES}, feature=n)
        if area.is_empty or not area.is_valid or area.area <= 0:
            reason = explain_validity(area) if not area.is_empty else _("empty")
            raise _refuse(_("the boundary is not a valid polygon (%(why)s).") % {"why": reason}, feature=n)
        west, south, east, north = area.bounds
        if not (-180 <= west <= east <= 180 and -90 <= south <= north <= 90):
            raise _refuse(_("the coordinates must be longitude and latitude in degrees (WGS 84)."), feature=n)
        seen.add(code.casefold())
        found.append(Boundary(code=code, name=name, geometry=shapely.geometry.mapping(area), shape=area))
    return found


@transaction.atomic
def load(boundaries: list[Boundary], *, actor: Any = None) -> int:
    """Replace every district with these, in one transaction, audited."""
    now = timezone.now()
    Area.objects.all().delete()
    Area.objects.bulk_create(
        Area(
            code=b.code,
            name=b.name,
            geometry=json.loads(json.dumps(b.geometry)),  # tuples to lists, as stored JSON reads back
            min_longitude=b.shape.bounds[0],
            min_latitude=b.shape.bounds[1],
            max_longitude=b.shape.bounds[2],
            max_latitude=b.shape.bounds[3],
            loaded_at=now,
        )
        for b in boundaries
    )
    audit.record(
        actor=actor, action="areas.load", subject_type="areas.area", details={"districts": len(boundaries)}
    )
    return len(boundaries)


# --- finding the district of a place -------------------------------------------------------------


@dataclass(frozen=True)
class Index:
    version: tuple[int, Any]
    codes: list[str]
    tree: Any  # shapely.STRtree over the districts, in code order

    def code_at(self, latitude: float, longitude: float) -> str:
        """The code of the district that holds the place (its border included), or "" when none."""
        if not self.codes:
            return ""
        hits = self.tree.query(shapely.Point(float(longitude), float(latitude)), predicate="intersects")
        return self.codes[int(min(hits))] if len(hits) else ""

    def codes_at(self, latitudes: Any, longitudes: Any) -> list[str]:
        """code_at for many places at once (one vectorised query)."""
        count = len(latitudes)
        if not self.codes or not count:
            return [""] * count
        points = shapely.points(np.asarray(longitudes, dtype=float), np.asarray(latitudes, dtype=float))
        place, district = self.tree.query(points, predicate="intersects")
        best = np.full(count, len(self.codes), dtype=np.int64)
        np.minimum.at(best, place, district)
        return [self.codes[i] if i < len(self.codes) else "" for i in best.tolist()]


_cached: Index | None = None


def index() -> Index:
    """The districts as loaded now; rebuilt in this process when a load changed them."""
    global _cached
    figures = Area.objects.aggregate(n=Count("id"), at=Max("loaded_at"))
    version = (int(figures["n"] or 0), figures["at"])
    if _cached is not None and _cached.version == version:
        return _cached
    rows = list(Area.objects.order_by("code").values_list("code", "geometry"))
    shapes = [shape(geometry) for _code, geometry in rows]
    for item in shapes:
        shapely.prepare(item)
    _cached = Index(version=version, codes=[code for code, _geometry in rows], tree=shapely.STRtree(shapes))
    return _cached


def district_at(latitude: float, longitude: float) -> str:
    return index().code_at(latitude, longitude)


def names() -> dict[str, str]:
    return dict(Area.objects.values_list("code", "name"))
