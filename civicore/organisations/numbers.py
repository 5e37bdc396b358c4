"""Vietnamese enterprise codes (mã số doanh nghiệp): 10 digits for an enterprise or household
business, and the parent's 10 digits plus a 3-digit suffix (001-999) for a branch or other
dependent unit, written 0312345678-001. Thirteen digits without the dash are accepted and
written canonically."""

from __future__ import annotations

import re

from django.utils.translation import gettext as _

from civicore.core.errors import ValidationFailed

PATTERN = r"^[0-9]{10}(-[0-9]{3})?$"
_INPUT = re.compile(r"^([0-9]{10})(?:-?([0-9]{3}))?$", re.ASCII)
MAX_INPUT = 40


class InvalidRegistrationNumber(ValidationFailed):
    """The business registration number is not valid."""

    code = "invalid_registration_number"


def normalise(raw: object) -> str:
    """The canonical form of a registration number typed or sent by someone, or a 422."""
    text = raw if isinstance(raw, str) else ""
    if len(text) > MAX_INPUT:
        text = ""
    text = re.sub(r"[\s.]", "", text)
    match = _INPUT.match(text)
    if match is None or match.group(2) == "000":
        raise InvalidRegistrationNumber(
            _("Enter a business registration number of 10 digits, or 13 for a branch (0312345678-001)."),
            details={"registration_number": _("Not a valid business registration number.")},
        )
    return match.group(1) + (f"-{match.group(2)}" if match.group(2) else "")


def is_valid(raw: object) -> bool:
    try:
        normalise(raw)
    except InvalidRegistrationNumber:
        return False
    return True
