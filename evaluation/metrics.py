"""Weight-free dataset metrics: lexical diversity, n-gram statistics, compression, lengths,
and embedding diversity over the same cached embeddings DAS uses.

Every metric set returns a dict with ``n`` (samples used), ``seconds`` and its values; sets are
computed by :func:`compute_metrics` into ``{"metrics": {set: {...}}, ...}``, the same shape as
the DAS output (one JSON object per run).

Tokens: lower-cased ``\\w+`` words (digits kept: they matter in math data); the lexical-diversity
measures get these word lists directly.
"""

from __future__ import annotations

import gzip
import re
import statistics
import time
from collections import Counter
from typing import Callable, Sequence

import numpy as np

from prepbench.tools.errors import PrepbenchError

from .readers import ScoredSample

_WORD = re.compile(r"\w+", re.UNICODE)

TEXT_METRIC_SETS = ("lexical", "ngram", "compression", "length")
EMBEDDING_METRIC_SETS = ("embedding", "diversity")
WEIGHT_FREE_SETS = TEXT_METRIC_SETS + EMBEDDING_METRIC_SETS


def tokenize(text: str) -> list[str]:
    """Lower-cased word tokens (``\\w+``)."""
    return _WORD.findall(text.lower())


def _ngrams(tokens: Sequence[str], n: int) -> list[tuple[str, ...]]:
    return [tuple(tokens[i : i + n]) for i in range(len(tokens) - n + 1)]


# ---------------------------------------------------------------- lexical diversity
def lexical_diversity(token_lists: Sequence[list[str]], mtld_threshold: float = 0.72, hdd_draws: int = 42) -> dict:
    """Mean per-sample MTLD and HD-D (via ``lexicalrichness``).

    MTLD: McCarthy & Jarvis (2010), Behavior Research Methods 42(2) 381-392: mean length of
    word runs keeping TTR above 0.72, forward and backward averaged, with a partial final factor.
    HD-D: McCarthy & Jarvis (2007), Language Testing 24(4); as used in the 2010 paper: sum over
    word types of P(type appears in a random draw of 42 tokens) / 42.
    ``lexicalrichness``'s ``mtld``/``hdd`` implement exactly these (checked against the papers).
    HD-D is only defined for samples with at least ``hdd_draws`` tokens; ``n_hdd`` says how many.
    """
    from lexicalrichness import LexicalRichness

    mt, hd = [], []
    for toks in token_lists:
        if not toks:
            continue
        lr = LexicalRichness(list(toks), preprocessor=None, tokenizer=None)
        mt.append(lr.mtld(threshold=mtld_threshold))
        if len(toks) >= hdd_draws:
            hd.append(lr.hdd(draws=hdd_draws))
    return {
        "mtld": float(np.mean(mt)) if mt else None,
        "hdd": float(np.mean(hd)) if hd else None,
        "n_mtld": len(mt),
        "n_hdd": len(hd),
        "mtld_threshold": mtld_threshold,
        "hdd_draws": hdd_draws,
    }


# ---------------------------------------------------------------- n-gram statistics
def ngram_stats(token_lists: Sequence[list[str]], ns: Sequence[int] = (1, 2, 3, 4)) -> dict:
    """Distinct-n, n-gram repetition and token entropy over a dataset.

    ``distinct_n``: unique n-grams / total n-grams over the whole dataset (Li et al., 2016,
    NAACL, "A Diversity-Promoting Objective Function for Neural Conversation Models").
    ``rep_n``: mean over samples of 1 - unique n-grams / n-grams within the sample (seq-rep-n,
    Welleck et al., 2020, ICLR, "Neural Text Generation with Unlikelihood Training").
    ``entropy_bits``: Shannon entropy (bits) of the dataset's unigram distribution;
    ``vocab``: number of distinct tokens.
    """
    out: dict = {}
    for n in ns:
        total: Counter = Counter()
        reps = []
        for toks in token_lists:
            grams = _ngrams(toks, n)
            total.update(grams)
            if grams:
                reps.append(1.0 - len(set(grams)) / len(grams))
        count = sum(total.values())
        out[f"distinct_{n}"] = (len(total) / count) if count else None
        out[f"rep_{n}"] = float(np.mean(reps)) if reps else None
    uni = Counter(t for toks in token_lists for t in toks)
    tot = sum(uni.values())
    if tot:
        p = np.fromiter(uni.values(), dtype=np.float64) / tot
        out["entropy_bits"] = float(-(p * np.log2(p)).sum())
    else:
        out["entropy_bits"] = None
    out["vocab"] = len(uni)
    out["tokens"] = tot
    return out


def compression_ratio(texts: Sequence[str], level: int = 9) -> dict:
    """gzip compression ratio of the dataset: raw UTF-8 bytes / gzip bytes of all texts joined by newlines.

    Higher = more redundant (less diverse). Source: Shaib et al. (2024), "Standardizing the
    Measurement of Text Diversity: A Tool and a Comparative Analysis of Scores" (CR).
    """
    raw = "\n".join(texts).encode("utf-8")
    comp = gzip.compress(raw, compresslevel=level, mtime=0)
    return {"compression_ratio": len(raw) / len(comp) if raw else None, "bytes": len(raw), "gzip_bytes": len(comp)}


def length_stats(samples: Sequence[ScoredSample]) -> dict:
    """Instruction / response lengths in words (mean, median, p90) and characters (mean), and turns."""

    def summary(vals: list[int]) -> dict:
        if not vals:
            return {"mean": None, "median": None, "p90": None}
        return {
            "mean": float(np.mean(vals)),
            "median": float(statistics.median(vals)),
            "p90": float(np.percentile(vals, 90)),
        }

    inst = [len(tokenize(s.instruction)) for s in samples]
    resp = [len(tokenize(s.response)) for s in samples]
    return {
        "instruction_words": summary(inst),
        "response_words": summary(resp),
        "instruction_chars_mean": float(np.mean([len(s.instruction) for s in samples])),
        "response_chars_mean": float(np.mean([len(s.response) for s in samples])),
        "turns_mean": float(np.mean([len(s.turns) for s in samples])),
    }


# ---------------------------------------------------------------- embedding diversity
def _normalize(X: np.ndarray) -> np.ndarray:
    X = np.asarray(X, dtype=np.float64)
    norms = np.linalg.norm(X, axis=1, keepdims=True)
    if np.any(norms == 0):
        raise PrepbenchError("embedding diversity: a zero embedding vector cannot be normalised")
    return X / norms


def vendi_score(X: np.ndarray, q: float = 1.0) -> float:
    """Vendi score with the cosine-similarity kernel: exp(entropy of the eigenvalues of K/n).

    Friedman & Dieng (2023), TMLR, "The Vendi Score: A Diversity Evaluation Metric for Machine
    Learning", eq. 1; computed with ``vendi_score.vendi.score_dual`` (eigenvalues of X^T X / n,
    which equal the non-zero eigenvalues of K/n for the linear kernel on normalised rows).
    Range [1, min(n, d)].
    """
    from vendi_score import vendi

    return float(vendi.score_dual(_normalize(X), q=q, normalize=False))


def mean_pairwise_cosine(X: np.ndarray) -> float:
    """Mean cosine similarity over all pairs i != j: (||sum_i x_i||^2 - n) / (n (n - 1)) for unit x_i."""
    Z = _normalize(X)
    n = len(Z)
    if n < 2:
        raise PrepbenchError("average pairwise similarity needs at least 2 samples")
    s = Z.sum(0)
    return float((s @ s - n) / (n * (n - 1)))


def mean_knn_distance(X: np.ndarray, k: int = 10, block_size: int = 2048) -> float:
    """Mean cosine distance (1 - cos) of each sample to its ``k`` nearest other samples.

    Computed blockwise in torch (float64); ``k`` is capped at n - 1. A density/diversity
    measure as in Stasaski & Hearst (2022) and Lai et al. (2020): higher = more spread out.
    """
    import torch

    Z = torch.from_numpy(_normalize(X))
    n = Z.shape[0]
    if n < 2:
        raise PrepbenchError("k-NN distance needs at least 2 samples")
    k = min(k, n - 1)
    total = 0.0
    with torch.no_grad():
        for i in range(0, n, block_size):
            S = Z[i : i + block_size] @ Z.T
            idx = torch.arange(i, min(i + block_size, n))
            S[idx - i, idx] = -float("inf")  # exclude self
            top = S.topk(k, dim=1).values
            total += float((1.0 - top).sum())
    return total / (n * k)


def radius(X: np.ndarray) -> float:
    """Radius: geometric mean of the per-dimension standard deviations of the (normalised) embeddings.

    Lai et al. (2020), "Diversity, Density, and Homogeneity: Quantitative Characteristic Metrics
    for Text Collections", LREC, §3.1 (the radii of the ellipsoid the embeddings fill).
    """
    Z = _normalize(X)
    sd = Z.std(axis=0, ddof=1) if len(Z) > 1 else np.zeros(Z.shape[1])
    sd = np.maximum(sd, 1e-12)
    return float(np.exp(np.log(sd).mean()))


def embedding_diversity(X: np.ndarray, k: int = 10) -> dict:
    """Vendi score, mean k-NN cosine distance, mean pairwise cosine similarity and radius of ``X`` ``(n, d)``."""
    return {
        "vendi": vendi_score(X),
        "knn_distance": mean_knn_distance(X, k=k),
        "knn_k": min(k, len(X) - 1),
        "pairwise_cosine": mean_pairwise_cosine(X),
        "radius": radius(X),
        "dim": int(X.shape[1]),
    }


def instruction_response_diversity(
    samples: Sequence[ScoredSample], embed: Callable[[list[str]], tuple[np.ndarray, dict]]
) -> dict:
    """Diversity of the instructions and of the responses, each over its own embeddings.

    AgoraBench's intrinsic diversity (Kim et al., ACL 2025, §4) measures instructions and
    responses separately; here each is 1 - the mean pairwise cosine similarity of its embeddings
    (higher = more diverse), with the full :func:`embedding_diversity` of each beside it.

    Raises:
        PrepbenchError: fewer than 2 samples.
    """
    if len(samples) < 2:
        raise PrepbenchError("instruction/response diversity needs at least 2 samples")
    inst = embedding_diversity(embed([s.instruction for s in samples])[0])
    resp = embedding_diversity(embed([s.response for s in samples])[0])
    return {
        "instruction_diversity": 1.0 - inst["pairwise_cosine"],
        "response_diversity": 1.0 - resp["pairwise_cosine"],
        "instruction": inst,
        "response": resp,
    }


# ---------------------------------------------------------------- driver
def parse_metric_sets(spec: str | Sequence[str] | None, known: Sequence[str]) -> list[str]:
    """``"lexical,ngram"`` -> ``["lexical", "ngram"]``; ``None``/``"all"`` -> all ``known``.

    Raises:
        PrepbenchError: an unknown metric set name.
    """
    if spec is None or spec == "all" or spec == ["all"]:
        return list(known)
    names = [s.strip() for s in (spec.split(",") if isinstance(spec, str) else spec) if s.strip()]
    bad = [s for s in names if s not in known]
    if bad:
        raise PrepbenchError(f"--metrics: unknown metric set(s) {bad}; known: {', '.join(known)}")
    return names


def compute_metrics(
    samples: Sequence[ScoredSample],
    sets: Sequence[str] = WEIGHT_FREE_SETS,
    embed: Callable[[list[str]], tuple[np.ndarray, dict]] | None = None,
    knn_k: int = 10,
) -> dict:
    """Compute the weight-free metric sets on ``samples``.

    Args:
        samples: the (already subsampled) dataset.
        sets: names from :data:`WEIGHT_FREE_SETS`.
        embed: ``texts -> (X, info)`` (e.g. :func:`~prepbench.tools.embed.embed_texts` bound
            to an encoder and cache); required for ``embedding``.

    Returns:
        ``{"n": ..., "metrics": {set: {"n", "seconds", ...values}}}``.

    Raises:
        PrepbenchError: no samples, or ``embedding`` requested without an ``embed`` function.
    """
    if not samples:
        raise PrepbenchError("no samples to score")
    texts = [s.text for s in samples]
    toks = None
    out: dict = {}
    for name in sets:
        t0 = time.perf_counter()
        if name in ("lexical", "ngram") and toks is None:
            toks = [tokenize(t) for t in texts]
        if name == "lexical":
            res = lexical_diversity(toks)
        elif name == "ngram":
            res = ngram_stats(toks)
        elif name == "compression":
            res = compression_ratio(texts)
        elif name == "length":
            res = length_stats(samples)
        elif name in EMBEDDING_METRIC_SETS and embed is None:
            raise PrepbenchError(f"metric set '{name}' needs an encoder")
        elif name == "diversity":
            res = instruction_response_diversity(samples, embed)
        elif name == "embedding":
            X, info = embed(texts)
            res = embedding_diversity(X, k=knn_k)
            res["embedding"] = info
        else:
            raise PrepbenchError(f"unknown metric set {name!r}")
        out[name] = {"n": len(samples), **res, "seconds": round(time.perf_counter() - t0, 4)}
    return {"n": len(samples), "metrics": out}
