"""``prepbench run``, ``prepbench status``, ``prepbench export``."""

from __future__ import annotations

import contextlib
import json
from pathlib import Path
from typing import Any, Optional

import typer
from rich.console import Console

from prepbench.tools.cli import options as o
from prepbench.tools.cli.app import app
from prepbench.tools.cli.progress import progress_factory
from prepbench.tools.errors import PrepbenchError

out = Console()
err = Console(stderr=True)


@app.command("run")
@o.with_options(o.chunking_options, o.loop_options, o.server_options, o.family_options)
def run_cmd(
    corpus: o.Corpus = ...,
    skill: o.Skill = o.SKILL,
    out_dir: str = typer.Option(..., "--out", "-o", help="Run folder (ledger, export, coverage)."),
    agent: str = typer.Option("skill", "--agent", help="Agent family: skill, direct or react."),
    model: str = typer.Option(
        "extractive", "--model", "-m", help="Model spec: extractive (offline), openai:<m>, anthropic:<m>, vllm:<path>, hf:<path>."
    ),
    judge: o.GroundedJudge = False,
    decontaminate: Optional[str] = typer.Option(
        None,
        "--decontaminate",
        help="Benchmarks (comma-separated, e.g. gsm8k,mmlu_finance): the gate flags samples that copy or rephrase "
        "their test items; flagged samples stay in the ledger and are left out of the export.",
    ),
    fresh: o.Fresh = False,
    quiet: o.Quiet = False,
    as_json: bool = typer.Option(False, "--json", help="Print the coverage report as JSON."),
    **flags: Any,
) -> None:
    """Run a skill over a corpus into a run folder; re-running the same command resumes."""
    from prepbench.agents.runner import run_pipeline
    from prepbench.tools.cli.decontaminate import decontamination_spec
    from prepbench.tools.run import RunOptions

    opts = RunOptions(
        corpus=corpus,
        skill=skill,
        out=out_dir,
        agent=agent,
        model=model,
        fresh=fresh,
        model_options=o.model_options({**flags, "judge": judge}, chat=model != "extractive"),
        decontamination=decontamination_spec(decontaminate, progress=not (quiet or as_json)) if decontaminate else None,
        **{k: flags[k] for k in o.option_names(o.chunking_options, o.loop_options)},
    )
    _report_run(run_pipeline(opts, progress=progress_factory(quiet or as_json)), as_json)


def _report_run(result: dict, as_json: bool) -> None:
    """Print a finished run's coverage and export summary; exit 3 when chunks remain pending."""
    from prepbench.tools.coverage import render_coverage

    if as_json:
        out.print_json(json.dumps(result["coverage"]))
        return
    render_coverage(result["coverage"], out)
    exp = result["export"]
    out.print(
        f"{'resumed' if result['resumed'] else 'ran'} in {result['seconds']:.1f}s; "
        f"exported {exp['count']} samples to {Path(exp['dataset_info']).parent} "
        f"(sharegpt.jsonl, alpaca.jsonl, openai.jsonl, dataset_info.json, card README.md, manifest.json)"
    )
    if result["stopped"]:
        out.print("[yellow]stopped early: pending chunks remain; run the same command again to resume[/]")
        raise typer.Exit(3)


@app.command("status")
def status_cmd(
    run: str = typer.Argument(..., help="Run folder."),
    as_json: bool = typer.Option(False, "--json", help="Print JSON."),
) -> None:
    """Show a run's progress, coverage, rejections and cost."""
    from prepbench.tools.coverage import coverage_report, render_coverage
    from prepbench.tools.ledger import RunFolder
    from prepbench.tools.skills import load_skill

    ledger = RunFolder.open(run, readonly=True)  # a monitor: no lock, works beside a running run
    config = ledger.get_config()
    try:
        skill = None
        with contextlib.suppress(PrepbenchError):
            skill = load_skill(config.get("skill_path") or config.get("skill_name"))
        report = coverage_report(ledger, skill)
    finally:
        ledger.close()
    if as_json:
        out.print_json(json.dumps({"config": {k: v for k, v in config.items() if k != "corpus_hashes"}, "coverage": report}))
        return
    out.print(
        f"run [bold]{run}[/]: skill {config.get('skill_name')} {config.get('skill_version')}, agent {config.get('agent')}, "
        f"model {config.get('model')}, {len(config.get('corpus_hashes', {}))} documents"
    )
    render_coverage(report, out)


@app.command("export")
def export_cmd(
    run: str = typer.Argument(..., help="Run folder."),
    fmt: str = typer.Option(
        "sharegpt,alpaca",
        "--format",
        "-f",
        help="Comma-separated: sharegpt, alpaca, openai, samples, hf (datasets folder + Parquet).",
    ),
    dest: Optional[str] = typer.Option(None, "--out", "-o", help="Export folder (default RUN/export)."),
) -> None:
    """Export a run's accepted samples (ShareGPT / Alpaca / OpenAI JSONL, datasets + Parquet, LlamaFactory
    dataset_info.json), with a dataset card (README.md) and manifest.json."""
    from prepbench.tools.ledger import RunFolder
    from prepbench.tools.run import export_run
    from prepbench.tools.skills import load_run_skill

    formats = tuple(f.strip() for f in fmt.split(",") if f.strip())
    ledger = RunFolder.open(run)
    try:
        res = export_run(ledger, load_run_skill(ledger.get_config()), Path(run), formats, Path(dest) if dest else None)
    finally:
        ledger.close()
    for f, p in res["files"].items():
        out.print(f"{f}: {p}")
    out.print(f"dataset_info: {res['dataset_info']} ({res['count']} samples); card README.md and manifest.json beside it")
