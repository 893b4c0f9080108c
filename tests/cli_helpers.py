"""Helpers for tests that run the real `prepbench` command in a subprocess."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
SLICE = REPO / "corpora" / "finance-openstax"
SHARED = REPO.parent / "shared"


def prepbench_cmd(*args: str) -> list[str]:
    return [sys.executable, "-m", "prepbench.tools.cli", *args]


def run_cli(*args: str, timeout: int = 300, cwd: str | Path | None = None) -> subprocess.CompletedProcess:
    env = {**os.environ, "COLUMNS": "200"}
    return subprocess.run(prepbench_cmd(*args), capture_output=True, text=True, timeout=timeout, cwd=cwd, env=env)


def error_lines(proc: subprocess.CompletedProcess) -> list[str]:
    return [line for line in (proc.stderr + proc.stdout).splitlines() if line.strip()]
