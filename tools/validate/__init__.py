"""The gate (:mod:`.gate`): JSON Schema, the skill's filter rules, then duplicates, for every agent family.

Modules: ``gate`` (the entry point, :class:`Gate`), ``rules`` (registry, verdicts, compiling
``filters.yaml``), ``rules_generic`` (the kinds below), ``rules_domain`` (domain kinds, found
through the ``prepbench.rule_kinds`` entry-point group), ``dedup``, ``text``.

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

New rule kinds register with :func:`register_rule_kind`, or from another package through an
entry point in the ``prepbench.rule_kinds`` group (name = kind, value = the factory).
"""

from prepbench.tools.validate import rules_generic  # noqa: F401  (registers the generic kinds)
from prepbench.tools.validate.gate import Candidate, Gate
from prepbench.tools.validate.rules import PASS, RULE_KINDS, Rule, RuleFn, Verdict, build_rules, known_kinds, register_rule_kind, rule_kind
from prepbench.tools.validate.text import normalize_text, words

__all__ = [
    "PASS", "RULE_KINDS", "Candidate", "Gate", "Rule", "RuleFn", "Verdict", "build_rules", "known_kinds",
    "normalize_text", "register_rule_kind", "rule_kind", "words",
]
