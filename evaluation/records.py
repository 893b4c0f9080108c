"""Score records: one benchmark score of one model, as JSONL or CSV.

A score record is the unit the evaluation backend writes (``prepbench evaluate``), PGR reads
(``prepbench pgr``) and the agent-family comparison report collects. Fields:

- ``model``: a label for the model (default: the model folder's name), e.g. ``base``, ``mix``;
- ``benchmark``: the task name (``gsm8k``, ``arc_challenge``, ``legalbench`` ...);
- ``metric``: the metric key, ``<metric>`` or ``<metric>,<filter>`` (e.g. ``acc_norm``,
  ``exact_match,flexible-extract``) as lm-evaluation-harness names it;
- ``score``: the metric value, a fraction in [0, 1] for every shipped benchmark;
- ``n``: how many benchmark items the score averages over;
- optional: ``stderr``, ``primary`` (the benchmark's headline metric), ``model_path``,
  ``base_model`` (the model it was fine-tuned from, or itself), ``candidate`` (the training
  datasets, e.g. ``prepbench_fin,dolly15k``; empty for an untrained model), ``backend``,
  ``limit``, ``created`` (UTC ISO time). ``candidate``/``base_model``/``benchmark``/``score``
  are the fields ``prepbench correlate`` reads.

The file format follows the suffix: ``.jsonl`` (one JSON object per line) or ``.csv``
(header row with the field names).
"""

from __future__ import annotations

import csv
import json
import math
import os
from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import Iterable

from prepbench.tools.errors import PrepbenchError

REQUIRED = ("model", "benchmark", "metric", "score", "n")


@dataclass
class ScoreRecord:
    """One score of one model on one benchmark metric (see the module docstring for fields)."""

    model: str
    benchmark: str
    metric: str
    score: float
    n: int
    stderr: float | None = None
    primary: bool = False
    model_path: str = ""
    base_model: str = ""
    candidate: str = ""
    backend: str = ""
    limit: int | None = None
    created: str = ""

    def to_dict(self) -> dict:
        """The record as a plain dict (JSON-serialisable)."""
        return asdict(self)


def _check_format(path: Path) -> str:
    suffix = path.suffix.lower()
    if suffix not in (".jsonl", ".csv"):
        raise PrepbenchError(f"{path}: score records must be a .jsonl or .csv file, not '{suffix or path.name}'")
    return suffix


def write_records(path: str | Path, records: Iterable[ScoreRecord], append: bool = False) -> Path:
    """Write score records to ``path`` (``.jsonl`` or ``.csv``), atomically unless appending.

    Raises:
        PrepbenchError: the suffix is neither ``.jsonl`` nor ``.csv``.
    """
    p = Path(path)
    suffix = _check_format(p)
    rows = [r.to_dict() for r in records]
    if append and p.exists():
        rows = [r.to_dict() for r in read_records(p)] + rows
    p.parent.mkdir(parents=True, exist_ok=True)
    tmp = p.with_name(p.name + ".tmp")
    with open(tmp, "w", encoding="utf-8", newline="") as f:
        if suffix == ".jsonl":
            for r in rows:
                f.write(json.dumps(r, ensure_ascii=False) + "\n")
        else:
            w = csv.DictWriter(f, fieldnames=[fl.name for fl in fields(ScoreRecord)])
            w.writeheader()
            for r in rows:
                w.writerow({k: ("" if v is None else v) for k, v in r.items()})
    os.replace(tmp, p)
    return p


def _coerce(row: dict, where: str) -> ScoreRecord:
    missing = [k for k in REQUIRED if row.get(k) in (None, "")]
    if missing:
        raise PrepbenchError(f"{where}: score record lacks field '{missing[0]}'")
    try:
        score = float(row["score"])
    except (TypeError, ValueError):
        raise PrepbenchError(f"{where}: field 'score' is not a number: {row['score']!r}") from None
    if math.isnan(score):
        raise PrepbenchError(f"{where}: field 'score' is NaN")
    try:
        n = int(row["n"])
    except (TypeError, ValueError):
        raise PrepbenchError(f"{where}: field 'n' is not an integer: {row['n']!r}") from None
    if n < 0:
        raise PrepbenchError(f"{where}: field 'n' is negative")

    def opt_float(v):
        if v in (None, "", "N/A"):
            return None
        try:
            return float(v)
        except (TypeError, ValueError):
            raise PrepbenchError(f"{where}: field 'stderr' is not a number: {v!r}") from None

    primary = row.get("primary", False)
    if isinstance(primary, str):
        primary = primary.strip().lower() in ("true", "1", "yes")
    limit = row.get("limit")
    return ScoreRecord(
        model=str(row["model"]),
        benchmark=str(row["benchmark"]),
        metric=str(row["metric"]),
        score=score,
        n=n,
        stderr=opt_float(row.get("stderr")),
        primary=bool(primary),
        model_path=str(row.get("model_path") or ""),
        base_model=str(row.get("base_model") or ""),
        candidate=str(row.get("candidate") or ""),
        backend=str(row.get("backend") or ""),
        limit=int(limit) if limit not in (None, "") else None,
        created=str(row.get("created") or ""),
    )


def read_records(path: str | Path) -> list[ScoreRecord]:
    """Read score records from a ``.jsonl`` or ``.csv`` file.

    Raises:
        PrepbenchError: missing/unreadable file, bad suffix, a line that is not JSON, or a
            record lacking a required field / with a non-numeric score (names file and line).
    """
    p = Path(path)
    suffix = _check_format(p)
    if not p.is_file():
        raise PrepbenchError(f"{p}: score record file not found")
    out: list[ScoreRecord] = []
    with open(p, encoding="utf-8", newline="") as f:
        if suffix == ".jsonl":
            for i, line in enumerate(f, 1):
                if not line.strip():
                    continue
                try:
                    row = json.loads(line)
                except json.JSONDecodeError as e:
                    raise PrepbenchError(f"{p}:{i}: not valid JSON ({e.msg})") from None
                if not isinstance(row, dict):
                    raise PrepbenchError(f"{p}:{i}: a score record must be a JSON object")
                out.append(_coerce(row, f"{p}:{i}"))
        else:
            for i, row in enumerate(csv.DictReader(f), 2):
                out.append(_coerce(row, f"{p}:{i}"))
    if not out:
        raise PrepbenchError(f"{p}: no score records")
    return out
