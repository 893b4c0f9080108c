"""Benchmark the main job offline: the extractive generator over a whole book.

Prints wall time, chunks/s and samples/s of a fresh run of the finance skill over the
OpenStax *Principles of Finance* book (20 chapters), then the wall time of re-running the
same `prepbench run` command on the finished run (the resume path), as a user runs it.

Targets (DataPrep issue 2): fresh run under 60 s on a 2-core machine; resume under 2 s.

Usage: python benchmarks/construct_offline.py [--corpus DIR] [--skill finance] [--out DIR]
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
DEFAULT_CORPUS = REPO.parent / "shared" / "corpora" / "finance" / "openstax-principles-of-finance"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--corpus", default=str(DEFAULT_CORPUS))
    ap.add_argument("--skill", default="finance")
    ap.add_argument("--out", default=None, help="run folder (default: a temp dir)")
    args = ap.parse_args()
    out = Path(args.out) if args.out else Path(tempfile.mkdtemp(prefix="prepbench-bench-")) / "run"
    cmd = [
        sys.executable,
        "-m",
        "prepbench.tools.cli",
        "run",
        "--corpus",
        args.corpus,
        "--skill",
        args.skill,
        "--out",
        str(out),
        "--quiet",
        "--fresh",
        "--json",
    ]

    t0 = time.perf_counter()
    p = subprocess.run(cmd, capture_output=True, text=True)
    fresh = time.perf_counter() - t0
    if p.returncode != 0:
        sys.exit(f"run failed: {p.stderr.strip()}")
    import json

    cov = json.loads(p.stdout)
    chunks = cov["chunks"]["total"]
    samples = cov["samples"]["accepted"]

    resume_cmd = [c for c in cmd if c != "--fresh"]
    t0 = time.perf_counter()
    p = subprocess.run(resume_cmd, capture_output=True, text=True)
    resume = time.perf_counter() - t0
    if p.returncode != 0:
        sys.exit(f"resume failed: {p.stderr.strip()}")

    print(f"corpus:        {args.corpus}")
    print(
        f"chunks:        {chunks} ({cov['chunks']['kept']} kept, {cov['chunks']['skipped']} skipped, "
        f"{cov['chunks']['failed']} failed, {cov['chunks']['pending']} pending)"
    )
    print(
        f"samples:       {samples} accepted, {cov['samples']['rejected']} rejected; "
        + ", ".join(f"{k} {v['accepted']}" for k, v in cov["sample_types"].items())
    )
    print(f"fresh run:     {fresh:.2f} s wall (target < 60 s), {chunks / fresh:.1f} chunks/s, {samples / fresh:.1f} samples/s")
    print(f"resume (done): {resume:.2f} s wall (target < 2 s)")
    print(f"run folder:    {out}")


if __name__ == "__main__":
    main()
