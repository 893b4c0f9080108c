"""Files written in large blocks on a background thread, each hashed (SHA-256) as its bytes go by.

An export of millions of samples writes gigabytes: hashing them afterwards for the manifest means
reading every file again, and hashing and writing on the thread that renders the rows leaves the
second core idle. Here the rendering thread hands finished blocks of bytes to one writer thread
(:class:`BlockWriter`), which updates each file's SHA-256 and writes the block; ``hashlib`` and
the file write release the GIL on blocks this size, so both run beside the rendering. One thread
and a queue keep every file's blocks in the order they were handed over, so the bytes are those a
plain sequential write gives. At most ``depth`` blocks wait, bounding the memory held.

A write error (a full disk, a lost permission) is raised on the rendering thread at its next
hand-over or at :meth:`BlockWriter.wait`, as the ``OSError`` it was (with the file name).
"""

from __future__ import annotations

import hashlib
import os
from collections import deque
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path


class HashedFile:
    """A file opened for writing (binary, created or truncated) whose SHA-256 and size are
    computed from the bytes written to it.

    Raises (on construction):
        OSError: the file cannot be created.
    """

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self._file = open(self.path, "wb")
        self._sha = hashlib.sha256()
        self.size = 0  # bytes written so far

    def write(self, data: bytes) -> None:
        """Append ``data`` and fold it into the hash."""
        self._sha.update(data)
        self._file.write(data)
        self.size += len(data)

    def close(self) -> str:
        """Flush, ``fsync`` and close; returns the hex SHA-256 of everything written.

        Raises:
            OSError: the flush or ``fsync`` failed (a full disk shows here at the latest).
        """
        self._file.flush()
        os.fsync(self._file.fileno())
        self._file.close()
        return self._sha.hexdigest()

    def discard(self) -> None:
        """Close without syncing (the file is being abandoned: a failed export)."""
        self._file.close()


class BlockWriter:
    """Runs ``HashedFile.write`` calls on one background thread, in the order they are handed over.

    Use as a context manager; leaving it waits for every queued write (without raising when an
    exception is already on its way out) and stops the thread.

    Args:
        depth: how many blocks may wait before :meth:`write` blocks (memory: ``depth`` blocks).
    """

    def __init__(self, depth: int = 8) -> None:
        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="prepbench-writer")
        self._pending: deque[Future] = deque()
        self._depth = depth

    def write(self, file: HashedFile, data: bytes) -> None:
        """Queue ``data`` for ``file``.

        Raises:
            OSError: an earlier queued write failed.
        """
        while len(self._pending) >= self._depth:
            self._pending.popleft().result()
        self._pending.append(self._pool.submit(file.write, data))

    def wait(self) -> None:
        """Block until every queued write is done.

        Raises:
            OSError: a queued write failed (the first failure).
        """
        while self._pending:
            self._pending.popleft().result()

    def __enter__(self) -> "BlockWriter":
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        try:
            if exc_type is None:
                self.wait()
            else:
                for f in self._pending:
                    f.cancel()
                self._pending.clear()
        finally:
            self._pool.shutdown(wait=True)
