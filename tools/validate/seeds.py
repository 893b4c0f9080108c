"""The seed-aware gate step of the generation modes: a new instance must not copy a seed or a
benchmark test item.

- ``seed_duplicate``: the candidate's dedup text (the skill's ``dedup.fields``) is an exact or
  MinHash near-duplicate (the skill's Jaccard threshold) of a seed record: instance generation
  asked for a new instance, and a copy of a demonstration is not one.
- ``ngram_overlap``: the candidate shares an n-gram with a benchmark's test item (the
  lm-evaluation-harness decontamination rule, 13 words by default), answered by a matcher
  (``text -> description of the test item, or None``): the n-gram index of the decontamination
  core, :meth:`prepbench.tools.decontaminate.Decontaminator.ngram_match`. Unlike ``run
  --decontaminate``, which flags accepted samples and leaves them out of the export, a generation
  slot's sample is rejected here, so the slot is asked again.

Both depend only on fixed inputs (the seed file, the test files), so the verdicts are the same
on every resume.
"""

from __future__ import annotations

from typing import Callable, Iterable

from prepbench.tools.validate.dedup import Deduplicator
from prepbench.tools.validate.rules import PASS, Verdict
from prepbench.tools.validate.text import as_texts

#: ``text -> "<benchmark> <test item>"`` when ``text`` overlaps a benchmark's test item, else None
ContaminationMatcher = Callable[[str], "str | None"]


class SeedCheck:
    """Rejects a candidate that near-duplicates a seed or overlaps a benchmark test item.

    Args:
        spec: the skill's ``filters.dedup`` (fields, exact, near_threshold, num_perm, shingle_words).
        seeds: ``(seed_id, record)`` with the dedup fields (``instruction``, ``response``); None or
            empty: no seed rule.
        contamination: the n-gram matcher, or None: no ``ngram_overlap`` rule.
    """

    def __init__(self, spec, seeds: Iterable[tuple[str, dict]] | None = None, contamination: ContaminationMatcher | None = None):
        self._seeds: Deduplicator | None = None
        self.n_seeds = 0
        for key, record in seeds or ():
            if self._seeds is None:  # exact and MinHash only: embedding every seed is not worth it
                self._seeds = Deduplicator(spec.model_copy(update={"semantic_threshold": None}))
            self._seeds.add(record, key)
            self.n_seeds += 1
        self.contamination = contamination
        self._fields = list(spec.fields)

    def check(self, sample: dict) -> Verdict:
        """PASS, ``seed_duplicate`` (names the seed) or ``ngram_overlap`` (names the test item)."""
        if self._seeds is not None:
            hit = self._seeds.match(sample)
            if hit is not None:
                kind, key, sim = hit
                how = "a copy" if kind == "exact" else f"a near-duplicate (Jaccard ~{sim:.2f})"
                return Verdict(False, "seed_duplicate", f"{how} of seed {key}")
        if self.contamination is not None:
            text = " ".join(t for f in self._fields for t in as_texts(sample.get(f)))
            item = self.contamination(text)
            if item:
                return Verdict(False, "ngram_overlap", f"shares an n-gram with {item}")
        return PASS
