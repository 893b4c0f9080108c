"""The gate (:mod:`.gate`): JSON Schema, the skill's filter rules, then duplicates, for every agent family.

Modules: ``gate`` (the entry point, :class:`Gate`), ``rules`` (registry, verdicts, compiling
``filters.yaml``), ``rules_generic`` (the kinds below), ``rules_domain`` (domain kinds, found
through the ``prepbench.rule_kinds`` entry-point group), ``rules_language`` (with ``language``, ``referents``, ``answering`` and ``symbols``: the parsed checks), ``dedup``, ``text``.

Every rule in ``filters.yaml`` has a ``name`` (stored with every rejection), a ``kind`` (the
generic kinds are documented in :mod:`.rules_generic`, the domain kinds in :mod:`.rules_domain`)
and optional ``sample_types`` (restrict the rule to those types).

Duplicates (``dedup:`` in ``filters.yaml``): exact duplicates of normalised text, near
duplicates by MinHash LSH (datasketch) over word shingles with the skill's Jaccard
threshold, and (``semantic_threshold``, off unless set) paraphrases by embedding cosine; rule
names ``exact_duplicate``, ``near_duplicate`` and ``semantic_duplicate``.

New rule kinds register with :func:`register_rule_kind`, or from another package through an
entry point in the ``prepbench.rule_kinds`` group (name = kind, value = the factory).
"""

from prepbench.tools.validate import rules_generic, rules_language  # noqa: F401  (register the generic and language kinds)
from prepbench.tools.validate.gate import Candidate, Gate
from prepbench.tools.validate.rules import (
    PASS,
    RULE_KINDS,
    Rule,
    RuleFn,
    Verdict,
    build_rules,
    known_kinds,
    register_rule_kind,
    rule_kind,
)
from prepbench.tools.validate.text import normalize_text, words

__all__ = [
    "PASS",
    "RULE_KINDS",
    "Candidate",
    "Gate",
    "Rule",
    "RuleFn",
    "Verdict",
    "build_rules",
    "known_kinds",
    "normalize_text",
    "register_rule_kind",
    "rule_kind",
    "words",
]
