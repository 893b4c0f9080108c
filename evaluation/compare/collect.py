"""Collecting a comparison: each run's construction figures (through
:class:`~prepbench.tools.ledger.RunFolder`), data scores with their cache, downstream scores.

Scores are cached in ``OUT/compare.json`` (``"scores"``), keyed by a hash of the samples scored
and the settings that change the score: re-running a finished comparison neither re-embeds nor
calls the judge again.
"""

from __future__ import annotations

import hashlib
import json
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from prepbench.tools.errors import PrepbenchError

from .run import CompareOptions, read_state, write_state


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

    ledger = RunFolder.open(run_dir, readonly=True)

    config = ledger.get_config()
    try:
        try:
            skill = load_skill(config.get("skill_path") or config.get("skill_name"))
        except PrepbenchError:
            skill = None
        rep = coverage_report(ledger, skill)
        by_node = ledger.calls_by_node()
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


def _digest(texts: list[str]) -> str:
    return hashlib.sha256("\x00".join(texts).encode("utf-8")).hexdigest()


class _Cached:
    """One family's score cache (``{"das"|"metrics"|"dvs": {"key", "value"}}`` in ``compare.json``):
    a value is reused while its key (hash of the samples scored + the settings) is unchanged."""

    def __init__(self, cache: dict, digest: str):
        self.cache = cache
        self.digest = digest

    def get(self, kind: str, settings: list) -> tuple[str, Any]:
        key = hashlib.sha256(json.dumps([self.digest, *settings], default=str).encode("utf-8")).hexdigest()
        hit = self.cache.get(kind)
        return key, (hit["value"] if hit and hit.get("key") == key else None)

    def put(self, kind: str, key: str, value: Any) -> None:
        self.cache[kind] = {"key": key, "value": value}


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
            from prepbench.tools.embed import EmbeddingCache, make_encoder

            self._enc = make_encoder(self.opts.encoder)
            self._store = EmbeddingCache(self.opts.cache)
        return self._enc, self._store

    def score(self, run_dir: Path, task: str, cache: dict | None = None) -> dict[str, Any]:
        """DAS, weight-free metrics and DVS of one run's accepted samples (None where not computed).

        ``cache`` (``{"das"|"metrics"|"dvs": {"key", "value"}}``, updated in place) holds earlier
        results: a score whose key (hash of the samples scored + the settings that change it) is
        unchanged is reused, so a re-run compare neither re-embeds nor pays the judge again.
        """
        from prepbench.evaluation.readers import read_samples

        cache = {} if cache is None else cache
        out: dict[str, Any] = {"das": None, "metrics": None, "dvs": None, "notes": []}
        try:
            samples = read_samples(run_dir, "run")
        except PrepbenchError as e:
            out["notes"].append(f"no scores: {e}")
            return out
        texts = [s.text for s in samples]
        cached = _Cached(cache, _digest(texts))
        if self.proxy_texts is not None:
            out["das"] = self._das(texts, cached, out["notes"])
        if self.opts.metrics:
            out["metrics"] = self._metrics(samples, cached, out["notes"])
        if self.opts.judge:
            out["dvs"] = self._dvs(samples, task, cached, out["notes"])
        return out

    def _das(self, texts: list[str], cached: "_Cached", notes: list[str]) -> dict | None:
        o = self.opts
        key, value = cached.get("das", [_digest(self.proxy_texts or []), o.encoder, o.sigma, o.max_samples, o.seed])
        if value is not None:
            return value
        from prepbench.evaluation.das import das_score

        enc, store = self.encoder()
        try:
            r = das_score(
                texts, self.proxy_texts, enc, store, sigma=o.sigma, max_samples=o.max_samples, seed=o.seed, progress=not o.quiet
            )
        except PrepbenchError as e:
            notes.append(f"DAS: {e}")
            return None
        value = {k: r[k] for k in ("das", "mmd", "mmd2", "sigma", "estimator", "n_candidate", "n_proxy", "encoder")}
        cached.put("das", key, value)
        return value

    def _metrics(self, samples: list, cached: "_Cached", notes: list[str]) -> dict | None:
        from prepbench.evaluation.readers import subsample

        o = self.opts
        sets = list(o.metrics)
        for name in ("embedding", "diversity"):
            if name in sets and len(samples) < 2:
                sets.remove(name)
                notes.append(f"{name} metrics need at least 2 samples")
        uses_encoder = "embedding" in sets or "diversity" in sets
        key, value = cached.get("metrics", [sets, o.encoder if uses_encoder else None, o.max_samples, o.seed])
        if value is not None or not sets:
            return value
        from prepbench.evaluation.metrics import compute_metrics
        from prepbench.tools.embed import embed_texts

        embed = None
        if "embedding" in sets or "diversity" in sets:
            enc, store = self.encoder()
            embed = lambda t: embed_texts(t, enc, store, progress=not o.quiet, description="embedding samples")  # noqa: E731
        try:
            value = compute_metrics(subsample(samples, o.max_samples, o.seed), sets, embed=embed)["metrics"]
        except PrepbenchError as e:
            notes.append(f"metrics: {e}")
            return None
        cached.put("metrics", key, value)
        return value

    def _dvs(self, samples: list, task: str, cached: "_Cached", notes: list[str]) -> dict | None:
        o = self.opts
        key, value = cached.get("dvs", [o.judge, task, o.judge_n, o.seed])
        if value is not None:
            return value
        from prepbench.evaluation.verifier import verify

        try:
            v = verify(
                samples,
                self.judge_model(),
                task,
                n=o.judge_n,
                seed=o.seed,
                max_concurrency=max(1, min(o.concurrency, 8)),
                progress=not o.quiet,
            )
        except PrepbenchError as e:
            notes.append(f"DVS: {e}")
            return None
        value = {k: v[k] for k in ("dvs", "n", "n_scored", "n_unparsed", "n_errors", "counts")}
        if v["dvs"] is None:
            notes.append(f"DVS undefined: no judge answer named a label ({v['n_unparsed']} unparsed)")
        else:  # an undefined DVS is tried again next time
            cached.put("dvs", key, value)
        return value

    def judge_model(self):
        if self.chat is None:
            from prepbench.agents.models.specs import make_chat_model

            self.chat = make_chat_model(self.opts.judge, base_url=self.opts.judge_base_url, temperature=0.0, max_tokens=256)
        return self.chat


def load_records(opts: CompareOptions) -> list | None:
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

    records = load_records(opts)
    skill = load_skill(opts.skill)
    task = opts.task or f"{skill.domain} question-answer SFT data: {skill.description}".strip()
    scorer = _Scorer(opts)
    state = read_state(Path(opts.out))
    score_cache = state.setdefault("scores", {})
    fams = []
    for spec in opts.agents:
        r = runs[spec.family]
        c = collect_run(r["run"])
        sc = scorer.score(Path(r["run"]), task, score_cache.setdefault(spec.family, {}))
        write_state(Path(opts.out), state)
        acc = c["samples"]["accepted"]
        cand = acc + c["samples"]["rejected"]
        wall = r["seconds"]
        fams.append(
            {
                "family": spec.family,
                "model": spec.model,
                "run": r["run"],
                "wall_s": wall,
                "sessions": r["sessions"],
                "stopped": r["stopped"],
                **c,
                "scores": sc,
                "derived": {
                    "acceptance_rate": acc / cand if cand else None,
                    "cost_per_accepted_usd": c["calls"]["cost_usd"] / acc if acc else None,
                    "tokens_per_accepted": (c["calls"]["input_tokens"] + c["calls"]["output_tokens"]) / acc if acc else None,
                    "accepted_per_min": acc / wall * 60.0 if wall else None,
                },
            }
        )
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
