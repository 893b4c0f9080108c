"""CLI of the training and evaluation backend: ``prepbench train config|run``, ``prepbench
evaluate`` and ``prepbench pgr``.

Registered in ``tools/cli.py``. Imports here stay light (typer, rich); torch, transformers
and lm-eval load inside the commands that use them.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Optional

import typer
from rich.console import Console
from rich.table import Table

from prepbench.tools.errors import PrepbenchError

train_app = typer.Typer(
    help="LlamaFactory training configs (run data + Dolly-15k mix, Dolly-only reference) and training runs.",
    no_args_is_help=True,
)
console = Console()


@train_app.command("config")
def config_cmd(
    runs: list[Path] = typer.Argument(..., help="prepbench run folder(s) with export/sharegpt.jsonl or export/alpaca.jsonl"),
    base: str = typer.Option(..., "--base", help="base model path or hub id (model_name_or_path)"),
    recipe: str = typer.Option("dataprep-construction", "--recipe", help="recipe name (evaluation/recipes) or YAML path"),
    dolly: Optional[Path] = typer.Option(
        None, "--dolly", help="Dolly-15k JSONL (default: <datasets>/dolly/databricks-dolly-15k-nocategory.jsonl)"
    ),
    dolly_limit: Optional[int] = typer.Option(None, "--dolly-limit", min=1, help="use only the first N Dolly rows (smoke runs)"),
    template: Optional[str] = typer.Option(
        None, "--template", help="LlamaFactory template name (default: from the base model family)"
    ),
    out: Optional[Path] = typer.Option(None, "--out", help="output folder (default: <first run>/train/<recipe>)"),
) -> None:
    """Write dataset_info.json, mix.yaml (run samples + Dolly-15k) and reference.yaml (Dolly only)."""
    from prepbench.evaluation.train import load_recipe, write_configs

    rec = load_recipe(recipe)
    out_dir = out or (runs[0] / "train" / rec["name"])
    man = write_configs(runs, recipe, base, out_dir, dolly=dolly, dolly_limit=dolly_limit, template=template)
    t = Table(title=f"LlamaFactory configs (recipe {man['recipe']}, template {man['template']})")
    t.add_column("dataset")
    t.add_column("rows", justify="right")
    t.add_column("source")
    for r in man["runs"]:
        t.add_row(r["dataset"], str(r["rows"]), r["run"])
    t.add_row(man["dolly"]["dataset"], str(man["dolly"]["rows"]), man["dolly"]["file"])
    console.print(t)
    console.print(f"mix:       {man['mix_config']}\nreference: {man['reference_config']}")


@train_app.command("run")
def run_cmd(
    config: Path = typer.Argument(..., help="LlamaFactory training YAML (from `prepbench train config`)"),
    max_steps: Optional[int] = typer.Option(None, "--max-steps", min=1, help="stop after N optimiser steps (smoke runs)"),
    set_: list[str] = typer.Option(
        [], "--set", help="override an argument, KEY=VALUE (repeatable), e.g. --set learning_rate=1e-3"
    ),
    backend: str = typer.Option("auto", "--backend", help="auto (LlamaFactory if installed, else CPU), llamafactory, cpu"),
) -> None:
    """Train: `llamafactory-cli train CONFIG` where installed, else transformers on CPU."""
    from prepbench.evaluation.train import parse_overrides, run_training

    summary = run_training(config, max_steps=max_steps, overrides=parse_overrides(set_), backend=backend)
    if summary["backend"] == "llamafactory":
        console.print(f"llamafactory-cli finished: {' '.join(summary['command'])}")
        return
    losses = summary["losses"]
    first, last = (f"{losses[0]:.4f}", f"{losses[-1]:.4f}") if losses else ("-", "-")
    console.print(
        f"trained on CPU: {summary['steps']} steps, {summary['samples']} samples, loss {first} -> {last}; "
        f"model saved to {summary['output_dir']}"
    )
    if summary["ignored_gpu_options"]:
        console.print(f"note: GPU-only options ignored on CPU: {', '.join(summary['ignored_gpu_options'])}")


def evaluate_cmd(
    model: str = typer.Argument(..., help="model folder or hub id"),
    benchmarks: str = typer.Option(
        ..., "--benchmarks", help="comma-separated: gsm8k,math500,arc_challenge,medqa,pubmedqa,mmlu_<domain>,legalbench,..."
    ),
    limit: Optional[int] = typer.Option(None, "--limit", min=1, help="first N items per benchmark"),
    backend: str = typer.Option("hf", "--backend", help="hf (transformers, CPU/GPU) or vllm (GPU)"),
    device: str = typer.Option("cpu", "--device", help="torch device for the hf backend"),
    batch_size: int = typer.Option(1, "--batch-size", min=1),
    num_fewshot: Optional[int] = typer.Option(None, "--num-fewshot", min=0),
    max_gen_toks: Optional[int] = typer.Option(None, "--max-gen-toks", min=1, help="cap generated tokens (GSM8K, MATH-500)"),
    chat_template: bool = typer.Option(False, "--chat-template", help="render prompts with the model's chat template"),
    label: Optional[str] = typer.Option(None, "--label", help="model name in the records (default: folder name)"),
    data_dir: Optional[Path] = typer.Option(
        None, "--data-dir", help="datasets folder (default: $PREPBENCH_DATASETS or ../shared/datasets)"
    ),
    out: Optional[Path] = typer.Option(
        None, "--out", help="score records .jsonl/.csv (default: <model>/scores.jsonl, or ./scores-<label>.jsonl)"
    ),
    append: bool = typer.Option(False, "--append", help="add to an existing records file instead of replacing it"),
) -> None:
    """Evaluate a model with lm-evaluation-harness on shipped benchmarks; write score records."""
    from prepbench.evaluation.evaluate import evaluate
    from prepbench.evaluation.records import write_records

    recs = evaluate(
        model,
        benchmarks,
        limit=limit,
        backend=backend,
        data_dir=data_dir,
        device=device,
        batch_size=batch_size,
        num_fewshot=num_fewshot,
        max_gen_toks=max_gen_toks,
        apply_chat_template=chat_template,
        label=label,
    )
    if out is None:
        out = Path(model) / "scores.jsonl" if Path(model).is_dir() else Path(f"scores-{recs[0].model}.jsonl")
    path = write_records(out, recs, append=append)
    t = Table(title=f"{recs[0].model}: lm-evaluation-harness scores")
    for col in ("benchmark", "metric", "score", "n"):
        t.add_column(col, justify="right" if col in ("score", "n") else "left")
    for r in recs:
        if r.primary:
            t.add_row(r.benchmark, r.metric, f"{r.score:.4f}", str(r.n))
    console.print(t)
    console.print(f"{len(recs)} score records written to {path}")


def pgr_cmd(
    base: Path = typer.Option(..., "--base", help="score records of the base model"),
    reference: Path = typer.Option(..., "--reference", help="score records of the reference model (Dolly-only)"),
    trained: list[str] = typer.Option(..., "--trained", help="score records of a trained model (repeatable or comma-separated)"),
    metric: Optional[str] = typer.Option(None, "--metric", help="metric to compare (default: each benchmark's primary metric)"),
    eps: float = typer.Option(1e-6, "--eps", min=0.0, help="|reference - base| below this is degenerate (no PGR)"),
    out: Optional[Path] = typer.Option(None, "--out", help="write the PGR results as JSON"),
) -> None:
    """Performance Gap Recovered per benchmark and averaged (AgoraBench, Kim et al., 2024)."""
    from prepbench.evaluation.pgr import compute_pgr
    from prepbench.evaluation.records import read_records

    b, r = read_records(base), read_records(reference)
    files = [p for item in trained for p in item.split(",") if p.strip()]
    if not files:
        raise PrepbenchError("give at least one --trained score record file")
    results = []
    for f in files:
        res = compute_pgr(b, r, read_records(f), metric=metric, eps=eps)
        results.append(res)
        t = Table(title=f"PGR of {res.trained_model} (base {b[0].model}, reference {r[0].model})")
        for col in ("benchmark", "metric", "base", "reference", "trained", "PGR %", "status"):
            t.add_column(col)
        fmt = lambda v: "-" if v is None else f"{v:.4f}"  # noqa: E731
        for row in res.rows:
            t.add_row(
                row.benchmark,
                row.metric,
                fmt(row.base),
                fmt(row.reference),
                fmt(row.trained),
                "-" if row.pgr is None else f"{row.pgr:.1f}",
                row.status,
            )
        console.print(t)
        avg = "undefined (no benchmark with a non-degenerate gap)" if res.average is None else f"{res.average:.1f}%"
        console.print(f"average PGR over {res.n_used} benchmark(s): {avg}")
        for note in res.notes:
            console.print(f"note: {note}")
    if out is not None:
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(json.dumps([x.to_dict() for x in results], indent=2) + "\n", encoding="utf-8")
        console.print(f"written to {out}")
