"""Where an export renders its samples: in this process, or, for a large export on a machine with
more than one core, in worker processes; the blocks come back in their order either way.

The samples are cut into blocks (of :data:`BLOCK_SAMPLES`, or the blocks of a
:class:`BlockSource`: a run's ledger, whose blocks the workers read themselves, so this process
only collects the rendered bytes and writes); each block is one call of
:func:`~prepbench.tools.export_rows.render_block` (decode, render, encode). With workers, at most
two blocks per worker are in flight and the results are taken in submission order, so the files
get the same bytes in the same order as a serial export, and memory stays a few blocks.

Workers are forked (they start in milliseconds with the skill's templates already compiled), so
they are used only where forking is safe: Linux, no other thread in this process and no Ray
connection (forking a threaded process, a Ray driver or an event loop's executor, can deadlock
the child). A worker dies
with this process (``PR_SET_PDEATHSIG``), so a killed export leaves no worker behind holding the
run folder's lock. Below :data:`PARALLEL_MIN` samples workers cost more to start than they save.
"""

from __future__ import annotations

import ctypes
import multiprocessing
import os
import signal
import sys
import threading
from collections import deque
from concurrent.futures import Future, ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from itertools import chain, islice
from typing import Any, Callable, Iterable, Iterator, Protocol, Sequence, runtime_checkable

from .errors import EnvironmentFault
from .export_rows import render_block

#: Samples per block: one call of ``render_block``, one write per format file.
BLOCK_SAMPLES = 1024
#: Samples an export must have before it renders in worker processes.
PARALLEL_MIN = 20_000
#: Most worker processes an export starts.
MAX_WORKERS = 8
_PR_SET_PDEATHSIG = 1

Rendered = tuple[int, dict[str, bytes], "list[dict] | None"]


def default_workers() -> int:
    """Worker processes for a large export: the cores this process may run on, at most
    :data:`MAX_WORKERS`; 0 (render here) on one core or where forking is not safe."""
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    return min(cores, MAX_WORKERS) if cores > 1 and _fork_is_safe() else 0


def _fork_is_safe() -> bool:
    """Linux, no other Python thread, and no Ray connection (its native threads are invisible to
    ``threading``, and a forked copy of a Ray driver can hang)."""
    ray = sys.modules.get("ray")
    if ray is not None and getattr(ray, "is_initialized", lambda: False)():
        return False
    return sys.platform == "linux" and "fork" in multiprocessing.get_all_start_methods() and threading.active_count() == 1


def _blocks(items: Iterable, size: int) -> Iterator[list]:
    it = iter(items)
    while block := list(islice(it, size)):
        yield block


@runtime_checkable
class BlockSource(Protocol):
    """Samples that come in blocks each process reads on its own
    (:class:`prepbench.tools.ledger.sample_blocks.SampleBlocks`)."""

    count: int
    keys: Sequence[Any]

    def read_block(self, key: Any) -> list: ...


def rendered_blocks(
    items: Iterable[dict | tuple[str, str, str, str]] | BlockSource,
    renders: dict[str, str],
    formats: Sequence[str],
    system: str | None = None,
    hf: bool = False,
    workers: int | None = None,
) -> Iterator[Rendered]:
    """Render ``items`` block by block, in order.

    Args:
        items: samples in export order (see :func:`~prepbench.tools.export_rows.render_block`), or
            a :class:`BlockSource`, whose blocks the workers read themselves (this process then
            only collects the rendered bytes).
        renders, formats, system, hf: as :func:`~prepbench.tools.export_rows.render_block`.
        workers: worker processes; None: :func:`default_workers` for :data:`PARALLEL_MIN` samples
            or more (fewer are rendered here); 0 or 1, or where forking is not safe (see the
            module docstring): render here.

    Yields:
        ``render_block``'s ``(n, {format: bytes}, hf_rows)`` for each block, in order.

    Raises:
        PrepbenchError: a render template error (from whichever process rendered it).
        EnvironmentFault: a worker process died (killed, out of memory).
    """
    job = (renders, formats, system, hf)
    if isinstance(items, BlockSource):
        if workers is None:
            workers = default_workers() if items.count >= PARALLEL_MIN else 0
        if workers <= 1 or not _fork_is_safe():
            for key in items.keys:
                yield render_block(items.read_block(key), *job)
            return
        yield from _in_workers(items.keys, _render_key, (items, *job), workers)
        return
    it = iter(items)
    if workers is None:
        head = list(islice(it, PARALLEL_MIN))
        workers = default_workers() if len(head) == PARALLEL_MIN else 0
        it = chain(head, it)
    if workers <= 1 or not _fork_is_safe():
        for block in _blocks(it, BLOCK_SAMPLES):
            yield render_block(block, *job)
        return
    yield from _in_workers(_blocks(it, BLOCK_SAMPLES), _render_items, (None, *job), workers)


#: What a worker renders with: ``(source or None, renders, formats, system, hf)``, set when it starts.
_JOB: tuple[Any, ...] = ()


def _start_worker(parent: int, job: tuple[Any, ...]) -> None:
    """Worker initializer: take the job, and be killed when the exporting process dies (Linux ``prctl``)."""
    global _JOB
    _JOB = job
    libc = ctypes.CDLL(None, use_errno=True)
    libc.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL)
    if os.getppid() != parent:  # the parent died before the line above
        os._exit(1)


def _render_key(key: Any) -> Rendered:
    source, *job = _JOB
    return render_block(source.read_block(key), *job)


def _render_items(block: list) -> Rendered:
    return render_block(block, *_JOB[1:])


def _in_workers(tasks: Iterable[Any], fn: Callable[[Any], Rendered], job: tuple[Any, ...], workers: int) -> Iterator[Rendered]:
    """``fn(task)`` for each task in forked worker processes (which inherit ``job``), in task order."""
    context = multiprocessing.get_context("fork")
    pool = ProcessPoolExecutor(workers, mp_context=context, initializer=_start_worker, initargs=(os.getpid(), job))
    pending: deque[Future] = deque()
    try:
        for task in tasks:
            pending.append(pool.submit(fn, task))
            if len(pending) >= 2 * workers:
                yield pending.popleft().result()
        while pending:
            yield pending.popleft().result()
    except BrokenProcessPool:
        raise EnvironmentFault(
            "export: a worker process rendering the samples died (killed, or out of memory); export again "
            "(the previous export is kept)"
        ) from None
    finally:
        pool.shutdown(wait=True, cancel_futures=True)
