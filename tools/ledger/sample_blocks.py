"""A run's accepted samples as blocks that any process can read on its own.

An export of millions of samples renders them in worker processes. Reading every row in the
exporting process and shipping it to a worker costs that process a sample's worth of work per
sample (and SQLite gives up the GIL for every row, so the writer threads beside it stall the
read); instead each worker reads its blocks from the ledger itself. A block is a range of chunk
indexes ``[start, stop)``; its rows are the accepted samples of those chunks in canonical order
(chunk order, then position) through the ``(chunk_idx, pos)`` index, so the blocks in key order
are :meth:`~prepbench.tools.ledger.RunFolder.accepted_sample_rows`, row for row.

Each process opens its own read-only connection on first use (a forked worker never touches the
connection of the process it came from). Readers see the ledger as it is when they read: the run
folder's lock keeps other writers out while an export runs.
"""

from __future__ import annotations

import os
import sqlite3
from pathlib import Path

#: ``(sample_id, chunk_id, sample_type, data JSON)``, as the ledger stores an accepted sample.
SampleRow = tuple[str, str, str, str]
#: Connections a forked process inherited, kept referenced so that it never closes them.
_INHERITED: list[sqlite3.Connection] = []


class SampleBlocks:
    """The accepted samples of one ledger, cut into chunk-index ranges of about ``per_block`` samples.

    Attributes:
        count: accepted samples in all (before any decontamination exclusion).
        keys: the blocks' ``(start, stop)`` chunk-index ranges, in order.
    """

    def __init__(self, path: Path, exported_clause: str, count: int, first: int, last: int, per_block: int = 1024) -> None:
        """Use :meth:`prepbench.tools.ledger.RunFolder.accepted_sample_blocks`.

        Args:
            path: the ledger file.
            exported_clause: the SQL condition (``" AND ..."`` or ``""``) that leaves out excluded samples.
            count: accepted samples; ``first``/``last``: their lowest and highest chunk index.
            per_block: the samples a block should hold on average.
        """
        self.path = path
        self.count = count
        chunks = last - first + 1 if count else 0
        step = max(1, round(per_block * chunks / count)) if count else 1
        self.keys = [(start, min(start + step, last + 1)) for start in range(first, last + 1, step)] if count else []
        self._sql = (
            "SELECT sample_id, chunk_id, sample_type, data FROM samples WHERE chunk_idx >= ? AND chunk_idx < ? "
            f"AND +status = 'accepted'{exported_clause} ORDER BY chunk_idx, pos"
        )
        self._conn: sqlite3.Connection | None = None
        self._pid = 0

    def read_block(self, key: tuple[int, int]) -> list[SampleRow]:
        """The rows of one block, in canonical order.

        Raises:
            sqlite3.Error: the ledger cannot be read.
        """
        if self._conn is None or self._pid != os.getpid():
            if self._conn is not None:  # a forked child: never close (nor free) the parent's connection
                _INHERITED.append(self._conn)
            self._conn = sqlite3.connect(f"file:{self.path}?mode=ro", uri=True, isolation_level=None, timeout=30)
            self._pid = os.getpid()
        return self._conn.execute(self._sql, key).fetchall()

    def close(self) -> None:
        """Close this process's connection (a later read opens another)."""
        if self._conn is not None and self._pid == os.getpid():
            self._conn.close()
        self._conn = None

    def __getstate__(self) -> dict:
        return {**self.__dict__, "_conn": None, "_pid": 0}
