from __future__ import annotations

from typing import Any

from django import template
from django.utils.formats import number_format

register = template.Library()


@register.filter
def pct(value: Any, digits: int = 1) -> str:
    """0.9512 -> "95.1 %" in the current language's number format; "–" for no value."""
    if value is None or value == "":
        return "–"
    return f"{number_format(float(value) * 100, decimal_pos=int(digits))} %"


@register.filter
def get(mapping: Any, key: str) -> Any:
    return mapping.get(key) if isinstance(mapping, dict) else None
