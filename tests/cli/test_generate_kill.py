"""A generation run killed with SIGKILL at several points and re-run ends with the export of an
uninterrupted run, byte for byte, and no slot is generated twice: the test server counts the
requests of every slot, and a slot recorded before a kill gets no request after it."""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import time
from collections import Counter
from pathlib import Path

from prepbench.tools.errors import LedgerError
from prepbench.tools.ledger import RunFolder

from cli_helpers import SHARED, prepbench_cmd, run_cli
from llm_messages import Faults
from llm_modes import DEMO_RE

SEEDS = SHARED / "datasets" / "gsm8k" / "train.jsonl"
N, RUN_SEED = 40, 5
EXPORTS = ("sharegpt.jsonl", "alpaca.jsonl", "openai.jsonl", "samples.jsonl", "dataset_info.json")


def args(server, out: Path) -> list[str]:
    return [
        "generate",
        "--mode",
        "instance",
        "--seeds",
        str(SEEDS),
        "--n",
        str(N),
        "--run-seed",
        str(RUN_SEED),
        "--skill",
        "math",
        "--decontaminate",
        "gsm8k",
        "--model",
        "openai:test-model",
        "--base-url",
        server.url + "/v1",
        "--concurrency",
        "2",
        "--out",
        str(out),
        "-q",
    ]


def slots_of(out: Path) -> dict[str, int]:
    """First demonstration's problem -> slot number, from a run's ledger (its slots' inputs)."""
    run = RunFolder.open(out, readonly=True)
    try:
        return {json.loads(c["text"])["demonstrations"][0]["instruction"]: c["idx"] for c in run.chunk_rows()}
    finally:
        run.close()


def requests_per_slot(server, slot_of: dict) -> Counter:
    out: Counter = Counter()
    for r in server.requests:
        prompt = next(m["content"] for m in r["body"]["messages"] if m["role"] == "user")
        out[slot_of[DEMO_RE.search(prompt).group("q")]] += 1
    return out


def recorded(out: Path) -> set[int]:
    """Slot numbers recorded in the ledger (empty while it cannot be read)."""
    try:
        run = RunFolder.open(out, readonly=True)
    except (sqlite3.Error, LedgerError):
        return set()
    try:
        return {c["idx"] for c in run.chunk_rows() if c["status"] != "pending"}
    except sqlite3.Error:
        return set()
    finally:
        run.close()


def test_sigkill_at_several_points_then_resume(llm_server, tmp_path):
    env = {**os.environ, "OPENAI_API_KEY": "sk-kill", "PREPBENCH_EMBED_CACHE": str(tmp_path / "cache" / "e.sqlite")}
    llm_server.set_faults(Faults(latency_s=0.03))
    ref = tmp_path / "ref" / "run"  # same folder name: dataset_info.json names the dataset after it
    p = run_cli(*args(llm_server, ref), env_extra=env)
    assert p.returncode == 0, p.stderr
    slot_of = slots_of(ref)
    assert len(slot_of) == N
    assert requests_per_slot(llm_server, slot_of) == Counter(range(N))  # one request per slot
    llm_server.reset(Faults(latency_s=0.03))

    out = tmp_path / "killed" / "run"
    snapshots: list[tuple[set[int], Counter]] = []
    for point in (0, 11, 29):  # before the first slot, early and late
        proc = subprocess.Popen(prepbench_cmd(*args(llm_server, out)), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=env)
        deadline = time.time() + 120
        while time.time() < deadline and proc.poll() is None:
            if (point == 0 and (out / "ledger.sqlite").exists()) or (point and len(recorded(out)) >= point):
                break
            time.sleep(0.002)
        assert proc.poll() is None, "the run finished before it could be killed"
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(timeout=30)
        snapshots.append((recorded(out), requests_per_slot(llm_server, slot_of)))
    assert len(snapshots[-1][0]) < N
    p = run_cli(*args(llm_server, out), env_extra=env)
    assert p.returncode == 0, p.stderr
    final = requests_per_slot(llm_server, slot_of)
    # no slot recorded before a kill was asked for again afterwards
    for done, counts in snapshots:
        assert all(final[i] == counts[i] for i in done)
    # every slot was asked; a slot is asked again only when a kill caught it in flight (at most 2 lanes per kill)
    assert set(final) == set(range(N))
    assert sum(final.values()) - N <= 2 * len(snapshots)
    # the ledger holds one call per slot and every slot recorded once
    run = RunFolder.open(out, readonly=True)
    calls = Counter(c["chunk_id"] for c in run.call_rows())
    chunks = run.chunk_rows()
    run.close()
    assert all(c["status"] == "kept" and c["attempts"] == 1 and calls[c["chunk_id"]] == 1 for c in chunks)
    for name in EXPORTS:
        assert (out / "export" / name).read_bytes() == (ref / "export" / name).read_bytes(), name
