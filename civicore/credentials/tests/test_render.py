from __future__ import annotations

import datetime as dt

import pytest

from civicore.credentials.services import render_template

VALUES = {
    "reference": "AB-2026-000001",
    "decided_at": dt.date(2026, 3, 9),
    "applicant": {"full_name": "Nguyễn Văn An"},
    "answers": {
        "child_full_name": "Trần Thị Ánh",
        "twins": True,
        "names": ["An", "Bình"],
        "nested": {"a": 1},
    },
}


@pytest.mark.parametrize(
    ("template", "expected"),
    [
        ("{answers.child_full_name}", "Trần Thị Ánh"),
        ("Số {reference} – {applicant.full_name}", "Số AB-2026-000001 – Nguyễn Văn An"),
        ("{decided_at}", "09/03/2026"),
        ("{answers.names}", "An, Bình"),
        ("{answers.missing}", ""),
        ("{nothing}", ""),
        ("{answers}", ""),
        ("{answers.nested}", ""),
        ("no placeholders", "no placeholders"),
    ],
)
def test_placeholders(template: str, expected: str) -> None:
    assert render_template(template, VALUES) == expected


@pytest.mark.parametrize(
    "hostile",
    [
        "{answers.__class__}",
        "{applicant.full_name.__class__.__mro__}",
        "{reference.__class__.__init__.__globals__}",
        "{answers[child_full_name]}",
        "{0}",
        "{}",
        "{reference!r}",
        "{reference:>99999999}",
        "{__import__('os').system('true')}",
        "{{reference}",
        "{" * 1000,
    ],
)
def test_hostile_templates_are_never_evaluated(hostile: str) -> None:
    rendered = render_template(hostile, VALUES)
    assert "class" not in rendered.lower() or rendered == hostile
    assert len(rendered) <= len(hostile) + len("AB-2026-000001")
    assert "<" not in rendered


def test_non_string_templates_render_empty() -> None:
    assert render_template(None, VALUES) == ""
    assert render_template({"vi": "x"}, VALUES) == ""
    assert render_template(42, VALUES) == ""


def test_answers_print_dates_and_choices_for_readers() -> None:
    from civicore.credentials.services import _printable_answers

    definition = {
        "form": {
            "fields": [
                {
                    "name": "child_gender",
                    "options": [{"value": "female", "label": {"vi": "Nữ", "en": "Female"}}],
                }
            ]
        }
    }
    printed = _printable_answers(
        {"child_gender": "female", "child_date_of_birth": "2026-11-20", "note": "2026-13-45"}, definition
    )
    assert render_template("{answers.child_gender}", {"answers": printed}) == "Nữ"
    assert render_template("{answers.child_date_of_birth}", {"answers": printed}) == "20/11/2026"
    assert render_template("{answers.note}", {"answers": printed}) == "2026-13-45"
