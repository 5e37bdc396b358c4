"""The ways to present a document for verification: the PDF itself, its QR code's content, or a
credential or presentation (SD-JWT) pasted or uploaded."""

from __future__ import annotations

import re
from typing import Any

from django import forms
from django.conf import settings
from django.template.defaultfilters import filesizeformat
from django.utils.translation import gettext_lazy as _

_SERIAL = re.compile(r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}")
_VERIFY_PATH = re.compile(r"/verify/(" + _SERIAL.pattern + r")/?(?:[?#].*)?$")


def serial_from_text(text: str) -> str | None:
    """The serial in what a QR code holds: our verification link, or the bare serial."""
    text = text.strip()
    if _SERIAL.fullmatch(text):
        return text.lower()
    if re.match(r"^https?://", text, flags=re.IGNORECASE):
        match = _VERIFY_PATH.search(text)
        if match:
            return match.group(1).lower()
    return None


class UploadForm(forms.Form):
    file = forms.FileField(
        label=_("The PDF document"),
        error_messages={
            "required": _("Choose the PDF file to check."),
            "empty": _("The file you chose is empty."),
        },
    )

    def clean_file(self) -> Any:
        upload = self.cleaned_data["file"]
        if upload.size > settings.UPLOAD_MAX_BYTES:
            raise forms.ValidationError(
                _("The file is larger than %(limit)s; documents we issue are much smaller.")
                % {"limit": filesizeformat(settings.UPLOAD_MAX_BYTES)},
                code="file_too_large",
            )
        return upload


class CodeForm(forms.Form):
    code = forms.CharField(
        label=_("The QR code's content or the document's serial number"),
        max_length=500,
        error_messages={"required": _("Enter the link from the QR code or the serial number.")},
    )

    def clean_code(self) -> str:
        serial = serial_from_text(self.cleaned_data["code"])
        if serial is None:
            raise forms.ValidationError(
                _("This is neither a verification link nor a serial number."), code="invalid_serial"
            )
        return serial


# A credential of a few dozen claims is a few kilobytes; a presentation less.
MAX_TOKEN_CHARS = 64 * 1024


class TokenForm(forms.Form):
    token = forms.CharField(
        label=_("A digital credential or a shared presentation"),
        max_length=MAX_TOKEN_CHARS,
        strip=True,
        widget=forms.Textarea,
        error_messages={
            "required": _("Paste the credential or presentation to check."),
            "max_length": _("This is too long to be a credential."),
        },
    )
