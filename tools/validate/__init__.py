"""Validation of candidate samples: JSON Schema, the skill's filter rules, and dedup.

Rule kinds (``kind:`` in ``filters.yaml``), each rule also takes ``name`` (stored with
every rejection) and optional ``sample_types`` (restrict the rule to those types):

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

Duplicates (``dedup:`` in ``filters.yaml``): exact duplicates of normalised text, and near
duplicates by MinHash LSH (datasketch) over word shingles with the skill's Jaccard
threshold; rule names ``exact_duplicate`` and ``near_duplicate``.

New rule kinds register with :func:`register_rule_kind`.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass
from typing import Any, Callable, Iterable

import jsonschema

from prepbench.tools.errors import SkillError

_WORD_RE = re.compile(r"[a-z0-9]+(?:'[a-z]+)?")
STOPWORDS = frozenset(
    "a an the of to in on for and or is are was were be been being by with as at from that this these those "
    "it its what which who whom how why when where does do did can could should would will may might".split()
)


@dataclass
class Verdict:
    """Result of checking one sample: ``ok``, else the ``rule`` name and a one-line ``detail``."""

    ok: bool
    rule: str | None = None
    detail: str = ""


PASS = Verdict(True)

RuleFn = Callable[[dict, "str | None"], "Verdict"]
RULE_KINDS: dict[str, Callable[[dict, str], RuleFn]] = {}


def register_rule_kind(kind: str):
    """Decorator: register ``factory(spec: dict, name: str) -> check(sample, chunk_text) -> Verdict``."""

    def deco(factory):
        RULE_KINDS[kind] = factory
        return factory

    return deco


def normalize_text(text: str) -> str:
    """Lowercase, NFKC, punctuation dropped, whitespace collapsed (for exact dedup)."""
    text = unicodedata.normalize("NFKC", text).lower()
    return " ".join(_WORD_RE.findall(text))


def words(text: str) -> list[str]:
    """Lowercase word tokens."""
    return _WORD_RE.findall(unicodedata.normalize("NFKC", text).lower())


def _as_texts(value: Any) -> list[str]:
    if value is None:
        return []
    if isinstance(value, str):
        return [value]
    if isinstance(value, list):
        return [v if isinstance(v, str) else str(v) for v in value]
    return [str(value)]


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
            for i, text in enumerate(_as_texts(value)):
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
            for text in _as_texts(sample.get(f)):
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
            texts = _as_texts(sample.get(f))
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
        qw = {w for w in words(q) if w not in STOPWORDS}
        aw = [w for w in words(a) if w not in STOPWORDS]
        if not aw:
            return Verdict(False, name, "answer has no content words")
        novelty = sum(1 for w in aw if w not in qw) / len(aw)
        if novelty < min_novelty:
            return Verdict(False, name, f"answer adds {novelty:.0%} new content words (min {min_novelty:.0%})")
        return PASS

    return check


def _squash(text: str) -> str:
    return re.sub(r"\s+", " ", unicodedata.normalize("NFKC", text)).strip().lower()


@register_rule_kind("evidence_in_chunk")
def _evidence_rule(spec: dict, name: str) -> RuleFn:
    field = spec.get("field", "evidence")

    def check(sample: dict, chunk_text: str | None) -> Verdict:
        if chunk_text is None:
            return PASS
        hay = _squash(chunk_text)
        spans = _as_texts(sample.get(field))
        if not spans:
            return Verdict(False, name, f"{field} is empty")
        for span in spans:
            if _squash(span) not in hay:
                return Verdict(False, name, f"{field} span not found in the chunk: {span[:60]!r}")
        return PASS

    return check


@dataclass
class Rule:
    name: str
    kind: str
    sample_types: set[str] | None
    check: RuleFn


def build_rules(skill) -> list[Rule]:
    """Compile the skill's ``filters.yaml`` rules.

    Raises:
        SkillError: unknown rule kind, unknown sample type, bad regex or bound.
    """
    rules: list[Rule] = []
    ffile = skill.path / "filters.yaml"
    for spec in skill.filters.rules:
        factory = RULE_KINDS.get(spec.kind)
        if factory is None:
            raise SkillError(
                f"{ffile}: rule '{spec.name}': field 'kind': unknown kind '{spec.kind}' (known: {', '.join(sorted(RULE_KINDS))})"
            )
        if spec.sample_types:
            unknown = [t for t in spec.sample_types if t not in skill.sample_types]
            if unknown:
                raise SkillError(f"{ffile}: rule '{spec.name}': field 'sample_types': unknown sample type {unknown[0]!r}")
        try:
            fn = factory(spec.model_dump(), spec.name)
        except SkillError as e:
            raise SkillError(f"{ffile}: {str(e).removeprefix('filters.yaml: ')}") from None
        rules.append(Rule(spec.name, spec.kind, set(spec.sample_types) if spec.sample_types else None, fn))
    return rules


class SampleValidator:
    """Checks candidate samples against a skill: schema, rules, then duplicates.

    Usage: ``v.check(sample, chunk_text)`` returns a :class:`Verdict`; after a sample is
    accepted call ``v.add(sample)`` so later duplicates are caught. Re-adding the accepted
    samples of a resumed run in their original order rebuilds the same dedup state.
    """

    def __init__(self, skill, dedup: bool = True):
        self.skill = skill
        self.rules = build_rules(skill)
        self.validators = {
            t: jsonschema.Draft202012Validator(s) for t, s in skill.schemas.items()
        }
        self.dedup_enabled = dedup
        d = skill.filters.dedup
        self.dedup = d
        self._exact: set[str] = set()
        # LSH retrieves candidates at a looser threshold; the estimated Jaccard of each
        # candidate is then compared with the skill's threshold (fewer LSH misses near it).
        self._lsh = None
        if dedup:
            from datasketch import MinHashLSH  # imported only when dedup runs (CLI start-up)

            self._lsh = MinHashLSH(threshold=max(0.3, d.near_threshold - 0.2), num_perm=d.num_perm)
        self._hashes: dict[str, Any] = {}
        self._perms = None  # MinHash permutations, drawn once (datasketch redraws them per MinHash)
        self._n = 0

    # -- checks ---------------------------------------------------------------------
    def check_schema(self, sample: dict) -> Verdict:
        t = sample.get("sample_type")
        if t not in self.validators:
            return Verdict(False, "schema", f"unknown sample_type {t!r}")
        err = next(iter(sorted(self.validators[t].iter_errors(sample), key=lambda e: list(e.path))), None)
        if err is not None:
            where = "/".join(str(p) for p in err.absolute_path) or "(root)"
            return Verdict(False, "schema", f"{where}: {err.message[:200]}")
        return PASS

    def check_rules(self, sample: dict, chunk_text: str | None) -> Verdict:
        t = sample.get("sample_type")
        for rule in self.rules:
            if rule.sample_types is not None and t not in rule.sample_types:
                continue
            v = rule.check(sample, chunk_text)
            if not v.ok:
                return v
        return PASS

    def dedup_text(self, sample: dict) -> str:
        return " ".join(t for f in self.dedup.fields for t in _as_texts(sample.get(f)))

    def _minhash(self, text: str):
        toks = words(text)
        k = self.dedup.shingle_words
        shingles = {" ".join(toks[i : i + k]) for i in range(max(1, len(toks) - k + 1))} or {""}
        from datasketch import MinHash

        if self._perms is None:
            m = MinHash(num_perm=self.dedup.num_perm, seed=1)
            self._perms = (m.permutations, m.scheme)
        else:
            m = MinHash(num_perm=self.dedup.num_perm, seed=1, permutations=self._perms[0], scheme=self._perms[1])
        m.update_batch([s.encode("utf-8") for s in sorted(shingles)])
        return m

    def check_duplicate(self, sample: dict) -> Verdict:
        if not self.dedup_enabled:
            return PASS
        text = self.dedup_text(sample)
        norm = normalize_text(text)
        if self.dedup.exact and norm in self._exact:
            return Verdict(False, "exact_duplicate", f"same {'+'.join(self.dedup.fields)} as an accepted sample")
        m = self._minhash(text)
        for key in sorted(self._lsh.query(m)):
            sim = m.jaccard(self._hashes[key])
            if sim >= self.dedup.near_threshold:
                return Verdict(False, "near_duplicate", f"near-duplicate (Jaccard ~{sim:.2f}) of accepted sample {key}")
        return PASS

    def check(self, sample: dict, chunk_text: str | None) -> Verdict:
        """Schema, then rules, then duplicates; first failure wins."""
        for step in (lambda: self.check_schema(sample), lambda: self.check_rules(sample, chunk_text), lambda: self.check_duplicate(sample)):
            v = step()
            if not v.ok:
                return v
        return PASS

    def add(self, sample: dict, key: str | None = None) -> None:
        """Register an accepted sample for duplicate detection."""
        if not self.dedup_enabled:
            return
        text = self.dedup_text(sample)
        self._exact.add(normalize_text(text))
        self._n += 1
        key = key or f"s{self._n}"
        if key in self._hashes:  # a key inserted twice keeps its first MinHash
            return
        m = self._minhash(text)
        self._hashes[key] = m
        self._lsh.insert(key, m)

    def add_many(self, samples: Iterable[tuple[str, dict]]) -> None:
        for key, s in samples:
            self.add(s, key)


# domain rule kinds (formula_result, boxed_answer, option_letter, units_consistent, quoted_in)
from prepbench.tools.validate import rules_domain  # noqa: E402,F401
