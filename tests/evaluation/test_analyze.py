"""``prepbench analyze``: weight-free metrics of nine real dataset slices, joined with PGR values,
standardised and decomposed; the explained variance sums to 1 and equals scikit-learn's
computed here, and so does the fit of PGR on the top components.

No model is trained here, so the PGR values are a fixed linear function of two standardised
metrics plus seeded noise (the fit must then recover most of the variance)."""

from __future__ import annotations

import csv
import json
import random

import numpy as np
import pytest

from prepbench.evaluation.analyze import analyze, load_pgr
from prepbench.evaluation.correlate import load_scores
from prepbench.evaluation.metrics import compute_metrics
from prepbench.evaluation.readers import read_samples
from prepbench.tools.errors import PrepbenchError

from cli_helpers import SHARED, error_lines, run_cli

D = SHARED / "datasets"
SLICES = {
    "gsm8k_train_a": (D / "gsm8k" / "train.jsonl", 0),
    "gsm8k_train_b": (D / "gsm8k" / "train.jsonl", 60),
    "gsm8k_test": (D / "gsm8k" / "test.jsonl", 0),
    "math_test": (D / "math" / "math_test.jsonl", 0),
    "dolly_a": (D / "dolly" / "databricks-dolly-15k-nocategory.jsonl", 0),
    "dolly_b": (D / "dolly" / "databricks-dolly-15k-nocategory.jsonl", 3000),
    "alpaca_a": (D / "alpaca" / "alpaca_data_5000.jsonl", 0),
    "alpaca_b": (D / "alpaca" / "alpaca_data_5000.jsonl", 2000),
    "pubmedqa": (D / "pubmedqa" / "pqal_train_dev.jsonl", 0),
}
COLUMNS = {
    "distinct_1": ("ngram", "distinct_1"),
    "distinct_2": ("ngram", "distinct_2"),
    "rep_2": ("ngram", "rep_2"),
    "entropy_bits": ("ngram", "entropy_bits"),
    "compression_ratio": ("compression", "compression_ratio"),
    "instruction_words": ("length", "instruction_words"),
    "response_words": ("length", "response_words"),
}


@pytest.fixture(scope="module")
def table(tmp_path_factory):
    """metrics.csv (wide: candidate + 7 metrics) and pgr.csv for the nine slices, and the raw matrix."""
    d = tmp_path_factory.mktemp("analyze")
    rows = []
    for name, (path, start) in SLICES.items():
        m = compute_metrics(read_samples(path)[start : start + 60], ["ngram", "compression", "length"])["metrics"]
        row = {"candidate": name}
        for col, (s, k) in COLUMNS.items():
            v = m[s][k]
            row[col] = v["mean"] if isinstance(v, dict) else v
        rows.append(row)
    with open(d / "metrics.csv", "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=["candidate", *COLUMNS])
        w.writeheader()
        w.writerows(rows)
    X = np.array([[r[c] for c in COLUMNS] for r in rows])
    z = (X - X.mean(0)) / X.std(0)
    rng = random.Random(3)
    pgr = {r["candidate"]: 20 + 8 * z[i, 6] - 5 * z[i, 1] + rng.gauss(0, 1) for i, r in enumerate(rows)}
    # PGR per benchmark, two rows per candidate: analyze averages them
    (d / "pgr.jsonl").write_text(
        "".join(
            json.dumps({"candidate": c, "benchmark": b, "pgr": v + s}) + "\n"
            for c, v in pgr.items()
            for b, s in (("a", 1), ("b", -1))
        )
    )
    return d, rows, X, pgr


def test_explained_variance_and_fit_match_scikit_learn(table):
    from sklearn.decomposition import PCA
    from sklearn.linear_model import LinearRegression
    from sklearn.preprocessing import StandardScaler

    d, rows, X, pgr = table
    res = analyze(load_scores(d / "metrics.csv"), load_pgr(d / "pgr.jsonl"), k=3)
    assert res.candidates == sorted(SLICES) and res.metrics == sorted(COLUMNS)
    assert sum(res.explained_variance) == pytest.approx(1.0, abs=1e-9) and len(res.explained_variance) == 7
    # scikit-learn on the same table, in the file's order
    order = [sorted(COLUMNS).index(c) for c in COLUMNS]
    Xs = X[[[r["candidate"] for r in rows].index(c) for c in res.candidates]][:, np.argsort(order)]
    pca = PCA().fit(StandardScaler().fit_transform(Xs))
    assert np.allclose(res.explained_variance, pca.explained_variance_ratio_, atol=1e-10)
    assert np.allclose(res.cumulative, np.cumsum(pca.explained_variance_ratio_))
    scores = pca.transform(StandardScaler().fit_transform(Xs))[:, :3]
    y = np.array([pgr[c] for c in res.candidates])
    reg = LinearRegression().fit(scores, y)
    assert res.fit["r2"] == pytest.approx(reg.score(scores, y), abs=1e-9) and res.fit["r2"] > 0.7
    assert np.allclose(res.fit["predicted"], reg.predict(scores)) and np.allclose(res.fit["pgr"], y)
    for comp, load in zip(pca.components_, res.loadings):  # a component's sign is arbitrary
        assert np.allclose(np.abs(comp), np.abs([load[m] for m in res.metrics]))


def test_cli_writes_the_table_and_the_plot_and_refuses_too_few_datasets(table, tmp_path):
    d, rows, _, pgr = table
    out = tmp_path / "a"
    p = run_cli("analyze", str(d / "metrics.csv"), str(d / "pgr.jsonl"), "--out", str(out))
    assert p.returncode == 0, p.stderr
    assert "PC1 *" in p.stdout and "PC5 *" in p.stdout and "PC6 " in p.stdout and "R² =" in p.stdout
    data = json.loads((out / "analysis.json").read_text())
    assert data["k"] == 5 and sum(data["explained_variance"]) == pytest.approx(1.0)
    assert (out / "pca.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and "| PC1 |" in (out / "analysis.md").read_text()
    few = tmp_path / "few.csv"
    few.write_text("candidate,pgr\n" + "".join(f"{c},{v}\n" for c, v in list(pgr.items())[:5]))
    p = run_cli("analyze", str(d / "metrics.csv"), str(few), "--out", str(tmp_path / "b"))
    lines = error_lines(p)
    assert p.returncode == 2 and len(lines) == 1 and "5 dataset(s) with metrics and PGR for 5 components" in lines[0]
    with pytest.raises(PrepbenchError, match="row 2 needs the fields 'candidate' and 'pgr'"):
        bad = tmp_path / "bad.csv"
        bad.write_text("candidate,score\nx,1\n")
        load_pgr(bad)
