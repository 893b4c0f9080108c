"""SQLite faults of the ledger as one-line errors (disk full, unwritable, not a ledger).

:func:`writes` wraps the ledger's writing methods: a ``sqlite3`` error becomes an
:class:`~prepbench.tools.errors.EnvironmentFault` (exit 3) or a
:class:`~prepbench.tools.errors.LedgerError` (exit 2) naming the ledger file and what to do.
Every write is one transaction, so a failed one leaves the ledger as it was and the same
command resumes once the fault is fixed.
"""

from __future__ import annotations

import functools
import sqlite3
from pathlib import Path

from prepbench.tools.errors import EnvironmentFault, LedgerError, PrepbenchError


def ledger_fault(path: Path, exc: sqlite3.Error) -> PrepbenchError:
    """The one-line error for a sqlite3 error raised on the ledger at ``path``."""
    text = str(exc)
    low = text.lower()
    if "full" in low:
        return EnvironmentFault(
            f"{path}: disk full while writing the ledger ({text}); free space on {path.parent} "
            "and run the same command again to resume (everything committed is kept)"
        )
    if "readonly" in low or "unable to open" in low or "i/o error" in low:
        return EnvironmentFault(
            f"{path}: the ledger cannot be written ({text}); check the disk and the folder's permissions, then run again"
        )
    if "locked" in low or "busy" in low:
        return EnvironmentFault(f"{path}: the ledger is busy ({text}); another program holds it, close it and run again")
    if "not a database" in low or "malformed" in low:
        return LedgerError(f"{path}: not a prepbench ledger ({text}); choose another --out, or --fresh to start over")
    return EnvironmentFault(f"{path}: ledger error ({text})")


def writes(method):
    """Decorate a :class:`~prepbench.tools.ledger.RunFolder` method: sqlite3 errors become one-line errors."""

    @functools.wraps(method)
    def wrapper(self, *args, **kwargs):
        try:
            return method(self, *args, **kwargs)
        except sqlite3.Error as e:
            raise ledger_fault(Path(self.path), e) from None

    return wrapper
