"""Payment references: what a payer's bank carries back in the transfer content.

`CV` and ten random characters of Crockford's base 32 (no I, L, O or U, so nothing reads as
another character), then a Luhn mod 32 check character: a mistyped or truncated reference is
recognised as no reference at all instead of matching someone else's payment. Banks upper-case
transfer contents and often drop spaces and punctuation, so references are found anywhere in
the text, glued to other words or not.
"""

from __future__ import annotations

import re
import secrets

ALPHABET = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"
_VALUES = {char: index for index, char in enumerate(ALPHABET)}
PREFIX = "CV"
BODY = 10
LENGTH = len(PREFIX) + BODY + 1
_CANDIDATE = re.compile(f"(?=({PREFIX}[{ALPHABET}]{{{BODY + 1}}}))")
_SEPARATORS = re.compile(r"[\s\-_.:/]+")


def _check_character(body: str) -> str:
    """Luhn mod N (N = 32) over the body, from the rightmost character."""
    total = 0
    factor = 2
    for char in reversed(body):
        addend = factor * _VALUES[char]
        total += addend // 32 + addend % 32
        factor = 1 if factor == 2 else 2
    return ALPHABET[(32 - total % 32) % 32]


def new_reference() -> str:
    body = "".join(secrets.choice(ALPHABET) for _ in range(BODY))
    return PREFIX + body + _check_character(body)


def is_valid(text: str) -> bool:
    if len(text) != LENGTH or not text.startswith(PREFIX):
        return False
    body, check = text[len(PREFIX) : -1], text[-1]
    return all(char in _VALUES for char in text[len(PREFIX) :]) and _check_character(body) == check


def find(text: str) -> list[str]:
    """Every valid reference in a transfer content, in order, without repeats."""
    squeezed = _SEPARATORS.sub("", text.upper())
    found: list[str] = []
    for match in _CANDIDATE.finditer(squeezed):
        candidate = match.group(1)
        if is_valid(candidate) and candidate not in found:
            found.append(candidate)
    return found
