"""The labelled quality benchmark: how well the gate separates good samples from defective ones.

Reads ``tests/fixtures/quality/labelled.jsonl``: samples drawn at random (seed 10, by
``benchmarks/quality_draw.py``) from offline runs of the six primary books and from chat-model
output, each with its source chunk and a label given by a blind reader (``good`` / ``weak`` /
``defective``, a defect class and a one-line reason). Every sample goes through its domain
skill's gate (``Gate.screen``: JSON Schema, then the filter rules, against the chunk), without
duplicate state, as ``prepbench validate`` does.

Prints, per domain and overall: the labelled counts, the share of defective samples the gate
rejects (target >= 0.9), the share of good samples it keeps (target >= 0.9), the share of weak
samples kept (reported only), and the rules that rejected good samples (the misses to read).
With ``--misses`` it also lists every defective sample kept and every good sample rejected.

Usage: python benchmarks/quality_gate.py [--labels FILE] [--misses] [--json]
"""

from __future__ import annotations

import argparse
import collections
import json
from pathlib import Path

from prepbench.tools.skills import load_skill
from prepbench.tools.validate import Gate

REPO = Path(__file__).resolve().parents[1]
LABELS = REPO / "tests" / "fixtures" / "quality" / "labelled.jsonl"
DOMAINS = ("finance", "law", "medical", "math", "science", "general")


def judge(records: list[dict]) -> list[dict]:
    """Each labelled record with ``kept`` (bool) and ``rule``/``detail`` of its gate verdict.

    Args:
        records: labelled records (``domain``, ``sample`` with ``sample_type``, ``chunk``, ``label``).
    Returns: one dict per record, in order. Raises SkillError when a domain skill does not load.
    """
    gates: dict[str, Gate] = {}
    out = []
    for rec in records:
        domain = rec["domain"]
        if domain not in gates:
            gates[domain] = Gate(load_skill(domain), dedup=False)
        verdict = gates[domain].screen(dict(rec["sample"]), rec.get("chunk"))
        out.append({**rec, "kept": verdict.ok, "rule": verdict.rule, "detail": verdict.detail})
    return out


def table(judged: list[dict]) -> list[dict]:
    """Per-domain rows, ``all``, then one row per generator (``origin``, when there are several):
    n, good/weak/defective, defective rejected, good kept, weak kept."""
    groups = [(d, lambda r, d=d: r["domain"] == d) for d in sorted({r["domain"] for r in judged}, key=_domain_order)]
    groups.append(("all", lambda r: True))
    origins = sorted({r.get("origin", "extractive") for r in judged})
    if len(origins) > 1:
        groups += [(o, lambda r, o=o: r.get("origin", "extractive") == o) for o in origins]
    rows = []
    for domain, member in groups:
        part = [r for r in judged if member(r)]
        by = collections.defaultdict(list)
        for r in part:
            by[r["label"]].append(r)
        share = lambda rs, kept: (sum(1 for r in rs if r["kept"] == kept) / len(rs)) if rs else None  # noqa: E731
        rows.append(
            {
                "domain": domain,
                "n": len(part),
                "good": len(by["good"]),
                "weak": len(by["weak"]),
                "defective": len(by["defective"]),
                "defective_rejected": share(by["defective"], False),
                "good_kept": share(by["good"], True),
                "weak_kept": share(by["weak"], True),
            }
        )
    return rows


def _domain_order(domain: str) -> int:
    return (DOMAINS + (domain,)).index(domain)


def _fmt(x: float | None) -> str:
    return "    -" if x is None else f"{x:5.3f}"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--labels", default=str(LABELS))
    ap.add_argument("--misses", action="store_true", help="list defective samples kept and good samples rejected")
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args()
    records = [json.loads(line) for line in open(args.labels, encoding="utf-8") if line.strip()]
    judged = judge(records)
    rows = table(judged)
    if args.json:
        print(json.dumps(rows, indent=2))
        return
    print(
        f"{'domain':<24} {'n':>4} {'good':>5} {'weak':>5} {'defect':>6}  {'defective rejected':>18}  {'good kept':>9}  {'weak kept':>9}"
    )
    for r in rows:
        print(
            f"{r['domain']:<24} {r['n']:>4} {r['good']:>5} {r['weak']:>5} {r['defective']:>6}  "
            f"{_fmt(r['defective_rejected']):>18}  {_fmt(r['good_kept']):>9}  {_fmt(r['weak_kept']):>9}"
        )
    lost = collections.Counter(r["rule"] for r in judged if r["label"] == "good" and not r["kept"])
    print("rules rejecting good samples:", dict(lost.most_common()) or "none")
    missed = collections.Counter(r["defect"] for r in judged if r["label"] == "defective" and r["kept"])
    print("defect classes kept:", dict(missed.most_common()) or "none")
    if args.misses:
        for r in judged:
            wrong = (r["label"] == "defective" and r["kept"]) or (r["label"] == "good" and not r["kept"])
            if wrong:
                q = r["sample"].get("question") or r["sample"].get("case", "")
                a = r["sample"].get("answer", "")
                print(f"- {r['id']} {r['label']}/{r['defect']} kept={r['kept']} rule={r['rule']}: Q {q!r} A {str(a)[:160]!r}")
                print(f"    reader: {r['reason']}" + (f" | gate: {r['detail']}" if r["detail"] else ""))


if __name__ == "__main__":
    main()
