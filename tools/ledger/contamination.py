"""The ledger's ``contamination`` table: accepted samples flagged by benchmark decontamination.

A flag never deletes or rejects a sample: the sample stays ``accepted`` (so the duplicate state
a resumed run rebuilds is the same whether or not it was flagged), and the export leaves out
every sample with a flag that ``excluded`` it (one the judge did not clear). The flags of a
pass replace the earlier flags of the same benchmarks in one transaction, with the pass's
settings in the run config (``decontamination``) and the judge's calls.
"""

from __future__ import annotations

import time
from typing import Any, Iterable, Sequence

from prepbench.tools.ledger.faults import writes

#: the columns a flag sets (besides ``sample_id`` and ``created_at``)
FLAG_FIELDS = ("benchmark", "rule", "item", "evidence", "cosine", "judge", "judge_detail", "excluded")
_INSERT = (
    f"INSERT OR REPLACE INTO contamination (sample_id, {', '.join(FLAG_FIELDS)}, created_at) "
    f"VALUES (?, {', '.join('?' for _ in FLAG_FIELDS)}, ?)"
)


class ContaminationMixin:
    """:class:`~prepbench.tools.ledger.RunFolder`'s methods for the ``contamination`` table
    (``self.db`` is the ledger's ``sqlite_utils.Database``)."""

    db: Any

    def _has_contamination(self) -> bool:
        """The ledger has the table (a read-only open of a ledger older than it may not)."""
        return "contamination" in self.db.table_names()

    def _exported_clause(self) -> str:
        """SQL condition on ``samples`` that leaves out the samples an exclusion flag holds."""
        if not self._has_contamination():
            return ""
        return " AND NOT EXISTS (SELECT 1 FROM contamination c WHERE c.sample_id = samples.sample_id AND c.excluded = 1)"

    def _insert_flags(self, sample_id: str, flags: Iterable[dict], now: float) -> None:
        """Insert one sample's flags (inside the caller's transaction)."""
        self.db.conn.executemany(
            _INSERT,
            [(sample_id, *(int(f.get(k) or 0) if k == "excluded" else f.get(k) for k in FLAG_FIELDS), now) for f in flags],
        )

    @writes
    def record_contamination(
        self, flags: Sequence[dict], benchmarks: Sequence[str], settings: dict[str, Any], calls: Iterable = ()
    ) -> None:
        """Replace the flags of ``benchmarks`` by ``flags`` in one transaction.

        Args:
            flags: ``{sample_id, benchmark, rule, item, evidence, cosine, judge, judge_detail, excluded}`` each.
            benchmarks: the benchmarks the pass checked (their earlier flags are removed).
            settings: the pass's settings, stored as the run config's ``decontamination``.
            calls: the judge's :class:`~prepbench.tools.ledger.CallRecord` rows.
        """
        now = time.time()
        with self.db.atomic():
            marks = ",".join("?" for _ in benchmarks)
            self.db.conn.execute(f"DELETE FROM contamination WHERE benchmark IN ({marks})", list(benchmarks))
            for f in flags:
                self._insert_flags(f["sample_id"], [f], now)
            self._insert_calls(calls, None, now)
            self.set_config({"decontamination": settings})

    def contamination_rows(self) -> list[dict[str, Any]]:
        """Every flag, in the canonical order of its sample, then by benchmark."""
        if not self._has_contamination():
            return []
        sql = (
            "SELECT c.*, s.sample_type FROM contamination c JOIN samples s ON s.sample_id = c.sample_id "
            "ORDER BY s.chunk_idx, s.pos, c.benchmark"
        )
        return [dict(r) for r in self.db.query(sql)]

    def contamination_counts(self) -> dict[str, dict[str, int]]:
        """Per benchmark: ``{"flagged", "excluded", "ngram_overlap", "embedding_similarity", "cleared"}``."""
        out: dict[str, dict[str, int]] = {}
        for r in self.contamination_rows():
            b = out.setdefault(
                r["benchmark"], {"flagged": 0, "excluded": 0, "ngram_overlap": 0, "embedding_similarity": 0, "cleared": 0}
            )
            b["flagged"] += 1
            b["excluded"] += r["excluded"]
            b[r["rule"]] = b.get(r["rule"], 0) + 1
            b["cleared"] += r["judge"] == "clean"
        return out

    def excluded_count(self) -> int:
        """Accepted samples the export leaves out (at least one exclusion flag)."""
        if not self._has_contamination():
            return 0
        sql = "SELECT COUNT(DISTINCT sample_id) FROM contamination WHERE excluded = 1"
        return int(self.db.execute(sql).fetchone()[0])
