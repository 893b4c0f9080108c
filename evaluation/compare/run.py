"""Running a comparison's agent families: options, ``--agents`` parsing, resumable runs.

Each family runs into ``OUT/runs/<family>`` through :func:`prepbench.agents.runner.run_pipeline`;
``OUT/compare.json`` accumulates, per family, the wall time of the calls that processed chunks
(a finished run resumed by a later ``compare`` adds nothing), keyed by the ledger's
``created_at`` so a run started over resets it. The same file holds the score cache
(:mod:`.collect`).
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Callable, Sequence

from prepbench.tools.chunking import DEFAULT_MAX_CHARS, DEFAULT_MIN_CHARS, DEFAULT_OVERLAP
from prepbench.tools.errors import PrepbenchError
from prepbench.tools.run import ModelOptions

STATE_FILE = "compare.json"
DEFAULT_METRIC_SETS = ("lexical", "ngram", "compression", "length", "embedding")


def _families() -> list[str]:
    """The registered agent families (``skill``, ``direct``, ``react``), from the agents' registry."""
    from prepbench.agents.base import family_names

    return family_names()


def _needs_chat_model(family: str) -> bool:
    from prepbench.agents.base import get_family

    return get_family(family).needs_chat_model


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
    FAMILIES = _families()
    if not items:
        raise PrepbenchError(f"--agents {spec!r}: name at least one family ({', '.join(FAMILIES)})")
    out: list[FamilySpec] = []
    for item in items:
        fam, _, model = item.partition("=")
        fam, model = fam.strip(), model.strip()
        if fam not in FAMILIES:
            raise PrepbenchError(
                f"--agents: unknown agent family '{fam}' (choose from {', '.join(FAMILIES)}; e.g. skill=extractive,direct,react)"
            )
        if any(f.family == fam for f in out):
            raise PrepbenchError(f"--agents: family '{fam}' given twice")
        if "=" in item and not model:
            raise PrepbenchError(f"--agents: '{item}' has an empty model spec after '='")
        model = model or default_model or ("extractive" if fam == "skill" else "")
        if not model:
            raise PrepbenchError(f"--agents: family '{fam}' has no model; give --model SPEC or {fam}=SPEC")
        if model == "extractive" and _needs_chat_model(fam):
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
    FAMILIES = _families()
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
        limit, exclude, concurrency, batch_size, pdf_engine, follow_symlinks, min_chars, max_chars, overlap,
            max_attempts, max_repairs, revisit, fresh: run options passed to every family's
            :class:`~prepbench.tools.run.RunOptions`.
        model_options: the chat-model families' :class:`~prepbench.tools.run.ModelOptions`
            (a dict of its fields is accepted); the offline ``extractive`` generator gets none.
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
    pdf_engine: str = "auto"
    follow_symlinks: bool = False
    min_chars: int = DEFAULT_MIN_CHARS
    max_chars: int = DEFAULT_MAX_CHARS
    overlap: int = DEFAULT_OVERLAP
    max_attempts: int = 3
    max_repairs: int = 2
    revisit: bool = True
    fresh: bool = False
    model_options: ModelOptions = field(default_factory=ModelOptions)
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

    def __post_init__(self) -> None:
        self.model_options = ModelOptions.coerce(self.model_options)

    def run_options(self, spec: FamilySpec, run_dir: Path):
        """The :class:`~prepbench.tools.run.RunOptions` of one family's run."""
        from prepbench.tools.run import RunOptions

        return RunOptions(
            corpus=list(self.corpus),
            skill=self.skill,
            out=str(run_dir),
            agent=spec.family,
            model=spec.model,
            concurrency=self.concurrency,
            batch_size=self.batch_size,
            limit=self.limit,
            exclude=list(self.exclude),
            pdf_engine=self.pdf_engine,
            follow_symlinks=self.follow_symlinks,
            min_chars=self.min_chars,
            max_chars=self.max_chars,
            overlap=self.overlap,
            max_attempts=self.max_attempts,
            max_repairs=self.max_repairs,
            revisit=self.revisit,
            fresh=self.fresh,
            model_options=self.model_options if spec.model != "extractive" else None,
        )


# ---------------------------------------------------------------------------------------
# running the families (resumable) with durable wall time
# ---------------------------------------------------------------------------------------


def read_state(out: Path) -> dict:
    """``OUT/compare.json`` (wall times per family, score cache); ``{"families": {}}`` when absent."""
    p = out / STATE_FILE
    if not p.is_file():
        return {"families": {}}
    try:
        state = json.loads(p.read_text(encoding="utf-8"))
    except json.JSONDecodeError as e:
        raise PrepbenchError(f"{p}: not valid JSON ({e.msg}); delete it to start the wall-time record over") from None
    state.setdefault("families", {})
    return state


def write_state(out: Path, state: dict) -> None:
    """Write ``OUT/compare.json`` atomically (temp file + rename)."""
    out.mkdir(parents=True, exist_ok=True)
    tmp = out / (STATE_FILE + ".tmp")
    tmp.write_text(json.dumps(state, indent=2) + "\n", encoding="utf-8")
    os.replace(tmp, out / STATE_FILE)


def _ledger_progress(run_dir: Path) -> tuple[int, Any]:
    """(sum of chunk attempts, ledger ``created_at``) of a run folder; (0, None) without a ledger."""
    from prepbench.tools.errors import LedgerError
    from prepbench.tools.ledger import RunFolder

    try:
        led = RunFolder.open(run_dir, readonly=True)
    except LedgerError:
        return 0, None
    try:
        if not led.initialized:
            return 0, None
        return led.attempts_total(), led.get_config().get("created_at")
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
        PrepbenchError (and subclasses): as :func:`~prepbench.agents.runner.run_pipeline`
        (bad skill or corpus, a run folder holding a different run, ...).
    """
    from prepbench.agents.runner import run_pipeline

    out = Path(opts.out)
    state = read_state(out)
    results: dict[str, dict] = {}
    for spec in opts.agents:
        run_dir = out / "runs" / spec.family
        before, created_before = _ledger_progress(run_dir)
        res = run_pipeline(opts.run_options(spec, run_dir), progress=progress(spec.family, spec) if progress else None)
        after, created = _ledger_progress(run_dir)
        fam = state["families"].get(spec.family) or {}
        if fam.get("created_at") != created or fam.get("model") != spec.model:
            fam = {"model": spec.model, "created_at": created, "seconds": 0.0, "sessions": []}
        processed = after - before if created_before == created else after  # chunk attempts made by this call
        if processed > 0:  # this call generated something: its time counts
            fam["seconds"] = round(fam["seconds"] + res["seconds"], 3)
            fam["sessions"].append(
                {
                    "seconds": round(res["seconds"], 3),
                    "chunk_attempts": processed,
                    "resumed": res["resumed"],
                    "at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
                }
            )
        state["families"][spec.family] = fam
        write_state(out, state)
        results[spec.family] = {
            "model": spec.model,
            "run": str(run_dir),
            "seconds": fam["seconds"],
            "sessions": list(fam["sessions"]),
            "resumed": res["resumed"],
            "stopped": res["stopped"],
        }
    return results
