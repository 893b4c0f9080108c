"""The single-writer lock of a run folder (``<folder>/run.lock``).

One process at a time writes a run folder: ``prepbench run``, ``export`` and ``compare`` take
the lock (through :class:`~prepbench.tools.ledger.RunFolder`, or :class:`RunLock` for a compare
folder) and a second one is refused with a one-line :class:`RunLockedError` naming the holder's
pid (exit 2). The lock is ``fcntl.flock`` on the lock file: the OS releases it when the holding
process ends, however it ends, so the lock of a killed process is simply taken over (the file
stays; only the flock counts). The holder writes its pid into the file for the message.

Within one process the lock is counted, not re-taken: opening the same run folder twice (a
ledger and an export of it) shares one flock, released when the last holder lets go.
"""

from __future__ import annotations

import errno
import fcntl
import os
import threading
from pathlib import Path

from prepbench.tools.errors import LedgerError

LOCK_FILE = "run.lock"

_HELD: dict[str, list] = {}  # resolved lock path -> [fd, count]
_GUARD = threading.Lock()


class RunLockedError(LedgerError):
    """Another process holds the run folder's lock (names its pid)."""


def ensure_folder(folder: str | Path) -> Path:
    """Create the run folder (and its parents) when missing; return it.

    Raises:
        LedgerError: the path is an existing file, lies under a file, or cannot be created.
    """
    p = Path(folder)
    if p.exists() and not p.is_dir():
        raise LedgerError(f"{p}: is a file, not a run folder; choose another --out (a new or existing folder)")
    try:
        p.mkdir(parents=True, exist_ok=True)
    except (FileExistsError, NotADirectoryError):
        raise LedgerError(f"{p}: a part of this path is a file, not a folder; choose another --out") from None
    except OSError as e:
        raise LedgerError(f"{p}: cannot create the run folder ({e.strerror}); choose another --out") from None
    return p


def _holder(path: Path) -> str:
    try:
        pid = path.read_text(encoding="utf-8").strip()
    except OSError:
        pid = ""
    return f"pid {pid}" if pid.isdigit() else "another process"


class RunLock:
    """The single-writer lock of one folder; a context manager, or :meth:`acquire` / :meth:`release`.

    Args:
        folder: the run (or compare) folder; created when missing.
    """

    def __init__(self, folder: str | Path):
        self.folder = Path(folder)
        self.path = self.folder / LOCK_FILE
        self._held = False
        self._key = ""

    def acquire(self) -> "RunLock":
        """Take the lock (or share this process's hold on it); return self.

        Raises:
            RunLockedError: another process holds it (names its pid).
            LedgerError: the folder cannot be created or the lock file cannot be opened.
        """
        if self._held:
            return self
        ensure_folder(self.folder)
        key = self._key = str(self.path.resolve())
        with _GUARD:
            if key in _HELD:
                _HELD[key][1] += 1
                self._held = True
                return self
            try:
                fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
            except OSError as e:
                raise LedgerError(
                    f"{self.path}: cannot open the run lock ({e.strerror}); check the folder's permissions"
                ) from None
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except OSError as e:
                os.close(fd)
                if e.errno in (errno.EWOULDBLOCK, errno.EAGAIN, errno.EACCES):
                    raise RunLockedError(
                        f"{self.folder}: in use by {_holder(self.path)} (lock {self.path}); "
                        "wait for it to finish or stop it, then run this again"
                    ) from None
                raise LedgerError(f"{self.path}: cannot lock the run folder ({e.strerror})") from None
            os.ftruncate(fd, 0)
            os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
            _HELD[key] = [fd, 1]
        self._held = True
        return self

    def release(self) -> None:
        """Let go of this hold; the flock is released with the process's last hold."""
        if not self._held:
            return
        self._held = False
        key = self._key
        with _GUARD:
            entry = _HELD.get(key)
            if entry is None:
                return
            entry[1] -= 1
            if entry[1] <= 0:
                del _HELD[key]
                try:
                    os.ftruncate(entry[0], 0)
                except OSError:
                    pass
                os.close(entry[0])  # closing the descriptor releases the flock

    def __enter__(self) -> "RunLock":
        return self.acquire()

    def __exit__(self, *exc) -> None:
        self.release()
