"""Replace a folder of files as one set: a reader or a kill sees the old set or the new, never a mix.

:func:`replace_set` writes the new files into a fresh sibling folder ``<name>.tmp-<pid>`` (same
file system), then switches it in:

* no folder yet: one ``rename`` of the new folder to the target (atomic);
* a folder there (Linux): ``renameat2(RENAME_EXCHANGE)`` swaps the two folders in one atomic
  step, and the old set, now in ``<name>.tmp-<pid>``, is removed;
* elsewhere (no ``renameat2``, or a file system without exchange): the old folder is renamed to
  ``<name>.old-<pid>`` and the new one to the target; a kill between those two renames leaves
  no target folder but both complete sets beside it, and the next export removes them.

Partials of a killed export (``<name>.tmp-<pid>`` / ``<name>.old-<pid>`` of a process that is
gone, and the ``*.tmp`` files of the earlier file-by-file scheme) are removed by the next one.
No symlinks: the target stays a plain folder that LlamaFactory, ``cp -r`` and ``sha256sum`` read.

Every set carries ``manifest.json``: the SHA-256 and size of each of its other files (by path
relative to the folder, sub-folders included), written last inside the new folder, so a set and
its manifest are switched in together and always agree (:func:`verify_manifest` checks a folder).
"""

from __future__ import annotations

import ctypes
import errno
import hashlib
import json
import os
import re
import shutil
from pathlib import Path
from typing import Callable, Iterable

from .errors import EnvironmentFault, PrepbenchError

MANIFEST = "manifest.json"
_AT_FDCWD = -100
_RENAME_EXCHANGE = 2


def _exchange(a: Path, b: Path) -> bool:
    """Atomically swap two paths with Linux ``renameat2(RENAME_EXCHANGE)``; False where unsupported."""
    try:
        fn = ctypes.CDLL(None, use_errno=True).renameat2
    except (AttributeError, OSError):
        return False
    fn.argtypes = [ctypes.c_int, ctypes.c_char_p, ctypes.c_int, ctypes.c_char_p, ctypes.c_uint]
    if fn(_AT_FDCWD, os.fsencode(a), _AT_FDCWD, os.fsencode(b), _RENAME_EXCHANGE) == 0:
        return True
    err = ctypes.get_errno()
    if err in (errno.ENOSYS, errno.EINVAL, errno.ENOTSUP, errno.EOPNOTSUPP):
        return False
    raise OSError(err, os.strerror(err), str(b))


def _alive(pid: int) -> bool:
    if pid == os.getpid():
        return False  # our own leftovers (an earlier failed export in this process)
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def clean_stale(target: Path, own_names: Iterable[str]) -> list[Path]:
    """Remove what killed exports into ``target`` left: sibling ``.tmp-<pid>``/``.old-<pid>``
    folders of processes that are gone, and ``<own name>.tmp`` files inside. Returns the removed paths."""
    removed: list[Path] = []
    pattern = re.compile(re.escape(target.name) + r"\.(tmp|old)-(\d+)$")
    if target.parent.is_dir():
        for p in target.parent.iterdir():
            m = pattern.match(p.name)
            if m and not _alive(int(m.group(2))):
                if p.is_dir():
                    shutil.rmtree(p, ignore_errors=True)
                else:
                    p.unlink(missing_ok=True)
                removed.append(p)
    if target.is_dir():
        for name in own_names:
            partial = target / (name + ".tmp")
            if partial.exists():
                partial.unlink()
                removed.append(partial)
    return removed


def _check_target(target: Path, own_names: set[str]) -> None:
    if target.exists() and not target.is_dir():
        raise PrepbenchError(f"{target}: is a file, not an export folder; choose another --out (a new or empty folder)")
    if target.is_dir():
        foreign = sorted(p.name for p in target.iterdir() if p.name not in own_names and p.name[:-4] not in own_names)
        if foreign:
            raise PrepbenchError(
                f"{target}: holds files that are not part of a prepbench export ({', '.join(foreign[:3])}); "
                "the export replaces the whole folder, so choose a new or empty --out"
            )


def _switch(new: Path, target: Path) -> None:
    """Put the complete folder ``new`` in ``target``'s place (see the module docstring)."""
    if not target.exists():
        os.rename(new, target)
    elif _exchange(new, target):
        shutil.rmtree(new)  # now the old set
    else:
        old = target.with_name(f"{target.name}.old-{os.getpid()}")
        os.rename(target, old)
        os.rename(new, target)
        shutil.rmtree(old)
    fd = os.open(target.parent, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def write_manifest(folder: Path, known: dict[str, tuple[str, int]] | None = None) -> dict:
    """Write ``folder/manifest.json``: ``{"algorithm": "sha256", "files": {relpath: {"sha256", "bytes"}}}``
    over every other file under ``folder``, in path order (POSIX separators). Returns the manifest.

    Args:
        folder: the new set's folder.
        known: ``{relpath: (sha256 hex, bytes)}`` of files whose digest the writer computed as it
            wrote them (:class:`~prepbench.tools.hashed_files.HashedFile`); they are not read
            again, unless their size on disk differs from the one given. Every other file is read.
    """
    known = known or {}
    files = sorted(p for p in folder.rglob("*") if p.is_file() and p.relative_to(folder).as_posix() != MANIFEST)
    entries = {}
    for p in files:
        rel, size = p.relative_to(folder).as_posix(), p.stat().st_size
        digest = known[rel][0] if rel in known and known[rel][1] == size else _sha256(p)
        entries[rel] = {"sha256": digest, "bytes": size}
    manifest = {"algorithm": "sha256", "files": entries}
    with open(folder / MANIFEST, "w", encoding="utf-8") as f:
        f.write(json.dumps(manifest, indent=2) + "\n")
        f.flush()
        os.fsync(f.fileno())
    return manifest


def verify_manifest(folder: str | Path) -> list[str]:
    """The problems of ``folder`` against its ``manifest.json`` (empty when every checksum verifies):
    a listed file missing or changed, or a file the manifest does not list.

    Raises:
        PrepbenchError: no readable ``manifest.json``.
    """
    folder = Path(folder)
    try:
        listed = json.loads((folder / MANIFEST).read_text(encoding="utf-8"))["files"]
    except (OSError, ValueError, KeyError) as e:
        raise PrepbenchError(f"{folder / MANIFEST}: no readable manifest ({type(e).__name__})") from None
    problems = []
    for rel, entry in listed.items():
        p = folder / rel
        if not p.is_file():
            problems.append(f"{rel}: missing")
        elif _sha256(p) != entry["sha256"]:
            problems.append(f"{rel}: SHA-256 differs from the manifest")
    present = {p.relative_to(folder).as_posix() for p in folder.rglob("*") if p.is_file()}
    problems += [f"{rel}: not in the manifest" for rel in sorted(present - set(listed) - {MANIFEST})]
    return problems


def replace_set(target: str | Path, write: Callable[[Path], dict[str, tuple[str, int]] | None], own_names: Iterable[str]) -> None:
    """Replace the folder ``target`` by the files ``write(folder)`` puts in a fresh folder, at once.

    Args:
        target: the folder to replace (created with its parents when missing).
        write: writes every file of the new set into the folder it is given (``manifest.json``
            is added after it, over everything it wrote); it may return the ``{relpath: (sha256,
            bytes)}`` of files it hashed while writing, which the manifest then takes as they are.
        own_names: the file names a set consists of; a target holding other files is refused.

    Raises:
        PrepbenchError: ``target`` is a file, lies under a file, or holds files of its own.
        EnvironmentFault: the disk is full or the folder cannot be written (the previous set is kept).
    """
    target = Path(target)
    own = {*own_names, MANIFEST}
    _check_target(target, own)
    new = target.with_name(f"{target.name}.tmp-{os.getpid()}")
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        clean_stale(target, own)
        shutil.rmtree(new, ignore_errors=True)
        new.mkdir()
        known = write(new)
        write_manifest(new, known)
        _switch(new, target)
    except (FileExistsError, NotADirectoryError):
        raise PrepbenchError(f"{target}: a part of this path is a file, not a folder; choose another --out") from None
    except OSError as e:
        where = e.filename or target
        raise EnvironmentFault(
            f"{where}: cannot write the export ({e.strerror or e}); free space or fix the folder's permissions, "
            "then export again (the previous export is kept)"
        ) from None
    finally:
        if new.exists():
            shutil.rmtree(new, ignore_errors=True)
