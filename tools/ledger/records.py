"""What a chunk's transaction writes: its samples with their verdicts, its calls, its outcome."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

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


#: The most characters of a raw model reply a call row keeps (:attr:`CallRecord.reply`).
REPLY_CHARS = 2000


@dataclass
class CallRecord:
    """One generator/model call attempt (tokens, USD cost, seconds).

    Attributes:
        latency_s: seconds from the moment the request was sent to its reply (or failure);
            waits for a concurrency slot or a rate limit are not in it.
        ok: False for a failed attempt (transport, HTTP error) and for a reply that could not
            be used (unparseable, cut at the token limit, refused); ``error`` says which.
        reply: the raw reply (or the error body), at most :data:`REPLY_CHARS` characters. The
            ledger keeps it only for failed calls and for the calls of chunks that did not end
            ``kept`` with every candidate accepted, so ``prepbench status --show-failures`` can
            show what the model said.
    """

    node: str
    model: str
    input_tokens: int = 0
    output_tokens: int = 0
    cost_usd: float = 0.0
    latency_s: float = 0.0
    ok: bool = True
    error: str | None = None
    reply: str | None = None


@dataclass
class ChunkOutcome:
    """Everything recorded for one chunk in one transaction."""

    chunk_id: str
    status: str  # kept | skipped | failed
    samples: list[SampleRecord] = field(default_factory=list)
    calls: list[CallRecord] = field(default_factory=list)
    skip_reason: str | None = None
    error: str | None = None
    detail: str | None = None  # what the status rests on, e.g. the rules counted of an all_rejected skip


def sample_id(chunk_id: str, sample_type: str, data: dict) -> str:
    """Stable id of a sample: hash of its chunk, type and canonical JSON content."""
    return short_id(chunk_id, sample_type, canonical_json(data))


def sample_of_row(row: tuple[str, str, str, str]) -> dict[str, Any]:
    """The sample dict of a stored ``(sample_id, chunk_id, sample_type, data JSON)`` row: its
    ``sample_id`` first, then the data's fields, with ``sample_type`` and ``chunk_id`` added at the
    end where the data lacks them (the order every export writes).

    Raises:
        ValueError: the data is not JSON.
    """
    sid, chunk_id, sample_type, data = row
    d = json.loads(data)
    d.setdefault("sample_type", sample_type)
    d.setdefault("chunk_id", chunk_id)
    return {"sample_id": sid, **d}


INSERT_SAMPLE = (
    "INSERT OR IGNORE INTO samples (sample_id, chunk_id, chunk_idx, pos, sample_type, status, rule, "
    "detail, attempts, data, created_at) VALUES (?,?,?,?,?,?,?,?,?,?,?)"
)


def sample_row(sid: str, chunk_id: str, idx: int, pos: int, s: SampleRecord, now: float) -> tuple:
    """The ``samples`` table row of one sample record (the values of :data:`INSERT_SAMPLE`)."""
    data = json.dumps(s.data, ensure_ascii=False)
    return (sid, chunk_id, idx, pos, s.sample_type, s.status, s.rule, s.detail, s.attempts, data, now)
