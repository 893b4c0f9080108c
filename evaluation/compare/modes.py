"""``prepbench compare --mode``: several generators on one generation mode, AgoraBench's table.

AgoraBench (Kim et al., ACL 2025, §3-5) runs every data generator on the same setting and seeds
and compares, per generator, the data it made (how much, at what cost), its intrinsic metrics
(response quality and instruction difficulty by an LLM judge, response perplexity, diversity)
and the PGR of a model trained on it. Here each generator (a chat model spec) runs
``prepbench generate`` into ``OUT/runs/<label>`` (resumable, the same slots for all since they
are drawn from the run seed), then per generator:

- construction, from its ledger: slots, accepted and rejected instances, rules, tokens, cost
  (USD, from the price table) and cost per accepted instance;
- intrinsic metrics of its accepted instances: ``diversity`` (instruction and response, from
  embeddings) always, ``response_ppl`` with ``--lm``, ``judge_quality``/``judge_difficulty``
  with ``--judge`` (the skill's domain picks the rubric); cached in ``OUT/compare.json`` by a
  hash of the instances and the settings;
- PGR, when score records and the base/reference names are given (generators are matched by
  label, or ``--trained label=MODEL``).

Output: ``report.md``/``report.html``/``report.json`` (as ``compare``) and ``intrinsic.csv``, the
per-generator metrics table ``prepbench analyze`` reads.
"""

from __future__ import annotations

import csv
import re
import time
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Callable

from prepbench.tools.errors import PrepbenchError
from prepbench.tools.run import ModelOptions

from .collect import _Cached, _digest, collect_run, downstream, load_records
from .report import Table, _column_table, _downstream_table, _fate_table, dig, make_plots, write_report
from .run import FamilySpec, _ledger_progress, read_state, write_state

#: intrinsic metric columns of the table: (label, key in "intrinsic", better: +1 higher, -1 lower, 0 neither)
INTRINSIC_COLUMNS = (
    ("judge quality", "judge_quality.mean", 1),
    ("judge difficulty", "judge_difficulty.mean", 1),
    ("response PPL", "response_ppl.response_ppl.mean", 0),
    ("instruction diversity", "diversity.instruction_diversity", 1),
    ("response diversity", "diversity.response_diversity", 1),
)


def parse_generators(spec: str) -> list[FamilySpec]:
    """``"openai:small,openai:big"`` or ``"cheap=openai:small,..."`` -> one (label, model) each.

    A generator without ``label=`` is labelled by its model name (the part after ``provider:``).

    Raises:
        PrepbenchError: none given, an empty part, a repeated label, or the offline generator.
    """
    out: list[FamilySpec] = []
    for part in [p.strip() for p in (spec or "").split(",") if p.strip()]:
        label, sep, model = part.partition("=")
        if not sep:
            label, model = re.sub(r"[^A-Za-z0-9._-]+", "-", part.split(":", 1)[-1]).strip("-"), part
        label, model = label.strip(), model.strip()
        if not label or not model:
            raise PrepbenchError(f"--generators: '{part}' needs a model spec (LABEL=SPEC or SPEC)")
        if model == "extractive":
            raise PrepbenchError("--generators: the generation modes need chat models (openai:<model>, ...), not 'extractive'")
        if any(g.family == label for g in out):
            raise PrepbenchError(f"--generators: label '{label}' given twice; name them LABEL=SPEC")
        out.append(FamilySpec(label, model))
    if len(out) < 1:
        raise PrepbenchError("--generators: name at least one chat model, e.g. openai:small,openai:big")
    return out


@dataclass
class ModeCompareOptions:
    """Everything ``prepbench compare --mode`` takes (see the module docstring).

    ``generators`` are (label, model) pairs; ``agents`` is the same list under the name the
    shared record and PGR helpers read. The generation options are ``prepbench generate``'s.
    """

    mode: str
    seeds: str
    skill: str
    out: str
    generators: list[FamilySpec]
    n: int | None = None
    run_seed: int = 0
    slot_retries: int = 2
    seed_format: str | None = None
    seed_fields: str | None = None
    decontaminate: str | None = None
    data_dir: str | None = None
    concurrency: int = 8
    max_attempts: int = 3
    fresh: bool = False
    model_options: ModelOptions = field(default_factory=ModelOptions)
    encoder: str = "minilm"
    cache: str | None = None
    max_samples: int = 5000
    seed: int = 42
    lm: str | None = None
    judge: str | None = None
    judge_base_url: str | None = None
    judge_n: int = 200
    records: list[str] = field(default_factory=list)
    base: str | None = None
    reference: str | None = None
    trained: dict[str, str] = field(default_factory=dict)
    metric: str | None = None
    quiet: bool = False

    def __post_init__(self) -> None:
        self.model_options = ModelOptions.coerce(self.model_options)

    @property
    def agents(self) -> list[FamilySpec]:
        return self.generators


def run_generators(opts: ModeCompareOptions, progress: Callable[[FamilySpec], Any] | None = None) -> dict[str, dict]:
    """Run (or resume) every generator's ``generate`` into ``OUT/runs/<label>``; wall time kept in ``compare.json``.

    Returns:
        label -> ``{"model", "run", "seconds", "stopped"}``.
    """
    from prepbench.agents.modes import run_generate
    from prepbench.evaluation.readers import read_seeds
    from prepbench.tools.slots import GenerateOptions

    seeds = read_seeds(opts.seeds, opts.seed_format, opts.seed_fields)
    spec = _decontamination(opts)
    out, state, runs = Path(opts.out), read_state(Path(opts.out)), {}
    for g in opts.generators:
        run_dir = out / "runs" / g.family
        gen = GenerateOptions(
            mode=opts.mode,
            seeds=opts.seeds,
            skill=opts.skill,
            out=str(run_dir),
            model=g.model,
            n=opts.n,
            run_seed=opts.run_seed,
            slot_retries=opts.slot_retries,
            concurrency=opts.concurrency,
            max_attempts=opts.max_attempts,
            decontamination=spec,
            fresh=opts.fresh,
            model_options=opts.model_options,
        )
        before, created_before = _ledger_progress(run_dir)
        res = run_generate(gen, seeds, progress=progress(g) if progress else None)
        after, created = _ledger_progress(run_dir)
        rec = state["families"].get(g.family) or {}
        if rec.get("created_at") != created or rec.get("model") != g.model:
            rec = {"model": g.model, "created_at": created, "seconds": 0.0}
        if (after - before if created_before == created else after) > 0:  # this call generated: its time counts
            rec["seconds"] = round(rec["seconds"] + res["seconds"], 3)
        state["families"][g.family] = rec
        write_state(out, state)
        runs[g.family] = {"model": g.model, "run": str(run_dir), "seconds": rec["seconds"], "stopped": res["stopped"]}
    return runs


def _decontamination(opts: ModeCompareOptions):
    """The ``--decontaminate`` benchmarks as a decontamination spec (n-gram rule), or None."""
    if not opts.decontaminate:
        return None
    from prepbench.evaluation.evaluate import benchmark_test_sets, resolve_benchmarks
    from prepbench.evaluation.train_config import datasets_dir
    from prepbench.tools.decontaminate import DecontaminationSpec

    sets = benchmark_test_sets(resolve_benchmarks(opts.decontaminate), datasets_dir(opts.data_dir))
    return DecontaminationSpec(sets, embed_threshold=None, cache=Path(opts.cache) if opts.cache else None)


def intrinsic(opts: ModeCompareOptions, run_dir: Path, domain: str, cache: dict) -> tuple[dict[str, Any], list[str]]:
    """The intrinsic metrics of one run's accepted instances (cached by instances + settings) and notes."""
    from prepbench.evaluation.readers import read_samples, subsample

    notes: list[str] = []
    try:
        samples = subsample(read_samples(run_dir, "run"), opts.max_samples, opts.seed)
    except PrepbenchError as e:
        return {}, [f"no intrinsic metrics: {e}"]
    cached = _Cached(cache, _digest([s.text for s in samples]))
    out: dict[str, Any] = {}
    key, value = cached.get("intrinsic", [opts.encoder, opts.lm, opts.judge, domain, opts.judge_n, opts.seed])
    if value is not None:
        return value, notes
    if len(samples) >= 2:
        from prepbench.evaluation.metrics import compute_metrics
        from prepbench.tools.embed import EmbeddingCache, embed_texts, make_encoder

        enc, store = make_encoder(opts.encoder), EmbeddingCache(opts.cache)
        embed = lambda t: embed_texts(t, enc, store, progress=not opts.quiet)  # noqa: E731
        out.update(compute_metrics(samples, ["diversity", "length"], embed=embed)["metrics"])
    else:
        notes.append("diversity needs at least 2 accepted instances")
    if opts.lm:
        from prepbench.evaluation.model_metrics import compute_model_metrics

        out.update(compute_model_metrics(samples, {"response_ppl": opts.lm}, progress=not opts.quiet))
    if opts.judge:
        from prepbench.agents.models.specs import make_chat_model
        from prepbench.evaluation.judge_metrics import JUDGE_SETS, judge

        chat = make_chat_model(opts.judge, base_url=opts.judge_base_url, temperature=0.0, max_tokens=256)
        for m in JUDGE_SETS:
            out[m] = judge(samples, chat, m, domain=domain, n=opts.judge_n, seed=opts.seed, progress=not opts.quiet)
    cached.put("intrinsic", key, out)
    return out, notes


def judge_notes(metrics: dict[str, Any]) -> list[str]:
    """One line per judge metric some of whose replies named no score or failed: they are left out of
    its mean (an empty cell when none scored), so the report says so rather than showing a bare gap."""
    out = []
    for m in ("judge_quality", "judge_difficulty"):
        r = metrics.get(m) or {}
        if r.get("n_unparsed") or r.get("n_errors"):
            out.append(
                f"{m}: {r['n_scored']} of {r['n']} instances scored; {r['n_unparsed']} judge replies named no score, "
                f"{r['n_errors']} judge calls failed (each reply's text: report.json, intrinsic.{m}.per_sample)"
            )
    return out


def collect_modes(opts: ModeCompareOptions, runs: dict[str, dict]) -> dict[str, Any]:
    """The report of a generator comparison (the families' report shape, one entry per generator)."""
    from prepbench.tools.skills import load_skill

    records = load_records(opts)
    skill = load_skill(opts.skill)
    state = read_state(Path(opts.out))
    cache = state.setdefault("scores", {})
    gens, notes = [], []
    for g in opts.generators:
        r = runs[g.family]
        c = collect_run(r["run"])
        metrics, more = intrinsic(opts, Path(r["run"]), skill.domain, cache.setdefault(g.family, {}))
        write_state(Path(opts.out), state)
        notes += [f"{g.family}: {n}" for n in more + judge_notes(metrics)]
        acc, rej = c["samples"]["accepted"], c["samples"]["rejected"]
        derived = {
            "acceptance_rate": acc / (acc + rej) if acc + rej else None,
            "cost_per_accepted_usd": c["calls"]["cost_usd"] / acc if acc else None,
            "accepted_per_min": acc / r["seconds"] * 60.0 if r["seconds"] else None,
        }
        gens.append({"family": g.family, "model": g.model, "run": r["run"], "wall_s": r["seconds"], "stopped": r["stopped"]})
        gens[-1].update({**c, "intrinsic": metrics, "derived": derived})
        if r["stopped"]:
            notes.append(f"{g.family}: stopped early with slots pending; run compare again to resume")
    report = {
        "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "out": str(opts.out),
        "mode": opts.mode,
        "seeds": opts.seeds,
        "n": opts.n,
        "skill": {"name": skill.name, "version": skill.version, "domain": skill.domain},
        "judge": opts.judge,
        "lm": opts.lm,
        "families": gens,
        "downstream": downstream(records, opts) if records else None,
        "notes": notes,
    }
    if report["downstream"] and report["downstream"]["pgr"]:
        for f in gens:
            f["pgr"] = report["downstream"]["pgr"].get(f["family"], {}).get("average")
    return report


def agora_table(report: dict[str, Any]) -> Table:
    """AgoraBench's table: per generator, instances, cost, cost per accepted instance, intrinsic metrics, PGR."""
    gens = report["families"]
    g = lambda fn: [fn(f) for f in gens]  # noqa: E731
    cols = [
        ("slots", g(lambda f: f["chunks"]["total"]), "int", 0),
        ("accepted", g(lambda f: f["samples"]["accepted"]), "int", 1),
        ("rejected", g(lambda f: f["samples"]["rejected"]), "int", -1),
        ("accept rate", g(lambda f: f["derived"]["acceptance_rate"]), "pct", 1),
        ("tokens in", g(lambda f: f["calls"]["input_tokens"]), "int", -1),
        ("tokens out", g(lambda f: f["calls"]["output_tokens"]), "int", -1),
        ("cost (USD)", g(lambda f: f["calls"]["cost_usd"]), "usd", -1),
        ("cost / accepted (USD)", g(lambda f: f["derived"]["cost_per_accepted_usd"]), "usd", -1),
    ]
    cols += [(label, g(lambda f, k=k: dig(f["intrinsic"], k)), "g", better) for label, k, better in INTRINSIC_COLUMNS]
    cols += [("PGR (%)", g(lambda f: f.get("pgr")), "pgr", 1), ("wall (s)", g(lambda f: f["wall_s"]), "s", -1)]
    cap = (
        f"Every generator on the same {report['mode']} slots of {Path(report['seeds']).name} (AgoraBench, Kim et al. 2025). "
        "Cost from the price table (--prices); intrinsic metrics of the accepted instances: LLM-judged quality and "
        "difficulty (1-5), response perplexity under the reference LM, 1 - mean pairwise cosine of the instruction and "
        "response embeddings; PGR where score records are given. ↑/↓: better direction; bold: best."
    )
    return _column_table(
        "construction",
        "AgoraBench: generators compared",
        cap,
        "generator (model)",
        [f"{f['family']} ({f['model']})" for f in gens],
        cols,
    )


def write_intrinsic_csv(report: dict[str, Any], path: Path) -> Path:
    """``candidate`` (the generator's label) and one column per intrinsic metric and cost: ``prepbench analyze``'s METRICS."""
    cols = [("cost_per_accepted_usd", "derived.cost_per_accepted_usd")] + [
        (k.replace(".", "_"), k) for _, k, _ in INTRINSIC_COLUMNS
    ]
    with path.open("w", newline="", encoding="utf-8") as f:
        w = csv.writer(f)
        w.writerow(["candidate", *(c for c, _ in cols)])
        for g in report["families"]:
            w.writerow(
                [g["family"], *("" if (v := dig({**g["intrinsic"], "derived": g["derived"]}, k)) is None else v for _, k in cols)]
            )
    return path


def compare_modes(opts: ModeCompareOptions, progress: Callable[[FamilySpec], Any] | None = None) -> dict[str, Any]:
    """Run every generator on the mode, collect, write the report (see the module docstring).

    Raises:
        PrepbenchError: bad options or inputs (checked before any generator runs where possible).
    """
    from prepbench.agents.models.specs import parse_spec
    from prepbench.tools.ledger import RunLock

    t0 = time.perf_counter()
    for g in opts.generators:
        parse_spec(g.model)
    if opts.judge and parse_spec(opts.judge)[0] == "extractive":
        raise PrepbenchError("--judge needs a chat model spec (e.g. openai:<model>), not 'extractive'")
    load_records(opts)
    with RunLock(opts.out):
        runs = run_generators(opts, progress)
        report = collect_modes(opts, runs)
        tables = [agora_table(report), _fate_table(report)] + ([_downstream_table(report)] if report["downstream"] else [])
        plots = {k: v for k, v in make_plots(report).items() if k != "coverage_per_document"}
        paths = write_report(report, opts.out, tables=tables, plots=plots)
        paths["intrinsic"] = write_intrinsic_csv(report, Path(opts.out) / "intrinsic.csv")
    return {"report": report, "paths": paths, "runs": runs, "seconds": time.perf_counter() - t0}
