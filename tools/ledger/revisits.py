"""The coverage loop's part of the ledger: the ``revisits`` table (a mixin of
:class:`~prepbench.tools.ledger.RunFolder`, the only code that knows the tables).

A round of revisits is committed (``planned``) before it runs. Each revisit ends in one
transaction: ``done`` with its new samples and calls (:meth:`RevisitLedger.record_revisit`),
or ``failed`` with its error and calls when its generation did not finish
(:meth:`RevisitLedger.record_revisit_failure`). A failed revisit is retried by the next run
(:meth:`RevisitLedger.reopen_failed_revisits` plans it again while it has attempts left), the
same rule as a failed chunk, so a fault never ends a revisit silently with no samples.
"""

from __future__ import annotations

import time
from typing import Any, Sequence

from prepbench.tools.errors import LedgerError
from prepbench.tools.ledger.faults import writes
from prepbench.tools.ledger.records import INSERT_SAMPLE, CallRecord, ChunkOutcome, sample_id, sample_row


class RevisitLedger:
    """The ``revisits`` methods of :class:`~prepbench.tools.ledger.RunFolder` (``self.db`` is its database)."""

    db: Any
    path: Any
    _insert_calls: Any  # RunFolder's: the calls of a transaction
    _insert_flags: Any  # ContaminationMixin's: a sample's decontamination flags

    def revisit_rows(self, round: int | None = None, status: str | None = None) -> list[dict[str, Any]]:
        """The coverage loop's revisit rows, by round then corpus order; filtered when given."""
        where, params = [], []
        if round is not None:
            where.append("r.round = ?")
            params.append(round)
        if status:
            where.append("r.status = ?")
            params.append(status)
        sql = (
            "SELECT r.*, c.status AS chunk_status FROM revisits r JOIN chunks c ON c.chunk_id = r.chunk_id"
            + (" WHERE " + " AND ".join(where) if where else "")
            + " ORDER BY r.round, c.idx, r.sample_type"
        )
        return [dict(r) for r in self.db.query(sql, params)]

    def type_counts(self, chunk_id: str | None = None) -> dict[str, int]:
        """Accepted samples per sample type, of the run or of one chunk."""
        sql = "SELECT sample_type, COUNT(*) FROM samples WHERE status = 'accepted'"
        params: list[Any] = []
        if chunk_id is not None:
            sql += " AND chunk_id = ?"
            params.append(chunk_id)
        return dict(self.db.execute(sql + " GROUP BY sample_type", params).fetchall())

    def sample_ids(self, chunk_id: str) -> set[str]:
        """Ids of every sample row (accepted or rejected) of a chunk."""
        return {r[0] for r in self.db.execute("SELECT sample_id FROM samples WHERE chunk_id = ?", [chunk_id]).fetchall()}

    def revisit_candidates(self, sample_type: str, limit: int) -> list[str]:
        """Kept chunks not yet revisited (nor planned, nor failed) for ``sample_type``: fewest accepted samples of that
        type first, then corpus order; at most ``limit`` chunk ids."""
        # one pass over the type's accepted samples (an index range), not a count per kept chunk
        rows = self.db.execute(
            """
            SELECT c.chunk_id FROM chunks c
            LEFT JOIN (SELECT chunk_idx, COUNT(*) AS n FROM samples
                       WHERE status = 'accepted' AND sample_type = ? GROUP BY chunk_idx) s ON s.chunk_idx = c.idx
            WHERE c.status = 'kept'
              AND NOT EXISTS (SELECT 1 FROM revisits r WHERE r.chunk_id = c.chunk_id AND r.sample_type = ?)
            ORDER BY COALESCE(s.n, 0), c.idx
            LIMIT ?
            """,
            [sample_type, sample_type, limit],
        ).fetchall()
        return [r[0] for r in rows]

    @writes
    def plan_revisits(self, items: Sequence[tuple[str, str]]) -> int:
        """Commit a round of the coverage loop: ``(chunk_id, sample_type)`` pairs, ``planned``.

        Returns:
            The round number (1, 2, ...).

        Raises:
            LedgerError: planned revisits of an earlier round are still open.
        """
        with self.db.atomic():
            conn = self.db.conn
            if conn.execute("SELECT COUNT(*) FROM revisits WHERE status = 'planned'").fetchone()[0]:
                raise LedgerError(f"{self.path}: a coverage round is still open")
            rnd = conn.execute("SELECT COALESCE(MAX(round), 0) + 1 FROM revisits").fetchone()[0]
            now = time.time()
            conn.executemany(
                "INSERT INTO revisits (chunk_id, sample_type, round, status, n_accepted, n_rejected, attempts, created_at) "
                "VALUES (?,?,?,'planned',0,0,0,?)",
                [(cid, t, rnd, now) for cid, t in items],
            )
        return rnd

    def planned_revisits(self) -> list[tuple[str, list[str]]]:
        """The open round: ``[(chunk_id, [sample_type, ...])]`` in corpus order."""
        out: dict[str, list[str]] = {}
        for cid, t in self.db.execute(
            "SELECT r.chunk_id, r.sample_type FROM revisits r JOIN chunks c ON c.chunk_id = r.chunk_id "
            "WHERE r.status = 'planned' ORDER BY c.idx, r.sample_type"
        ).fetchall():
            out.setdefault(cid, []).append(t)
        return list(out.items())

    def revisit_counts(self) -> dict[str, int]:
        """``{"rounds", "planned", "done", "failed", "accepted"}`` of the coverage loop."""
        r = self.db.execute(
            "SELECT COALESCE(MAX(round), 0), COALESCE(SUM(status = 'planned'), 0), COALESCE(SUM(status = 'done'), 0), "
            "COALESCE(SUM(status = 'failed'), 0), COALESCE(SUM(n_accepted), 0) FROM revisits"
        ).fetchone()
        return {"rounds": r[0], "planned": r[1], "done": r[2], "failed": r[3], "accepted": r[4]}

    def last_round_barren(self) -> bool:
        """True when the coverage loop's last round is finished (no revisit planned or failed in it)
        and accepted no sample: another round would ask the same kind of chunks again for nothing."""
        r = self.db.execute(
            "SELECT COUNT(*), COALESCE(SUM(status IN ('planned', 'failed')), 0), COALESCE(SUM(n_accepted), 0) "
            "FROM revisits WHERE round = (SELECT MAX(round) FROM revisits)"
        ).fetchone()
        return r[0] > 0 and r[1] == 0 and r[2] == 0

    def retryable_revisits(self, max_attempts: int = 3) -> int:
        """Failed revisits with attempts left (the next run plans them again)."""
        sql = "SELECT COUNT(*) FROM revisits WHERE status = 'failed' AND COALESCE(attempts, 0) < ?"
        return int(self.db.execute(sql, [max_attempts]).fetchone()[0])

    @writes
    def reopen_failed_revisits(self, max_attempts: int = 3) -> int:
        """Plan again the failed revisits with attempts left (a run does this once, at its start,
        so a revisit that fails is retried by the next run, not in a loop; they join the open
        round, if any). Returns how many."""
        with self.db.atomic():
            cur = self.db.conn.execute(
                "UPDATE revisits SET status = 'planned' WHERE status = 'failed' AND COALESCE(attempts, 0) < ?",
                [max_attempts],
            )
        return cur.rowcount

    @writes
    def record_revisit_failure(self, chunk_id: str, sample_types: Sequence[str], calls: Sequence[CallRecord], error: str) -> bool:
        """A revisit whose generation did not finish: its calls are written and its planned rows
        become ``failed`` with ``error`` and one more attempt, in one transaction (nothing of its
        candidates is kept: a retry starts over). False when these revisits were not planned.
        """
        now = time.time()
        marks = ",".join("?" for _ in sample_types)
        with self.db.atomic():
            conn = self.db.conn
            open_rows = conn.execute(
                f"SELECT COUNT(*) FROM revisits WHERE chunk_id = ? AND status = 'planned' AND sample_type IN ({marks})",
                [chunk_id, *sample_types],
            ).fetchone()[0]
            if not sample_types or open_rows != len(sample_types):
                return False
            self._insert_calls(calls, chunk_id, now)
            conn.execute(
                "UPDATE revisits SET status = 'failed', error = ?, attempts = COALESCE(attempts, 0) + 1, created_at = ? "
                f"WHERE chunk_id = ? AND sample_type IN ({marks})",
                [error[:300], now, chunk_id, *sample_types],
            )
        return True

    @writes
    def record_revisit(self, outcome: ChunkOutcome, sample_types: Sequence[str]) -> bool:
        """Write a revisit's new samples and calls, and mark its planned rows ``done``, in one
        transaction. The chunk stays ``kept``; its sample counts grow.

        Returns:
            True when written; False when these revisits were not planned or are already done
            (nothing is written then).

        Raises:
            KeyError: unknown chunk id.
        """
        now = time.time()
        conn = self.db.conn
        with self.db.atomic():
            row = conn.execute("SELECT idx FROM chunks WHERE chunk_id = ?", [outcome.chunk_id]).fetchone()
            if row is None:
                raise KeyError(outcome.chunk_id)
            idx = row[0]
            marks = ",".join("?" for _ in sample_types)
            open_rows = conn.execute(
                f"SELECT COUNT(*) FROM revisits WHERE chunk_id = ? AND status = 'planned' AND sample_type IN ({marks})",
                [outcome.chunk_id, *sample_types],
            ).fetchone()[0]
            if not sample_types or open_rows != len(sample_types):
                return False
            pos0 = conn.execute(
                "SELECT COALESCE(MAX(pos), -1) + 1 FROM samples WHERE chunk_id = ?", [outcome.chunk_id]
            ).fetchone()[0]
            per_type: dict[str, list[int]] = {t: [0, 0] for t in sample_types}
            n_acc = n_rej = 0
            for s in outcome.samples:
                sid = sample_id(outcome.chunk_id, s.sample_type, s.data)
                cur = conn.execute(INSERT_SAMPLE, sample_row(sid, outcome.chunk_id, idx, pos0 + n_acc + n_rej, s, now))
                if cur.rowcount != 1:
                    continue  # the same sample is already recorded for this chunk
                self._insert_flags(sid, s.contamination, now)
                accepted = s.status == "accepted"
                n_acc += accepted
                n_rej += not accepted
                if s.sample_type in per_type:
                    per_type[s.sample_type][0 if accepted else 1] += 1
            self._insert_calls(outcome.calls, outcome.chunk_id, now)
            conn.executemany(
                "UPDATE revisits SET status = 'done', n_accepted = ?, n_rejected = ?, error = NULL, created_at = ? "
                "WHERE chunk_id = ? AND sample_type = ?",
                [(a, r, now, outcome.chunk_id, t) for t, (a, r) in per_type.items()],
            )
            conn.execute(
                "UPDATE chunks SET n_accepted = n_accepted + ?, n_rejected = n_rejected + ?, updated_at = ? WHERE chunk_id = ?",
                [n_acc, n_rej, now, outcome.chunk_id],
            )
        return True
