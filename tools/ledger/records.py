"""What a chunk's transaction writes: its samples with their verdicts, its calls, its outcome."""

from __future__ import annotations

from dataclasses import dataclass, field

from prepbench.tools.hashing import canonical_json, short_id


@dataclass
class SampleRecord:
    """A candidate sample with its verdict, as written to the ledger.

    ``contamination``: an accepted sample's decontamination flags (the gate's step under
    ``run --decontaminate``), each ``{benchmark, rule, item, evidence, cosine, judge,
    judge_detail, excluded}``; written in the same transaction as the sample.
    """

    sample_type: str
    data: dict
    status: str  # accepted | rejected
    rule: str | None = None
    detail: str = ""
    attempts: int = 1
    contamination: list[dict] = field(default_factory=list)


@dataclass
class CallRecord:
    """One generator/model call (tokens, USD cost, seconds)."""

    node: str
    model: str
    input_tokens: int = 0
    output_tokens: int = 0
    cost_usd: float = 0.0
    latency_s: float = 0.0
    ok: bool = True
    error: str | None = None


@dataclass
class ChunkOutcome:
    """Everything recorded for one chunk in one transaction."""

    chunk_id: str
    status: str  # kept | skipped | failed
    samples: list[SampleRecord] = field(default_factory=list)
    calls: list[CallRecord] = field(default_factory=list)
    skip_reason: str | None = None
    error: str | None = None


def sample_id(chunk_id: str, sample_type: str, data: dict) -> str:
    """Stable id of a sample: hash of its chunk, type and canonical JSON content."""
    return short_id(chunk_id, sample_type, canonical_json(data))
