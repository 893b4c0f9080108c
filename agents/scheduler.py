"""Lanes and the in-order committer: how a family's work units flow through concurrent graph runs.

A *lane* is one invocation of a family's graph; several lanes run on one event loop and each
takes the next *batch* of work units (chunks, or revisits of the coverage loop) in corpus order.
Finished batches are handed to :meth:`Scheduler.finish`, which commits them strictly in the
order they were taken, so the gate's dedup state, and so the accepted set, is that of a single
lane. A lane never waits for a commit, but no lane takes a batch while ``window`` batches are
taken and not yet committed (bounded memory, bounded reordering).
"""

from __future__ import annotations

import asyncio
from typing import Any, Callable, Sequence


class Scheduler:
    """Hands out batches of work units to lanes and commits finished ones in order.

    Args:
        lanes: concurrent graph invocations (1 for the offline generator).
        batch_size: work units per batch.
        window: batches taken but not yet committed, at most (default ``4 * lanes``).
        commit: ``commit(state)``, called once per finished batch, in the order batches were taken.
        spread: cut what is left into at least this many batches (Ray workers: the last chunks
            and a small round of revisits still reach every worker); 1: always ``batch_size``.
    """

    def __init__(self, lanes: int, batch_size: int, commit: Callable[[Any], Any], window: int | None = None, spread: int = 1):
        self.lanes = max(1, lanes)
        self.batch_size = max(1, batch_size)
        self.spread = max(1, spread)
        self.window = window or 4 * self.lanes
        self.commit = commit
        self.todo: Sequence[Any] = []
        self.cursor = 0
        self.taken = 0  # batches handed out
        self.committed = 0  # batches committed
        self.finished: dict[int, Any] = {}  # batch number -> finished state awaiting its commit
        self.revisits: list[tuple[str, list[str]]] = []
        self.revisit_cursor = 0
        self.turn = asyncio.Condition()

    def start(self, todo: Sequence[Any]) -> None:
        """Begin a run over ``todo`` (call inside the event loop that runs the lanes)."""
        self.todo, self.cursor = todo, 0
        self.taken = self.committed = 0
        self.finished = {}
        self.revisits, self.revisit_cursor = [], 0
        self.turn = asyncio.Condition()

    async def next_batch(self, stopped: bool) -> tuple[list[Any], int]:
        """The next batch of the main pass and its number; an empty batch when none is left
        (or ``stopped``). Waits while the window of uncommitted batches is full."""
        if self.taken - self.committed >= self.window:
            async with self.turn:
                await self.turn.wait_for(lambda: self.taken - self.committed < self.window)
        batch = [] if stopped else list(self.todo[self.cursor : self.cursor + self._size(len(self.todo) - self.cursor)])
        self.cursor += len(batch)
        number = self.taken
        self.taken += 1 if batch else 0
        return batch, number

    async def next_revisits(
        self, plan: Callable[[], list[tuple[str, list[str]]]], stopped: Callable[[], bool]
    ) -> tuple[list, int]:
        """The next batch of the coverage loop's revisits ``[(chunk_id, [sample_type])]`` and its number.

        When the current round is used up, waits until every taken batch is committed, then calls
        ``plan()`` for the next round (planned from the committed state of the run). An empty
        batch means the loop is over.
        """
        if self.revisit_cursor >= len(self.revisits):
            async with self.turn:
                await self.turn.wait_for(lambda: self.committed == self.taken)
                if self.revisit_cursor >= len(self.revisits) and not stopped():
                    self.revisits, self.revisit_cursor = plan(), 0
        size = self._size(len(self.revisits) - self.revisit_cursor)
        part = self.revisits[self.revisit_cursor : self.revisit_cursor + size]
        self.revisit_cursor += len(part)
        if not part or stopped():
            return [], self.taken
        number = self.taken
        self.taken += 1
        return part, number

    def _size(self, left: int) -> int:
        """The next batch's size: ``batch_size``, or less so that ``left`` units make ``spread`` batches."""
        return max(1, min(self.batch_size, -(-left // self.spread)))

    async def finish(self, number: int, state: Any) -> int:
        """Hand in finished batch ``number``; commit it and every later finished one whose turn
        has come. Returns how many batches were committed now."""
        self.finished[number] = state
        done = 0
        while self.committed in self.finished:  # no await inside: one commit at a time
            self.commit(self.finished.pop(self.committed))
            self.committed += 1
            done += 1
        if done:
            async with self.turn:
                self.turn.notify_all()
        return done
