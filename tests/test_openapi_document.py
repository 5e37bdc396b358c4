"""The OpenAPI document at /api/v1/openapi.json: a valid OpenAPI 3.1 document that names each
schema once and documents every error an operation answers in the API's error shape."""

from __future__ import annotations

import json
from collections import defaultdict
from typing import Any

import pytest
from django.conf import settings
from django.test import Client
from ninja import Schema
from openapi_spec_validator import validate
from openapi_spec_validator.versions import consts as versions
from openapi_spec_validator.versions.shortcuts import get_spec_version

ERROR_REF = "#/components/schemas/ErrorOut"


@pytest.fixture(scope="module")
def document() -> dict[str, Any]:
    response = Client().get("/api/v1/openapi.json")
    assert response.status_code == 200
    return response.json()


def operations(document: dict[str, Any]) -> list[tuple[str, str, dict[str, Any]]]:
    return [
        (method.upper(), path, operation)
        for path, methods in document["paths"].items()
        for method, operation in methods.items()
        if method in ("get", "put", "post", "patch", "delete")
    ]


def _no_duplicate_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    keys = [key for key, _value in pairs]
    assert len(keys) == len(set(keys)), f"duplicate keys: {sorted(keys)}"
    return dict(pairs)


def test_no_object_in_the_document_repeats_a_key() -> None:
    """Responses keyed by int and by str status would both be written, and a client reading the
    JSON keeps only the last."""
    json.loads(Client().get("/api/v1/openapi.json").content, object_pairs_hook=_no_duplicate_keys)


def test_the_document_is_valid_openapi_3_1(document: dict[str, Any]) -> None:
    validate(document)  # raises with the first violation
    assert get_spec_version(document) == versions.OPENAPIV31


def _schema_classes(cls: type) -> list[type]:
    found = []
    for sub in cls.__subclasses__():
        if sub.__module__.startswith(("civicore.", "config.")):
            found.append(sub)
        found += _schema_classes(sub)
    return found


def test_no_two_schemas_share_a_name(document: dict[str, Any]) -> None:
    """Components are named after the class: two classes of one name would leave one operation
    documented with the other's schema (a catalogue document once showed up as an uploaded one)."""
    import config.api  # noqa: F401 - every router and its schemas

    by_name: dict[str, set[str]] = defaultdict(set)
    for cls in _schema_classes(Schema):
        by_name[cls.__name__].add(f"{cls.__module__}.{cls.__qualname__}")
    components = set(document["components"]["schemas"])
    clashes = {name: sorted(at) for name, at in by_name.items() if len(at) > 1 and name in components}
    assert not clashes, f"rename one of each: {clashes}"


def test_every_error_is_documented_in_the_error_shape(document: dict[str, Any]) -> None:
    wrong = []
    for method, path, operation in operations(document):
        for status, response in operation["responses"].items():
            if not status.startswith("4"):
                continue
            schema = response.get("content", {}).get("application/json", {}).get("schema")
            if schema != {"$ref": ERROR_REF}:
                wrong.append(f"{method} {path} {status}: {schema}")
    assert not wrong, "\n".join(wrong)


def test_authenticated_operations_document_401_and_input_422(document: dict[str, Any]) -> None:
    missing = []
    for method, path, operation in operations(document):
        responses = operation["responses"]
        if operation.get("security") and "401" not in responses:
            missing.append(f"{method} {path}: 401")
        if (operation.get("parameters") or operation.get("requestBody")) and not (
            {"401", "415", "422"} & set(responses)
        ):
            missing.append(f"{method} {path}: 422")
        if not any(status.startswith("2") for status in responses):
            missing.append(f"{method} {path}: a success response")
    assert not missing, "\n".join(missing)


def test_the_session_scheme_names_the_real_cookie(document: dict[str, Any]) -> None:
    scheme = document["components"]["securitySchemes"]["SessionAuth"]
    assert (scheme["in"], scheme["name"]) == ("cookie", settings.SESSION_COOKIE_NAME)
