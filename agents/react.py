"""The ReAct agent: a generic tool-using LLM agent with corpus tools and no skill.

Built with LangChain 1.x's agent factory ``langchain.agents.create_agent`` (a LangGraph
graph: model node ⇄ tool node until the model stops calling tools; it replaces LangGraph's
deprecated ``langgraph.prebuilt.create_react_agent``, used here only where the ``langchain``
package is not installed). Reference: Yao et al., "ReAct: Synergizing Reasoning and Acting
in Language Models", ICLR 2023.

The agent gets a generic task prompt (build question-answer training data from a corpus)
and five tools, confined to the run — no shell, no file access; it sees only the run's
chunks in the ledger:

``list_pending_chunks(limit)``   the chunks assigned to this worker that are not yet marked.
``read_chunk(chunk_id)``         a chunk's text, document and heading path.
``search_corpus(query, limit)``  full-text search over all chunks of the run (SQLite FTS5, BM25).
``save_samples(chunk_id, samples)``  candidate samples for a chunk, checked at once by the
                                 skill's validators (JSON Schema, filter rules, duplicates);
                                 the verdicts go back to the agent.
``mark_chunk(chunk_id, status, skip_reason)``  ``kept`` (needs an accepted sample) or
                                 ``skipped`` with a reason; records the chunk's saved samples,
                                 the model calls since the last mark, and the status in one
                                 ledger transaction (the exactly-once unit).

The skill contributes only its output format (the sample types' JSON Schemas, in the
``save_samples`` description), its validators and its skip-reason vocabulary — not its
instructions. Work is split into slices of ``react_slice`` chunks; up to ``concurrency``
workers run at once, each a fresh conversation per slice. A worker whose conversation
ends (or fails) with chunks unmarked restarts on them; chunks a worker cannot finish are
recorded ``failed`` with the reason. Every tool call is appended to
``<run>/react_trace.jsonl``.

ReAct needs a server that passes the tools to the model. The run's capability probe asks first
(:mod:`prepbench.agents.models.probe`); should it miss, :data:`TOOLS_IGNORED_AFTER` replies in text
with no tool call ever made stop every worker (the chunks stay pending) and end the run with a
one-line error that names the limitation and the families that work without tools.
"""

from __future__ import annotations

import asyncio
import json
import time
from pathlib import Path
from typing import Any

from prepbench.agents.models.ratelimit import ModelCallError
from prepbench.tools.chunking import Chunk
from prepbench.tools.corpus import Corpus
from prepbench.tools.ledger import CallRecord
from prepbench.tools.validate import Candidate, Verdict

from . import interrupt
from .base import AgentFamily, ChunkRecorder, StopRun, public_schemas, register_family, require_chat_model, tools_ignored

TRACE_FILE = "react_trace.jsonl"
#: Replies in text, none calling a tool, after which the server is taken to ignore tools.
TOOLS_IGNORED_AFTER = 2


class ToolsIgnored(StopRun):
    """The server answers requests that offer tools without ever calling one (its chat template has no tools)."""


TASK_PROMPT = """You build question-answer training data from a document corpus, using the corpus tools.

Work through the chunks that list_pending_chunks returns, one at a time:
1. read_chunk to read it (search_corpus finds related chunks when you need context);
2. if it teaches something worth learning, write question-answer samples with save_samples;
   fix and save again any sample the tool rejects;
3. mark_chunk it: "kept" once at least one sample was accepted, otherwise "skipped" with one of
   these reasons: {reasons}.
Continue until list_pending_chunks returns no chunks, then reply with a one-line summary."""


def _policy_model_class():
    """A LangChain chat model that sends every request through a ResilientChat (lazy import)."""
    from langchain_core.language_models.chat_models import BaseChatModel
    from langchain_core.outputs import ChatGeneration, ChatResult
    from langchain_core.utils.function_calling import convert_to_openai_tool

    class PolicyChatModel(BaseChatModel):
        """Wraps :class:`~prepbench.agents.models.ratelimit.ResilientChat` (retries, limits, accounting).

        ``sink`` receives the :class:`CallRecord` list of every request.
        """

        chat: Any
        sink: Any
        watch: Any = None

        @property
        def _llm_type(self) -> str:
            return "prepbench-policy"

        def bind_tools(self, tools: Any, *, tool_choice: Any = None, **kwargs: Any):
            formatted = [convert_to_openai_tool(t) for t in tools]
            extra = {"tool_choice": tool_choice} if tool_choice is not None else {}
            return self.bind(tools=formatted, **extra, **kwargs)

        def _generate(self, messages, stop=None, run_manager=None, **kwargs: Any) -> ChatResult:
            """Synchronous use (outside an event loop): run the async path to completion."""
            return asyncio.run(self._agenerate(messages, stop, None, **kwargs))

        async def _agenerate(self, messages, stop=None, run_manager=None, **kwargs: Any) -> ChatResult:
            tools = kwargs.pop("tools", None)
            tool_choice = kwargs.pop("tool_choice", None)
            inner = self.chat.model
            if tools:
                inner = inner.bind_tools(tools, **({"tool_choice": tool_choice} if tool_choice else {}))
            if kwargs:
                inner = inner.bind(**kwargs)
            try:
                msg, calls = await self.chat.ainvoke(messages, node="react", runnable=inner)
            except (ModelCallError, StopRun) as e:
                self.sink(getattr(e, "calls", []))
                raise
            self.sink(calls)
            if self.watch is not None:
                self.watch(msg, bool(tools))
            return ChatResult(generations=[ChatGeneration(message=msg)])

    return PolicyChatModel


def build_react_graph(model: Any, tools: list, prompt: str) -> Any:
    """The ReAct graph: ``langchain.agents.create_agent`` (LangChain 1.x), else LangGraph's prebuilt agent."""
    try:
        from langchain.agents import create_agent
    except ImportError:  # langchain not installed: the same loop from langgraph (deprecated there)
        import warnings

        from langgraph.prebuilt import create_react_agent

        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DeprecationWarning)
            return create_react_agent(model, tools, prompt=prompt)
    return create_agent(model, tools, system_prompt=prompt)


class Worker:
    """One ReAct conversation over a slice of chunks, with the corpus tools bound to it."""

    def __init__(self, agent: "ReactAgent", wid: int, chunk_ids: list[str]):
        self.agent = agent
        self.wid = wid
        self.assigned = list(chunk_ids)
        self.open: set[str] = set(chunk_ids)
        self.staged: dict[str, list[Candidate]] = {}
        self.calls: list[CallRecord] = []
        self.current: str | None = None
        self.last_error: str | None = None

    # -- tools ----------------------------------------------------------------------
    def tools(self) -> list:
        from langchain_core.tools import StructuredTool

        a = self.agent

        async def list_pending_chunks(limit: int = 5) -> str:
            """List chunks still to process (not yet marked): id, document, heading path, size in characters."""
            ids = [c for c in self.assigned if c in self.open][: max(1, min(int(limit), 20))]
            chunks = [a.chunk(c) for c in ids]
            return self._trace(
                "list_pending_chunks",
                {"limit": limit},
                {
                    "chunks": [
                        {"chunk_id": c.chunk_id, "doc_path": c.doc_path, "heading_path": c.heading_path, "chars": c.chars}
                        for c in chunks
                    ],
                    "remaining": len(self.open),
                },
            )

        async def read_chunk(chunk_id: str) -> str:
            """Read one chunk of the corpus: its full text, document and heading path."""
            try:
                c = a.chunk(chunk_id)
            except KeyError:
                return self._trace("read_chunk", {"chunk_id": chunk_id}, {"error": f"unknown chunk id {chunk_id!r}"})
            if chunk_id in self.open:
                self.current = chunk_id
            return self._trace(
                "read_chunk",
                {"chunk_id": chunk_id},
                {
                    "chunk_id": c.chunk_id,
                    "doc_path": c.doc_path,
                    "heading_path": c.heading_path,
                    "text": c.text,
                },
            )

        async def search_corpus(query: str, limit: int = 5) -> str:
            """Full-text search over every chunk of the corpus; returns chunk ids, headings and snippets, best match first."""
            return self._trace("search_corpus", {"query": query, "limit": limit}, {"results": a.corpus.search(query, limit)})

        async def save_samples(chunk_id: str, samples: list[dict]) -> str:
            return self._trace("save_samples", {"chunk_id": chunk_id, "n": len(samples or [])}, self._save(chunk_id, samples))

        async def mark_chunk(chunk_id: str, status: str, skip_reason: str | None = None) -> str:
            """Finish a chunk: status "kept" (needs at least one accepted sample) or "skipped" with a skip_reason."""
            return self._trace(
                "mark_chunk",
                {"chunk_id": chunk_id, "status": status, "skip_reason": skip_reason},
                self._mark(chunk_id, status, skip_reason),
            )

        save_doc = (
            'Save question-answer samples for a chunk. Each sample is a JSON object with "sample_type" one of '
            f'{", ".join(a.skill.chunk_types)}, "chunk_id", "evidence" (sentences copied verbatim from the chunk) '
            "and the fields of its type. JSON Schemas: "
            + json.dumps(a.schemas, ensure_ascii=False)
            + " Returns how many were accepted and why others were rejected."
        )
        return [
            StructuredTool.from_function(coroutine=list_pending_chunks, name="list_pending_chunks"),
            StructuredTool.from_function(coroutine=read_chunk, name="read_chunk"),
            StructuredTool.from_function(coroutine=search_corpus, name="search_corpus"),
            StructuredTool.from_function(coroutine=save_samples, name="save_samples", description=save_doc),
            StructuredTool.from_function(coroutine=mark_chunk, name="mark_chunk"),
        ]

    def _trace(self, tool: str, args: dict, result: dict) -> str:
        text = json.dumps(result, ensure_ascii=False)
        self.agent.trace({"worker": self.wid, "tool": tool, "args": args, "result": text[:300], "t": round(time.time(), 3)})
        return text

    def _save(self, chunk_id: str, samples: Any) -> dict:
        """Screen a chunk's samples at once (the gate, and duplicates of what is already accepted)
        and stage them until the chunk is marked; the verdicts go back to the model."""
        a = self.agent
        if chunk_id not in self.open:
            return {"chunk_id": chunk_id, "error": "not one of your pending chunks (see list_pending_chunks)", "accepted": 0}
        if not isinstance(samples, list):
            return {"chunk_id": chunk_id, "error": "samples must be a JSON array of objects", "accepted": 0}
        chunk = a.chunk(chunk_id)
        staged = self.staged.setdefault(chunk_id, [])
        accepted, rejected = 0, []
        for i, s in enumerate(samples):
            if not isinstance(s, dict):
                cand = Candidate({"value": s}, Verdict(False, "schema", "not a JSON object"))
            else:
                s = dict(s)
                s["chunk_id"] = chunk_id
                cand = a.recorder.screen(s, chunk.text)
                if cand.verdict.ok:
                    cand.verdict = a.gate.check_duplicate(s)
                if cand.verdict.ok and any(c.verdict.ok and a.gate.dedup_text(c.sample) == a.gate.dedup_text(s) for c in staged):
                    cand.verdict = Verdict(False, "exact_duplicate", "same as a sample already saved for this chunk")
            staged.append(cand)
            if cand.verdict.ok:
                accepted += 1
            else:
                rejected.append({"index": i, "rule": cand.verdict.rule, "detail": cand.verdict.detail})
        return {
            "chunk_id": chunk_id,
            "accepted": accepted,
            "rejected": rejected,
            "accepted_total": sum(1 for c in staged if c.verdict.ok),
        }

    def _mark(self, chunk_id: str, status: str, skip_reason: str | None) -> dict:
        """Record a chunk as the model marked it (duplicates across chunks decided now, in mark order)."""
        a = self.agent
        if chunk_id not in self.open:
            return {"ok": False, "error": "not one of your pending chunks (see list_pending_chunks)"}
        staged = self.staged.get(chunk_id, [])
        if status == "kept" and not any(c.verdict.ok for c in staged):
            return {"ok": False, "error": "no accepted sample yet: save samples first, or mark it skipped with a reason"}
        if status == "skipped" and skip_reason not in a.reasons:
            return {"ok": False, "error": f"skip_reason must be one of: {', '.join(a.reasons)}"}
        if status not in ("kept", "skipped"):
            return {"ok": False, "error": "status must be 'kept' or 'skipped'"}
        outcome = a.recorder.decide(chunk_id, staged, self.take_calls(), status=status, skip_reason=skip_reason)
        a.recorder.commit(outcome)
        self.open.discard(chunk_id)
        self.staged.pop(chunk_id, None)
        if self.current == chunk_id:
            self.current = None
        return {
            "ok": True,
            "chunk_id": chunk_id,
            "status": outcome.status,
            "accepted": sum(1 for s in outcome.samples if s.status == "accepted"),
        }

    def take_calls(self) -> list[CallRecord]:
        calls, self.calls = self.calls, []
        return calls

    def fail(self, chunk_id: str, error: str) -> None:
        self.agent.recorder.failed(chunk_id, self.take_calls(), error)
        self.open.discard(chunk_id)
        self.staged.pop(chunk_id, None)

    # -- the loop -------------------------------------------------------------------
    async def run(self) -> None:
        """Conversations until every assigned chunk is marked or failed (bounded restarts).

        Raises:
            StopRun: the model server is down for good (unmarked chunks stay pending).
        """
        from langchain_core.messages import HumanMessage
        from langgraph.errors import GraphRecursionError

        a = self.agent
        model = a.model_cls(chat=a.chat, sink=self.calls.extend, watch=a.watch)
        graph = build_react_graph(model, self.tools(), a.task_prompt)
        stalls = 0
        while self.open and stalls < 2:
            before = len(self.open)
            err: str | None = None
            try:
                await graph.ainvoke(
                    {"messages": [HumanMessage(content=f"Process the pending chunks ({len(self.open)} left).")]},
                    config={"recursion_limit": a.steps_per_chunk * len(self.open) + 8},
                )
            except StopRun:
                a.recorder.unrecorded(self.current, self.take_calls())  # the attempts are accounted
                raise
            except GraphRecursionError:
                err = "react: step limit reached before the chunk was marked"
            except ModelCallError as e:
                err = f"react: {e}"
                if self.current:  # the chunk being worked on when the model failed
                    self.fail(self.current, err)
                    self.current = None
            stalls = stalls + 1 if len(self.open) == before else 0
            if err:
                self.last_error = err
        for cid in list(self.open):
            self.fail(cid, self.last_error or "react: the agent ended without marking this chunk")


class ReactAgent:
    """Runs ReAct workers over a run context (see :func:`run_react`)."""

    def __init__(self, ctx: Any):
        gen = ctx.generator
        require_chat_model("react", gen)
        self.ctx = ctx
        self.chat = gen.chat
        self.skill = ctx.skill
        self.recorder = ChunkRecorder(ctx)
        self.gate = ctx.validator
        opts = ctx.options
        self.slice = max(1, int(opts.model_options.react_slice))
        self.steps_per_chunk = int(opts.model_options.react_steps_per_chunk)
        self.concurrency = max(1, int(opts.concurrency))
        self.reasons = list(self.skill.coverage.skip_reasons)
        self.schemas = public_schemas(self.skill)
        self.task_prompt = TASK_PROMPT.format(reasons=", ".join(self.reasons))
        self.model_cls = _policy_model_class()
        self.corpus = Corpus(ctx.ledger.chunks())
        out_dir = Path(ctx.out_dir)
        self.trace_path = out_dir / TRACE_FILE
        self._trace_fh = self.trace_path.open("a", encoding="utf-8")
        self.tool_replies = self.plain_replies = 0
        self.ignored: ToolsIgnored | None = None

    def watch(self, msg: Any, offered: bool) -> None:
        """Count the model's replies to requests that offered tools. Until one calls a tool,
        :data:`TOOLS_IGNORED_AFTER` replies in text mean the server drops the tools (a chat template
        without tool calling): every worker stops, and the run ends with a one-line error.

        Raises:
            ToolsIgnored: the server ignores the tools it is offered (a StopRun).
        """
        if not offered or self.tool_replies:
            return
        if getattr(msg, "tool_calls", None):
            self.tool_replies += 1
            return
        self.plain_replies += 1
        if self.plain_replies >= TOOLS_IGNORED_AFTER:
            self.ignored = ToolsIgnored(
                f"{self.plain_replies} replies to requests that offered the corpus tools called none of them"
            )
            raise self.ignored

    def chunk(self, chunk_id: str) -> Chunk:
        return self.corpus.chunk(chunk_id)

    def trace(self, entry: dict) -> None:
        self._trace_fh.write(json.dumps(entry, ensure_ascii=False) + "\n")
        self._trace_fh.flush()

    async def arun(self) -> None:
        todo = self.ctx.ledger.todo_chunks(max_attempts=self.ctx.options.max_attempts)
        slices = [[c.chunk_id for c in todo[i : i + self.slice]] for i in range(0, len(todo), self.slice)]
        sem = asyncio.Semaphore(self.concurrency)
        stop = asyncio.Event()

        async def work(i: int, ids: list[str]) -> None:
            async with sem:
                if stop.is_set():
                    return
                try:
                    await Worker(self, i, ids).run()
                except StopRun as e:
                    self.ctx.halt(e)
                    stop.set()

        try:
            await asyncio.gather(*(work(i, ids) for i, ids in enumerate(slices)))
        finally:
            self._trace_fh.close()
        if self.ignored is not None:  # not a fault of the chunks (they stay pending): a server without tool calling
            probed = (getattr(self.chat, "capabilities", None) or {}).get("tools_auto")
            raise tools_ignored("react", getattr(self.chat, "base_url", None), str(self.ignored), probe_called=bool(probed))
        if stop.is_set():
            self.ctx.stopped = True


def run_react(ctx: Any) -> None:
    """Run the ReAct agent over the run's chunks to do (pending, failed with attempts left).

    Args:
        ctx: the pipeline's :class:`~prepbench.tools.run.RunContext`; options read:
            ``concurrency`` (workers at once), ``max_attempts``, and from ``model_options``
            ``react_slice`` (chunks per conversation, default 4) and
            ``react_steps_per_chunk`` (graph step budget per chunk, default 16).

    Raises:
        ModelSpecError: the generator is not a chat model (e.g. ``extractive``).
    """
    asyncio.run(interrupt.guarded(ReactAgent(ctx).arun(), lambda: ctx.recorded))  # Ctrl-C stops it within seconds


#: the entry point of ``prepbench.agent_families`` (pyproject.toml)
FAMILY = register_family(
    AgentFamily(
        "react",
        run_react,
        needs_chat_model=True,
        summary="generic ReAct agent with corpus tools only (list, read, search, save, mark)",
        needs_tool_calling=True,
    )
)
