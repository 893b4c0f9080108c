"""``prepbench decontaminate RUN|DATA --benchmarks B,...``: flag samples that copy or rephrase test items.

The rules and their sources are :mod:`prepbench.tools.decontaminate`'s, the judge
:mod:`prepbench.agents.contamination_judge`'s. DATA is anything ``prepbench score`` reads (JSONL/JSON
in ShareGPT, Alpaca, OpenAI or field shapes, a datasets folder): a sample's text is its question
and answer, its question the user turns; the flags are reported. A run folder's accepted samples
are read as its export renders them, the flags are recorded in its ledger (the samples stay,
flagged) and the export is written again without the excluded ones.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Optional

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from prepbench.tools.decontaminate import DEFAULT_EMBED_THRESHOLD, DEFAULT_NGRAM, DecontaminationReport, DecontaminationSpec

_err = Console(stderr=True)


def decontamination_spec(
    benchmarks: str,
    ngram: int = DEFAULT_NGRAM,
    embed_threshold: float | None = DEFAULT_EMBED_THRESHOLD,
    encoder: str = "minilm",
    cache: Path | None = None,
    data_dir: str | None = None,
    progress: bool = False,
) -> DecontaminationSpec:
    """The :class:`~prepbench.tools.decontaminate.DecontaminationSpec` of the shipped benchmarks named
    in ``benchmarks`` (their test items as lm-evaluation-harness evaluates them).

    Raises:
        PrepbenchError: an unknown benchmark (with the known names).
    """
    from prepbench.evaluation.evaluate import benchmark_test_sets, resolve_benchmarks
    from prepbench.evaluation.train_config import datasets_dir

    sets = benchmark_test_sets(resolve_benchmarks(benchmarks), datasets_dir(data_dir))
    return DecontaminationSpec(sets, ngram, embed_threshold, encoder, cache, progress)


def decontaminate_cmd(
    data: Path = typer.Argument(..., help="Run folder (flags recorded, export rewritten) or dataset file (reported)."),
    benchmarks: str = typer.Option(..., "--benchmarks", "-b", help="Shipped benchmarks, comma-separated (gsm8k,math500,...)."),
    ngram: int = typer.Option(DEFAULT_NGRAM, "--ngram", help="N-gram length in words for the overlap rule (the harness's 13)."),
    embed_threshold: float = typer.Option(
        DEFAULT_EMBED_THRESHOLD, "--embed-threshold", help="Cosine at or above which a question is flagged."
    ),
    no_embed: bool = typer.Option(False, "--no-embed", help="Only the n-gram rule."),
    encoder: str = typer.Option("minilm", "--encoder", help="Encoder for the embedding rule (minilm is offline)."),
    cache: Optional[Path] = typer.Option(None, "--cache", help="Embedding cache SQLite file (the n-gram indexes go beside it)."),
    data_dir: Optional[str] = typer.Option(
        None, "--data-dir", help="Datasets folder (default $PREPBENCH_DATASETS or ../shared/datasets)."
    ),
    judge: Optional[str] = typer.Option(
        None, "--judge", help="Chat model that confirms each flag (LLM decontaminator, arXiv 2311.04850), e.g. openai:<model>."
    ),
    base_url: Optional[str] = typer.Option(None, "--base-url", help="OpenAI/Anthropic-compatible server URL of the judge."),
    concurrency: int = typer.Option(4, "--concurrency", help="Judge requests in flight."),
    fmt: Optional[str] = typer.Option(None, "--format", help="Dataset format (default: detect)."),
    out: Optional[Path] = typer.Option(None, "--out", "-o", help="Write the flags as JSON lines."),
    as_json: bool = typer.Option(False, "--json", help="Print the report as JSON."),
) -> None:
    """Flag samples by n-gram overlap and embedding similarity with benchmarks' test items."""
    from prepbench.agents.contamination_judge import make_contamination_judge

    spec = decontamination_spec(benchmarks, ngram, None if no_embed else embed_threshold, encoder, cache, data_dir, not as_json)
    the_judge = make_contamination_judge(judge, base_url=base_url, concurrency=concurrency) if judge else None
    if (data / "ledger.sqlite").is_file():
        rep, note = _decontaminate_run(data, spec, the_judge, judge)
    else:
        from prepbench.evaluation.readers import read_samples

        samples = [(s.id, s.text, s.instruction) for s in read_samples(data, fmt)]
        rep, note = spec.build().run(samples, the_judge), ""
    if out:
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text("".join(json.dumps(f.as_dict(), ensure_ascii=False) + "\n" for f in rep.flags), encoding="utf-8")
    if as_json:
        result = {
            "samples": rep.n_samples,
            "flagged": len(rep.flagged),
            "excluded": len(rep.excluded),
            "benchmarks": rep.benchmarks,
        }
        typer.echo(json.dumps(result))
        return
    _print_report(rep, data, spec, judge is not None)
    _err.print(
        f"{len(rep.flagged)} of {rep.n_samples} samples flagged, {len(rep.excluded)} excluded"
        + (f"; wrote {escape(str(out))}" if out else "")
        + note
    )


def _decontaminate_run(run: Path, spec: DecontaminationSpec, judge, judge_spec: str | None) -> tuple[DecontaminationReport, str]:
    """Flag a run folder's accepted samples, record the flags in its ledger, export again."""
    from prepbench.tools.decontaminate import decontaminate_run
    from prepbench.tools.export import FILE_NAMES
    from prepbench.tools.ledger import RunFolder
    from prepbench.tools.run import RunOptions, export_run
    from prepbench.tools.skills import load_run_skill

    ledger = RunFolder.open(run)
    try:
        skill = load_run_skill(ledger.get_config())
        settings = {**spec.settings(), "judge": judge_spec}
        rep = decontaminate_run(ledger, skill.renders if skill else {}, spec.build(), settings, judge)
        exported = run / "export"
        formats = tuple(f for f, name in FILE_NAMES.items() if (exported / name).exists()) or RunOptions.formats
        res = export_run(ledger, skill, run, formats)
    finally:
        ledger.close()
    return rep, f"; the ledger keeps them with the reason; exported {res['count']} samples to {escape(str(exported))}"


def _print_report(rep: DecontaminationReport, data: Path, spec: DecontaminationSpec, judged: bool) -> None:
    table = Table(title=f"decontamination of {escape(str(data))} ({rep.n_samples} samples, {spec.ngram}-grams)")
    cols = [
        "benchmark",
        "test items",
        "n-gram overlap",
        f"embedding ≥ {spec.embed_threshold}",
        *(["cleared by judge"] if judged else []),
    ]
    for col in [*cols, "index (s)"]:
        table.add_column(col, justify="right" if col != "benchmark" else "left")
    for name, b in rep.benchmarks.items():
        idx = f"{b['index_seconds']:.2f}" + (" (cached)" if b["index_cached"] else "")
        emb = "-" if spec.embed_threshold is None else str(b["embedding_similarity"])
        judged_col = [str(b["cleared"])] if judged else []
        table.add_row(escape(name), str(b["test_items"]), str(b["ngram_overlap"]), emb, *judged_col, idx)
    _err.print(table)
