"""``prepbench validate DATA --skill S``: the gate over data made anywhere.

DATA is a prepbench run folder (its accepted samples, checked against their chunks), or a
JSONL/JSON file of records in prepbench's sample shape (``sample_type`` and its fields),
plain ``question``/``answer`` records, or ShareGPT, Alpaca or OpenAI-chat rows (the first
user turn is the question, the first assistant turn the answer). A ``context`` or ``source``
field is the source text the chunk-bound rules check against. The decisions are
:func:`prepbench.tools.validate.dataset.gate_dataset`'s.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Iterator, Optional

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from prepbench.tools.cli import options as o
from prepbench.tools.errors import PrepbenchError
from prepbench.tools.validate.dataset import CONTEXT_FIELDS, DatasetRecord, DatasetVerdicts

_err = Console(stderr=True)


def _record(row: object, where: str) -> DatasetRecord:
    """One input row as a :class:`DatasetRecord`; raises PrepbenchError naming ``where``."""
    from prepbench.evaluation.readers import row_to_sample

    if not isinstance(row, dict):
        raise PrepbenchError(f"{where}: expected a JSON object, got {type(row).__name__}")
    context = next((row[k] for k in CONTEXT_FIELDS if isinstance(row.get(k), str)), None)
    if "sample_type" in row or ("question" in row and "answer" in row):
        return DatasetRecord(where, {k: v for k, v in row.items() if k not in CONTEXT_FIELDS}, context)
    if isinstance(row.get("instruction"), str) and isinstance(row.get("response"), str):
        # Dolly's shape: instruction, optional context (the source), response
        return DatasetRecord(where, {"question": row["instruction"], "answer": row["response"]}, context)
    try:
        s = row_to_sample(row, None, None, where)
    except ValueError as e:
        raise PrepbenchError(f"{where}: {e}") from None
    user = next((t for r, t in s.turns if r == "user"), "")
    assistant = next((t for r, t in s.turns if r == "assistant"), "")
    return DatasetRecord(where, {"question": user, "answer": assistant}, context)


def read_records(data: Path) -> Iterator[DatasetRecord]:
    """The records of DATA in input order (see the module docstring).

    Raises:
        PrepbenchError: a missing path, a folder that is not a run, invalid JSON or a record
            of no known shape (each names the file and line).
    """
    from prepbench.tools.jsonfile import iter_json_records
    from prepbench.tools.ledger import RunFolder

    if not data.exists():
        raise PrepbenchError(f"{data}: no such file or folder")
    if data.is_dir():
        run = RunFolder.open(data, readonly=True)
        try:
            texts: dict[str, str] = {}
            for r in run.sample_rows(status="accepted"):
                cid = r["chunk_id"]
                if cid not in texts:
                    texts[cid] = run.get_chunk(cid).text
                yield DatasetRecord(r["sample_id"], r["data"], texts[cid])
        finally:
            run.close()
        return
    for line, row in iter_json_records(data):
        yield _record(row, f"{data}:{line}")


def _summary(res: DatasetVerdicts, data: Path) -> Table:
    table = Table(title=f"gate over {escape(str(data))} ({len(res.rows)} records)")
    table.add_column("verdict")
    table.add_column("rule")
    table.add_column("records", justify="right")
    table.add_row("[green]accepted[/]", "", str(res.accepted))
    for rule, n in res.rejected.most_common():
        table.add_row("[red]rejected[/]", escape(str(rule)), str(n))
    return table


def validate_cmd(
    data: Path = typer.Argument(..., help="Run folder, or JSONL/JSON of samples (prepbench, question/answer, ShareGPT, ...)."),
    skill: o.Skill = o.SKILL,
    out: Optional[Path] = typer.Option(None, "--out", "-o", help="Write one JSON line per input record (verdict, rule)."),
    as_json: bool = typer.Option(False, "--json", help="Print the summary as JSON."),
) -> None:
    """Run a skill's gate (schema, filter rules, duplicates) over any dataset: one verdict per record."""
    from prepbench.tools.skills import load_skill
    from prepbench.tools.validate import Gate
    from prepbench.tools.validate.dataset import gate_dataset

    records = list(read_records(data))  # read all first: a malformed line fails before any output
    res = gate_dataset(Gate(load_skill(skill)), records)
    if out:
        out.parent.mkdir(parents=True, exist_ok=True)
        with out.open("w", encoding="utf-8") as f:
            f.writelines(json.dumps(r, ensure_ascii=False) + "\n" for r in res.rows)
    summary = {"records": len(res.rows), "accepted": res.accepted, "rejected": dict(res.rejected.most_common())}
    if as_json:
        typer.echo(json.dumps(summary))
    else:
        _err.print(_summary(res, data))
    if out:
        _err.print(f"wrote {escape(str(out))}")
