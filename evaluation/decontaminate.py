"""Benchmark decontamination: flag samples that copy or rephrase a benchmark's test items.

Two rules, each reported with the matching test item:

- ``ngram_overlap``: a sample shares an n-gram (default 13 words) of normalised text with a
  test item. This is the rule lm-evaluation-harness documents for decontamination (13-grams;
  GPT-3, Brown et al. 2020, appendix C, used 8- to 13-grams); text is normalised the way the
  harness's janitor does: lower case, punctuation removed, split on white space.
- ``embedding_similarity``: the sample's question and a test item's question have a cosine
  similarity of at least a threshold (all-MiniLM-L6-v2 by default). Rephrased test items escape
  n-grams; embedding retrieval catches them (Yang et al. 2023, "Rethinking Benchmark and
  Contamination for Language Models with Rephrased Samples", arXiv 2311.04850, §3).

The n-gram index of a benchmark's test file is built once and cached beside the embedding
cache, keyed by the file's SHA-256 and n; the item embeddings go through the shared
:class:`~prepbench.tools.embed.EmbeddingCache`.
"""

from __future__ import annotations

import hashlib
import re
import time
import unicodedata
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from prepbench.tools.errors import PrepbenchError

DEFAULT_NGRAM = 13
DEFAULT_EMBED_THRESHOLD = 0.9
#: record fields read as a test item's question, first present wins
QUESTION_FIELDS = ("question", "query", "problem", "input", "text", "instruction", "Question")

_NON_WORD = re.compile(r"[^\w]+", re.UNICODE)


def normalise(text: str) -> list[str]:
    """Words of ``text`` after the harness's normalisation: NFKC, lower case, punctuation removed."""
    return _NON_WORD.sub(" ", unicodedata.normalize("NFKC", text).lower()).split()


def ngram_hashes(text: str, n: int) -> np.ndarray:
    """64-bit hashes (BLAKE2b) of the word n-grams of ``text``, uint64, one per n-gram (may be empty)."""
    words = normalise(text)
    grams = (" ".join(words[i : i + n]) for i in range(len(words) - n + 1))
    return np.fromiter((int.from_bytes(hashlib.blake2b(g.encode(), digest_size=8).digest(), "little") for g in grams), np.uint64)


@dataclass
class BenchmarkItem:
    """One test item of a benchmark: ``id`` (``file:line``), its whole ``text`` and its ``question``."""

    id: str
    text: str
    question: str


def _flatten(value: Any) -> str:
    if isinstance(value, str):
        return value
    if isinstance(value, (list, tuple)):
        return " ".join(_flatten(v) for v in value)
    if isinstance(value, dict):
        return " ".join(_flatten(v) for v in value.values())
    return ""


def read_benchmark_items(path: Path) -> list[BenchmarkItem]:
    """The records of a benchmark's JSONL test file as :class:`BenchmarkItem` objects.

    Raises:
        PrepbenchError: a missing file or a line that is not JSON (names file and line).
    """
    if not path.is_file():
        raise PrepbenchError(f"{path}: benchmark test file not found (set --data-dir or PREPBENCH_DATASETS)")
    from prepbench.evaluation.readers import iter_json_records

    items = []
    for line_no, rec in iter_json_records(path):
        if not isinstance(rec, dict):
            raise PrepbenchError(f"{path}:{line_no}: expected a JSON object")
        question = next((rec[k] for k in QUESTION_FIELDS if isinstance(rec.get(k), str)), None) or _flatten(rec)
        items.append(BenchmarkItem(f"{path.name}:{line_no}", _flatten(rec), question))
    return items


@dataclass
class NgramIndex:
    """Sorted n-gram hashes of a benchmark's test items and the item each came from.

    Attributes:
        n: the n-gram length (words).
        hashes: uint64, sorted; owners: int32, the item index of each hash.
    """

    n: int
    hashes: np.ndarray
    owners: np.ndarray

    @classmethod
    def build(cls, items: Sequence[BenchmarkItem], n: int) -> "NgramIndex":
        """Index every n-gram of every item's text."""
        parts = [ngram_hashes(it.text, n) for it in items]
        hashes = np.concatenate(parts) if parts else np.zeros(0, np.uint64)
        owners = np.concatenate([np.full(len(p), i, np.int32) for i, p in enumerate(parts)]) if parts else np.zeros(0, np.int32)
        order = np.argsort(hashes, kind="stable")
        return cls(n, hashes[order], owners[order])

    def match(self, text: str) -> int | None:
        """Index of the first test item sharing an n-gram with ``text``, else None."""
        h = ngram_hashes(text, self.n)
        if not len(h) or not len(self.hashes):
            return None
        pos = np.searchsorted(self.hashes, h)
        pos = np.minimum(pos, len(self.hashes) - 1)
        hit = np.nonzero(self.hashes[pos] == h)[0]
        return int(self.owners[pos[hit[0]]]) if len(hit) else None


def load_index(path: Path, items: Sequence[BenchmarkItem], n: int, cache_dir: Path | None) -> tuple[NgramIndex, float, bool]:
    """The n-gram index of ``path``'s items, from ``cache_dir`` when built before.

    Returns:
        ``(index, build_seconds, from_cache)``.
    """
    t0 = time.perf_counter()
    digest = hashlib.sha256(path.read_bytes()).hexdigest()[:16]
    cached = cache_dir / f"{path.stem}-{digest}-{n}.npz" if cache_dir else None
    if cached is not None and cached.is_file():
        z = np.load(cached)
        return NgramIndex(n, z["hashes"], z["owners"]), time.perf_counter() - t0, True
    index = NgramIndex.build(items, n)
    if cached is not None:
        cached.parent.mkdir(parents=True, exist_ok=True)
        tmp = cached.with_suffix(".tmp.npz")
        np.savez(tmp, hashes=index.hashes, owners=index.owners)
        tmp.replace(cached)  # a killed build never leaves a half-written index behind
    return index, time.perf_counter() - t0, False


@dataclass
class Flag:
    """A sample flagged as contaminated: by ``rule``, matching ``item`` of ``benchmark``;
    ``evidence`` is the matched item's question (n-gram) or the cosine (embedding)."""

    sample: str
    benchmark: str
    rule: str
    item: str
    evidence: str | float


@dataclass
class DecontaminationReport:
    """Flags, per-benchmark counts and timings of one decontamination pass."""

    n_samples: int
    flags: list[Flag] = field(default_factory=list)
    benchmarks: dict[str, dict[str, Any]] = field(default_factory=dict)

    @property
    def flagged(self) -> set[str]:
        """Ids of the flagged samples."""
        return {f.sample for f in self.flags}


def _cosine_hits(q: np.ndarray, items: np.ndarray, threshold: float) -> tuple[np.ndarray, np.ndarray]:
    """Per sample row of ``q``: the best item index and its cosine (rows and items L2-normalised)."""
    qn = q / np.maximum(np.linalg.norm(q, axis=1, keepdims=True), 1e-12)
    itn = items / np.maximum(np.linalg.norm(items, axis=1, keepdims=True), 1e-12)
    sims = qn @ itn.T
    best = sims.argmax(axis=1)
    return best, sims[np.arange(len(best)), best]


def decontaminate(
    samples: Sequence[tuple[str, str, str]],
    benchmarks: dict[str, Path],
    n: int = DEFAULT_NGRAM,
    embed_threshold: float | None = DEFAULT_EMBED_THRESHOLD,
    embed=None,
    cache_dir: Path | None = None,
) -> DecontaminationReport:
    """Flag samples against each benchmark's test file.

    Args:
        samples: ``(id, text, question)`` per sample: ``text`` (question and answer) is matched
            by n-grams, ``question`` by embedding.
        benchmarks: benchmark name -> its JSONL test file.
        n: n-gram length in words (the harness's 13 by default).
        embed_threshold: cosine at or above which the embedding rule flags; None: no embedding rule.
        embed: ``texts -> float32 (len, dim)`` (required when ``embed_threshold`` is set).
        cache_dir: where n-gram indexes are cached (None: not cached).

    Returns:
        :class:`DecontaminationReport`; a sample flagged by n-grams is not tested by embedding
        for the same benchmark (one flag per sample and benchmark).
    """
    if n < 4:
        raise PrepbenchError(f"--ngram {n}: use at least 4 words (13 is the usual choice)")
    rep = DecontaminationReport(len(samples))
    q_vecs = embed([s[2] for s in samples]) if embed_threshold is not None and samples else None
    seen: dict[Path, tuple] = {}  # benchmarks sharing a test file (the MMLU domains) read, index and embed it once
    for name, path in benchmarks.items():
        if path not in seen:
            items = read_benchmark_items(path)
            index, secs, cached = load_index(path, items, n, cache_dir)
            vecs = embed([it.question for it in items]) if q_vecs is not None and items else None
            seen[path] = (items, index, secs, cached, vecs)
        items, index, secs, cached, vecs = seen[path]
        t0 = time.perf_counter()
        by_ngram = set()
        for sid, text, _ in samples:
            hit = index.match(text)
            if hit is not None:
                by_ngram.add(sid)
                rep.flags.append(Flag(sid, name, "ngram_overlap", items[hit].id, items[hit].question[:300]))
        n_embed = 0
        if vecs is not None:
            best, cos = _cosine_hits(q_vecs, vecs, embed_threshold)
            for i, (sid, _, _) in enumerate(samples):
                if sid not in by_ngram and cos[i] >= embed_threshold:
                    n_embed += 1
                    rep.flags.append(Flag(sid, name, "embedding_similarity", items[best[i]].id, round(float(cos[i]), 4)))
        rep.benchmarks[name] = {
            "test_items": len(items),
            "ngram_overlap": len(by_ngram),
            "embedding_similarity": n_embed,
            "index_seconds": round(secs, 3),
            "index_cached": cached,
            "match_seconds": round(time.perf_counter() - t0, 3),
        }
    return rep
