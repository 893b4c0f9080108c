"""Adaptive concurrency: how many model requests are in flight, fitted to what the server takes.

:class:`AdaptiveLimit` is an asyncio limiter whose limit moves by AIMD (additive increase,
multiplicative decrease: Jacobson, "Congestion Avoidance and Control", SIGCOMM 1988, the TCP
window rule, as used for request concurrency by Netflix's concurrency-limits library): a request
that timed out or was answered 429 / 503 halves the limit (at least 1), each success adds
``1 / limit`` (so one whole request per window of successes), and the limit never exceeds the
user's ``--concurrency``. A burst of failures of requests sent before the last decrease halves
the limit only once, since they report the same overload.

Against a server that runs one request at a time (llama.cpp's Python server), requests past the
first wait in the server's queue; once those waits reach the timeout the limit falls to what the
server can serve in time, instead of piling up retries the server still works on.
"""

from __future__ import annotations

import asyncio
import time
from collections import deque
from contextlib import asynccontextmanager
from typing import AsyncIterator


class AdaptiveLimit:
    """An AIMD concurrency limit (see the module docstring).

    Args:
        ceiling: the most requests in flight (``--concurrency``), >= 1.

    Attributes:
        limit: the current limit (a float; ``int(limit)`` requests may be in flight).
        inflight: requests in flight now.
        lowest: the lowest limit reached (benchmarks and the run summary).
        decreases: how many times the limit was cut.
    """

    def __init__(self, ceiling: int):
        self.ceiling = max(1, int(ceiling))
        self.limit = float(self.ceiling)
        self.inflight = 0
        self.lowest = self.limit
        self.decreases = 0
        self._last_cut = float("-inf")
        self._waiters: deque[asyncio.Future] = deque()

    @property
    def slots(self) -> int:
        """Requests that may be in flight now (``int(limit)``, at least 1)."""
        return max(1, int(self.limit))

    @asynccontextmanager
    async def slot(self) -> AsyncIterator[float]:
        """Hold one request slot; yields the monotonic time the slot was granted (the send time).

        Slots are granted first come, first served: a freed slot is handed to the longest waiter,
        never taken by a caller that arrives later. Without this, the task that frees a slot and
        asks again at once (a retry, or a lane that moves on to its next chunk) takes it every time,
        and a lane waiting on an earlier chunk starves, holding up every commit behind it."""
        await self._acquire()
        try:
            yield time.monotonic()
        finally:
            self.inflight -= 1
            self._hand_over()

    async def _acquire(self) -> None:
        if not self._waiters and self.inflight < self.slots:
            self.inflight += 1
            return
        fut = asyncio.get_running_loop().create_future()
        self._waiters.append(fut)
        try:
            await fut  # resolved by _hand_over, which counts the slot as ours
        except asyncio.CancelledError:
            if fut.done() and not fut.cancelled():  # handed a slot, then cancelled: pass it on
                self.inflight -= 1
                self._hand_over()
            elif fut in self._waiters:
                self._waiters.remove(fut)
            raise

    def _hand_over(self) -> None:
        """Grant free slots to the waiters, oldest first (as many as the limit now allows)."""
        while self._waiters and self.inflight < self.slots:
            fut = self._waiters.popleft()
            if not fut.done():
                self.inflight += 1
                fut.set_result(None)

    def success(self) -> None:
        """A request was answered: grow by ``1 / limit`` up to the ceiling."""
        if self.limit < self.ceiling:
            self.limit = min(float(self.ceiling), self.limit + 1.0 / self.limit)
            self._hand_over()  # a grown limit may free a slot for a waiter

    def overload(self, sent_at: float) -> bool:
        """A request sent at ``sent_at`` (monotonic) timed out or was told to slow down (429/503):
        halve the limit, unless it was sent before the last cut. Returns True when the limit was cut."""
        if sent_at < self._last_cut:
            return False
        self.limit = max(1.0, self.limit / 2.0)
        self.lowest = min(self.lowest, self.limit)
        self.decreases += 1
        self._last_cut = time.monotonic()
        return True
