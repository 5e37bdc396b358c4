"""Money and fee breakdowns as citizens and officers read them."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from django import template

from civicore.catalogue import presentation
from civicore.payments import fees

register = template.Library()


@register.filter
def money(amount_minor: int | None, currency: str = "VND") -> str:
    """150.000 VND in Vietnamese, 150,000 VND in English."""
    if amount_minor is None:
        return ""
    return presentation.format_money(int(amount_minor), currency or "VND")


@register.filter
def line_label(label: Mapping[str, str] | None) -> str:
    """A breakdown line's label in the reader's language; the base fee has none."""
    return fees.label_text(label or None)


@register.filter
def breakdown_lines(breakdown: Mapping[str, Any] | None) -> list[Mapping[str, Any]]:
    return list((breakdown or {}).get("lines") or [])


@register.filter
def fee_terms(fee: Mapping[str, Any] | None) -> dict[str, Any] | None:
    """A service's fee as the catalogue explains it before anyone answers: the base amount, what
    each option or copy adds, who is exempt and when it is due. None when it charges nothing."""
    from django.utils.translation import gettext

    if not fee or not fees.charges_anything(fee):
        return None
    currency = str(fee.get("currency", "VND"))
    items = []
    for item in fee.get("items", []):
        if "quantity_field" in item:
            free = int(item.get("free_quantity", 0))
            text = gettext("%(amount)s each") % {"amount": money(item["unit_amount"], currency)}
            if free:
                text += " " + gettext("(the first %(count)d included)") % {"count": free}
        else:
            text = money(item["amount"], currency)
        items.append({"label": line_label(item["label"]), "text": text})
    return {
        "base": money(fee["amount"], currency) if fee["amount"] else "",
        "items": items,
        "exemptions": [line_label(item["label"]) for item in fee.get("exemptions", [])],
        "due": fees.due(fee),
    }


@register.filter
def draft_quote(application: Any) -> dict[str, Any] | None:
    """What the fee comes to for a draft's answers so far (as the ledger will keep it)."""
    from civicore.payments import selectors

    fee = application.service_version.definition.get("fee")
    if not fee or not fees.charges_anything(fee):
        return None
    return selectors.application_quote(application).as_json()
