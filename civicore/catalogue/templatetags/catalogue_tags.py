from __future__ import annotations

from typing import Any

from django import template

from civicore.catalogue import presentation
from civicore.catalogue.models import ServiceVersion

register = template.Library()


@register.filter
def fee(version: ServiceVersion | None) -> str:
    if version is None:
        return ""
    return presentation.format_money(version.fee_minor, version.currency)


@register.filter
def working_days(days: int | None) -> str:
    return presentation.format_working_days(int(days or 0))


@register.filter
def bilingual(value: Any) -> str:
    return presentation.bilingual(value)
