"""Checking a citizen's answers against a service's form definition.

Messages come back per field, in the active language, so the portal can show each one next to
its input and the API can return them under `details`.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from django.utils.translation import gettext as _
from jsonschema import Draft202012Validator, FormatChecker

_format_checker = FormatChecker()

MAX_ANSWER_LENGTH = 5000


@_format_checker.checks("date", raises=ValueError)
def _is_date(value: object) -> bool:
    if not isinstance(value, str):
        return True
    dt.date.fromisoformat(value)
    return len(value) == 10


def _message(error: Any) -> str:
    validator = error.validator
    value = error.validator_value
    if validator == "required":
        return _("This field is required.")
    if validator == "format" and value == "date":
        return _("Enter a real date, for example 2024-03-31.")
    if validator == "format" and value == "email":
        return _("Enter an e-mail address like name@example.com.")
    if validator == "enum":
        return _("Choose one of the options.")
    if validator == "minLength":
        if value == 1:
            return _("This field is required.")
        return _("Enter at least %(count)s characters.") % {"count": value}
    if validator == "maxLength":
        return _("Enter at most %(count)s characters.") % {"count": value}
    if validator == "pattern":
        return _("Enter the value in the format shown.")
    if validator in ("minimum", "exclusiveMinimum"):
        return _("Enter a number of at least %(value)s.") % {"value": value}
    if validator in ("maximum", "exclusiveMaximum"):
        return _("Enter a number of at most %(value)s.") % {"value": value}
    if validator == "type":
        return _("Enter a valid value.")
    if validator == "additionalProperties":
        return _("This form does not have such a field.")
    return _("Enter a valid value.")


def _field_of(error: Any) -> str:
    if error.validator == "required":
        # jsonschema reports "'x' is a required property" on the object itself.
        missing = [name for name in error.validator_value if name not in (error.instance or {})]
        return missing[0] if missing else "__all__"
    if error.validator == "additionalProperties":
        return "__all__"
    return str(error.absolute_path[0]) if error.absolute_path else "__all__"


def clean_answers(schema: dict[str, Any], raw: dict[str, Any]) -> dict[str, Any]:
    """Keep only declared fields, coerce form strings to the schema's types, drop blanks."""
    properties: dict[str, Any] = schema.get("properties", {})
    cleaned: dict[str, Any] = {}
    for name, spec in properties.items():
        if name not in raw:
            continue
        value = raw[name]
        if isinstance(value, str):
            value = value.strip()[:MAX_ANSWER_LENGTH]
            if value == "":
                continue
            kind = spec.get("type")
            try:
                if kind == "integer":
                    value = int(value)
                elif kind == "number":
                    value = float(value) if "." in value else int(value)
                elif kind == "boolean":
                    value = value.lower() in ("1", "true", "on", "yes")
            except ValueError:
                pass  # left as a string: the schema check reports it against the field
        cleaned[name] = value
    return cleaned


def validate_answers(schema: dict[str, Any], answers: dict[str, Any]) -> dict[str, str]:
    """Field name -> first problem, in the active language. Empty when the answers are valid."""
    validator = Draft202012Validator(schema, format_checker=_format_checker)
    errors: dict[str, str] = {}
    for error in sorted(validator.iter_errors(answers), key=lambda e: list(e.absolute_path)):
        if error.validator == "required":
            for name in error.validator_value:
                if name not in answers:
                    errors.setdefault(name, _message(error))
            continue
        errors.setdefault(_field_of(error), _message(error))
    return errors
