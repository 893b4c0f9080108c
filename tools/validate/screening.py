"""The gate's screening in processes of its own, beside the agent's event loop.

Screening a candidate (:meth:`~prepbench.tools.validate.Gate.screen`: JSON Schema, the skill's
filter rules, spaCy's parses) is pure CPU work: measured with ``benchmarks/throughput.py`` (skill
agent, test server at 100 ms, concurrency 32) it was 4.6 of the agent's 7.7 ms of CPU per model
request, and the agent is one event loop on one core. A run that keeps many requests in flight
(``--concurrency`` of at least :data:`SCREEN_PROCESS_FROM`) on the local executor therefore
screens in child processes (:class:`ScreeningPool`, each chunk in one child): the event loop sends a chunk's candidates with its text and awaits
the verdicts while it goes on sending and reading requests, so a fast model server is not held
back by the client's single core (issue 15, "a lean request path").

The child is ``python -c`` importing this module (not :mod:`multiprocessing`, whose ``spawn``
re-runs the caller's main script in the child), started once the run's skill is loaded
(:func:`start`), so it loads its parser while the driver reads the corpus. It reads length-prefixed pickled requests on stdin and answers on
stdout, in order; requests are pipelined (several lanes' candidates wait in the pipe). It builds
its own gate from the run's skill (``Gate(skill, dedup=False)``: the same schema validators and
filter rules; duplicates stay with the driver, which decides them at commit, in corpus order), so
its verdicts are exactly the in-process ones. It ignores Ctrl-C (the driver stops the run) and
ends when its stdin closes: the driver closed it, or died. If it cannot start or dies, the
driver screens in process from then on: same verdicts, one core. A finished run leaves its
children to the next run of the same skill in this process (:func:`park`, :func:`start`), which
tells them to drop the last run's parses first.
"""

from __future__ import annotations

import asyncio
import atexit
import contextlib
import gc
import os
import pickle
import select
import signal
import struct
import subprocess
import sys
import time
from collections import OrderedDict
from typing import Any, BinaryIO

from prepbench.tools.validate.gate import Gate
from prepbench.tools.validate.rules import Verdict

#: the ``--concurrency`` from which a local chat-model run screens in a child process: below it the
#: request rate cannot keep one core busy with screening, and a child costs a process start (seconds)
SCREEN_PROCESS_FROM = 16

_HEADER = struct.Struct(">I")


def wanted(options: Any, generator: Any) -> bool:
    """Whether a run screens in children: a chat model, the local executor and ``--concurrency``
    of at least :data:`SCREEN_PROCESS_FROM` (a run of the skill, direct or ReAct family: its gate
    is rebuilt from the skill alone, which a generation mode's seed check is not)."""
    return (
        getattr(generator, "chat", None) is not None
        and not options.executor.remote
        and int(options.concurrency) >= SCREEN_PROCESS_FROM
    )


def start(skill: Any, options: Any, generator: Any) -> "ScreeningPool | None":
    """The run's screening children, started now (they load the English parser, seconds, while the
    driver reads the corpus and opens the ledger), or None when the run screens in process
    (:func:`wanted`). Their in-process fallback is a gate of the same skill without duplicate state
    (duplicates are the driver's, decided at commit). Children that an earlier run of this process
    left (:func:`park`) for the same skill are taken instead of starting new ones."""
    if not wanted(options, generator):
        return None
    gate, n = Gate(skill, dedup=False), processes_for()
    global _PARKED
    parked, _PARKED = _PARKED, None
    if parked is not None and parked.reusable_for(gate, n):
        parked.rebind(gate)
        return parked
    if parked is not None:
        parked.close()
    return ScreeningPool(gate, n)


def _skill_key(skill: Any) -> str:
    """What tells two skills apart for kept children: ``Skill.content_hash`` (its files and its
    parents'); empty when there is none, and such children are not kept."""
    return str(getattr(skill, "content_hash", "") or "")


#: the children a finished run left for the next run of this process (:func:`park`)
_PARKED: "ScreeningPool | None" = None


def park(pool: "ScreeningPool") -> None:
    """End a run's use of ``pool``: keep its children for the next run of this process with the
    same skill (``prepbench compare`` runs families and models one after another: each would
    otherwise start children and load the parser again, about 1.2 CPU-seconds each), or end them
    when one is gone or still owes answers. The process's exit ends kept children."""
    global _PARKED
    if _PARKED is not None and _PARKED is not pool:
        _PARKED.close()
    if pool.idle():
        _PARKED = pool
    else:
        _PARKED = None
        pool.close()


@atexit.register
def _close_parked() -> None:
    global _PARKED
    parked, _PARKED = _PARKED, None
    if parked is not None:
        parked.close()


# -- the child ---------------------------------------------------------------------------


def _write_frame(stream: BinaryIO, value: Any) -> None:
    body = pickle.dumps(value, protocol=pickle.HIGHEST_PROTOCOL)
    stream.write(_HEADER.pack(len(body)) + body)
    stream.flush()


#: the most requests a child screens together (:class:`FrameReader`): those already waiting in its pipe
MERGE_MAX = 16


class FrameReader:
    """Length-prefixed pickled frames from a pipe's file descriptor, read in batches: every
    complete frame that is already waiting, so a child behind the lanes screens them in one
    ``Language.pipe`` batch (the neural parser costs less per text in larger batches: 4.66 ms per
    candidate one request at a time, 4.15 ms eight at a time, on frames captured from
    ``benchmarks/throughput.py``).

    Args:
        fd: the pipe's file descriptor (the child's stdin).
    """

    def __init__(self, fd: int):
        self.fd = fd
        self._buf = bytearray()
        self._eof = False

    def _fill(self, block: bool) -> bool:
        """Read what the pipe holds into the buffer (waiting for it when ``block``); False at
        the end of the pipe or, without ``block``, when nothing is waiting."""
        if self._eof or (not block and not select.select([self.fd], [], [], 0)[0]):
            return False
        data = os.read(self.fd, 1 << 20)
        if not data:
            self._eof = True
            return False
        self._buf += data
        return True

    def _take(self) -> Any:
        """The next complete frame in the buffer, or :data:`_PARTIAL` when it has not all come."""
        if len(self._buf) < _HEADER.size:
            return _PARTIAL
        (n,) = _HEADER.unpack_from(self._buf)
        end = _HEADER.size + n
        if len(self._buf) < end:
            return _PARTIAL
        value = pickle.loads(self._buf[_HEADER.size : end])
        del self._buf[:end]
        return value

    def next(self) -> Any:
        """The next frame, waiting for it; None at the end of the pipe."""
        while (value := self._take()) is _PARTIAL:
            if not self._fill(block=True):
                return None
        return value

    def batch(self, most: int = MERGE_MAX) -> list:
        """The next frame (waiting for it) and up to ``most - 1`` more that are complete already;
        empty at the end of the pipe."""
        first = self.next()
        if first is None:
            return []
        frames = [first]
        while len(frames) < most:
            value = self._take()
            if value is _PARTIAL and self._fill(block=False):
                continue
            if value is _PARTIAL:
                break
            frames.append(value)
        return frames


_PARTIAL = object()


def _screen_frames(gate: Gate, frames: list[list]) -> list[tuple]:
    """Each frame's answer ``(ok, verdicts or the exception)``: the frames' candidates screened in
    one batch; when that raises, frame by frame, so only the frame at fault gets the exception."""
    try:
        verdicts = gate.screen_many([item for items in frames for item in items])
    except Exception:
        verdicts = None
    if verdicts is not None:
        out, at = [], 0
        for items in frames:
            out.append((True, verdicts[at : at + len(items)]))
            at += len(items)
        return out
    answers = []
    for items in frames:
        try:
            answers.append((True, gate.screen_many(items)))
        except Exception as e:
            answers.append((False, e))
    return answers


#: the frame that tells a kept child a new run begins (:meth:`ScreeningProcess.new_run`); it has no answer
_NEW_RUN = "new run"


def _clear_caches() -> None:
    """Drop the last run's parses and chunk indexes, as a kept Ray worker does
    (:func:`prepbench.tools.nlp.clear_caches`): one run's texts do not hold a child's memory,
    and a run screens as a child's first run would."""
    from prepbench.tools import nlp
    from prepbench.tools.validate import rules_language

    nlp.clear_caches()
    rules_language.clear_caches()


def serve() -> None:
    """The child's loop: the first frame is the pickled skill, then each frame ``(items)`` gets
    the answer ``(ok, verdicts or the exception, cpu_s)`` (``ok`` None: the gate could not be
    built), in order; the frames waiting together are screened together (:class:`FrameReader`).
    Ends at the end of stdin."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    stdout = sys.stdout.buffer
    sys.stdout = sys.stderr  # nothing but frames goes to the driver's pipe
    reader = FrameReader(sys.stdin.fileno())
    skill = reader.next()
    if skill is None:
        return
    try:
        gate = Gate(skill, dedup=False)
        gate.warm()
    except BaseException as e:  # reported at the first request; the driver screens in process then
        gate, failure = None, e
    gc.collect()
    gc.freeze()  # the parser's heap out of the cyclic collector's walks (as the driver's frozen_heap)
    while frames := reader.batch():
        if _NEW_RUN in frames:  # sent before a new run's first candidates, once the last run's are answered
            _clear_caches()
            frames = [f for f in frames if f != _NEW_RUN]
            if not frames:
                continue
        c0 = time.process_time()
        answers = [(None, failure)] * len(frames) if gate is None else _screen_frames(gate, frames)
        cpu = time.process_time() - c0 if gate is not None else 0.0
        total = sum(len(items) for items in frames) or 1
        for items, answer in zip(frames, answers):  # the CPU shared by candidates
            _write_frame(stdout, (*answer, cpu * len(items) / total))


# -- the driver --------------------------------------------------------------------------


class ScreeningProcess:
    """One child process that screens candidates with a gate built from ``gate``'s skill.

    Args:
        gate: the run's gate (its skill is sent to the child; its own state stays here, and it
            screens in process once the child is gone).

    Attributes:
        cpu_s: CPU seconds the child spent screening (the throughput benchmark reports it).
        broken: the child could not start or died; screening is in process from then on.
    """

    def __init__(self, gate: Gate):
        self.gate = gate
        self.cpu_s = 0.0
        self.broken = False
        self._proc: subprocess.Popen | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._reader: asyncio.StreamReader | None = None
        self._read_transport: asyncio.BaseTransport | None = None
        self._writer: asyncio.StreamWriter | None = None
        self._waiting: list[asyncio.Future] = []  # answers come in request order
        self._pump: asyncio.Task | None = None
        self._ready: asyncio.Event | None = None
        self._owed = False  # detached while answers were owed: the pipe may still bring them
        self.skill_digest = ""  # the content hash of the skill the child built its gate from
        env = dict(os.environ, PYTHONPATH=os.pathsep.join(p for p in sys.path if p))
        try:
            self._proc = subprocess.Popen(
                [sys.executable, "-c", "from prepbench.tools.validate.screening import serve; serve()"],
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                env=env,
            )
            self.skill_digest = _skill_key(gate.skill)
            _write_frame(self._proc.stdin, gate.skill)  # type: ignore[arg-type]
        except (OSError, pickle.PicklingError):
            self._fail()

    async def _connect(self) -> None:
        """Attach the child's pipes to the running event loop (once per loop: :meth:`release`
        detaches them). The transports own duplicates of the pipes' descriptors, so closing them
        leaves the child running for a later loop or run."""
        loop = asyncio.get_running_loop()
        if self._loop is None:  # the first caller attaches; lanes arriving meanwhile wait for it
            self._loop, self._ready = loop, asyncio.Event()
            try:
                proc = self._proc
                assert proc is not None and proc.stdout is not None and proc.stdin is not None
                reader = asyncio.StreamReader(limit=2**31 - 1)
                rfile = os.fdopen(os.dup(proc.stdout.fileno()), "rb", buffering=0)
                wfile = os.fdopen(os.dup(proc.stdin.fileno()), "wb", buffering=0)
                self._read_transport, _ = await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), rfile)
                transport, protocol = await loop.connect_write_pipe(asyncio.streams.FlowControlMixin, wfile)
                self._reader, self._writer = reader, asyncio.StreamWriter(transport, protocol, None, loop)
                self._pump = loop.create_task(self._read_answers())
            finally:
                self._ready.set()
        await self._ready.wait()
        if self._writer is None:
            raise ConnectionError("the screening process's pipes could not be attached")

    async def _read_answers(self) -> None:
        reader = self._reader
        assert reader is not None
        try:
            while True:
                head = await reader.readexactly(_HEADER.size)
                body = await reader.readexactly(_HEADER.unpack(head)[0])
                fut = self._waiting.pop(0)
                if not fut.done():
                    fut.set_result(pickle.loads(body))
        except (asyncio.IncompleteReadError, ConnectionError, OSError, IndexError, pickle.UnpicklingError):
            self._fail()

    def _fail(self) -> None:
        """The child is gone: everything waiting is screened in process by its caller."""
        self.broken = True
        waiting, self._waiting = self._waiting, []
        for fut in waiting:
            if not fut.done():
                fut.set_result(None)
        if self._loop is not None:
            self.release()
        self.close()

    async def screen_many(self, items: list[tuple[dict, str | None]]) -> list[Verdict]:
        """:meth:`Gate.screen_many` of ``items`` (``(sample, chunk_text)``), in order, run in the child.

        Raises:
            What screening raises (an environment fault, such as a missing English parser).
        """
        if not items:
            return []
        if self.broken or self._proc is None:
            return self.gate.screen_many(items)
        try:
            await self._connect()
            fut = asyncio.get_running_loop().create_future()
            self._waiting.append(fut)
            body = pickle.dumps(items, protocol=pickle.HIGHEST_PROTOCOL)
            self._writer.write(_HEADER.pack(len(body)) + body)  # type: ignore[union-attr]
            await self._writer.drain()  # type: ignore[union-attr]
            answer = await fut
        except (ConnectionError, OSError, pickle.PicklingError):
            self._fail()
            answer = None
        if answer is None:  # the child is gone
            return self.gate.screen_many(items)
        ok, value, cpu = answer
        self.cpu_s += cpu
        if ok is None:  # the child could not build its gate: the driver screens, and reports what it finds
            self._fail()
            return self.gate.screen_many(items)
        if not ok:
            raise value  # screening itself failed: as it would have here
        return value

    def release(self) -> None:
        """Detach the pipes from the running event loop (call before it ends). The child stays:
        a later event loop attaches again, and :meth:`close` ends it. Answers still owed then
        make the child unfit for another run (:meth:`idle`)."""
        if self._pump is not None:
            self._pump.cancel()
        for transport in (self._writer.transport if self._writer is not None else None, self._read_transport):
            if transport is not None:
                transport.close()
        self._owed = self._owed or bool(self._waiting)
        self._reader, self._writer, self._pump, self._read_transport = None, None, None, None
        self._loop, self._ready = None, None

    def new_run(self) -> None:
        """Tell the child a new run begins (it drops the last run's parses); the child goes on."""
        if self._proc is None or self._proc.stdin is None:
            return
        try:
            _write_frame(self._proc.stdin, _NEW_RUN)  # a few bytes: the idle pipe takes them
        except OSError:
            self._fail()

    def idle(self) -> bool:
        """Whether the child is running and owes no answer: fit for another run (:func:`park`)."""
        return not self.broken and not self._owed and not self._waiting and self._proc is not None and self._proc.poll() is None

    def close(self) -> None:
        """End the child: its stdin closes, it finishes the request at hand and exits."""
        proc, self._proc = self._proc, None
        if proc is None:
            return
        with contextlib.suppress(OSError):
            if proc.stdin is not None:
                proc.stdin.close()
        try:
            proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        with contextlib.suppress(OSError):
            if proc.stdout is not None:
                proc.stdout.close()


#: screening children per run, at least and at most (:func:`processes_for`)
SCREEN_PROCESSES_MIN, SCREEN_PROCESSES_MAX = 2, 4


def processes_for(cpus: int | None = None) -> int:
    """How many screening children a run starts: one per core but the event loop's, at least
    :data:`SCREEN_PROCESSES_MIN` and at most :data:`SCREEN_PROCESSES_MAX`. On 2 cores two children
    still pay: screening comes in bursts (a batch's candidates at once), and a single child was
    measured busy through them while the cores were a third idle (``benchmarks/throughput.py``)."""
    cpus = cpus if cpus is not None else (os.cpu_count() or 2)
    return max(SCREEN_PROCESSES_MIN, min(SCREEN_PROCESSES_MAX, cpus - 1))


#: chunks whose child a pool remembers, newest first: many times the chunks in flight (at most
#: 4 x --concurrency), so a run of a million chunks does not keep one entry each
HOMES_KEPT = 16_384


class ScreeningPool:
    """Several :class:`ScreeningProcess` children, each screening the candidates of its share of
    the chunks. A chunk's first candidates go to the child with the fewest candidates waiting, and
    all its later ones to the same child, so its sentences are parsed once, in that child's cache.
    Verdicts are each candidate's own, in the order asked, whichever child gives them.

    Placing chunks by load, not by a checksum of their text, matters because a batch of lanes'
    chunks waits for its slowest: with chunks placed by CRC32, ``benchmarks/throughput.py`` showed
    one child at 100% CPU for 1.3 s while the other and the event loop stood mostly idle.

    Args:
        gate: the run's gate (each child builds its own from the skill).
        n: children to start (:func:`processes_for`).

    Attributes:
        children: the :class:`ScreeningProcess` objects.
    """

    def __init__(self, gate: Gate, n: int):
        self.children = [ScreeningProcess(gate) for _ in range(max(1, n))]
        self._waiting = [0] * len(self.children)  # candidates sent to each child and not answered yet
        self._home: OrderedDict[int, int] = OrderedDict()  # hash of a chunk's text -> its child, newest last

    @property
    def cpu_s(self) -> float:
        """CPU seconds all children spent screening."""
        return sum(c.cpu_s for c in self.children)

    def _child_of(self, chunk_text: str | None) -> int:
        """The child that screens ``chunk_text``'s candidates: where its first ones went, else the
        one with the fewest candidates waiting (the lowest index among equals)."""
        key = hash(chunk_text or "")
        home = self._home.get(key)
        if home is None:
            home = self._home[key] = min(range(len(self.children)), key=self._waiting.__getitem__)
            if len(self._home) > HOMES_KEPT:  # a chunk long done: placed anew if it ever came back
                self._home.popitem(last=False)
        return home

    async def _screen_share(self, k: int, items: list[tuple[dict, str | None]]) -> list[Verdict]:
        try:  # counted as waiting when placed (screen_many)
            return await self.children[k].screen_many(items)
        finally:
            self._waiting[k] -= len(items)

    async def screen_many(self, items: list[tuple[dict, str | None]]) -> list[Verdict]:
        """:meth:`ScreeningProcess.screen_many` of ``items``, each chunk's share in its own child, concurrently."""
        shares: dict[int, list[int]] = {}
        for i, (_, text) in enumerate(items):
            k = self._child_of(text)
            shares.setdefault(k, []).append(i)
            self._waiting[k] += 1  # at once, so this batch's next new chunk sees it
        answers = await asyncio.gather(*(self._screen_share(k, [items[i] for i in idx]) for k, idx in shares.items()))
        out: list[Verdict | None] = [None] * len(items)
        for idx, verdicts in zip(shares.values(), answers):
            for i, v in zip(idx, verdicts):
                out[i] = v
        return out  # type: ignore[return-value] - every index is one child's

    def reusable_for(self, gate: Gate, n: int) -> bool:
        """Whether these children can screen a new run of ``gate``'s skill with ``n`` children:
        as many, all :meth:`~ScreeningProcess.idle`, built from the same skill (its ``content_hash``:
        the files of the skill and its parents)."""
        digest = _skill_key(gate.skill)
        return bool(digest) and self.idle() and len(self.children) == n and all(c.skill_digest == digest for c in self.children)

    def rebind(self, gate: Gate) -> None:
        """Serve a new run: its gate is the in-process fallback; the children drop the last run's
        parses; chunk placement and CPU start afresh."""
        for c in self.children:
            c.gate, c.cpu_s = gate, 0.0
            c.new_run()
        self._waiting = [0] * len(self.children)
        self._home = OrderedDict()

    def idle(self) -> bool:
        """:meth:`ScreeningProcess.idle` of every child."""
        return all(c.idle() for c in self.children)

    def release(self) -> None:
        """:meth:`ScreeningProcess.release` of every child."""
        for c in self.children:
            c.release()

    def close(self) -> None:
        """:meth:`ScreeningProcess.close` of every child."""
        for c in self.children:
            c.close()
