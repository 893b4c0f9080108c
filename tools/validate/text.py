"""Text normalisation shared by the gate's rules and duplicate detection."""

from __future__ import annotations

import re
import unicodedata
from typing import Any

_WORD_RE = re.compile(r"[a-z0-9]+(?:'[a-z]+)?")
STOPWORDS = frozenset(
    "a an the of to in on for and or is are was were be been being by with as at from that this these those "
    "it its what which who whom how why when where does do did can could should would will may might".split()
)


def normalize_text(text: str) -> str:
    """Lowercase, NFKC, punctuation dropped, whitespace collapsed (for exact dedup)."""
    text = unicodedata.normalize("NFKC", text).lower()
    return " ".join(_WORD_RE.findall(text))


def words(text: str) -> list[str]:
    """Lowercase word tokens."""
    return _WORD_RE.findall(unicodedata.normalize("NFKC", text).lower())


def as_texts(value: Any) -> list[str]:
    """A field value as a list of strings (None -> [], a list item by item, anything else str())."""
    if value is None:
        return []
    if isinstance(value, str):
        return [value]
    if isinstance(value, list):
        return [v if isinstance(v, str) else str(v) for v in value]
    return [str(value)]


def squash(text: str) -> str:
    """NFKC, whitespace collapsed, lowercase (for substring checks against a chunk)."""
    return re.sub(r"\s+", " ", unicodedata.normalize("NFKC", text)).strip().lower()


#: an option line of a multiple-choice question, its text in group 1: "1. $2v$", "B) silk", "(c) neither",
#: also quoted ("> 2. No.")
OPTION_LINE = re.compile(r"^\s*(?:>\s*)*(?:\d{1,2}[.)]|\(?[A-Ea-e]\)|[A-E]\.)\s+(.*)$")


def choice_parts(text: str) -> tuple[str, str] | None:
    """``(stem, options)`` of a multiple-choice question (a stem, then two or more option lines:
    "What is the SI unit for impulse?\\n1. kg m/s^2\\n2. kg m/s"), or None for any other text."""
    lines = text.strip().split("\n")
    options = [i for i, ln in enumerate(lines) if (m := OPTION_LINE.match(ln)) and m.group(1).strip()]
    if len(options) < 2 or options[0] == 0:
        return None
    return " ".join(lines[: options[0]]).strip(), "\n".join(lines[options[0] :])
