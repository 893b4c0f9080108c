"""The run ledger: one SQLite file per run (sqlite-utils, WAL).

Tables:

``run``        key/value run config (skill name + content hash, corpus hashes, model spec,
               agent, generator version, chunking parameters) and run state.
``documents``  one row per corpus file (ingested, or skipped with a reason).
``chunks``     one row per chunk: ``pending`` | ``kept`` | ``skipped`` (+ ``skip_reason``,
               ``detail``) | ``failed`` (+ ``error``, ``attempts``).
``samples``    every candidate sample: ``accepted`` | ``rejected`` (+ ``rule``, ``detail``).
``calls``      every generator / model call attempt: tokens in/out, cost (USD), latency from
               send (s), error, the raw reply of failures (bounded); zeros for the offline generator.
``revisits``   the coverage loop's plan: a kept chunk to revisit for one under-covered sample
               type, ``planned`` then ``done`` (+ samples accepted/rejected) or ``failed``
               (+ ``error``, retried by the next run), with its round (:mod:`.revisits`).
``contamination`` decontamination flags of accepted samples (:mod:`.contamination`); a flag
               that excludes keeps the sample out of the export, never deletes it.
``events``     the run's probes, stops and interruptions (:mod:`.events`).
``batch_jobs``, ``batch_requests``  the provider batch jobs of a ``--batch`` run and the requests
               in them, written before the create call returns (:mod:`.batches`).

Exactly-once rule: a chunk's samples, its calls and its final status are written by
:meth:`RunFolder.record_chunk` in **one transaction**, guarded so that a chunk that already
left ``pending``/``failed`` is never written twice. A run killed at any moment resumes
from the committed state without losing or duplicating a sample. A revisit of the coverage
loop is the same unit: :meth:`RunFolder.record_revisit` writes its samples, calls and ``done``
mark in one transaction, and a round's plan is committed before any of it runs, so a resumed
run finishes the same round the killed one started.

One writer: opening a run folder for writing takes its lock (:mod:`prepbench.tools.ledger.lock`,
``run.lock``); a second process is refused with a one-line error naming the holder's pid, and the
lock of a killed process is taken over. SQLite faults (disk full, unwritable) become one-line
errors (:mod:`prepbench.tools.ledger.faults`); a failed write is a rolled-back transaction.
"""

from __future__ import annotations

import json
import sqlite3
import time
from pathlib import Path
from typing import Any, Iterable, Iterator, Sequence


def _import_sqlite_utils():
    """Import sqlite-utils without its optional pandas import (about 1 s of CLI start-up);
    the ledger never hands DataFrames to sqlite-utils. pandas stays importable afterwards."""
    import sys

    if "sqlite_utils" in sys.modules or "pandas" in sys.modules:
        import sqlite_utils

        return sqlite_utils
    sys.modules["pandas"] = None  # type: ignore[assignment]  # makes `import pandas` raise ImportError
    try:
        import sqlite_utils
    finally:
        del sys.modules["pandas"]
    return sqlite_utils


sqlite_utils = _import_sqlite_utils()

from prepbench.tools.chunking import Chunk  # noqa: E402
from prepbench.tools.errors import LedgerError  # noqa: E402
from prepbench.tools.ledger.batches import BatchLedger, create_batch_tables  # noqa: E402
from prepbench.tools.ledger.contamination import ContaminationMixin  # noqa: E402
from prepbench.tools.ledger.events import EventLedger  # noqa: E402
from prepbench.tools.ledger.faults import writes  # noqa: E402
from prepbench.tools.ledger.lock import LOCK_FILE, RunLock, RunLockedError  # noqa: E402,F401
from prepbench.tools.ledger.records import (  # noqa: E402,F401
    INSERT_SAMPLE,
    REPLY_CHARS,
    CallRecord,
    ChunkOutcome,
    SampleRecord,
    sample_id,
    sample_of_row,
    sample_row,
)
from prepbench.tools.ledger.revisits import RevisitLedger  # noqa: E402
from prepbench.tools.ledger.sample_blocks import SampleBlocks  # noqa: E402
from prepbench.tools.ledger.schema import create_tables  # noqa: E402

LEDGER_FILE = "ledger.sqlite"
SCHEMA_VERSION = 2
CHUNK_STATUSES = ("pending", "kept", "skipped", "failed")


class RunFolder(RevisitLedger, EventLedger, ContaminationMixin, BatchLedger):
    """A run folder's SQLite ledger: the only code that knows the ledger's tables.

    Args:
        path: the ledger file, or a run folder (then ``<folder>/ledger.sqlite``).
        readonly: open an existing ledger for reading only (a monitor beside a running run).
    """

    def __init__(self, path: str | Path, readonly: bool = False):
        p = Path(path)
        if p.suffix != ".sqlite":
            p = p / LEDGER_FILE
        self.path = p
        self._lock: RunLock | None = None
        if readonly:
            conn = sqlite3.connect(f"file:{p}?mode=ro", uri=True, isolation_level=None, check_same_thread=False, timeout=1)
            self.db = sqlite_utils.Database(conn)
            return
        self._lock = RunLock(p.parent).acquire()  # one writer per run folder (names the holder's pid)
        try:
            self._connect()
        except BaseException:
            self._lock.release()
            raise

    @writes
    def _connect(self) -> None:
        conn = sqlite3.connect(str(self.path), isolation_level=None, check_same_thread=False, timeout=30)
        self.db = sqlite_utils.Database(conn)
        try:
            self.db.enable_wal()
            self.db.execute("PRAGMA synchronous=NORMAL")
            self.db.execute("PRAGMA busy_timeout=30000")
            self._ensure_tables()
        except BaseException:
            conn.close()
            raise

    # -- schema ---------------------------------------------------------------------
    def _ensure_tables(self) -> None:
        create_tables(self.db)
        create_batch_tables(self.db)

    # -- run config -----------------------------------------------------------------
    def get_config(self) -> dict[str, Any]:
        """The stored run config (``{}`` for a new ledger)."""
        return {r["key"]: json.loads(r["value"]) for r in self.db["run"].rows}

    @writes
    def set_config(self, values: dict[str, Any]) -> None:
        self.db["run"].upsert_all([{"key": k, "value": json.dumps(v, ensure_ascii=False)} for k, v in values.items()], pk="key")

    @property
    def initialized(self) -> bool:
        return self.get_config().get("initialized") is True

    @writes
    def initialize(
        self,
        config: dict[str, Any],
        documents: Sequence[dict],
        chunks: Sequence[Chunk],
    ) -> None:
        """Write the run config, documents and all chunks (as ``pending``) in one transaction.

        Raises:
            LedgerError: the ledger is already initialized.
        """
        if self.initialized:
            raise LedgerError(f"{self.path}: run already initialized")
        now = time.time()
        with self.db.atomic():
            self.set_config({**config, "schema_version": SCHEMA_VERSION, "created_at": now})
            self.db["documents"].insert_all(documents, pk="doc_id", replace=True)
            self.db["chunks"].insert_all(
                (
                    {
                        "chunk_id": c.chunk_id,
                        "idx": i,
                        "doc_id": c.doc_id,
                        "doc_path": c.doc_path,
                        "doc_index": c.index,
                        "heading_path": json.dumps(c.heading_path, ensure_ascii=False),
                        "start_line": c.start_line,
                        "end_line": c.end_line,
                        "chars": c.chars,
                        "text": c.text,
                        "status": "pending",
                        "skip_reason": None,
                        "error": None,
                        "attempts": 0,
                        "n_accepted": 0,
                        "n_rejected": 0,
                        "updated_at": now,
                    }
                    for i, c in enumerate(chunks)
                ),
                pk="chunk_id",
                batch_size=500,
            )
            self.set_config({"initialized": True})

    # -- reading --------------------------------------------------------------------
    @staticmethod
    def row_to_chunk(row: dict) -> Chunk:
        return Chunk(
            chunk_id=row["chunk_id"],
            doc_id=row["doc_id"],
            doc_path=row["doc_path"],
            index=row["doc_index"],
            heading_path=json.loads(row["heading_path"]),
            start_line=row["start_line"],
            end_line=row["end_line"],
            text=row["text"],
        )

    def todo_chunks(self, max_attempts: int = 3, limit: int | None = None) -> list[Chunk]:
        """Chunks still to process, in corpus order: ``pending``, and ``failed`` with attempts left."""
        # with a limit (is anything left?) walk the idx index and stop at the first match (`+status`);
        # the whole list reads the status index and sorts what it finds
        s = "+status" if limit else "status"
        sql = f"SELECT * FROM chunks WHERE {s} = 'pending' OR ({s} = 'failed' AND attempts < ?) ORDER BY idx" + (
            " LIMIT ?" if limit else ""
        )
        params: list[Any] = [max_attempts] + ([limit] if limit else [])
        return [self.row_to_chunk(r) for r in self.db.query(sql, params)]

    def chunk_idx(self, chunk_id: str) -> int:
        row = self.db.execute("SELECT idx FROM chunks WHERE chunk_id = ?", [chunk_id]).fetchone()
        if row is None:
            raise KeyError(chunk_id)
        return row[0]

    def get_chunk(self, chunk_id: str) -> Chunk:
        rows = list(self.db.query("SELECT * FROM chunks WHERE chunk_id = ?", [chunk_id]))
        if not rows:
            raise KeyError(chunk_id)
        return self.row_to_chunk(rows[0])

    def accepted_samples(self, exported: bool = False) -> Iterator[dict]:
        """Accepted samples in their canonical order (chunk order, then position); ``exported``:
        only those the export holds (no decontamination flag excludes them)."""
        return map(sample_of_row, self.accepted_sample_rows(exported))

    def accepted_sample_rows(self, exported: bool = False, block: int = 2048) -> Iterator[tuple[str, str, str, str]]:
        """:meth:`accepted_samples` as stored, undecoded: ``(sample_id, chunk_id, sample_type, data JSON)``
        rows (:func:`~prepbench.tools.ledger.records.sample_of_row` makes each a sample), read
        ``block`` rows at a time. An export hands them to its worker processes as they are."""
        # `+status`: walk the (chunk_idx, pos) index in order and filter, rather than sort every
        # accepted row (data included) in a temporary B-tree before the first one comes back
        where = "+status = 'accepted'" + (self._exported_clause() if exported else "")
        sql = f"SELECT sample_id, chunk_id, sample_type, data FROM samples WHERE {where} ORDER BY chunk_idx, pos"
        cursor = self.db.conn.execute(sql)
        while rows := cursor.fetchmany(block):
            yield from rows

    def accepted_sample_blocks(self, exported: bool = False, per_block: int = 1024) -> SampleBlocks:
        """:meth:`accepted_sample_rows` as blocks of about ``per_block`` samples (chunk-index ranges)
        that any process reads with its own connection (:mod:`.sample_blocks`): a large export's
        worker processes read the ledger themselves."""
        first, last, count = self.db.execute(
            "SELECT MIN(chunk_idx), MAX(chunk_idx), COUNT(*) FROM samples WHERE status = 'accepted'"
        ).fetchone()
        clause = self._exported_clause() if exported else ""
        return SampleBlocks(self.path, clause, count, first or 0, last or 0, per_block)

    def counts(self) -> dict[str, Any]:
        """Chunk status counts, sample counts and call totals."""
        chunk_counts = {s: 0 for s in CHUNK_STATUSES}
        for status, n in self.db.execute("SELECT status, COUNT(*) FROM chunks GROUP BY status").fetchall():
            chunk_counts[status] = n
        samples = {"accepted": 0, "rejected": 0}
        for status, n in self.db.execute("SELECT status, COUNT(*) FROM samples GROUP BY status").fetchall():
            samples[status] = n
        calls = self.db.execute(
            "SELECT COUNT(*), COALESCE(SUM(input_tokens),0), COALESCE(SUM(output_tokens),0), "
            "COALESCE(SUM(cost_usd),0), COALESCE(SUM(latency_s),0) FROM calls"
        ).fetchone()
        return {
            "chunks": {"total": sum(chunk_counts.values()), **chunk_counts},
            "samples": samples,
            "calls": {
                "count": calls[0],
                "input_tokens": calls[1],
                "output_tokens": calls[2],
                "cost_usd": round(float(calls[3]), 6),
                "latency_s": round(float(calls[4]), 3),
            },
        }

    # -- the run-folder read API (readers, compare, status, the ReAct tools, tests) ------
    @classmethod
    def open(cls, run_dir: str | Path, readonly: bool = False) -> "RunFolder":
        """Open an existing run folder (``readonly``: no write, not even the WAL switch).

        Raises:
            LedgerError: the folder holds no ledger (not a prepbench run folder).
        """
        p = Path(run_dir)
        ledger = p if p.suffix == ".sqlite" else p / LEDGER_FILE
        if not ledger.is_file():
            raise LedgerError(f"{run_dir}: not a prepbench run folder (no {LEDGER_FILE})")
        return cls(ledger, readonly=readonly)

    def chunk_rows(self, status: str | None = None) -> list[dict[str, Any]]:
        """Chunk rows in corpus order (``heading_path`` as a list); only ``status`` when given."""
        sql = "SELECT * FROM chunks" + (" WHERE status = ?" if status else "") + " ORDER BY idx"
        rows = []
        for r in self.db.query(sql, [status] if status else []):
            r = dict(r)
            r["heading_path"] = json.loads(r["heading_path"] or "[]")
            rows.append(r)
        return rows

    def chunks(self) -> list[Chunk]:
        """Every chunk of the run, in corpus order."""
        return [self.row_to_chunk(r) for r in self.db.query("SELECT * FROM chunks ORDER BY idx")]

    def sample_rows(self, status: str | None = None, chunk_id: str | None = None) -> list[dict[str, Any]]:
        """Sample rows (accepted and rejected) in canonical order, ``data`` parsed; filtered by
        ``status`` and/or ``chunk_id`` when given."""
        where, params = [], []
        if status:
            where.append("+status = ?")  # ordered by the (chunk_idx, pos) index, not a sort (accepted_samples)
            params.append(status)
        if chunk_id:
            where.append("chunk_id = ?")
            params.append(chunk_id)
        sql = "SELECT * FROM samples" + (" WHERE " + " AND ".join(where) if where else "") + " ORDER BY chunk_idx, pos"
        rows = []
        for r in self.db.query(sql, params):
            r = dict(r)
            r["data"] = json.loads(r["data"])
            rows.append(r)
        return rows

    def call_rows(self, ok: bool | None = None) -> list[dict[str, Any]]:
        """Model/generator call rows in the order written; only failed (``ok=False``) or
        successful (``ok=True``) ones when given."""
        sql = "SELECT * FROM calls" + ("" if ok is None else " WHERE ok = ?") + " ORDER BY rowid"
        return [dict(r) for r in self.db.query(sql, [] if ok is None else [int(ok)])]

    def calls_by_node(self) -> list[dict[str, Any]]:
        """Calls grouped by graph node: ``[{node, count, input_tokens, output_tokens, cost_usd}]``, by node name."""
        rows = self.db.execute(
            "SELECT node, COUNT(*), COALESCE(SUM(input_tokens),0), COALESCE(SUM(output_tokens),0), "
            "COALESCE(SUM(cost_usd),0) FROM calls GROUP BY node ORDER BY node"
        ).fetchall()
        return [
            {"node": r[0], "count": r[1], "input_tokens": r[2], "output_tokens": r[3], "cost_usd": round(float(r[4]), 6)}
            for r in rows
        ]

    def skip_reason_counts(self) -> dict[str, int]:
        """Skipped chunks per skip reason, most frequent first."""
        sql = "SELECT skip_reason, COUNT(*) FROM chunks WHERE status='skipped' GROUP BY skip_reason ORDER BY 2 DESC"
        return dict(self.db.execute(sql).fetchall())

    def failed_error_counts(self, limit: int = 10) -> dict[str, int]:
        """Failed chunks per error (first 80 characters), most frequent first, at most ``limit``."""
        sql = "SELECT error, COUNT(*) FROM chunks WHERE status='failed' GROUP BY error ORDER BY 2 DESC LIMIT ?"
        return {(e or "")[:80]: n for e, n in self.db.execute(sql, [limit]).fetchall()}

    def rejection_counts(self) -> dict[str, int]:
        """Rejected samples per rule, most frequent first."""
        sql = "SELECT rule, COUNT(*) FROM samples WHERE status='rejected' GROUP BY rule ORDER BY 2 DESC"
        return dict(self.db.execute(sql).fetchall())

    def document_rows(self) -> list[dict[str, Any]]:
        """Per document (by path): ``{document, doc_status, reason, chunks, kept, skipped, failed, pending, accepted}``."""
        sql = """
            SELECT d.rel_path AS document, d.status AS doc_status, d.reason AS reason,
                   COUNT(c.status) AS chunks,  -- every chunk has a status; read from idx_chunks_doc alone
                   SUM(c.status='kept') AS kept, SUM(c.status='skipped') AS skipped,
                   SUM(c.status='failed') AS failed, SUM(c.status='pending') AS pending,
                   COALESCE(SUM(c.n_accepted), 0) AS accepted
            FROM documents d LEFT JOIN chunks c ON c.doc_id = d.doc_id
            GROUP BY d.doc_id ORDER BY d.rel_path
        """
        return [{k: (v if v is not None else 0) if k != "reason" else v for k, v in row.items()} for row in self.db.query(sql)]

    def calls_per_chunk(self) -> list[dict[str, Any]]:
        """Per chunk with calls: ``{chunk_id, triage, generate, revisit_generate, revisit_rounds}``
        (call counts by node; rounds of the coverage loop that revisited it)."""
        sql = (
            "SELECT chunk_id, SUM(node='triage') AS triage, SUM(node='generate') AS generate, "
            "SUM(node='revisit_generate') AS revisit_generate, "
            "(SELECT COUNT(DISTINCT round) FROM revisits r WHERE r.chunk_id = calls.chunk_id) AS revisit_rounds "
            "FROM calls GROUP BY chunk_id"
        )
        return [dict(r) for r in self.db.query(sql)]

    def last_recorded_at(self) -> float | None:
        """When the ledger last changed: a chunk recorded or revisited, or a decontamination flag (epoch seconds)."""
        flags = " UNION ALL SELECT MAX(created_at) FROM contamination" if self._has_contamination() else ""
        sql = f"SELECT MAX(t) FROM (SELECT MAX(updated_at) AS t FROM chunks WHERE status != 'pending'{flags})"
        return self.db.execute(sql).fetchone()[0]

    def attempts_total(self) -> int:
        """Attempts summed over every chunk (retries of failed chunks included)."""
        return int(self.db.execute("SELECT COALESCE(SUM(attempts), 0) FROM chunks").fetchone()[0])

    def journal_mode(self) -> str:
        """SQLite journal mode of the ledger (``wal``)."""
        return self.db.execute("PRAGMA journal_mode").fetchone()[0]

    # -- writing --------------------------------------------------------------------
    @writes
    def record_chunk(self, outcome: ChunkOutcome) -> bool:
        """Write a chunk's samples, calls and final status in one transaction.

        Returns:
            True when written; False when the chunk had already been recorded (left
            ``pending``/``failed``) — nothing is written then, so no sample is duplicated.

        Raises:
            ValueError: unknown status, or a ``skipped`` outcome without a reason.
            KeyError: unknown chunk id.
        """
        if outcome.status not in ("kept", "skipped", "failed"):
            raise ValueError(f"unknown chunk status {outcome.status!r}")
        if outcome.status == "skipped" and not outcome.skip_reason:
            raise ValueError("a skipped chunk needs a skip_reason")
        now = time.time()
        conn = self.db.conn
        with self.db.atomic():
            row = conn.execute("SELECT idx, status, attempts FROM chunks WHERE chunk_id = ?", [outcome.chunk_id]).fetchone()
            if row is None:
                raise KeyError(outcome.chunk_id)
            idx, status, attempts = row
            if status not in ("pending", "failed"):
                return False
            if status == "failed":
                # a retry replaces the failed attempt's candidate rows (none are accepted)
                conn.execute("DELETE FROM samples WHERE chunk_id = ?", [outcome.chunk_id])
            n_acc = n_rej = 0
            rows = []
            for pos, s in enumerate(outcome.samples):
                sid = sample_id(outcome.chunk_id, s.sample_type, s.data)
                if s.status == "accepted":
                    n_acc += 1
                else:
                    n_rej += 1
                rows.append(sample_row(sid, outcome.chunk_id, idx, pos, s, now))
                self._insert_flags(sid, s.contamination, now)
            conn.executemany(INSERT_SAMPLE, rows)
            self._insert_calls(outcome.calls, outcome.chunk_id, now)
            conn.execute(
                "UPDATE chunks SET status = ?, skip_reason = ?, error = ?, detail = ?, attempts = ?, n_accepted = ?, "
                "n_rejected = ?, updated_at = ? WHERE chunk_id = ?",
                [
                    outcome.status,
                    outcome.skip_reason,
                    outcome.error,
                    outcome.detail,
                    attempts + 1,
                    n_acc,
                    n_rej,
                    now,
                    outcome.chunk_id,
                ],
            )
        return True

    def _insert_calls(self, calls: Iterable[CallRecord], chunk_id: str | None, now: float) -> None:
        self.db.conn.executemany(
            "INSERT INTO calls (chunk_id, node, model, input_tokens, output_tokens, cost_usd, latency_s, ok, "
            "error, reply, created_at) VALUES (?,?,?,?,?,?,?,?,?,?,?)",
            [
                (
                    chunk_id,
                    c.node,
                    c.model,
                    c.input_tokens,
                    c.output_tokens,
                    c.cost_usd,
                    c.latency_s,
                    1 if c.ok else 0,
                    c.error,
                    c.reply[:REPLY_CHARS] if c.reply else None,
                    now,
                )
                for c in calls
            ],
        )

    @writes
    def record_calls(self, calls: Iterable[CallRecord], chunk_id: str | None = None) -> None:
        """Record calls outside a chunk transaction (e.g. a run-level call)."""
        with self.db.atomic():
            self._insert_calls(calls, chunk_id, time.time())

    def close(self) -> None:
        """Close the ledger and let go of the run folder's lock."""
        try:
            self.db.conn.close()
        finally:
            if self._lock is not None:
                self._lock.release()
                self._lock = None
