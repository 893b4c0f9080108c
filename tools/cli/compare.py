"""``prepbench compare``: every agent family on one corpus, then one report.

The run and chat-model flags are ``prepbench run``'s (:mod:`prepbench.tools.cli.options`);
``--judge`` here names the verifier's judge model (DVS), so the run's grounded candidate
judge is ``--grounded-judge``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any, Optional

import typer
from rich.console import Console
from rich.markup import escape

from prepbench.evaluation.compare import (
    DEFAULT_METRIC_SETS,
    CompareOptions,
    FamilySpec,
    compare,
    dig,
    fmt_value,
    parse_agents,
    parse_mapping,
)
from prepbench.tools.cli import options as o
from prepbench.tools.cli.progress import progress_factory
from prepbench.tools.errors import PrepbenchError

AGENTS_HELP = (
    "Families to compare, comma-separated, each optionally with its own model: FAMILY[=MODEL]. "
    "E.g. skill=extractive,direct,react (skill on the offline generator, direct and react on --model). "
    "A family without '=' uses --model; skill alone falls back to extractive. direct/react need a chat model."
)


# compare-only options (the run and chat-model ones are in options.py)
OutDir = Annotated[
    str, typer.Option("--out", "-o", help="Comparison folder: runs/<family>, compare.json, report.md/html/json, plots.")
]
Model = Annotated[
    Optional[str], typer.Option("--model", "-m", help="Model spec for families without FAMILY=MODEL (e.g. openai:<m>).")
]
Proxy = Annotated[
    Optional[str],
    typer.Option("--proxy", help="Domain proxy dataset for DAS (JSONL/JSON, run or datasets folder); no DAS without it."),
]
ProxyFields = Annotated[
    Optional[str], typer.Option("--proxy-fields", help="Field mapping of the proxy, e.g. instruction=question,response=answer.")
]
Cache = Annotated[
    Optional[str], typer.Option("--cache", help="Embedding cache SQLite file (default ~/.cache/prepbench/embeddings.sqlite).")
]
Judge = Annotated[
    Optional[str], typer.Option("--judge", help="Judge chat model for the verifier DVS, e.g. openai:<m>; no DVS without it.")
]
Task = Annotated[
    Optional[str], typer.Option("--task", help="Target task for the judge (default: from the skill's domain and description).")
]
Reference = Annotated[
    Optional[str], typer.Option("--reference", help="Model name of the reference (Dolly-only) model in the records.")
]
Trained = Annotated[
    Optional[str],
    typer.Option("--trained", help="Record model names of the families, e.g. skill=mix-skill (default: the family name)."),
]


@o.with_options(o.chunking_options, o.loop_options, o.server_options, o.family_options, o.mode_options)
def compare_cmd(
    agents: str = typer.Option("skill,direct,react", "--agents", "-a", help=AGENTS_HELP),
    corpus: o.Corpus = [],
    mode: Optional[str] = typer.Option(
        None, "--mode", help="Compare generators on a generation mode (instance, response, enhance) instead of agent families."
    ),
    generators: Optional[str] = typer.Option(
        None,
        "--generators",
        help="With --mode: chat models to compare, comma-separated SPEC or LABEL=SPEC (e.g. openai:a,openai:b).",
    ),
    lm: Optional[str] = typer.Option(
        None, "--lm", help="With --mode: reference causal LM (name or path) for response perplexity."
    ),
    skill: o.Skill = o.SKILL,
    out_dir: OutDir = ...,
    model: Model = None,
    grounded_judge: o.GroundedJudgeCompare = False,
    proxy: Proxy = None,
    proxy_format: Optional[str] = typer.Option(None, "--proxy-format", help="Format of the proxy (default: detect)."),
    proxy_fields: ProxyFields = None,
    encoder: str = typer.Option("minilm", "--encoder", help="Encoder for DAS and embedding metrics (minilm is offline)."),
    cache: Cache = None,
    sigma: str = typer.Option("1.0", "--sigma", help="DAS RBF bandwidth, or 'median'."),
    max_samples: int = typer.Option(5000, "--max-samples", help="At most this many samples per side for DAS and metrics."),
    seed: int = typer.Option(42, "--seed", help="Subsampling seed."),
    metrics: str = typer.Option(",".join(DEFAULT_METRIC_SETS), "--metrics", help="Weight-free metric sets (or 'none')."),
    judge: Judge = None,
    judge_base_url: Optional[str] = typer.Option(None, "--judge-base-url", help="Judge server URL (default: --base-url)."),
    task: Task = None,
    judge_n: int = typer.Option(200, "--judge-n", help="Samples per family the judge labels (seeded subset)."),
    records: list[str] = typer.Option([], "--records", help="Score records .jsonl/.csv from `prepbench evaluate` (repeatable)."),
    base: Optional[str] = typer.Option(None, "--base", help="Model name of the base model in the records (for PGR)."),
    reference: Reference = None,
    trained: Trained = None,
    metric: Optional[str] = typer.Option(None, "--metric", help="Benchmark metric (default: each benchmark's primary one)."),
    fresh: bool = typer.Option(False, "--fresh", help="Start every family's run over (and its wall-time record)."),
    quiet: o.Quiet = False,
    **flags: Any,
) -> None:
    """Run agent families on the same corpus and compare them: report.md + self-contained report.html.

    Each family runs into OUT/runs/<family> and resumes like `prepbench run` (a finished run does nothing; its recorded wall time is kept in OUT/compare.json).
    """
    args = {k: v for k, v in locals().items() if k != "flags"}
    if mode is not None:
        return _compare_modes(args, flags)
    if not corpus:
        raise PrepbenchError("--corpus: give the corpus the agent families run on (or --mode with --generators and --seeds)")
    for k in ("generators", "lm", "mode"):
        args.pop(k)
    for k in o.option_names(o.mode_options):
        if k != "temperature":  # a chat-model flag of the families too
            flags.pop(k)
    opts = _compare_options(**args, **flags)
    err = Console(stderr=True)

    def on_family(i: int, spec: FamilySpec) -> None:
        if not quiet:
            err.print(
                f"[bold][{i + 1}/{len(opts.agents)}] {spec.family}[/] ({spec.model}) → {Path(out_dir) / 'runs' / spec.family}"
            )

    res = compare(opts, progress=lambda fam, spec: progress_factory(quiet), on_family=on_family)
    _print_summary(res, show_das=bool(proxy), show_dvs=bool(judge))
    for n in res["report"]["notes"]:
        err.print(f"[yellow]note:[/] {escape(n)}", highlight=False)
    p = res["paths"]
    err.print(f"wrote {p['markdown']}, {p['html']} and {p['json']}")
    if any(f["stopped"] for f in res["report"]["families"]):
        raise typer.Exit(3)


def _compare_modes(args: dict[str, Any], flags: dict[str, Any]) -> None:
    """``compare --mode``: the generators on one generation mode, AgoraBench's table (see :mod:`prepbench.evaluation.compare.modes`)."""
    from prepbench.evaluation.compare.modes import ModeCompareOptions, compare_modes, parse_generators

    if not args["generators"]:
        raise PrepbenchError("--mode needs --generators SPEC,SPEC (the chat models to compare)")
    if not flags.get("seeds"):
        raise PrepbenchError("--mode needs --seeds DATA (e.g. ../shared/datasets/gsm8k/train.jsonl)")
    chat = {k: flags[k] for k in o.MODEL_FLAGS if k in flags and k != "judge"}
    chat.update(concurrency=flags["concurrency"], judge=False)
    opts = ModeCompareOptions(
        mode=args["mode"],
        skill=args["skill"],
        out=args["out_dir"],
        generators=parse_generators(args["generators"]),
        model_options=o.model_options(chat, chat=True),
        concurrency=flags["concurrency"],
        max_attempts=flags["max_attempts"],
        fresh=args["fresh"],
        encoder=args["encoder"],
        cache=args["cache"],
        max_samples=args["max_samples"],
        seed=args["seed"],
        lm=args["lm"],
        judge=args["judge"],
        judge_base_url=args["judge_base_url"] or flags.get("base_url"),
        judge_n=args["judge_n"],
        records=[r.strip() for x in args["records"] for r in x.split(",") if r.strip()],
        base=args["base"],
        reference=args["reference"],
        trained=_generator_mapping(args["trained"]),
        metric=args["metric"],
        quiet=args["quiet"],
        **{k: flags[k] for k in o.option_names(o.mode_options) if k != "temperature"},
    )
    err = Console(stderr=True)
    res = compare_modes(opts, progress=lambda g: progress_factory(args["quiet"], unit="slots"))
    _print_modes_summary(res)
    for n in res["report"]["notes"]:
        err.print(f"[yellow]note:[/] {escape(n)}", highlight=False)
    p = res["paths"]
    err.print(f"wrote {p['markdown']}, {p['html']}, {p['json']} and {p['intrinsic']}")
    if any(f["stopped"] for f in res["report"]["families"]):
        raise typer.Exit(3)


def _generator_mapping(spec: str | None) -> dict[str, str]:
    """``--trained label=MODEL,...`` for generators (any label)."""
    out = {}
    for part in (spec or "").split(","):
        k, sep, v = part.strip().partition("=")
        if part.strip() and (not sep or not k.strip() or not v.strip()):
            raise PrepbenchError(f"--trained {spec!r}: expected label=NAME[,label=NAME]")
        if sep:
            out[k.strip()] = v.strip()
    return out


def _print_modes_summary(res: dict[str, Any]) -> None:
    """One row per generator on stdout: accepted, cost, cost per accepted instance and the intrinsic metrics."""
    from rich.table import Table as RichTable

    from prepbench.evaluation.compare.modes import INTRINSIC_COLUMNS

    t = RichTable(title=f"compare --mode {res['report']['mode']} ({res['seconds']:.1f}s)")
    cols = ["generator", "model", "accepted", "cost", "cost/accepted"] + [c[0] for c in INTRINSIC_COLUMNS] + ["PGR"]
    for col in cols:
        t.add_column(col, justify="left" if col in ("generator", "model") else "right")
    for f in res["report"]["families"]:
        cells = [f["family"], f["model"], str(f["samples"]["accepted"]), fmt_value(f["calls"]["cost_usd"], "usd")]
        cells += [fmt_value(f["derived"]["cost_per_accepted_usd"], "usd")]
        cells += [fmt_value(dig(f["intrinsic"], k)) for _, k, _ in INTRINSIC_COLUMNS] + [fmt_value(f.get("pgr"), "pgr")]
        t.add_row(*cells)
    Console().print(t)


def _compare_options(
    *,
    agents: str,
    model: str | None,
    sigma: str,
    metrics: str,
    records: list[str],
    trained: str | None,
    judge_base_url: str | None,
    **flags: Any,
) -> CompareOptions:
    """Check the flags and build the :class:`CompareOptions` (the chat-model flags become its ModelOptions).

    Raises:
        PrepbenchError: a bad ``--agents``, ``--trained``, ``--sigma`` or an out-of-range number.
    """
    specs = parse_agents(agents, model)
    if flags["concurrency"] < 1 or flags["batch_size"] < 1:
        raise PrepbenchError("--concurrency and --batch-size must be at least 1")
    if flags["limit"] is not None and flags["limit"] < 1:
        raise PrepbenchError("--limit must be at least 1")
    if flags["judge_n"] < 1:
        raise PrepbenchError("--judge-n must be at least 1")
    try:
        sig: float | str = "median" if sigma == "median" else float(sigma)
    except ValueError:
        raise PrepbenchError(f"--sigma {sigma!r}: use a positive number or 'median'") from None
    # --judge is the verifier's judge model here; the run's candidate judge is --grounded-judge
    # --batch is a flag of run only: a comparison runs its agents online
    chat = {k: flags.pop(k) for k in o.MODEL_FLAGS if k not in ("concurrency", "judge") and k in flags}
    chat.update(concurrency=flags["concurrency"], judge=flags.pop("grounded_judge"))
    model_options = o.model_options(chat, chat=True)
    return CompareOptions(
        agents=specs,
        out=flags.pop("out_dir"),
        model_options=model_options,
        sigma=sig,
        metrics=[] if metrics.strip().lower() in ("", "none") else [m.strip() for m in metrics.split(",") if m.strip()],
        judge_base_url=judge_base_url or chat["base_url"],
        records=[r.strip() for x in records for r in x.split(",") if r.strip()],
        trained=parse_mapping(trained, "--trained"),
        **flags,
    )


def _print_summary(res: dict[str, Any], show_das: bool, show_dvs: bool) -> None:
    """One row per family on stdout: accepted, kept share, tokens, cost, wall time (and DAS/DVS when scored)."""
    from rich.table import Table as RichTable

    t = RichTable(title=f"compare ({res['seconds']:.1f}s)")
    cols = ["family", "model", "accepted", "kept share", "tokens", "cost", "wall s"]
    cols += ["DAS"] if show_das else []
    cols += ["DVS"] if show_dvs else []
    for col in cols:
        t.add_column(col, justify="left" if col in ("family", "model") else "right")
    for f in res["report"]["families"]:
        cells = [
            f["family"],
            f["model"],
            str(f["samples"]["accepted"]),
            f"{f['kept_share']:.0%}",
            f"{f['calls']['input_tokens'] + f['calls']['output_tokens']:,}",
            f"${f['calls']['cost_usd']:.4f}",
            f"{f['wall_s']:.1f}",
        ]
        cells += [fmt_value(dig(f["scores"]["das"], "das"))] if show_das else []
        cells += [fmt_value(dig(f["scores"]["dvs"], "dvs"))] if show_dvs else []
        t.add_row(*cells)
    Console().print(t)
