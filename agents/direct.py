"""The direct agent: the plain-LLM baseline.

One prompt per chunk asks a chat model for question-answer samples in the skill's output
format (its JSON Schemas), with no triage, no skill instructions, no repair: what a
practitioner gets by prompting a model directly. The replies go through the same
validators, ledger and export as the other agent families, so a comparison changes only
the agent.

``direct_mode="book"`` is the long-context variant (like the paper's long-context LLM
generators): the chunks of a document are packed, in order, into as few prompts as the
model's context allows (``context_tokens``, estimated at 4 characters per token, minus
the output budget), and the model assigns each sample to a chunk by its id.

Per chunk: samples are validated (schema, the skill's filter rules, duplicates) in chunk
order and recorded with the chunk's status in one ledger transaction: ``kept`` with at
least one accepted sample, else ``skipped`` (``all_rejected`` when every candidate was rejected,
``no_candidates`` when the reply held none); a call that failed for
good marks the chunk ``failed`` with the error (retried by the next run); a circuit-open
stop leaves the chunks of unfinished calls ``pending``. Requests stream through
``2 x concurrency`` lanes and each chunk commits as soon as every earlier chunk has (the
in-order committer the skill agent uses), so the progress bar moves per chunk and a kill
loses at most the replies in flight.
"""

from __future__ import annotations

import asyncio
import json
from typing import Any

from prepbench.agents.models.ratelimit import ModelCallError
from prepbench.agents.models.structured import StructuredConfig, ainvoke_json
from prepbench.tools.chunking import Chunk
from prepbench.tools.errors import PrepbenchError
from prepbench.tools.ledger import CallRecord
from prepbench.tools.validate import Candidate, Verdict

from . import interrupt
from .base import AgentFamily, ChunkRecorder, StopRun, public_schemas, register_family, require_chat_model
from .scheduler import Scheduler

DIRECT_MODES = ("chunk", "book")
CHARS_PER_TOKEN = 4
PROMPT_OVERHEAD_TOKENS = 1500


def direct_prompt(skill, chunks: list[Chunk], per_chunk: int) -> str:
    """The baseline prompt: the skill's output format and the chunk(s), nothing else.

    Args:
        skill: supplies the sample types and their JSON Schemas (the output format only).
        chunks: one chunk (chunk mode) or consecutive chunks of one document (book mode).
        per_chunk: how many samples to ask for per chunk.
    """
    parts = [
        f"Create question-answer training samples from the text below, for fine-tuning a model on {skill.domain}.",
        "",
        f"Write up to {per_chunk} samples per text. Output a JSON array; every element is one sample, a JSON "
        'object that validates against one of these JSON Schemas (its "sample_type" field names which):',
    ]
    for t, schema in public_schemas(skill).items():
        parts += ["", f"### {t}", "```json", json.dumps(schema, ensure_ascii=False), "```"]
    parts += [
        "",
        'Set "chunk_id" to the id of the text a sample comes from, and copy the sentences of the text '
        'that support the answer, verbatim, into "evidence".',
        "",
    ]
    for c in chunks:
        parts += [f'<chunk id="{c.chunk_id}">', c.text, "</chunk>", ""]
    parts.append("Reply with the JSON array only.")
    return "\n".join(parts)


def pack_book(chunks: list[Chunk], budget_chars: int) -> list[list[Chunk]]:
    """Consecutive chunks of one document per group, each group's text within ``budget_chars``.

    A chunk longer than the budget forms a group of its own.
    """
    groups: list[list[Chunk]] = []
    cur: list[Chunk] = []
    size = 0
    for c in chunks:
        if cur and (c.doc_id != cur[0].doc_id or size + c.chars > budget_chars):
            groups.append(cur)
            cur, size = [], 0
        cur.append(c)
        size += c.chars + 40
    if cur:
        groups.append(cur)
    return groups


class DirectAgent:
    """Runs the direct baseline over a run context (see :func:`run_direct`)."""

    def __init__(self, ctx: Any):
        gen = ctx.generator
        require_chat_model("direct", gen)
        self.ctx = ctx
        self.chat = gen.chat
        self.skill = ctx.skill
        self.recorder = ChunkRecorder(ctx)
        self.mode = ctx.options.model_options.direct_mode
        if self.mode not in DIRECT_MODES:
            raise PrepbenchError(f"unknown --direct-mode '{self.mode}' (choose {', '.join(DIRECT_MODES)})")
        self.context_tokens = int(ctx.options.model_options.context_tokens)
        self.per_chunk = max(1, sum(self.skill.target(t).per_chunk for t in self.skill.chunk_types))
        self.concurrency = max(1, int(ctx.options.concurrency))
        base = getattr(gen, "structured", None) or StructuredConfig()
        self.structured = base

    async def _call(self, group: list[Chunk]) -> tuple[list[Any], list[CallRecord]]:
        from langchain_core.messages import HumanMessage

        cfg = self.structured
        if len(group) > 1:  # book mode: room for every chunk's samples
            want = min(cfg.max_tokens_cap, max(cfg.max_tokens, 400 * self.per_chunk * len(group) // 2))
            cfg = StructuredConfig(
                mode=cfg.mode, max_tokens=want, max_tokens_cap=max(want, cfg.max_tokens_cap), parse_retries=cfg.parse_retries
            )
        prompt = direct_prompt(self.skill, group, self.per_chunk)
        return await ainvoke_json(
            self.chat, [HumanMessage(content=prompt)], node="direct", expect="array", schema=None, name="samples", config=cfg
        )

    def _record_group(self, group: list[Chunk], items: list[Any], calls: list[CallRecord]) -> int:
        """Screen a reply's samples, assign each to its chunk, and record the group's chunks in order."""
        by_id = {c.chunk_id: c for c in group}
        per_chunk: dict[str, list[Candidate]] = {c.chunk_id: [] for c in group}
        for it in items:
            if not isinstance(it, dict):
                per_chunk[group[0].chunk_id].append(Candidate({"value": it}, Verdict(False, "schema", "not a JSON object")))
                continue
            s = dict(it)
            cid = s.get("chunk_id") if len(group) > 1 else group[0].chunk_id
            if cid not in by_id:
                why = Verdict(False, "unknown_chunk", f"chunk_id {cid!r} is not one of the prompt's chunks")
                per_chunk[group[0].chunk_id].append(Candidate(s, why))
                continue
            s["chunk_id"] = cid
            per_chunk[cid].append(self.recorder.screen(s, by_id[cid].text))
        recorded = 0
        for i, c in enumerate(group):  # the group's calls are accounted once, with its first chunk
            recorded += int(self.recorder.decided(c.chunk_id, per_chunk[c.chunk_id], calls if i == 0 else []))
        return recorded

    def _record_failed(self, group: list[Chunk], err: ModelCallError) -> None:
        for i, c in enumerate(group):
            self.recorder.failed(c.chunk_id, err.calls if i == 0 else [], str(err))

    def _groups(self) -> list[list[Chunk]]:
        """The work units in corpus order: one chunk each, or (book mode) the packed groups."""
        todo = self.ctx.ledger.todo_chunks(max_attempts=self.ctx.options.max_attempts)
        if self.mode != "book":
            return [[c] for c in todo]
        out_budget = min(int(self.structured.max_tokens_cap or self.structured.max_tokens), self.context_tokens // 4)
        budget_chars = max(2000, (self.context_tokens - out_budget - PROMPT_OVERHEAD_TOKENS) * CHARS_PER_TOKEN)
        return pack_book(todo, budget_chars)

    async def _lane(self) -> None:
        """Take the next group, ask the model, hand the reply (or its failure) to the in-order committer."""
        while True:
            batch, number = await self.scheduler.next_batch(self.ctx.stopped)
            if not batch:
                return
            group = batch[0]
            try:
                res: Any = await self._call(group)
            except (ModelCallError, StopRun) as e:
                res = e
            await self.scheduler.finish(number, (group, res))

    def _commit(self, item: tuple[list[Chunk], Any]) -> None:
        """Record one finished group (in corpus order): its chunks kept/skipped, failed, or left pending on a stop."""
        group, res = item
        if isinstance(res, StopRun):
            self.ctx.halt(res)  # these chunks stay pending; the attempts are accounted
            self.recorder.unrecorded(group[0].chunk_id, getattr(res, "calls", []))
        elif isinstance(res, ModelCallError):
            self._record_failed(group, res)
        else:
            items, calls = res
            self._record_group(group, items, calls)

    async def arun(self) -> None:
        """Stream the groups through ``2 x concurrency`` lanes; each chunk commits as soon as every
        earlier one has (the in-order committer of :mod:`prepbench.agents.scheduler`), so a kill
        loses at most the replies in flight. With ``--batch`` every group is a lane (up to the
        provider's requests per job), so their requests go into one batch job."""
        groups = self._groups()
        batch = getattr(getattr(self.ctx.generator, "chat", None), "batch", None)
        lanes = min(batch.cap, max(1, len(groups))) if batch is not None else min(256, 2 * self.concurrency)
        self.scheduler = Scheduler(lanes, 1, commit=self._commit)
        self.scheduler.start(groups)
        try:
            async with asyncio.TaskGroup() as tg:
                for _ in range(lanes):
                    tg.create_task(self._lane())
        except BaseExceptionGroup as eg:  # a lane's own error (a bug), as with one lane
            raise eg.exceptions[0]


def run_direct(ctx: Any) -> None:
    """Run the direct baseline over the run's chunks to do (pending, failed with attempts left).

    Args:
        ctx: the pipeline's :class:`~prepbench.tools.run.RunContext`; options read:
            ``concurrency``, ``batch_size``, ``max_attempts``, and ``direct_mode``
            (``chunk`` | ``book``) and ``context_tokens`` (book mode's context window, tokens)
            from the options or their ``model_options``.

    Raises:
        ModelSpecError: the generator is not a chat model (e.g. ``extractive``).
        PrepbenchError: unknown direct mode.
    """
    asyncio.run(interrupt.guarded(DirectAgent(ctx).arun(), lambda: ctx.recorded))  # Ctrl-C stops it within seconds


#: the entry point of ``prepbench.agent_families`` (pyproject.toml)
FAMILY = register_family(
    AgentFamily(
        "direct",
        run_direct,
        needs_chat_model=True,
        summary="plain-LLM baseline: one prompt per chunk (or per book) in the skill's output format",
    )
)
