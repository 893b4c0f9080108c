"""Read JSON records from a file: JSONL (one object per line) or one JSON array, with line numbers.

Every reader of datasets (scoring, ``prepbench validate``, benchmark test files for
decontamination) goes through :func:`iter_json_records`, so a bad line is reported the same
way everywhere: ``error: FILE:LINE: not valid JSON (...)``.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Iterator, Mapping

from prepbench.tools.errors import PrepbenchError


def iter_json_records(path: Path) -> Iterator[tuple[int, Any]]:
    """``(line_number, record)`` from a JSONL file, or from a JSON array (line = index + 1)."""
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError as e:
        raise PrepbenchError(f"{path}: not UTF-8 text ({e.reason} at byte {e.start})") from None
    stripped = text.lstrip()
    if path.suffix == ".json" or stripped.startswith("["):
        try:
            data = json.loads(text)
        except json.JSONDecodeError as e:
            raise PrepbenchError(f"{path}:{e.lineno}: not valid JSON ({e.msg})") from None
        if isinstance(data, Mapping):
            data = [data]
        if not isinstance(data, list):
            raise PrepbenchError(f"{path}: expected a JSON array of records")
        for i, rec in enumerate(data):
            yield i + 1, rec
        return
    for lineno, line in enumerate(text.split("\n"), 1):  # not splitlines(): U+2028 is data
        if not line.strip():
            continue
        try:
            yield lineno, json.loads(line)
        except json.JSONDecodeError as e:
            raise PrepbenchError(f"{path}:{lineno}: not valid JSON ({e.msg} at column {e.colno})") from None
