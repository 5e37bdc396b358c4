"""Password rules beyond Django's: no breached or guessable password, and no absurd length.

`BreachedPasswordValidator` refuses a password that is, or is a small change to, a password
known from data breaches. Its list has two sources, merged when first used:

1. Django's `common-passwords.txt.gz` (django/contrib/auth/, 20,000 passwords most frequent in
   breach corpora, compiled by Royce Williams; shipped with Django under its BSD licence), read
   from the installed Django, so it needs no copy here.
2. `civicore/identity/data/breached-passwords.txt`, written by hand for Civicore: the passwords at
   the top of published breach-frequency rankings, and the Vietnamese words, names, places and
   phrases people build passwords from ("matkhau", "anhyeuem", family names...), which the
   first list mostly lacks.

Django's CommonPasswordValidator already refuses exact matches. This one also sees through the
changes people make to meet length rules: case, Vietnamese diacritics, separators, letters
swapped for look-alike digits or symbols ("p@ssw0rd"), digits or a date added before or after
("Matkhau@2024!"), a word repeated ("passwordpassword"), keyboard and alphabet runs, and
passwords of only a few different characters. A long passphrase of ordinary words passes.
"""

from __future__ import annotations

import gzip
import re
import unicodedata
from functools import cache
from pathlib import Path
from typing import Any

from django.contrib.auth import password_validation
from django.core.exceptions import ValidationError
from django.utils.translation import gettext as _

CIVICORE_LIST = Path(__file__).resolve().parent / "data" / "breached-passwords.txt"
# Letters people replace with look-alike digits and symbols; "1" stands for both i and l.
_LEET = str.maketrans(
    {"0": "o", "3": "e", "4": "a", "5": "s", "7": "t", "@": "a", "$": "s", "!": "i", "|": "l"}
)
_RUNS = (
    "abcdefghijklmnopqrstuvwxyz",
    "01234567890123456789",
    "qwertyuiopasdfghjklzxcvbnm",
    "1234567890qwertyuiopasdfghjklzxcvbnm",
    "1qaz2wsx3edc4rfv5tgb6yhn7ujm8ik9ol0p",
    "qazwsxedcrfvtgbyhnujmikolp",
    "azertyuiopqsdfghjklmwxcvbn",
)
# Shortest part of a password that is not digits or symbols, for it to count as more than padding.
MIN_CORE = 4
# Padding longer than this around a listed word is counted as real strength, unless guessable.
MAX_PADDING = 8


def _fold(text: str) -> str:
    """Lower case without diacritics: "Mật Khẩu" -> "mat khau"."""
    text = text.replace("đ", "d").replace("Đ", "D")
    decomposed = unicodedata.normalize("NFKD", text)
    return "".join(c for c in decomposed if not unicodedata.combining(c)).casefold()


def _alnum(text: str) -> str:
    return re.sub(r"[^a-z0-9]", "", text)


def _deleet(text: str) -> list[str]:
    swapped = text.translate(_LEET)
    return [swapped.replace("1", "i"), swapped.replace("1", "l")]


def _split(folded: str) -> tuple[str, str, str]:
    """(prefix, core, suffix): the padding of digits and symbols around the middle."""
    match = re.fullmatch(r"([^a-z]*)(.*?)([^a-z]*)", folded, flags=re.DOTALL)
    assert match is not None  # the pattern matches any string
    return match.group(1), match.group(2), match.group(3)


def _is_run(text: str) -> bool:
    """Part of a keyboard row, the alphabet or the digits, forwards or backwards."""
    return len(text) >= 3 and any(text in run or text in run[::-1] for run in _RUNS)


def _repeated_unit(text: str) -> str | None:
    """The shortest unit that `text` repeats ("abcabcabc" -> "abc"), or None."""
    match = re.fullmatch(r"(.+?)\1+", text)
    return match.group(1) if match else None


def _variants(word: str) -> set[str]:
    """How a listed password is stored: as written, and with padding and look-alikes undone."""
    folded = _fold(word)
    out = {_alnum(folded)}
    _prefix, core, _suffix = _split(folded)
    for candidate in [core, *_deleet(core)]:
        cleaned = _alnum(candidate)
        if len(cleaned) >= 3:
            out.add(cleaned)
    out.discard("")
    return out


@cache
def breached_passwords() -> frozenset[str]:
    words: set[str] = set()
    django_list = Path(password_validation.__file__).resolve().parent / "common-passwords.txt.gz"
    with gzip.open(django_list, "rt", encoding="utf-8") as handle:
        for line in handle:
            words.update(_variants(line.strip()))
    for line in CIVICORE_LIST.read_text(encoding="utf-8").splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            words.update(_variants(line))
    return frozenset(words)


def _guessable_padding(padding: str, listed: frozenset[str]) -> bool:
    """Digits and symbols around a word that add little: short, listed, a run or a repetition."""
    digits = _alnum(padding)
    if len(padding) <= MAX_PADDING or not digits:
        return True
    unit = _repeated_unit(digits)
    return digits in listed or _is_run(digits) or (unit is not None and len(unit) <= 4)


def is_breached(password: str) -> bool:
    """True when the password is listed, or is a listed password or word with only guessable
    changes (see the module docstring)."""
    listed = breached_passwords()
    folded = _fold(password)
    whole = _alnum(folded)
    if len(set(whole)) < 4 or whole in listed or _is_run(whole):
        return True
    if any(_alnum(v) in listed for v in _deleet(folded)):
        return True
    unit = _repeated_unit(whole)
    if unit is not None and (len(unit) < MIN_CORE + 2 or unit in listed):
        return True
    prefix, core, suffix = _split(folded)
    forms = {_alnum(core), *(_alnum(v) for v in _deleet(core))}
    weak_core = (
        len(_alnum(core)) < MIN_CORE
        or bool(forms & listed)
        or any((unit := _repeated_unit(form)) is not None and unit in listed for form in forms)
    )
    return weak_core and _guessable_padding(prefix + suffix, listed)


class BreachedPasswordValidator:
    """Refuses breached passwords and small changes to them (see the module docstring)."""

    def validate(self, password: str, user: Any = None) -> None:
        if is_breached(password):
            raise ValidationError(
                _(
                    "This password appears in lists of passwords exposed in data breaches, or is a "
                    "small change to one (such as added digits or letters swapped for symbols). "
                    "Choose a different password, for example a few unrelated words."
                ),
                code="password_breached",
            )

    def get_help_text(self) -> str:
        return _("Your password can't be one exposed in a data breach, even with digits or symbols added.")


class MaximumLengthValidator:
    """A ceiling well above any real passphrase, so hashing cannot be made expensive."""

    def __init__(self, max_length: int = 128):
        self.max_length = max_length

    def validate(self, password: str, user: Any = None) -> None:
        if len(password) > self.max_length:
            raise ValidationError(
                _("This password is too long. It can have at most %(max_length)d characters.")
                % {"max_length": self.max_length},
                code="password_too_long",
            )

    def get_help_text(self) -> str:
        return _("Your password can have at most %(max_length)d characters.") % {
            "max_length": self.max_length
        }
