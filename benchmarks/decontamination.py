"""Benchmark decontamination: the whole offline finance run against every shipped benchmark.

Runs the finance skill offline over the OpenStax *Principles of Finance* book (unless --run
names a finished run folder, which is copied first: the pass writes to the ledger), then:

1. builds every benchmark's n-gram index into a fresh folder and embeds its test questions
   (through the embedding cache: cold unless --cache names a warm one), and prints the time;
2. decontaminates the run with the indexes built, the way ``prepbench decontaminate RUN`` does:
   every accepted sample read as the export renders it, flagged, and the flags recorded in the
   ledger; prints the time (target, issue 14: under 30 s);
3. loads the indexes again from their cache, and prints that time.

Usage: python benchmarks/decontamination.py [--run DIR] [--cache FILE] [--no-embed]
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from prepbench.evaluation.evaluate import benchmark_test_sets, list_benchmarks
from prepbench.evaluation.train_config import datasets_dir
from prepbench.tools.decontaminate import DEFAULT_EMBED_THRESHOLD, Decontaminator, decontaminate_run
from prepbench.tools.embed import EmbeddingCache, embed_texts, make_encoder
from prepbench.tools.ledger import RunFolder
from prepbench.tools.skills import load_run_skill

REPO = Path(__file__).resolve().parents[1]
BOOK = REPO.parent / "shared" / "corpora" / "finance" / "openstax-principles-of-finance"


def _run(args: argparse.Namespace, tmp: Path) -> Path:
    """The run folder to decontaminate: a copy of --run, or the book run offline now."""
    run = tmp / "run"
    if args.run:
        run.mkdir()
        shutil.copy(Path(args.run) / "ledger.sqlite", run / "ledger.sqlite")
        return run
    cli = [sys.executable, "-m", "prepbench.tools.cli"]
    cmd = [*cli, "run", "--corpus", str(BOOK), "--skill", "finance", "--out", str(run), "-q"]
    subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL)
    return run


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--run", default=None, help="a finished run folder (default: run the book offline into a temp dir)")
    ap.add_argument("--cache", default=None, help="embedding cache (default: a fresh temp file, so the test items are embedded)")
    ap.add_argument("--no-embed", action="store_true", help="only the n-gram rule")
    args = ap.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="prepbench-decont-"))
    run = _run(args, tmp)
    names = [n for n, spec in list_benchmarks().items() if spec["kind"] == "group" or not n.startswith("legalbench_")]
    sets = benchmark_test_sets(names, datasets_dir())
    threshold = None if args.no_embed else DEFAULT_EMBED_THRESHOLD
    embed = None
    if not args.no_embed:
        enc, store = make_encoder("minilm"), EmbeddingCache(args.cache or tmp / "emb.sqlite")
        embed = lambda texts: embed_texts(texts, enc, store, progress=False)[0]  # noqa: E731

    t0 = time.perf_counter()
    dec = Decontaminator(sets, embed_threshold=threshold, embed=embed, index_dir=tmp / "idx")
    build = time.perf_counter() - t0
    ledger = RunFolder.open(run)
    skill = load_run_skill(ledger.get_config())
    t0 = time.perf_counter()
    rep = decontaminate_run(ledger, skill.renders if skill else {}, dec, {"benchmarks": sorted(sets)})
    secs = time.perf_counter() - t0
    ledger.close()
    t0 = time.perf_counter()
    Decontaminator(sets, embed_threshold=threshold, embed=embed, index_dir=tmp / "idx")
    reload = time.perf_counter() - t0

    print(f"{rep.n_samples} accepted samples of the finance book; {len(sets)} benchmarks: {', '.join(sets)}")
    print(f"index build (n-gram indexes{'' if args.no_embed else ' + test-question embeddings'}): {build:.1f} s")
    print(f"decontamination of the run, indexes built (flags recorded in the ledger): {secs:.1f} s  (target < 30 s)")
    print(f"index load from its cache: {reload:.1f} s")
    print(f"{len(rep.flagged)} samples flagged, {len(rep.excluded)} excluded")
    print(f"  {'benchmark':<14}{'items':>8}{'ngram':>7}{'embed':>7}{'index s':>9}{'match s':>9}")
    for name, b in rep.benchmarks.items():
        print(
            f"  {name:<14}{b['test_items']:>8}{b['ngram_overlap']:>7}{b['embedding_similarity']:>7}"
            f"{b['index_seconds']:>9.2f}{b['match_seconds']:>9.2f}"
        )
    for f in rep.flags:
        how = f"{f.rule}, cosine {f.cosine}" if f.cosine else f.rule
        print(f"  flag: {f.sample} ~ {f.benchmark} {f.item} ({how}): {f.evidence[:70]!r}")


if __name__ == "__main__":
    main()
