"""What the call flow and pools readers share: the patterns of numbers and language tags, hints."""

from __future__ import annotations

import difflib
import re
from collections.abc import Iterable

E164 = re.compile(r"^\+[1-9]\d{6,14}$")
# BCP 47 as Twilio uses it: a lower-case language, then region or variant subtags (vi-VN, ar-XA).
LANGUAGE_TAG = re.compile(r"^[a-z]{2,3}(-[A-Za-z0-9]{2,8})*$")


def closest(word: str, choices: Iterable[str], cutoff: float = 0.6) -> str | None:
    """The choice that `word` most likely misspells, or None when none is close."""
    found = difflib.get_close_matches(word, list(choices), n=1, cutoff=cutoff)
    return found[0] if found else None


def suggest(word: str, choices: Iterable[str]) -> str:
    """A " (did you mean ...?)" hint for a misspelt `word`, or the empty string."""
    hint = closest(word, choices)
    return f" (did you mean {hint!r}?)" if hint else ""
