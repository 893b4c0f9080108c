"""Triage: keep a chunk, or skip it with one of the skill's skip reasons (navigation, noisy, broken_ocr, ...)."""

from __future__ import annotations

import re
from typing import Iterable

from prepbench.agents.base import Triage
from prepbench.agents.extractive.blocks import _PROBLEM_NO_RE, _SOLUTION_RE, _URL_RE, Block, parse_blocks
from prepbench.agents.extractive.grammar import _usable_block, _words
from prepbench.agents.extractive.text import clean_inline, split_sentences
from prepbench.tools.chunking import Chunk
from prepbench.tools.skills import Skill

# ---------------------------------------------------------------------------------------
# Triage
# ---------------------------------------------------------------------------------------

#: a glossary entry: "**term**: definition" (the colon inside or after the bold)
_GLOSSARY_ENTRY_RE = re.compile(r"^\*\*[^*]{2,80}?(?:\*\*\s*:|:\s*\*\*)\s*\S")


def _ocr_scores(text: str) -> tuple[float, float, int]:
    """(share of split-word fragments, share of garbage characters, count of bad glyphs)."""
    toks = re.findall(r"\S+", text)
    if not toks:
        return 0.0, 0.0, 0
    alpha = [t for t in toks if re.fullmatch(r"[A-Za-z]+[.,;:]?", t)]
    short_ok = {
        "a",
        "i",
        "an",
        "of",
        "to",
        "in",
        "is",
        "it",
        "on",
        "as",
        "at",
        "be",
        "by",
        "or",
        "we",
        "he",
        "if",
        "so",
        "no",
        "do",
        "up",
        "my",
        "us",
        "me",
        "go",
        "am",
        "vs",
        "tv",
        "us",
        "ok",
        "oh",
        "ad",
        "id",
        "pm",
        "pv",
        "fv",
        "n",
        "r",
        "x",
        "y",
    }
    frag = [t for t in alpha if len(t.strip(".,;:")) <= 2 and t.strip(".,;:").lower() not in short_ok]
    frag_share = len(frag) / max(1, len(alpha))
    chars = re.sub(r"\s", "", text)
    garbage = len(re.findall(r"[^\w.,;:!?'\"“”‘’()\[\]$%&/\-–—+=*<>|#@^~`{}\\]", chars))
    bad = text.count("\ufffd") + len(re.findall(r"\(cid:\d+\)", text))
    return frag_share, garbage / max(1, len(chars)), bad


def _conversion_fault(body: list[Block], all_text: str) -> tuple[str, str] | None:
    """``(skip_reason, detail)`` when the prose of ``body`` is a broken PDF conversion, else None."""
    prose = "\n".join(
        clean_inline(re.sub(r"(?<!\\)\$[^$]*(?<!\\)\$", " ", b.raw)) for b in body if b.kind not in ("math", "table", "heading")
    )
    frag, garbage, bad = _ocr_scores(prose)
    if bad >= 3 or (frag > 0.2 and len(all_text) > 200):
        return "broken_ocr", f"broken conversion: {frag:.0%} split-word fragments, {bad} bad glyphs"
    if garbage > 0.2 and len(all_text) > 100:
        return "noisy", f"{garbage:.0%} of characters are symbols or markup debris"
    return None


def triage_chunk(chunk: Chunk, skill: Skill) -> Triage:
    """Keep or skip a chunk, with a reason from the skill's skip vocabulary.

    Rules (first match wins): heading_only (no text below the headings), broken_ocr /
    noisy (split words, replacement glyphs, symbol soup), navigation (learning outcomes,
    outlines), index_like (footnotes, references, link lists), non_knowledge (credits,
    licences), pedagogy (questions without answers), low_information (less than the
    skill's ``min_chunk_chars`` of content text).
    """
    allowed = set(skill.coverage.skip_reasons)

    def skip(reason: str, detail: str) -> Triage:
        if reason not in allowed:
            reason = "low_information" if "low_information" in allowed else sorted(allowed)[0]
        return Triage(keep=False, skip_reason=reason, detail=detail)

    head = chunk.heading_path[-1] if chunk.heading_path else ""
    blocks = parse_blocks(chunk.text, head)
    body = [b for b in blocks if b.kind != "heading"]
    if not body or sum(len(clean_inline(b.raw)) for b in body) < 30:
        return skip("heading_only", "only headings, no text below them")
    sec_chars: dict[str, int] = {}
    for b in body:
        sec_chars[b.section] = sec_chars.get(b.section, 0) + len(b.raw)
    if sec_chars.get("exercises", 0) >= 0.5 * max(1, sum(sec_chars.values())) and not any(
        _SOLUTION_RE.match(b.raw) for b in body
    ):
        return skip("pedagogy", "exercises or review questions without answers")
    if sec_chars.get("non_knowledge", 0) >= 0.5 * max(1, sum(sec_chars.values())):
        return skip("non_knowledge", "credits, licence or front matter")
    all_text = "\n".join(clean_inline(b.raw) for b in body if b.kind not in ("math", "table"))
    if conversion := _conversion_fault(body, all_text):
        return skip(*conversion)

    def chars(bs: Iterable[Block]) -> int:
        return sum(len(clean_inline(b.raw)) for b in bs)

    by_sec: dict[str, int] = {}
    for b in body:
        by_sec[b.section] = by_sec.get(b.section, 0) + len(clean_inline(b.raw))
    total = max(1, sum(by_sec.values()))
    content = [b for b in body if b.section in ("", "glossary") and b.kind != "caption"]
    sources = [b for b in content if not _usable_block(b) and b.kind in ("para", "item")]
    content_chars = chars(content) - chars(sources)
    urls = sum(len(_URL_RE.findall(b.raw)) for b in body)
    if by_sec.get("outcomes", 0) and content_chars < skill.coverage.min_chunk_chars:
        return skip("navigation", "learning outcomes / overview with no teaching text")
    nav_items = [
        b for b in content if b.kind == "item" and len(clean_inline(b.raw)) < 80 and not re.search(r"[.!?]$", clean_inline(b.raw))
    ]
    if content and len(nav_items) >= 3 and chars(nav_items) >= 0.8 * max(1, content_chars):
        return skip("navigation", "a list of section titles")
    if by_sec.get("refs", 0) + chars(sources) >= 0.6 * total or (urls >= 3 and content_chars < 0.5 * total):
        return skip("index_like", "footnotes, references or links")
    if (
        by_sec.get("non_knowledge", 0) >= 0.6 * total
        or re.search(
            r"(?i)\b(licen[cs]ed under|creative commons|gnu free documentation|permission is granted to copy|all rights reserved|©)",
            all_text,
        )
        and content_chars < 800
    ):
        return skip("non_knowledge", "credits, licence or front matter")
    qs = sum(1 for b in content if clean_inline(b.raw).rstrip().endswith("?") or _PROBLEM_NO_RE.match(b.raw))
    has_solution = any(_SOLUTION_RE.match(b.raw) for b in body) or re.search(r"(?i)\b(solution|answer)s?\s*:", all_text)
    if (by_sec.get("exercises", 0) >= 0.5 * total or (qs >= 3 and qs >= 0.5 * max(1, len(content)))) and not has_solution:
        return skip("pedagogy", "exercises or review questions without answers")
    entries = sum(1 for b in content if b.section == "glossary" and _GLOSSARY_ENTRY_RE.match(b.raw.strip()))
    if entries:  # a glossary, however short: each entry is one term's whole definition
        concept_types = [t for t in skill.chunk_types if skill.form(t) == "concept_qa"]
        return Triage(keep=True, detail=f"a glossary of {entries} entries", supports=dict.fromkeys(concept_types, entries))
    if content_chars < skill.coverage.min_chunk_chars:
        return skip("low_information", f"{content_chars} chars of content (min {skill.coverage.min_chunk_chars})")
    n_sent = sum(
        len(split_sentences(b.raw)) for b in content if b.kind in ("para", "item") and len(_words(clean_inline(b.raw))) >= 8
    )
    if n_sent < 2 and content_chars < 600 and not any(b.kind in ("table", "math") for b in content):
        return skip("low_information", "no full sentences (a title page or a list of names)")
    return Triage(keep=True, detail=f"{content_chars} chars of content")
