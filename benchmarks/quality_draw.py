"""Draw accepted samples at random, with their source chunks, for blind reading and labelling.

For each run folder given as DOMAIN=RUN, draws N accepted samples (seeded, without
replacement) from the ledger and writes one JSON line per sample: ``id``, ``domain``,
``origin`` (the run's generator: ``extractive`` or the chat model's spec), ``heading_path``,
``chunk`` (the source chunk's text) and ``sample`` (the sample as stored). ``--all`` draws from
every candidate the gate saw that has its sample type's shape (rejected by a filter rule too): what a labelled benchmark of a gate needs from a
chat model, whose candidates are mostly rejected.
``--readable`` also writes the same draw as a plain
text file for a reader: no generator name, no rule, nothing but the chunk and the sample.

The labelled benchmark (``tests/fixtures/quality/``, read by ``benchmarks/quality_gate.py``)
was drawn this way; the blind readings quoted in issue notes too.

Usage: python benchmarks/quality_draw.py DOMAIN=RUN [...] --n 50 --seed 10 --out FILE.jsonl
       [--readable FILE.txt] [--id-prefix P] [--all]
"""

from __future__ import annotations

import argparse
import json
import random
import sqlite3
from pathlib import Path

# prepbench's bookkeeping and the generator's own annotations: not shown to a reader.
HIDDEN = {"sample_id", "chunk_id", "instruction", "output", "input", "knowledge_point", "question_type"}


def draw(domain: str, run: Path, n: int, seed: int, rejected_too: bool = False) -> list[dict]:
    """``n`` accepted samples (``rejected_too``: candidates of any verdict) of the run folder
    ``run`` with their chunks, drawn with ``seed``.

    Returns dicts with ``domain``, ``origin``, ``heading_path``, ``chunk`` and ``sample``; raises
    FileNotFoundError when the run has no ledger.
    """
    path = run / "ledger.sqlite"
    if not path.is_file():
        raise FileNotFoundError(f"{run}: no ledger.sqlite")
    con = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    # a candidate the JSON Schema refused is no sample to read: the filter rules are what a label tests
    where = "WHERE COALESCE(s.rule, '') != 'schema' " if rejected_too else "WHERE s.status = 'accepted' "
    rows = con.execute(
        "SELECT s.sample_id, s.data, c.heading_path, c.text FROM samples s JOIN chunks c USING (chunk_id) "
        f"{where}ORDER BY s.chunk_idx, s.pos"
    ).fetchall()
    origin = _origin(con)
    con.close()
    picked = random.Random(f"{seed}:{domain}").sample(rows, min(n, len(rows)))
    out = []
    for sample_id, data, heading, text in picked:
        sample = json.loads(data)
        out.append(
            {"sample_id": sample_id, "domain": domain, "origin": origin, "heading_path": heading, "chunk": text, "sample": sample}
        )
    return out


def _origin(con: sqlite3.Connection) -> str:
    """The generator of the run whose ledger is ``con``: ``extractive`` or the chat model's spec."""
    for (value,) in con.execute("SELECT value FROM run WHERE key = 'model'"):
        try:
            return str(json.loads(value))
        except ValueError:
            return value
    return "unknown"


def readable(rec: dict) -> str:
    """One record as plain text for a reader: id, heading, chunk, then the sample's fields."""
    lines = [f"=== {rec['id']} ({rec['domain']}) ===", f"heading: {rec['heading_path']}", "--- source chunk ---"]
    lines.append(rec["chunk"].strip())
    lines.append("--- sample ---")
    for k, v in rec["sample"].items():
        if k in HIDDEN:
            continue
        lines.append(f"{k}: {json.dumps(v, ensure_ascii=False) if not isinstance(v, str) else v}")
    return "\n".join(lines) + "\n"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("runs", nargs="+", help="DOMAIN=RUN_FOLDER")
    ap.add_argument("--n", type=int, default=50)
    ap.add_argument("--seed", type=int, default=10)
    ap.add_argument("--out", required=True)
    ap.add_argument("--readable", default=None)
    ap.add_argument("--id-prefix", default="q")
    ap.add_argument("--all", action="store_true", help="draw from rejected candidates too")
    args = ap.parse_args()
    records = []
    for spec in args.runs:
        domain, _, run = spec.partition("=")
        records += draw(domain, Path(run), args.n, args.seed, rejected_too=args.all)
    for i, rec in enumerate(records):
        rec["id"] = f"{args.id_prefix}{i:03d}"
    with open(args.out, "w", encoding="utf-8") as f:
        for rec in records:
            f.write(json.dumps(rec, ensure_ascii=False) + "\n")
    if args.readable:
        Path(args.readable).write_text("\n".join(readable(r) for r in records), encoding="utf-8")
    print(f"{len(records)} samples -> {args.out}")


if __name__ == "__main__":
    main()
