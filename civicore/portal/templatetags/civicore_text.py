"""Small text filters for templates."""

from __future__ import annotations

from django import template

register = template.Library()


@register.filter(is_safe=True)
def squash(value: object) -> str:
    """Collapse runs of whitespace (including newlines) to single spaces and trim the ends."""
    return " ".join(str(value).split())
