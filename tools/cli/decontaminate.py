"""``prepbench decontaminate DATA --benchmarks B,...``: flag samples that copy or rephrase test items.

The rules and their sources are :mod:`prepbench.evaluation.decontaminate`'s. DATA is anything
``prepbench score`` reads (a run folder, JSONL/JSON in ShareGPT, Alpaca, OpenAI or field
shapes, a datasets folder); a sample's text is its question and answer, its question the
user turns.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Optional

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table

_err = Console(stderr=True)


def decontaminate_cmd(
    data: Path = typer.Argument(..., help="Run folder or dataset file (as for `prepbench score`)."),
    benchmarks: str = typer.Option(..., "--benchmarks", "-b", help="Shipped benchmarks, comma-separated (gsm8k,math500,...)."),
    ngram: int = typer.Option(13, "--ngram", help="N-gram length in words for the overlap rule (the harness's 13)."),
    embed_threshold: float = typer.Option(0.9, "--embed-threshold", help="Cosine at or above which a question is flagged."),
    no_embed: bool = typer.Option(False, "--no-embed", help="Only the n-gram rule."),
    encoder: str = typer.Option("minilm", "--encoder", help="Encoder for the embedding rule (minilm is offline)."),
    cache: Optional[Path] = typer.Option(None, "--cache", help="Embedding cache SQLite file (the n-gram indexes go beside it)."),
    data_dir: Optional[str] = typer.Option(
        None, "--data-dir", help="Datasets folder (default $PREPBENCH_DATASETS or ../shared/datasets)."
    ),
    fmt: Optional[str] = typer.Option(None, "--format", help="Dataset format (default: detect)."),
    out: Optional[Path] = typer.Option(None, "--out", "-o", help="Write the flags as JSON lines."),
    as_json: bool = typer.Option(False, "--json", help="Print the report as JSON."),
) -> None:
    """Flag samples by n-gram overlap and embedding similarity with benchmarks' test items."""
    from prepbench.evaluation.decontaminate import decontaminate
    from prepbench.evaluation.evaluate import benchmark_test_files, resolve_benchmarks
    from prepbench.evaluation.readers import read_samples
    from prepbench.evaluation.train_config import datasets_dir
    from prepbench.tools.embed import EmbeddingCache, default_cache_path, embed_texts, make_encoder

    files = benchmark_test_files(resolve_benchmarks(benchmarks), datasets_dir(data_dir))
    samples = [(s.id, s.text, s.instruction) for s in read_samples(data, fmt)]
    cache_path = cache or default_cache_path()
    embed = None
    if not no_embed:
        enc, store = make_encoder(encoder), EmbeddingCache(cache_path)
        embed = lambda texts: embed_texts(texts, enc, store, description="embedding")[0]  # noqa: E731
    rep = decontaminate(
        samples,
        files,
        n=ngram,
        embed_threshold=None if no_embed else embed_threshold,
        embed=embed,
        cache_dir=Path(cache_path).parent / "decontamination",
    )
    if out:
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text("".join(json.dumps(f.__dict__, ensure_ascii=False) + "\n" for f in rep.flags), encoding="utf-8")
    result = {"samples": rep.n_samples, "flagged": len(rep.flagged), "benchmarks": rep.benchmarks}
    if as_json:
        typer.echo(json.dumps(result))
        return
    table = Table(title=f"decontamination of {escape(str(data))} ({rep.n_samples} samples, {ngram}-grams)")
    for col in ("benchmark", "test items", "n-gram overlap", "embedding ≥ " + str(embed_threshold), "index (s)"):
        table.add_column(col, justify="right" if col != "benchmark" else "left")
    for name, b in rep.benchmarks.items():
        idx = f"{b['index_seconds']:.2f}" + (" (cached)" if b["index_cached"] else "")
        emb = "-" if no_embed else str(b["embedding_similarity"])
        table.add_row(escape(name), str(b["test_items"]), str(b["ngram_overlap"]), emb, idx)
    _err.print(table)
    _err.print(f"{len(rep.flagged)} of {rep.n_samples} samples flagged" + (f"; wrote {escape(str(out))}" if out else ""))
