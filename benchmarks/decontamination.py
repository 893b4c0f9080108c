"""Benchmark decontamination: the whole offline finance run against every shipped benchmark.

Runs the finance skill offline over the OpenStax *Principles of Finance* book (unless --run
names a finished run folder), then decontaminates its samples against all shipped benchmarks
twice: the first pass builds the n-gram indexes (and embeds the test items, unless the
embedding cache already holds them), the second finds them built. Prints each pass's wall
time, the index build time per benchmark, and the flags.

Target (issue 14): the pass after the indexes are built takes under 30 s.

Usage: python benchmarks/decontamination.py [--run DIR] [--cache FILE] [--no-embed]
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from prepbench.evaluation.decontaminate import decontaminate
from prepbench.evaluation.evaluate import benchmark_test_files, list_benchmarks
from prepbench.evaluation.readers import read_samples
from prepbench.evaluation.train_config import datasets_dir
from prepbench.tools.embed import EmbeddingCache, embed_texts, make_encoder

REPO = Path(__file__).resolve().parents[1]
BOOK = REPO.parent / "shared" / "corpora" / "finance" / "openstax-principles-of-finance"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--run", default=None, help="a finished run folder (default: run the book offline into a temp dir)")
    ap.add_argument("--cache", default=None, help="embedding cache (default: a fresh temp file, so the first pass embeds)")
    ap.add_argument("--no-embed", action="store_true")
    args = ap.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="prepbench-decont-"))
    run = Path(args.run) if args.run else tmp / "run"
    if not args.run:
        cmd = [
            sys.executable,
            "-m",
            "prepbench.tools.cli",
            "run",
            "--corpus",
            str(BOOK),
            "--skill",
            "finance",
            "--out",
            str(run),
            "-q",
        ]
        subprocess.run(cmd, check=True)
    samples = [(s.id, s.text, s.instruction) for s in read_samples(run)]
    names = [n for n, spec in list_benchmarks().items() if spec["kind"] == "group" or not n.startswith("legalbench_")]
    files = benchmark_test_files(names, datasets_dir())
    embed = None
    if not args.no_embed:
        enc, store = make_encoder("minilm"), EmbeddingCache(args.cache or tmp / "emb.sqlite")
        embed = lambda texts: embed_texts(texts, enc, store, progress=False)[0]  # noqa: E731
    print(f"{len(samples)} samples of {run}; benchmarks: {', '.join(files)}")
    for label in ("first pass (builds the indexes)", "second pass (indexes built)"):
        t0 = time.perf_counter()
        rep = decontaminate(samples, files, embed_threshold=None if args.no_embed else 0.9, embed=embed, cache_dir=tmp / "idx")
        secs = time.perf_counter() - t0
        print(f"\n{label}: {secs:.1f} s, {len(rep.flagged)} samples flagged")
        print(f"  {'benchmark':<16}{'items':>8}{'ngram':>7}{'embed':>7}{'index s':>9}{'match s':>9}")
        for name, b in rep.benchmarks.items():
            print(
                f"  {name:<16}{b['test_items']:>8}{b['ngram_overlap']:>7}{b['embedding_similarity']:>7}"
                f"{b['index_seconds']:>9.2f}{b['match_seconds']:>9.2f}"
            )
    for f in rep.flags[:10]:
        print(f"  flag: {f.sample} ~ {f.benchmark} {f.item} ({f.rule}: {f.evidence if isinstance(f.evidence, float) else ''})")


if __name__ == "__main__":
    main()
