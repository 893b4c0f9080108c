"""``prepbench analyze``: which intrinsic properties of generated data explain its PGR.

AgoraBench (Kim et al., ACL 2025, "Evaluating Language Models as Synthetic Data Generators", §5)
stacks the intrinsic metrics of every generated dataset (response quality, instruction
difficulty, response perplexity, diversity, ...) into a table, standardises each metric,
runs a principal component analysis, and finds that the top five components explain 93% of
the variance; regressing PGR on the top components shows which combinations predict it.

Here: the metrics table (``candidate, metric, value`` rows or a wide table, as ``prepbench
correlate`` reads) is joined with PGR records (``candidate, pgr`` rows; several rows of a
candidate, e.g. one per benchmark, are averaged), standardised (scikit-learn
``StandardScaler``: zero mean, unit variance), decomposed (``PCA`` with every component, so
the explained-variance ratios sum to 1), and PGR is fitted on the scores of the top ``k``
components by least squares (``LinearRegression``; R² and adjusted R²). A fit needs more
datasets than components: fewer is refused with one line.
"""

from __future__ import annotations

import io
import json
from collections import defaultdict
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Mapping

import numpy as np

from prepbench.tools.errors import PrepbenchError

from .correlate import load_scores, read_rows, to_number

DEFAULT_COMPONENTS = 5


def load_pgr(path: str | Path) -> dict[str, float]:
    """``{candidate: PGR}`` from rows ``candidate, pgr`` (CSV, JSON or JSONL); a candidate's rows are averaged.

    Raises:
        PrepbenchError: a row without ``candidate`` or ``pgr``, a non-numeric PGR (names file and row), or no rows.
    """
    p = Path(path)
    acc: dict[str, list[float]] = defaultdict(list)
    for i, r in enumerate(read_rows(p), 2 if p.suffix.lower() == ".csv" else 1):
        if not isinstance(r, Mapping) or r.get("candidate") in (None, "") or r.get("pgr") in (None, ""):
            raise PrepbenchError(f"{p}: row {i} needs the fields 'candidate' and 'pgr'")
        acc[str(r["candidate"])].append(to_number(r["pgr"], f"{p}: row {i}, field 'pgr'"))
    if not acc:
        raise PrepbenchError(f"{p}: no PGR rows (candidate, pgr)")
    return {c: float(np.mean(v)) for c, v in acc.items()}


@dataclass
class Analysis:
    """The result of :func:`analyze`.

    Attributes:
        candidates: the joined datasets, in order; metrics: the metric columns used.
        explained_variance: the ratio of each component (sums to 1); cumulative: its running sum.
        loadings: per component, ``{metric: weight}`` (the PCA component vectors).
        k: components the fit uses; fit: ``{"coef", "intercept", "r2", "adj_r2", "predicted", "pgr"}``.
        notes: candidates or metrics left out, and why.
    """

    candidates: list[str]
    metrics: list[str]
    explained_variance: list[float]
    cumulative: list[float]
    loadings: list[dict[str, float]]
    k: int
    fit: dict[str, Any]
    notes: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def join(metrics: dict[str, dict[str, float]], pgr: dict[str, float]) -> tuple[list[str], list[str], np.ndarray, list[str]]:
    """The candidates with PGR and every metric, the metric names, the ``(n, m)`` matrix and notes.

    A metric missing for some candidate with PGR is dropped (noted) rather than the candidate;
    a metric constant over the candidates carries no variance and is dropped (noted).
    """
    notes = []
    cands = sorted(c for c in pgr if any(c in v for v in metrics.values()))
    missing = sorted(set(pgr) - set(cands))
    if missing:
        notes.append(f"no metrics for {len(missing)} candidate(s) with PGR: {', '.join(missing[:5])}")
    names = []
    for m in sorted(metrics):
        vals = [metrics[m].get(c) for c in cands]
        if any(v is None for v in vals):
            notes.append(f"metric {m} left out: missing for {sum(v is None for v in vals)} candidate(s)")
        elif len(set(vals)) < 2:
            notes.append(f"metric {m} left out: the same value for every candidate")
        else:
            names.append(m)
    X = np.array([[metrics[m][c] for m in names] for c in cands], dtype=np.float64).reshape(len(cands), len(names))
    return cands, names, X, notes


def analyze(metrics: dict[str, dict[str, float]], pgr: dict[str, float], k: int = DEFAULT_COMPONENTS) -> Analysis:
    """Standardise, PCA, and fit PGR on the top ``k`` components (see the module docstring).

    Raises:
        PrepbenchError: ``k`` below 1, more components than metrics, or not more datasets than components.
    """
    from sklearn.decomposition import PCA
    from sklearn.linear_model import LinearRegression
    from sklearn.preprocessing import StandardScaler

    cands, names, X, notes = join(metrics, pgr)
    n, m = X.shape
    if k < 1:
        raise PrepbenchError("--components must be at least 1")
    if m < k:
        raise PrepbenchError(f"analyze: {m} usable metric(s) for {k} components; lower --components or add metrics")
    if n <= k:
        raise PrepbenchError(
            f"analyze: {n} dataset(s) with metrics and PGR for {k} components; fitting PGR on {k} components "
            f"needs at least {k + 1} datasets (or a lower --components)"
        )
    Z = StandardScaler().fit_transform(X)
    pca = PCA(n_components=min(n, m), svd_solver="full").fit(Z)
    scores = pca.transform(Z)[:, :k]
    y = np.array([pgr[c] for c in cands])
    reg = LinearRegression().fit(scores, y)
    r2 = float(reg.score(scores, y))
    ratios = [float(r) for r in pca.explained_variance_ratio_]
    fit = {
        "coef": [float(c) for c in reg.coef_],
        "intercept": float(reg.intercept_),
        "r2": r2,
        "adj_r2": 1 - (1 - r2) * (n - 1) / (n - k - 1) if n - k - 1 > 0 else None,
        "predicted": [float(v) for v in reg.predict(scores)],
        "pgr": [float(v) for v in y],
    }
    return Analysis(
        candidates=cands,
        metrics=names,
        explained_variance=ratios,
        cumulative=[float(v) for v in np.cumsum(ratios)],
        loadings=[{name: float(w) for name, w in zip(names, comp)} for comp in pca.components_],
        k=k,
        fit=fit,
        notes=notes,
    )


def plot(result: Analysis) -> bytes:
    """A PNG: explained variance per component with its cumulative line, and PGR fitted vs measured."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (a, b) = plt.subplots(1, 2, figsize=(10, 4))
    idx = np.arange(1, len(result.explained_variance) + 1)
    a.bar(idx, result.explained_variance, color=["#1b9e77" if i <= result.k else "#bbbbbb" for i in idx])
    a.plot(idx, result.cumulative, "o-", color="#333333", label="cumulative")
    a.set_xlabel("principal component")
    a.set_ylabel("explained variance ratio")
    a.set_title(f"PCA of {len(result.metrics)} standardised metrics ({len(result.candidates)} datasets)")
    a.set_ylim(0, 1.05)
    a.legend(fontsize=8)
    b.scatter(result.fit["pgr"], result.fit["predicted"], color="#d95f02")
    for c, x, y in zip(result.candidates, result.fit["pgr"], result.fit["predicted"]):
        b.annotate(c, (x, y), textcoords="offset points", xytext=(4, 3), fontsize=7)
    lo, hi = min(result.fit["pgr"] + result.fit["predicted"]), max(result.fit["pgr"] + result.fit["predicted"])
    b.plot([lo, hi], [lo, hi], "--", color="#999999", linewidth=1)
    b.set_xlabel("PGR (measured)")
    b.set_ylabel(f"PGR fitted on the top {result.k} components")
    b.set_title(f"linear fit: R² = {result.fit['r2']:.3f}")
    fig.tight_layout()
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=130)
    plt.close(fig)
    return buf.getvalue()


def markdown(result: Analysis) -> str:
    """The analysis as Markdown: explained variance per component, the fit, the top loadings."""
    lines = ["# PCA of intrinsic metrics vs PGR", "", f"{len(result.candidates)} datasets, {len(result.metrics)} metrics.", ""]
    lines += ["| component | explained variance | cumulative | top loadings |", "|---:|---:|---:|---|"]
    for i, (r, c, load) in enumerate(zip(result.explained_variance, result.cumulative, result.loadings), 1):
        top = ", ".join(f"{m} {w:+.2f}" for m, w in sorted(load.items(), key=lambda kv: -abs(kv[1]))[:3])
        lines.append(f"| PC{i} | {r:.3f} | {c:.3f} | {top} |")
    f = result.fit
    adj = f"{f['adj_r2']:.3f}" if f["adj_r2"] is not None else "–"
    lines += ["", f"PGR ~ top {result.k} components: R² = {f['r2']:.3f}, adjusted R² = {adj}, intercept {f['intercept']:.3f}, "]
    lines[-1] += "coefficients " + ", ".join(f"PC{i} {c:+.3f}" for i, c in enumerate(f["coef"], 1)) + "."
    lines += [""] + [f"- {n}" for n in result.notes]
    return "\n".join(lines).rstrip() + "\n"


def write(result: Analysis, out: str | Path) -> dict[str, Path]:
    """Write ``analysis.json``, ``analysis.md`` and ``pca.png`` into ``out``; returns their paths."""
    d = Path(out)
    d.mkdir(parents=True, exist_ok=True)
    paths = {"json": d / "analysis.json", "markdown": d / "analysis.md", "plot": d / "pca.png"}
    paths["json"].write_text(json.dumps(result.to_dict(), indent=2) + "\n", encoding="utf-8")
    paths["markdown"].write_text(markdown(result), encoding="utf-8")
    paths["plot"].write_bytes(plot(result))
    return paths


def run(
    metrics_path: str | Path, records_path: str | Path, k: int = DEFAULT_COMPONENTS, out: str | Path = "analysis"
) -> tuple[Analysis, dict]:
    """Load both files, analyse, write the outputs: what ``prepbench analyze`` does."""
    result = analyze(load_scores(metrics_path), load_pgr(records_path), k)
    return result, write(result, out)
