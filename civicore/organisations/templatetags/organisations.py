from __future__ import annotations

from typing import Any

from django import template

from civicore.organisations.acting import shown_in_header

register = template.Library()


@register.simple_tag(takes_context=True)
def acting_for(context: Any) -> dict[str, Any] | None:
    """{% acting_for as acting %}: the business the session acts for, or None."""
    return shown_in_header(context.get("request"))
