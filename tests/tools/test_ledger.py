"""The ledger's exactly-once rule: a chunk's samples, calls and status in one transaction."""

from pathlib import Path

import pytest

from prepbench.tools.chunking import chunk_document
from prepbench.tools.errors import LedgerError
from prepbench.tools.ingest import ingest_corpus
from prepbench.tools.ledger import CallRecord, ChunkOutcome, RunFolder, SampleRecord

SLICE = Path(__file__).resolve().parents[2] / "corpora" / "finance-openstax"


@pytest.fixture()
def ledger(tmp_path):
    corpus = ingest_corpus(SLICE)
    doc = corpus.documents[0]
    chunks = chunk_document(doc)[:6]
    led = RunFolder(tmp_path / "run")
    led.initialize(
        {"skill_name": "finance"},
        [
            {
                "doc_id": doc.doc_id,
                "rel_path": doc.rel_path,
                "format": "markdown",
                "content_hash": doc.content_hash,
                "chars": doc.chars,
                "converter": "raw",
                "n_chunks": len(chunks),
                "status": "ingested",
                "reason": None,
            }
        ],
        chunks,
    )
    yield led, chunks
    led.close()


def sample(i, chunk_id):
    return SampleRecord(
        "concept_qa", {"sample_type": "concept_qa", "chunk_id": chunk_id, "question": f"Q{i}?", "answer": f"A{i}."}, "accepted"
    )


def test_initialize_is_wal_and_all_pending(ledger):
    led, chunks = ledger
    assert led.journal_mode() == "wal"
    assert led.counts()["chunks"] == {"total": 6, "pending": 6, "kept": 0, "skipped": 0, "failed": 0}
    assert [c.chunk_id for c in led.todo_chunks()] == [c.chunk_id for c in chunks]
    with pytest.raises(Exception):
        led.initialize({}, [], chunks)


def test_record_twice_writes_once(ledger):
    led, chunks = ledger
    cid = chunks[0].chunk_id
    out = ChunkOutcome(
        cid, "kept", samples=[sample(1, cid), sample(2, cid)], calls=[CallRecord("generate", "m", 10, 5, 0.01, 0.2)]
    )
    assert led.record_chunk(out) is True
    assert led.record_chunk(out) is False
    c = led.counts()
    assert c["samples"]["accepted"] == 2
    assert c["calls"]["count"] == 1 and c["calls"]["input_tokens"] == 10
    assert c["chunks"]["kept"] == 1
    assert cid not in [x.chunk_id for x in led.todo_chunks()]


def test_transaction_is_atomic_on_failure(ledger, monkeypatch):
    led, chunks = ledger
    cid = chunks[1].chunk_id
    bad = SampleRecord("concept_qa", {"not_json": object()}, "accepted")  # json.dumps fails mid-transaction
    with pytest.raises(TypeError):
        led.record_chunk(ChunkOutcome(cid, "kept", samples=[sample(1, cid), bad], calls=[CallRecord("generate", "m")]))
    c = led.counts()
    assert c["samples"] == {"accepted": 0, "rejected": 0}
    assert c["calls"]["count"] == 0
    assert c["chunks"]["pending"] == 6


def test_skip_needs_reason_and_failed_is_retried(ledger):
    led, chunks = ledger
    with pytest.raises(ValueError):
        led.record_chunk(ChunkOutcome(chunks[2].chunk_id, "skipped"))
    assert led.record_chunk(ChunkOutcome(chunks[2].chunk_id, "skipped", skip_reason="navigation"))
    cid = chunks[3].chunk_id
    rej = SampleRecord("concept_qa", {"q": "x"}, "rejected", "schema", "missing")
    assert led.record_chunk(ChunkOutcome(cid, "failed", samples=[rej], error="TimeoutError: read timeout"))
    todo = [c.chunk_id for c in led.todo_chunks(max_attempts=3)]
    assert cid in todo and chunks[2].chunk_id not in todo
    # the retry replaces the failed attempt's rows and counts the attempt
    assert led.record_chunk(ChunkOutcome(cid, "kept", samples=[sample(9, cid)]))
    row = next(r for r in led.chunk_rows() if r["chunk_id"] == cid)
    assert (row["status"], row["attempts"]) == ("kept", 2)
    assert len(led.sample_rows(chunk_id=cid)) == 1
    # a chunk that failed max_attempts times is no longer retried
    cid2 = chunks[4].chunk_id
    for _ in range(2):
        led.record_chunk(ChunkOutcome(cid2, "failed", error="boom"))
    assert cid2 not in [c.chunk_id for c in led.todo_chunks(max_attempts=2)]


def test_accepted_samples_in_canonical_order(ledger, tmp_path):
    led, chunks = ledger
    led.record_chunk(ChunkOutcome(chunks[5].chunk_id, "kept", samples=[sample(5, chunks[5].chunk_id)]))
    led.record_chunk(
        ChunkOutcome(chunks[0].chunk_id, "kept", samples=[sample(0, chunks[0].chunk_id), sample(1, chunks[0].chunk_id)])
    )
    got = [s["question"] for s in led.accepted_samples()]
    assert got == ["Q0?", "Q1?", "Q5?"]
    # a second connection (another process) sees committed rows
    other = RunFolder.open(led.path, readonly=True)
    assert len(other.sample_rows()) == 3
    assert other.sample_rows()[0]["data"]["sample_type"] == "concept_qa"
    other.close()


def test_revisit_is_written_once(ledger):
    led, chunks = ledger
    cid = chunks[0].chunk_id

    def s(q):
        return SampleRecord(
            "concept_qa", {"sample_type": "concept_qa", "chunk_id": cid, "question": q, "answer": "A."}, "accepted"
        )

    assert led.record_chunk(ChunkOutcome(cid, "kept", samples=[s("Q1?")]))
    assert led.revisit_candidates("concept_qa", 10) == [cid]  # only kept chunks
    # not planned: nothing written
    assert led.record_revisit(ChunkOutcome(cid, "kept", samples=[s("Q2?")]), ["concept_qa"]) is False
    assert led.plan_revisits([(cid, "concept_qa")]) == 1
    with pytest.raises(LedgerError):
        led.plan_revisits([(cid, "process_qa")])  # round 1 is still open
    assert led.planned_revisits() == [(cid, ["concept_qa"])]
    # a repeated sample (same id) is ignored, the new one gets the next position
    assert led.record_revisit(ChunkOutcome(cid, "kept", samples=[s("Q1?"), s("Q2?")]), ["concept_qa"]) is True
    assert led.record_revisit(ChunkOutcome(cid, "kept", samples=[s("Q3?")]), ["concept_qa"]) is False
    rows = [(r["pos"], r["data"]["question"]) for r in led.sample_rows(chunk_id=cid)]
    assert rows == [(0, "Q1?"), (1, "Q2?")]
    assert next(r["n_accepted"] for r in led.chunk_rows() if r["chunk_id"] == cid) == 2
    assert led.revisit_counts() == {"rounds": 1, "planned": 0, "done": 1, "failed": 0, "accepted": 1}
    assert led.revisit_candidates("concept_qa", 10) == []
