"""The skill-guided agent: a LangGraph ``StateGraph`` over batches of pending chunks.

Graph (edges top to bottom)::

    load_batch ─► triage ─► generate ─► validate ─┬─► repair ─► validate (bounded rounds)
        │                      ▲                   └─► record ─┐
        │ (no pending chunk)   │ (revisit batch)               │
        └─► plan_coverage ─────┘─► END (mix met)               │
        ▲                                                      │
        └───────────────────── next batch ◄────────────────────┘ ─► END (stopped)

- ``triage``: the generator keeps a chunk or skips it with a reason from the skill's
  vocabulary (``coverage.yaml``).
- ``generate``: candidate samples per sample type (targets from ``coverage.yaml``).
- ``validate``: JSON Schema + the skill's filter rules (duplicates are checked at record
  time, in chunk order, so a resumed run rebuilds exactly the same dedup state).
- ``repair``: failed candidates go back to the generator with the validator's feedback
  (chat models only; the extractive generator cannot repair), then are validated again.
- ``record``: per chunk, in corpus order, dedup then one ledger transaction with the
  chunk's samples, calls and final status (the exactly-once unit).
- ``plan_coverage`` (the coverage loop): once every chunk is recorded, sample types below
  their ``min_share`` in ``coverage.yaml`` get a round of revisits: kept chunks generate
  that type again (:func:`~prepbench.tools.coverage.plan_revisit_round`), through the same
  generate → validate → repair → record path. A round's plan is committed to the ledger
  before it runs, a chunk is revisited at most once per type, and the loop ends when the
  mix is met or no candidate chunk is left (``--no-revisit`` turns it off). A revisit whose
  generation (or judge) fails is recorded ``failed`` with its error and calls, and the next
  run plans it again while it has attempts left, as for a failed chunk.

Triage and generation of the chunks of a batch run concurrently (asyncio, bounded by
the run's ``concurrency``); validation and recording are sequential in chunk order.

With a chat model the chunks *stream*: *lanes* (invocations of the same graph on one event
loop) each take a small batch at a time (one chunk at ``--concurrency`` up to 7, at most 8
chunks; :func:`chat_lanes`), ``4 × concurrency`` chunks in flight (``2 ×`` with one chunk per
lane), so a chunk waits only for its few batch mates and the request slots stay full (the
offline generator keeps one lane over batches of ``--batch-size`` chunks). ``record`` hands a finished batch to an in-order
committer: batches commit strictly in corpus order, so the dedup state, and so the accepted
set, is that of one lane; a lane does not wait for the commit, but no lane runs more than
``4 × lanes`` batches ahead of the last committed one. With ``--batch`` every chunk to do is a
lane (up to the provider's requests per job), so the requests of one step of every chunk are
sent as one provider batch job (:mod:`prepbench.agents.models.batch`).
"""

from __future__ import annotations

import asyncio
import dataclasses
import functools
from typing import Any, TypedDict

from langgraph.graph import END, START, StateGraph

from prepbench.tools.chunking import Chunk
from prepbench.tools.coverage import plan_revisit_round
from prepbench.tools.ledger import CallRecord, sample_id
from prepbench.tools.skills import Skill
from prepbench.tools.validate import Candidate, Verdict

from . import interrupt
from .base import AgentFamily, ChunkRecorder, StopRun, Triage, fallback_reason, one_line, register_family, stamp
from .scheduler import Scheduler
from .workers import WorkerContext, WorkerRecipe, serve_run

#: Rejections that a repair cannot fix (the sample is fine, it is just not new).
UNREPAIRABLE_RULES = {"exact_duplicate", "near_duplicate"}


class CandidateState(TypedDict):
    sample: dict
    verdict_ok: bool
    rule: str | None
    detail: str
    attempts: int
    checked: bool


class BatchState(TypedDict, total=False):
    """State of one pass of the graph over a batch of chunks."""

    batch: list[Chunk]
    batch_no: int  # position of the batch in corpus order (record commits in this order)
    revisit: dict[str, list[str]]  # coverage loop: chunk id -> sample types to add (else empty)
    triage: dict[str, Triage]
    candidates: dict[str, list[CandidateState]]
    calls: dict[str, list[CallRecord]]
    errors: dict[str, str]
    repair_round: int
    stopped: bool
    stop: Any  # the StopRun that stopped this batch (it travels back from a Ray worker with the state)
    targets: dict[str, dict[str, int]]  # coverage loop: chunk id -> samples to generate per type
    seen: dict[str, list[str]]  # coverage loop: chunk id -> its sample ids already in the ledger
    recorded: int


def chunk_targets(skill: Skill, decision: Triage) -> dict[str, int]:
    """Samples to generate per type for a kept chunk: the chunk types triage named, else (or when
    none of them is generated per chunk) every chunk type of the skill with a ``per_chunk`` target;
    ``per_chunk`` each, or as many as triage found the chunk ``supports`` (one per glossary entry)
    up to the type's ``max_per_chunk``. Returns sample type -> count (each >= 1)."""
    every = {t: skill.target(t).per_chunk for t in skill.chunk_types if skill.target(t).per_chunk > 0}
    named = {t: n for t, n in every.items() if t in (decision.sample_types or ())}
    out = named or every
    for t, n in out.items():
        cap = skill.target(t).max_per_chunk or n
        out[t] = max(n, min(int(decision.supports.get(t, 0) or 0), cap))
    return out


#: at most this many chunks in a chat-model lane's batch
CHAT_BATCH_MAX = 8


def chat_lanes(concurrency: int) -> tuple[int, int]:
    """Lanes and chunks per batch for a chat model at ``concurrency``: batches of ``concurrency // 4``
    chunks (1 to :data:`CHAT_BATCH_MAX`), ``4 x concurrency`` chunks in flight; one chunk per lane
    and ``2 x concurrency`` lanes at ``--concurrency`` up to 7.

    Each graph step of a lane (LangGraph's task and channel work) is then shared by a batch's chunks:
    measured with ``benchmarks/throughput.py`` at concurrency 32, batches of 8 cut the agent's CPU per
    model request from about 3.6 to 3.1 ms. A batch waits for its slowest chunk at each step, so
    twice as many chunks are in flight as with one chunk per lane: with latencies spread around
    100 ms (``--latency-spread exp``), 8 lanes of 8 chunks made 180-184 requests/s, 16 lanes of 8
    196-207, and 64 lanes of one chunk 192.
    """
    c = max(1, int(concurrency))
    size = max(1, min(CHAT_BATCH_MAX, c // 4))
    in_flight = 2 * c if size == 1 else 4 * c
    return max(1, min(256, in_flight // size)), size


class SkillAgent:
    """Runs the skill-guided graph over a run's pending chunks.

    Args:
        ctx: the pipeline's :class:`~prepbench.tools.run.RunContext` (ledger, skill,
            validator, generator, options, progress callback).
        pool: the Ray workers (``--executor ray``), else None.
        in_flight: with ``--batch``, the chunks to have in flight at once (lanes; up to the
            provider's requests per job), so the requests of one step of every chunk form one job.
    """

    def __init__(self, ctx, pool: Any = None, in_flight: int | None = None):
        self.ctx = ctx
        self.gen = ctx.generator
        self.skill = ctx.skill
        self.recorder = ChunkRecorder(ctx)
        self.opts = ctx.options
        self.pool = pool
        self.sem = asyncio.Semaphore(max(1, self.opts.concurrency))
        chat = bool(self.gen.needs_chat_model)
        # chat models stream small batches through lanes (chat_lanes); Ray workers get two batches
        # each in flight, so none waits while the driver commits
        lanes, size = chat_lanes(self.opts.concurrency) if chat else (2 * pool.workers if pool else 1, self.opts.batch_size)
        batch = getattr(getattr(self.gen, "chat", None), "batch", None)
        if batch is not None and in_flight:  # --batch: every chunk in flight, so each step is one job
            lanes, size = min(batch.cap, in_flight), 1
            self.sem = asyncio.Semaphore(batch.cap)
        spread = pool.workers if pool else 1
        self.scheduler = Scheduler(lanes, size, commit=self._record, spread=spread)
        self.graph = self.build_graph()

    # -- graph ----------------------------------------------------------------------
    def build_graph(self):
        """The run's graph: load_batch / plan_coverage -> the chunk work -> record. The work
        runs here (its nodes inline) or, with a Ray pool, in a worker (:meth:`remote_work`)."""
        g = StateGraph(BatchState)
        g.add_node("load_batch", self.load_batch)
        g.add_node("record", self.record)
        g.add_node("plan_coverage", self.plan_coverage)
        if self.pool is None:
            work = self._add_work(g, then="record")
        else:
            work = "work"
            g.add_node(work, self.remote_work)
            g.add_edge(work, "record")
        g.add_edge(START, "load_batch")
        g.add_conditional_edges("load_batch", self.has_batch, {"yes": work, "no": "plan_coverage"})
        g.add_conditional_edges("plan_coverage", self.has_batch, {"yes": work, "no": END})
        g.add_conditional_edges("record", self.more_work, {"yes": "load_batch", "no": END})
        return g.compile()

    def build_work_graph(self):
        """The chunk work alone (what a Ray worker runs on a batch): triage -> generate ->
        validate (<-> repair) -> END."""
        g = StateGraph(BatchState)
        g.add_edge(START, self._add_work(g, then=END))
        return g.compile()

    def _add_work(self, g: StateGraph, then: str) -> str:
        """Add the chunk work's nodes and edges to ``g``, leaving to ``then``; returns its entry."""
        g.add_node("triage", self.triage)
        g.add_node("generate", self.generate)
        g.add_node("validate", self.validate)
        g.add_node("repair", self.repair)
        g.add_edge("triage", "generate")
        g.add_edge("generate", "validate")
        g.add_conditional_edges("validate", self.needs_repair, {"repair": "repair", "record": then})
        g.add_edge("repair", "validate")
        return "triage"

    async def remote_work(self, state: BatchState) -> BatchState:
        """The chunk work of a batch in a Ray worker (:class:`~prepbench.agents.workers.ChunkWorker`);
        a stop there stops the run here."""
        out = await self.pool.submit(dict(state))
        if out.get("stop") is not None:
            self.ctx.halt(out["stop"])
        return out

    # -- nodes ----------------------------------------------------------------------
    async def load_batch(self, state: BatchState) -> BatchState:
        batch, batch_no = await self.scheduler.next_batch(self.ctx.stopped)
        return {
            "batch": batch,
            "batch_no": batch_no,
            "revisit": {},
            "triage": {},
            "candidates": {},
            "calls": {},
            "errors": {},
            "repair_round": 0,
            "stopped": False,
            "stop": None,
            "targets": {},
            "seen": {},
        }

    # The edge functions are coroutines: LangGraph runs a plain function in a thread pool, a thread
    # hand-off per edge per chunk (measured in benchmarks/throughput.py's profile), for a dict lookup.
    async def has_batch(self, state: BatchState) -> str:
        return "yes" if state.get("batch") else "no"

    async def plan_coverage(self, state: BatchState) -> BatchState:
        """The coverage loop: the next batch of revisits (see the module docstring)."""
        empty: BatchState = {"batch": [], "revisit": {}}
        if self.ctx.stopped or not self.opts.revisit:
            return empty
        part, batch_no = await self.scheduler.next_revisits(self._plan_round, lambda: self.ctx.stopped)
        if not part:
            return empty
        batch = [self.ctx.ledger.get_chunk(cid) for cid, _ in part]
        revisit = {cid: types for cid, types in part}
        return {
            "batch": batch,
            "batch_no": batch_no,
            "revisit": revisit,
            "triage": {cid: Triage(keep=True, sample_types=types) for cid, types in revisit.items()},
            # what the revisit needs of the ledger, read here (the driver) so the work can run anywhere
            "targets": {cid: self.revisit_targets(cid, types) for cid, types in revisit.items()},
            "seen": {cid: sorted(self.ctx.ledger.sample_ids(cid)) for cid in revisit},
            "candidates": {},
            "calls": {cid: [] for cid in revisit},
            "errors": {},
            "repair_round": 0,
            "stopped": False,
            "stop": None,
        }

    def _plan_round(self) -> list[tuple[str, list[str]]]:
        """The coverage loop's next round, committed to the ledger before it runs (a killed run's
        open round is finished first)."""
        ledger = self.ctx.ledger
        if not ledger.planned_revisits():
            items = plan_revisit_round(ledger, self.skill)
            if items:
                ledger.plan_revisits(items)
        return ledger.planned_revisits()

    async def _bounded(self, call):
        """``await call()`` within the graph's concurrency; the coroutine is made only once a slot is
        held, so a run cancelled (Ctrl-C) while waiting leaves no coroutine never awaited."""
        async with self.sem:
            return await call()

    async def triage(self, state: BatchState) -> BatchState:
        if state.get("revisit"):  # a revisit batch comes triaged (kept, for the types to add)
            return {}
        batch = state["batch"]
        results = await asyncio.gather(
            *(self._bounded(functools.partial(self.gen.atriage, c, self.skill)) for c in batch), return_exceptions=True
        )
        triage: dict[str, Triage] = {}
        calls: dict[str, list[CallRecord]] = {c.chunk_id: [] for c in batch}
        errors: dict[str, str] = {}
        stopped, stop = False, state.get("stop")
        for c, res in zip(batch, results):
            if isinstance(res, BaseException):
                calls[c.chunk_id].extend(getattr(res, "calls", []))  # every attempt is accounted
                if isinstance(res, StopRun):
                    stopped, stop = True, res
                    self.ctx.halt(res)
                else:
                    errors[c.chunk_id] = one_line(res)
                continue
            decision, cs = res
            calls[c.chunk_id].extend(cs)
            if not decision.keep and decision.skip_reason not in self.skill.coverage.skip_reasons:
                decision = Triage(
                    keep=False,
                    skip_reason=fallback_reason(self.skill),
                    detail=f"unknown skip reason {decision.skip_reason!r}: {decision.detail}",
                )
            triage[c.chunk_id] = decision
        return {"triage": triage, "calls": calls, "errors": errors, "stopped": stopped, "stop": stop}

    def targets(self, decision: Triage) -> dict[str, int]:
        """Samples to generate per type for a kept chunk (:func:`chunk_targets`)."""
        return chunk_targets(self.skill, decision)

    def revisit_targets(self, chunk_id: str, types: list[str]) -> dict[str, int]:
        """A revisit asks a chat model for ``per_chunk`` samples of each type; the offline
        generator, which is deterministic, for the chunk's accepted ones plus ``per_chunk``
        (it gives its earlier samples again, then new ones after them)."""
        have = {} if self.gen.needs_chat_model else self.ctx.ledger.type_counts(chunk_id)
        return {t: have.get(t, 0) + self.skill.target(t).per_chunk for t in types}

    def new_samples(self, chunk: Chunk, samples: list, types: list[str], seen: set[str]) -> list:
        """Of a revisit's candidates: those of ``types`` whose id is not in ``seen`` (the chunk's
        samples in the ledger), at most ``per_chunk`` of each type."""
        left = {t: self.skill.target(t).per_chunk for t in types}
        out = []
        for s in samples:
            s = stamp(s, chunk)
            t = s.get("sample_type")
            if left.get(t, 0) <= 0 or sample_id(chunk.chunk_id, t, s) in seen:
                continue
            left[t] -= 1
            out.append(s)
        return out

    async def generate(self, state: BatchState) -> BatchState:
        if state.get("stopped"):
            return {}
        batch = [c for c in state["batch"] if state["triage"].get(c.chunk_id) and state["triage"][c.chunk_id].keep]
        revisit = state.get("revisit") or {}
        planned = state.get("targets") or {}  # a revisit's targets, planned with the ledger at hand
        targets = {c.chunk_id: planned.get(c.chunk_id) or self.targets(state["triage"][c.chunk_id]) for c in batch}
        results = await asyncio.gather(
            *(self._bounded(functools.partial(self.gen.agenerate, c, self.skill, targets[c.chunk_id])) for c in batch),
            return_exceptions=True,
        )
        candidates: dict[str, list[CandidateState]] = {}
        calls = state["calls"]
        errors = dict(state["errors"])
        stopped, stop = False, state.get("stop")
        for c, res in zip(batch, results):
            cs = res[1] if not isinstance(res, BaseException) else getattr(res, "calls", [])
            if c.chunk_id in revisit:  # the ledger tells a revisit's calls from the main pass's
                cs = [dataclasses.replace(x, node=f"revisit_{x.node}") for x in cs]
            calls[c.chunk_id].extend(cs)  # every attempt is accounted, failed or stopped ones too
            if isinstance(res, BaseException):
                if isinstance(res, StopRun):
                    stopped, stop = True, res
                    self.ctx.halt(res)
                else:
                    errors[c.chunk_id] = one_line(res)
                continue
            samples = res[0]
            if c.chunk_id in revisit:
                samples = self.new_samples(c, samples, revisit[c.chunk_id], set(state["seen"][c.chunk_id]))
            candidates[c.chunk_id] = [
                {"sample": stamp(s, c), "verdict_ok": False, "rule": None, "detail": "", "attempts": 1, "checked": False}
                for s in samples
            ]
        return {"candidates": candidates, "calls": calls, "errors": errors, "stopped": stopped, "stop": stop}

    async def validate(self, state: BatchState) -> BatchState:
        if state.get("stopped"):
            return {}
        by_id = {c.chunk_id: c for c in state["batch"]}
        candidates = state.get("candidates", {})
        passed: list[tuple[str, CandidateState]] = []
        todo = [(cid, cand) for cid, cands in candidates.items() for cand in cands if not cand["checked"]]
        verdicts = await self.recorder.screen_many([(cand["sample"], by_id[cid].text) for cid, cand in todo])
        for (cid, cand), v in zip(todo, verdicts):
            cand["verdict_ok"], cand["rule"], cand["detail"], cand["checked"] = v.ok, v.rule, v.detail, True
            if v.ok:
                passed.append((cid, cand))
        if passed and getattr(self.gen, "judge", False) and hasattr(self.gen, "ajudge"):
            return await self.judge(state, passed, by_id)
        return {"candidates": candidates}

    async def judge(self, state: BatchState, passed: list, by_id: dict) -> BatchState:
        """The optional grounded LLM judge (``--judge``): sees the chunk, rejects unsupported candidates."""
        results = await asyncio.gather(
            *(self._bounded(functools.partial(self.gen.ajudge, by_id[cid], self.skill, cand["sample"])) for cid, cand in passed),
            return_exceptions=True,
        )
        calls = state["calls"]
        errors = dict(state.get("errors") or {})
        stopped, stop = False, state.get("stop")
        for (cid, cand), res in zip(passed, results):
            if isinstance(res, BaseException):
                calls[cid].extend(getattr(res, "calls", []))
                if isinstance(res, StopRun):
                    stopped, stop = True, res
                    self.ctx.halt(res)
                else:  # the judge could not run: the chunk is not judged, so it is retried, not kept unjudged
                    errors.setdefault(cid, one_line(res))
                continue
            (supported, reason), cs = res
            calls[cid].extend(cs)
            if not supported:
                cand["verdict_ok"], cand["rule"], cand["detail"] = (
                    False,
                    "grounded_judge",
                    (reason or "not supported by the chunk")[:200],
                )
        return {"candidates": state["candidates"], "calls": calls, "errors": errors, "stopped": stopped, "stop": stop}

    def _repairable(self, state: BatchState) -> list[tuple[str, CandidateState]]:
        if state.get("stopped") or not self.gen.needs_chat_model:
            return []
        if state.get("repair_round", 0) >= self.opts.max_repairs:
            return []
        return [
            (cid, cand)
            for cid, cands in state.get("candidates", {}).items()
            for cand in cands
            if not cand["verdict_ok"]
            and cand["rule"] not in UNREPAIRABLE_RULES
            and cand["attempts"] == state.get("repair_round", 0) + 1
            and cand["checked"]
        ]

    async def needs_repair(self, state: BatchState) -> str:
        return "repair" if self._repairable(state) else "record"

    async def repair(self, state: BatchState) -> BatchState:
        by_id = {c.chunk_id: c for c in state["batch"]}
        todo = self._repairable(state)
        results = await asyncio.gather(
            *(
                self._bounded(
                    functools.partial(
                        self.gen.arepair, by_id[cid], self.skill, cand["sample"], f"{cand['rule']}: {cand['detail']}"
                    )
                )
                for cid, cand in todo
            ),
            return_exceptions=True,
        )
        calls = state["calls"]
        errors = dict(state.get("errors") or {})
        stopped, stop = False, state.get("stop")
        for (cid, cand), res in zip(todo, results):
            if isinstance(res, BaseException):
                calls[cid].extend(getattr(res, "calls", []))
                if isinstance(res, StopRun):
                    stopped, stop = True, res
                    self.ctx.halt(res)
                else:  # the repair did not finish: the chunk is retried, not kept short of it
                    errors.setdefault(cid, one_line(res))
                continue
            fixed, cs = res
            calls[cid].extend(cs)
            if fixed is not None:
                cand["sample"] = stamp(fixed, by_id[cid])
                cand["attempts"] += 1
                cand["checked"] = False
        return {
            "candidates": state["candidates"],
            "calls": calls,
            "errors": errors,
            "repair_round": state.get("repair_round", 0) + 1,
            "stopped": stopped,
            "stop": stop,
        }

    async def record(self, state: BatchState) -> BatchState:
        """Hand the batch to the in-order committer: it and every later finished batch commit
        once every earlier batch has (corpus order); the lane goes on at once."""
        await self.scheduler.finish(state["batch_no"], state)
        return {}

    def _record(self, state: BatchState) -> BatchState:
        """Commit a finished batch through the shared recorder, chunk by chunk in corpus order."""
        recorded = 0
        rec = self.recorder
        revisit = state.get("revisit") or {}
        candidates = state.get("candidates", {})
        for c in state["batch"]:
            cid = c.chunk_id
            calls = state["calls"].get(cid, [])
            if cid in revisit:
                if cid in state["errors"]:  # failed: its calls and error are kept, the next run retries it
                    rec.revisit_failed(cid, calls, revisit[cid], state["errors"][cid])
                elif cid not in candidates:
                    rec.unrecorded(cid, calls)  # stopped before generation finished: stays planned
                else:
                    rec.revisit(cid, _candidates(candidates[cid]), calls, revisit[cid])
                continue
            if cid in state["errors"]:
                done = rec.failed(cid, calls, state["errors"][cid])
            elif cid not in state["triage"] or (state["triage"][cid].keep and cid not in candidates):
                rec.unrecorded(cid, calls)  # stopped before triage or generation finished: stays pending
                continue
            elif not state["triage"][cid].keep:
                done = rec.skipped(cid, calls, state["triage"][cid].skip_reason)
            else:
                done = rec.decided(cid, _candidates(candidates[cid]), calls)
            recorded += int(done)
        return {"recorded": state.get("recorded", 0) + recorded}

    async def more_work(self, state: BatchState) -> str:
        if state.get("stopped"):
            self.ctx.stopped = True  # the other lane loads no new batch
        if self.ctx.stopped:
            return "no"
        return "yes"  # load_batch, or the coverage loop once no pending chunk is left

    # -- entry ----------------------------------------------------------------------
    async def arun(self, todo: list[Chunk]) -> None:
        if self.opts.revisit:  # revisits that failed in an earlier run are retried (while attempts last)
            self.ctx.ledger.reopen_failed_revisits(self.opts.max_attempts)
        self.scheduler.start(todo)
        size = self.scheduler.batch_size
        # a bound on graph steps: every main batch plus, in the coverage loop, at most one
        # revisit per kept chunk and sample type
        kept = self.ctx.ledger.counts()["chunks"]["kept"] + len(todo)
        n_batches = (len(todo) + size - 1) // size + kept * len(self.skill.sample_types) + 1
        limit = n_batches * (7 + 2 * self.opts.max_repairs) + 10
        # a lane that raises cancels the others (which may be waiting in load_batch or plan_coverage)
        try:
            async with asyncio.TaskGroup() as tg:
                for _ in range(self.scheduler.lanes):
                    tg.create_task(self.graph.ainvoke({}, config={"recursion_limit": limit}))
        except BaseExceptionGroup as eg:  # surface the lane's own error, as with one lane
            raise eg.exceptions[0]
        finally:
            if getattr(self.ctx, "screening", None) is not None:
                self.ctx.screening.release()  # its pipes belong to this event loop


def _candidates(states: list[CandidateState]) -> list[Candidate]:
    """The graph's candidate states as the gate's candidates (screening verdict, attempts)."""
    return [Candidate(c["sample"], Verdict(c["verdict_ok"], c["rule"], c["detail"]), c["attempts"]) for c in states]


#: What a Ray worker's chunk work sends back of a batch's state (the driver has the rest).
WORK_RESULT = ("triage", "candidates", "calls", "errors", "repair_round", "stopped", "stop")


def chunk_work(recipe: WorkerRecipe):
    """The skill family's work in a Ray worker (a :class:`~prepbench.agents.workers.WorkerRecipe`'s
    ``build``): ``async work(state)`` runs the chunk work graph (triage, generate, validate,
    repair) on one batch with the worker's own generator and the run's screener (duplicates
    are decided by the driver, at commit), and returns the :data:`WORK_RESULT` keys."""
    agent = SkillAgent(WorkerContext(recipe, recipe.generator()))
    graph = agent.build_work_graph()
    limit = 10 + 2 * int(recipe.options.max_repairs)

    async def work(state: BatchState) -> dict:
        out = await graph.ainvoke(state, config={"recursion_limit": limit})
        return {k: out.get(k) for k in WORK_RESULT}

    return work


def run_skill_agent(ctx) -> None:
    """Run the skill-guided graph over ``ctx``'s chunks to do (pending, failed with attempts left).

    Chunks are processed in corpus order; the run stops early (chunks left pending) when a
    generator raises :class:`~prepbench.agents.base.StopRun`. With ``--executor ray`` the chunk
    work runs in Ray workers and only the commits run here.
    """
    todo = ctx.ledger.todo_chunks(max_attempts=ctx.options.max_attempts)
    in_flight = None
    if getattr(getattr(ctx.generator, "chat", None), "batch", None) is not None:  # --batch: the main pass, or a round of revisits
        in_flight = max(1, len(todo), ctx.ledger.counts()["chunks"]["kept"])
    agent = SkillAgent(ctx, serve_run(ctx, chunk_work), in_flight=in_flight)
    asyncio.run(interrupt.guarded(agent.arun(todo), lambda: ctx.recorded))  # Ctrl-C stops it within seconds


#: the entry point of ``prepbench.agent_families`` (pyproject.toml)
FAMILY = register_family(
    AgentFamily(
        "skill",
        run_skill_agent,
        needs_chat_model=False,
        coverage_loop=True,
        remote_work=True,
        summary="skill-guided graph: triage, generate per sample type, gate, repair, record; coverage loop",
    )
)
