"""Service definitions: the declarative YAML format an e-service is written in.

A definition is checked in two passes: its shape against definition_schema.json, then the
cross-references a schema cannot express (prefill targets, workflow states, select options,
result placeholders). Checks that need the database (agency, procedure) live in services.py.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Iterable, Iterator
from functools import cache
from pathlib import Path
from typing import Any

import yaml
from jsonschema import Draft202012Validator
from jsonschema.exceptions import SchemaError

SCHEMA_PATH = Path(__file__).resolve().parent / "definition_schema.json"
CHOICE_WIDGETS = {"select", "radio"}
PLACEHOLDER = re.compile(r"\{([^{}]*)\}")
PLAIN_PLACEHOLDERS = {"reference", "decided_at", "applicant.full_name"}
ROLES = ("caseworker", "supervisor", "applicant")


@cache
def definition_schema() -> dict[str, Any]:
    return json.loads(SCHEMA_PATH.read_text(encoding="utf-8"))


def load_file(path: Path | str) -> dict[str, Any]:
    """Read a YAML (or JSON) definition; the caller validates it."""
    data = yaml.safe_load(Path(path).read_text(encoding="utf-8"))
    if not isinstance(data, dict):
        raise ValueError("the file does not contain a mapping")
    return data


def checksum(definition: dict[str, Any]) -> str:
    """Same content, same checksum, whatever the key order or YAML formatting."""
    canonical = json.dumps(definition, sort_keys=True, ensure_ascii=False, separators=(",", ":"))
    return hashlib.sha256(canonical.encode("utf-8")).hexdigest()


def _path(parts: Iterable[Any]) -> str:
    out = ""
    for part in parts:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out or "(definition)"


def validate_definition(data: Any) -> list[str]:
    """Every problem with the definition, each prefixed by where it is; empty when valid."""
    if not isinstance(data, dict):
        return ["(definition): must be a mapping of keys to values"]
    validator = Draft202012Validator(definition_schema())
    errors = [
        f"{_path(error.absolute_path)}: {error.message}"
        for error in sorted(validator.iter_errors(data), key=lambda e: [str(p) for p in e.absolute_path])
    ]
    if errors:
        # Cross-reference checks assume the shape is right; they would only add noise.
        return errors
    return list(_semantic_errors(data))


def _semantic_errors(data: dict[str, Any]) -> Iterator[str]:
    schema = data["form"]["schema"]
    properties: dict[str, Any] = schema["properties"]
    try:
        Draft202012Validator.check_schema(schema)
    except SchemaError as exc:
        yield f"{_path(['form', 'schema', *exc.absolute_path])}: {exc.message}"
    yield from _external_refs(schema, ["form", "schema"])

    for index, name in enumerate(schema.get("required", [])):
        if name not in properties:
            yield f"form.schema.required[{index}]: '{name}' is required but not defined in properties"

    seen: set[str] = set()
    for index, field in enumerate(data["form"]["fields"]):
        where = f"form.fields[{index}]"
        name = field["name"]
        if name in seen:
            yield f"{where}.name: field '{name}' is listed twice"
        seen.add(name)
        prop = properties.get(name)
        if prop is None:
            yield f"{where}.name: '{name}' is not a property of form.schema"
            continue
        yield from _widget_errors(where, field, prop)
    for name in properties:
        if name not in seen:
            yield f"form.fields: property '{name}' has no field entry"

    for target in data.get("prefill", {}):
        if target not in properties:
            yield f"prefill.{target}: '{target}' is not a form field"

    codes: set[str] = set()
    for index, document in enumerate(data["documents"]):
        if document["code"] in codes:
            yield f"documents[{index}].code: '{document['code']}' is used twice"
        codes.add(document["code"])

    yield from _workflow_errors(data["workflow"])
    yield from _fee_errors(data, properties)

    for index, item in enumerate(data["result"]["fields"]):
        for placeholder in PLACEHOLDER.findall(item["value"]):
            if placeholder in PLAIN_PLACEHOLDERS:
                continue
            answer = placeholder.removeprefix("answers.")
            if placeholder.startswith("answers.") and answer in properties:
                continue
            yield f"result.fields[{index}].value: unknown placeholder '{{{placeholder}}}'"


def _fee_errors(data: dict[str, Any], properties: dict[str, Any]) -> Iterator[str]:
    fee = data["fee"]
    prefilled = set(data.get("prefill", {}))
    codes: set[str] = set()
    parts = [("items", item) for item in fee.get("items", [])]
    parts += [("exemptions", item) for item in fee.get("exemptions", [])]
    counters = {"items": 0, "exemptions": 0}
    for kind, item in parts:
        where = f"fee.{kind}[{counters[kind]}]"
        counters[kind] += 1
        if item["code"] in codes:
            yield f"{where}.code: '{item['code']}' is used twice"
        codes.add(item["code"])
        quantity = item.get("quantity_field")
        if quantity is not None:
            if quantity not in properties:
                yield f"{where}.quantity_field: '{quantity}' is not a form field"
            elif properties[quantity].get("type") != "integer":
                yield f"{where}.quantity_field: '{quantity}' must be an integer field"
        condition = item.get("when")
        if condition is None:
            continue
        field = condition["field"]
        if field not in properties:
            yield f"{where}.when.field: '{field}' is not a form field"
            continue
        if ("age_below" in condition or "age_at_least" in condition) and properties[field].get(
            "format"
        ) != "date":
            yield f"{where}.when: an age needs a date field, and '{field}' is not one"
        if kind == "exemptions" and item.get("verified", True) and field not in prefilled:
            yield (
                f"{where}.verified: '{field}' is never pre-filled from verified data, so the "
                "exemption could never apply (list it under prefill, or set verified: false)"
            )


def _widget_errors(where: str, field: dict[str, Any], prop: dict[str, Any]) -> Iterator[str]:
    widget = field["widget"]
    options = field.get("options")
    if widget in CHOICE_WIDGETS:
        enum = prop.get("enum")
        if not options:
            yield f"{where}.options: a {widget} field needs options"
        elif enum is None:
            yield f"{where}.options: form.schema property '{field['name']}' has no enum to match"
        else:
            values = [option["value"] for option in options]
            if len(set(map(str, values))) != len(values):
                yield f"{where}.options: option values must be unique"
            missing = [v for v in enum if v not in values]
            extra = [v for v in values if v not in enum]
            if missing or extra:
                yield (
                    f"{where}.options: options {values} do not match the schema enum {enum}"
                    + (f" (missing {missing})" if missing else "")
                    + (f" (not in enum {extra})" if extra else "")
                )
    elif options:
        yield f"{where}.options: only select and radio fields take options"
    if widget == "date" and prop.get("format") != "date":
        yield f"{where}.widget: a date field needs 'format: date' in its schema property"
    if widget == "number" and prop.get("type") not in ("integer", "number"):
        yield f"{where}.widget: a number field needs an integer or number schema property"


def _workflow_errors(workflow: dict[str, Any]) -> Iterator[str]:
    states = workflow["states"]
    names: set[str] = set()
    reached = {states[0]}
    for index, transition in enumerate(workflow["transitions"]):
        where = f"workflow.transitions[{index}]"
        if transition["name"] in names:
            yield f"{where}.name: transition '{transition['name']}' is declared twice"
        names.add(transition["name"])
        for position, source in enumerate(transition["from"]):
            if source not in states:
                yield f"{where}.from[{position}]: '{source}' is not a declared state"
        if transition["to"] not in states:
            yield f"{where}.to: '{transition['to']}' is not a declared state"
        reached.add(transition["to"])
    for state in states:
        if state not in reached:
            yield f"workflow.states: no transition leads to '{state}'"


def _external_refs(node: Any, where: list[Any]) -> Iterator[str]:
    """A form schema may only refer to itself: a remote $ref would make validation fetch URLs."""
    if isinstance(node, dict):
        for key, value in node.items():
            if key == "$ref" and (not isinstance(value, str) or not value.startswith("#")):
                yield f"{_path([*where, key])}: only local references (starting with '#') are allowed"
            else:
                yield from _external_refs(value, [*where, key])
    elif isinstance(node, list):
        for index, value in enumerate(node):
            yield from _external_refs(value, [*where, index])
