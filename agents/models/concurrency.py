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
        self._cond = asyncio.Condition()

    @property
    def slots(self) -> int:
        """Requests that may be in flight now (``int(limit)``, at least 1)."""
        return max(1, int(self.limit))

    @asynccontextmanager
    async def slot(self) -> AsyncIterator[float]:
        """Hold one request slot; yields the monotonic time the slot was granted (the send time)."""
        async with self._cond:
            await self._cond.wait_for(lambda: self.inflight < self.slots)
            self.inflight += 1
        try:
            yield time.monotonic()
        finally:
            async with self._cond:
                self.inflight -= 1
                # wake as many waiters as there are free slots (the limit may have grown), not all of them
                self._cond.notify(max(1, self.slots - self.inflight))

    def success(self) -> None:
        """A request was answered: grow by ``1 / limit`` up to the ceiling."""
        if self.limit < self.ceiling:
            self.limit = min(float(self.ceiling), self.limit + 1.0 / self.limit)

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
