"""``prepbench analyze METRICS RECORDS``: PCA of per-dataset intrinsic metrics and a linear fit of PGR (AgoraBench §5).

The analysis is :mod:`prepbench.evaluation.analyze`'s; this prints its table and where it wrote.
"""

from __future__ import annotations

from pathlib import Path

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table

_err = Console(stderr=True)


def analyze_cmd(
    metrics: Path = typer.Argument(..., help="Per-dataset metrics: CSV/JSON rows candidate,metric,value or a wide table."),
    records: Path = typer.Argument(..., help="PGR records: CSV/JSON/JSONL rows candidate,pgr (a candidate's rows are averaged)."),
    components: int = typer.Option(5, "--components", "-k", help="Principal components PGR is fitted on."),
    out: Path = typer.Option(Path("analysis"), "--out", "-o", help="Folder for analysis.json, analysis.md and pca.png."),
) -> None:
    """Standardise the metrics, run PCA, and fit PGR on the top components; prints the explained variance."""
    from prepbench.evaluation.analyze import run

    result, paths = run(metrics, records, components, out)
    t = Table(title=f"PCA of {len(result.metrics)} metrics over {len(result.candidates)} datasets")
    for col in ("component", "explained variance", "cumulative"):
        t.add_column(col, justify="right")
    for i, (r, c) in enumerate(zip(result.explained_variance, result.cumulative), 1):
        t.add_row(f"PC{i}" + (" *" if i <= result.k else ""), f"{r:.4f}", f"{c:.4f}")
    Console().print(t)
    fit = result.fit
    adj = f"{fit['adj_r2']:.3f}" if fit["adj_r2"] is not None else "-"
    Console().print(f"PGR ~ PC1..PC{result.k} (*): R² = {fit['r2']:.3f}, adjusted R² = {adj}")
    for n in result.notes:
        _err.print(f"[yellow]note:[/] {escape(n)}", highlight=False)
    _err.print(f"wrote {paths['json']}, {paths['markdown']} and {paths['plot']}")
