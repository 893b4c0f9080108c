"""User-facing errors.

Every mistake a user can make (bad corpus path, broken skill, changed run) raises a
subclass of :class:`PrepbenchError`. The CLI prints ``error: <message>`` on one line and
exits with :attr:`PrepbenchError.exit_code` (2), never a traceback.
"""

from __future__ import annotations


class PrepbenchError(Exception):
    """A user-facing error: one line, names the file (and line or field), exit code 2."""

    exit_code = 2

    def __init__(self, message: str):
        super().__init__(message)
        self.message = message

    def __str__(self) -> str:  # one line, always
        return " ".join(self.message.split("\n"))


class CorpusError(PrepbenchError):
    """A corpus path or file that cannot be ingested as a whole (missing, empty, unreadable)."""


class SkillError(PrepbenchError):
    """A skill folder that fails to load or check: names the file and the field or line."""


class LedgerError(PrepbenchError):
    """A run folder whose ledger does not match the requested run (changed skill or corpus)."""


class ModelSpecError(PrepbenchError):
    """A model spec string that cannot be resolved to a generator or chat model."""


class EnvironmentFault(PrepbenchError):
    """The machine failed the command (disk full, a folder that cannot be written): names the
    path and what to do; what was committed is kept, so the same command resumes. Exit code 3."""

    exit_code = 3
