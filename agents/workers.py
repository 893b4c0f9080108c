"""The worker side of ``--executor ray``: what a Ray worker builds from a run, and the pool a family opens.

An agent family that runs its work units in Ray workers (the skill family's chunks, the
generation modes' slots) opens a pool with :func:`open_pool`, giving a *build* function of its
own module. The pool ships a :class:`WorkerRecipe` (the skill, the model spec and options, what
the server probe found, the corpus's sources, the run options, the build function) to each
:class:`FamilyWorker` once; the worker calls ``recipe.build(recipe)`` the first time it sees the
recipe and gets the family's *work*: an ``async work(payload) -> result`` over one batch. The
worker keeps the generator it built (model client, or the offline generator; the gate's spaCy
pipeline is loaded when the worker starts), so each worker pays for them once.

Nothing here writes the ledger: results go back to the driver, which records them
(:mod:`prepbench.tools.executors`).
"""

from __future__ import annotations

import asyncio
import dataclasses
import math
import os
import time
from collections import OrderedDict
from dataclasses import dataclass, field
from typing import Any, Awaitable, Callable

from prepbench.agents.base import StopRun
from prepbench.tools.validate import Gate


@dataclass
class WorkerRecipe:
    """What a worker builds a run's work from.

    Attributes:
        build: ``build(recipe) -> async work(payload)``: a module-level function of the family
            (Ray sends it by reference; the worker imports its module).
        skill: the loaded skill (sent whole: a worker reads no skill folder).
        gate: the run's gate as a screener (:meth:`~prepbench.tools.validate.Gate.screener`: the
            skill's rules, a generation run's seeds and n-gram matcher; no duplicate state).
        model: the model spec; model_options: :func:`~prepbench.agents.models.make_generator`'s
            options, with this worker's share of ``--concurrency``.
        capabilities: what the run's server probe found (the structured-output mode, context
            size), applied to each worker's client so every worker sends what the driver chose.
        sources: ``doc_path -> {"title", "authors"}`` of the corpus (the offline generator's attributions).
        document_context: the offline generator's per-document context (separate opinions, key terms).
        options: the run options, with this worker's share of ``concurrency``.
        extra: what else the family's build needs (the generation modes' seeds, ...).
    """

    build: Callable[["WorkerRecipe"], Callable[[Any], Awaitable[Any]]]
    skill: Any
    gate: Gate
    model: str
    model_options: dict[str, Any]
    capabilities: dict[str, Any]
    sources: dict[str, dict]
    options: Any
    document_context: dict[str, dict] = field(default_factory=dict)
    extra: dict[str, Any] = field(default_factory=dict)

    def generator(self) -> Any:
        """The worker's own generator: built from the spec, told what the driver's probe found."""
        from prepbench.agents.models import make_generator

        gen = make_generator(self.model, **self.model_options)
        chat = getattr(gen, "chat", None)
        if chat is not None and self.capabilities:
            chat.capabilities.update(self.capabilities)
        if hasattr(gen, "sources"):
            gen.sources = dict(self.sources)
        if hasattr(gen, "document_context"):
            gen.document_context = dict(self.document_context)
        return gen


class WorkerContext:
    """The part of a :class:`~prepbench.tools.run.RunContext` a family's work reads in a worker
    (no ledger: a worker never writes one). A stop is kept per batch in the batch's result."""

    def __init__(self, recipe: WorkerRecipe, generator: Any):
        self.options = recipe.options
        self.skill = recipe.skill
        self.validator = recipe.gate
        self.generator = generator
        self.stopped = False
        self.stop: StopRun | None = None

    def halt(self, exc: BaseException) -> None:
        """Remember the first stop (its batch carries it back to the driver, which halts the run)."""
        if self.stop is None:
            self.stop = exc  # type: ignore[assignment]

    def on_recorded(self, outcome: Any) -> None:  # nothing is recorded in a worker
        return None


class FamilyWorker:
    """A Ray worker actor: runs batches of any run whose recipe it is given.

    The English parser is loaded when the worker starts (every skill's gate screens with it), so
    the first batch does not pay for it. Works are kept per recipe key (the last few runs).

    Args:
        idle_s: a warm worker of a running cluster ends itself after this many seconds without a
            batch; None: it ends with the run that made it.
    """

    KEEP = 2

    def __init__(self, idle_s: float | None = None) -> None:
        from prepbench.tools import nlp

        nlp.pipeline()
        self.works: OrderedDict[str, Callable[[Any], Awaitable[Any]]] = OrderedDict()
        self.idle_s = idle_s
        self.last = time.monotonic()
        self.busy = 0
        self.watch: asyncio.Task | None = None

    def call(self, fn: Callable[..., Any], *args: Any) -> Any:
        """``fn(*args)`` here (the skill's example check, on a worker whose parser is loaded)."""
        self.last = time.monotonic()
        return fn(*args)

    async def process(self, key: str, recipe_refs: list, payload: Any) -> Any:
        """Run the work of recipe ``key`` on ``payload`` (one batch) and return its result."""
        if self.idle_s is not None and self.watch is None:
            self.watch = asyncio.get_running_loop().create_task(self._end_when_idle())
        self.busy += 1
        try:
            work = self.works.get(key)
            if work is None:
                recipe = await recipe_refs[0]  # fetched from Ray's object store once per worker and run
                if self.busy == 1:  # a new run and no other batch in flight: the last run's parses go
                    from prepbench.tools import nlp

                    nlp.clear_caches()
                work = self.works[key] = recipe.build(recipe)
                while len(self.works) > self.KEEP:
                    self.works.popitem(last=False)
            return await work(payload)
        finally:
            self.busy -= 1
            self.last = time.monotonic()

    async def _end_when_idle(self) -> None:
        import ray

        while True:
            await asyncio.sleep(min(60.0, self.idle_s or 60.0))
            if not self.busy and time.monotonic() - self.last > (self.idle_s or 0):
                ray.kill(ray.get_runtime_context().current_actor, no_restart=True)
                return


def worker_recipe(ctx: Any, build: Callable, workers: int, **extra: Any) -> WorkerRecipe:
    """The recipe of ``ctx``'s run for a pool of ``workers``: ``--concurrency`` is split between
    them (each gets its ceiling share), so the run's total in-flight requests stay as asked."""
    opts = ctx.options
    share = max(1, math.ceil(int(opts.concurrency) / workers))
    model_options = dict(opts.model_options.layer_kwargs())
    model_options["concurrency"] = max(1, math.ceil(int(model_options.get("concurrency") or opts.concurrency) / workers))
    chat = getattr(ctx.generator, "chat", None)
    return WorkerRecipe(
        build=build,
        skill=ctx.skill,
        gate=ctx.validator.screener(),
        model=opts.model,
        model_options=model_options,
        capabilities=dict(getattr(chat, "capabilities", None) or {}),
        sources=dict(getattr(ctx.generator, "sources", None) or {}),
        document_context=dict(getattr(ctx.generator, "document_context", None) or {}),
        options=dataclasses.replace(opts, concurrency=share),
        extra=extra,
    )


def open_pool(executor: Any) -> Any:
    """A :class:`~prepbench.tools.executors.ray.RayPool` of :class:`FamilyWorker` when ``executor``
    (:class:`~prepbench.tools.executors.ExecutorOptions`) is ``ray``, else None (the local executor).
    Its workers start now; the family gives them its recipe with :func:`serve_run`.

    Raises:
        PrepbenchError, EnvironmentFault: Ray is missing, or the cluster cannot serve ``--workers``.
    """
    if not executor.remote:
        return None
    from prepbench.tools.executors.ray import RayPool

    return RayPool(executor, FamilyWorker)


def serve_run(ctx: Any, build: Callable, **extra: Any) -> Any:
    """Give ``ctx``'s pool (``ctx.pool``) the run's recipe for the family's ``build``; returns the pool (None: local)."""
    pool = getattr(ctx, "pool", None)
    if pool is not None:
        pool.serve(f"{ctx.out_dir.resolve()}:{os.getpid()}:{id(ctx)}", worker_recipe(ctx, build, pool.workers, **extra))
    return pool
