"""DAS speed and memory figures (prints them; never asserts).

1. MMD at 5k x 5k (384-d, unit-norm random vectors like MiniLM embeddings): prepbench's
   blockwise torch estimate vs the scipy ``cdist`` + textbook formula reference; time and value.
   Target: prepbench >= 3x faster, same value.
2. Peak memory of prepbench's MMD at 50k x 50k (384-d), measured in a fresh subprocess as peak
   RSS (psutil, sampled every 5 ms) minus the RSS after the inputs exist. Target: < 2 GB.
3. Embedding throughput of prepbench's path (hash, cache lookup, length-sorted chunks, cache
   write) vs raw ``SentenceTransformer.encode`` on the same real texts (Dolly-15k), same model.
   Target: ratio >= 0.95.
4. The same texts through ``embed_texts`` with a cold cache, encoded as Ray Data batches
   (``score das --executor ray``) by ``--ray-workers`` MiniLM actors on a local Ray instance:
   wall time (actor start-up and model loading included) beside the local encoder's, and the
   largest difference of a vector from the local one.

Usage: ``python benchmarks/das_speed.py [--n 5000] [--big-n 50000] [--texts 1000] [--ray-workers 2]``
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

DATA = str(Path(__file__).resolve().parents[2] / "shared" / "datasets")


def unit_vectors(n: int, d: int, seed: int, shift: float = 0.0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((n, d), dtype=np.float32)
    X[:, 0] += shift
    X /= np.linalg.norm(X, axis=1, keepdims=True)
    return X


def scipy_reference(X: np.ndarray, Y: np.ndarray, sigma: float = 1.0) -> float:
    """Biased MMD^2 from full cdist kernel matrices (Gretton et al. 2012, eq. 3)."""
    from scipy.spatial.distance import cdist

    X = X.astype(np.float64)
    Y = Y.astype(np.float64)
    g = 1.0 / (2 * sigma * sigma)
    return float(
        np.exp(-g * cdist(X, X, "sqeuclidean")).mean()
        + np.exp(-g * cdist(Y, Y, "sqeuclidean")).mean()
        - 2 * np.exp(-g * cdist(X, Y, "sqeuclidean")).mean()
    )


def bench_mmd(n: int) -> None:
    from prepbench.evaluation.das import mmd

    X, Y = unit_vectors(n, 384, 1), unit_vectors(n, 384, 2, shift=0.3)
    mmd(X[:500], Y[:500])  # warm-up (thread pool)
    t0 = time.perf_counter()
    ours = mmd(X, Y)
    t_ours = time.perf_counter() - t0
    t0 = time.perf_counter()
    ours32 = mmd(X, Y, dtype="float32")
    t_ours32 = time.perf_counter() - t0
    t0 = time.perf_counter()
    ref = scipy_reference(X, Y)
    t_ref = time.perf_counter() - t0
    print(f"[1] MMD {n}x{n}, 384-d, sigma=1, biased")
    print(f"    prepbench (torch blockwise, float64): {t_ours:8.2f} s   MMD^2 = {ours['mmd2']:.12f}")
    print(f"    prepbench, --precision float32      : {t_ours32:8.2f} s   MMD^2 = {ours32['mmd2']:.12f}")
    print(f"    scipy cdist reference               : {t_ref:8.2f} s   MMD^2 = {ref:.12f}")
    print(f"    speed-up {t_ref / t_ours:.1f}x (target >= 3x); |difference| = {abs(ours['mmd2'] - ref):.2e}")


_CHILD = r"""
import json, sys, threading, time
import numpy as np, psutil
sys.path.insert(0, "benchmarks")
from das_speed import unit_vectors
from prepbench.evaluation.das import mmd
n = int(sys.argv[1])
X, Y = unit_vectors(n, 384, 1), unit_vectors(n, 384, 2, shift=0.3)
import torch  # loaded before the baseline
proc = psutil.Process()
base = proc.memory_info().rss
peak = [base]
stop = False
def watch():
    while not stop:
        peak[0] = max(peak[0], proc.memory_info().rss)
        time.sleep(0.005)
th = threading.Thread(target=watch, daemon=True); th.start()
t0 = time.perf_counter()
r = mmd(X, Y)
dt = time.perf_counter() - t0
stop = True; th.join()
print(json.dumps({"seconds": dt, "mmd2": r["mmd2"], "base_rss": base, "peak_rss": peak[0], "inputs": X.nbytes + Y.nbytes}))
"""


def bench_memory(n: int) -> None:
    out = subprocess.run([sys.executable, "-c", _CHILD, str(n)], capture_output=True, text=True, check=True)
    r = json.loads(out.stdout.strip().splitlines()[-1])
    delta = (r["peak_rss"] - r["base_rss"]) / 2**20
    print(f"[2] MMD {n}x{n}, 384-d: {r['seconds']:.1f} s, MMD^2 = {r['mmd2']:.9f}")
    print(
        f"    peak RSS increase during MMD: {delta:,.0f} MiB (target < 2048 MiB); "
        f"process peak {r['peak_rss'] / 2**20:,.0f} MiB incl. inputs {r['inputs'] / 2**20:,.0f} MiB (float32)"
    )


def bench_embedding(n_texts: int) -> None:
    from prepbench.evaluation.readers import read_samples, subsample
    from prepbench.tools.embed import EmbeddingCache, embed_texts, make_encoder

    texts = [s.text for s in subsample(read_samples(f"{DATA}/dolly/databricks-dolly-15k-nocategory.jsonl"), n_texts, 42)]
    enc = make_encoder("minilm", batch_size=64)
    model = enc.model
    model.encode(texts[:64], batch_size=64)  # warm-up
    raw_t, ours_t = [], []
    for _ in range(2):
        t0 = time.perf_counter()
        model.encode(texts, batch_size=64, show_progress_bar=False, convert_to_numpy=True)
        raw_t.append(time.perf_counter() - t0)
        cache = EmbeddingCache(":memory:")  # cold cache: every text is encoded
        t0 = time.perf_counter()
        embed_texts(texts, enc, cache, progress=False)
        ours_t.append(time.perf_counter() - t0)
    raw, ours = min(raw_t), min(ours_t)
    print(f"[3] embedding {n_texts} Dolly texts with all-MiniLM-L6-v2 (CPU, batch 64, best of 2)")
    print(f"    raw SentenceTransformer.encode: {raw:7.2f} s  ({n_texts / raw:6.1f} texts/s)")
    print(f"    prepbench embed_texts (cold)  : {ours:7.2f} s  ({n_texts / ours:6.1f} texts/s)")
    print(f"    throughput ratio prepbench/raw = {raw / ours:.3f} (target >= 0.95)")
    t0 = time.perf_counter()
    embed_texts(texts, enc, cache, progress=False)
    print(f"    warm cache (all {n_texts} texts cached): {time.perf_counter() - t0:.3f} s")


def bench_ray_embedding(n_texts: int, workers: int) -> None:
    import ray

    from prepbench.evaluation.readers import read_samples, subsample
    from prepbench.tools.embed import EmbeddingCache, embed_texts, make_encoder
    from prepbench.tools.executors import ExecutorOptions
    from prepbench.tools.executors.ray_embed import ray_encoder

    texts = [s.text for s in subsample(read_samples(f"{DATA}/dolly/databricks-dolly-15k-nocategory.jsonl"), n_texts, 42)]
    local = make_encoder("minilm", batch_size=64)
    local.model.encode(texts[:64], batch_size=64)  # warm-up: the local figure is the model's, not its loading
    t0 = time.perf_counter()
    X, _ = embed_texts(texts, local, EmbeddingCache(":memory:"), progress=False)
    here = time.perf_counter() - t0
    ray.init(num_cpus=workers, include_dashboard=False, log_to_driver=False, configure_logging=False)
    try:
        enc = ray_encoder(local, "minilm", ExecutorOptions("ray", workers=workers), batch_size=64)
        t0 = time.perf_counter()
        Y, info = embed_texts(texts, enc, EmbeddingCache(":memory:"), progress=False)
        remote = time.perf_counter() - t0
    finally:
        ray.shutdown()
    print(f"[4] embedding {n_texts} Dolly texts, cold cache: local vs Ray Data batches ({workers} actors, local Ray)")
    print(f"    local embed_texts            : {here:7.2f} s  ({n_texts / here:6.1f} texts/s)")
    print(f"    Ray Data (start-up included) : {remote:7.2f} s  ({n_texts / remote:6.1f} texts/s); {info['encoded']} encoded")
    print(f"    largest |vector difference| from the local vectors: {float(np.abs(X - Y).max()):.2e}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--n", type=int, default=5000)
    ap.add_argument("--big-n", type=int, default=50000)
    ap.add_argument("--texts", type=int, default=1000)
    ap.add_argument("--ray-workers", type=int, default=2, help="MiniLM actors of part 4 (Ray Data batches)")
    ap.add_argument("--skip", default="", help="comma list of parts to skip: mmd,memory,embedding,ray")
    a = ap.parse_args()
    skip = set(a.skip.split(","))
    import torch

    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads")
    if "mmd" not in skip:
        bench_mmd(a.n)
    if "memory" not in skip:
        bench_memory(a.big_n)
    if "embedding" not in skip:
        bench_embedding(a.texts)
    if "ray" not in skip:
        bench_ray_embedding(a.texts, a.ray_workers)


if __name__ == "__main__":
    main()
