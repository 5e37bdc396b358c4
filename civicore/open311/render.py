"""Rendering Open311 answers as JSON or XML, the two formats GeoReport v2 names by extension.

The XML is built with ElementTree, so every value is escaped; characters XML 1.0 cannot carry
(control characters a client may have sent in a description) are dropped first, so the document
is always well-formed. Element names are the specification's: <services><service>,
<service_definition>, <service_requests><request>, <errors><error><code/><description/></error>.
"""

from __future__ import annotations

import json
import re
import xml.etree.ElementTree as ET  # noqa: S405 - building documents, never parsing untrusted ones
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

from django.http import HttpResponse

FORMATS = {"json": "application/json; charset=utf-8", "xml": "text/xml; charset=utf-8"}

# Elements whose children are a list, and the name of each child (GeoReport v2).
LIST_ITEMS = {
    "services": "service",
    "service_requests": "request",
    "errors": "error",
    "attributes": "attribute",
    "values": "value",
}

_NOT_XML = re.compile("[^\u0009\u000a\u000d\u0020-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")


def w3c_datetime(value: datetime | None) -> str | None:
    """A timezone-aware datetime as the W3C profile of ISO 8601, in UTC, to the second."""
    if value is None:
        return None
    return value.astimezone(UTC).replace(microsecond=0).isoformat().replace("+00:00", "Z")


def xml_text(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    return _NOT_XML.sub("", str(value))


def _append(parent: ET.Element, name: str, value: Any) -> None:
    element = ET.SubElement(parent, name)
    if isinstance(value, Mapping):
        for key, item in value.items():
            _append(element, key, item)
    elif isinstance(value, list | tuple):
        child = LIST_ITEMS.get(name, "item")
        for item in value:
            _append(element, child, item)
    else:
        element.text = xml_text(value)


def to_xml(root: str, data: Sequence[Any] | Mapping[str, Any]) -> bytes:
    """`data` under the element `root`: a list of items (each named after LIST_ITEMS[root]) or
    the fields of one object."""
    element = ET.Element(root)
    if isinstance(data, Mapping):
        for key, value in data.items():
            _append(element, key, value)
    else:
        for item in data:
            _append(element, LIST_ITEMS[root], item)
    return ET.tostring(element, encoding="utf-8", xml_declaration=True)


def to_json(data: Any) -> bytes:
    return json.dumps(data, ensure_ascii=False, separators=(",", ":")).encode("utf-8")


def render(
    fmt: str, root: str, data: Sequence[Any] | Mapping[str, Any], *, status: int = 200
) -> HttpResponse:
    body = to_xml(root, data) if fmt == "xml" else to_json(data)
    response = HttpResponse(body, status=status, content_type=FORMATS.get(fmt, FORMATS["json"]))
    response["Cache-Control"] = "no-store"
    return response


def errors(
    fmt: str, status: int, *descriptions: str, headers: Mapping[str, str] | None = None
) -> HttpResponse:
    """The specification's error list: one {code, description} per problem, code = HTTP status."""
    body = [{"code": status, "description": str(description)} for description in descriptions]
    response = render(fmt if fmt in FORMATS else "json", "errors", body, status=status)
    for name, value in (headers or {}).items():
        response[name] = value
    return response
