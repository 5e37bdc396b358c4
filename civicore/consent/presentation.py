"""How consented sharing names things to citizens: profile items and stated purposes."""

from __future__ import annotations

from django.utils.translation import get_language

from civicore.identity import items as item_registry


def item_label(key: str) -> str:
    """The item's name in the active language; an unknown key is shown as it is."""
    try:
        return str(item_registry.get(key).label)
    except item_registry.UnknownItem:
        return key


def purpose_name(stated: dict[str, str] | None, code: str) -> str:
    """A registered purpose ({code, name_vi, name_en}) in the active language."""
    if not stated:
        return code
    if (get_language() or "vi").startswith("en") and stated.get("name_en"):
        return stated["name_en"]
    return stated.get("name_vi") or code
