"""The export set is replaced at once: ``prepbench export`` on a ledger of 100,000 accepted
samples, killed with SIGKILL at random moments, leaves either the previous complete set or the
new one (every file with the same row count), and the next export leaves no partial behind."""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import time
from pathlib import Path

from prepbench.tools.chunking import Chunk
from prepbench.tools.ledger import ChunkOutcome, RunFolder, SampleRecord

from cli_helpers import REPO, prepbench_cmd, run_cli

FILES = ("sharegpt.jsonl", "alpaca.jsonl", "openai.jsonl", "samples.jsonl")
PER_CHUNK = 100
BASE_CHUNKS = 1000  # 100,000 accepted samples
EXTRA_CHUNKS = 4  # one more chunk recorded before each killed export (3 kills): each generation differs


def _chunk(i: int) -> Chunk:
    text = f"# Section {i}\n\nThe time value of money says a dollar today is worth more than a dollar in year {i}."
    return Chunk(
        chunk_id=f"{i:016x}",
        doc_id="doc",
        doc_path="book.md",
        index=i,
        heading_path=[f"Section {i}"],
        start_line=1,
        end_line=3,
        text=text,
    )


def _record(led: RunFolder, i: int, n: int) -> None:
    samples = [
        SampleRecord(
            "concept_qa",
            {
                "question": f"What does section {i} say about year {i + j}?",
                "answer": f"A dollar today is worth more than in year {i + j}.",
            },
            "accepted",
        )
        for j in range(n)
    ]
    assert led.record_chunk(ChunkOutcome(chunk_id=f"{i:016x}", status="kept", samples=samples))


def _build_ledger(run: Path) -> RunFolder:
    led = RunFolder(run)
    chunks = [_chunk(i) for i in range(BASE_CHUNKS + EXTRA_CHUNKS)]
    config = {"skill_name": "finance", "skill_path": str(REPO / "skills" / "finance"), "agent": "skill", "model": "extractive"}
    led.initialize(config, [{"doc_id": "doc", "rel_path": "book.md", "status": "ingested"}], chunks)
    for i in range(BASE_CHUNKS):
        _record(led, i, PER_CHUNK)
    return led


def _rows(export: Path) -> dict[str, int]:
    out = {}
    for name in FILES:
        with open(export / name, "rb") as f:
            out[name] = sum(1 for _ in f)
    return out


def _partials(run: Path) -> list[str]:
    return sorted(str(p.relative_to(run)) for p in run.rglob("*") if ".tmp" in p.name or ".old-" in p.name)


def _timed_export(run: Path, args: list[str]) -> tuple[float, float]:
    """Run one complete export; return its wall time and how long its new set was being written."""
    t0 = time.perf_counter()
    proc = subprocess.Popen(prepbench_cmd(*args), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    seen = None
    while proc.poll() is None:
        if seen is None and _partials(run):
            seen = time.perf_counter()
        time.sleep(0.005)
    end = time.perf_counter()
    assert proc.returncode == 0, proc.stderr.read()
    assert seen is not None, "the export wrote no partial set first"
    return end - t0, end - seen


def test_killed_export_never_leaves_a_mixed_set(tmp_path):
    run = tmp_path / "run"
    led = _build_ledger(run)
    assert led.counts()["samples"]["accepted"] == BASE_CHUNKS * PER_CHUNK
    led.close()  # let go of the run folder's lock: the exports below are other processes
    args = ["export", str(run), "--format", ",".join(f.split(".")[0] for f in FILES)]
    full, write = _timed_export(run, args)  # seconds: the whole export, and its write phase
    expected = BASE_CHUNKS * PER_CHUNK
    assert set(_rows(run / "export").values()) == {expected}
    rng = random.Random(int(os.environ.get("PREPBENCH_KILL_SEED", "11")))
    killed_mid_write = 0
    total = expected
    for g in range(EXTRA_CHUNKS - 1):
        led = RunFolder(run)
        _record(led, BASE_CHUNKS + g, 3 + g)
        led.close()
        total += 3 + g
        proc = subprocess.Popen(prepbench_cmd(*args), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        if g == 0:  # anywhere in the export, start-up included
            time.sleep(rng.uniform(0.3, full))
        else:  # while the new set is being written: once a partial appears, a random moment later
            deadline = time.monotonic() + 3 * full
            while not _partials(run) and proc.poll() is None and time.monotonic() < deadline:
                time.sleep(0.005)
            time.sleep(rng.uniform(0.0, 0.8 * write))
        killed_mid_write += bool(_partials(run))
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        rows = _rows(run / "export")
        assert len(set(rows.values())) == 1, f"mixed export set after a kill: {rows}"
        got = next(iter(rows.values()))
        assert got in (expected, total), (got, expected, total)
        json.loads((run / "export" / "dataset_info.json").read_text(encoding="utf-8"))
        expected = got
    assert killed_mid_write, "no kill landed while an export was being written: the test proved nothing"
    last = run_cli(*args)
    assert last.returncode == 0, last.stderr
    assert _partials(run) == []
    assert set(_rows(run / "export").values()) == {total}
