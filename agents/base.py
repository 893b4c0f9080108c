"""The generator interface shared by the agent families.

A *generator* is what turns a chunk into candidate samples: the offline ``extractive``
generator (rule-based, no LLM) or a chat model. The skill-guided graph
(:mod:`prepbench.agents.skill`) calls it at its triage, generate, repair and judge
nodes; the graph, not the generator, validates and records.

Every method returns the :class:`~prepbench.tools.ledger.CallRecord` objects of the calls
it made (tokens, cost, latency) so the ledger can account for them in the chunk's
transaction.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable, Protocol, runtime_checkable

from prepbench.tools.chunking import Chunk
from prepbench.tools.errors import ModelSpecError, PrepbenchError
from prepbench.tools.ledger import CallRecord
from prepbench.tools.skills import Skill


@dataclass
class Triage:
    """A triage decision for one chunk.

    Attributes:
        keep: generate samples from the chunk.
        skip_reason: when not kept, one of the skill's ``coverage.yaml`` skip reasons.
        detail: a short human-readable explanation.
        sample_types: when kept, the sample types worth generating (empty = all of the skill's).
    """

    keep: bool
    skip_reason: str | None = None
    detail: str = ""
    sample_types: list[str] = field(default_factory=list)


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

    async def agenerate(
        self, chunk: Chunk, skill: Skill, targets: dict[str, int]
    ) -> tuple[list[dict], list[CallRecord]]:
        """Candidate samples for ``chunk``: up to ``targets[sample_type]`` of each type.

        Each candidate is a dict with ``sample_type``, ``chunk_id``, ``evidence`` (verbatim
        spans of the chunk) and the fields of its type's schema.
        """
        ...

    async def arepair(
        self, chunk: Chunk, skill: Skill, candidate: dict, feedback: str
    ) -> tuple[dict | None, list[CallRecord]]:
        """A corrected candidate given validator ``feedback``, or None when it cannot repair."""
        ...


class StopRun(Exception):
    """Raised by a generator when the run must stop cleanly (e.g. the model server is down
    for good and the circuit breaker opened). Chunks not yet recorded stay ``pending`` so a
    later run picks them up; nothing is marked failed."""


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
    """

    name: str
    run: Callable[[Any], None]
    needs_chat_model: bool
    coverage_loop: bool = False
    summary: str = ""


FAMILIES: dict[str, AgentFamily] = {}


def register_family(family: AgentFamily) -> AgentFamily:
    """Add ``family`` to :data:`FAMILIES` (a later registration of the same name replaces it)."""
    FAMILIES[family.name] = family
    return family


def get_family(name: str) -> AgentFamily:
    """The registered family ``name``; the three shipped families are imported on first use.

    Raises:
        PrepbenchError: unknown family (the message lists the known ones).
    """
    if not FAMILIES:
        import prepbench.agents.direct  # noqa: F401  (each module registers its family)
        import prepbench.agents.react  # noqa: F401
        import prepbench.agents.skill  # noqa: F401
    if name not in FAMILIES:
        raise PrepbenchError(f"unknown agent '{name}' (choose {', '.join(FAMILIES)})")
    return FAMILIES[name]


def family_names() -> list[str]:
    """Names of the registered families, in registration order (skill, direct, react)."""
    get_family("skill")
    return list(FAMILIES)


def require_chat_model(family: str, generator: Any, model: str | None = None) -> None:
    """Refuse a chat-model family on the offline generator.

    Raises:
        ModelSpecError: ``generator`` is not a chat model.
    """
    if not getattr(generator, "needs_chat_model", False):
        what = model or getattr(generator, "name", generator)
        raise ModelSpecError(f"agent '{family}' needs a chat model (e.g. --model openai:<model>); '{what}' is the offline generator")
