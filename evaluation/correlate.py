"""Correlate per-candidate metric scores with downstream performance records (DataPrep-Bench Tables E/F).

Inputs (CSV or JSON):

``scores``   long rows ``candidate, metric, value``, or wide rows ``candidate, <metric>, <metric>, ...``,
             or a JSON object ``{candidate: {metric: value}}``.
``records``  rows ``candidate, base_model, benchmark, score`` (one fine-tuned result each).

For each metric and base model, performance is averaged over that base model's benchmarks per
candidate, and Pearson r / Spearman rho with two-sided p-values (``scipy.stats.pearsonr`` /
``spearmanr``) are taken across candidates; the same is done per benchmark, and for the
performance averaged over base models (column group ``avg``). A cell is *flagged* when
p < alpha AND the sign matches the metric's expected direction: MMD (and any metric whose name
contains ``mmd``) is expected negative, every other metric positive, unless overridden.
"""

from __future__ import annotations

import csv
import json
import math
import re
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping

from prepbench.tools.errors import PrepbenchError

AVG = "avg"


def read_rows(path: Path) -> list[dict]:
    """Rows of a CSV, JSON (a list of rows, or ``{candidate: {field: value}}``) or JSONL file.

    Raises:
        PrepbenchError: a missing file or invalid JSON (names file and line).
    """
    if not path.is_file():
        raise PrepbenchError(f"{path}: no such file")
    text = path.read_text(encoding="utf-8")
    if path.suffix.lower() in (".json", ".jsonl") or text.lstrip()[:1] in ("[", "{"):
        if path.suffix.lower() == ".jsonl":
            rows = []
            for i, line in enumerate(text.split("\n"), 1):
                if line.strip():
                    try:
                        rows.append(json.loads(line))
                    except json.JSONDecodeError as e:
                        raise PrepbenchError(f"{path}:{i}: not valid JSON ({e.msg})") from None
            return rows
        try:
            data = json.loads(text)
        except json.JSONDecodeError as e:
            raise PrepbenchError(f"{path}:{e.lineno}: not valid JSON ({e.msg})") from None
        if isinstance(data, Mapping):
            if all(isinstance(v, Mapping) for v in data.values()):
                return [{"candidate": k, **v} for k, v in data.items()]
            raise PrepbenchError(f"{path}: expected a list of rows or {{candidate: {{metric: value}}}}")
        if not isinstance(data, list):
            raise PrepbenchError(f"{path}: expected a JSON list of rows")
        return data
    return list(csv.DictReader(text.splitlines()))


def to_number(v: Any, where: str) -> float:
    """``v`` as a finite float; PrepbenchError naming ``where`` otherwise."""
    try:
        x = float(v)
    except (TypeError, ValueError):
        raise PrepbenchError(f"{where}: {v!r} is not a number") from None
    if not math.isfinite(x):
        raise PrepbenchError(f"{where}: {v!r} is not a finite number")
    return x


def load_scores(path: str | Path) -> dict[str, dict[str, float]]:
    """``{metric: {candidate: value}}`` from a long or wide scores file.

    Raises:
        PrepbenchError: no ``candidate`` column, a non-numeric value (names file, row, field), or no data.
    """
    p = Path(path)
    rows = read_rows(p)
    if not rows:
        raise PrepbenchError(f"{p}: no rows")
    out: dict[str, dict[str, float]] = defaultdict(dict)
    for i, r in enumerate(rows, 2 if p.suffix.lower() == ".csv" else 1):
        if not isinstance(r, Mapping) or "candidate" not in r:
            raise PrepbenchError(f"{p}: row {i} has no 'candidate' field")
        cand = str(r["candidate"])
        if "metric" in r and "value" in r:
            out[str(r["metric"])][cand] = to_number(r["value"], f"{p}: row {i}, field 'value'")
        else:
            for k, v in r.items():
                if k == "candidate" or v in (None, ""):
                    continue
                out[str(k)][cand] = to_number(v, f"{p}: row {i}, field {k!r}")
    if not out:
        raise PrepbenchError(f"{p}: no metric values")
    return dict(out)


def _truthy(v: Any) -> bool:
    return v is True or str(v).strip().lower() in ("1", "true", "yes")


def load_records(path: str | Path) -> list[tuple[str, str, str, float]]:
    """``[(candidate, base_model, benchmark, score)]`` from a records file.

    Accepts plain rows ``candidate, base_model, benchmark, score`` and the score records of
    ``prepbench evaluate`` (:mod:`prepbench.evaluation.records`): when rows carry a ``primary``
    field only the primary (headline) metric rows are used, and rows with an empty
    ``candidate`` (an untrained base model) are skipped.

    Raises:
        PrepbenchError: a missing field or non-numeric score (names file, row, field), or no rows left.
    """
    p = Path(path)
    rows = read_rows(p)
    has_primary = any(isinstance(r, Mapping) and "primary" in r for r in rows)
    out = []
    for i, r in enumerate(rows, 2 if p.suffix.lower() == ".csv" else 1):
        if not isinstance(r, Mapping):
            raise PrepbenchError(f"{p}: row {i} is not an object")
        if has_primary and not _truthy(r.get("primary")):
            continue
        if has_primary and r.get("candidate") in (None, ""):
            continue
        for k in ("candidate", "base_model", "benchmark", "score"):
            if r.get(k) in (None, ""):
                raise PrepbenchError(f"{p}: row {i} has no {k!r} field")
        out.append(
            (
                str(r["candidate"]),
                str(r["base_model"]),
                str(r["benchmark"]),
                to_number(r["score"], f"{p}: row {i}, field 'score'"),
            )
        )
    if not out:
        raise PrepbenchError(f"{p}: no usable rows (candidate, base_model, benchmark, score)")
    return out


def expected_direction(metric: str, overrides: Mapping[str, int] | None = None) -> int:
    """+1 or -1: the sign a useful metric should have (``mmd`` in the name -> -1, else +1; overrides win)."""
    if overrides and metric in overrides:
        return overrides[metric]
    return -1 if "mmd" in metric.lower() else 1


def parse_directions(spec: str | None) -> dict[str, int]:
    """``"ppl=-1,dvs=+1"`` -> ``{"ppl": -1, "dvs": 1}``.

    Raises:
        PrepbenchError: malformed spec.
    """
    out: dict[str, int] = {}
    for part in (spec or "").split(","):
        if not part.strip():
            continue
        k, _, v = part.partition("=")
        v = v.strip().lower()
        if v in ("-1", "-", "neg", "negative"):
            out[k.strip()] = -1
        elif v in ("1", "+1", "+", "pos", "positive"):
            out[k.strip()] = 1
        else:
            raise PrepbenchError(f"--direction {spec!r}: use metric=+1 or metric=-1")
    return out


@dataclass
class Cell:
    """One correlation: a metric against performance of one group (base model or avg) on one benchmark (or avg)."""

    metric: str
    group: str
    benchmark: str
    n: int
    pearson_r: float | None
    pearson_p: float | None
    spearman_rho: float | None
    spearman_p: float | None
    expected: int
    alpha: float

    def flag(self, which: str) -> bool:
        r, p = (self.pearson_r, self.pearson_p) if which == "pearson" else (self.spearman_rho, self.spearman_p)
        if r is None or p is None or (isinstance(p, float) and math.isnan(p)):
            return False
        return p < self.alpha and (r > 0) == (self.expected > 0) and r != 0


def _corr(x: list[float], y: list[float]) -> tuple:
    from scipy import stats

    if len(x) < 3 or len(set(x)) < 2 or len(set(y)) < 2:
        return None, None, None, None
    pr = stats.pearsonr(x, y)
    sr = stats.spearmanr(x, y)
    return float(pr.statistic), float(pr.pvalue), float(sr.statistic), float(sr.pvalue)


def correlate(
    scores: dict[str, dict[str, float]],
    records: list[tuple[str, str, str, float]],
    directions: Mapping[str, int] | None = None,
    alpha: float = 0.05,
) -> list[Cell]:
    """All correlation cells: per metric x (each base model, ``avg``) x (each benchmark, ``avg``).

    Performance of a candidate for a base model = mean of its scores over that base model's
    benchmarks; ``avg`` group = mean over base models (candidates present for every base model).
    Cells with fewer than 3 candidates or a constant side have ``None`` statistics.
    """
    perf: dict[tuple[str, str], dict[str, list[float]]] = defaultdict(lambda: defaultdict(list))
    base_models = sorted({r[1] for r in records})
    benchmarks = sorted({r[2] for r in records})
    for cand, bm, bench, sc in records:
        perf[(bm, bench)][cand].append(sc)
        perf[(bm, AVG)][cand].append(sc)
    # per (base model, benchmark-or-avg): candidate -> mean score
    table: dict[tuple[str, str], dict[str, float]] = {k: {c: sum(v) / len(v) for c, v in d.items()} for k, d in perf.items()}
    for bench in benchmarks + [AVG]:
        per_bm = [table.get((bm, bench), {}) for bm in base_models]
        common = set.intersection(*(set(d) for d in per_bm)) if per_bm else set()
        table[(AVG, bench)] = {c: sum(d[c] for d in per_bm) / len(per_bm) for c in common}
    cells = []
    for metric in sorted(scores):
        vals = scores[metric]
        exp = expected_direction(metric, directions)
        for group in base_models + [AVG]:
            for bench in [AVG] + benchmarks:
                y_by_c = table.get((group, bench), {})
                cands = sorted(set(vals) & set(y_by_c))
                x = [vals[c] for c in cands]
                y = [y_by_c[c] for c in cands]
                r, rp, rho, sp = _corr(x, y)
                cells.append(Cell(metric, group, bench, len(cands), r, rp, rho, sp, exp, alpha))
    return cells


def _fmt(v: float | None, digits: int = 3) -> str:
    return "–" if v is None or (isinstance(v, float) and math.isnan(v)) else f"{v:.{digits}f}"


def markdown_table(cells: list[Cell], benchmark: str = AVG) -> str:
    """Tables E/F layout: metrics as rows; per base model (then ``avg``) a column group r, p, ρ, p.

    Flagged values (significant and in the expected direction) are bold with a dagger.
    """
    sel = [c for c in cells if c.benchmark == benchmark]
    groups = list(dict.fromkeys(c.group for c in sel))
    metrics = list(dict.fromkeys(c.metric for c in sel))
    by = {(c.metric, c.group): c for c in sel}
    head = "| metric | exp. | " + " | ".join(f"{g} r | {g} p | {g} ρ | {g} p" for g in groups) + " |"
    sep = "|---|---|" + "---:|" * (4 * len(groups))
    lines = [head, sep]
    for m in metrics:
        row = [m, "−" if by[(m, groups[0])].expected < 0 else "+"]
        for g in groups:
            c = by[(m, g)]
            for which, (v, p) in (("pearson", (c.pearson_r, c.pearson_p)), ("spearman", (c.spearman_rho, c.spearman_p))):
                s = _fmt(v)
                if c.flag(which):
                    s = f"**{s}**†"
                row += [s, _fmt(p)]
        lines.append("| " + " | ".join(row) + " |")
    return "\n".join(lines)


def write_outputs(cells: list[Cell], scores: dict, records: list, out_dir: str | Path, plots: bool = True) -> dict:
    """Write ``correlations.csv`` (every cell), ``correlations.md`` (Tables E/F layout, averaged over
    benchmarks, then one table per benchmark) and ``plots/<metric>.png`` (x = metric, y = performance
    averaged over benchmarks, one colour per base model). Returns the written paths."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    csv_path = out / "correlations.csv"
    with csv_path.open("w", newline="", encoding="utf-8") as f:
        w = csv.writer(f)
        w.writerow(
            [
                "metric",
                "base_model",
                "benchmark",
                "n",
                "pearson_r",
                "pearson_p",
                "spearman_rho",
                "spearman_p",
                "expected_sign",
                "pearson_flag",
                "spearman_flag",
            ]
        )
        for c in cells:
            w.writerow(
                [
                    c.metric,
                    c.group,
                    c.benchmark,
                    c.n,
                    c.pearson_r,
                    c.pearson_p,
                    c.spearman_rho,
                    c.spearman_p,
                    c.expected,
                    int(c.flag("pearson")),
                    int(c.flag("spearman")),
                ]
            )
    benches = [b for b in dict.fromkeys(c.benchmark for c in cells) if b != AVG]
    md = [
        "# Metric–performance correlations",
        "",
        f"Pearson r and Spearman ρ with two-sided p-values across candidates; **bold†** = p < {cells[0].alpha if cells else 0.05} "
        "and in the expected direction (exp.).",
        "",
        "## Performance averaged over benchmarks",
        "",
        markdown_table(cells, AVG),
        "",
    ]
    for b in benches:
        md += [f"## Benchmark: {b}", "", markdown_table(cells, b), ""]
    md_path = out / "correlations.md"
    md_path.write_text("\n".join(md), encoding="utf-8")
    written = {"csv": str(csv_path), "markdown": str(md_path), "plots": []}
    if plots:
        written["plots"] = _plots(cells, scores, records, out / "plots")
    return written


def _plots(cells: list[Cell], scores: dict, records: list, folder: Path) -> list[str]:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    folder.mkdir(parents=True, exist_ok=True)
    perf: dict[str, dict[str, list[float]]] = defaultdict(lambda: defaultdict(list))
    for cand, bm, _bench, sc in records:
        perf[bm][cand].append(sc)
    by = {(c.metric, c.group): c for c in cells if c.benchmark == AVG}
    paths = []
    for metric, vals in sorted(scores.items()):
        fig, ax = plt.subplots(figsize=(5.5, 4.0), dpi=110)
        for bm in sorted(perf):
            cands = sorted(set(vals) & set(perf[bm]))
            xs = [vals[c] for c in cands]
            ys = [sum(perf[bm][c]) / len(perf[bm][c]) for c in cands]
            c = by.get((metric, bm))
            lab = f"{bm} (r={_fmt(c.pearson_r, 2)}, ρ={_fmt(c.spearman_rho, 2)})" if c else bm
            ax.scatter(xs, ys, label=lab)
            for x, y, name in zip(xs, ys, cands):
                ax.annotate(name, (x, y), fontsize=7, xytext=(3, 3), textcoords="offset points")
        ax.set_xlabel(metric)
        ax.set_ylabel("performance (mean over benchmarks)")
        ax.set_title(f"{metric} vs downstream performance")
        ax.legend(fontsize=7)
        fig.tight_layout()
        path = folder / (re.sub(r"[^A-Za-z0-9_.-]+", "_", metric) + ".png")
        fig.savefig(path)
        plt.close(fig)
        paths.append(str(path))
    return paths
