"""Benchmark the SQLite ledger at scale: 1,000,000 chunks and 2,000,000 samples.

The ledger (one SQLite file per run, WAL, one writer) is meant to hold runs of millions of chunks.
This script checks it: it runs the finance skill offline over the shipped slice of *Principles of
Finance* (``corpora/finance-openstax``) to get real chunks, samples and calls, then fills a new
run folder with ``--chunks`` chunks and ``--samples`` samples made from them, written in the real
schema through :class:`~prepbench.tools.ledger.RunFolder` (its tables and indexes) and bulk
``INSERT`` statements: 1,000 documents, every chunk's text, heading path and status (about 70 %
kept, 25 % skipped with a reason, 3 % pending, 2 % failed), two calls per recorded chunk, and the
samples of the kept chunks (about 80 % accepted, the rest rejected with a rule), then times:

- ``prepbench status RUN`` (a process: the coverage report, per-document coverage, rejections, calls);
- ``prepbench export RUN --format sharegpt,alpaca,openai,samples`` (a process; every accepted sample
  rendered by the skill's templates and written to four JSONL files, with the card and manifest);
- planning a resume: what ``prepbench run`` does with the ledger before its first chunk
  (:func:`prepbench.tools.run.open_existing`: open for writing, migrate, compare the config;
  :func:`~prepbench.tools.run.has_work`; the chunks to do, in corpus order; the coverage loop's
  open round); the plan of a later coverage round (done after the main pass) is timed beside it;
- the duplicate state a resumed run rebuilds from the accepted samples (MinHash LSH, in memory),
  on ``--dedup-sample`` of them, extrapolated to all.

Targets (issue 15): status under 5 s, export under 60 s, resume planning under 10 s.

Usage: python benchmarks/ledger_scale.py [--chunks 1000000] [--samples 2000000] [--out DIR] [--keep] [--reuse]

``--out DIR --keep`` leaves the filled run in ``DIR/run``; ``--reuse`` then times that run again
without the seed run and the fill (minutes of CPU that need not be repeated for a second timing).
"""

from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
SLICE = REPO / "corpora" / "finance-openstax"
SKILL = "finance"
TARGETS = {"status": 5.0, "export": 60.0, "resume planning": 10.0}


def prepbench(*args: str) -> tuple[float, subprocess.CompletedProcess]:
    t0 = time.perf_counter()
    p = subprocess.run([sys.executable, "-m", "prepbench.tools.cli", *args], capture_output=True, text=True)
    seconds = time.perf_counter() - t0
    if p.returncode != 0:
        sys.exit(f"prepbench {args[0]} failed ({p.returncode}): {(p.stderr or p.stdout)[-2000:]}")
    return seconds, p


def real_run(tmp: Path) -> Path:
    """The finance skill over the shipped slice, offline: the real rows the big ledger is made of."""
    out = tmp / "seed-run"
    prepbench("run", "--skill", SKILL, "--corpus", str(SLICE), "--out", str(out), "-q")
    return out


INSERTS = {
    "chunks": "INSERT INTO chunks (chunk_id, idx, doc_id, doc_path, doc_index, heading_path, start_line, end_line, chars, "
    "text, status, skip_reason, error, detail, attempts, n_accepted, n_rejected, updated_at) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)",
    "samples": "INSERT INTO samples (sample_id, chunk_id, chunk_idx, pos, sample_type, status, rule, detail, attempts, data, "
    "created_at) VALUES (?,?,?,?,?,?,?,?,?,?,?)",
    "calls": "INSERT INTO calls (chunk_id, node, model, input_tokens, output_tokens, cost_usd, latency_s, ok, error, reply, "
    "created_at) VALUES (?,?,?,?,?,?,?,?,?,?,?)",
}


def documents(n_docs: int, per_doc: int) -> list[dict]:
    """``n_docs`` ingested documents of ``per_doc`` chunks each (the ``documents`` rows)."""
    return [
        {
            "doc_id": f"d{i:05d}",
            "rel_path": f"book-{i:05d}.md",
            "format": "md",
            "content_hash": f"{i:064x}",
            "chars": 0,
            "converter": "markdown",
            "n_chunks": per_doc,
            "status": "ingested",
            "reason": None,
        }
        for i in range(n_docs)
    ]


class Rows:
    """Rows of chunk ``idx`` made from the seed run's rows: its chunk row, its samples, its calls."""

    def __init__(self, seed: Path, n_chunks: int, n_samples: int, per_doc: int, n_docs: int, rng: random.Random):
        from prepbench.tools.ledger import RunFolder

        src = RunFolder.open(seed, readonly=True)
        self.config = src.get_config()
        self.chunks = src.chunk_rows()
        self.accepted = src.sample_rows(status="accepted")
        self.rejected = src.sample_rows(status="rejected") or self.accepted
        self.reasons = list(src.skip_reason_counts()) or ["low_information"]
        src.close()
        self.per_kept = n_samples / (0.70 * n_chunks)  # samples per kept chunk, on average
        self.per_doc, self.n_docs, self.rng, self.now = per_doc, n_docs, rng, time.time()

    def samples(self, idx: int, cid: str) -> list[tuple]:
        from prepbench.tools.ledger import sample_id

        rng, out = self.rng, []
        k = int(self.per_kept) + (1 if rng.random() < self.per_kept - int(self.per_kept) else 0)
        for pos in range(k):
            ok = rng.random() < 0.8 or pos == 0
            base = self.accepted[rng.randrange(len(self.accepted))] if ok else self.rejected[rng.randrange(len(self.rejected))]
            data = dict(base["data"], chunk_id=cid)
            data["question"] = f"{data.get('question', '')} (#{idx}.{pos})"  # distinct samples
            rule, detail = (None, None) if ok else (base["rule"] or "near_duplicate", base["detail"])
            out.append(
                (sample_id(cid, base["sample_type"], data), cid, idx, pos, base["sample_type"], "accepted" if ok else "rejected",
                 rule, detail, 1, json.dumps(data, ensure_ascii=False), self.now)
            )  # fmt: skip
        return out

    def of(self, idx: int) -> tuple[tuple, list[tuple], list[tuple]]:
        c, cid, rng = self.chunks[idx % len(self.chunks)], f"{idx:016x}", self.rng
        doc = min(idx // self.per_doc, self.n_docs - 1)
        u = rng.random()
        status = "kept" if u < 0.70 else "skipped" if u < 0.95 else "pending" if u < 0.98 else "failed"
        samples = self.samples(idx, cid) if status == "kept" else []
        n_acc = sum(1 for s in samples if s[5] == "accepted")
        calls = (
            []
            if status == "pending"
            else [(cid, n, "extractive", 0, 0, 0.0, 0.01, 1, None, None, self.now) for n in ("triage", "generate")]
        )
        chunk = (
            cid, idx, f"d{doc:05d}", f"book-{doc:05d}.md", idx % self.per_doc, json.dumps(c["heading_path"]),
            c["start_line"], c["end_line"], c["chars"], c["text"], status,
            rng.choice(self.reasons) if status == "skipped" else None,
            "ValueError: unparseable" if status == "failed" else None, None, 0 if status == "pending" else 1,
            n_acc, len(samples) - n_acc, self.now,
        )  # fmt: skip
        return chunk, samples, calls


def fill(seed: Path, out: Path, n_chunks: int, n_samples: int, seed_value: int = 0) -> dict:
    """A run folder ``out`` with the seed run's config and ``n_chunks`` / ``n_samples`` rows made
    from the seed run's rows, in the real schema. Returns the row counts written."""
    from prepbench.tools.ledger import RunFolder

    n_docs = 1000
    per_doc = max(1, n_chunks // n_docs)
    rows = Rows(seed, n_chunks, n_samples, per_doc, n_docs, random.Random(seed_value))
    docs = documents(n_docs, per_doc)
    config = {k: v for k, v in rows.config.items() if k not in ("initialized", "schema_version", "created_at")}
    config.update(corpus_hashes={d["rel_path"]: d["content_hash"] for d in docs}, limit=None)
    run = RunFolder(out)
    run.initialize(config, docs, [])
    db = run.db.conn
    batch: dict[str, list] = {"chunks": [], "samples": [], "calls": []}
    written = {"chunks": 0, "samples": 0, "accepted": 0, "calls": 0}
    for idx in range(n_chunks):
        chunk, samples, calls = rows.of(idx)
        batch["chunks"].append(chunk)
        batch["samples"] += samples
        batch["calls"] += calls
        written["chunks"] += 1
        written["samples"] += len(samples)
        written["accepted"] += chunk[15]
        written["calls"] += len(calls)
        if len(batch["chunks"]) >= 20_000 or idx == n_chunks - 1:
            db.execute("BEGIN")
            for table, values in batch.items():
                db.executemany(INSERTS[table], values)
                values.clear()
            db.execute("COMMIT")
    run.close()
    return written


def counted(out: Path) -> dict:
    """The row counts of an already filled run (``--reuse``)."""
    from prepbench.tools.ledger import RunFolder

    run = RunFolder.open(out, readonly=True)
    c = run.counts()
    run.close()
    s = c["samples"]
    return {
        "chunks": c["chunks"]["total"],
        "samples": s["accepted"] + s["rejected"],
        "accepted": s["accepted"],
        "calls": c["calls"]["count"],
    }


def plan_resume(out: Path) -> dict[str, float]:
    """What a resumed ``prepbench run`` does with the ledger before its first chunk, timed by step."""
    from prepbench.tools.coverage import plan_revisit_round
    from prepbench.tools.run import RunOptions, has_work, open_existing
    from prepbench.tools.skills import load_skill

    skill = load_skill(SKILL)
    t = {}
    t0 = time.perf_counter()
    probe = __import__("prepbench.tools.ledger", fromlist=["RunFolder"]).RunFolder.open(out, readonly=True)
    config = probe.get_config()
    probe.close()
    opts = RunOptions(corpus=[str(SLICE)], skill=SKILL, out=str(out))
    ledger, resumed = open_existing(opts, config)
    assert resumed
    t["open + config check"] = time.perf_counter() - t0
    t1 = time.perf_counter()
    assert has_work(ledger, skill, opts, coverage_loop=True)
    t["has_work"] = time.perf_counter() - t1
    t1 = time.perf_counter()
    todo = ledger.todo_chunks(max_attempts=opts.max_attempts)
    t[f"chunks to do ({len(todo):,})"] = time.perf_counter() - t1
    t1 = time.perf_counter()
    ledger.planned_revisits(), ledger.retryable_revisits(opts.max_attempts)
    t["open coverage round"] = time.perf_counter() - t1
    t["resume planning"] = time.perf_counter() - t0
    # not part of the resume: once the main pass is done, each round of the coverage loop is planned so
    t1 = time.perf_counter()
    plan_revisit_round(ledger, skill)
    t["(later: a coverage round's plan)"] = time.perf_counter() - t1
    ledger.close()
    return t


def dedup_rebuild(out: Path, n: int) -> tuple[float, int]:
    """Seconds to register the first ``n`` accepted samples in a fresh gate (what a resume does for all)."""
    from prepbench.tools.ledger import RunFolder
    from prepbench.tools.skills import load_skill
    from prepbench.tools.validate import Gate

    run = RunFolder.open(out, readonly=True)
    gate = Gate(load_skill(SKILL))
    rows = []
    for s in run.accepted_samples():
        rows.append((s["sample_id"], s))
        if len(rows) >= n:
            break
    run.close()
    t0 = time.perf_counter()
    gate.add_many(rows)
    return time.perf_counter() - t0, len(rows)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--chunks", type=int, default=1_000_000)
    ap.add_argument("--samples", type=int, default=2_000_000)
    ap.add_argument("--dedup-sample", type=int, default=50_000, help="accepted samples whose dedup rebuild is timed")
    ap.add_argument("--out", default=None, help="folder for the run (default: a temp dir, removed unless --keep)")
    ap.add_argument("--keep", action="store_true")
    ap.add_argument("--reuse", action="store_true", help="time the run already filled in --out DIR/run (no seed run, no fill)")
    args = ap.parse_args()
    if args.reuse and not args.out:
        sys.exit("--reuse needs --out DIR (the folder of an earlier --keep)")
    tmp = Path(args.out or tempfile.mkdtemp(prefix="prepbench-scale-"))
    out = tmp / "run"
    try:
        if args.reuse:
            n = counted(out)
        else:
            t0 = time.perf_counter()
            seed = real_run(tmp)
            print(f"seed run (finance slice, offline): {time.perf_counter() - t0:.1f} s", flush=True)
            t0 = time.perf_counter()
            n = fill(seed, out, args.chunks, args.samples)
        size = sum(f.stat().st_size for f in out.iterdir() if f.is_file()) / 1e9
        print(
            f"{'reused' if args.reuse else 'filled'} {n['chunks']:,} chunks, {n['samples']:,} samples "
            f"({n['accepted']:,} accepted), {n['calls']:,} calls"
            + ("" if args.reuse else f" in {time.perf_counter() - t0:.1f} s")
            + f"; ledger {size:.2f} GB",
            flush=True,
        )
        res: dict[str, float] = {}
        res["status"], _ = prepbench("status", str(out))
        print(f"status: {res['status']:.2f} s", flush=True)
        res["export"], p = prepbench("export", str(out), "--format", "sharegpt,alpaca,openai,samples")
        print(f"export: {res['export']:.2f} s ({p.stdout.strip().splitlines()[-1]})", flush=True)
        steps = plan_resume(out)
        res["resume planning"] = steps.pop("resume planning")
        print(f"resume planning: {res['resume planning']:.2f} s (" + ", ".join(f"{k} {v:.2f} s" for k, v in steps.items()) + ")")
        secs, k = dedup_rebuild(out, args.dedup_sample)
        print(
            f"dedup rebuild: {secs:.2f} s for {k:,} accepted samples ({1e6 * secs / max(1, k):.0f} µs each; "
            f"{n['accepted']:,} would take about {secs / max(1, k) * n['accepted']:.0f} s)"
        )
        print(f"{'step':16} {'seconds':>8} {'target':>8}")
        for name, target in TARGETS.items():
            print(f"{name:16} {res[name]:>8.2f} {target:>8.1f}  {'PASS' if res[name] < target else 'MISS'}")
        print(f"machine: {os.cpu_count()} CPU cores; {subprocess.run(['uptime'], capture_output=True, text=True).stdout.strip()}")
    finally:
        if not args.keep and not args.out:
            shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
