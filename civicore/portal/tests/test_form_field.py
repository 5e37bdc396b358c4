"""The shared form-field include other apps use for hand-written forms."""

from __future__ import annotations

import re
from typing import Any

import pytest
from django.template.loader import render_to_string


def render(**context: Any) -> str:
    return render_to_string(
        "includes/form_field.html", {"id": "f-x", "name": "x", "label": "Họ và tên", **context}
    )


def test_text_field_has_label_bound_to_input() -> None:
    html = render(value="An")
    assert '<label class="usa-label" for="f-x">Họ và tên' in html
    field = re.search(r"<input[^>]*>", html)
    assert (
        field
        and 'id="f-x"' in field.group(0)
        and 'type="text"' in field.group(0)
        and 'value="An"' in field.group(0)
    )
    assert "aria-describedby" not in field.group(0)


def test_help_and_error_are_announced_with_the_field() -> None:
    html = render(help="As on your ID card", error="Enter your name", required=True)
    field = re.search(r"<input[^>]*>", html)
    assert field
    assert 'aria-describedby="f-x-hint f-x-error"' in field.group(0)
    assert 'aria-invalid="true"' in field.group(0) and "required" in field.group(0)
    assert '<div class="usa-hint" id="f-x-hint">As on your ID card</div>' in html
    assert '<span class="usa-error-message" id="f-x-error">Enter your name</span>' in html
    assert "usa-form-group--error" in html


@pytest.mark.parametrize("widget", ["date", "email", "tel", "number"])
def test_typed_inputs(widget: str) -> None:
    assert f'type="{widget}"' in render(widget=widget)


def test_unknown_widget_falls_back_to_text() -> None:
    assert 'type="text"' in render(widget='"><script>')
    assert "<script>" not in render(widget='"><script>')


def test_textarea_select_radio_and_file() -> None:
    assert re.search(
        r'<textarea class="usa-textarea" id="f-x" name="x">hello</textarea>',
        render(widget="textarea", value="hello"),
    )
    select = render(widget="select", options=[("1", "Một"), ("2", "Hai")], value=2)
    assert '<option value="2" selected>Hai</option>' in select
    assert '<option value="1">Một</option>' in select
    radio = render(widget="radio", options=[("m", "Nam"), ("f", "Nữ")], value="f", help="Pick one")
    assert "<fieldset" in radio and '<legend class="usa-legend">Họ và tên' in radio
    assert 'aria-describedby="f-x-hint"' in radio
    assert re.search(r'id="f-x-2" name="x" value="f" checked', radio)
    assert 'for="f-x-1"' in radio
    file_html = render(widget="file", accept=".pdf")
    assert 'type="file"' in file_html and 'accept=".pdf"' in file_html


def test_hostile_values_are_escaped() -> None:
    html = render(value='"><script>alert(1)</script>', label="<b>x</b>", error="<img src=x>")
    assert "<script>" not in html and "<b>x</b>" not in html and "<img src=x>" not in html
