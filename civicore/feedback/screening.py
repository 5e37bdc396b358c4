"""Screening of free text for personal data before it is shown beyond the agency.

`screen(text)` replaces what looks like a phone number (Vietnamese in its +84 and 0 forms,
Singaporean eight-digit numbers), an e-mail address, a Vietnamese ID number (CCCD, CMND), a
Singapore NRIC/FIN or a payment card number (13 to 19 digits passing the Luhn check) with a
bracketed placeholder. It is a filter of known shapes, not a guarantee: names, addresses and
numbers written in words pass through (see docs/decisions/0025-citizen-ratings.md).

Numbers are matched only as whole tokens in the groupings people write them in, and never when a
currency follows, so that dates, amounts and reference numbers (HCM-2026-000123) survive.
"""

from __future__ import annotations

import re
from collections.abc import Callable

from django.utils.translation import gettext as _

# Not inside a longer word, number or reference: no letter or dash before, nor a digit and a space...
_START = r"(?<![\w@/+-])(?<!\d[ .,])"
# ...and after: no letter or digit, no joining mark followed by more, no currency or percent.
_END = r"(?![\w@/]|[.,:-]\w)(?!\s?(?:(?:vnđ|vnd|đồng|dong|đ|sgd|usd)\b|\$|%))"

_SEPARATOR = r"(?P<sep>[ .-]?)"


def _grouped(first: str, *sizes: int) -> str:
    """Digits in groups of `sizes` after `first`, the same separator (or none) between each."""
    parts = [first + _SEPARATOR]
    for index, size in enumerate(sizes):
        parts.append(("" if index == 0 else "(?P=sep)") + rf"\d{{{size}}}")
    return "".join(parts)


def _any_of(*patterns: str) -> str:
    # Each alternative names its separator group; keep the names distinct.
    return "|".join(f"(?:{pattern.replace('sep', f'sep{index}')})" for index, pattern in enumerate(patterns))


EMAIL = re.compile(r"[\w.+-]+@[\w-]+(?:\.[\w-]+)+", re.IGNORECASE)

# 13 to 19 digits, alone or in groups split by single spaces or dashes; kept only if Luhn-valid.
CARD = re.compile(_START + r"(?<!\d[ -])\d(?:[ -]?\d){12,18}(?![ -]?\d)" + _END, re.IGNORECASE)

NRIC = re.compile(r"(?<![\w])[STFGM]\d{7}[A-Z](?![\w])", re.IGNORECASE)

# +84 / 0084, then the national number without its 0: mobiles 9 digits, landlines 10.
VN_INTERNATIONAL = re.compile(
    r"(?<![\w+])(?:\+|00)84[ .-]?(?:\(0\)[ .-]?)?(?:[35789]|2\d)(?:[ .-]?\d){8}" + _END,
    re.IGNORECASE,
)
# 0 and 9 more digits for mobiles (03x, 05x, 07x, 08x, 09x), 10 more for landlines (02x), written
# solid or in the usual groupings: 0912 345 678, 091 234 5678, 091 2345 678, 028 3822 1234.
VN_NATIONAL = re.compile(
    _START
    + "(?:"
    + _any_of(
        r"0[35789]\d{8}",
        _grouped(r"0[35789]\d{2}", 3, 3),
        _grouped(r"0[35789]\d", 3, 4),
        _grouped(r"0[35789]\d", 4, 3),
        r"02\d{9}",
        _grouped(r"02\d", 4, 4),
        _grouped(r"02\d{2}", 3, 4),
    )
    + ")"
    + _END,
    re.IGNORECASE,
)
# Eight digits starting 3, 6, 8 or 9, solid or 4 + 4, with or without +65.
SG_PHONE = re.compile(
    r"(?:(?<![\w+])(?:\+|00)65[ .-]?|" + _START + ")" + _grouped(r"[3689]\d{3}", 4) + _END,
    re.IGNORECASE,
)
# CCCD: 12 digits, the first three the province code (001-096), so it starts with 0. Solid, or in
# fours or threes.
CCCD = re.compile(
    _START
    + "(?:"
    + _any_of(r"0\d{11}", _grouped(r"0\d{3}", 4, 4), _grouped(r"0\d{2}", 3, 3, 3))
    + ")"
    + _END,
    re.IGNORECASE,
)
# CMND: 9 digits, solid or in threes.
CMND = re.compile(_START + "(?:" + _any_of(r"\d{9}", _grouped(r"\d{3}", 3, 3)) + ")" + _END, re.IGNORECASE)


def luhn_valid(digits: str) -> bool:
    total = 0
    for position, char in enumerate(reversed(digits)):
        value = int(char)
        if position % 2:
            value *= 2
            if value > 9:
                value -= 9
        total += value
    return total % 10 == 0


def _placeholder(text: str) -> Callable[[re.Match[str]], str]:
    return lambda _match: text


def _card(match: re.Match[str]) -> str:
    digits = re.sub(r"\D", "", match.group(0))
    return _("[payment card number]") if luhn_valid(digits) else match.group(0)


def screen(text: str) -> str:
    """`text` with the personal data it recognises replaced by bracketed placeholders, in the
    active language."""
    if not text:
        return text
    phone = _placeholder(_("[phone number]"))
    id_number = _placeholder(_("[ID number]"))
    steps: list[tuple[re.Pattern[str], Callable[[re.Match[str]], str]]] = [
        (EMAIL, _placeholder(_("[e-mail address]"))),
        (CARD, _card),
        (NRIC, id_number),
        (VN_INTERNATIONAL, phone),
        (VN_NATIONAL, phone),
        (CCCD, id_number),
        (SG_PHONE, phone),
        (CMND, id_number),
    ]
    for pattern, replace in steps:
        text = pattern.sub(replace, text)
    return text
