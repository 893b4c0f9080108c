"""The ledger's tables (sqlite-utils); created when missing, and migrated in place, so an older
run folder opens as is.

``run`` key/value config; ``documents``; ``chunks`` (status, skip_reason, error, detail,
attempts); ``samples`` (every candidate with its verdict); ``calls`` (every attempt: tokens, cost,
latency from send, error, the raw reply where it matters); ``revisits`` (the coverage loop's plan,
with the error and attempts of a failed revisit); ``events`` (what happened to the run as a whole:
the server probe and the structured-output choice, stops and their reasons, interruptions);
``contamination`` (accepted samples flagged by benchmark decontamination, with the matching test
item and the judge's verdict). Only
:class:`~prepbench.tools.ledger.RunFolder` uses them.

Migrations (:func:`migrate`, run when a run folder is opened for writing): columns added since
a ledger was made are added empty; an ``all_rejected`` chunk's rule counts, which ledgers of
schema 1 kept in ``error``, move to ``detail``. A read-only open never migrates; the readers
take the rows as they are (``SELECT *``) and treat a missing column as empty.
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
    "detail": str,
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
    "reply": str,
    "created_at": float,
}
REVISITS = {
    "chunk_id": str,
    "sample_type": str,
    "round": int,
    "status": str,  # planned | done | failed
    "n_accepted": int,
    "n_rejected": int,
    "error": str,
    "attempts": int,
    "created_at": float,
}
EVENTS = {
    "id": int,
    "kind": str,  # probe | stop | interrupted | finished
    "message": str,
    "data": str,  # JSON
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
    if "events" not in names:
        db["events"].create(EVENTS, pk="id")
    migrate(db)
    ensure_indexes(db)


#: Indexes for a run of a million chunks (``benchmarks/ledger_scale.py``): the queries of
#: ``status``, the coverage loop's planning and a chunk's samples read them instead of the tables.
INDEXES = {
    "idx_samples_chunk_id": "samples (chunk_id)",  # a chunk's samples: revisits, a failed chunk's retry
    "idx_samples_status_type": "samples (status, sample_type, chunk_idx)",  # per-type counts, revisit planning
    "idx_samples_status_rule": "samples (status, rule)",  # rejections per rule
    "idx_chunks_status_reason": "chunks (status, skip_reason)",  # skip reasons
    "idx_chunks_doc": "chunks (doc_id, status, n_accepted)",  # per-document coverage
}


def ensure_indexes(db: Any) -> None:
    """Create the :data:`INDEXES` a ledger lacks (an older one gets them the first time it is
    opened for writing; building them on a million-chunk ledger takes seconds, once)."""
    have = {r[0] for r in db.execute("SELECT name FROM sqlite_master WHERE type = 'index'").fetchall()}
    missing = [(n, on) for n, on in INDEXES.items() if n not in have]
    if missing:
        with db.atomic():
            for name, on in missing:
                db.execute(f"CREATE INDEX IF NOT EXISTS {name} ON {on}")


#: Columns added after schema 1, by table (a ledger of schema 1 gets them, empty).
ADDED_COLUMNS = {"chunks": ("detail",), "calls": ("reply",), "revisits": ("error", "attempts")}
TABLES = {"chunks": CHUNKS, "calls": CALLS, "revisits": REVISITS}


def migrate(db: Any) -> bool:
    """Bring an older ledger to the current schema in one transaction; True when anything changed.

    Adds the columns of :data:`ADDED_COLUMNS` a table lacks, and moves the rule counts of
    ``all_rejected`` skips (``all N candidates rejected: ...``) from ``error`` to ``detail``.
    """
    missing = [(t, c) for t, cols in ADDED_COLUMNS.items() for c in cols if c not in db[t].columns_dict]
    if not missing:
        return False
    with db.atomic():
        for table, col in missing:
            default = 0 if TABLES[table][col] is int else None
            db[table].add_column(col, TABLES[table][col], not_null_default=default)
        if ("chunks", "detail") in missing:
            db.execute(
                "UPDATE chunks SET detail = error, error = NULL "
                "WHERE status = 'skipped' AND skip_reason = 'all_rejected' AND error LIKE 'all % rejected%'"
            )
    return True
