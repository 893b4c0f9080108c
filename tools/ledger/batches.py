"""The provider batch jobs of a ``--batch`` run and the requests in them (a mixin of
:class:`~prepbench.tools.ledger.RunFolder`, the only code that knows the tables).

``batch_jobs`` rows: one per submission, keyed by a local ``key`` written *before* the
provider's create call (``job_id`` empty: the intent, with the uploaded input file's id for
OpenAI), then given the provider's ``job_id`` in one transaction as soon as the create call
returns; ``status`` is the provider's last status (``submitting`` for an intent, ``not_created``
when the create call failed), ``ended_at``
the time it was seen ended. ``batch_requests`` rows: one per request, keyed by its
``custom_id`` (a hash of the request body, with ``-r<n>`` after the ``n``-th resubmission);
``base_id`` is the hash alone, ``state`` ``submitted`` | ``ok`` | ``errored`` and ``error`` the
reason of an errored one. A re-run asks :meth:`BatchLedger.batch_latest` before submitting a
request again: a request in a job with an id is polled there, never paid for twice.
"""

from __future__ import annotations

import time
from typing import Any, Sequence

from prepbench.tools.ledger.faults import writes

BATCH_JOBS = {
    "key": str,
    "provider": str,
    "job_id": str,
    "input_file_id": str,
    "status": str,
    "n_requests": int,
    "submitted_at": float,
    "ended_at": float,
}
BATCH_REQUESTS = {
    "custom_id": str,
    "base_id": str,
    "attempt": int,
    "job_key": str,
    "node": str,
    "state": str,  # submitted | ok | errored
    "error": str,
    "updated_at": float,
}


def create_batch_tables(db: Any) -> None:
    """Create the batch tables a ledger lacks (an older ledger gets them empty)."""
    names = set(db.table_names())
    if "batch_jobs" not in names:
        db["batch_jobs"].create(BATCH_JOBS, pk="key")
    if "batch_requests" not in names:
        db["batch_requests"].create(BATCH_REQUESTS, pk="custom_id")
        db["batch_requests"].create_index(["base_id", "attempt"])


class BatchLedger:
    """The batch-job methods of :class:`~prepbench.tools.ledger.RunFolder` (one transaction each)."""

    db: Any

    @writes
    def batch_intent(
        self, key: str, provider: str, input_file_id: str | None, requests: Sequence[tuple[str, str, int, str]]
    ) -> None:
        """Record a job about to be created: its local ``key``, provider, input file id (OpenAI),
        and its requests ``(custom_id, base_id, attempt, node)``, all ``submitted``."""
        now = time.time()
        with self.db.atomic():
            self.db["batch_jobs"].insert(
                {
                    "key": key,
                    "provider": provider,
                    "job_id": None,
                    "input_file_id": input_file_id,
                    "status": "submitting",
                    "n_requests": len(requests),
                    "submitted_at": now,
                    "ended_at": None,
                },
                replace=True,
            )
            self.db["batch_requests"].insert_all(
                (
                    {
                        "custom_id": c,
                        "base_id": b,
                        "attempt": a,
                        "job_key": key,
                        "node": n,
                        "state": "submitted",
                        "error": None,
                        "updated_at": now,
                    }
                    for c, b, a, n in requests
                ),
                replace=True,
            )

    @writes
    def batch_submitted(self, key: str, job_id: str | None, status: str) -> None:
        """The provider's create call for job ``key`` returned ``job_id`` (in ``status``); None and
        ``not_created``: the call failed (no job was made)."""
        with self.db.atomic():
            self.db.execute("UPDATE batch_jobs SET job_id = ?, status = ? WHERE key = ?", [job_id, status, key])

    @writes
    def batch_status(self, job_id: str, status: str, ended: bool = False) -> None:
        """The provider's latest ``status`` of ``job_id`` (``ended``: the job will not change again)."""
        with self.db.atomic():
            self.db.execute(
                "UPDATE batch_jobs SET status = ?, ended_at = COALESCE(ended_at, ?) WHERE job_id = ?",
                [status, time.time() if ended else None, job_id],
            )

    @writes
    def batch_outcomes(self, outcomes: dict[str, str | None]) -> None:
        """Settle requests: ``custom_id -> None`` (answered) or the error of an errored one."""
        now = time.time()
        with self.db.atomic():
            self.db.conn.executemany(
                "UPDATE batch_requests SET state = ?, error = ?, updated_at = ? WHERE custom_id = ?",
                [("ok" if err is None else "errored", err, now, cid) for cid, err in outcomes.items()],
            )

    def batch_intents(self, provider: str) -> list[dict[str, Any]]:
        """Jobs of ``provider`` recorded before their create call whose id was never recorded (the
        process was killed in between), oldest first."""
        if "batch_jobs" not in self.db.table_names():
            return []
        sql = "SELECT * FROM batch_jobs WHERE provider = ? AND job_id IS NULL AND status = 'submitting' ORDER BY submitted_at"
        return [dict(r) for r in self.db.query(sql, [provider])]

    def batch_latest(self, base_id: str) -> dict[str, Any] | None:
        """The latest submission of request ``base_id`` with its job (``job_id``, ``status``,
        ``provider``; ``job_id`` None for an intent whose create call never returned), or None."""
        if "batch_requests" not in self.db.table_names():
            return None
        row = self.db.execute(
            "SELECT r.custom_id, r.attempt, r.state, r.error, j.job_id, j.status, j.provider FROM batch_requests r "
            "LEFT JOIN batch_jobs j ON j.key = r.job_key WHERE r.base_id = ? ORDER BY r.attempt DESC LIMIT 1",
            [base_id],
        ).fetchone()
        if row is None:
            return None
        keys = ("custom_id", "attempt", "state", "error", "job_id", "status", "provider")
        return dict(zip(keys, row))

    def batch_jobs(self) -> list[dict[str, Any]]:
        """Every batch job of the run in submission order (``status`` and readers, tests)."""
        if "batch_jobs" not in self.db.table_names():
            return []
        return [dict(r) for r in self.db.query("SELECT * FROM batch_jobs ORDER BY submitted_at, key")]

    def batch_requests(self) -> list[dict[str, Any]]:
        """Every batch request of the run (``custom_id``, ``job_key``, ``state``, ...)."""
        if "batch_requests" not in self.db.table_names():
            return []
        return [dict(r) for r in self.db.query("SELECT * FROM batch_requests ORDER BY updated_at, custom_id")]
