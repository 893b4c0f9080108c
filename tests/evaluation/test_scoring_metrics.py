"""Weight-free metrics: hand-checked values, independent re-computations, and the CLI on real data."""

from __future__ import annotations

import gzip
import json
import math
from collections import Counter

import numpy as np
import pytest

from prepbench.evaluation import metrics as M
from prepbench.evaluation.readers import read_samples, subsample
from prepbench.tools.errors import PrepbenchError

from cli_helpers import SHARED

DATA = str(SHARED / "datasets")


def textbook_mtld_one_way(tokens, threshold=0.72):
    """MTLD one direction as McCarthy & Jarvis (2010, p. 384) describe it, written independently."""
    factors, types, count, ttr = 0.0, set(), 0, 1.0
    for t in tokens:
        count += 1
        types.add(t)
        ttr = len(types) / count
        if ttr <= threshold:
            factors += 1
            types, count = set(), 0
    if count:
        factors += (1 - ttr) / (1 - threshold)
    return len(tokens) / factors if factors else float(len(tokens))


def textbook_hdd(tokens, draws=42):
    """HD-D (McCarthy & Jarvis 2007/2010): sum over types of P(at least one in `draws` tokens) / draws."""
    n = len(tokens)
    return sum((1 - math.comb(n - f, draws) / math.comb(n, draws)) / draws for f in Counter(tokens).values())


@pytest.fixture(scope="module")
def dolly():
    return subsample(read_samples(f"{DATA}/dolly/databricks-dolly-15k-nocategory.jsonl"), 40, 7)


def test_mtld_and_hdd_hand_checked_and_against_textbook(dolly):
    # "a a a a": the TTR falls to 0.5 at every 2nd token -> 2 full factors -> MTLD = 4 / 2 = 2
    assert M.lexical_diversity([["a"] * 4])["mtld"] == pytest.approx(2.0)
    toks = [M.tokenize(s.text) for s in dolly]
    res = M.lexical_diversity(toks)
    want_mtld = np.mean([(textbook_mtld_one_way(t) + textbook_mtld_one_way(t[::-1])) / 2 for t in toks if t])
    assert res["mtld"] == pytest.approx(want_mtld, rel=1e-9)
    long = [t for t in toks if len(t) >= 42]
    assert res["n_hdd"] == len(long) > 5
    assert res["hdd"] == pytest.approx(np.mean([textbook_hdd(t) for t in long]), rel=1e-9)
    assert 0.5 < res["hdd"] < 1.0


def test_ngram_stats_hand_checked():
    res = M.ngram_stats([["a", "b", "a", "b"]], ns=(1, 2))
    assert res["distinct_1"] == pytest.approx(0.5)  # 2 unique of 4
    assert res["distinct_2"] == pytest.approx(2 / 3)  # ab, ba, ab
    assert res["rep_2"] == pytest.approx(1 / 3)
    assert res["entropy_bits"] == pytest.approx(1.0) and res["vocab"] == 2
    # distinct-n is dataset level; rep-n is a mean over samples
    res2 = M.ngram_stats([["x", "y"], ["x", "y"]], ns=(1,))
    assert res2["distinct_1"] == pytest.approx(0.5) and res2["rep_1"] == pytest.approx(0.0)


def test_compression_ratio_is_raw_over_gzip_and_ranks_redundancy(dolly):
    texts = [s.text for s in dolly]
    res = M.compression_ratio(texts)
    raw = "\n".join(texts).encode()
    assert res["compression_ratio"] == pytest.approx(len(raw) / len(gzip.compress(raw, 9, mtime=0)))
    assert M.compression_ratio([texts[0]] * 40)["compression_ratio"] > 3 * res["compression_ratio"]


def test_length_stats_on_real_rows():
    s = read_samples(f"{DATA}/gsm8k/train.jsonl")[:10]
    res = M.length_stats(s)
    assert res["instruction_words"]["mean"] == pytest.approx(np.mean([len(M.tokenize(x.instruction)) for x in s]))
    assert res["response_words"]["median"] == pytest.approx(float(np.median([len(M.tokenize(x.response)) for x in s])))
    assert res["turns_mean"] == 2.0


def test_embedding_diversity_against_brute_force():
    from vendi_score import vendi

    rng = np.random.default_rng(0)
    X = rng.normal(size=(60, 12))
    Z = X / np.linalg.norm(X, axis=1, keepdims=True)
    K = Z @ Z.T
    assert M.vendi_score(X) == pytest.approx(vendi.score_K(K), rel=1e-6)
    assert M.vendi_score(np.tile(X[:1], (10, 1))) == pytest.approx(1.0, abs=1e-6)  # identical samples
    assert M.vendi_score(np.eye(8)) == pytest.approx(8.0, rel=1e-9)  # orthogonal samples
    off = K[~np.eye(60, dtype=bool)]
    assert M.mean_pairwise_cosine(X) == pytest.approx(off.mean(), abs=1e-12)
    D = 1 - K
    np.fill_diagonal(D, np.inf)
    want_knn = np.sort(D, axis=1)[:, :5].mean()
    assert M.mean_knn_distance(X, k=5, block_size=16) == pytest.approx(want_knn, abs=1e-12)
    assert M.radius(X) == pytest.approx(np.exp(np.log(Z.std(axis=0, ddof=1)).mean()), rel=1e-12)


def test_unknown_metric_set_is_an_error():
    with pytest.raises(PrepbenchError, match="unknown metric set"):
        M.parse_metric_sets("lexical,foo", M.WEIGHT_FREE_SETS)
    with pytest.raises(PrepbenchError, match="needs an encoder"):
        M.compute_metrics(read_samples(f"{DATA}/gsm8k/train.jsonl")[:3], ["embedding"])


def test_cli_metrics_on_real_data_orders_diversity(tmp_path):
    """GSM8K (one narrow task) is less diverse than Dolly (eight task kinds) on the embedding metrics."""
    from prepbench.tools.cli import main

    outs = {}
    for name, path in (("gsm8k", f"{DATA}/gsm8k/train.jsonl"), ("dolly", f"{DATA}/dolly/databricks-dolly-15k-nocategory.jsonl")):
        out = tmp_path / f"{name}.json"
        main(["score", "metrics", path, "--max-samples", "40", "--cache", str(tmp_path / "c.sqlite"), "-o", str(out)])
        outs[name] = json.loads(out.read_text())
    g, d = outs["gsm8k"]["metrics"], outs["dolly"]["metrics"]
    assert set(g) == {"lexical", "ngram", "compression", "length", "embedding"}
    assert outs["gsm8k"]["n"] == 40 and outs["gsm8k"]["n_total"] == 7473
    assert all("seconds" in v and v["n"] == 40 for v in g.values())
    assert d["embedding"]["vendi"] > g["embedding"]["vendi"]
    assert d["embedding"]["pairwise_cosine"] < g["embedding"]["pairwise_cosine"]
    assert g["embedding"]["dim"] == 384
