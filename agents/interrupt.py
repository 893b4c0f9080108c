"""Ctrl-C that always stops a run: a bound on the graceful stop of an agent's event loop.

``asyncio.run`` answers Ctrl-C by cancelling the run's main task; the run then stops once every
task has finished cancelling (requests in flight are dropped, the ledger keeps what was
committed). A task that does not finish cancelling (a library that shields a connection's close,
a request whose reply lands as it is cancelled) would keep the run going with the interrupt
unheard: seen in full test-suite runs, where one Ctrl-C left a run going for over 60 s.
:func:`guarded` bounds that wait: :data:`GRACE_S` after the first Ctrl-C the process says what was
recorded and exits 130 at once, as after a ``kill``; every committed chunk is in the ledger
(SQLite, WAL), the uncommitted ones are pending, and the same command resumes.
"""

from __future__ import annotations

import os
import signal
import sys
import threading
from typing import Awaitable, Callable, TypeVar

T = TypeVar("T")

#: seconds a run may take to stop after Ctrl-C before it is stopped hard
GRACE_S = 10.0


def arm(recorded: Callable[[], int], grace_s: float = GRACE_S) -> Callable[[], None]:
    """Wrap the running event loop's SIGINT handler (``asyncio.Runner``'s, which cancels the main
    task) so that the first Ctrl-C also starts a timer: if the process is still running
    ``grace_s`` seconds later, it prints "interrupted: N chunks recorded ..." (N from
    ``recorded()``) and exits 130 without further clean-up.

    Returns:
        a function that puts the wrapped handler back and cancels the timer (the run stopped in
        time); a no-op outside the main thread or when SIGINT has no Python handler to wrap.
    """
    if threading.current_thread() is not threading.main_thread():
        return lambda: None
    inner = signal.getsignal(signal.SIGINT)
    if not callable(inner):
        return lambda: None
    timers: list[threading.Timer] = []

    def hard_stop() -> None:
        try:
            n = recorded()
        except Exception:  # noqa: BLE001 - the count is for the message only
            n = "?"
        sys.stderr.write(
            f"interrupted: {n} chunks recorded; the run did not stop within {grace_s:.0f} s of Ctrl-C and was "
            "stopped hard; run the same command to resume\n"
        )
        sys.stderr.flush()
        os._exit(130)

    def on_sigint(signum, frame):
        if not timers:
            timers.append(threading.Timer(grace_s, hard_stop))
            timers[0].daemon = True  # a run that stops in time exits without waiting for it
            timers[0].start()
        return inner(signum, frame)

    def restore() -> None:
        for t in timers:
            t.cancel()
        if signal.getsignal(signal.SIGINT) is on_sigint:
            signal.signal(signal.SIGINT, inner)

    signal.signal(signal.SIGINT, on_sigint)
    return restore


async def guarded(coro: Awaitable[T], recorded: Callable[[], int], grace_s: float = GRACE_S) -> T:
    """Await ``coro`` (an agent family's run, the coroutine ``asyncio.run`` runs) with Ctrl-C
    bounded by :func:`arm`; the handler is put back and the timer cancelled when it ends."""
    restore = arm(recorded, grace_s)
    try:
        return await coro
    finally:
        restore()
