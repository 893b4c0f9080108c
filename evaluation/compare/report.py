"""The comparison report: tables (DataPrep-Bench Tables A-D in spirit), PNG plots, Markdown and
a self-contained HTML page (CSS inline, plots as base64 ``data:`` URIs, no external reference)."""

from __future__ import annotations

import base64
import html
import io
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

#: metric values shown in Table B: (set, key, label, better: +1 higher, -1 lower, 0 neither)
METRIC_COLUMNS = (
    ("lexical", "mtld", "MTLD", 1),
    ("lexical", "hdd", "HD-D", 1),
    ("ngram", "distinct_1", "distinct-1", 1),
    ("ngram", "distinct_2", "distinct-2", 1),
    ("ngram", "rep_2", "rep-2", -1),
    ("ngram", "entropy_bits", "entropy (bits)", 1),
    ("compression", "compression_ratio", "gzip ratio", -1),
    ("length", "instruction_words.mean", "question words", 0),
    ("length", "response_words.mean", "answer words", 0),
    ("embedding", "vendi", "Vendi", 1),
    ("embedding", "knn_distance", "kNN distance", 1),
    ("embedding", "pairwise_cosine", "pairwise cos", -1),
    ("embedding", "radius", "radius", 1),
)


def dig(d: dict | None, dotted: str):
    """``d["a"]["b"]`` for ``"a.b"``; None where a level is missing."""
    for part in dotted.split("."):
        if not isinstance(d, dict):
            return None
        d = d.get(part)
    return d


# ---------------------------------------------------------------------------------------
# tables (shared by Markdown and HTML)
# ---------------------------------------------------------------------------------------


def fmt_value(v: Any, kind: str = "g") -> str:
    """A report cell: ``–`` for None; ``kind`` int, pct, usd, s (seconds), pgr or g (general)."""
    if v is None:
        return "–"
    if isinstance(v, bool):
        return "yes" if v else "no"
    if kind == "int":
        return f"{int(v):,}"
    if kind == "pct":
        return f"{v:.1%}"
    if kind == "usd":
        return f"${v:.4f}" if v < 100 else f"${v:,.2f}"
    if kind == "s":
        return f"{v:.1f}"
    if kind == "pgr":
        return f"{v:+.1f}"
    if isinstance(v, float):
        return f"{v:.4f}" if abs(v) < 10 else f"{v:.1f}"
    return str(v)


@dataclass
class Table:
    """A report table: ``cells[i][j]`` are display strings; ``best[i][j]`` marks the best value of a column."""

    key: str
    title: str
    caption: str
    headers: list[str]
    cells: list[list[str]]
    best: list[list[bool]] = field(default_factory=list)
    numeric: list[bool] = field(default_factory=list)


def _column_table(key, title, caption, rows_label, rows, columns) -> Table:
    """Rows are entities (families); columns ``(label, values, kind, better)`` with ``values[i]`` raw."""
    cols = [c for c in columns if any(v is not None for v in c[1])]  # drop all-empty columns
    headers = [rows_label] + [c[0] + (" ↑" if c[3] > 0 else " ↓" if c[3] < 0 else "") for c in cols]
    cells = [[r] + [fmt_value(c[1][i], c[2]) for c in cols] for i, r in enumerate(rows)]
    best = [[False] * len(headers) for _ in rows]
    for j, c in enumerate(cols, 1):
        vals = [v for v in c[1] if isinstance(v, (int, float)) and not isinstance(v, bool)]
        if c[3] and len(rows) > 1 and len(set(vals)) > 1:
            target = max(vals) if c[3] > 0 else min(vals)
            for i, v in enumerate(c[1]):
                best[i][j] = v == target
    return Table(key, title, caption, headers, cells, best, [False] + [True] * len(cols))


def build_tables(report: dict[str, Any]) -> list[Table]:
    """Tables A (construction), B (data metrics), C (candidates' fate), per-document coverage, D (downstream)."""
    tables = [_construction_table(report), _metrics_table(report), _fate_table(report), _documents_table(report)]
    if report.get("downstream"):
        tables.append(_downstream_table(report))
    return tables


def _names(fams: list[dict]) -> list[str]:
    return [f"{f['family']} ({f['model']})" for f in fams]


def _construction_table(report: dict[str, Any]) -> Table:
    fams = report["families"]
    g = lambda fn: [fn(f) for f in fams]  # noqa: E731
    return _column_table(
        "construction",
        "Table A: construction and cost",
        "Chunks and samples from each run's ledger; tokens and cost summed over its model calls; wall time of the runs' "
        "generation (accumulated over resumed sessions).",
        "family (model)",
        _names(fams),
        [
            ("chunks", g(lambda f: f["chunks"]["total"]), "int", 0),
            ("kept", g(lambda f: f["chunks"]["kept"]), "int", 1),
            ("skipped", g(lambda f: f["chunks"]["skipped"]), "int", 0),
            ("failed", g(lambda f: f["chunks"]["failed"]), "int", -1),
            ("kept share", g(lambda f: f["kept_share"]), "pct", 1),
            ("accepted", g(lambda f: f["samples"]["accepted"]), "int", 1),
            ("rejected", g(lambda f: f["samples"]["rejected"]), "int", -1),
            ("accept rate", g(lambda f: f["derived"]["acceptance_rate"]), "pct", 1),
            ("calls", g(lambda f: f["calls"]["count"]), "int", 0),
            ("tokens in", g(lambda f: f["calls"]["input_tokens"]), "int", -1),
            ("tokens out", g(lambda f: f["calls"]["output_tokens"]), "int", -1),
            ("cost (USD)", g(lambda f: f["calls"]["cost_usd"]), "usd", -1),
            ("wall (s)", g(lambda f: f["wall_s"]), "s", -1),
            ("complete", g(lambda f: f["complete"]), "g", 0),
        ],
    )


def _metrics_table(report: dict[str, Any]) -> Table:
    fams = report["families"]
    g = lambda fn: [fn(f) for f in fams]  # noqa: E731
    cols = [
        ("DAS", g(lambda f: dig(f["scores"]["das"], "das")), "g", 1),
        ("MMD²", g(lambda f: dig(f["scores"]["das"], "mmd2")), "g", -1),
        ("DVS", g(lambda f: dig(f["scores"]["dvs"], "dvs")), "g", 1),
    ] + [
        (label, g(lambda f, s=s, k=k: dig((f["scores"]["metrics"] or {}).get(s), k)), "g", better)
        for s, k, label, better in METRIC_COLUMNS
    ]
    cap = "Scores of each run's accepted samples. "
    if report.get("proxy"):
        sig = next((f["scores"]["das"]["sigma"] for f in fams if f["scores"]["das"]), None)
        cap += (
            f"DAS = −MMD (RBF kernel, σ = {fmt_value(sig)}, biased estimator) against the proxy {Path(report['proxy']).name}, "
            f"encoder {report['encoder']}. "
        )
    if report.get("judge"):
        cap += f"DVS: judge {report['judge']}, DataChef rubric A–E. "
    cap += (
        "Weight-free metrics: lexical (MTLD, HD-D), n-gram, gzip, length, embedding diversity. ↑/↓: better direction; bold: best."
    )
    return _column_table("metrics", "Table B: data metrics", cap, "family (model)", _names(fams), cols)


def _fate_table(report: dict[str, Any]) -> Table:
    """Table C: where the candidates went."""
    fams = report["families"]
    fate_rows: list[tuple[str, list]] = []
    for kind, key in (("type", "sample_types"), ("rejected", "rejections"), ("skipped", "skip_reasons")):
        keys = sorted({k for f in fams for k in f[key]})
        for k in keys:
            fate_rows.append((f"{kind}: {k}", [f[key].get(k, 0) for f in fams]))
    return Table(
        "fate",
        "Table C: where the candidates went",
        "Accepted samples per sample type, rejected candidates per validation rule, skipped chunks per skip reason.",
        ["", *[f["family"] for f in fams]],
        [[lab, *(fmt_value(v, "int") for v in vals)] for lab, vals in fate_rows],
        [],
        [False] + [True] * len(fams),
    )


def _documents_table(report: dict[str, Any]) -> Table:
    fams = report["families"]
    docs = sorted({d["document"] for f in fams for d in f["documents"] if d["chunks"]})
    drows = []
    for d in docs:
        row = [d]
        for f in fams:
            m = next((x for x in f["documents"] if x["document"] == d), None)
            row.append(f"{m['kept']}/{m['chunks']} kept, {m['accepted']} acc." if m else "–")
        drows.append(row)
    return Table(
        "documents",
        "Coverage per document",
        "Kept chunks / chunks in the run and accepted samples, per document"
        + (" (documents with no chunk within --limit left out)." if report.get("limit") else "."),
        ["document", *[f["family"] for f in fams]],
        drows,
        [],
        [False] + [True] * len(fams),
    )


def _roles(report: dict[str, Any]) -> list[str]:
    """Columns of the downstream table and plot: base and reference (when given), then the families."""
    ds = report["downstream"]
    return [r for r in _REFERENCE_ROLES if r in ds["models"]] + [f["family"] for f in report["families"]]


def _downstream_table(report: dict[str, Any]) -> Table:
    """Table D: per-benchmark scores, each family's with its PGR, and the average PGR."""
    fams, ds = report["families"], report["downstream"]
    roles = _roles(report)
    rows = []
    for bench, v in ds["benchmarks"].items():
        row = [bench, v["metric"]]
        for role in roles:
            cell = fmt_value(v.get(role))
            if role not in _REFERENCE_ROLES and ds["pgr"]:
                pr = next((x for x in ds["pgr"].get(role, {}).get("rows", []) if x["benchmark"] == bench), None)
                if pr and pr["pgr"] is not None:
                    cell += f" (PGR {pr['pgr']:+.1f})"
            row.append(cell)
        rows.append(row)
    if ds["pgr"]:
        rows.append(
            ["average PGR (%)", ""]
            + ["" for r in roles if r in _REFERENCE_ROLES]
            + [fmt_value(ds["pgr"].get(f["family"], {}).get("average"), "pgr") for f in fams]
        )
    headers = ["benchmark", "metric"] + [f"{r} ({ds['models'][r]})" if ds["models"].get(r) not in (None, r) else r for r in roles]
    return Table(
        "downstream",
        "Table D: downstream scores and PGR",
        "Benchmark scores (fractions) from the score records; PGR = (T − B)/(R − B) × 100 per benchmark "
        "(AgoraBench, Kim et al., 2024), averaged over benchmarks with a defined gap.",
        headers,
        rows,
        [],
        [False, False] + [True] * len(roles),
    )


# ---------------------------------------------------------------------------------------
# plots (matplotlib, Agg)
# ---------------------------------------------------------------------------------------

_REFERENCE_ROLES = ("base", "reference")  # downstream roles that are not agent families
_COLORS = {"skill": "#1b9e77", "direct": "#d95f02", "react": "#7570b3", "base": "#999999", "reference": "#555555"}


def make_plots(report: dict[str, Any]) -> dict[str, bytes]:
    """PNG plots: ``cost_vs_accepted``, ``coverage_per_document``, ``benchmarks`` (when records were given).

    Returns:
        file stem -> PNG bytes (150 dpi).
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    out: dict[str, bytes] = {}

    def save(fig, name):
        buf = io.BytesIO()
        fig.savefig(buf, format="png", dpi=150, bbox_inches="tight")
        plt.close(fig)
        out[name] = buf.getvalue()

    save(_plot_cost(plt, report["families"]), "cost_vs_accepted")
    docs = sorted({d["document"] for f in report["families"] for d in f["documents"] if d["chunks"]})
    if docs:
        save(_plot_coverage(plt, report["families"], docs), "coverage_per_document")
    ds = report.get("downstream")
    if ds and ds["benchmarks"]:
        save(_plot_benchmarks(plt, report), "benchmarks")
    return out


def _plot_cost(plt, fams: list[dict]):
    """Cost vs accepted samples: one point per family; details in the legend, names next to the points.
    When no run has a cost (no model with a price), tokens stand in for cost on the x axis."""
    fig, ax = plt.subplots(figsize=(7.2, 4.2))
    costs = [f["calls"]["cost_usd"] for f in fams]
    tokens = [f["calls"]["input_tokens"] + f["calls"]["output_tokens"] for f in fams]
    by_cost = any(c > 0 for c in costs) or not any(tokens)
    xs = costs if by_cost else tokens
    ys = [f["samples"]["accepted"] for f in fams]
    seen: dict[tuple, int] = {}
    for f, x, y, c, tok in zip(fams, xs, ys, costs, tokens):
        ax.scatter(
            [x],
            [y],
            s=90,
            color=_COLORS.get(f["family"]),
            zorder=3,
            edgecolor="black",
            linewidth=0.6,
            label=f"{f['family']} ({f['model']}): ${c:.4f}, {tok:,} tokens, {f['wall_s']:.1f} s",
        )
        key = (round(x, 6), y)
        k = seen[key] = seen.get(key, -1) + 1  # stagger the names of coinciding points
        ax.annotate(f["family"], (x, y), textcoords="offset points", xytext=(8, 6 - 13 * k), fontsize=9)
    ax.set_xlim(-0.08 * (max(xs) or 1), (max(xs) or 1) * 1.25)
    ax.set_ylim(0, max(ys + [1]) * 1.2)
    ax.set_xlabel("cost (USD)" if by_cost else "tokens (in + out): no model has a price (see --prices), so no cost")
    ax.set_ylabel("accepted samples")
    ax.set_title("Cost vs accepted samples" if by_cost else "Tokens vs accepted samples")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8, loc="upper center", bbox_to_anchor=(0.5, -0.16), frameon=False)
    return fig


def _plot_coverage(plt, fams: list[dict], docs: list[str]):
    """Coverage per document: kept share and accepted samples, grouped by family."""
    import numpy as np

    fig, axes = plt.subplots(1, 2, figsize=(10, 1.2 + 0.3 * len(docs) * max(1, len(fams))))
    h = 0.8 / max(1, len(fams))
    yk = np.arange(len(docs))
    for i, f in enumerate(fams):
        by = {d["document"]: d for d in f["documents"]}
        share = [(by[d]["kept"] / by[d]["chunks"]) if d in by and by[d]["chunks"] else 0.0 for d in docs]
        acc = [by[d]["accepted"] if d in by else 0 for d in docs]
        pos = yk - 0.4 + h * (i + 0.5)
        axes[0].barh(pos, share, height=h, color=_COLORS.get(f["family"]), label=f["family"])
        axes[1].barh(pos, acc, height=h, color=_COLORS.get(f["family"]), label=f["family"])
    labels = [d if len(d) <= 38 else d[:35] + "…" for d in docs]
    for ax, title in ((axes[0], "kept chunks / chunks"), (axes[1], "accepted samples")):
        ax.set_yticks(yk)
        ax.set_yticklabels(labels, fontsize=8)
        ax.invert_yaxis()
        ax.set_title(title)
        ax.grid(axis="x", alpha=0.3)
    axes[0].set_xlim(0, 1.05)
    axes[1].set_yticklabels([])
    axes[1].legend(fontsize=8, loc="upper left", bbox_to_anchor=(1.01, 1.0), frameon=False)
    return fig


def _plot_benchmarks(plt, report: dict[str, Any]):
    """Per-benchmark scores of base, reference and each family (hatched: not a family)."""
    import numpy as np

    ds = report["downstream"]
    benches = list(ds["benchmarks"])
    roles = _roles(report)
    fig, ax = plt.subplots(figsize=(max(6.4, 1.6 * len(benches) + 2), 4.2))
    w = 0.8 / len(roles)
    x = np.arange(len(benches))
    for i, role in enumerate(roles):
        vals = [ds["benchmarks"][b].get(role) for b in benches]
        ax.bar(
            x - 0.4 + w * (i + 0.5),
            [v if v is not None else 0 for v in vals],
            width=w,
            color=_COLORS.get(role),
            label=role,
            hatch="//" if role in _REFERENCE_ROLES else None,
            edgecolor="white",
        )
    ax.set_xticks(x)
    ax.set_xticklabels(benches, fontsize=9)
    ax.set_ylabel("score")
    ax.set_ylim(0, 1.0 if all((v or 0) <= 1 for b in benches for k, v in ds["benchmarks"][b].items() if k != "metric") else None)
    ax.set_title("Per-benchmark scores")
    ax.legend(fontsize=8, ncol=min(len(roles), 5))
    ax.grid(axis="y", alpha=0.3)
    return fig


# ---------------------------------------------------------------------------------------
# rendering
# ---------------------------------------------------------------------------------------

_PLOT_TITLES = {
    "cost_vs_accepted": "Cost vs accepted samples",
    "coverage_per_document": "Coverage per document",
    "benchmarks": "Per-benchmark scores",
}


def _md_cell(s: str) -> str:
    return s.replace("|", "\\|").replace("\n", " ")


def render_markdown(report: dict[str, Any], tables: list[Table], plots: dict[str, str]) -> str:
    """The Markdown report; ``plots`` maps a plot stem to its PNG file name (relative links)."""
    lines = [f"# {_title(report)}", ""]
    lines += _summary_lines(report)
    lines.append("")
    for t in tables:
        lines += [f"## {t.title}", "", t.caption, ""]
        if not t.cells:
            lines += ["(none)", ""]
            continue
        lines.append("| " + " | ".join(_md_cell(h) for h in t.headers) + " |")
        lines.append(
            "|"
            + "|".join("---:" if (t.numeric[j] if j < len(t.numeric) else False) else "---" for j in range(len(t.headers)))
            + "|"
        )
        for i, row in enumerate(t.cells):
            cells = [(f"**{c}**" if t.best and t.best[i][j] else c) for j, c in enumerate(row)]
            lines.append("| " + " | ".join(_md_cell(c) for c in cells) + " |")
        lines.append("")
        if t.key == "construction" and "cost_vs_accepted" in plots:
            lines += [f"![{_PLOT_TITLES['cost_vs_accepted']}]({plots['cost_vs_accepted']})", ""]
        if t.key == "documents" and "coverage_per_document" in plots:
            lines += [f"![{_PLOT_TITLES['coverage_per_document']}]({plots['coverage_per_document']})", ""]
        if t.key == "downstream" and "benchmarks" in plots:
            lines += [f"![{_PLOT_TITLES['benchmarks']}]({plots['benchmarks']})", ""]
    if report["notes"]:
        lines += ["## Notes", ""] + [f"- {n}" for n in report["notes"]] + [""]
    return "\n".join(lines)


def _title(report: dict[str, Any]) -> str:
    mode = f" --mode {report['mode']}" if report.get("mode") else ""
    return f"prepbench compare{mode}: {', '.join(f['family'] for f in report['families'])}"


def _summary_lines(report: dict[str, Any]) -> list[str]:
    sk = report["skill"]
    out = [f"- skill: {sk['name']} {sk['version']} ({sk['domain']})"]
    if report.get("mode"):  # a comparison of generators on one generation mode (compare --mode)
        out.append(f"- mode: {report['mode']}; seeds: {report['seeds']}" + (f" ({report['n']} slots)" if report.get("n") else ""))
    else:
        out.append(f"- corpus: {', '.join(report['corpus'])}" + (f" (first {report['limit']} chunks)" if report["limit"] else ""))
    out.append("- runs: " + ", ".join(f"{f['family']} → {f['run']}" for f in report["families"]))
    if report.get("proxy"):
        out.append(f"- DAS proxy: {report['proxy']} (encoder {report['encoder']})")
    if report.get("judge") and report.get("mode"):
        out.append(f"- judge of quality and difficulty: {report['judge']} ({report['skill']['domain']} rubrics)")
    elif report.get("judge"):
        out.append(f"- verifier judge: {report['judge']}; task: {report['task']}")
    if report.get("lm"):
        out.append(f"- reference LM of the response perplexity: {report['lm']}")
    out.append(f"- generated {report['created']}")
    return out


_CSS = """
body{font-family:-apple-system,"Segoe UI",Roboto,"DejaVu Sans",Arial,sans-serif;margin:24px auto;max-width:1180px;color:#222;padding:0 16px}
h1{font-size:24px;margin-bottom:4px} h2{font-size:18px;margin-top:28px;border-bottom:1px solid #ddd;padding-bottom:4px}
ul.meta{color:#555;font-size:13px;padding-left:18px} .cap{color:#555;font-size:13px;margin:4px 0 8px}
table{border-collapse:collapse;font-size:13px;margin:6px 0 10px} th,td{border:1px solid #d8d8d8;padding:4px 8px}
th{background:#f3f4f6;text-align:left;vertical-align:bottom} td.num{text-align:right;font-variant-numeric:tabular-nums}
td.best{font-weight:700;background:#eef8f2} tr:nth-child(even) td{background-color:#fafafa} tr:nth-child(even) td.best{background:#e6f4ec}
.wrap{overflow-x:auto} figure{margin:10px 0 18px} figure img{max-width:100%;height:auto;border:1px solid #eee}
figcaption{font-size:12px;color:#666} .notes li{font-size:13px;color:#7a4b00}
"""


def _html_table(t: Table) -> str:
    if not t.cells:
        return "<p class='cap'>(none)</p>"
    head = "".join(f"<th>{html.escape(h)}</th>" for h in t.headers)
    body = []
    for i, row in enumerate(t.cells):
        tds = []
        for j, c in enumerate(row):
            cls = []
            if j < len(t.numeric) and t.numeric[j]:
                cls.append("num")
            if t.best and t.best[i][j]:
                cls.append("best")
            tds.append(f"<td class='{' '.join(cls)}'>{html.escape(c)}</td>" if cls else f"<td>{html.escape(c)}</td>")
        body.append(f"<tr data-row='{html.escape(row[0])}'>{''.join(tds)}</tr>")
    return f"<div class='wrap'><table id='{t.key}'><thead><tr>{head}</tr></thead><tbody>{''.join(body)}</tbody></table></div>"


def render_html(report: dict[str, Any], tables: list[Table], plots: dict[str, bytes]) -> str:
    """The self-contained HTML report: inline CSS, plots as base64 PNG ``data:`` URIs, no external reference."""

    def fig(name: str) -> str:
        if name not in plots:
            return ""
        png = plots[name]
        width = int.from_bytes(png[16:20], "big") * 2 // 3  # PNG IHDR width; shown at 100 px per inch (saved at 150 dpi)
        b64 = base64.b64encode(png).decode("ascii")
        title = html.escape(_PLOT_TITLES[name])
        return (
            f"<figure><img alt='{title}' width='{width}' src='data:image/png;base64,{b64}'>"
            f"<figcaption>{title}</figcaption></figure>"
        )

    parts = [
        "<!DOCTYPE html><html lang='en'><head><meta charset='utf-8'>",
        f"<title>{html.escape(_title(report))}</title>",
        f"<style>{_CSS}</style></head><body>",
        f"<h1>{html.escape(_title(report))}</h1>",
        "<ul class='meta'>" + "".join(f"<li>{html.escape(x[2:])}</li>" for x in _summary_lines(report)) + "</ul>",
    ]
    for t in tables:
        parts.append(f"<h2>{html.escape(t.title)}</h2><p class='cap'>{html.escape(t.caption)}</p>{_html_table(t)}")
        parts.append(
            fig(
                {"construction": "cost_vs_accepted", "documents": "coverage_per_document", "downstream": "benchmarks"}.get(
                    t.key, ""
                )
            )
        )
    if report["notes"]:
        parts.append(
            "<h2>Notes</h2><ul class='notes'>" + "".join(f"<li>{html.escape(n)}</li>" for n in report["notes"]) + "</ul>"
        )
    parts.append("</body></html>")
    return "\n".join(p for p in parts if p)


def write_report(
    report: dict[str, Any], out: str | Path, tables: list[Table] | None = None, plots: dict[str, bytes] | None = None
) -> dict[str, Path]:
    """Write ``report.json``, ``report.md`` (+ its PNG plots) and ``report.html`` into ``out``.

    Args:
        tables, plots: the report's tables and PNG plots (default: :func:`build_tables` and
            :func:`make_plots`, the agent-family comparison's).

    Returns:
        ``{"json", "markdown", "html", "plots": [paths]}``.
    """
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    tables = build_tables(report) if tables is None else tables
    plots = make_plots(report) if plots is None else plots
    names = {}
    paths = []
    for stem, png in plots.items():
        p = out / f"{stem}.png"
        p.write_bytes(png)
        names[stem] = p.name
        paths.append(p)
    (out / "report.json").write_text(json.dumps(report, indent=2, ensure_ascii=False, default=float) + "\n", encoding="utf-8")
    (out / "report.md").write_text(render_markdown(report, tables, names), encoding="utf-8")
    (out / "report.html").write_text(render_html(report, tables, plots), encoding="utf-8")
    return {"json": out / "report.json", "markdown": out / "report.md", "html": out / "report.html", "plots": paths}
