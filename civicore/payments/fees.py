"""What a service charges, worked out from its definition's `fee` and an application's answers.

A quote is a base amount, lines that answers add (a fixed amount per option, or a unit price
times a quantity), and at most one exemption, which makes the whole fee nothing. An exemption that
asks for verified data holds only on answers pre-filled from the citizen's verified profile (which
the citizen cannot change), never on what was typed. Amounts are integer minor units.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from dataclasses import dataclass
from datetime import date
from typing import Any

from django.utils.translation import get_language
from django.utils.translation import gettext as _

SUBMISSION = "submission"
BEFORE_RELEASE = "before_release"


def label_text(label: Mapping[str, str] | None) -> str:
    """A bilingual label in the reader's language; the base fee has none."""
    if label is None:
        return _("Fee")
    return label["en"] if (get_language() or "vi").startswith("en") else label["vi"]


@dataclass(frozen=True, slots=True)
class FeeLine:
    code: str
    label: Mapping[str, str] | None  # None: the base fee, named in the reader's language
    quantity: int
    unit_amount: int
    amount: int

    @property
    def text(self) -> str:
        return label_text(self.label)


@dataclass(frozen=True, slots=True)
class Exemption:
    code: str
    label: Mapping[str, str]

    @property
    def text(self) -> str:
        return label_text(self.label)


@dataclass(frozen=True, slots=True)
class FeeQuote:
    currency: str
    lines: tuple[FeeLine, ...]
    exemption: Exemption | None
    due: str

    @property
    def subtotal(self) -> int:
        return sum(line.amount for line in self.lines)

    @property
    def total(self) -> int:
        return 0 if self.exemption is not None else self.subtotal

    def as_json(self) -> dict[str, Any]:
        """The breakdown as the ledger keeps it with a payment (and a receipt prints it)."""
        return {
            "currency": self.currency,
            "due": self.due,
            "lines": [
                {
                    "code": line.code,
                    "label": dict(line.label) if line.label else None,
                    "quantity": line.quantity,
                    "unit_amount": line.unit_amount,
                    "amount": line.amount,
                }
                for line in self.lines
            ],
            "exemption": (
                {"code": self.exemption.code, "label": dict(self.exemption.label)} if self.exemption else None
            ),
            "subtotal": self.subtotal,
            "total": self.total,
        }


def due(fee: Mapping[str, Any]) -> str:
    return str(fee.get("due", SUBMISSION))


def _age(born: date, on: date) -> int:
    return on.year - born.year - ((on.month, on.day) < (born.month, born.day))


def _holds(condition: Mapping[str, Any], answers: Mapping[str, Any], today: date) -> bool:
    value = answers.get(condition["field"])
    if value is None:
        return False
    if "equals" in condition:
        # bool is an int in Python: True must not match 1.
        return type(value) is type(condition["equals"]) and value == condition["equals"]
    if "in" in condition:
        return any(type(value) is type(choice) and value == choice for choice in condition["in"])
    if not isinstance(value, str):
        return False
    try:
        age = _age(date.fromisoformat(value), today)
    except ValueError:
        return False
    if age < 0:
        return False  # born in the future: not an age at all
    if "age_below" in condition:
        return age < condition["age_below"]
    return age >= condition["age_at_least"]


def _quantity(value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        return 0
    return value


def quote(
    fee: Mapping[str, Any],
    *,
    answers: Mapping[str, Any] | None = None,
    verified: Collection[str] = (),
    today: date,
) -> FeeQuote:
    """The fee for these answers (none: the fee before any answer, as the catalogue shows it).

    `verified`: the answers that came from verified data (an application's pre-filled fields).
    """
    answers = answers or {}
    lines = [FeeLine("base", None, 1, int(fee["amount"]), int(fee["amount"]))] if fee["amount"] else []
    for item in fee.get("items", []):
        condition = item.get("when")
        if condition is not None and not _holds(condition, answers, today):
            continue
        if "quantity_field" in item:
            quantity = max(0, _quantity(answers.get(item["quantity_field"])) - item.get("free_quantity", 0))
            if quantity:
                unit = int(item["unit_amount"])
                lines.append(FeeLine(item["code"], item["label"], quantity, unit, unit * quantity))
        elif item["amount"]:
            lines.append(FeeLine(item["code"], item["label"], 1, int(item["amount"]), int(item["amount"])))
    exemption = None
    for item in fee.get("exemptions", []):
        if item.get("verified", True) and item["when"]["field"] not in verified:
            continue
        if _holds(item["when"], answers, today):
            exemption = Exemption(item["code"], item["label"])
            break
    return FeeQuote(str(fee["currency"]), tuple(lines), exemption, due(fee))


def charges_anything(fee: Mapping[str, Any]) -> bool:
    """Whether any answers could make this fee more than nothing."""
    return bool(fee["amount"]) or any(
        item.get("amount") or item.get("unit_amount") for item in fee.get("items", [])
    )
