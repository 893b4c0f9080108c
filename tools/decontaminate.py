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

An optional judge (the paper's "LLM decontaminator", §3: embedding retrieval, then an LLM asked
whether the two questions are the same) confirms or clears each flagged pair; a cleared flag is
kept with the judge's verdict but does not exclude the sample.

A benchmark's test items are a :class:`TestSet`: a JSONL file, or the records of a shared file
whose field is one of a set of values (the MMLU domain tasks keep their subjects). The n-gram
index of a test set is built once and cached (keyed by the file's SHA-256, n and the subset);
the item embeddings go through the shared :class:`~prepbench.tools.embed.EmbeddingCache`.

This module is the one decontamination core: ``prepbench decontaminate`` runs it over any
dataset or a run folder, and the gate (:class:`~prepbench.tools.validate.Gate`) runs it on
each chunk's accepted samples under ``prepbench run --decontaminate``.
"""

from __future__ import annotations

import hashlib
import re
import time
import unicodedata
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Callable, Protocol, Sequence

import numpy as np

from prepbench.tools.errors import PrepbenchError

DEFAULT_NGRAM = 13
DEFAULT_EMBED_THRESHOLD = 0.9
#: record fields read as a test item's question, first present wins
QUESTION_FIELDS = ("question", "query", "problem", "input", "text", "instruction", "Question")
#: the check name recorded with every flag (ledger, card)
CHECK = "benchmark_contamination"

_NON_WORD = re.compile(r"[^\w]+", re.UNICODE)

Embed = Callable[[Sequence[str]], np.ndarray]


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
    """One test item of a benchmark: ``id`` (``file:line``), its whole ``text``, its ``question``
    and its ``record`` (the parsed JSON object)."""

    id: str
    text: str
    question: str
    record: dict = field(default_factory=dict, repr=False)


@dataclass(frozen=True)
class TestSet:
    """A benchmark's test items: the records of ``path``, or only those whose ``field`` is one of
    ``values`` (e.g. ``subject`` in the MMLU subjects of one domain).

    Attributes:
        path: the JSONL (or JSON array) test file.
        field: the record field that selects items (None: every record).
        values: the values of ``field`` that are kept.
    """

    __test__ = False  # a data class, not a pytest test class

    path: Path
    field: str | None = None
    values: frozenset[str] = frozenset()

    def keeps(self, item: BenchmarkItem) -> bool:
        """True when ``item`` belongs to this test set."""
        return self.field is None or str(item.record.get(self.field)) in self.values

    @property
    def subset_key(self) -> str:
        """A short stable key of the subset ("" for the whole file), part of the index cache name."""
        if self.field is None:
            return ""
        return hashlib.sha256((self.field + "\0" + "\0".join(sorted(self.values))).encode()).hexdigest()[:10]


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
    from prepbench.tools.jsonfile import iter_json_records

    items = []
    for line_no, rec in iter_json_records(path):
        if not isinstance(rec, dict):
            raise PrepbenchError(f"{path}:{line_no}: expected a JSON object")
        question = next((rec[k] for k in QUESTION_FIELDS if isinstance(rec.get(k), str)), None) or _flatten(rec)
        items.append(BenchmarkItem(f"{path.name}:{line_no}", _flatten(rec), question, rec))
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

    def match_hashes(self, h: np.ndarray) -> int | None:
        """Index of the first test item owning one of the n-gram hashes ``h``, else None."""
        if not len(h) or not len(self.hashes):
            return None
        pos = np.minimum(np.searchsorted(self.hashes, h), len(self.hashes) - 1)
        hit = np.nonzero(self.hashes[pos] == h)[0]
        return int(self.owners[pos[hit[0]]]) if len(hit) else None

    def match(self, text: str) -> int | None:
        """Index of the first test item sharing an n-gram with ``text``, else None."""
        return self.match_hashes(ngram_hashes(text, self.n))


def load_index(
    test_set: TestSet, items: Sequence[BenchmarkItem], n: int, cache_dir: Path | None
) -> tuple[NgramIndex, float, bool]:
    """The n-gram index of ``items`` (the test set's), from ``cache_dir`` when built before.

    Returns:
        ``(index, build_seconds, from_cache)``.
    """
    t0 = time.perf_counter()
    path = test_set.path
    digest = hashlib.sha256(path.read_bytes()).hexdigest()[:16]
    sub = f"-{test_set.subset_key}" if test_set.subset_key else ""
    cached = cache_dir / f"{path.stem}-{digest}{sub}-{n}.npz" if cache_dir else None
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
    """A sample flagged as contaminated.

    Attributes:
        sample: the sample's id.
        benchmark: the benchmark whose test item it matches.
        rule: ``ngram_overlap`` | ``embedding_similarity``.
        item: the matched test item (``file:line``); evidence: its question (first 300 characters).
        cosine: the question cosine (embedding rule), else None.
        judge: the judge's verdict, ``contaminated`` | ``clean`` | ``error`` (None: not judged).
        judge_detail: the judge's reply or error, one line.
    """

    sample: str
    benchmark: str
    rule: str
    item: str
    evidence: str
    cosine: float | None = None
    judge: str | None = None
    judge_detail: str = ""

    @property
    def excluded(self) -> bool:
        """The flag excludes its sample from the export (every flag the judge did not clear)."""
        return self.judge != "clean"

    def as_dict(self) -> dict[str, Any]:
        """The flag as plain data (``--out`` lines, the ledger), with ``excluded``."""
        return {**asdict(self), "excluded": self.excluded}


@dataclass
class DecontaminationReport:
    """Flags, per-benchmark counts and timings of one decontamination pass.

    ``benchmarks[name]`` holds ``test_items``, ``ngram_overlap``, ``embedding_similarity``,
    ``cleared`` (flags the judge cleared), ``index_seconds``, ``index_cached``, ``match_seconds``.
    """

    n_samples: int
    flags: list[Flag] = field(default_factory=list)
    benchmarks: dict[str, dict[str, Any]] = field(default_factory=dict)
    #: the judge's calls (:class:`~prepbench.tools.ledger.CallRecord`), for the ledger
    calls: list = field(default_factory=list)

    @property
    def flagged(self) -> set[str]:
        """Ids of the flagged samples."""
        return {f.sample for f in self.flags}

    @property
    def excluded(self) -> set[str]:
        """Ids of the samples at least one flag excludes."""
        return {f.sample for f in self.flags if f.excluded}


class Judge(Protocol):
    """Confirms flagged pairs: ``judge(pairs)`` with ``pairs`` = ``[(sample question, test item
    question)]`` returns ``([(same: bool | None, detail)], calls)``; None when the judge failed
    for that pair (the flag then stands). ``calls`` are :class:`~prepbench.tools.ledger.CallRecord`."""

    def __call__(self, pairs: Sequence[tuple[str, str]]) -> tuple[list[tuple[bool | None, str]], list]: ...


def _cosine_best(q: np.ndarray, items: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per row of ``q``: the best item index and its cosine (rows and items L2-normalised here)."""
    qn = q / np.maximum(np.linalg.norm(q, axis=1, keepdims=True), 1e-12)
    itn = items / np.maximum(np.linalg.norm(items, axis=1, keepdims=True), 1e-12)
    sims = qn @ itn.T
    best = sims.argmax(axis=1)
    return best, sims[np.arange(len(best)), best]


@dataclass
class _Loaded:
    """One benchmark's test set, ready: its items, n-gram index, item vectors and timings."""

    items: list[BenchmarkItem]
    index: NgramIndex
    vectors: np.ndarray | None
    seconds: float
    cached: bool


class Decontaminator:
    """Test sets loaded and indexed once, then any number of passes over samples.

    Args:
        benchmarks: benchmark name -> :class:`TestSet` (or a plain test file path).
        n: n-gram length in words (the harness's 13 by default; at least 4).
        embed_threshold: cosine at or above which the embedding rule flags; None: n-gram rule only.
        embed: ``texts -> float32 (len, dim)`` (required when ``embed_threshold`` is set).
        index_dir: where n-gram indexes are cached (None: not cached).

    Raises:
        PrepbenchError: ``n`` below 4, a missing test file, or a bad line in one.
    """

    def __init__(
        self,
        benchmarks: dict[str, TestSet | Path],
        n: int = DEFAULT_NGRAM,
        embed_threshold: float | None = DEFAULT_EMBED_THRESHOLD,
        embed: Embed | None = None,
        index_dir: Path | None = None,
    ):
        if n < 4:
            raise PrepbenchError(f"--ngram {n}: use at least 4 words (13 is the usual choice)")
        if embed_threshold is not None and embed is None:
            raise PrepbenchError("the embedding rule needs an encoder (or turn it off with --no-embed)")
        self.n, self.embed_threshold, self.embed = n, embed_threshold, embed
        self.test_sets = {k: v if isinstance(v, TestSet) else TestSet(Path(v)) for k, v in benchmarks.items()}
        self.loaded: dict[str, _Loaded] = {}
        files: dict[Path, tuple[list[BenchmarkItem], np.ndarray | None]] = {}
        for name, ts in self.test_sets.items():
            t0 = time.perf_counter()
            if ts.path not in files:  # a file shared by several benchmarks (MMLU) is read and embedded once
                all_items = read_benchmark_items(ts.path)
                vecs = embed([it.question for it in all_items]) if embed_threshold is not None and all_items else None
                files[ts.path] = (all_items, vecs)
            all_items, vecs = files[ts.path]
            keep = [i for i, it in enumerate(all_items) if ts.keeps(it)]
            items = [all_items[i] for i in keep]
            index, _, cached = load_index(ts, items, n, index_dir)
            sub_vecs = vecs[keep] if vecs is not None and keep else None
            self.loaded[name] = _Loaded(items, index, sub_vecs, time.perf_counter() - t0, cached)

    def run(self, samples: Sequence[tuple[str, str, str]], judge: Judge | None = None) -> DecontaminationReport:
        """Flag ``samples`` against every test set.

        Args:
            samples: ``(id, text, question)`` per sample: ``text`` (question and answer) is matched
                by n-grams, ``question`` by embedding.
            judge: confirms each flag (see :class:`Judge`); None: every flag excludes.

        Returns:
            :class:`DecontaminationReport`; a sample flagged by n-grams is not tested by embedding
            for the same benchmark (one flag per sample and benchmark).
        """
        rep = DecontaminationReport(len(samples))
        matched: dict[tuple[str, str], str] = {}  # (benchmark, item id) -> the item's whole question, for the judge
        hashes = [ngram_hashes(text, self.n) for _, text, _ in samples]
        q_vecs = self.embed([s[2] for s in samples]) if self.embed_threshold is not None and samples else None
        for name, ld in self.loaded.items():
            t0 = time.perf_counter()
            by_ngram = set()
            for (sid, _, _), h in zip(samples, hashes):
                hit = ld.index.match_hashes(h)
                if hit is not None:
                    by_ngram.add(sid)
                    it = ld.items[hit]
                    matched[name, it.id] = it.question
                    rep.flags.append(Flag(sid, name, "ngram_overlap", it.id, it.question[:300]))
            n_embed = 0
            if q_vecs is not None and ld.vectors is not None:
                best, cos = _cosine_best(q_vecs, ld.vectors)
                for i, (sid, _, _) in enumerate(samples):
                    if sid not in by_ngram and cos[i] >= self.embed_threshold:
                        n_embed += 1
                        it = ld.items[best[i]]
                        matched[name, it.id] = it.question
                        rep.flags.append(
                            Flag(sid, name, "embedding_similarity", it.id, it.question[:300], round(float(cos[i]), 4))
                        )
            rep.benchmarks[name] = {
                "test_items": len(ld.items),
                "ngram_overlap": len(by_ngram),
                "embedding_similarity": n_embed,
                "cleared": 0,
                "index_seconds": round(ld.seconds, 3),
                "index_cached": ld.cached,
                "match_seconds": round(time.perf_counter() - t0, 3),
            }
        if judge is not None and rep.flags:
            rep.calls = self._judge(rep, {sid: q for sid, _, q in samples}, matched, judge)
        return rep

    def ngram_match(self, text: str) -> str | None:
        """``"<benchmark> test item <file:line>"`` of the first test set sharing an n-gram with ``text``,
        else None: the n-gram rule alone, for the generation modes' gate, which rejects such a
        sample (and leaves such a seed out) instead of flagging it (:mod:`prepbench.tools.validate.seeds`)."""
        h = ngram_hashes(text, self.n)
        for name, ld in self.loaded.items():
            hit = ld.index.match_hashes(h)
            if hit is not None:
                return f"{name} test item {ld.items[hit].id}"
        return None

    @staticmethod
    def _judge(rep: DecontaminationReport, questions: dict[str, str], matched: dict[tuple[str, str], str], judge: Judge) -> list:
        """Ask the judge about every flag; set each flag's verdict and count the cleared ones."""
        verdicts, calls = judge([(questions[f.sample], matched[f.benchmark, f.item]) for f in rep.flags])
        for f, (same, detail) in zip(rep.flags, verdicts):
            f.judge = "error" if same is None else "contaminated" if same else "clean"
            f.judge_detail = " ".join(str(detail).split())[:300]
            if f.judge == "clean":
                rep.benchmarks[f.benchmark]["cleared"] += 1
        return calls


def decontaminate(
    samples: Sequence[tuple[str, str, str]],
    benchmarks: dict[str, TestSet | Path],
    n: int = DEFAULT_NGRAM,
    embed_threshold: float | None = DEFAULT_EMBED_THRESHOLD,
    embed: Embed | None = None,
    cache_dir: Path | None = None,
    judge: Judge | None = None,
) -> DecontaminationReport:
    """Load the test sets and flag ``samples`` in one pass (see :class:`Decontaminator`)."""
    return Decontaminator(benchmarks, n, embed_threshold, embed, cache_dir).run(samples, judge)


def sample_texts(sample: dict, renders: dict[str, str]) -> tuple[str, str]:
    """``(text, question)`` of a run's sample as its export shows it: the sample rendered by its
    type's template (:func:`~prepbench.tools.export_rows.render_pair`); ``text`` is the instruction and
    the output joined by a blank line (as the scoring readers join a conversation's turns),
    ``question`` the instruction."""
    from prepbench.tools.export_rows import render_pair

    instr, out = render_pair(sample, renders.get(sample.get("sample_type")))
    return "\n\n".join(t for t in (instr, out) if t), instr


@dataclass
class DecontaminationSpec:
    """What ``prepbench run --decontaminate`` checks against (plain data, stored in the ledger).

    Attributes:
        benchmarks: benchmark name -> :class:`TestSet`.
        ngram: n-gram length (words); embed_threshold: cosine of the embedding rule (None: off).
        encoder: the embedding model spec (:func:`~prepbench.tools.embed.make_encoder`).
        cache: the embedding cache file (default: :func:`~prepbench.tools.embed.default_cache_path`);
            the n-gram indexes are cached in a ``decontamination`` folder beside it.
    """

    benchmarks: dict[str, TestSet]
    ngram: int = DEFAULT_NGRAM
    embed_threshold: float | None = DEFAULT_EMBED_THRESHOLD
    encoder: str = "minilm"
    cache: Path | None = None
    progress: bool = False  # a progress bar while test items are embedded (the CLI's, not stored)

    def settings(self) -> dict[str, Any]:
        """The settings as JSON-ready data: what a pass checked (the ledger keeps it; a run resumed
        with other settings checks its committed samples again)."""
        return {
            "benchmarks": {
                k: {"file": ts.path.name, "field": ts.field, "values": sorted(ts.values)}
                for k, ts in sorted(self.benchmarks.items())
            },
            "ngram": self.ngram,
            "embed_threshold": self.embed_threshold,
            "encoder": self.encoder if self.embed_threshold is not None else None,
        }

    def build(self) -> Decontaminator:
        """Load, index (cached) and embed (cached) every test set.

        Raises:
            PrepbenchError: a missing test file or encoder package.
        """
        from prepbench.tools.embed import EmbeddingCache, default_cache_path, embed_texts, make_encoder

        cache = Path(self.cache or default_cache_path())
        embed = None
        if self.embed_threshold is not None:
            enc, store = make_encoder(self.encoder), EmbeddingCache(cache)
            embed = lambda texts: embed_texts(texts, enc, store, progress=self.progress, description="embedding")[0]  # noqa: E731
        return Decontaminator(self.benchmarks, self.ngram, self.embed_threshold, embed, cache.parent / "decontamination")


def decontaminate_run(
    ledger: Any, renders: dict[str, str], decontaminator: Decontaminator, settings: dict[str, Any], judge: Judge | None = None
) -> DecontaminationReport:
    """Check every accepted sample of a run folder and record the flags in its ledger.

    The samples are read as the export renders them (:func:`sample_texts`); the flags replace
    the earlier flags of the same benchmarks, with ``settings`` and the judge's calls, in one
    transaction (:meth:`~prepbench.tools.ledger.RunFolder.record_contamination`). Nothing is
    deleted: a flagged sample stays accepted, and the export leaves it out.

    Args:
        ledger: the run's :class:`~prepbench.tools.ledger.RunFolder` (opened for writing).
        renders: the skill's render templates (``Skill.renders``; ``{}`` for the default rendering).
        decontaminator: the loaded test sets.
        settings: what the pass checked (:meth:`DecontaminationSpec.settings`, plus the judge).
        judge: confirms each flag (see :class:`Judge`).
    """
    samples = [(s["sample_id"], *sample_texts(s, renders)) for s in ledger.accepted_samples()]
    rep = decontaminator.run(samples, judge)
    flags = [{**f.as_dict(), "sample_id": f.sample} for f in rep.flags]
    ledger.record_contamination(flags, list(decontaminator.loaded), settings, rep.calls)
    return rep
