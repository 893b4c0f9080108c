"""``prepbench run``, ``prepbench status``, ``prepbench export``."""

from __future__ import annotations

import contextlib
import json
from pathlib import Path
from typing import Optional

import typer
from rich.console import Console

from prepbench.tools.cli.app import app
from prepbench.tools.cli.progress import progress_factory
from prepbench.tools.errors import PrepbenchError

out = Console()
err = Console(stderr=True)


@app.command("run")
def run_cmd(
    corpus: list[str] = typer.Option(..., "--corpus", "-c", help="Corpus folder or files (repeatable)."),
    skill: str = typer.Option("finance", "--skill", "-s", help="Skill folder or shipped skill name."),
    out_dir: str = typer.Option(..., "--out", "-o", help="Run folder (ledger, export, coverage)."),
    agent: str = typer.Option("skill", "--agent", help="Agent family: skill, direct or react."),
    model: str = typer.Option("extractive", "--model", "-m", help="Model spec: extractive (offline), openai:<m>, anthropic:<m>, vllm:<path>, hf:<path>."),
    concurrency: int = typer.Option(8, "--concurrency", help="In-flight model requests."),
    batch_size: int = typer.Option(16, "--batch-size", help="Chunks per pass of the agent graph (offline generator; chat-model chunks stream, 2 x --concurrency in flight)."),
    limit: Optional[int] = typer.Option(None, "--limit", help="Only the first N chunks of the corpus."),
    exclude: list[str] = typer.Option([], "--exclude", help="Extra exclude glob (repeatable)."),
    pdf_engine: str = typer.Option("auto", "--pdf-engine", help="PDF converter: auto, pymupdf or mineru."),
    min_chars: int = typer.Option(1200, "--min-chars", help="Merge sections shorter than this (chars)."),
    max_chars: int = typer.Option(3000, "--max-chars", help="Maximum chunk size (chars)."),
    overlap: int = typer.Option(0, "--overlap", help="Overlap between pieces of a split section (chars)."),
    max_attempts: int = typer.Option(3, "--max-attempts", help="Attempts per chunk before it stays failed."),
    max_repairs: int = typer.Option(2, "--max-repairs", help="Repair rounds for rejected samples (chat models)."),
    revisit: bool = typer.Option(True, "--revisit/--no-revisit", help="Coverage loop (skill agent): revisit kept chunks for sample types below their min_share."),
    base_url: Optional[str] = typer.Option(None, "--base-url", help="OpenAI/Anthropic-compatible server URL."),
    rpm: Optional[float] = typer.Option(None, "--rpm", help="Model requests per minute at most."),
    tpm: Optional[float] = typer.Option(None, "--tpm", help="Model tokens (in + out) per minute at most."),
    timeout: float = typer.Option(120.0, "--timeout", help="Timeout of one model request (seconds)."),
    max_retries: int = typer.Option(5, "--max-retries", help="Retries of a failed model request (429/5xx/timeouts)."),
    max_tokens: int = typer.Option(2048, "--max-tokens", help="Output token limit of a model request (doubled when a reply is cut)."),
    prices: Optional[str] = typer.Option(None, "--prices", help="YAML price table merged over the shipped one (USD per 1M tokens)."),
    structured: str = typer.Option("auto", "--structured", help="Structured output: auto, json_schema, tools or prompt."),
    judge: bool = typer.Option(False, "--judge", help="Grounded LLM judge on every candidate (chat models)."),
    direct_mode: str = typer.Option("chunk", "--direct-mode", help="Agent direct: one prompt per chunk, or per book (as much as the context holds)."),
    context_tokens: int = typer.Option(128000, "--context-tokens", help="Model context window (tokens), for --direct-mode book."),
    fresh: bool = typer.Option(False, "--fresh", help="Discard an existing run in --out and start over."),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="No progress bar."),
    as_json: bool = typer.Option(False, "--json", help="Print the coverage report as JSON."),
) -> None:
    """Run a skill over a corpus into a run folder; re-running the same command resumes."""
    from prepbench.tools.coverage import render_coverage
    from prepbench.agents.runner import run_pipeline
    from prepbench.tools.run import ModelOptions, RunOptions

    model_options = ModelOptions(base_url=base_url)
    if model != "extractive":  # the model layer's options (API keys come from the environment only)
        model_options = ModelOptions(
            base_url=base_url, concurrency=concurrency, rpm=rpm, tpm=tpm, timeout=timeout, max_retries=max_retries,
            max_tokens=max_tokens, prices=prices, structured=structured, judge=judge, direct_mode=direct_mode,
            context_tokens=context_tokens,
        )
    opts = RunOptions(
        corpus=corpus, skill=skill, out=out_dir, agent=agent, model=model, concurrency=concurrency,
        batch_size=batch_size, limit=limit, exclude=exclude, pdf_engine=pdf_engine, min_chars=min_chars,
        max_chars=max_chars, overlap=overlap, max_attempts=max_attempts, max_repairs=max_repairs, revisit=revisit, fresh=fresh,
        model_options=model_options,
    )
    result = run_pipeline(opts, progress=progress_factory(quiet or as_json))
    if as_json:
        out.print_json(json.dumps(result["coverage"]))
        return
    render_coverage(result["coverage"], out)
    exp = result["export"]
    out.print(
        f"{'resumed' if result['resumed'] else 'ran'} in {result['seconds']:.1f}s; "
        f"exported {exp['count']} samples to {Path(exp['dataset_info']).parent} "
        f"(sharegpt.jsonl, alpaca.jsonl, openai.jsonl, dataset_info.json)"
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

    ledger = RunFolder.open(run)

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
    fmt: str = typer.Option("sharegpt,alpaca", "--format", "-f", help="Comma-separated: sharegpt, alpaca, openai, samples."),
    dest: Optional[str] = typer.Option(None, "--out", "-o", help="Export folder (default RUN/export)."),
) -> None:
    """Export a run's accepted samples (ShareGPT / Alpaca / OpenAI JSONL + LlamaFactory dataset_info.json)."""
    from prepbench.tools.ledger import RunFolder
    from prepbench.tools.run import export_run
    from prepbench.tools.skills import load_skill

    formats = tuple(f.strip() for f in fmt.split(",") if f.strip())
    ledger = RunFolder.open(run)
    config = ledger.get_config()
    try:
        try:
            skill = load_skill(config.get("skill_path") or config.get("skill_name"))
            schemas = skill.schemas
        except PrepbenchError:
            schemas = {}
            skill = None
        from prepbench.tools.export import export_samples

        if skill is not None:
            res = export_run(ledger, skill, Path(run), formats, Path(dest) if dest else None)
        else:
            res = export_samples(ledger.accepted_samples(), schemas, Path(dest) if dest else Path(run) / "export", formats)
    finally:
        ledger.close()
    for f, p in res["files"].items():
        out.print(f"{f}: {p}")
    out.print(f"dataset_info: {res['dataset_info']} ({res['count']} samples)")
