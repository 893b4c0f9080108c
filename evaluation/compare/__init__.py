"""Comparison of agent families: run each family on the same corpus, collect, report.

``prepbench compare`` runs the selected agent families (``skill``, ``direct``, ``react``) over the
same corpus and skill, each into its own resumable run folder ``OUT/runs/<family>`` through
:func:`prepbench.tools.run.run_pipeline`, then collects per family:

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

Family models: ``--agents skill=extractive,direct,react --model openai:M`` -- a family takes
the model after its ``=``, else ``--model``; the skill family alone falls back to the offline
``extractive`` generator when neither is given. ``direct`` and ``react`` need a chat model.
"""

from __future__ import annotations

import base64
import html
import io
import json
import os
import time
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Callable, Optional, Sequence

from prepbench.tools.errors import PrepbenchError

FAMILIES = ("skill", "direct", "react")
STATE_FILE = "compare.json"
DEFAULT_METRIC_SETS = ("lexical", "ngram", "compression", "length", "embedding")


# ---------------------------------------------------------------------------------------
# options
# ---------------------------------------------------------------------------------------


@dataclass
class FamilySpec:
    """One agent family of a comparison and the model spec it runs with."""

    family: str
    model: str


def parse_agents(spec: str, default_model: str | None = None) -> list[FamilySpec]:
    """Parse ``--agents``: ``"skill=extractive,direct,react"`` -> one :class:`FamilySpec` each.

    A family takes the model after its ``=``, else ``default_model``; ``skill`` falls back to
    ``extractive`` when neither is given. Order is kept (it is the report's order).

    Raises:
        PrepbenchError: empty list, unknown or repeated family, a family without a model, or
            ``extractive`` for ``direct``/``react`` (they need a chat model).
    """
    items = [p.strip() for p in (spec or "").split(",") if p.strip()]
    if not items:
        raise PrepbenchError(f"--agents {spec!r}: name at least one family ({', '.join(FAMILIES)})")
    out: list[FamilySpec] = []
    for item in items:
        fam, _, model = item.partition("=")
        fam, model = fam.strip(), model.strip()
        if fam not in FAMILIES:
            raise PrepbenchError(f"--agents: unknown agent family '{fam}' (choose from {', '.join(FAMILIES)}; e.g. skill=extractive,direct,react)")
        if any(f.family == fam for f in out):
            raise PrepbenchError(f"--agents: family '{fam}' given twice")
        if "=" in item and not model:
            raise PrepbenchError(f"--agents: '{item}' has an empty model spec after '='")
        model = model or default_model or ("extractive" if fam == "skill" else "")
        if not model:
            raise PrepbenchError(f"--agents: family '{fam}' has no model; give --model SPEC or {fam}=SPEC")
        if fam in ("direct", "react") and model == "extractive":
            raise PrepbenchError(
                f"--agents: family '{fam}' needs a chat model (e.g. {fam}=openai:<model> or --model openai:<model>); "
                "only the skill family runs on 'extractive'"
            )
        out.append(FamilySpec(fam, model))
    return out


def parse_mapping(spec: str | None, what: str) -> dict[str, str]:
    """``"skill=mix-skill,direct=mix-direct"`` -> ``{"skill": "mix-skill", ...}`` (family keys).

    Raises:
        PrepbenchError: a part without ``=`` or an unknown family.
    """
    out: dict[str, str] = {}
    for part in (spec or "").split(","):
        part = part.strip()
        if not part:
            continue
        k, sep, v = part.partition("=")
        if not sep or not k.strip() or not v.strip():
            raise PrepbenchError(f"{what} {spec!r}: expected family=NAME[,family=NAME]")
        if k.strip() not in FAMILIES:
            raise PrepbenchError(f"{what}: unknown agent family '{k.strip()}' (choose from {', '.join(FAMILIES)})")
        out[k.strip()] = v.strip()
    return out


@dataclass
class CompareOptions:
    """Everything ``prepbench compare`` takes.

    Attributes:
        corpus, skill: as for ``prepbench run`` (the same for every family).
        out: the comparison folder; runs go to ``out/runs/<family>``.
        agents: the families and their model specs (:func:`parse_agents`).
        limit, exclude, concurrency, batch_size, max_attempts, max_repairs, fresh: run options
            passed to every family's :class:`~prepbench.tools.run.RunOptions`.
        model_options: model-layer options for chat-model families (base_url, prices, timeout, ...).
        proxy, proxy_format, proxy_fields: the domain proxy for DAS (None: no DAS columns).
        encoder, cache: encoder spec and embedding cache file for DAS and embedding metrics.
        sigma, max_samples, seed: DAS / metric settings (RBF bandwidth; per-side cap; subsample seed).
        metrics: weight-free metric sets (empty: none).
        judge, judge_base_url, task, judge_n: verifier DVS (None judge: no DVS column).
        records: score-record files (``prepbench evaluate``); base, reference: their model names
            for PGR; trained: family -> model label in the records (default: the family name);
            metric: the benchmark metric (default: each benchmark's primary one).
        quiet: no progress bars.
    """

    corpus: list[str]
    skill: str
    out: str
    agents: list[FamilySpec]
    limit: int | None = None
    exclude: list[str] = field(default_factory=list)
    concurrency: int = 8
    batch_size: int = 16
    max_attempts: int = 3
    max_repairs: int = 2
    fresh: bool = False
    model_options: dict[str, Any] = field(default_factory=dict)
    proxy: str | None = None
    proxy_format: str | None = None
    proxy_fields: str | None = None
    encoder: str = "minilm"
    cache: str | None = None
    sigma: float | str = 1.0
    max_samples: int = 5000
    seed: int = 42
    metrics: Sequence[str] = DEFAULT_METRIC_SETS
    judge: str | None = None
    judge_base_url: str | None = None
    task: str | None = None
    judge_n: int = 200
    records: list[str] = field(default_factory=list)
    base: str | None = None
    reference: str | None = None
    trained: dict[str, str] = field(default_factory=dict)
    metric: str | None = None
    quiet: bool = False


# ---------------------------------------------------------------------------------------
# running the families (resumable) with durable wall time
# ---------------------------------------------------------------------------------------


def _read_state(out: Path) -> dict:
    p = out / STATE_FILE
    if not p.is_file():
        return {"families": {}}
    try:
        state = json.loads(p.read_text(encoding="utf-8"))
    except json.JSONDecodeError as e:
        raise PrepbenchError(f"{p}: not valid JSON ({e.msg}); delete it to start the wall-time record over") from None
    state.setdefault("families", {})
    return state


def _write_state(out: Path, state: dict) -> None:
    out.mkdir(parents=True, exist_ok=True)
    tmp = out / (STATE_FILE + ".tmp")
    tmp.write_text(json.dumps(state, indent=2) + "\n", encoding="utf-8")
    os.replace(tmp, out / STATE_FILE)


def _ledger_progress(run_dir: Path) -> tuple[int, Any]:
    """(sum of chunk attempts, ledger ``created_at``) of a run folder; (0, None) without a ledger."""
    from prepbench.tools.ledger import LEDGER_FILE, RunFolder

    if not (run_dir / LEDGER_FILE).is_file():
        return 0, None
    led = RunFolder(run_dir)
    try:
        if not led.initialized:
            return 0, None
        n = led.db.execute("SELECT COALESCE(SUM(attempts), 0) FROM chunks").fetchone()[0]
        return int(n), led.get_config().get("created_at")
    finally:
        led.close()


def run_families(opts: CompareOptions, progress: Callable[[str, FamilySpec], Any] | None = None) -> dict[str, dict]:
    """Run (or resume) every family into ``opts.out/runs/<family>`` and record wall time.

    Args:
        opts: the comparison options.
        progress: optional ``(family, spec) -> factory`` giving ``run_pipeline``'s progress
            factory for one family (the CLI's progress bar).

    Returns:
        family -> ``{"model", "run", "seconds", "sessions", "resumed", "stopped"}``; ``seconds``
        is the accumulated generation wall time (s) of the calls that processed chunks.

    Raises:
        PrepbenchError (and subclasses): as :func:`~prepbench.tools.run.run_pipeline`
        (bad skill or corpus, a run folder holding a different run, ...).
    """
    from prepbench.agents.runner import run_pipeline
    from prepbench.tools.run import RunOptions

    out = Path(opts.out)
    state = _read_state(out)
    results: dict[str, dict] = {}
    for spec in opts.agents:
        run_dir = out / "runs" / spec.family
        before, created_before = _ledger_progress(run_dir)
        ro = RunOptions(
            corpus=list(opts.corpus), skill=opts.skill, out=str(run_dir), agent=spec.family, model=spec.model,
            concurrency=opts.concurrency, batch_size=opts.batch_size, limit=opts.limit, exclude=list(opts.exclude),
            max_attempts=opts.max_attempts, max_repairs=opts.max_repairs, fresh=opts.fresh,
            model_options=opts.model_options if spec.model != "extractive" else None,
        )
        res = run_pipeline(ro, progress=progress(spec.family, spec) if progress else None)
        after, created = _ledger_progress(run_dir)
        fam = state["families"].get(spec.family) or {}
        if fam.get("created_at") != created or fam.get("model") != spec.model:
            fam = {"model": spec.model, "created_at": created, "seconds": 0.0, "sessions": []}
        processed = after - before if created_before == created else after  # chunk attempts made by this call
        if processed > 0:  # this call generated something: its time counts
            fam["seconds"] = round(fam["seconds"] + res["seconds"], 3)
            fam["sessions"].append(
                {"seconds": round(res["seconds"], 3), "chunk_attempts": processed, "resumed": res["resumed"],
                 "at": datetime.now(timezone.utc).isoformat(timespec="seconds")}
            )
        state["families"][spec.family] = fam
        _write_state(out, state)
        results[spec.family] = {
            "model": spec.model, "run": str(run_dir), "seconds": fam["seconds"], "sessions": list(fam["sessions"]),
            "resumed": res["resumed"], "stopped": res["stopped"],
        }
    return results


# ---------------------------------------------------------------------------------------
# collecting
# ---------------------------------------------------------------------------------------


def collect_run(run_dir: str | Path) -> dict[str, Any]:
    """Construction figures of one run, read from its ledger (no model, no network).

    Returns:
        ``{"config", "chunks", "kept_share", "samples": {"accepted", "rejected"}, "sample_types",
        "rejections", "skip_reasons", "documents", "calls": {"count", "input_tokens",
        "output_tokens", "cost_usd", "latency_s"}, "calls_by_node", "complete", "unmet"}``
        (tokens as counted by the model layer, cost in USD, latency in seconds).

    Raises:
        PrepbenchError: not a run folder.
    """
    from prepbench.tools.coverage import coverage_report
    from prepbench.tools.ledger import RunFolder
    from prepbench.tools.skills import load_skill

    ledger = RunFolder.open(run_dir)

    config = ledger.get_config()
    try:
        try:
            skill = load_skill(config.get("skill_path") or config.get("skill_name"))
        except PrepbenchError:
            skill = None
        rep = coverage_report(ledger, skill)
        by_node = [
            {"node": r[0], "count": r[1], "input_tokens": r[2], "output_tokens": r[3], "cost_usd": round(float(r[4]), 6)}
            for r in ledger.db.execute(
                "SELECT node, COUNT(*), COALESCE(SUM(input_tokens),0), COALESCE(SUM(output_tokens),0), "
                "COALESCE(SUM(cost_usd),0) FROM calls GROUP BY node ORDER BY node"
            ).fetchall()
        ]
    finally:
        ledger.close()
    return {
        "config": {k: v for k, v in config.items() if k not in ("corpus_hashes",)},
        "chunks": rep["chunks"],
        "kept_share": rep["kept_share"],
        "samples": rep["samples"],
        "sample_types": {k: v["accepted"] for k, v in rep["sample_types"].items()},
        "rejections": rep["rejections"],
        "skip_reasons": rep["skip_reasons"],
        "documents": [
            {"document": d["document"], "chunks": d["chunks"] or 0, "kept": d["kept"] or 0, "accepted": d["accepted"] or 0}
            for d in rep["documents"]
            if d["doc_status"] == "ingested"
        ],
        "calls": rep["calls"],
        "calls_by_node": by_node,
        "complete": rep["complete"],
        "unmet": rep["unmet"],
    }


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


def _dig(d: dict | None, dotted: str):
    for part in dotted.split("."):
        if not isinstance(d, dict):
            return None
        d = d.get(part)
    return d


class _Scorer:
    """Encoder, cache, proxy and judge shared across families (built once, lazily)."""

    def __init__(self, opts: CompareOptions):
        self.opts = opts
        self._enc = None
        self._store = None
        self.proxy_texts: list[str] | None = None
        self.chat = None
        if opts.proxy:
            from prepbench.evaluation.readers import read_samples

            self.proxy_texts = [s.text for s in read_samples(opts.proxy, opts.proxy_format, opts.proxy_fields)]

    def encoder(self):
        if self._enc is None:
            from prepbench.evaluation.embed import EmbeddingCache, make_encoder

            self._enc = make_encoder(self.opts.encoder)
            self._store = EmbeddingCache(self.opts.cache)
        return self._enc, self._store

    def score(self, run_dir: Path, task: str, cache: dict | None = None) -> dict[str, Any]:
        """DAS, weight-free metrics and DVS of one run's accepted samples (None where not computed).

        ``cache`` (``{"das"|"metrics"|"dvs": {"key", "value"}}``, updated in place) holds earlier
        results: a score whose key (hash of the samples scored + the settings that change it) is
        unchanged is reused, so a re-run compare neither re-embeds nor pays the judge again.
        """
        import hashlib

        from prepbench.evaluation.readers import read_samples, subsample

        o = self.opts
        cache = {} if cache is None else cache
        out: dict[str, Any] = {"das": None, "metrics": None, "dvs": None, "notes": []}
        try:
            samples = read_samples(run_dir, "run")
        except PrepbenchError as e:
            out["notes"].append(f"no scores: {e}")
            return out
        texts = [s.text for s in samples]
        digest = hashlib.sha256("\x00".join(texts).encode("utf-8")).hexdigest()

        def cached(kind: str, settings: list) -> tuple[str, Any]:
            key = hashlib.sha256(json.dumps([digest, *settings], default=str).encode("utf-8")).hexdigest()
            hit = cache.get(kind)
            return key, (hit["value"] if hit and hit.get("key") == key else None)

        if self.proxy_texts is not None:
            proxy_digest = hashlib.sha256("\x00".join(self.proxy_texts).encode("utf-8")).hexdigest()
            key, value = cached("das", [proxy_digest, o.encoder, o.sigma, o.max_samples, o.seed])
            if value is None:
                from prepbench.evaluation.das import das_score

                enc, store = self.encoder()
                try:
                    r = das_score(texts, self.proxy_texts, enc, store, sigma=o.sigma, max_samples=o.max_samples, seed=o.seed,
                                  progress=not o.quiet)
                    value = {k: r[k] for k in ("das", "mmd", "mmd2", "sigma", "estimator", "n_candidate", "n_proxy", "encoder")}
                    cache["das"] = {"key": key, "value": value}
                except PrepbenchError as e:
                    out["notes"].append(f"DAS: {e}")
            out["das"] = value
        if o.metrics:
            sets = list(o.metrics)
            if "embedding" in sets and len(samples) < 2:
                sets.remove("embedding")
                out["notes"].append("embedding metrics need at least 2 samples")
            key, value = cached("metrics", [sets, o.encoder if "embedding" in sets else None, o.max_samples, o.seed])
            if value is None and sets:
                from prepbench.evaluation.embed import embed_texts
                from prepbench.evaluation.metrics import compute_metrics

                embed = None
                if "embedding" in sets:
                    enc, store = self.encoder()
                    embed = lambda t: embed_texts(t, enc, store, progress=not o.quiet, description="embedding samples")  # noqa: E731
                try:
                    value = compute_metrics(subsample(samples, o.max_samples, o.seed), sets, embed=embed)["metrics"]
                    cache["metrics"] = {"key": key, "value": value}
                except PrepbenchError as e:
                    out["notes"].append(f"metrics: {e}")
            out["metrics"] = value
        if o.judge:
            key, value = cached("dvs", [o.judge, task, o.judge_n, o.seed])
            if value is None:
                from prepbench.evaluation.verifier import verify

                try:
                    v = verify(samples, self.judge_model(), task, n=o.judge_n, seed=o.seed,
                               max_concurrency=max(1, min(o.concurrency, 8)), progress=not o.quiet)
                    value = {k: v[k] for k in ("dvs", "n", "n_scored", "n_unparsed", "n_errors", "counts")}
                    if v["dvs"] is None:
                        out["notes"].append(f"DVS undefined: no judge answer named a label ({v['n_unparsed']} unparsed)")
                    else:  # an undefined DVS is tried again next time
                        cache["dvs"] = {"key": key, "value": value}
                except PrepbenchError as e:
                    out["notes"].append(f"DVS: {e}")
            out["dvs"] = value
        return out

    def judge_model(self):
        if self.chat is None:
            from prepbench.agents.models.specs import make_chat_model

            self.chat = make_chat_model(self.opts.judge, base_url=self.opts.judge_base_url, temperature=0.0, max_tokens=256)
        return self.chat


def _load_records(opts: CompareOptions) -> list | None:
    """All score records of ``opts.records``, checked against ``--base``/``--reference``.

    Raises:
        PrepbenchError: unreadable records, a base/reference name with no record, only one of
            base/reference given, or no record for any family's label.
    """
    if not opts.records:
        if opts.base or opts.reference:
            raise PrepbenchError("--base/--reference need --records FILE (score records from `prepbench evaluate`)")
        return None
    from prepbench.evaluation.records import read_records

    recs = [r for p in opts.records for r in read_records(p)]
    models = sorted({r.model for r in recs})
    if bool(opts.base) != bool(opts.reference):
        raise PrepbenchError("PGR needs both --base NAME and --reference NAME (model names in the score records)")
    for flag, name in (("--base", opts.base), ("--reference", opts.reference)):
        if name and name not in models:
            raise PrepbenchError(f"{flag} {name!r}: no score record has that model (models in the records: {', '.join(models)})")
    labels = {s.family: opts.trained.get(s.family, s.family) for s in opts.agents}
    if not any(lab in models for lab in labels.values()):
        raise PrepbenchError(
            f"--records: no score record for any family (looked for models {', '.join(sorted(set(labels.values())))}; "
            f"found {', '.join(models)}); label records with the family name or map them with --trained family=MODEL"
        )
    return recs


def downstream(records: list, opts: CompareOptions) -> dict[str, Any]:
    """Per-benchmark scores of base, reference and each family, and PGR per family.

    Scores are the records' fractions in [0, 1]; PGR (AgoraBench, Kim et al., 2024) in percent,
    per benchmark and averaged over the benchmarks with a defined gap (:func:`.pgr.compute_pgr`).

    Returns:
        ``{"metric", "models": {role: label}, "benchmarks": {bench: {"metric", role: score}},
        "pgr": {family: {"average", "n_used", "rows", "notes"}} | None}``; roles are ``base``,
        ``reference`` and the family names.
    """
    from prepbench.evaluation.pgr import compute_pgr, select_scores

    labels = {s.family: opts.trained.get(s.family, s.family) for s in opts.agents}
    roles: dict[str, str] = {}
    if opts.base:
        roles["base"] = opts.base
        roles["reference"] = opts.reference or ""
    roles.update(labels)
    benches: dict[str, dict] = {}
    for role, label in roles.items():
        mine = [r for r in records if r.model == label]
        if not mine:
            continue
        for bench, rec in select_scores(mine, opts.metric, role).items():
            benches.setdefault(bench, {"metric": rec.metric})[role] = rec.score
    pgr = None
    if opts.base and opts.reference:
        pgr = {}
        b = [r for r in records if r.model == opts.base]
        ref = [r for r in records if r.model == opts.reference]
        for fam, label in labels.items():
            t = [r for r in records if r.model == label]
            if not t:
                pgr[fam] = {"average": None, "n_used": 0, "rows": [], "notes": [f"no score records for model {label!r}"]}
                continue
            try:
                res = compute_pgr(b, ref, t, metric=opts.metric).to_dict()
                pgr[fam] = {k: res[k] for k in ("average", "n_used", "rows", "notes")}
            except PrepbenchError as e:
                pgr[fam] = {"average": None, "n_used": 0, "rows": [], "notes": [str(e)]}
    return {"metric": opts.metric, "models": roles, "benchmarks": dict(sorted(benches.items())), "pgr": pgr}


def collect(opts: CompareOptions, runs: dict[str, dict]) -> dict[str, Any]:
    """Collect the comparison report from the families' run folders.

    Args:
        opts: the comparison options.
        runs: :func:`run_families`' result (model, run folder, wall time per family).

    Returns:
        The report dict written as ``report.json``: ``{"created", "out", "skill", "corpus",
        "limit", "proxy", "encoder", "judge", "task", "families": [{"family", "model", "run",
        "wall_s", "sessions", "stopped", ...collect_run(...), "scores": {"das", "metrics",
        "dvs", "notes"}, "derived": {...}}], "downstream": {...} | None, "notes": [...]}``.
    """
    from prepbench.tools.skills import load_skill

    records = _load_records(opts)
    skill = load_skill(opts.skill)
    task = opts.task or f"{skill.domain} question-answer SFT data: {skill.description}".strip()
    scorer = _Scorer(opts)
    state = _read_state(Path(opts.out))
    score_cache = state.setdefault("scores", {})
    fams = []
    for spec in opts.agents:
        r = runs[spec.family]
        c = collect_run(r["run"])
        sc = scorer.score(Path(r["run"]), task, score_cache.setdefault(spec.family, {}))
        _write_state(Path(opts.out), state)
        acc = c["samples"]["accepted"]
        cand = acc + c["samples"]["rejected"]
        wall = r["seconds"]
        fams.append({
            "family": spec.family, "model": spec.model, "run": r["run"], "wall_s": wall, "sessions": r["sessions"],
            "stopped": r["stopped"], **c, "scores": sc,
            "derived": {
                "acceptance_rate": acc / cand if cand else None,
                "cost_per_accepted_usd": c["calls"]["cost_usd"] / acc if acc else None,
                "tokens_per_accepted": (c["calls"]["input_tokens"] + c["calls"]["output_tokens"]) / acc if acc else None,
                "accepted_per_min": acc / wall * 60.0 if wall else None,
            },
        })
    notes = []
    for f in fams:
        notes += [f"{f['family']}: {n}" for n in f["scores"]["notes"]]
        if f["stopped"]:
            notes.append(f"{f['family']}: stopped early with chunks pending; run compare again to resume")
        if f["unmet"]:
            notes.append(f"{f['family']}: coverage rule not met: {'; '.join(f['unmet'])}")
    encoder = next((f["scores"]["das"]["encoder"] for f in fams if f["scores"]["das"]), None)
    if encoder is None and scorer._enc is not None:
        encoder = scorer._enc.encoder_id
    return {
        "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "out": str(opts.out),
        "skill": {"name": skill.name, "version": skill.version, "domain": skill.domain},
        "corpus": [str(c) for c in opts.corpus],
        "limit": opts.limit,
        "proxy": opts.proxy,
        "encoder": encoder,
        "judge": opts.judge,
        "task": task if opts.judge else None,
        "families": fams,
        "downstream": downstream(records, opts) if records else None,
        "notes": notes,
    }


# ---------------------------------------------------------------------------------------
# tables (shared by Markdown and HTML)
# ---------------------------------------------------------------------------------------


def _fmt(v: Any, kind: str = "g") -> str:
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
    cells = [[r] + [_fmt(c[1][i], c[2]) for c in cols] for i, r in enumerate(rows)]
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
    fams = report["families"]
    names = [f"{f['family']} ({f['model']})" for f in fams]
    g = lambda fn: [fn(f) for f in fams]  # noqa: E731
    tables = [
        _column_table(
            "construction", "Table A: construction and cost",
            "Chunks and samples from each run's ledger; tokens and cost summed over its model calls; wall time of the runs' "
            "generation (accumulated over resumed sessions).",
            "family (model)", names,
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
    ]
    cols = [
        ("DAS", g(lambda f: _dig(f["scores"]["das"], "das")), "g", 1),
        ("MMD²", g(lambda f: _dig(f["scores"]["das"], "mmd2")), "g", -1),
        ("DVS", g(lambda f: _dig(f["scores"]["dvs"], "dvs")), "g", 1),
    ] + [
        (label, g(lambda f, s=s, k=k: _dig((f["scores"]["metrics"] or {}).get(s), k)), "g", better)
        for s, k, label, better in METRIC_COLUMNS
    ]
    cap = "Scores of each run's accepted samples. "
    if report.get("proxy"):
        sig = next((f["scores"]["das"]["sigma"] for f in fams if f["scores"]["das"]), None)
        cap += (f"DAS = −MMD (RBF kernel, σ = {_fmt(sig)}, biased estimator) against the proxy {Path(report['proxy']).name}, "
                f"encoder {report['encoder']}. ")
    if report.get("judge"):
        cap += f"DVS: judge {report['judge']}, DataChef rubric A–E. "
    cap += "Weight-free metrics: lexical (MTLD, HD-D), n-gram, gzip, length, embedding diversity. ↑/↓: better direction; bold: best."
    tables.append(_column_table("metrics", "Table B: data metrics", cap, "family (model)", names, cols))
    # Table C: where the candidates went
    fate_rows: list[tuple[str, list]] = []
    for kind, key in (("type", "sample_types"), ("rejected", "rejections"), ("skipped", "skip_reasons")):
        keys = sorted({k for f in fams for k in f[key]})
        for k in keys:
            fate_rows.append((f"{kind}: {k}", [f[key].get(k, 0) for f in fams]))
    tables.append(Table(
        "fate", "Table C: where the candidates went",
        "Accepted samples per sample type, rejected candidates per validation rule, skipped chunks per skip reason.",
        ["", *[f["family"] for f in fams]], [[lab, *(_fmt(v, "int") for v in vals)] for lab, vals in fate_rows],
        [], [False] + [True] * len(fams),
    ))
    docs = sorted({d["document"] for f in fams for d in f["documents"] if d["chunks"]})
    drows = []
    for d in docs:
        row = [d]
        for f in fams:
            m = next((x for x in f["documents"] if x["document"] == d), None)
            row.append(f"{m['kept']}/{m['chunks']} kept, {m['accepted']} acc." if m else "–")
        drows.append(row)
    tables.append(Table(
        "documents", "Coverage per document", "Kept chunks / chunks in the run and accepted samples, per document"
        + (" (documents with no chunk within --limit left out)." if report.get("limit") else "."),
        ["document", *[f["family"] for f in fams]], drows, [],
        [False] + [True] * len(fams),
    ))
    ds = report.get("downstream")
    if ds:
        roles = [r for r in ("base", "reference") if r in ds["models"]] + [f["family"] for f in fams]
        rows = []
        for bench, v in ds["benchmarks"].items():
            row = [bench, v["metric"]]
            for role in roles:
                s = v.get(role)
                cell = _fmt(s)
                if role in FAMILIES and ds["pgr"]:
                    pr = next((x for x in ds["pgr"].get(role, {}).get("rows", []) if x["benchmark"] == bench), None)
                    if pr and pr["pgr"] is not None:
                        cell += f" (PGR {pr['pgr']:+.1f})"
                row.append(cell)
            rows.append(row)
        if ds["pgr"]:
            rows.append(["average PGR (%)", ""] + ["" for r in roles if r not in FAMILIES]
                        + [_fmt(ds["pgr"].get(f["family"], {}).get("average"), "pgr") for f in fams])
        headers = ["benchmark", "metric"] + [f"{r} ({ds['models'][r]})" if ds["models"].get(r) not in (None, r) else r for r in roles]
        tables.append(Table(
            "downstream", "Table D: downstream scores and PGR",
            "Benchmark scores (fractions) from the score records; PGR = (T − B)/(R − B) × 100 per benchmark "
            "(AgoraBench, Kim et al., 2024), averaged over benchmarks with a defined gap.",
            headers, rows, [], [False, False] + [True] * len(roles),
        ))
    return tables


# ---------------------------------------------------------------------------------------
# plots (matplotlib, Agg)
# ---------------------------------------------------------------------------------------

_COLORS = {"skill": "#1b9e77", "direct": "#d95f02", "react": "#7570b3", "base": "#999999", "reference": "#555555"}


def make_plots(report: dict[str, Any]) -> dict[str, bytes]:
    """PNG plots: ``cost_vs_accepted``, ``coverage_per_document``, ``benchmarks`` (when records were given).

    Returns:
        file stem -> PNG bytes (150 dpi).
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np

    fams = report["families"]
    out: dict[str, bytes] = {}

    def save(fig, name):
        buf = io.BytesIO()
        fig.savefig(buf, format="png", dpi=150, bbox_inches="tight")
        plt.close(fig)
        out[name] = buf.getvalue()

    # cost vs accepted samples: one point per family; details in the legend, names next to the points.
    # When no run has a cost (no model with a price), tokens stand in for cost on the x axis.
    fig, ax = plt.subplots(figsize=(7.2, 4.2))
    costs = [f["calls"]["cost_usd"] for f in fams]
    tokens = [f["calls"]["input_tokens"] + f["calls"]["output_tokens"] for f in fams]
    by_cost = any(c > 0 for c in costs) or not any(tokens)
    xs = costs if by_cost else tokens
    ys = [f["samples"]["accepted"] for f in fams]
    seen: dict[tuple, int] = {}
    for f, x, y, c, tok in zip(fams, xs, ys, costs, tokens):
        ax.scatter([x], [y], s=90, color=_COLORS.get(f["family"]), zorder=3, edgecolor="black", linewidth=0.6,
                   label=f"{f['family']} ({f['model']}): ${c:.4f}, {tok:,} tokens, {f['wall_s']:.1f} s")
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
    save(fig, "cost_vs_accepted")

    # coverage per document: kept share and accepted samples, grouped by family
    docs = sorted({d["document"] for f in fams for d in f["documents"] if d["chunks"]})
    if docs:
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
        save(fig, "coverage_per_document")

    ds = report.get("downstream")
    if ds and ds["benchmarks"]:
        benches = list(ds["benchmarks"])
        roles = [r for r in ("base", "reference") if r in ds["models"]] + [f["family"] for f in fams]
        fig, ax = plt.subplots(figsize=(max(6.4, 1.6 * len(benches) + 2), 4.2))
        w = 0.8 / len(roles)
        x = np.arange(len(benches))
        for i, role in enumerate(roles):
            vals = [ds["benchmarks"][b].get(role) for b in benches]
            ax.bar(x - 0.4 + w * (i + 0.5), [v if v is not None else 0 for v in vals], width=w,
                   color=_COLORS.get(role), label=role, hatch=None if role in FAMILIES else "//", edgecolor="white")
        ax.set_xticks(x)
        ax.set_xticklabels(benches, fontsize=9)
        ax.set_ylabel("score")
        ax.set_ylim(0, 1.0 if all((v or 0) <= 1 for b in benches for k, v in ds["benchmarks"][b].items() if k != "metric") else None)
        ax.set_title("Per-benchmark scores")
        ax.legend(fontsize=8, ncol=min(len(roles), 5))
        ax.grid(axis="y", alpha=0.3)
        save(fig, "benchmarks")
    return out


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
    lines = [f"# prepbench compare: {', '.join(f['family'] for f in report['families'])}", ""]
    lines += _summary_lines(report)
    lines.append("")
    for t in tables:
        lines += [f"## {t.title}", "", t.caption, ""]
        if not t.cells:
            lines += ["(none)", ""]
            continue
        lines.append("| " + " | ".join(_md_cell(h) for h in t.headers) + " |")
        lines.append("|" + "|".join("---:" if (t.numeric[j] if j < len(t.numeric) else False) else "---" for j in range(len(t.headers))) + "|")
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


def _summary_lines(report: dict[str, Any]) -> list[str]:
    sk = report["skill"]
    out = [
        f"- skill: {sk['name']} {sk['version']} ({sk['domain']})",
        f"- corpus: {', '.join(report['corpus'])}" + (f" (first {report['limit']} chunks)" if report["limit"] else ""),
        "- runs: " + ", ".join(f"{f['family']} → {f['run']}" for f in report["families"]),
    ]
    if report.get("proxy"):
        out.append(f"- DAS proxy: {report['proxy']} (encoder {report['encoder']})")
    if report.get("judge"):
        out.append(f"- verifier judge: {report['judge']}; task: {report['task']}")
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
        return (f"<figure><img alt='{title}' width='{width}' src='data:image/png;base64,{b64}'>"
                f"<figcaption>{title}</figcaption></figure>")

    parts = [
        "<!DOCTYPE html><html lang='en'><head><meta charset='utf-8'>",
        f"<title>prepbench compare: {html.escape(', '.join(f['family'] for f in report['families']))}</title>",
        f"<style>{_CSS}</style></head><body>",
        f"<h1>prepbench compare: {html.escape(', '.join(f['family'] for f in report['families']))}</h1>",
        "<ul class='meta'>" + "".join(f"<li>{html.escape(x[2:])}</li>" for x in _summary_lines(report)) + "</ul>",
    ]
    for t in tables:
        parts.append(f"<h2>{html.escape(t.title)}</h2><p class='cap'>{html.escape(t.caption)}</p>{_html_table(t)}")
        parts.append(fig({"construction": "cost_vs_accepted", "documents": "coverage_per_document", "downstream": "benchmarks"}.get(t.key, "")))
    if report["notes"]:
        parts.append("<h2>Notes</h2><ul class='notes'>" + "".join(f"<li>{html.escape(n)}</li>" for n in report["notes"]) + "</ul>")
    parts.append("</body></html>")
    return "\n".join(p for p in parts if p)


def write_report(report: dict[str, Any], out: str | Path) -> dict[str, Path]:
    """Write ``report.json``, ``report.md`` (+ its PNG plots) and ``report.html`` into ``out``.

    Returns:
        ``{"json", "markdown", "html", "plots": [paths]}``.
    """
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    tables = build_tables(report)
    plots = make_plots(report)
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


def compare(opts: CompareOptions, progress: Callable[[str, FamilySpec], Any] | None = None,
            on_family: Callable[[int, FamilySpec], None] | None = None) -> dict[str, Any]:
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
    _load_records(opts)
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
    runs = run_families(opts, wrapped)
    report = collect(opts, runs)
    paths = write_report(report, opts.out)
    return {"report": report, "paths": paths, "runs": runs, "seconds": time.perf_counter() - t0}


# ---------------------------------------------------------------------------------------
# CLI: `prepbench compare` (registered in tools/cli.py; heavy imports stay inside)
# ---------------------------------------------------------------------------------------

import typer  # noqa: E402  (light; the CLI already imports it)

_AGENTS_HELP = (
    "Families to compare, comma-separated, each optionally with its own model: FAMILY[=MODEL]. "
    "E.g. skill=extractive,direct,react (skill on the offline generator, direct and react on --model). "
    "A family without '=' uses --model; skill alone falls back to extractive. direct/react need a chat model."
)


def compare_cmd(
    agents: str = typer.Option("skill,direct,react", "--agents", "-a", help=_AGENTS_HELP),
    corpus: list[str] = typer.Option(..., "--corpus", "-c", help="Corpus folder or files (repeatable); the same for every family."),
    skill: str = typer.Option("finance", "--skill", "-s", help="Skill folder or shipped skill name."),
    out_dir: str = typer.Option(..., "--out", "-o", help="Comparison folder: runs/<family>, compare.json, report.md/html/json, plots."),
    model: Optional[str] = typer.Option(None, "--model", "-m", help="Model spec for families without FAMILY=MODEL (e.g. openai:<m>)."),
    base_url: Optional[str] = typer.Option(None, "--base-url", help="OpenAI/Anthropic-compatible server URL for the chat-model families."),
    prices: Optional[str] = typer.Option(None, "--prices", help="YAML price table merged over the shipped one (USD per 1M tokens)."),
    limit: Optional[int] = typer.Option(None, "--limit", help="Only the first N chunks of the corpus (every family)."),
    exclude: list[str] = typer.Option([], "--exclude", help="Extra exclude glob (repeatable)."),
    concurrency: int = typer.Option(8, "--concurrency", help="In-flight model requests."),
    batch_size: int = typer.Option(16, "--batch-size", help="Chunks per pass of the agent graph."),
    max_attempts: int = typer.Option(3, "--max-attempts", help="Attempts per chunk before it stays failed."),
    max_repairs: int = typer.Option(2, "--max-repairs", help="Repair rounds for rejected samples (chat models)."),
    timeout: float = typer.Option(120.0, "--timeout", help="Timeout of one model request (seconds)."),
    max_retries: int = typer.Option(5, "--max-retries", help="Retries of a failed model request."),
    max_tokens: int = typer.Option(2048, "--max-tokens", help="Output token limit of a model request."),
    structured: str = typer.Option("auto", "--structured", help="Structured output: auto, json_schema, tools or prompt."),
    direct_mode: str = typer.Option("chunk", "--direct-mode", help="Family direct: one prompt per chunk, or per book."),
    proxy: Optional[str] = typer.Option(None, "--proxy", help="Domain proxy dataset for DAS (JSONL/JSON, run or datasets folder); no DAS without it."),
    proxy_format: Optional[str] = typer.Option(None, "--proxy-format", help="Format of the proxy (default: detect)."),
    proxy_fields: Optional[str] = typer.Option(None, "--proxy-fields", help="Field mapping of the proxy, e.g. instruction=question,response=answer."),
    encoder: str = typer.Option("minilm", "--encoder", help="Encoder for DAS and embedding metrics (minilm is offline)."),
    cache: Optional[str] = typer.Option(None, "--cache", help="Embedding cache SQLite file (default ~/.cache/prepbench/embeddings.sqlite)."),
    sigma: str = typer.Option("1.0", "--sigma", help="DAS RBF bandwidth, or 'median'."),
    max_samples: int = typer.Option(5000, "--max-samples", help="At most this many samples per side for DAS and metrics."),
    seed: int = typer.Option(42, "--seed", help="Subsampling seed."),
    metrics: str = typer.Option(",".join(DEFAULT_METRIC_SETS), "--metrics", help="Weight-free metric sets (or 'none')."),
    judge: Optional[str] = typer.Option(None, "--judge", help="Judge chat model for the verifier DVS, e.g. openai:<m>; no DVS without it."),
    judge_base_url: Optional[str] = typer.Option(None, "--judge-base-url", help="Judge server URL (default: --base-url)."),
    task: Optional[str] = typer.Option(None, "--task", help="Target task for the judge (default: from the skill's domain and description)."),
    judge_n: int = typer.Option(200, "--judge-n", help="Samples per family the judge labels (seeded subset)."),
    records: list[str] = typer.Option([], "--records", help="Score records .jsonl/.csv from `prepbench evaluate` (repeatable)."),
    base: Optional[str] = typer.Option(None, "--base", help="Model name of the base model in the records (for PGR)."),
    reference: Optional[str] = typer.Option(None, "--reference", help="Model name of the reference (Dolly-only) model in the records."),
    trained: Optional[str] = typer.Option(None, "--trained", help="Record model names of the families, e.g. skill=mix-skill (default: the family name)."),
    metric: Optional[str] = typer.Option(None, "--metric", help="Benchmark metric (default: each benchmark's primary one)."),
    fresh: bool = typer.Option(False, "--fresh", help="Start every family's run over (and its wall-time record)."),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="No progress bars."),
) -> None:
    """Run agent families on the same corpus and compare them: report.md + self-contained report.html.

    Each family runs into OUT/runs/<family> and resumes like `prepbench run` (a finished run does nothing; its recorded wall time is kept in OUT/compare.json).
    """
    from rich.console import Console

    err = Console(stderr=True)
    specs = parse_agents(agents, model)
    if concurrency < 1 or batch_size < 1:
        raise PrepbenchError("--concurrency and --batch-size must be at least 1")
    if limit is not None and limit < 1:
        raise PrepbenchError("--limit must be at least 1")
    if judge_n < 1:
        raise PrepbenchError("--judge-n must be at least 1")
    try:
        sig: float | str = "median" if sigma == "median" else float(sigma)
    except ValueError:
        raise PrepbenchError(f"--sigma {sigma!r}: use a positive number or 'median'") from None
    model_options: dict[str, Any] = {
        "concurrency": concurrency, "timeout": timeout, "max_retries": max_retries, "max_tokens": max_tokens,
        "prices": prices, "structured": structured, "direct_mode": direct_mode,
    }
    if base_url:
        model_options["base_url"] = base_url
    opts = CompareOptions(
        corpus=corpus, skill=skill, out=out_dir, agents=specs, limit=limit, exclude=exclude, concurrency=concurrency,
        batch_size=batch_size, max_attempts=max_attempts, max_repairs=max_repairs, fresh=fresh, model_options=model_options,
        proxy=proxy, proxy_format=proxy_format, proxy_fields=proxy_fields, encoder=encoder, cache=cache, sigma=sig,
        max_samples=max_samples, seed=seed,
        metrics=[] if metrics.strip().lower() in ("", "none") else [m.strip() for m in metrics.split(",") if m.strip()],
        judge=judge, judge_base_url=judge_base_url or base_url, task=task, judge_n=judge_n,
        records=[r.strip() for x in records for r in x.split(",") if r.strip()], base=base, reference=reference,
        trained=parse_mapping(trained, "--trained"), metric=metric, quiet=quiet,
    )
    from prepbench.tools.cli.progress import progress_factory

    def on_family(i: int, spec: FamilySpec) -> None:
        if not quiet:
            err.print(f"[bold][{i + 1}/{len(specs)}] {spec.family}[/] ({spec.model}) → {Path(out_dir) / 'runs' / spec.family}")

    res = compare(opts, progress=lambda fam, spec: progress_factory(quiet), on_family=on_family)
    rep = res["report"]
    from rich.table import Table as RichTable

    t = RichTable(title=f"compare ({res['seconds']:.1f}s)")
    cols = ["family", "model", "accepted", "kept share", "tokens", "cost", "wall s"]
    cols += ["DAS"] if proxy else []
    cols += ["DVS"] if judge else []
    for col in cols:
        t.add_column(col, justify="left" if col in ("family", "model") else "right")
    for f in rep["families"]:
        cells = [
            f["family"], f["model"], str(f["samples"]["accepted"]), f"{f['kept_share']:.0%}",
            f"{f['calls']['input_tokens'] + f['calls']['output_tokens']:,}", f"${f['calls']['cost_usd']:.4f}", f"{f['wall_s']:.1f}",
        ]
        cells += [_fmt(_dig(f["scores"]["das"], "das"))] if proxy else []
        cells += [_fmt(_dig(f["scores"]["dvs"], "dvs"))] if judge else []
        t.add_row(*cells)
    Console().print(t)
    for n in rep["notes"]:
        err.print(f"[yellow]note:[/] {n}", highlight=False)
    p = res["paths"]
    err.print(f"wrote {p['markdown']}, {p['html']} and {p['json']}")
    if any(f["stopped"] for f in rep["families"]):
        raise typer.Exit(3)
