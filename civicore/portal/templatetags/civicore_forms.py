"""Render Django form fields with U.S. Web Design System markup.

`{{ field|uswds_widget }}` draws the widget with the USWDS class for its kind and links it to
its hint and error message (ids `<id>-hint`, `<id>-error`) through aria-describedby, which is
how screen readers announce them.
"""

from __future__ import annotations

from django import forms, template
from django.forms.boundfield import BoundField
from django.utils.safestring import SafeString

register = template.Library()


@register.filter
def field_kind(field: BoundField) -> str:
    widget = field.field.widget
    if widget.is_hidden:
        return "hidden"
    if isinstance(widget, forms.CheckboxInput):
        return "checkbox"
    if isinstance(widget, forms.RadioSelect):
        return "radio"
    if isinstance(widget, forms.Textarea):
        return "textarea"
    if isinstance(widget, forms.Select):
        return "select"
    return "input"


_CLASSES = {
    "checkbox": "usa-checkbox__input",
    "textarea": "usa-textarea",
    "select": "usa-select",
    "input": "usa-input",
}


@register.filter
def uswds_widget(field: BoundField) -> SafeString:
    kind = field_kind(field)
    if kind in ("hidden", "radio"):
        return field.as_widget()
    classes = [_CLASSES[kind]]
    existing = field.field.widget.attrs.get("class")
    if existing:
        classes.append(str(existing))
    attrs: dict[str, str | bool] = {}
    described = []
    if field.help_text:
        described.append(f"{field.auto_id}-hint")
    if field.errors:
        described.append(f"{field.auto_id}-error")
        attrs["aria-invalid"] = "true"
        if kind != "checkbox":
            classes.append("usa-input--error")
    attrs["class"] = " ".join(classes)
    if described:
        attrs["aria-describedby"] = " ".join(described)
    # The label says what to type; a placeholder repeating it disappears on typing and often
    # fails contrast, so drop it.
    field.field.widget.attrs.pop("placeholder", None)
    return field.as_widget(attrs=attrs)
