"""The chat-model generator: the skill's prompts sent to an LLM.

:class:`LLMGenerator` implements the :class:`~prepbench.agents.base.Generator` protocol the
skill-guided graph calls, with the skill's own Jinja templates (``prompts/*.md``):

- ``atriage``: ``triage.md`` → ``{"keep": true, "sample_types": [...]}`` or
  ``{"keep": false, "skip_reason": ...}``.
- ``agenerate``: ``generate_<sample type>.md`` per sample type, sent concurrently, each
  asking for a JSON array of samples that validate against the type's JSON Schema (used
  for guided decoding where the server supports it).
- ``arepair``: ``repair.md`` with the validator's feedback → one corrected object.
- ``ajudge``: the grounded judge, ``judge.md`` → ``(supported, reason)``: the judge sees the
  source chunk and the candidate and rejects claims the chunk does not support.

All calls go through :class:`~prepbench.agents.models.ratelimit.ResilientChat` (concurrency, rate
limits, retries, circuit) and :func:`~prepbench.agents.models.structured.ainvoke_json` (guided
output, parse repair, truncation retries). A failed call raises
:class:`GenerationError` carrying the call records; the circuit raises
:class:`~prepbench.agents.models.ratelimit.CircuitOpenError` (a ``StopRun``).
"""

from __future__ import annotations

import asyncio
import json
from typing import Any

from prepbench.agents.models.ratelimit import ModelCallError, ResilientChat
from prepbench.agents.models.structured import StructuredConfig, ainvoke_json
from prepbench.tools.chunking import Chunk
from prepbench.tools.ledger import CallRecord
from prepbench.tools.skills import Skill

from .base import StopRun, Triage

GENERATOR_VERSION = "llm-1"

TRIAGE_SCHEMA = {
    "type": "object",
    "properties": {
        "keep": {"type": "boolean"},
        "skip_reason": {"type": "string"},
        "sample_types": {"type": "array", "items": {"type": "string"}},
    },
    "required": ["keep"],
}
JUDGE_SCHEMA = {
    "type": "object",
    "properties": {"supported": {"type": "boolean"}, "reason": {"type": "string"}},
    "required": ["supported"],
}


def check_triage(value: Any) -> None:
    """Refuse a triage reply that decides nothing (no boolean ``keep``).

    Raises:
        ValueError: ``keep`` is missing or not a yes/no value.
    """
    keep = value.get("keep") if isinstance(value, dict) else None
    if isinstance(keep, bool) or (isinstance(keep, str) and keep.strip().lower() in ("true", "false", "yes", "no")):
        return
    raise ValueError('the object has no boolean "keep" (true to keep the chunk, false to skip it with a "skip_reason")')


class GenerationError(ModelCallError):
    """A triage/generate/repair/judge step that failed for good; ``calls`` holds its records."""


def _schema_for_guidance(schema: dict) -> dict:
    """A sample schema without the keys guided-decoding servers reject (``$schema``, ``x-*``)."""
    return {k: v for k, v in schema.items() if not k.startswith(("x-", "$"))}


def _all_or_nothing(results: list) -> tuple[list[dict], list[CallRecord]]:
    """The samples and calls of every sample type's generation, or the first failure
    (a StopRun first, then a :class:`GenerationError`) carrying all the calls."""
    samples: list[dict] = []
    calls: list[CallRecord] = []
    errors: list[BaseException] = []
    for res in results:
        if isinstance(res, BaseException):
            if not isinstance(res, (ModelCallError, StopRun)):
                raise res  # a bug or a cancellation: do not swallow
            calls.extend(getattr(res, "calls", []))
            errors.append(res)
            continue
        s, cs = res
        samples.extend(s)
        calls.extend(cs)
    stop = next((e for e in errors if isinstance(e, StopRun)), None)
    if stop is not None:
        stop.calls = calls
        raise stop
    if errors:
        first = errors[0]
        n = f"{len(errors)} of {len(results)} sample types" if len(results) > 1 else "generation"
        raise GenerationError(f"{n} failed: {first}", getattr(first, "kind", "server"), calls)
    return samples, calls


class LLMGenerator:
    """A :class:`~prepbench.agents.base.Generator` backed by a chat model.

    Args:
        chat: the model behind its call policy (see :func:`prepbench.agents.models.specs.make_resilient_chat`).
        structured: structured-output settings.
        judge: ask the skill-guided graph to run :meth:`ajudge` on every candidate that
            passes the validators (a rejection is recorded with rule ``grounded_judge``).
        examples_per_prompt: worked examples of the skill shown per generation prompt.

    Attributes:
        name: the model spec; ``version``: generator version; ``needs_chat_model``: True.
    """

    needs_chat_model = True

    def __init__(
        self, chat: ResilientChat, structured: StructuredConfig | None = None, judge: bool = False, examples_per_prompt: int = 2
    ):
        from langchain_core.messages import HumanMessage

        self._human = HumanMessage
        self.chat = chat
        self.name = chat.spec
        self.version = GENERATOR_VERSION
        self.structured = structured or StructuredConfig()
        self.judge = judge
        self.examples_per_prompt = examples_per_prompt
        self._guided_of: dict[tuple[int, str], tuple[Skill, dict, str]] = {}

    # -- helpers --------------------------------------------------------------------
    async def _json(
        self, prompt: str, node: str, expect: str, schema: dict | None, name: str, check: Any = None, max_items: int | None = None
    ) -> tuple[Any, list[CallRecord]]:
        try:
            return await ainvoke_json(
                self.chat,
                [self._human(content=prompt)],
                node=node,
                expect=expect,
                schema=schema,
                name=name,
                config=self.structured,
                check=check,
                max_items=max_items,
            )
        except ModelCallError as e:
            raise GenerationError(str(e), e.kind, e.calls) from None

    def _guided(self, skill: Skill, sample_type: str) -> tuple[dict, str]:
        """The sample type's schema for guided decoding and its JSON text for the prompt, made once
        per skill and type (they were rebuilt and re-serialised on every generate and repair call)."""
        key = (id(skill), sample_type)
        kept = self._guided_of.get(key)
        if kept is None or kept[0] is not skill:  # the skill object itself is kept, so its id is not reused
            guided = _schema_for_guidance(skill.schemas.get(sample_type) or {})
            kept = self._guided_of[key] = (skill, guided, json.dumps(guided, indent=2, ensure_ascii=False))
        return kept[1], kept[2]

    def _examples(self, skill: Skill, sample_type: str) -> list[dict]:
        return [e for e in skill.examples if e.get("sample_type") == sample_type][: self.examples_per_prompt]

    # -- Generator protocol ---------------------------------------------------------------
    async def atriage(self, chunk: Chunk, skill: Skill) -> tuple[Triage, list[CallRecord]]:
        """Keep or skip ``chunk`` (skip reasons from the skill's ``coverage.yaml``).

        An unknown skip reason or sample type is dropped rather than trusted: an unknown
        reason keeps the chunk's decision to skip but the graph maps it to its fallback. A reply
        without a ``keep`` decision is not a skip: it is asked again with the error, then fails.

        Raises:
            GenerationError: the call failed for good, or no reply held a ``keep`` decision.
        """
        prompt = skill.render_prompt(
            "triage", chunk=chunk, skip_reasons=list(skill.coverage.skip_reasons), sample_types=list(skill.chunk_types)
        )
        value, calls = await self._json(prompt, "triage", "object", TRIAGE_SCHEMA, "triage", check=check_triage)
        keep = value.get("keep")
        if isinstance(keep, str):
            keep = keep.strip().lower() in ("true", "yes", "1")
        types = [t for t in value.get("sample_types") or [] if t in skill.chunk_types]
        if keep:
            return Triage(keep=True, sample_types=types, detail=str(value.get("reason", ""))[:200]), calls
        reason = value.get("skip_reason")
        return Triage(keep=False, skip_reason=str(reason) if reason else None, detail=str(value.get("reason", ""))[:200]), calls

    async def agenerate(self, chunk: Chunk, skill: Skill, targets: dict[str, int]) -> tuple[list[dict], list[CallRecord]]:
        """Candidates for ``chunk``: one call per sample type with ``targets[type] > 0``, concurrently.

        Each candidate gets ``sample_type`` and ``chunk_id`` set (the model is told them,
        but is not trusted to copy them).

        Raises:
            GenerationError: a type's call failed for good: the chunk's generation did not
                finish, so none of it is kept (the chunk is retried); ``calls`` holds every
                type's call records, the successful ones included.
            StopRun: the circuit opened; its ``calls`` hold every type's records too.
        """
        types = [t for t, n in targets.items() if n > 0 and t in skill.schemas]

        async def one(t: str) -> tuple[list[dict], list[CallRecord]]:
            guided, schema_json = self._guided(skill, t)
            prompt = skill.render_prompt(
                f"generate_{t}",
                chunk=chunk,
                sample_type=t,
                schema=skill.schemas[t],
                schema_json=schema_json,
                examples=self._examples(skill, t),
                count=targets[t],
            )
            items, calls = await self._json(prompt, "generate", "array", guided, f"{t}_samples", max_items=max(1, targets[t]))
            out = []
            for it in items[: max(1, targets[t])]:
                if isinstance(it, dict):
                    s = dict(it)
                    s["sample_type"] = t
                    s["chunk_id"] = chunk.chunk_id
                    out.append(s)
            return out, calls

        results = await asyncio.gather(*(one(t) for t in types), return_exceptions=True)
        return _all_or_nothing(results)

    async def arepair(self, chunk: Chunk, skill: Skill, candidate: dict, feedback: str) -> tuple[dict | None, list[CallRecord]]:
        """A corrected candidate from ``repair.md`` with the validator's ``feedback``.

        Returns ``(None, calls)`` when the model's reply is not a usable object.

        Raises:
            GenerationError: the call failed for good (transport, refusal).
        """
        t = candidate.get("sample_type")
        schema = skill.schemas.get(t) if isinstance(t, str) else None
        guided, schema_json = self._guided(skill, t) if schema else ({}, "{}")
        prompt = skill.render_prompt(
            "repair",
            chunk=chunk,
            candidate=candidate,
            feedback=feedback,
            sample_type=t,
            schema=schema or {},
            schema_json=schema_json,
            examples=self._examples(skill, t) if isinstance(t, str) else [],
            count=1,
        )
        try:
            value, calls = await self._json(prompt, "repair", "object", guided if schema else None, "repaired_sample")
        except GenerationError as e:
            if e.kind == "parse":
                return None, e.calls
            raise
        if not value:
            return None, calls
        fixed = dict(value)
        fixed["sample_type"] = t
        fixed["chunk_id"] = chunk.chunk_id
        return fixed, calls

    async def ajudge(self, chunk: Chunk, skill: Skill, candidate: dict) -> tuple[tuple[bool, str], list[CallRecord]]:
        """The grounded judge: is every claim of ``candidate`` supported by ``chunk``?

        Returns ``((supported, reason), calls)``; a skill without ``prompts/judge.md``
        accepts everything without a call.

        Raises:
            GenerationError: the call failed for good.
        """
        if "judge" not in skill.prompts:
            return (True, ""), []
        prompt = skill.render_prompt("judge", chunk=chunk, candidate=candidate)
        value, calls = await self._json(prompt, "judge", "object", JUDGE_SCHEMA, "verdict")
        supported = value.get("supported")
        if isinstance(supported, str):
            supported = supported.strip().lower() in ("true", "yes")
        return (bool(supported), str(value.get("reason") or "")), calls
