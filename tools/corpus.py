"""The corpus tools an agent may use: the run's chunks by id, and full-text search over them.

Confined to the run: an agent sees the chunks recorded in the ledger, nothing on disk.
Search is SQLite FTS5 (in memory, Porter stemming, BM25 ranking: Robertson & Zaragoza 2009,
"The Probabilistic Relevance Framework: BM25 and Beyond").
"""

from __future__ import annotations

import re
import sqlite3

from prepbench.tools.chunking import Chunk


class FTSIndex:
    """SQLite FTS5 full-text index over the run's chunks (in memory, BM25 ranking).

    Args:
        rows: ``(chunk_id, heading_path, text)`` triples.
    """

    def __init__(self, rows: list[tuple[str, str, str]]):
        self.db = sqlite3.connect(":memory:", check_same_thread=False)
        self.db.execute("CREATE VIRTUAL TABLE fts USING fts5(chunk_id UNINDEXED, heading, text, tokenize='porter unicode61')")
        self.db.executemany("INSERT INTO fts (chunk_id, heading, text) VALUES (?, ?, ?)", rows)

    def search(self, query: str, limit: int = 5) -> list[dict]:
        """Chunks matching any word of ``query``, best first: ``[{chunk_id, heading, snippet}]``."""
        words = re.findall(r"\w+", query.lower())[:16]
        if not words:
            return []
        match = " OR ".join(f'"{w}"' for w in words)
        rows = self.db.execute(
            "SELECT chunk_id, heading, snippet(fts, 2, '[', ']', ' … ', 24) FROM fts WHERE fts MATCH ? ORDER BY bm25(fts) LIMIT ?",
            (match, max(1, min(int(limit), 20))),
        ).fetchall()
        return [{"chunk_id": r[0], "heading": r[1], "snippet": r[2]} for r in rows]


class Corpus:
    """A run's chunks, by id and searchable.

    Args:
        chunks: the run's chunks in corpus order (:meth:`prepbench.tools.ledger.RunFolder.chunks`).
    """

    def __init__(self, chunks: list[Chunk]):
        self._chunks = {c.chunk_id: c for c in chunks}
        self.index = FTSIndex([(c.chunk_id, " > ".join(c.heading_path), c.text) for c in chunks])

    def chunk(self, chunk_id: str) -> Chunk:
        """The chunk ``chunk_id``.

        Raises:
            KeyError: not a chunk of this run.
        """
        return self._chunks[chunk_id]

    def search(self, query: str, limit: int = 5) -> list[dict]:
        """Chunks matching any word of ``query``, best first: ``[{chunk_id, heading, snippet}]`` (at most 20)."""
        return self.index.search(query, limit)
