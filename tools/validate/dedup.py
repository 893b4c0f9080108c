"""Duplicate detection against every accepted sample of a run: exact and near (MinHash LSH).

Exact duplicates compare the normalised text of the skill's ``dedup.fields``; near duplicates
are found by MinHash LSH (datasketch) over word shingles, with the skill's Jaccard threshold
(Broder 1997, "On the resemblance and containment of documents"). Rule names
``exact_duplicate`` and ``near_duplicate``.
"""

from __future__ import annotations

from typing import Any

from prepbench.tools.validate.rules import PASS, Verdict
from prepbench.tools.validate.text import as_texts, normalize_text, words


class Deduplicator:
    """The accepted samples seen so far, by exact text and MinHash.

    Args:
        spec: the skill's ``filters.dedup`` (fields, exact, near_threshold, num_perm, shingle_words).
    """

    def __init__(self, spec: Any):
        from datasketch import MinHashLSH  # imported only when dedup runs (CLI start-up)

        self.spec = spec
        self._exact: set[str] = set()
        # LSH retrieves candidates at a looser threshold; the estimated Jaccard of each
        # candidate is then compared with the skill's threshold (fewer LSH misses near it).
        self._lsh = MinHashLSH(threshold=max(0.3, spec.near_threshold - 0.2), num_perm=spec.num_perm)
        self._hashes: dict[str, Any] = {}
        self._perms = None  # MinHash permutations, drawn once (datasketch redraws them per MinHash)
        self._n = 0

    def text(self, sample: dict) -> str:
        """The text compared for duplicates: the ``dedup.fields`` of ``sample``, joined."""
        return " ".join(t for f in self.spec.fields for t in as_texts(sample.get(f)))

    def _minhash(self, text: str):
        from datasketch import MinHash

        toks = words(text)
        k = self.spec.shingle_words
        shingles = {" ".join(toks[i : i + k]) for i in range(max(1, len(toks) - k + 1))} or {""}
        if self._perms is None:
            m = MinHash(num_perm=self.spec.num_perm, seed=1)
            self._perms = (m.permutations, m.scheme)
        else:
            m = MinHash(num_perm=self.spec.num_perm, seed=1, permutations=self._perms[0], scheme=self._perms[1])
        m.update_batch([s.encode("utf-8") for s in sorted(shingles)])
        return m

    def check(self, sample: dict) -> Verdict:
        """PASS, or ``exact_duplicate`` / ``near_duplicate`` of an accepted sample (registers nothing)."""
        text = self.text(sample)
        if self.spec.exact and normalize_text(text) in self._exact:
            return Verdict(False, "exact_duplicate", f"same {'+'.join(self.spec.fields)} as an accepted sample")
        m = self._minhash(text)
        for key in sorted(self._lsh.query(m)):
            sim = m.jaccard(self._hashes[key])
            if sim >= self.spec.near_threshold:
                return Verdict(False, "near_duplicate", f"near-duplicate (Jaccard ~{sim:.2f}) of accepted sample {key}")
        return PASS

    def add(self, sample: dict, key: str | None = None) -> None:
        """Register an accepted sample under ``key`` (its sample id; a counter when None)."""
        text = self.text(sample)
        self._exact.add(normalize_text(text))
        self._n += 1
        key = key or f"s{self._n}"
        if key in self._hashes:  # a key inserted twice keeps its first MinHash
            return
        m = self._minhash(text)
        self._hashes[key] = m
        self._lsh.insert(key, m)
