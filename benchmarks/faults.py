"""Fault benchmark: accepted samples under a faulty server beside a clean one, with re-runs.

The skill and direct agents run on one real chapter of OpenStax *Principles of Finance*
(``../shared/corpora``), ``--limit`` chunks, against the scripted test server of
``tests/llm_server.py`` (in this process, on 127.0.0.1) with the real ``langchain-openai``
client. Each agent runs once on a clean server, then on a server with the fault mix below,
re-run (the same command, faults still on) up to ``--reruns`` times while chunks are left
failed or pending. It prints, per run, the chunk outcomes, the accepted samples beside the
clean run's, and the calls (failed attempts included) the ledger accounted.

The mix (per request): 12% 429, 10% 500, 8% JSON bodies cut short, 10% garbage content,
5% slow replies (past the client's timeout), 8% connection resets, 4% empty ``choices``.

    python benchmarks/faults.py --limit 16

It prints figures; it is not a test.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
BOOK = REPO.parent / "shared" / "corpora" / "finance" / "openstax-principles-of-finance"
CHAPTER = "07-time-value-of-money-i-single-payment-value.md"
MIX = {
    "rate_429": 0.12,
    "rate_500": 0.10,
    "rate_truncated_body": 0.08,
    "rate_malformed": 0.10,
    "rate_slow": 0.05,
    "rate_reset": 0.08,
    "rate_empty_choices": 0.04,
}


def outcome(out: Path) -> dict:
    """Chunk statuses, accepted samples, calls and the chunks left without a reason, from the ledger."""
    from prepbench.tools.ledger import RunFolder

    ledger = RunFolder(out)
    try:
        chunks = ledger.chunk_rows()
        calls = ledger.call_rows()
        status = {s: sum(1 for c in chunks if c["status"] == s) for s in ("kept", "skipped", "failed", "pending")}
        unexplained = [
            c["chunk_id"]
            for c in chunks
            if c["status"] == "pending"
            or (c["status"] == "skipped" and not c["skip_reason"])
            or (c["status"] == "failed" and not c["error"])
        ]
        return {
            **status,
            "accepted": sum(1 for _ in ledger.accepted_samples()),
            "calls": len(calls),
            "failed_calls": sum(1 for c in calls if not c["ok"]),
            "tokens": sum((c["input_tokens"] or 0) + (c["output_tokens"] or 0) for c in calls),
            "unexplained": unexplained,
            "errors": sorted({(c["error"] or "")[:70] for c in chunks if c["status"] == "failed"}),
        }
    finally:
        ledger.close()


def run_once(srv, corpus: Path, out: Path, agent: str, args) -> tuple[dict, float]:
    """One ``prepbench run`` (as a library call) of ``agent`` into ``out``; ``(outcome, seconds)``."""
    from prepbench.agents.runner import run_pipeline
    from prepbench.tools.run import RunOptions

    opts = RunOptions(
        corpus=[str(corpus)],
        skill="finance",
        out=str(out),
        agent=agent,
        model="openai:test-model",
        limit=args.limit,
        concurrency=args.concurrency,
        max_attempts=args.reruns + 1,
        model_options={
            "base_url": srv.url + "/v1",
            "api_key": "sk-bench-faults",
            "timeout": args.timeout,
            "max_retries": args.max_retries,
            "backoff_base": 0.02,
            "backoff_max": 0.2,
        },
    )
    t0 = time.perf_counter()
    run_pipeline(opts)
    return outcome(out), time.perf_counter() - t0


def line(label: str, o: dict, clean: int | None, secs: float) -> str:
    """One printed row: outcomes, accepted beside the clean run's, calls."""
    acc = f"{o['accepted']:>4}" + (f" / clean {clean:<4}" if clean is not None else " " * 12)
    return (
        f"  {label:<9} kept {o['kept']:>3}  skipped {o['skipped']:>3}  failed {o['failed']:>3}  pending {o['pending']:>3}"
        f"  accepted {acc}  calls {o['calls']:>4} ({o['failed_calls']:>3} failed)  tokens {o['tokens']:>7}  {secs:5.1f}s"
    )


def bench_agent(srv, corpus: Path, work: Path, agent: str, args) -> bool:
    """The clean run, then the faulty run and its re-runs; True when the counts end equal and
    every chunk ends kept, skipped or failed with a reason."""
    from llm_messages import Faults

    srv.set_faults(Faults())
    clean, secs = run_once(srv, corpus, work / f"{agent}-clean", agent, args)
    print(f"{agent}:")
    print(line("clean", clean, None, secs))
    srv.set_faults(Faults(seed=args.seed, slow_s=args.timeout * 2, retry_after_s=0.05, **MIX))
    out = work / f"{agent}-faults"
    for i in range(args.reruns + 1):
        o, secs = run_once(srv, corpus, out, agent, args)
        print(line("faults" if i == 0 else f"re-run {i}", o, clean["accepted"], secs))
        if o["errors"]:
            print("            failed: " + "; ".join(o["errors"][:3]))
        if not (o["failed"] or o["pending"]):
            break
    srv.wait_idle()
    equal = o["accepted"] == clean["accepted"]
    explained = not o["unexplained"]
    verdict = "EQUAL" if equal else "DIFFERENT"
    reasons = (
        "every chunk kept, skipped or failed with a reason" if explained else f"{len(o['unexplained'])} chunk(s) unexplained"
    )
    print(f"  -> accepted {verdict} ({o['accepted']} vs {clean['accepted']}); {reasons}")
    return equal and explained


def main(argv: list[str] | None = None) -> int:
    """Run the benchmark; exit 0 when every agent's counts end equal, else 1."""
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--chapter", default=CHAPTER, help="chapter file of the shared Principles of Finance")
    ap.add_argument("--limit", type=int, default=16, help="chunks (12-24 is the intended range)")
    ap.add_argument("--agents", default="skill,direct")
    ap.add_argument("--reruns", type=int, default=3)
    ap.add_argument("--concurrency", type=int, default=8)
    ap.add_argument("--timeout", type=float, default=1.0, help="client timeout of one request, s (slow replies take 2x)")
    ap.add_argument("--max-retries", type=int, default=5)
    ap.add_argument("--seed", type=int, default=7)
    args = ap.parse_args(argv)
    sys.path.insert(0, str(REPO / "tests"))
    from cli_helpers import book_chapter
    from llm_server import LLMServer

    ok = True
    with tempfile.TemporaryDirectory(prefix="prepbench-faults-") as tmp, LLMServer() as srv:
        corpus = book_chapter(Path(tmp) / "corpus", args.chapter, BOOK)
        print(f"fault mix: {', '.join(f'{k[5:]} {v:.0%}' for k, v in MIX.items())}; {args.chapter}, --limit {args.limit}")
        for agent in [a.strip() for a in args.agents.split(",") if a.strip()]:
            ok = bench_agent(srv, corpus, Path(tmp), agent, args) and ok
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
