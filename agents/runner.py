"""The main job end to end: resolve the generator, prepare the run, run the agent family, finish.

The stages (:mod:`prepbench.tools.run`: ingest, chunk, ledger, coverage, export) know nothing
of agents; this module is where a family from the registry (:mod:`prepbench.agents.base`)
meets them, so ``prepbench run``, ``prepbench skill try`` and ``prepbench compare`` all run
the same code.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

from prepbench.agents.base import StopRun, family_names, get_family, require_chat_model, tools_ignored
from prepbench.agents.workers import open_pool
from prepbench.tools.errors import PrepbenchError
from prepbench.tools.ledger import RunFolder
from prepbench.tools.run import ModelOptions, RunContext, RunOptions, finish_run, prepare_run
from prepbench.tools.skills import load_skill
from prepbench.tools.validate import screening


@contextlib.contextmanager
def closing_pool(pool: Any):
    """``pool`` (None for the local executor), closed on the way out."""
    try:
        yield pool
    finally:
        if pool is not None:
            pool.close()


def make_generator(spec: str, model_options: ModelOptions | dict | None = None) -> Any:
    """The generator for a model spec (``extractive`` or a chat model behind the call policy).

    Raises:
        ModelSpecError: unknown spec or missing backend.
    """
    from prepbench.agents.models import make_generator as _make

    return _make(spec, **ModelOptions.coerce(model_options).layer_kwargs())


def run_pipeline(
    options: RunOptions, progress: Callable[[RunContext], Any] | None = None, generator: Any = None
) -> dict[str, Any]:
    """Run (or resume) the main job end to end.

    Args:
        options: the run options.
        progress: optional factory called with the context before the agent runs; it may set
            ``ctx.on_recorded`` and return a context manager (the CLI's rich progress bar).
        generator: a ready generator object (tests; default: resolved from ``options.model``).

    Returns:
        ``{"coverage": report, "export": {...}, "resumed": bool, "stopped": bool, "seconds": float, "out": str}``.

    Raises:
        PrepbenchError: unknown agent family, a chat-model family on the offline generator, or
            anything :func:`~prepbench.tools.run.prepare_run` refuses (nothing is written then).
    """
    t0 = time.perf_counter()
    family = get_family(options.agent)
    if generator is None:
        generator = make_generator(options.model, options.model_options)
    if family.needs_chat_model:
        require_chat_model(family.name, generator, options.model)
    if options.executor.remote and not family.remote_work:
        remote = ", ".join(n for n in family_names() if get_family(n).remote_work)
        raise PrepbenchError(f"--executor ray: agent '{family.name}' runs in this process only (Ray runs: {remote})")
    options.executor.check()
    # Ray's workers start now and warm up while this process checks the skill and reads the corpus
    with closing_pool(open_pool(options.executor)) as pool:
        ctx = prepare_run(options, generator, coverage_loop=family.coverage_loop, pool=pool)
        attach_batch(ctx)
        try:
            if ctx.has_work:  # a finished run calls no agent and no model
                ctx.validator.warm_index()
                with progress(ctx) if progress is not None else contextlib.nullcontext():
                    _run_family(ctx, family)
            result = finish_run(ctx)
            result["stop"] = _stop_info(ctx) if ctx.stopped else None
        finally:
            ctx.ledger.close()
            if ctx.screening is not None:  # a run with nothing to do never reached the agent
                screening.park(ctx.screening)
    result.update({"resumed": ctx.resumed, "stopped": ctx.stopped, "seconds": time.perf_counter() - t0, "out": str(ctx.out_dir)})
    return result


def batch_collector(generator: Any) -> Any:
    """The batch collector of a ``--batch`` run's generator (:mod:`prepbench.agents.models.batch`), else None."""
    return getattr(getattr(generator, "chat", None), "batch", None)


def attach_batch(ctx: RunContext) -> None:
    """Give a ``--batch`` run's collector the run's ledger (its jobs are recorded there, so a
    re-run polls them) and the run's event printer (a job's id, counts and waiting time)."""
    collector = batch_collector(ctx.generator)
    if collector is not None:
        collector.store = ctx.ledger
        collector.on_progress = lambda message: ctx.on_event("batch", message)


class RunInterrupted(KeyboardInterrupt):
    """Ctrl-C during a run: ``recorded`` chunks were committed by it (all kept); the same command resumes."""

    def __init__(self, recorded: int):
        super().__init__(f"interrupted: {recorded} chunks recorded; run the same command to resume")
        self.recorded = recorded


def _run_family(ctx: RunContext, family: Any) -> None:
    """Probe the server, run the family, and record how it ended (a stop and its reason, an
    interruption, or finished) as a run event.

    Raises:
        RunInterrupted: Ctrl-C (the ledger keeps every committed chunk).
        PrepbenchError: the server cannot serve the family (e.g. no tool calling for ReAct).
    """
    try:
        probe_server_of(ctx, family)
        # with many requests in flight the gate screens in children, started by prepare_run; else,
        if ctx.screening is None and getattr(ctx.generator, "chat", None) is not None:
            # a model server: the gate loads while the server answers the first requests (started
            # after the probe, whose setup the loading thread would otherwise slow down)
            threading.Thread(target=ctx.validator.warm, name="gate-warm-up", daemon=True).start()
        if not ctx.stopped:
            with frozen_heap():
                family.run(ctx)
    except KeyboardInterrupt:
        with contextlib.suppress(Exception):
            ctx.ledger.record_event("interrupted", f"interrupted: {ctx.recorded} chunks recorded", {"recorded": ctx.recorded})
        raise RunInterrupted(ctx.recorded) from None
    except PrepbenchError as e:  # the server cannot serve this run as asked: a stop that needs a changed flag
        ctx.ledger.record_event("stop", str(e), {"cause": "capability", "advice": "change the flag the message names"})
        raise
    finally:
        if ctx.screening is not None:  # kept for this process's next run of the skill, or ended
            screening.park(ctx.screening)
            ctx.screening = None
    if ctx.stopped:
        info = _stop_info(ctx)
        ctx.ledger.record_event("stop", info["message"], info)
        ctx.on_event("stop", info["message"])
    else:
        ctx.ledger.record_event("finished", f"finished: {ctx.recorded} chunks recorded", {"recorded": ctx.recorded})


@contextlib.contextmanager
def frozen_heap():
    """Leave the objects that exist before the agent runs (the skill, spaCy's pipeline, the chunks,
    imported modules) out of the cyclic garbage collector while it runs (``gc.freeze``).

    Every full collection otherwise walks that whole heap again: measured with
    ``benchmarks/throughput.py`` at concurrency 32, about 1 ms of CPU per model request. Frozen
    objects are still freed by reference counting; the block's end gives them back (``gc.unfreeze``).
    Only the young generations are collected first: a full collection of that heap costs about
    130 ms per run, and a cycle left in it is freed after the run instead of before.
    """
    gc.collect(1)
    gc.freeze()
    try:
        yield
    finally:
        gc.unfreeze()


def _stop_info(ctx: RunContext) -> dict[str, Any]:
    """Why the run stopped early and what to do: ``{"message", "cause", "advice", "pending"}``."""
    stop = ctx.stop
    pending = ctx.ledger.counts()["chunks"]["pending"]
    return {
        "message": f"stopped: {stop}" if stop is not None else "stopped early",
        "cause": getattr(stop, "cause", "") or "",
        "advice": getattr(stop, "advice", "") or "run the same command again to resume",
        "pending": pending,
    }


def probe_server_of(ctx: RunContext, family: Any) -> dict[str, Any] | None:
    """Probe the OpenAI-compatible server behind ``ctx``'s generator (:mod:`prepbench.agents.models.probe`):
    record its calls and a ``probe`` event, print the finding, and apply the structured-output choice.

    Returns:
        The findings, or None when there is nothing to probe (the offline generator, other providers,
        a ``--batch`` run: its requests go to the provider's batch API only).

    Raises:
        PrepbenchError: ``--structured`` names a mode the server does not honour, or the family needs
            tool calling and the server ignores tools.
    """
    from prepbench.agents.models.probe import describe_probe, probe_server

    gen = ctx.generator
    chat = getattr(gen, "chat", None)
    if chat is None or getattr(chat, "provider", "") != "openai" or batch_collector(gen) is not None:
        return None  # a --batch run asks the provider's batch API, which takes json_schema, nothing online
    mode = getattr(getattr(gen, "structured", None), "mode", "auto")
    try:
        found, calls = asyncio.run(probe_server(chat, mode, tools_auto=family.needs_tool_calling))
    except StopRun as e:
        ctx.ledger.record_calls(getattr(e, "calls", []))
        ctx.halt(e)
        return None
    ctx.ledger.record_calls(calls)
    before = ctx.ledger.events("probe")
    message = describe_probe(found)
    if before and _answers(before[-1]["data"]) != _answers(found):
        message += " (the server changed since the last run)"
    ctx.ledger.record_event("probe", message, found)
    ctx.on_event("probe", message)
    if mode not in ("auto", "prompt") and found.get(mode) != "supported":
        raise PrepbenchError(
            f"--structured {mode}: the server at {found.get('server')} does not honour it ({found.get(mode)}); "
            "use --structured auto (the probe then chooses what the server supports)"
        )
    if family.needs_tool_calling and found.get("tools_auto") == "ignored":
        raise tools_ignored(family.name, found.get("server"), "the probe offered a tool and the model answered in text")
    return found


def _answers(found: dict[str, Any]) -> dict[str, Any]:
    """The part of a probe's findings that describes the server (not its timing)."""
    return {k: v for k, v in found.items() if k not in ("seconds",)}


@dataclass
class TryResult:
    """What :func:`try_skill` found on the first chunks of a corpus.

    Attributes:
        skill: the skill name.
        chunks: per chunk in corpus order: ``{"idx", "chunk_id", "doc_path", "heading", "status",
            "skip_reason", "error", "text", "accepted": [sample...], "rejected": [sample...]}``
            where a rejected sample has ``rule`` and ``detail``.
        coverage: the coverage report (see :func:`prepbench.tools.coverage.coverage_report`).
        exported: number of samples the export wrote (ShareGPT/Alpaca/OpenAI), in the throwaway run.
        seconds: wall time of the run.
    """

    skill: str
    chunks: list[dict[str, Any]] = field(default_factory=list)
    coverage: dict[str, Any] = field(default_factory=dict)
    exported: int = 0
    seconds: float = 0.0

    @property
    def accepted(self) -> list[dict]:
        """Every accepted sample, in corpus order."""
        return [s for c in self.chunks for s in c["accepted"]]

    @property
    def rejected(self) -> list[dict]:
        """Every rejected sample (with ``rule`` and ``detail``), in corpus order."""
        return [s for c in self.chunks for s in c["rejected"]]


def try_skill(
    skill: str | Path,
    corpus: list[str | Path] | str | Path,
    limit: int = 5,
    model: str = "extractive",
    model_options: ModelOptions | dict[str, Any] | None = None,
    generator: Any = None,
    keep_dir: str | Path | None = None,
    progress: Any = None,
    follow_symlinks: bool = False,
) -> TryResult:
    """Run a skill on the first ``limit`` chunks of a corpus into a throwaway run folder.

    It is the real main job (:func:`run_pipeline`: ingest, chunk, ledger, skill agent,
    validation, coverage, export) with ``--limit``, in a temporary folder that is deleted
    afterwards (unless ``keep_dir`` is given).

    Args:
        skill: a skill folder or shipped skill name.
        corpus: corpus folder(s) or file(s).
        limit: number of chunks (from the corpus start) to process (>= 1).
        model: model spec (``extractive`` offline, ``openai:<model>``, ...).
        model_options: options for the model layer (``base_url``, ...).
        generator: a ready generator object (tests).
        keep_dir: run into this folder (new or empty) and keep it, instead of a temporary one.
        progress: progress factory passed to :func:`run_pipeline` (the CLI's bar).
        follow_symlinks: read symbolic links that lead out of the corpus folder (``--follow-symlinks``).

    Returns:
        A :class:`TryResult` with every chunk's accepted and rejected samples and the coverage.

    Raises:
        PrepbenchError: a broken skill, corpus or model spec (as ``prepbench run``), a
            ``limit`` below 1, or a ``keep_dir`` that already holds files.
    """
    if limit < 1:
        raise PrepbenchError("--limit must be at least 1")
    if keep_dir is not None and Path(keep_dir).exists() and any(Path(keep_dir).iterdir()):
        raise PrepbenchError(f"{keep_dir}: --keep needs a new or empty folder (skill try never overwrites a run)")
    if isinstance(corpus, (str, Path)):
        corpus = [corpus]
    with tempfile.TemporaryDirectory(prefix="prepbench-try-") as tmp:
        out = Path(keep_dir) if keep_dir else Path(tmp) / "run"
        opts = RunOptions(
            corpus=[str(c) for c in corpus],
            skill=str(skill),
            out=str(out),
            model=model,
            limit=limit,
            follow_symlinks=follow_symlinks,
            fresh=True,
            model_options=ModelOptions.coerce(model_options),
        )
        result = run_pipeline(opts, progress=progress, generator=generator)
        run = RunFolder.open(out)
        try:
            rows = run.chunk_rows()
            samples: dict[str, list[dict]] = {}
            for s in run.sample_rows():
                d = dict(s["data"])
                d.setdefault("sample_type", s["sample_type"])
                d["_status"], d["_rule"], d["_detail"] = s["status"], s["rule"], s["detail"]
                samples.setdefault(s["chunk_id"], []).append(d)
        finally:
            run.close()
    return _try_result(load_skill(skill).name, result, rows, samples)


def _try_result(skill_name: str, result: dict[str, Any], rows: list[dict], samples: dict[str, list[dict]]) -> TryResult:
    """The :class:`TryResult` of a finished try: each chunk row with its accepted and rejected samples."""
    tr = TryResult(
        skill=skill_name,
        coverage=result["coverage"],
        exported=int(result["export"].get("count", 0)),
        seconds=float(result["seconds"]),
    )
    for r in rows:
        mine = samples.get(r["chunk_id"], [])
        tr.chunks.append(
            {
                "idx": r["idx"],
                "chunk_id": r["chunk_id"],
                "doc_path": r["doc_path"],
                "heading": " > ".join(r["heading_path"]),
                "status": r["status"],
                "skip_reason": r["skip_reason"],
                "error": r["error"],
                "text": r["text"],
                "accepted": [_public(s) for s in mine if s["_status"] == "accepted"],
                "rejected": [dict(_public(s), rule=s["_rule"], detail=s["_detail"]) for s in mine if s["_status"] != "accepted"],
            }
        )
    return tr


def _public(sample: dict) -> dict:
    return {k: v for k, v in sample.items() if not k.startswith("_")}
