"""Symbols lost between a source's Markdown and LaTeX and a sample's plain text.

A converter or a generator that renders ``$a \\preceq b$`` as "a b", ``$2 \\mathrm{\\Omega}$`` as
"2", or stops an answer where its sentence runs on into a display formula leaves a sample that
reads as whole words but has lost what it said (blind readings: "there is an atom a in B such
that a b.", "Two resistors, of 2 and 4, respectively", r053/u059). The checks here are character
tests, on the sample's text alone or against the chunk: no parse sees a missing symbol.
"""

from __future__ import annotations

import functools
import re

_LOST_SYMBOL = (
    (re.compile(r"(?<=\w)\s-[a-z]{3,}\b"), "a symbol before '-{}' is missing"),
    (
        re.compile(r"(?:^|\s)\(?[a-hA-H][.)]\s+(?:What|Which|How|Why|Find|Calculate|Determine|Show|Explain)\b"),
        "an exercise part label",
    ),
    (re.compile(r"\^(?=[\s.,;?)]|$)"), "an exponent after '^' is missing"),
    (re.compile(r"\(\s+\)|\[\s+\]|\{\s+\}|(?<=\s)\(\)"), "an empty bracket pair"),
    (re.compile(r"\b[A-Za-z]{3,}\s+=(?=[^\s=])"), "the left side of '=' is missing"),
    (
        re.compile(r"(?:such that|where|with|iff?|and)\s+[a-zA-Z]\s+[a-zA-Z]\s*[.,;?]"),
        "a relation between two variables is missing",
    ),
)


def display_cut_problem(answer: str, chunk_text: str) -> str | None:
    """The answer ends where its source sentence goes on in a display formula ("... is a finite
    sequence of subgroups" before "$$ G = H_n \\supset \\cdots $$, where ..."): what follows is lost."""

    def flat(text: str) -> str:  # inline "$" dropped, a display's "$$" or "\\[" kept as one mark
        text = re.sub(r"\$\$|\\\[|\\begin\{", "\x00", text).replace("$", "")
        return re.sub(r"\s+", " ", text).lower()

    tail = flat(answer).rstrip(" .")[-40:]
    source = flat(chunk_text)
    if len(tail) < 15:
        return None
    at = source.find(tail)
    if at < 0 or not source[at + len(tail) :].lstrip(" :").startswith("\x00"):
        return None
    return "the answer stops where its source sentence goes on in a display formula"


#: a TeX escape of a plain character ("1\\% shorter") and the math spans where one belongs
_STRAY_ESCAPE = re.compile(r"\\[%$&#_{}]")
_MATH_SPAN = re.compile(r"\$\$.*?\$\$|(?<!\\)\$(?:[^$\\]|\\.)*?(?<!\\)\$", re.S)


def stray_escape_problem(text: str) -> str | None:
    """A TeX escape of a plain character left outside math ("appear 1\\% shorter?", a checkpoint
    read defective twice, l010/x059): markup a model would learn to write, not words; or None."""
    if "\\" not in text:
        return None
    m = _STRAY_ESCAPE.search(_MATH_SPAN.sub(" ", text))
    return f"a TeX escape '{m.group(0)}' outside math" if m else None


def lost_symbol_problem(text: str) -> str | None:
    """A mathematical symbol lost in conversion: "a b." for "a ⪯ b", "Euler -function", "F^"."""
    for rx, why in _LOST_SYMBOL:
        m = rx.search(text)
        if m:
            return why.replace("{}", m.group(0).strip().lstrip("-")[:12])
    return None


#: an inline math span that starts with a number and goes on (a unit or a symbol), with the words
#: around it: "of $2 \\mathrm{\\Omega}$ and" -> ("of", "2", "and")
_NUMBER_SPAN = re.compile(
    r"(?:^|\s)([A-Za-z]+)\s+(?<!\\)\$\s*(\d+(?:\.\d+)?)(?:\s|\\[,;: !]|~)*([^$\s][^$]*)(?<!\\)\$(?=\s*([A-Za-z]+|[,.;:]))"
)


@functools.lru_cache(maxsize=256)
def _number_spans(chunk_text: str) -> tuple[tuple[str, str], ...]:
    """``(phrase without the span's symbol, the span)`` for each number-with-symbol span of a chunk."""
    out = []
    for m in _NUMBER_SPAN.finditer(chunk_text):
        before, number, rest, after = m.groups()
        if not re.search(r"[A-Za-z\\]", rest):
            continue  # "$2 + 3$": no symbol of its own after the number
        sep = "" if after in ",.;:" else " "
        out.append((f"{before} {number}{sep}{after}".lower(), m.group(0).strip()))
    return tuple(out)


def dropped_symbol_problem(text: str, chunk_text: str) -> str | None:
    """A number whose unit or symbol the source gives in math and the text drops: the chunk's
    "of $2 \\mathrm{\\Omega}$ and" read as "of 2 and"; or None.

    Args:
        text: a question or an answer (plain text).
        chunk_text: the source chunk (Markdown with ``$...$`` math).
    Returns: a one-line reason naming the source's span, or None.
    """
    if "$" not in chunk_text:
        return None
    flat = re.sub(r"\s+", " ", text).lower()
    for phrase, span in _number_spans(chunk_text):
        if phrase in flat:
            return f"'{phrase}' drops the symbol of the source's {span[:40]}"
    return None
