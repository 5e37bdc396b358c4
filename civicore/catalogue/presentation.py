"""How catalogue values read to a person: money, processing times, a definition's parts in the
active language. Shared by the pages and the template filters."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from django.utils.translation import get_language, gettext, ngettext

from civicore.catalogue.models import ServiceVersion

# ISO 4217 exponents: amounts are stored in minor units, and the dong has none.
_EXPONENT = {"VND": 0, "JPY": 0, "KRW": 0}
_TYPE_NAMES = {"application/pdf": "PDF", "image/jpeg": "JPEG", "image/png": "PNG"}


def _english() -> bool:
    return (get_language() or "vi").startswith("en")


def bilingual(value: Any) -> str:
    if isinstance(value, dict):
        preferred = value.get("en") if _english() else value.get("vi")
        return str(preferred or value.get("vi") or value.get("en") or "")
    return "" if value is None else str(value)


def format_money(amount_minor: int, currency: str) -> str:
    """ "100.000 VND" in Vietnamese, "100,000 VND" in English; "Free" for nothing to pay."""
    if amount_minor <= 0:
        return gettext("Free")
    exponent = _EXPONENT.get(currency.upper(), 2)
    whole, minor = divmod(int(amount_minor), 10**exponent)
    group, decimal = (",", ".") if _english() else (".", ",")
    text = f"{whole:,}".replace(",", group)
    if exponent and minor:
        text += decimal + f"{minor:0{exponent}d}"
    return f"{text} {currency.upper()}"


def format_working_days(days: int) -> str:
    return ngettext("%(days)d working day", "%(days)d working days", days) % {"days": days}


@dataclass(frozen=True)
class DocumentView:
    code: str
    label: str
    help: str
    required: bool
    types: str
    max_bytes: int


@dataclass(frozen=True)
class PrefillView:
    field_label: str
    source_label: str


def documents(version: ServiceVersion) -> list[DocumentView]:
    return [
        DocumentView(
            code=doc["code"],
            label=bilingual(doc["label"]),
            help=bilingual(doc.get("help")),
            required=bool(doc["required"]),
            types=", ".join(_TYPE_NAMES.get(t, t) for t in doc["types"]),
            max_bytes=int(doc["max_bytes"]),
        )
        for doc in version.definition.get("documents", [])
    ]


def prefilled(version: ServiceVersion) -> list[PrefillView]:
    from civicore.identity.models import ProfileItem

    labels = {field["name"]: bilingual(field["label"]) for field in version.definition["form"]["fields"]}
    rows = []
    for target, key in version.definition.get("prefill", {}).items():
        try:
            source = str(ProfileItem.Key(key).label)
        except ValueError:
            source = key
        rows.append(PrefillView(field_label=labels.get(target, target), source_label=source))
    return rows
