"""DAS / MMD: blockwise torch estimate vs the textbook formula, the embedding cache, real-encoder ordering."""

from __future__ import annotations

import json

import numpy as np
import pytest
from scipy.spatial.distance import cdist

from prepbench.evaluation.das import das_score, median_sigma, mmd
from prepbench.evaluation.readers import read_samples, subsample
from prepbench.tools.embed import EmbeddingCache, embed_texts, make_encoder
from prepbench.tools.errors import PrepbenchError

from cli_helpers import SHARED

DATA = str(SHARED / "datasets")


def reference_mmd2(X, Y, sigma, unbiased):
    """Textbook MMD² (Gretton et al. 2012, eq. 3 / Lemma 6) from full scipy cdist kernel matrices."""
    k = lambda A, B: np.exp(-cdist(A, B, "sqeuclidean") / (2 * sigma**2))  # noqa: E731
    Kxx, Kyy, Kxy = k(X, X), k(Y, Y), k(X, Y)
    m, n = len(X), len(Y)
    if unbiased:
        return (Kxx.sum() - np.trace(Kxx)) / (m * (m - 1)) + (Kyy.sum() - np.trace(Kyy)) / (n * (n - 1)) - 2 * Kxy.mean()
    return Kxx.mean() + Kyy.mean() - 2 * Kxy.mean()


@pytest.mark.parametrize("unbiased", [False, True])
@pytest.mark.parametrize("m,n,d,block", [(203, 517, 24, 64), (1000, 33, 8, 128), (7, 5, 3, 2)])
def test_blockwise_mmd_matches_cdist_reference(unbiased, m, n, d, block):
    rng = np.random.default_rng(m * 7 + n)
    X = rng.normal(size=(m, d)) * 0.4
    Y = rng.normal(size=(n, d)) * 0.5 + 0.15
    for sigma in (1.0, 0.7):
        got = mmd(X, Y, sigma=sigma, unbiased=unbiased, block_size=block)
        want = reference_mmd2(X, Y, sigma, unbiased)
        assert abs(got["mmd2"] - want) < 1e-6
        assert got["mmd"] == pytest.approx(np.sqrt(max(want, 0)), abs=1e-6)
        assert got["das"] == -got["mmd"]
        assert got["estimator"] == ("unbiased" if unbiased else "biased")
        assert (got["n_candidate"], got["n_proxy"], got["dim"]) == (m, n, d)


def test_float32_blocks_stay_close_and_identical_sets_give_zero():
    rng = np.random.default_rng(1)
    X = rng.normal(size=(300, 16)).astype(np.float32)
    Y = rng.normal(size=(250, 16)).astype(np.float32) + 0.2
    ref = reference_mmd2(X.astype(np.float64), Y.astype(np.float64), 2.0, False)
    assert mmd(X, Y, 2.0, dtype="float32")["mmd2"] == pytest.approx(ref, abs=1e-5)
    same = mmd(X, X, 1.0)
    assert same["mmd2"] == pytest.approx(0.0, abs=1e-12) and same["das"] == pytest.approx(0.0, abs=1e-6)


def test_median_heuristic_is_the_median_pairwise_distance():
    rng = np.random.default_rng(2)
    X, Y = rng.normal(size=(40, 5)), rng.normal(size=(30, 5)) + 1
    Z = np.concatenate([X, Y])
    d = cdist(Z, Z)
    want = np.median(d[np.triu_indices(len(Z), 1)])
    assert median_sigma(X, Y) == pytest.approx(want)
    r = mmd(X, Y, sigma="median")
    assert r["sigma"] == pytest.approx(want) and r["sigma_rule"] == "median"
    assert r["mmd2"] == pytest.approx(reference_mmd2(X, Y, want, False), abs=1e-9)


def test_bad_mmd_inputs_raise_prepbench_errors():
    X = np.zeros((3, 4))
    with pytest.raises(PrepbenchError, match="dimensions differ"):
        mmd(X, np.zeros((3, 5)))
    with pytest.raises(PrepbenchError, match="non-empty"):
        mmd(X, np.zeros((0, 4)))
    with pytest.raises(PrepbenchError, match="must be > 0"):
        mmd(X, X, sigma=0.0)
    with pytest.raises(PrepbenchError, match="at least 2"):
        mmd(X[:1], X, unbiased=True)
    with pytest.raises(PrepbenchError, match="identical"):
        mmd(X, X, sigma="median")


@pytest.fixture(scope="module")
def minilm():
    return make_encoder("minilm")


def test_minilm_encoder_loads_offline_from_package(minilm):
    X = minilm.encode(["What is the time value of money?", "Natalia sold clips to 48 of her friends."])
    assert X.shape == (2, 384) and X.dtype == np.float32
    assert np.allclose(np.linalg.norm(X, axis=1), 1.0, atol=1e-4)  # the model ends in Normalize
    assert minilm.encoder_id == "st:sentence-transformers/all-MiniLM-L6-v2"


def test_cache_embeds_the_proxy_once_for_many_candidates(minilm, tmp_path):
    gsm = [s.text for s in read_samples(f"{DATA}/gsm8k/train.jsonl")]
    proxy = gsm[:20]
    candidates = [gsm[20:30], gsm[30:40], gsm[40:50]]
    cache = EmbeddingCache(tmp_path / "emb.sqlite")
    calls0 = minilm.calls
    results = [das_score(c, proxy, minilm, cache, progress=False) for c in candidates]
    # first run: proxy + candidate encoded (2 calls); later runs: only the candidate (1 call each)
    assert minilm.calls - calls0 == 4
    assert [r["embedding"]["proxy"]["encoded"] for r in results] == [20, 0, 0]
    assert [r["embedding"]["proxy"]["cached"] for r in results] == [0, 20, 20]
    assert cache.count(minilm.encoder_id) == 50
    # a second cache object on the same file sees the vectors (persisted), and they are identical
    cache2 = EmbeddingCache(tmp_path / "emb.sqlite")
    X, info = embed_texts(proxy, minilm, cache2, progress=False)
    assert info["encoded"] == 0 and minilm.calls - calls0 == 4
    assert np.allclose(X, minilm.encode(proxy), atol=1e-5)


def test_das_ranks_in_domain_data_above_general_data(minilm, tmp_path):
    """Small real-data slice: GSM8K proxy; held-out GSM8K above MATH above Dolly (full check: benchmarks/das_real_data.py)."""
    gsm = [s.text for s in read_samples(f"{DATA}/gsm8k/train.jsonl")]
    proxy, held_out = gsm[:60], gsm[3000:3060]
    math_ = [s.text for s in subsample(read_samples(f"{DATA}/math/math_test.jsonl"), 60, 42)]
    dolly = [s.text for s in subsample(read_samples(f"{DATA}/dolly/databricks-dolly-15k-nocategory.jsonl"), 60, 42)]
    cache = EmbeddingCache(tmp_path / "emb.sqlite")
    das = {
        name: das_score(t, proxy, minilm, cache, progress=False)["das"]
        for name, t in [("gsm8k", held_out), ("math", math_), ("dolly", dolly)]
    }
    assert das["gsm8k"] > das["math"] > das["dolly"], das


def test_cli_score_das_writes_json(tmp_path, monkeypatch):
    from prepbench.tools.cli import main

    rows = open(f"{DATA}/gsm8k/train.jsonl").read().split("\n")
    (tmp_path / "proxy.jsonl").write_text("\n".join(rows[:15]) + "\n")
    (tmp_path / "cand.jsonl").write_text("\n".join(rows[15:27]) + "\n")
    out = tmp_path / "das.json"
    main(
        [
            "score",
            "das",
            str(tmp_path / "cand.jsonl"),
            "--proxy",
            str(tmp_path / "proxy.jsonl"),
            "--cache",
            str(tmp_path / "c.sqlite"),
            "--sigma",
            "median",
            "--unbiased",
            "-o",
            str(out),
        ]
    )
    res = json.loads(out.read_text())["results"][0]
    assert res["n_candidate"] == 12 and res["n_proxy"] == 15 and res["dim"] == 384
    assert res["estimator"] == "unbiased" and res["sigma_rule"] == "median"
    assert res["das"] == pytest.approx(-np.sqrt(max(res["mmd2"], 0)))
    assert res["mmd2"] == pytest.approx(res["kxx"] + res["kyy"] - 2 * res["kxy"])


def test_cli_bad_dataset_line_is_a_one_line_error(tmp_path, capsys):
    from prepbench.tools.cli import main

    rows = open(f"{DATA}/gsm8k/train.jsonl").read().split("\n")[:3]
    bad = tmp_path / "bad.jsonl"
    bad.write_text(rows[0] + "\n" + rows[1][:40] + "\n")
    with pytest.raises(SystemExit) as e:
        main(["score", "das", str(bad), "--proxy", str(bad), "--cache", str(tmp_path / "c.sqlite")])
    assert e.value.code == 2
    err = capsys.readouterr().err
    assert "bad.jsonl:2" in err and "not valid JSON" in err and "Traceback" not in err
