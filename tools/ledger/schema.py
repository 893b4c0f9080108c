"""The ledger's tables (sqlite-utils); created when missing, so an older run folder opens as is.

``run`` key/value config; ``documents``; ``chunks`` (status, skip_reason, error, attempts);
``samples`` (every candidate with its verdict); ``calls`` (tokens, cost, latency); ``revisits``
(the coverage loop's plan); ``contamination`` (accepted samples flagged by benchmark
decontamination, with the matching test item and the judge's verdict). Only :class:`~prepbench.tools.ledger.RunFolder` uses them.
"""

from __future__ import annotations

from typing import Any

DOCUMENTS = {
    "doc_id": str,
    "rel_path": str,
    "format": str,
    "content_hash": str,
    "chars": int,
    "converter": str,
    "n_chunks": int,
    "status": str,
    "reason": str,
}
CHUNKS = {
    "chunk_id": str,
    "idx": int,
    "doc_id": str,
    "doc_path": str,
    "doc_index": int,
    "heading_path": str,
    "start_line": int,
    "end_line": int,
    "chars": int,
    "text": str,
    "status": str,
    "skip_reason": str,
    "error": str,
    "attempts": int,
    "n_accepted": int,
    "n_rejected": int,
    "updated_at": float,
}
SAMPLES = {
    "sample_id": str,
    "chunk_id": str,
    "chunk_idx": int,
    "pos": int,
    "sample_type": str,
    "status": str,
    "rule": str,
    "detail": str,
    "attempts": int,
    "data": str,
    "created_at": float,
}
CALLS = {
    "id": int,
    "chunk_id": str,
    "node": str,
    "model": str,
    "input_tokens": int,
    "output_tokens": int,
    "cost_usd": float,
    "latency_s": float,
    "ok": int,
    "error": str,
    "created_at": float,
}
REVISITS = {
    "chunk_id": str,
    "sample_type": str,
    "round": int,
    "status": str,  # planned | done
    "n_accepted": int,
    "n_rejected": int,
    "created_at": float,
}
CONTAMINATION = {
    "sample_id": str,
    "benchmark": str,
    "rule": str,  # ngram_overlap | embedding_similarity
    "item": str,  # the test item, file:line
    "evidence": str,  # the test item's question (first 300 characters)
    "cosine": float,
    "judge": str,  # contaminated | clean | error | None (not judged)
    "judge_detail": str,
    "excluded": int,  # 1: the sample is left out of the export
    "created_at": float,
}


def create_tables(db: Any) -> None:
    """Create the tables and indexes a ledger lacks (``db``: a ``sqlite_utils.Database``)."""
    names = set(db.table_names())
    if "run" not in names:
        db["run"].create({"key": str, "value": str}, pk="key")
    if "documents" not in names:
        db["documents"].create(DOCUMENTS, pk="doc_id")
    if "chunks" not in names:
        db["chunks"].create(CHUNKS, pk="chunk_id")
        db["chunks"].create_index(["status"])
        db["chunks"].create_index(["idx"], unique=True)
    if "samples" not in names:
        db["samples"].create(SAMPLES, pk="sample_id", foreign_keys=[("chunk_id", "chunks", "chunk_id")])
        db["samples"].create_index(["chunk_idx", "pos"], unique=True)
        db["samples"].create_index(["status"])
    if "calls" not in names:
        db["calls"].create(CALLS, pk="id")
    if "revisits" not in names:
        db["revisits"].create(REVISITS, pk=("chunk_id", "sample_type"))
    if "contamination" not in names:
        db["contamination"].create(CONTAMINATION, pk=("sample_id", "benchmark"))
