"""Report reference numbers: short, easy to read aloud and type, hard to guess.

"PA-" and six characters from an alphabet without look-alikes (0/O, 1/I/L, 5/S, 2/Z, 8/B), so a
citizen can read one over the phone; random rather than sequential, so one reference does not
reveal its neighbours.
"""

from __future__ import annotations

import re
import secrets

PREFIX = "PA-"
ALPHABET = "34679ACDEFGHJKMNPQRTUVWXY"
LENGTH = 6
PATTERN = re.compile(rf"^{PREFIX}[{ALPHABET}]{{{LENGTH}}}$")


def generate() -> str:
    return PREFIX + "".join(secrets.choice(ALPHABET) for _ in range(LENGTH))


def normalise(text: str) -> str:
    """The reference as typed by a citizen (any case, spaces, missing prefix) in its canonical form."""
    cleaned = "".join(str(text or "").split()).upper()
    if cleaned.startswith(PREFIX):
        return cleaned
    bare_prefix = PREFIX.rstrip("-")
    # "PA" followed by a whole code is the prefix typed without its hyphen; six characters alone
    # are a code, even one that itself begins with "PA".
    if len(cleaned) == len(bare_prefix) + LENGTH and cleaned.startswith(bare_prefix):
        cleaned = cleaned[len(bare_prefix) :]
    return PREFIX + cleaned


def is_valid(text: str) -> bool:
    return bool(PATTERN.match(text))
