"""What the agent families share: the generator interface, the family registry, the chunk recorder.

A *generator* is what turns a chunk into candidate samples: the offline ``extractive``
generator (rule-based, no LLM) or a chat model. The skill-guided graph
(:mod:`prepbench.agents.skill`) calls it at its triage, generate, repair and judge
nodes; the graph, not the generator, validates and records.

Every method returns the :class:`~prepbench.tools.ledger.CallRecord` objects of the calls
it made (tokens, cost, latency) so the ledger can account for them in the chunk's
transaction.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import Any, Callable, Protocol, runtime_checkable

from prepbench.tools.chunking import Chunk
from prepbench.tools.errors import ModelSpecError, PrepbenchError
from prepbench.tools.ledger import CallRecord, ChunkOutcome
from prepbench.tools.skills import Skill
from prepbench.tools.skills.spec import ALL_REJECTED, NO_CANDIDATES
from prepbench.tools.validate import Candidate, Verdict


@dataclass
class Triage:
    """A triage decision for one chunk.

    Attributes:
        keep: generate samples from the chunk.
        skip_reason: when not kept, one of the skill's ``coverage.yaml`` skip reasons.
        detail: a short human-readable explanation.
        sample_types: when kept, the sample types worth generating (empty = all of the skill's).
        supports: sample type -> how many samples the chunk's text holds whole (one per entry of a
            glossary), when that may be more than the type's ``per_chunk``; the agent then asks for
            up to that many, within the type's ``max_per_chunk`` (``coverage.yaml``).
    """

    keep: bool
    skip_reason: str | None = None
    detail: str = ""
    sample_types: list[str] = field(default_factory=list)
    supports: dict[str, int] = field(default_factory=dict)


@runtime_checkable
class Generator(Protocol):
    """What the skill-guided graph needs from a generator.

    Attributes:
        name: the model spec (``"extractive"``, ``"openai:gpt-4o-mini"``...).
        version: generator version, stored in the run config (changing it refuses resume).
        needs_chat_model: False for the offline generator.
    """

    name: str
    version: str
    needs_chat_model: bool

    async def atriage(self, chunk: Chunk, skill: Skill) -> tuple[Triage, list[CallRecord]]:
        """Decide whether to keep ``chunk``; a skip carries a reason from the skill's vocabulary."""
        ...

    async def agenerate(self, chunk: Chunk, skill: Skill, targets: dict[str, int]) -> tuple[list[dict], list[CallRecord]]:
        """Candidate samples for ``chunk``: up to ``targets[sample_type]`` of each type.

        Each candidate is a dict with ``sample_type``, ``chunk_id``, ``evidence`` (verbatim
        spans of the chunk) and the fields of its type's schema.
        """
        ...

    async def arepair(self, chunk: Chunk, skill: Skill, candidate: dict, feedback: str) -> tuple[dict | None, list[CallRecord]]:
        """A corrected candidate given validator ``feedback``, or None when it cannot repair."""
        ...


class StopRun(Exception):
    """Raised by a generator when the run must stop cleanly (e.g. the model server is down
    for good and the circuit breaker opened). Chunks not yet recorded stay ``pending`` so a
    later run picks them up; nothing is marked failed.

    Attributes:
        cause: what stopped the run (a failure kind of :mod:`prepbench.agents.models.faults`:
            ``connection``, ``timeout``, ``server``, ``auth``, ``not_found``...).
        advice: what to do about it (retry later, or change a flag), one line.
        calls: the call records of the attempts that led to the stop.
    """

    def __init__(self, message: str = "", cause: str = "", advice: str = "", calls: Any = ()):
        super().__init__(message)
        self.cause = cause
        self.advice = advice
        self.calls = list(calls)

    def __reduce__(self):  # a stop in a Ray worker comes back to the driver whole (as a StopRun)
        return (StopRun, (str(self), self.cause, self.advice, self.calls))


# ---------------------------------------------------------------------------------------
# agent families: the registry the runner and ``compare`` dispatch through
# ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class AgentFamily:
    """One agent family, as the runner sees it.

    Attributes:
        name: ``skill`` | ``direct`` | ``react`` (what ``--agent`` takes).
        run: ``run(ctx)``: process the run context's chunks to do, recording each through the
            ledger (see :class:`~prepbench.tools.run.RunContext`); sets ``ctx.stopped`` when it
            stopped early with chunks left pending.
        needs_chat_model: the family cannot run on the offline ``extractive`` generator.
        coverage_loop: the family runs the coverage loop (revisits) once every chunk is recorded.
        summary: one line for help texts and reports.
        needs_tool_calling: the model must call tools it is offered (``tool_choice: auto``).
        remote_work: its work units can run in Ray workers (``--executor ray``).
    """

    name: str
    run: Callable[[Any], None]
    needs_chat_model: bool
    coverage_loop: bool = False
    summary: str = ""
    needs_tool_calling: bool = False
    remote_work: bool = False


FAMILIES: dict[str, AgentFamily] = {}
#: the entry-point group through which families are found (prepbench's three, or a package's own)
ENTRY_POINT_GROUP = "prepbench.agent_families"


def register_family(family: AgentFamily) -> AgentFamily:
    """Add ``family`` to :data:`FAMILIES` (a later registration of the same name replaces it)."""
    FAMILIES[family.name] = family
    return family


def _entry_points() -> dict:
    from importlib.metadata import entry_points

    return {ep.name: ep for ep in entry_points(group=ENTRY_POINT_GROUP)}


def get_family(name: str) -> AgentFamily:
    """The family ``name``: registered, else loaded from its ``prepbench.agent_families`` entry point.

    Raises:
        PrepbenchError: unknown family (the message lists the known ones).
    """
    if name not in FAMILIES:
        ep = _entry_points().get(name)
        if ep is not None:
            register_family(ep.load())
    if name not in FAMILIES:
        raise PrepbenchError(f"unknown agent '{name}' (choose {', '.join(family_names())})")
    return FAMILIES[name]


def family_names() -> list[str]:
    """Names of the known families: prepbench's three first (skill, direct, react), then others."""
    names = list(dict.fromkeys([*FAMILIES, *_entry_points()]))
    order = {"skill": 0, "direct": 1, "react": 2}
    return sorted(names, key=lambda n: (order.get(n, 3), n))


def require_chat_model(family: str, generator: Any, model: str | None = None) -> None:
    """Refuse a chat-model family on the offline generator.

    Raises:
        ModelSpecError: ``generator`` is not a chat model.
    """
    if not getattr(generator, "needs_chat_model", False):
        what = model or getattr(generator, "name", generator)
        raise ModelSpecError(
            f"agent '{family}' needs a chat model (e.g. --model openai:<model>); '{what}' is the offline generator"
        )


# ---------------------------------------------------------------------------------------
# the shared chunk recorder: gate -> outcome -> ledger -> progress, written once
# ---------------------------------------------------------------------------------------


def fallback_reason(skill: Skill) -> str:
    """The skip reason of a chunk whose triage named a reason outside the skill's vocabulary:
    ``low_information`` when the skill has it, else its first reason. A chunk triage kept is
    ``all_rejected`` when the gate rejected every candidate and ``no_candidates`` when none came
    (:data:`~prepbench.tools.skills.spec.PREPBENCH_SKIP_REASONS`)."""
    reasons = list(skill.coverage.skip_reasons)
    return "low_information" if "low_information" in reasons else reasons[0]


def rejected_detail(samples: list) -> str:
    """``all N candidates rejected: rule xK, ...`` (rules by count, then name): the detail of an
    ``all_rejected`` skip, stored in the chunk's ``detail`` column."""
    counts = Counter(s.rule or "unknown" for s in samples)
    rules = ", ".join(f"{r} x{n}" for r, n in sorted(counts.items(), key=lambda kv: (-kv[1], kv[0])))
    return f"all {len(samples)} candidate{'s' if len(samples) != 1 else ''} rejected: {rules}"[:300]


def public_schemas(skill: Skill) -> dict[str, dict]:
    """The chunk sample types' JSON Schemas as shown to a model: prepbench's ``x-`` keys and ``$`` keys dropped
    (the generation modes' type is made from seeds, never from a chunk)."""
    return {t: {k: v for k, v in skill.schemas[t].items() if not k.startswith(("x-", "$"))} for t in skill.chunk_types}


def one_line(exc: BaseException) -> str:
    """``Type: first line of the message``, at most 300 characters (the ledger's error column)."""
    msg = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
    return f"{type(exc).__name__}: {msg}"[:300]


def stamp(sample: Any, chunk: Chunk) -> dict:
    """A candidate as a dict carrying its chunk id (a non-dict reply becomes ``{"sample_type": "?", "value": ...}``)."""
    if not isinstance(sample, dict):
        sample = {"sample_type": "?", "value": sample}
    s = dict(sample)
    s["chunk_id"] = chunk.chunk_id
    return s


class ChunkRecorder:
    """Records each chunk's fate the same way for every agent family.

    The family screens candidates with :meth:`screen` (the gate's schema and filter rules) as
    soon as it has them; once a chunk is done it calls :meth:`decided` (kept, or skipped with
    the fallback reason when nothing was accepted), :meth:`skipped` or :meth:`failed`. Each
    builds the :class:`~prepbench.tools.ledger.ChunkOutcome` (duplicates decided by the gate,
    in commit order), writes it in one ledger transaction and advances the progress bar.

    Args:
        ctx: the run context (:class:`~prepbench.tools.run.RunContext`: ledger, gate, skill, progress callback).
    """

    def __init__(self, ctx: Any):
        self.ctx = ctx
        self.gate = ctx.validator
        self.chat = bool(getattr(ctx.generator, "needs_chat_model", False))

    def screen(self, sample: dict, chunk_text: str | None, attempts: int = 1) -> Candidate:
        """A :class:`~prepbench.tools.validate.Candidate` with the gate's screening verdict."""
        return Candidate(sample, self.gate.screen(sample, chunk_text), attempts)

    async def screen_many(self, items: list[tuple[dict, str | None]]) -> list[Verdict]:
        """The gate's screening verdicts of ``(sample, chunk_text)`` items, in order: in the run's
        screening process when it has one (:mod:`prepbench.tools.validate.screening`), else here."""
        screening = getattr(self.ctx, "screening", None)
        if screening is not None:
            return await screening.screen_many(items)
        return self.gate.screen_many(items)

    def commit(self, outcome: ChunkOutcome) -> bool:
        """Write ``outcome`` (exactly once) and report it to the progress callback; False if already recorded.

        The raw replies of its calls are kept only where they explain something: failed calls,
        and every call of a chunk that did not end ``kept`` with all its candidates accepted."""
        keep_replies(outcome)
        if self.ctx.ledger.record_chunk(outcome):
            self.ctx.recorded += 1
            self.ctx.on_recorded(outcome)
            return True
        return False

    def decide(
        self,
        chunk_id: str,
        candidates: list[Candidate],
        calls: list[CallRecord],
        status: str | None = None,
        skip_reason: str | None = None,
    ) -> ChunkOutcome:
        """The outcome of a chunk whose candidates are all screened (duplicates decided and the
        accepted ones registered now): ``kept`` when one is accepted, ``skipped`` ``all_rejected``
        (the rules counted in the detail) when every candidate was rejected, else ``skipped``
        ``no_candidates``; ``status="skipped"`` with a ``skip_reason`` keeps the family's choice."""
        samples = self.gate.admit_chunk(chunk_id, candidates)
        if status == "skipped" and skip_reason:
            return ChunkOutcome(chunk_id, "skipped", samples=samples, calls=calls, skip_reason=skip_reason)
        if any(s.status == "accepted" for s in samples):
            return ChunkOutcome(chunk_id, "kept", samples=samples, calls=calls)
        if samples:  # candidates came, the gate rejected them all: prepbench's own reason, not the content's
            detail = rejected_detail(samples)
            return ChunkOutcome(chunk_id, "skipped", samples=samples, calls=calls, skip_reason=ALL_REJECTED, detail=detail)
        # triage kept it and no candidate came: prepbench's own reason, not a judgement of the content
        if self.chat:
            detail = "the model's replies held no candidate sample"
        else:
            detail = "the offline generator found nothing it can state precisely"
        return ChunkOutcome(chunk_id, "skipped", samples=samples, calls=calls, skip_reason=NO_CANDIDATES, detail=detail)

    def decided(
        self,
        chunk_id: str,
        candidates: list[Candidate],
        calls: list[CallRecord],
        status: str | None = None,
        skip_reason: str | None = None,
    ) -> bool:
        """:meth:`decide`, then :meth:`commit`."""
        return self.commit(self.decide(chunk_id, candidates, calls, status, skip_reason))

    def skipped(self, chunk_id: str, calls: list[CallRecord], reason: str | None) -> bool:
        """Record a chunk triage skipped, with its reason from the skill's vocabulary."""
        return self.commit(ChunkOutcome(chunk_id, "skipped", calls=calls, skip_reason=reason))

    def failed(self, chunk_id: str, calls: list[CallRecord], error: str) -> bool:
        """Record a chunk whose model calls failed for good (the next run retries it)."""
        return self.commit(ChunkOutcome(chunk_id, "failed", calls=calls, error=error[:300]))

    def unrecorded(self, chunk_id: str, calls: list[CallRecord]) -> None:
        """Account the calls of a chunk the run stopped on before it was decided (it stays
        pending, or planned): the attempts were spent, so they are call rows too."""
        if calls:
            self.ctx.ledger.record_calls(calls, chunk_id)

    def revisit(self, chunk_id: str, candidates: list[Candidate], calls: list[CallRecord], sample_types: list[str]) -> bool:
        """Record one revisit of the coverage loop (new samples of ``sample_types``, the chunk stays kept)."""
        samples = self.gate.admit_chunk(chunk_id, candidates)
        outcome = ChunkOutcome(chunk_id, "kept", samples=samples, calls=calls)
        keep_replies(outcome)
        return self.ctx.ledger.record_revisit(outcome, sample_types)

    def revisit_failed(self, chunk_id: str, calls: list[CallRecord], sample_types: list[str], error: str) -> bool:
        """Record a revisit whose generation did not finish: its calls and error; it stays to do
        (the next run plans it again while it has attempts left)."""
        return self.ctx.ledger.record_revisit_failure(chunk_id, sample_types, calls, error)


def keep_replies(outcome: ChunkOutcome) -> None:
    """Drop the raw replies of a clean outcome's successful calls (kept with no rejection): the
    ledger keeps what explains a failure or a rejection, not every reply."""
    clean = outcome.status == "kept" and all(s.status == "accepted" for s in outcome.samples)
    if clean:
        for c in outcome.calls:
            if c.ok:
                c.reply = None


def families_without_tools() -> list[str]:
    """Names of the known families that need no tool calling (what works on a server without it)."""
    return [n for n in family_names() if not get_family(n).needs_tool_calling]


def tools_ignored(family: str, server: str | None, evidence: str, probe_called: bool = False) -> PrepbenchError:
    """The one-line error of a tool-calling family whose model does not call the tools it is offered.

    Args:
        family: the family's name.
        server: the server's URL.
        evidence: what was seen (the probe's answer, or the replies of the run).
        probe_called: the capability probe's tool call worked, so the server passes tools and it is
            the model that does not use them in the family's loop.
    """
    others = ", ".join(f"--agent {n}" for n in families_without_tools())
    where = server or "the model API"
    if probe_called:
        what = (
            f"the model at {where} does not call the tools it is offered ({evidence}), although the server passes "
            "them (the probe's tool call worked): it cannot drive a tool loop"
        )
        fix = "or a model that follows tool calls"
    else:
        what = f"the server at {where} ignores the tools of a request ({evidence}): its chat template has no tool calling"
        fix = (
            "or serve the model with a tool-calling template (llama.cpp's server: --jinja; llama-cpp-python: "
            "--chat_format chatml-function-calling; vLLM: --enable-auto-tool-choice)"
        )
    return PrepbenchError(f"agent '{family}' needs tool calling, but {what}. Use {others} (no tool calling needed), {fix}")
