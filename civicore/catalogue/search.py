"""Accent-insensitive text matching for the catalogue.

Citizens often type Vietnamese without diacritics ("dang ky khai sinh"), so both the stored
search_text and the query are reduced to the same plain form before comparing.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable

# A query longer than this is not a search a person typed; cutting it keeps the SQL small.
MAX_QUERY_CHARS = 200
MAX_QUERY_WORDS = 12

_SPACES = re.compile(r"\s+")
_PUNCTUATION = re.compile(r"[^\w\s.\-/]", re.UNICODE)


def normalise(text: str) -> str:
    """Lowercase, strip diacritics (đ becomes d) and collapse whitespace."""
    decomposed = unicodedata.normalize("NFD", text or "")
    bare = "".join(ch for ch in decomposed if not unicodedata.combining(ch))
    # đ/Đ is a letter of its own, not d plus a mark, so NFD leaves it alone.
    bare = bare.replace("đ", "d").replace("Đ", "D")
    return _SPACES.sub(" ", bare.lower()).strip()


def search_text(parts: Iterable[str | None]) -> str:
    return normalise(" ".join(part for part in parts if part))


def query_words(q: str | None) -> list[str]:
    """The distinct words of a query, normalised, with punctuation treated as a separator."""
    cleaned = _PUNCTUATION.sub(" ", normalise((q or "")[:MAX_QUERY_CHARS]))
    return list(dict.fromkeys(cleaned.split()))[:MAX_QUERY_WORDS]
