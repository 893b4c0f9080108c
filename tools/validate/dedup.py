"""Duplicate detection against every accepted sample of a run: exact, near (MinHash LSH) and semantic.

Exact duplicates compare the normalised text of the skill's ``dedup.fields``; near duplicates
are found by MinHash LSH (datasketch) over word shingles, with the skill's Jaccard threshold
(Broder 1997, "On the resemblance and containment of documents"). Semantic duplicates
(``dedup.semantic_threshold``, off unless set) are paraphrases MinHash misses: the cosine of the
text's all-MiniLM-L6-v2 embedding with an accepted sample's at or above the threshold, as in
DataFlow's semantic dedup and SemDeDup (Abbas et al. 2023, arXiv 2303.09540, §3). Rule names
``exact_duplicate``, ``near_duplicate`` and ``semantic_duplicate``.

Every check is against the samples accepted before it, in the ledger's commit order, so a resumed
run that registers its committed samples again in canonical order decides the same. The
embeddings go through the embedding cache shared with DAS (:class:`~prepbench.tools.embed.EmbeddingCache`),
so a resume compares the very vectors the first run compared.
"""

from __future__ import annotations

from typing import Any, Callable, Iterable, Sequence

import numpy as np

from prepbench.tools.errors import PrepbenchError
from prepbench.tools.validate.rules import PASS, Verdict
from prepbench.tools.validate.text import as_texts, normalize_text, words


class Deduplicator:
    """The accepted samples seen so far, by exact text, MinHash and (optionally) embedding.

    Args:
        spec: the skill's ``filters.dedup`` (fields, exact, near_threshold, num_perm, shingle_words,
            semantic_threshold).
        embed: ``texts -> float32 (n, dim)`` for the semantic check (default: all-MiniLM-L6-v2
            through the shared embedding cache, loaded on first use).
    """

    def __init__(self, spec: Any, embed: Callable[[Sequence[str]], np.ndarray] | None = None):
        self.spec = spec
        self._exact: dict[str, str] = {}  # normalised text -> key of the first sample with it
        self._lsh_index = None  # made on first use: datasketch imports scipy (a second of a run's start)
        self._hashes: dict[str, Any] = {}
        self._perms = None  # MinHash permutations, drawn once (datasketch redraws them per MinHash)
        self._last_minhash: tuple[str, Any] | None = None  # (text, MinHash) of the last sample hashed
        self._n = 0
        self._embed = embed
        self._vecs = np.zeros((0, 0), np.float32)  # unit vectors of the accepted samples, rows [0, len(_vec_keys))
        self._vec_keys: list[str] = []
        self._memo: dict[str, np.ndarray] = {}  # vectors of the current chunk's texts (prefetch, check)

    @property
    def _lsh(self):
        """The MinHash LSH index of the accepted samples. It retrieves candidates at a looser
        threshold; the estimated Jaccard of each is then compared with the skill's threshold
        (fewer LSH misses near it)."""
        if self._lsh_index is None:
            from datasketch import MinHashLSH

            self._lsh_index = MinHashLSH(threshold=max(0.3, self.spec.near_threshold - 0.2), num_perm=self.spec.num_perm)
        return self._lsh_index

    def warm(self) -> None:
        """Make the MinHash index and the permutations now (imports datasketch), not at the first check."""
        self._lsh  # noqa: B018 - the property makes the index
        if self._perms is None:
            self._minhash("")

    def text(self, sample: dict) -> str:
        """The text compared for duplicates: the ``dedup.fields`` of ``sample``, joined."""
        return " ".join(t for f in self.spec.fields for t in as_texts(sample.get(f)))

    def _minhash(self, text: str):
        # a sample's MinHash is asked twice: checked against the index, then added to it
        last = self._last_minhash
        if last is not None and last[0] == text:
            return last[1]
        m = self._make_minhash(text)
        self._last_minhash = (text, m)
        return m

    def _make_minhash(self, text: str):
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

    def match(self, sample: dict) -> tuple[str, str, float] | None:
        """The registered sample ``sample`` duplicates: ``("exact", key, 1.0)``, ``("near", key,
        estimated Jaccard)``, or None (registers nothing)."""
        text = self.text(sample)
        if self.spec.exact and normalize_text(text) in self._exact:
            return "exact", self._exact[normalize_text(text)], 1.0
        m = self._minhash(text)
        for key in sorted(self._lsh.query(m)):
            sim = m.jaccard(self._hashes[key])
            if sim >= self.spec.near_threshold:
                return "near", key, sim
        return None

    def check(self, sample: dict) -> Verdict:
        """PASS, or ``exact_duplicate`` / ``near_duplicate`` / ``semantic_duplicate`` of an accepted
        sample (registers nothing)."""
        hit = self.match(sample)
        if hit is not None:
            kind, key, sim = hit
            if kind == "exact":
                return Verdict(False, "exact_duplicate", f"same {'+'.join(self.spec.fields)} as an accepted sample")
            return Verdict(False, "near_duplicate", f"near-duplicate (Jaccard ~{sim:.2f}) of accepted sample {key}")
        if self.spec.semantic_threshold is not None and self._vec_keys:
            v = self._vector(self.text(sample))
            sims = self._vecs[: len(self._vec_keys)] @ v
            j = int(np.argmax(sims))
            if sims[j] >= self.spec.semantic_threshold:
                return Verdict(
                    False,
                    "semantic_duplicate",
                    f"semantic duplicate (cosine {sims[j]:.3f}) of accepted sample {self._vec_keys[j]}",
                )
        return PASS

    def _vectors(self, texts: Sequence[str]) -> np.ndarray:
        """Unit-length embeddings of ``texts`` (float32 rows)."""
        if self._embed is None:
            from prepbench.tools.embed import EmbeddingCache, embed_texts, make_encoder

            try:
                enc, cache = make_encoder("minilm"), EmbeddingCache()
            except PrepbenchError as e:
                raise PrepbenchError(f"filters.yaml dedup.semantic_threshold needs an embedding model: {e}") from None
            self._embed = lambda t: embed_texts(t, enc, cache, progress=False)[0]
        v = np.asarray(self._embed(list(texts)), np.float32)
        return v / np.maximum(np.linalg.norm(v, axis=1, keepdims=True), 1e-12)

    def _vector(self, text: str) -> np.ndarray:
        if text not in self._memo:
            self._memo[text] = self._vectors([text])[0]
        return self._memo[text]

    def prefetch(self, samples: Sequence[dict]) -> None:
        """Embed the texts of a chunk's candidates in one batch (one encoder call instead of one
        per candidate); the vectors go through the cache, so a resume reads the same ones."""
        self._memo = {}
        if self.spec.semantic_threshold is not None and samples:
            texts = list(dict.fromkeys(self.text(s) for s in samples))
            self._memo = dict(zip(texts, self._vectors(texts)))

    def _add_vector(self, key: str, v: np.ndarray) -> None:
        n = len(self._vec_keys)
        if n == len(self._vecs):  # grow by doubling: appending stays amortised O(dim)
            grown = np.zeros((max(64, 2 * n), len(v)), np.float32)
            if n:
                grown[:n] = self._vecs[:n]
            self._vecs = grown
        self._vecs[n] = v
        self._vec_keys.append(key)

    def add(self, sample: dict, key: str | None = None, vector: np.ndarray | None = None) -> None:
        """Register an accepted sample under ``key`` (its sample id; a counter when None);
        ``vector``: its embedding when already computed (:meth:`add_many`)."""
        text = self.text(sample)
        self._n += 1
        key = key or f"s{self._n}"
        self._exact.setdefault(normalize_text(text), key)
        if key in self._hashes:  # a key inserted twice keeps its first MinHash
            return
        m = self._minhash(text)
        self._hashes[key] = m
        self._lsh.insert(key, m)
        if self.spec.semantic_threshold is not None:
            self._add_vector(key, vector if vector is not None else self._vector(text))

    def add_many(self, samples: Iterable[tuple[str, dict]]) -> None:
        """Register accepted samples ``(key, sample)`` in order; their embeddings in one batch (resume)."""
        items = list(samples)
        vecs = self._vectors([self.text(s) for _, s in items]) if self.spec.semantic_threshold is not None and items else None
        for i, (key, s) in enumerate(items):
            self.add(s, key, None if vecs is None else vecs[i])
