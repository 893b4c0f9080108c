"""DAS on real datasets: does the score rank in-domain data first? (prints the numbers; never asserts)

Math: GSM8K train is shuffled (seed 42) and split in halves; half A is the math proxy, and
half B, MATH (``math_test.jsonl``, used here as a candidate dataset, not as a benchmark),
Dolly-15k and Alpaca are the candidates. Expected: DAS(GSM8K B) > DAS(MATH) > DAS(Dolly), DAS(Alpaca).

Medical: PubMedQA PQA-L ``pqal_train_dev.jsonl`` (not its test split) is the medical proxy;
candidates MedQA-USMLE (``test.jsonl``, the only split shipped; a candidate here), Dolly-15k
and Alpaca. Expected: DAS(MedQA) > DAS(Dolly).

Each side is subsampled to ``--n`` samples (seed 42) and embedded with the default offline
all-MiniLM-L6-v2 encoder through the SQLite cache (a re-run is fast). Reference defaults:
sigma = 1, biased estimator; the unbiased estimator and the median heuristic are printed too.

Usage: ``python benchmarks/das_real_data.py [--n 2000] [--cache PATH]``
"""

from __future__ import annotations

import argparse
import random
import time
from pathlib import Path

DATA = str(Path(__file__).resolve().parents[2] / "shared" / "datasets")


def load(name: str):
    from prepbench.evaluation.readers import read_samples

    paths = {
        "gsm8k": f"{DATA}/gsm8k/train.jsonl",
        "math": f"{DATA}/math/math_test.jsonl",
        "dolly": f"{DATA}/dolly/databricks-dolly-15k-nocategory.jsonl",
        "alpaca": f"{DATA}/alpaca/alpaca_data_5000.jsonl",
        "pubmedqa": f"{DATA}/pubmedqa/pqal_train_dev.jsonl",
        "medqa": f"{DATA}/medqa_usmle/test.jsonl",
    }
    return [s.text for s in read_samples(paths[name])]


def main() -> None:
    ap = argparse.ArgumentParser(description="DAS ordering check on real datasets")
    ap.add_argument("--n", type=int, default=2000, help="samples per side (seeded subsample)")
    ap.add_argument("--cache", default=None, help="embedding cache file (default ~/.cache/prepbench/embeddings.sqlite)")
    ap.add_argument("--encoder", default="minilm")
    a = ap.parse_args()

    from prepbench.evaluation.das import das_score, mmd
    from prepbench.evaluation.readers import subsample
    from prepbench.tools.embed import EmbeddingCache, embed_texts, make_encoder

    enc = make_encoder(a.encoder)
    cache = EmbeddingCache(a.cache)
    t0 = time.perf_counter()

    gsm = load("gsm8k")
    order = list(range(len(gsm)))
    random.Random(42).shuffle(order)
    half = len(order) // 2
    gsm_a, gsm_b = [gsm[i] for i in order[:half]], [gsm[i] for i in order[half:]]

    experiments = [
        (
            "math proxy = GSM8K train half A",
            gsm_a,
            [
                ("GSM8K train half B", gsm_b),
                ("MATH (test file)", load("math")),
                ("Dolly-15k", load("dolly")),
                ("Alpaca (5k)", load("alpaca")),
            ],
            "GSM8K half B > MATH > Dolly-15k and Alpaca",
        ),
        (
            "medical proxy = PubMedQA PQA-L train_dev",
            load("pubmedqa"),
            [("MedQA-USMLE", load("medqa")), ("Dolly-15k", load("dolly")), ("Alpaca (5k)", load("alpaca"))],
            "MedQA > Dolly-15k",
        ),
    ]
    print(f"encoder {enc.encoder_id}; n <= {a.n} per side, seed 42; cache {cache.path}")
    outcomes = {}
    for title, proxy, cands, expect in experiments:
        print(f"\n== {title} (n_total = {len(proxy)})")
        print(
            f"{'candidate':<22} {'n':>5} {'MMD^2 (biased)':>15} {'DAS (sigma=1)':>14} {'DAS unbiased':>13} {'DAS median-σ':>13}"
        )
        rows = {}
        for name, texts in cands:
            r = das_score(texts, proxy, enc, cache, max_samples=a.n, seed=42)
            Xc, _ = embed_texts(subsample(texts, a.n, 42), enc, cache, progress=False)
            Xp, _ = embed_texts(subsample(proxy, a.n, 42), enc, cache, progress=False)
            ru = mmd(Xc, Xp, unbiased=True)
            rm = mmd(Xc, Xp, sigma="median")
            rows[name] = r["das"]
            print(f"{name:<22} {r['n_candidate']:>5} {r['mmd2']:>15.6f} {r['das']:>14.6f} {ru['das']:>13.6f} {rm['das']:>13.6f}")
        outcomes[title] = (rows, expect)
    print("\n== ordering checks (DAS, sigma=1, biased)")
    (m_rows, m_exp), (d_rows, d_exp) = outcomes.values()
    ok_math = m_rows["GSM8K train half B"] > m_rows["MATH (test file)"] > max(m_rows["Dolly-15k"], m_rows["Alpaca (5k)"])
    ok_med = d_rows["MedQA-USMLE"] > d_rows["Dolly-15k"]
    print(f"math:    {m_exp}: {'holds' if ok_math else 'DOES NOT HOLD'}")
    print(f"medical: {d_exp}: {'holds' if ok_med else 'DOES NOT HOLD'}")
    print(f"\ntotal {time.perf_counter() - t0:.1f} s")


if __name__ == "__main__":
    main()
