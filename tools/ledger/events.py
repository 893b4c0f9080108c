"""What happened to a run as a whole, and the replies behind its failures (a mixin of
:class:`~prepbench.tools.ledger.RunFolder`, the only code that knows the tables).

``events`` rows: ``probe`` (what the model server supports, and the structured-output mode
chosen from it), ``stop`` (why a run stopped early, with the advice that fits the cause),
``interrupted`` (Ctrl-C) and ``finished``. ``prepbench status`` shows the last stop of a run that
has not finished since, and ``--show-failures`` the raw replies kept with failed calls and with
the calls of chunks that were not kept clean.
"""

from __future__ import annotations

import json
import time
from typing import Any

from prepbench.tools.ledger.faults import writes

#: Kinds of run events.
EVENT_KINDS = ("probe", "stop", "interrupted", "finished")


class EventLedger:
    """The ``events`` and failure-reading methods of :class:`~prepbench.tools.ledger.RunFolder`."""

    db: Any

    @writes
    def record_event(self, kind: str, message: str, data: dict[str, Any] | None = None) -> None:
        """Append a run event (one transaction).

        Args:
            kind: one of :data:`EVENT_KINDS`.
            message: one line for a person (printed by ``run`` and ``status``).
            data: details as JSON (the probe's answers, the stop's cause and advice).

        Raises:
            ValueError: unknown kind.
        """
        if kind not in EVENT_KINDS:
            raise ValueError(f"unknown run event kind {kind!r}")
        with self.db.atomic():
            self.db.conn.execute(
                "INSERT INTO events (kind, message, data, created_at) VALUES (?,?,?,?)",
                [kind, message, json.dumps(data or {}, ensure_ascii=False), time.time()],
            )

    def events(self, kind: str | None = None) -> list[dict[str, Any]]:
        """Run events in the order written (``data`` parsed); only ``kind`` when given. A ledger
        made before events existed has none."""
        if "events" not in self.db.table_names():
            return []
        sql = "SELECT * FROM events" + (" WHERE kind = ?" if kind else "") + " ORDER BY id"
        rows = []
        for r in self.db.query(sql, [kind] if kind else []):
            r = dict(r)
            r["data"] = json.loads(r["data"] or "{}")
            rows.append(r)
        return rows

    def last_stop(self) -> dict[str, Any] | None:
        """The latest ``stop`` or ``interrupted`` event not followed by a ``finished`` one, else None."""
        for e in reversed(self.events()):
            if e["kind"] == "finished":
                return None
            if e["kind"] in ("stop", "interrupted"):
                return e
        return None

    def failure_rows(self, limit: int = 5) -> list[dict[str, Any]]:
        """The latest calls that kept a raw reply (failed attempts, and calls of chunks that were
        not kept clean), newest first, with their chunk's status and reason: at most ``limit``."""
        if "reply" not in self.db["calls"].columns_dict:
            return []
        sql = (
            "SELECT k.*, c.status AS chunk_status, c.skip_reason AS chunk_skip_reason, c.error AS chunk_error "
            "FROM calls k LEFT JOIN chunks c ON c.chunk_id = k.chunk_id "
            "WHERE k.reply IS NOT NULL OR k.ok = 0 ORDER BY k.id DESC LIMIT ?"
        )
        return [dict(r) for r in self.db.query(sql, [limit])]
