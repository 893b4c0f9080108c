"""Helpers for tests that run the real `prepbench` command in a subprocess."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
SLICE = REPO / "corpora" / "finance-openstax"
SHARED = REPO.parent / "shared"
FINANCE_BOOK = SHARED / "corpora" / "finance" / "openstax-principles-of-finance"


def book_chapter(dest: Path, chapter: str, book: Path = FINANCE_BOOK) -> Path:
    """Copy one chapter of a shared book, with the book's SOURCE.md, into ``dest``; returns ``dest``."""
    dest.mkdir(parents=True, exist_ok=True)
    shutil.copy(book / chapter, dest)
    shutil.copy(book / "SOURCE.md", dest)
    return dest


def prepbench_cmd(*args: str) -> list[str]:
    return [sys.executable, "-m", "prepbench.tools.cli", *args]


def run_cli(*args: str, timeout: int = 300, cwd: str | Path | None = None) -> subprocess.CompletedProcess:
    env = {**os.environ, "COLUMNS": "200"}
    return subprocess.run(prepbench_cmd(*args), capture_output=True, text=True, timeout=timeout, cwd=cwd, env=env)


def error_lines(proc: subprocess.CompletedProcess) -> list[str]:
    return [line for line in (proc.stderr + proc.stdout).splitlines() if line.strip()]
