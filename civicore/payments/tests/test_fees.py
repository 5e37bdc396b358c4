"""Fees worked out from a service definition: base, lines per option and per quantity, exemptions
that only verified data can grant, and the definition checks that catch a fee that cannot work."""

from __future__ import annotations

import copy
from datetime import date
from pathlib import Path
from typing import Any

import pytest
from django.utils import translation

from civicore.catalogue import definitions
from civicore.payments import fees

SERVICES = Path(definitions.__file__).parent / "data" / "services"

COPIES = {
    "amount": 8000,
    "currency": "VND",
    "due": "before_release",
    "items": [
        {
            "code": "extra-copies",
            "label": {"vi": "Bản sao thêm", "en": "Extra copies"},
            "unit_amount": 5000,
            "quantity_field": "copies",
            "free_quantity": 1,
        },
        {
            "code": "express",
            "label": {"vi": "Trả kết quả nhanh", "en": "Express result"},
            "amount": 50000,
            "when": {"field": "delivery", "equals": "express"},
        },
    ],
    "exemptions": [
        {
            "code": "child-under-6",
            "label": {"vi": "Trẻ em dưới 6 tuổi", "en": "Children under 6"},
            "when": {"field": "child_date_of_birth", "age_below": 6},
        }
    ],
}
TODAY = date(2026, 12, 5)


def test_the_base_fee_alone_before_any_answer() -> None:
    quote = fees.quote(COPIES, today=TODAY)
    assert [(line.code, line.amount) for line in quote.lines] == [("base", 8000)]
    assert quote.total == 8000
    assert quote.due == "before_release"


def test_quantity_and_option_lines_add_up() -> None:
    answers = {"copies": 4, "delivery": "express", "child_date_of_birth": "2010-01-01"}
    quote = fees.quote(COPIES, answers=answers, verified={"child_date_of_birth"}, today=TODAY)
    assert [(line.code, line.quantity, line.amount) for line in quote.lines] == [
        ("base", 1, 8000),
        ("extra-copies", 3, 15000),  # the first copy is in the base fee
        ("express", 1, 50000),
    ]
    assert quote.exemption is None
    assert quote.total == 73000
    assert quote.as_json()["total"] == 73000


def test_a_verified_age_exempts_from_the_whole_fee() -> None:
    answers = {"copies": 4, "delivery": "express", "child_date_of_birth": "2021-12-06"}
    quote = fees.quote(COPIES, answers=answers, verified={"child_date_of_birth"}, today=TODAY)
    assert quote.exemption is not None and quote.exemption.code == "child-under-6"
    assert quote.subtotal == 73000
    assert quote.total == 0
    with translation.override("en"):
        assert quote.exemption.text == "Children under 6"


def test_the_sixth_birthday_ends_the_exemption() -> None:
    answers = {"child_date_of_birth": "2020-12-05"}
    quote = fees.quote(COPIES, answers=answers, verified={"child_date_of_birth"}, today=TODAY)
    assert quote.exemption is None and quote.total == 8000


def test_a_typed_date_of_birth_grants_no_exemption() -> None:
    answers = {"child_date_of_birth": "2024-01-01"}
    assert fees.quote(COPIES, answers=answers, verified=set(), today=TODAY).total == 8000


@pytest.mark.parametrize(
    "answers",
    [
        {"copies": -3},
        {"copies": True},
        {"copies": "7"},
        {"delivery": ["express"]},
        {"child_date_of_birth": "not a date"},
        {"child_date_of_birth": "2030-01-01"},  # born in the future
        {"child_date_of_birth": 20240101},
    ],
)
def test_odd_answers_never_lower_or_raise_the_fee(answers: dict[str, Any]) -> None:
    quote = fees.quote(COPIES, answers=answers, verified={"child_date_of_birth"}, today=TODAY)
    assert quote.total == 8000


def test_equals_does_not_confuse_true_with_one() -> None:
    fee = {
        "amount": 0,
        "currency": "VND",
        "items": [
            {"code": "x", "label": {"vi": "x", "en": "x"}, "amount": 10, "when": {"field": "a", "equals": 1}}
        ],
    }
    assert fees.quote(fee, answers={"a": True}, today=TODAY).total == 0
    assert fees.quote(fee, answers={"a": 1}, today=TODAY).total == 10


def _definition() -> dict[str, Any]:
    data = definitions.load_file(SERVICES / "permanent-residence-registration.yaml")
    return copy.deepcopy(data)


def test_every_shipped_definition_is_still_valid() -> None:
    for path in sorted(SERVICES.glob("*.yaml")):
        assert definitions.validate_definition(definitions.load_file(path)) == [], path.name


def test_fee_lines_must_name_real_fields_of_the_right_kind() -> None:
    data = _definition()
    text_field = next(
        name
        for name, prop in data["form"]["schema"]["properties"].items()
        if prop["type"] == "string" and "format" not in prop and name not in data.get("prefill", {})
    )
    data["fee"]["items"] = [
        {"code": "a", "label": {"vi": "a", "en": "a"}, "unit_amount": 1, "quantity_field": "nope"},
        {"code": "a", "label": {"vi": "b", "en": "b"}, "unit_amount": 1, "quantity_field": text_field},
        {
            "code": "c",
            "label": {"vi": "c", "en": "c"},
            "amount": 1,
            "when": {"field": text_field, "age_below": 6},
        },
    ]
    data["fee"]["exemptions"] = [
        {"code": "d", "label": {"vi": "d", "en": "d"}, "when": {"field": text_field, "equals": "x"}}
    ]
    errors = definitions.validate_definition(data)
    assert any("fee.items[0].quantity_field: 'nope' is not a form field" in e for e in errors)
    assert any("fee.items[1].code: 'a' is used twice" in e for e in errors)
    assert any("fee.items[1].quantity_field" in e and "integer" in e for e in errors)
    assert any("fee.items[2].when: an age needs a date field" in e for e in errors)
    assert any("fee.exemptions[0].verified" in e for e in errors)


@pytest.mark.parametrize(
    "item",
    [
        {"code": "a", "label": {"vi": "a", "en": "a"}},  # neither amount nor unit price
        {"code": "a", "label": {"vi": "a", "en": "a"}, "amount": 1, "unit_amount": 1, "quantity_field": "x"},
        {"code": "a", "label": {"vi": "a", "en": "a"}, "amount": -1},
        {"code": "a", "label": {"vi": "a", "en": "a"}, "amount": 1, "when": {"field": "x"}},
        {
            "code": "a",
            "label": {"vi": "a", "en": "a"},
            "amount": 1,
            "when": {"field": "x", "equals": 1, "in": [1]},
        },
    ],
)
def test_malformed_fee_lines_are_refused_by_the_schema(item: dict[str, Any]) -> None:
    data = _definition()
    data["fee"]["items"] = [item]
    assert any(error.startswith("fee.items") for error in definitions.validate_definition(data))
