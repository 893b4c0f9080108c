"""Benchmark ``--executor ray`` against the local executor: the six primary books, offline.

Runs ``prepbench run`` (offline ``extractive`` generator, the whole book, coverage loop on) on
each of the six primary books with its domain skill, twice: with the local executor (asyncio in
one process), and with ``--executor ray --workers 2 --ray-address ADDR`` against a Ray instance
this script starts once (``num_cpus=2``; its start-up is counted in the Ray total). Each run is a
real ``prepbench`` process, one book after the other; the two executors alternate book by book,
so a change in the machine's load weighs on both alike. It then checks that every book's export
files are byte-identical (``sharegpt``, ``alpaca``, ``openai``, ``samples``, ``dataset_info.json``;
the dataset card differs only by its dates line, so its other lines are compared), and prints
both wall times, the ratio, and the machine's load (``uptime``) before and after: other sessions
may share the cores.

The Ray workers on a running cluster stay warm between runs (see
:mod:`prepbench.tools.executors.ray`), so the first Ray run pays for starting them (Python
imports, the English parser) and the next five do not; the driver then neither loads spaCy nor
generates, it commits. Target (issue 15): Ray at least 1.5x faster on this 2-core machine.

Before timing, prepbench's own modules are compiled to bytecode (:func:`precompile`), as pip
does when it installs a wheel. An editable checkout run with ``PYTHONDONTWRITEBYTECODE=1`` (this
machine sets it) otherwise compiles every prepbench module again in every process, about 1.6 s a
process here: a cost of neither executor that no installed copy pays. ``--no-precompile`` keeps it.

Usage: python benchmarks/ray_books.py [--books finance,law,...] [--out DIR]
"""

from __future__ import annotations

import argparse
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
CORPORA = REPO.parent / "shared" / "corpora"
#: skill -> the primary book of its domain (the project's quality set)
BOOKS = {
    "finance": "finance/openstax-principles-of-finance",
    "law": "law/gowder-constitutional-law",
    "medical": "medical/openstax-pharmacology-for-nurses",
    "math": "math/abstract-algebra-judson",
    "science": "science/modeling-with-physics",
    "general": "general/thoreau-walden",
}
DATA_FILES = ("sharegpt.jsonl", "alpaca.jsonl", "openai.jsonl", "samples.jsonl", "dataset_info.json")
TARGET = 1.5


def uptime() -> str:
    return subprocess.run(["uptime"], capture_output=True, text=True).stdout.strip()


def worker_cpu() -> float:
    """CPU seconds (user + system) spent so far by the Ray worker processes of prepbench."""
    pids = subprocess.run(["pgrep", "-f", "^ray::FamilyWorker"], capture_output=True, text=True).stdout.split()
    total = 0
    for pid in pids:
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:  # ended meanwhile
            continue
        total += int(fields[11]) + int(fields[12])
    return total / os.sysconf("SC_CLK_TCK")


def run(skill: str, out: Path, extra: list[str], env: dict) -> tuple[float, float]:
    """Wall seconds and CPU seconds (the ``prepbench`` process and, with Ray, its workers) of one run."""
    cmd = [sys.executable, "-m", "prepbench.tools.cli", "run", "--skill", skill, "--corpus", str(CORPORA / BOOKS[skill])]
    c0, w0 = resource.getrusage(resource.RUSAGE_CHILDREN), worker_cpu()
    t0 = time.perf_counter()
    p = subprocess.run([*cmd, "--out", str(out), "-q", *extra], capture_output=True, text=True, env=env)
    seconds = time.perf_counter() - t0
    if p.returncode != 0:
        sys.exit(f"{skill}: prepbench run failed ({p.returncode}): {(p.stderr or p.stdout)[-2000:]}")
    c1 = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = c1.ru_utime - c0.ru_utime + c1.ru_stime - c0.ru_stime + (worker_cpu() - w0 if extra else 0.0)
    return seconds, cpu


def precompile() -> int:
    """Compile prepbench's packages to ``__pycache__`` (a no-op where it is current); returns
    how many package folders were compiled. Python reads bytecode even where it may not write it."""
    import compileall
    import importlib

    folders = []
    for name in ("agents", "tools", "evaluation", "skills", "corpora"):
        try:
            folders += list(importlib.import_module(f"prepbench.{name}").__path__)
        except ImportError:  # a package this install lacks
            continue
    for folder in folders:
        compileall.compile_dir(folder, quiet=1)
    return len(folders)


def same_export(a: Path, b: Path) -> list[str]:
    """Names of the export files that differ between two runs (the card without its dates line)."""
    diff = [n for n in DATA_FILES if (a / n).read_bytes() != (b / n).read_bytes()]
    card = [[ln for ln in (d / "README.md").read_text().splitlines() if not ln.startswith("- **Dates**")] for d in (a, b)]
    return diff + (["README.md"] if card[0] != card[1] else [])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--books", default=",".join(BOOKS), help="skills whose primary book to run")
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--out", default=None, help="folder for the runs (default: a temp dir)")
    ap.add_argument("--no-precompile", action="store_true", help="time the runs with prepbench's modules uncompiled")
    args = ap.parse_args()
    skills = [s.strip() for s in args.books.split(",") if s.strip()]
    root = Path(args.out or tempfile.mkdtemp(prefix="prepbench-ray-books-"))
    print(f"{os.cpu_count()} CPU cores; load before: {uptime()}", flush=True)
    if not args.no_precompile:
        print(f"prepbench's modules compiled to bytecode ({precompile()} package folders)", flush=True)

    import ray

    env = {**os.environ, "RAY_AUTH_MODE": "token"}  # the instance below uses Ray's token authentication
    t0 = time.perf_counter()
    ray.init(num_cpus=args.workers, namespace="prepbench", include_dashboard=False, log_to_driver=False, configure_logging=False)
    address = ray.get_runtime_context().gcs_address
    ray_start = time.perf_counter() - t0
    print(f"Ray instance at {address} started in {ray_start:.1f} s", flush=True)
    rows = []
    try:
        for skill in skills:
            local, local_cpu = run(skill, root / "local" / skill, [], env)
            flags = ["--executor", "ray", "--workers", str(args.workers), "--ray-address", address]
            remote, remote_cpu = run(skill, root / "ray" / skill, flags, env)
            diff = same_export(root / "local" / skill / "export", root / "ray" / skill / "export")
            rows.append((skill, local, remote, diff, local_cpu, remote_cpu))
            same = "identical" if not diff else "DIFFER: " + ", ".join(diff)
            print(f"  {skill:8} local {local:6.1f} s   ray {remote:6.1f} s   {same}", flush=True)
    finally:
        ray.shutdown()
    local_total = sum(r[1] for r in rows)
    ray_total = ray_start + sum(r[2] for r in rows)
    print(f"load after: {uptime()}")
    print(f"{'book':8} {'local s':>8} {'ray s':>8} {'speed-up':>9} {'local cpu s':>12} {'ray cpu s':>10}  export")
    for skill, local, remote, diff, lc, rc in rows:
        same = "byte-identical" if not diff else "DIFFER: " + ", ".join(diff)
        print(f"{skill:8} {local:>8.1f} {remote:>8.1f} {local / remote:>8.2f}x {lc:>12.1f} {rc:>10.1f}  {same}")
    local_cpu, ray_cpu = sum(r[4] for r in rows), sum(r[5] for r in rows)
    print(
        f"{'total':8} {local_total:>8.1f} {ray_total:>8.1f} {local_total / ray_total:>8.2f}x {local_cpu:>12.1f} {ray_cpu:>10.1f}"
        f"  (ray wall includes the instance start, {ray_start:.1f} s; ray cpu: driver + workers)"
    )
    print(
        f"CPU used per wall second: local {local_cpu / local_total:.2f}, ray {ray_cpu / ray_total:.2f} "
        f"(of {os.cpu_count()} cores; what other processes leave is the ceiling of the speed-up)"
    )
    same = all(not r[3] for r in rows)
    ratio = local_total / ray_total
    verdict = "PASS" if same and ratio >= TARGET else "MISS"
    print(
        f"{verdict}: --executor ray --workers {args.workers} {ratio:.2f}x the local executor's speed "
        f"(target >= {TARGET}); exports {'byte-identical' if same else 'DIFFER'}; runs in {root}"
    )


if __name__ == "__main__":
    main()
