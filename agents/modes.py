"""The generation modes (``prepbench generate``): AgoraBench's three settings, run on slots.

AgoraBench (Kim et al., ACL 2025, "Evaluating Language Models as Synthetic Data Generators",
§3) asks a generator for a fixed number of instances in three settings: **instance
generation** (a new, harder instance after a few seed demonstrations, on a theme),
**response generation** (the response to a seed instruction) and **quality enhancement**
(a better version of a seed instance). The slots, their inputs and their place in the
ledger are :mod:`prepbench.tools.slots`'; this module sends each slot's prompt (the skill's
``prompts/<mode>.md``) to the chat model and records what comes back:

1. the reply (a JSON object: ``instruction`` and ``response``; response mode: ``response``)
   becomes a candidate of the skill's generation-mode sample type, with the seeds it was made
   from as its ``evidence``;
2. the gate screens it (schema, the skill's filter rules, the seed-aware step: no copy of a
   seed, no n-gram shared with a ``--decontaminate`` benchmark's test item); a rejected reply, or one that is not
   the JSON asked for (rule ``reply_format``), is asked again with the rejection as feedback,
   up to ``slot_retries`` times;
3. every candidate, accepted or not, and every call are recorded with the slot's status in
   one ledger transaction (:class:`~prepbench.agents.base.ChunkRecorder`): ``kept`` with its
   accepted instance, or ``skipped`` ``all_rejected`` with the rules that rejected it.

Duplicates of earlier accepted instances are decided when a slot is recorded, in slot order,
and are not asked again: slots run concurrently (``concurrency`` lanes), but commit strictly in
slot order (:class:`~prepbench.agents.scheduler.Scheduler`), so the accepted set, and the
export, are those of one lane, and a run killed at any moment resumes to the same set.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from typing import Any, Callable, Sequence

from prepbench.agents.base import ChunkRecorder, StopRun, one_line, require_chat_model
from prepbench.agents.models.ratelimit import ModelCallError
from prepbench.agents.models.structured import StructuredConfig, StructuredOutputError, ainvoke_json
from prepbench.agents.scheduler import Scheduler
from prepbench.agents.workers import WorkerContext, WorkerRecipe, open_pool, serve_run
from prepbench.tools.chunking import Chunk
from prepbench.tools.ledger import CallRecord
from prepbench.tools.run import RunContext, finish_run
from prepbench.tools.slots import GenerateOptions, Seed, prepare_generate, slot_input
from prepbench.tools.validate import Candidate, Verdict

_PAIR = {
    "type": "object",
    "properties": {"instruction": {"type": "string"}, "response": {"type": "string"}},
    "required": ["instruction", "response"],
}
#: The JSON object each mode's reply must be.
REPLY_SCHEMAS: dict[str, dict] = {
    "instance": _PAIR,
    "response": {"type": "object", "properties": {"response": {"type": "string"}}, "required": ["response"]},
    "enhance": _PAIR,
}
#: The rule of a reply that is not the JSON object asked for (unparseable, cut, refused).
REPLY_FORMAT_RULE = "reply_format"


def slot_prompt(skill: Any, slot: dict, feedback: str = "") -> str:
    """The prompt of one slot: the skill's ``prompts/<mode>.md`` with that mode's variables.

    Raises:
        SkillError: the template fails to render (names the file and line).
    """
    mode = slot["mode"]
    schema_json = json.dumps(REPLY_SCHEMAS[mode], indent=2)
    if mode == "instance":
        demos = [{"instruction": d["instruction"], "response": d["response"]} for d in slot["demonstrations"]]
        return skill.render_prompt(
            mode, demonstrations=demos, theme=slot.get("theme") or "", schema_json=schema_json, feedback=feedback
        )
    seed = slot["seed"]
    if mode == "response":
        return skill.render_prompt(mode, instruction=seed["instruction"], schema_json=schema_json, feedback=feedback)
    return skill.render_prompt(
        mode, instruction=seed["instruction"], response=seed["response"], schema_json=schema_json, feedback=feedback
    )


def slot_candidate(slot: dict, chunk_id: str, sample_type: str, value: dict) -> dict:
    """The candidate sample of a reply: the skill's generation-mode type, its seeds as ``evidence``.

    Response mode keeps the seed's instruction (only the response is generated); the other
    modes take both fields from the reply. A non-string field is kept as it came, for the
    schema to reject.
    """
    mode = slot["mode"]
    seeds = slot["demonstrations"] if mode == "instance" else [slot["seed"]]
    sample = {
        "sample_type": sample_type,
        "chunk_id": chunk_id,
        "evidence": [d["id"] for d in seeds],
        "instruction": slot["seed"]["instruction"] if mode == "response" else value.get("instruction"),
        "response": value.get("response"),
        "mode": mode,
    }
    if mode == "instance" and slot.get("theme"):
        sample["theme"] = slot["theme"]
    return {k: v for k, v in sample.items() if v is not None}


class SlotFailed(Exception):
    """A slot's model call failed for good (the next run retries the slot); ``calls`` holds its records."""

    def __init__(self, message: str, calls: list[CallRecord]):
        super().__init__(message)
        self.calls = calls

    def __reduce__(self):  # it comes back whole from a Ray worker
        return (SlotFailed, (str(self), self.calls))


class ModeRunner:
    """Runs a generation run's slots to do (see the module docstring).

    Args:
        ctx: the context from :func:`~prepbench.tools.slots.prepare_generate`.

    Raises:
        ModelSpecError: the generator is not a chat model.
    """

    def __init__(self, ctx: RunContext, pool: Any = None):
        require_chat_model("generate", ctx.generator, getattr(ctx.options, "model", None))
        self.ctx = ctx
        self.pool = pool
        self.skill = ctx.skill
        self.sample_type = ctx.skill.mode_types[0]
        self.chat = ctx.generator.chat
        self.structured = getattr(ctx.generator, "structured", None) or StructuredConfig()
        self.retries = int(ctx.options.slot_retries)
        self.recorder = ChunkRecorder(ctx)
        lanes = max(1, int(ctx.options.concurrency))
        self.scheduler = Scheduler(lanes, 1, self._commit)
        self._halted = False  # a stop was committed: nothing after it is (the committed slots stay a prefix)

    async def run_slot(self, chunk: Chunk) -> tuple[list[Candidate], list[CallRecord]]:
        """Ask for the slot's instance until the gate's screening accepts one or the retries are spent.

        Returns:
            ``(candidates, calls)``: every reply's candidate with its verdict, in order, and every call.

        Raises:
            SlotFailed: a model call failed for good. StopRun: the circuit opened (its ``calls`` carry the slot's).
        """
        slot = slot_input(chunk)
        calls: list[CallRecord] = []
        cands: list[Candidate] = []
        feedback = ""
        from langchain_core.messages import HumanMessage

        for attempt in range(1, self.retries + 2):
            messages = [HumanMessage(content=slot_prompt(self.skill, slot, feedback))]
            mode = slot["mode"]
            try:
                value, cs = await ainvoke_json(
                    self.chat,
                    messages,
                    node=mode,
                    expect="object",
                    schema=REPLY_SCHEMAS[mode],
                    name=f"{mode}_reply",
                    config=self.structured,
                )
            except StructuredOutputError as e:  # not the JSON asked for: a rejected attempt, asked again
                calls.extend(e.calls)
                cand = {"sample_type": self.sample_type, "chunk_id": chunk.chunk_id, "mode": mode, "attempt": attempt}
                verdict = Verdict(False, REPLY_FORMAT_RULE, one_line(e))
            except ModelCallError as e:
                raise SlotFailed(one_line(e), calls + list(e.calls)) from None
            except StopRun as e:
                e.calls = calls + list(getattr(e, "calls", []))
                raise
            else:
                calls.extend(cs)
                cand = slot_candidate(slot, chunk.chunk_id, self.sample_type, value)
                verdict = self.ctx.validator.screen(cand, None)
            cands.append(Candidate(cand, verdict, attempt))
            if verdict.ok:
                break
            feedback = f"{verdict.rule}: {verdict.detail}"
        return cands, calls

    def _commit(self, state: tuple[list[Chunk], list[Any]]) -> None:
        """Record a finished batch of slots in slot order (called by the scheduler, in order)."""
        for chunk, res in zip(*state):
            if self._halted or isinstance(res, StopRun):
                self._halted = True
                self.recorder.unrecorded(chunk.chunk_id, list(getattr(res, "calls", [])))
            elif isinstance(res, SlotFailed):
                self.recorder.failed(chunk.chunk_id, res.calls, str(res))
            elif isinstance(res, BaseException):
                raise res
            else:
                self.recorder.decided(chunk.chunk_id, *res)

    async def run_batch(self, batch: list[Chunk]) -> list[Any]:
        """Each slot's ``(candidates, calls)``, or the :class:`SlotFailed` / :class:`StopRun` it ended with."""
        results: list[Any] = []
        for chunk in batch:
            try:
                results.append(await self.run_slot(chunk))
            except (StopRun, SlotFailed) as e:
                results.append(e)
        return results

    async def _lane(self) -> None:
        while True:
            batch, number = await self.scheduler.next_batch(self.ctx.stopped)
            if not batch:
                return
            # with --executor ray the slots are asked in a worker; they commit here, in slot order
            results = await (self.pool.submit(batch) if self.pool is not None else self.run_batch(batch))
            if any(isinstance(r, StopRun) for r in results):
                self.ctx.stopped = True
            await self.scheduler.finish(number, (batch, results))

    async def arun(self, todo: Sequence[Chunk]) -> None:
        """Run ``todo`` (slots, in slot order) on the scheduler's lanes."""
        self.scheduler.start(list(todo))
        try:
            async with asyncio.TaskGroup() as tg:
                for _ in range(self.scheduler.lanes):
                    tg.create_task(self._lane())
        except BaseExceptionGroup as eg:  # surface the lane's own error
            raise eg.exceptions[0]


def slot_work(recipe: WorkerRecipe):
    """The generation modes' work in a Ray worker (a :class:`~prepbench.agents.workers.WorkerRecipe`'s
    ``build``): ``async work(batch)`` asks each slot of a batch with the worker's own chat client and
    the run's screener (seeds and n-gram matcher included), as :meth:`ModeRunner.run_batch`."""
    return ModeRunner(WorkerContext(recipe, recipe.generator())).run_batch


def run_generate(
    options: GenerateOptions,
    seeds: Sequence[Seed],
    progress: Callable[[RunContext], Any] | None = None,
    generator: Any = None,
) -> dict[str, Any]:
    """Run (or resume) a generation run end to end: slots, gate, ledger, coverage, export.

    Args:
        options: the run's options (mode, seeds file, ``n``, run seed, skill, model, ...).
        seeds: the seed records, in file order.
        progress: as for :func:`~prepbench.agents.runner.run_pipeline` (a factory of the CLI's bar).
        generator: a ready generator (default: resolved from ``options.model``).

    Returns:
        ``{"coverage", "export", "resumed", "stopped", "seconds", "out"}`` as ``run_pipeline``.

    Raises:
        PrepbenchError: bad options, seeds, skill or model spec (nothing written), or a run folder
            holding a different run.
    """
    from prepbench.agents.runner import closing_pool, make_generator

    t0 = time.perf_counter()
    if generator is None:
        generator = make_generator(options.model, options.model_options)
    require_chat_model("generate", generator, options.model)
    options.executor.check()
    with closing_pool(open_pool(options.executor)) as pool:
        ctx = prepare_generate(options, seeds, generator, pool=pool)
        try:
            if ctx.has_work:
                runner = ModeRunner(ctx, serve_run(ctx, slot_work))
                todo = ctx.ledger.todo_chunks(max_attempts=options.max_attempts)
                with progress(ctx) if progress is not None else contextlib.nullcontext():
                    asyncio.run(runner.arun(todo))
            result = finish_run(ctx)
        finally:
            ctx.ledger.close()
    result.update({"resumed": ctx.resumed, "stopped": ctx.stopped, "seconds": time.perf_counter() - t0, "out": str(ctx.out_dir)})
    return result
