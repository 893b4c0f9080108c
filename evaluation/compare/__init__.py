"""Comparison of agent families: run each family on the same corpus, collect, report.

``prepbench compare`` runs the selected agent families (``skill``, ``direct``, ``react``) over the
same corpus and skill, each into its own resumable run folder ``OUT/runs/<family>`` through
:func:`prepbench.agents.runner.run_pipeline`, then collects per family:

- construction (from each run's ledger): chunks kept/skipped/failed, accepted and rejected
  samples, rejection rules, skip reasons, sample-type mix, per-document coverage, model calls,
  tokens in/out, cost (USD) and the generation wall time;
- data scores: DAS against a domain proxy (DataPrep-Bench §4, :mod:`.das`), the weight-free
  metrics (:mod:`.metrics`), and the LLM data verifier's DVS (:mod:`.verifier`) when a judge
  model is given;
- downstream: per-benchmark scores from score records (``prepbench evaluate``) and the
  AgoraBench PGR (Kim et al., 2024; :mod:`.pgr`) when records and the base/reference model
  names are given.

Output in ``OUT``: ``report.json`` (everything collected), ``report.md`` (tables + PNG plots
written next to it) and a self-contained ``report.html`` (CSS inline, plots as base64
``data:`` URIs, no external reference). The tables follow the spirit of DataPrep-Bench
Tables A-D: A construction and cost, B data metrics, C where the candidates went (sample
types, rejection rules, skip reasons), D downstream scores and PGR.

Scores are cached in ``OUT/compare.json`` too, keyed by a hash of the samples scored and the
settings that change the score: re-running a finished comparison neither re-embeds nor calls
the judge again. Wall time is durable: ``OUT/compare.json`` accumulates, per family, the seconds of the
``run_pipeline`` calls that processed chunks (a finished run resumed by a later ``compare``
adds nothing), keyed by the ledger's ``created_at`` so a run started over resets it.

Modules: :mod:`.run` (options, ``--agents``, running the families), :mod:`.collect` (each
run's figures through :class:`~prepbench.tools.ledger.RunFolder`, scores and their cache),
:mod:`.report` (tables, plots, Markdown, HTML). The ``prepbench compare`` command itself lives
in the CLI package (``tools/cli/compare.py``).

Family models: ``--agents skill=extractive,direct,react --model openai:M`` -- a family takes
the model after its ``=``, else ``--model``; the skill family alone falls back to the offline
``extractive`` generator when neither is given. ``direct`` and ``react`` need a chat model.
"""

from __future__ import annotations

import time
from typing import Any, Callable

from prepbench.tools.errors import PrepbenchError

from .collect import collect, collect_run, downstream, load_records
from .report import METRIC_COLUMNS, Table, build_tables, dig, fmt_value, make_plots, render_html, render_markdown, write_report
from .run import DEFAULT_METRIC_SETS, STATE_FILE, CompareOptions, FamilySpec, parse_agents, parse_mapping, run_families

__all__ = [
    "DEFAULT_METRIC_SETS",
    "METRIC_COLUMNS",
    "STATE_FILE",
    "CompareOptions",
    "FamilySpec",
    "Table",
    "build_tables",
    "collect",
    "collect_run",
    "compare",
    "dig",
    "downstream",
    "fmt_value",
    "load_records",
    "make_plots",
    "parse_agents",
    "parse_mapping",
    "render_html",
    "render_markdown",
    "run_families",
    "write_report",
]


def compare(
    opts: CompareOptions,
    progress: Callable[[str, FamilySpec], Any] | None = None,
    on_family: Callable[[int, FamilySpec], None] | None = None,
) -> dict[str, Any]:
    """Run every family (resumable), collect and write the report (DataPrep-Bench Tables A-D in spirit).

    Inputs that can be checked without running anything (model and judge specs, metric sets,
    records, base/reference names, the proxy) are checked first, so a bad one fails before any
    run starts.

    Returns:
        ``{"report": dict, "paths": write_report(...), "runs": run_families(...), "seconds": float}``.

    Raises:
        PrepbenchError: bad input (one line, names the option or file).
    """
    t0 = time.perf_counter()
    if not opts.agents:
        raise PrepbenchError("--agents: name at least one family")
    if opts.metrics:
        from prepbench.evaluation.metrics import WEIGHT_FREE_SETS, parse_metric_sets

        opts.metrics = parse_metric_sets(list(opts.metrics), WEIGHT_FREE_SETS)
    load_records(opts)
    if opts.proxy:
        from prepbench.evaluation.readers import read_samples

        read_samples(opts.proxy, opts.proxy_format, opts.proxy_fields)
    from prepbench.agents.models.specs import parse_spec

    for spec in opts.agents:
        parse_spec(spec.model)
    if opts.judge:
        if parse_spec(opts.judge)[0] == "extractive":
            raise PrepbenchError("--judge needs a chat model spec (e.g. openai:<model>), not 'extractive'")
    wrapped = progress
    if on_family is not None:
        idx = {s.family: i for i, s in enumerate(opts.agents)}

        def wrapped(fam, spec):  # noqa: F811
            on_family(idx[fam], spec)
            return progress(fam, spec) if progress else None

    from prepbench.tools.ledger import RunLock

    with RunLock(opts.out):  # one compare at a time on a comparison folder (its runs are locked too)
        runs = run_families(opts, wrapped)
        report = collect(opts, runs)
        paths = write_report(report, opts.out)
    return {"report": report, "paths": paths, "runs": runs, "seconds": time.perf_counter() - t0}
