"""``prepbench run``, ``prepbench status``, ``prepbench export``."""

from __future__ import annotations

import contextlib
import json
from pathlib import Path
from typing import Any, Optional

import typer
from rich.console import Console
from rich.markup import escape

from prepbench.tools.cli import options as o
from prepbench.tools.cli.app import app
from prepbench.tools.cli.progress import progress_factory
from prepbench.tools.errors import PrepbenchError

out = Console()
err = Console(stderr=True)


@app.command("run")
@o.with_options(o.chunking_options, o.loop_options, o.server_options, o.batch_options, o.family_options, o.executor_options)
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
        executor=o.executor_of(flags),
        **{k: flags[k] for k in o.option_names(o.chunking_options, o.loop_options)},
    )
    try:
        result = run_pipeline(opts, progress=progress_factory(quiet or as_json))
    except KeyboardInterrupt as e:  # Typer would turn it into a bare exit 130: say what was recorded
        err.print(str(e) or "interrupted: run the same command to resume", highlight=False, soft_wrap=True)
        raise typer.Exit(130) from None
    _report_run(result, as_json)


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
        stop = result.get("stop") or {}
        out.print(f"[yellow]{escape(stop.get('message') or 'stopped early')}[/]", highlight=False, soft_wrap=True)
        out.print(
            f"[yellow]{stop.get('pending', 'some')} chunks pending; what to do: "
            f"{escape(stop.get('advice') or 'run the same command again to resume')}[/]",
            highlight=False,
            soft_wrap=True,
        )
        raise typer.Exit(3)


@app.command("status")
def status_cmd(
    run: str = typer.Argument(..., help="Run folder."),
    as_json: bool = typer.Option(False, "--json", help="Print JSON."),
    show_failures: int = typer.Option(
        0, "--show-failures", help="Also print the N latest failed or rejected model calls with their raw replies."
    ),
) -> None:
    """Show a run's progress, coverage, rejections and cost; why it stopped, if it did."""
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
        probes, stop = ledger.events("probe"), ledger.last_stop()
        jobs = ledger.batch_jobs()
        failures = ledger.failure_rows(show_failures) if show_failures > 0 else []
    finally:
        ledger.close()
    if as_json:
        public = {k: v for k, v in config.items() if k != "corpus_hashes"}
        payload = {"config": public, "coverage": report, "probe": probes[-1] if probes else None, "stop": stop}
        payload["batch_jobs"] = jobs
        out.print_json(json.dumps({**payload, **({"failures": failures} if show_failures else {})}))
        return
    out.print(
        f"run [bold]{escape(run)}[/]: skill {config.get('skill_name')} {config.get('skill_version')}, agent {config.get('agent')}, "
        f"model {escape(str(config.get('model')))}, {len(config.get('corpus_hashes', {}))} documents"
    )
    if probes:
        out.print(escape(probes[-1]["message"]), style="dim", highlight=False, soft_wrap=True)
    if jobs:
        out.print(escape(_batch_line(jobs)), style="dim", highlight=False, soft_wrap=True)
    render_coverage(report, out)
    if stop is not None:
        advice = (stop["data"] or {}).get("advice") or "run the same command again to resume"
        out.print(f"[yellow]{escape(stop['message'])}[/]", highlight=False, soft_wrap=True)
        out.print(f"[yellow]what to do: {escape(advice)}[/]", highlight=False, soft_wrap=True)
    if show_failures:
        _print_failures(failures)


def _batch_line(jobs: list[dict]) -> str:
    """One line on a ``--batch`` run's provider jobs: how many, ended, and the latest's id and status."""
    ended = sum(1 for j in jobs if j.get("ended_at"))
    last = jobs[-1]
    return (
        f"batch: {len(jobs)} {last['provider']} jobs ({ended} ended, {sum(j['n_requests'] or 0 for j in jobs)} requests); "
        f"latest {last.get('job_id') or '(not created)'}: {last.get('status')}"
    )


def _print_failures(rows: list[dict]) -> None:
    """The latest failed or rejected calls: node, chunk and its fate, error, the raw reply (cut)."""
    if not rows:
        out.print("no failed or rejected model call kept a reply")
        return
    for r in rows:
        fate = r.get("chunk_status") or "-"
        if r.get("chunk_skip_reason"):
            fate += f": {r['chunk_skip_reason']}"
        head = f"call {r['id']} · {r['node']} · chunk {r.get('chunk_id') or '-'} ({fate})"
        out.print(f"[bold]{escape(head)}[/]", highlight=False)
        if r.get("error"):
            out.print(f"  error: {escape(r['error'])}", highlight=False, soft_wrap=True)
        reply = (r.get("reply") or "").strip()
        if reply:
            shown = reply if len(reply) <= 600 else reply[:600] + f" ... ({len(reply)} chars)"
            out.print("  reply: " + escape(shown).replace("\n", "\n         "), highlight=False, soft_wrap=True)


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
