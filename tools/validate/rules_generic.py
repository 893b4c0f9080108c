"""The generic filter-rule kinds every skill may use.

``length``
    ``fields``, ``min_chars``, ``max_chars``; for list fields also ``min_items``, ``max_items``
    (string bounds then apply to each item).
``forbid_regex``
    ``fields``, ``patterns`` (Python regexes), ``ignore_case`` (default true): reject when any
    pattern matches. Used for source-anchored phrasing ("according to the text", "in this
    section"), citation-led questions ("Section 3.2", "Figure 4"), placeholder questions and
    meta answers.
``require_regex``
    ``fields``, ``pattern``, ``ignore_case``: reject when the pattern does not match.
``answer_repeats_question``
    ``question_field``, ``answer_field``, ``min_novelty`` (default 0.25): reject an answer
    whose share of new content words (not in the question) is below ``min_novelty``.
``evidence_in_chunk``
    ``field`` (default ``evidence``): every evidence span must occur in the chunk text
    (whitespace- and case-insensitively). Skipped when no chunk text is given.
"""

from __future__ import annotations

import re
from typing import Any

from prepbench.tools.errors import SkillError
from prepbench.tools.validate.rules import PASS, RuleFn, Verdict, register_rule_kind
from prepbench.tools.validate.text import STOPWORDS, as_texts, choice_parts, normalize_text, squash, words


def _fields(spec: dict, name: str) -> list[str]:
    fields = spec.get("fields", spec.get("field"))
    if isinstance(fields, str):
        fields = [fields]
    if not fields or not all(isinstance(f, str) for f in fields):
        raise SkillError(f"filters.yaml: rule '{name}': field 'fields' must be a list of sample field names")
    return fields


@register_rule_kind("length")
def _length_rule(spec: dict, name: str) -> RuleFn:
    fields = _fields(spec, name)
    lo = spec.get("min_chars")
    hi = spec.get("max_chars")
    lo_items = spec.get("min_items")
    hi_items = spec.get("max_items")
    for key, v in (("min_chars", lo), ("max_chars", hi), ("min_items", lo_items), ("max_items", hi_items)):
        if v is not None and (not isinstance(v, int) or v < 0):
            raise SkillError(f"filters.yaml: rule '{name}': field '{key}' must be a non-negative integer")
    if lo is not None and hi is not None and lo > hi:
        raise SkillError(f"filters.yaml: rule '{name}': field 'min_chars' exceeds 'max_chars'")

    def check(sample: dict, chunk_text: str | None) -> Verdict:
        for f in fields:
            if f not in sample:
                continue
            value = sample[f]
            if isinstance(value, list):
                if lo_items is not None and len(value) < lo_items:
                    return Verdict(False, name, f"{f} has {len(value)} items (min {lo_items})")
                if hi_items is not None and len(value) > hi_items:
                    return Verdict(False, name, f"{f} has {len(value)} items (max {hi_items})")
            for i, text in enumerate(as_texts(value)):
                n = len(text.strip())
                label = f if not isinstance(value, list) else f"{f}[{i}]"
                if lo is not None and n < lo:
                    return Verdict(False, name, f"{label} is {n} chars (min {lo})")
                if hi is not None and n > hi:
                    return Verdict(False, name, f"{label} is {n} chars (max {hi})")
        return PASS

    return check


def _compile(pattern: Any, name: str, ignore_case: bool) -> re.Pattern:
    if not isinstance(pattern, str):
        raise SkillError(f"filters.yaml: rule '{name}': field 'patterns' must hold strings")
    try:
        return re.compile(pattern, re.I if ignore_case else 0)
    except re.error as e:
        raise SkillError(f"filters.yaml: rule '{name}': field 'patterns': invalid regex {pattern!r}: {e}") from None


@register_rule_kind("forbid_regex")
def _forbid_rule(spec: dict, name: str) -> RuleFn:
    fields = _fields(spec, name)
    pats = spec.get("patterns")
    if isinstance(pats, str):
        pats = [pats]
    if not pats:
        raise SkillError(f"filters.yaml: rule '{name}': field 'patterns' is required")
    compiled = [_compile(p, name, spec.get("ignore_case", True)) for p in pats]

    def check(sample: dict, chunk_text: str | None) -> Verdict:
        for f in fields:
            for text in as_texts(sample.get(f)):
                for rx in compiled:
                    m = rx.search(text)
                    if m:
                        return Verdict(False, name, f"{f} contains {m.group(0)!r}")
        return PASS

    return check


@register_rule_kind("require_regex")
def _require_rule(spec: dict, name: str) -> RuleFn:
    fields = _fields(spec, name)
    pat = spec.get("pattern")
    if not pat:
        raise SkillError(f"filters.yaml: rule '{name}': field 'pattern' is required")
    rx = _compile(pat, name, spec.get("ignore_case", True))

    def check(sample: dict, chunk_text: str | None) -> Verdict:
        for f in fields:
            if f not in sample:
                continue
            texts = as_texts(sample.get(f))
            if not any(rx.search(t) for t in texts):
                return Verdict(False, name, f"{f} does not match {pat!r}")
        return PASS

    return check


@register_rule_kind("answer_repeats_question")
def _repeat_rule(spec: dict, name: str) -> RuleFn:
    qf = spec.get("question_field", "question")
    af = spec.get("answer_field", "answer")
    min_novelty = float(spec.get("min_novelty", 0.25))
    if not 0 <= min_novelty <= 1:
        raise SkillError(f"filters.yaml: rule '{name}': field 'min_novelty' must be in [0, 1]")

    def check(sample: dict, chunk_text: str | None) -> Verdict:
        q, a = sample.get(qf), sample.get(af)
        if not isinstance(q, str) or not isinstance(a, str):
            return PASS
        if normalize_text(q) == normalize_text(a):
            return Verdict(False, name, "answer is the question")
        choice = choice_parts(q)
        if choice is not None:
            q = choice[0]  # a multiple-choice answer repeats its option: what it adds is said to the stem
        qw = {w for w in words(q) if w not in STOPWORDS}
        aw = [w for w in words(a) if w not in STOPWORDS]
        if not aw:
            return Verdict(False, name, "answer has no content words")
        novelty = sum(1 for w in aw if w not in qw) / len(aw)
        if novelty < min_novelty:
            return Verdict(False, name, f"answer adds {novelty:.0%} new content words (min {min_novelty:.0%})")
        return PASS

    return check


@register_rule_kind("evidence_in_chunk")
def _evidence_rule(spec: dict, name: str) -> RuleFn:
    field = spec.get("field", "evidence")

    def check(sample: dict, chunk_text: str | None) -> Verdict:
        if chunk_text is None:
            return PASS
        if field not in sample:
            return PASS  # a record with no evidence field (plain question/answer): the schema says if it needs one
        hay = squash(chunk_text)
        spans = as_texts(sample.get(field))
        if not spans:
            return Verdict(False, name, f"{field} is empty")
        for span in spans:
            if squash(span) not in hay:
                return Verdict(False, name, f"{field} span not found in the chunk: {span[:60]!r}")
        return PASS

    return check
