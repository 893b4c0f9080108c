"""Markdown blocks of a chunk: headings, paragraphs, list items, quotes, captions, tables, with their section kind."""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from prepbench.agents.extractive.text import clean_inline

# ---------------------------------------------------------------------------------------
# Markdown blocks
# ---------------------------------------------------------------------------------------

_HEADING_RE = re.compile(r"^(#{1,6})[ \t]+(.+?)[ \t#]*$")
_QUOTE_RE = re.compile(r"^\s{0,3}>[ \t]?")
_ITEM_RE = re.compile(r"^(\s*)([-*+]|\d{1,3}[.)])\s+(\S.*)$")
_CAPTION_RE = re.compile(r"^\*\s*(Figure|Fig\.|Image|Photo|Video)\b.*\*\s*$", re.I)
_TABLE_LABEL_RE = re.compile(r"^\*\*(Table|Figure|Exhibit)\s[^*]*\*\*\s*$", re.I)
_BOLD_LINE_RE = re.compile(r"^\*\*([^*]{2,200})\*\*\s*:?\s*$")
_SOLUTION_RE = re.compile(r"^\*\*\s*(Solution|Answer|Solutions)\s*:?\s*\*\*\s*:?", re.I)
_PROBLEM_NO_RE = re.compile(r"^\*\*\s*(\d{1,3})\s*\.?\s*\*\*\s*")
_URL_RE = re.compile(r"https?://|www\.", re.I)

_OUTCOME_HEAD_RE = re.compile(
    r"^(learning (outcomes|objectives)|objectives|chapter outline|outline|contents|table of contents|in this chapter|introduction to the chapter)$",
    re.I,
)
_REF_HEAD_RE = re.compile(
    r"^(footnotes?|notes|endnotes|references|bibliography|works cited|sources|further readings?|suggested readings?|citations|credits?|index)\b",
    re.I,
)
_GLOSSARY_HEAD_RE = re.compile(r"^(glossary|key terms|vocabulary|definitions)$", re.I)
_EXERCISE_HEAD_RE = re.compile(
    r"^(\d+(\.\d+)*\s+)?(exercises?|review questions?|questions|problems|practice( problems)?|homework|multiple choice|"
    r"critical thinking( questions)?|check your understanding|self[- ]check|discussion questions|video activity|"
    r"additional exercises|chapter review|quiz|reading questions|review|problem set|exercises?\b.*)$",
    re.I,
)
_NON_KNOWLEDGE_HEAD_RE = re.compile(
    r"^(acknowledg(e)?ments?|about the authors?|preface|dedication|colophon|imprint|uncopyright|.*\b(licen[cs]e|copyright)\b.*)$",
    re.I,
)
_OUTCOME_LINE_RE = re.compile(r"^by the end of this (section|chapter|module|unit)\b.*(able to|will)\b", re.I)


@dataclass
class Block:
    """One Markdown block of a chunk.

    ``raw`` is a verbatim substring of the chunk text (quote prefix and list marker
    removed); ``kind`` is heading, para, item, table, math, caption or label.
    """

    kind: str
    raw: str
    heading: str = ""
    section: str = ""  # outcomes | refs | glossary | exercises | non_knowledge | ""
    quote: int = -1  # quote group id, -1 outside block quotes
    ordered: bool = False
    indent: int = 0
    lines: list[str] = field(default_factory=list)  # table rows / math lines (verbatim)
    multiline: bool = False  # raw spans several source lines


def _strip_quote(line: str) -> tuple[bool, str]:
    m = _QUOTE_RE.match(line)
    if not m:
        return False, line
    rest = line[m.end() :]
    # nested quotes: strip repeatedly
    while True:
        m2 = _QUOTE_RE.match(rest)
        if not m2:
            break
        rest = rest[m2.end() :]
    return True, rest


def _dollar_count(s: str) -> int:
    return len(re.findall(r"(?<!\\)\$", s))


def _section_of(title: str) -> str:
    t = clean_inline(title).strip().rstrip(":").strip()
    t = re.sub(r"^\d+(\.\d+)*\s+", "", t)
    if _OUTCOME_HEAD_RE.match(t):
        return "outcomes"
    if _REF_HEAD_RE.match(t):
        return "refs"
    if _GLOSSARY_HEAD_RE.match(t):
        return "glossary"
    if _EXERCISE_HEAD_RE.match(t):
        return "exercises"
    if _NON_KNOWLEDGE_HEAD_RE.match(t):
        return "non_knowledge"
    return ""


def _display_math(lines: list[str], i: int, first: str) -> tuple[list[str], int]:
    """The lines of a ``$$`` display-math block starting at line ``i``, and the line after it."""
    mlines = [first]
    closed = len(first) > 2 and first.endswith("$$") and first != "$$"
    j = i + 1
    while not closed and j < len(lines):
        _, b2 = _strip_quote(lines[j])
        mlines.append(b2.rstrip())
        if b2.rstrip().endswith("$$"):
            closed = True
        j += 1
    return mlines, j


def _table_rows(lines: list[str], i: int) -> tuple[list[str], int]:
    """The rows of a pipe table starting at line ``i``, and the line after it."""
    rows = []
    j = i
    while j < len(lines):
        _, b2 = _strip_quote(lines[j])
        if not b2.strip().startswith("|"):
            break
        rows.append(b2.strip())
        j += 1
    return rows, j


def _item_or_para(body: str, s: str) -> tuple[str, bool, int, str]:
    """``(kind, ordered, indent, content)`` of a line: a list item or a paragraph."""
    mi = _ITEM_RE.match(body)
    if mi:
        return "item", mi.group(2)[0].isdigit(), len(mi.group(1)), mi.group(3).strip()
    return "para", False, len(body) - len(body.lstrip()), s


def _continue_math(lines: list[str], i: int, content: str, quoted: bool) -> tuple[str, bool, int]:
    """A paragraph whose inline math spans lines continues until the ``$`` balance is even:
    ``(content, multiline, next line)``."""
    multiline = False
    j = i + 1
    while _dollar_count(content) % 2 == 1 and j < len(lines) and j - i < 40:
        q2, b2 = _strip_quote(lines[j])
        if not b2.strip() or q2 != quoted:
            break
        content = content + "\n" + b2
        multiline = True
        j += 1
    return content, multiline, j


def parse_blocks(text: str, heading: str = "") -> list[Block]:
    """Split a chunk's Markdown into :class:`Block` objects in document order.

    Args:
        text: the chunk text.
        heading: the heading in force at the chunk's start (its ``heading_path[-1]``).

    Returns:
        Blocks; every ``raw``/``lines`` string occurs verbatim in ``text``.
    """
    lines = text.split("\n")
    blocks: list[Block] = []
    section = _section_of(heading) if heading else ""
    qcount = 0
    in_quote = False
    i = 0
    n = len(lines)
    while i < n:
        line = lines[i]
        quoted, body = _strip_quote(line)
        if quoted:
            if not in_quote:
                qcount += 1
                in_quote = True
        elif line.strip():
            in_quote = False
        elif not line.strip():
            in_quote = False
            i += 1
            continue
        qid = qcount if quoted else -1
        s = body.strip()
        if not s:
            i += 1
            continue
        m = _HEADING_RE.match(body) if not quoted else None
        if m:
            heading = clean_inline(m.group(2))
            section = _section_of(m.group(2))
            blocks.append(Block("heading", m.group(2).strip(), heading=heading, section=section))
            i += 1
            continue
        if re.match(r"^\[\^[^\]]+\]:", s):
            blocks.append(Block("para", s, heading=heading, section="refs", quote=qid))
            i += 1
            continue
        if _OUTCOME_LINE_RE.match(clean_inline(s)):
            section = "outcomes"
            blocks.append(Block("para", s, heading=heading, section=section, quote=qid))
            i += 1
            continue
        if s.startswith("$$"):
            mlines, i = _display_math(lines, i, s)
            blocks.append(
                Block(
                    "math", "\n".join(mlines), heading=heading, section=section, quote=qid, lines=[x for x in mlines if x.strip()]
                )
            )
            continue
        if s.startswith("|"):
            rows, i = _table_rows(lines, i)
            blocks.append(Block("table", "\n".join(rows), heading=heading, section=section, quote=qid, lines=rows))
            continue
        if _CAPTION_RE.match(s):
            blocks.append(Block("caption", s, heading=heading, section=section, quote=qid))
            i += 1
            continue
        if _TABLE_LABEL_RE.match(s):
            blocks.append(Block("label", s, heading=heading, section=section, quote=qid))
            i += 1
            continue
        kind, ordered, indent, content = _item_or_para(body, s)
        content, multiline, j = _continue_math(lines, i, content, quoted)
        if section == "outcomes" and kind == "para" and blocks and blocks[-1].kind == "item" and blocks[-1].section == "outcomes":
            section = ""  # the outcomes list has ended
        blocks.append(
            Block(kind, content, heading=heading, section=section, quote=qid, ordered=ordered, indent=indent, multiline=multiline)
        )
        i = j
    return blocks
