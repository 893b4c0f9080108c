"""Resume: a run killed with SIGKILL at several points and re-run ends with exactly the
accepted-sample set of an uninterrupted run, and no chunk is generated twice. A run whose
skill or corpus changed under it is refused with a message saying what changed."""

import json
import os
import shutil
import signal
import sqlite3
import subprocess
import time
from pathlib import Path

import pytest

from prepbench.tools.errors import LedgerError
from prepbench.tools.ledger import RunFolder

from cli_helpers import REPO, SLICE, error_lines, prepbench_cmd, run_cli, skill_held_to_the_full_mix


def accepted(out: Path) -> list[tuple]:
    run = RunFolder.open(out)
    try:
        return [(s["sample_id"], s["chunk_id"], s["pos"], s["data"]) for s in run.sample_rows(status="accepted")]
    finally:
        run.close()


def done_count(ledger: Path, what: str = "chunks") -> int:
    """Chunks recorded, or (``what="revisits"``) revisits of the coverage loop done; -1 when unreadable."""
    try:
        run = RunFolder.open(ledger, readonly=True)
        try:
            if what == "revisits":
                return run.revisit_counts()["done"]
            chunks = run.counts()["chunks"]
            return chunks["total"] - chunks["pending"]
        finally:
            run.close()
    except (sqlite3.Error, LedgerError):
        return -1


def _n_calls(out: Path) -> int:
    run = RunFolder.open(out)
    try:
        return run.counts()["calls"]["count"]
    finally:
        run.close()


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    d = tmp_path_factory.mktemp("corpus")
    for f in SLICE.glob("*.md"):
        shutil.copy(f, d / f.name)
    return d


@pytest.fixture(scope="module")
def full_mix(tmp_path_factory) -> str:
    """finance, held to the full sample-type mix offline: its coverage loop runs on the slice."""
    return str(skill_held_to_the_full_mix(tmp_path_factory.mktemp("skill"), "finance"))


@pytest.fixture(scope="module")
def reference(corpus, full_mix, tmp_path_factory):
    out = tmp_path_factory.mktemp("ref") / "run"
    p = run_cli("run", "--corpus", str(corpus), "--out", str(out), "--quiet", "--batch-size", "4", "--skill", full_mix)
    assert p.returncode == 0, p.stderr
    return out


def test_sigkill_at_several_points_then_resume(corpus, reference, full_mix, tmp_path):
    out = tmp_path / "run"
    ledger = out / "ledger.sqlite"
    ref = RunFolder.open(reference)
    total, n_revisits = ref.counts()["chunks"]["total"], len(ref.revisit_rows())
    ref.close()
    assert n_revisits >= 2  # the slice under-covers case_application: the coverage loop runs (and stops after a barren round)
    # kill points: chunks recorded, then revisits done in the coverage loop
    kill_points = [
        ("chunks", 0),
        ("chunks", 5),
        ("chunks", total // 3),
        ("chunks", (2 * total) // 3),
        ("revisits", n_revisits // 2),
    ]
    killed = 0
    for what, point in kill_points:
        proc = subprocess.Popen(
            prepbench_cmd("run", "--corpus", str(corpus), "--out", str(out), "--quiet", "--batch-size", "4", "--skill", full_mix),
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
        )
        deadline = time.time() + 120
        while time.time() < deadline and proc.poll() is None:
            n = done_count(ledger, what) if ledger.exists() else -1
            if (point == 0 and ledger.exists()) or (point > 0 and n >= point):
                break
            time.sleep(0.002)
        if proc.poll() is None:
            os.kill(proc.pid, signal.SIGKILL)
            killed += 1
        proc.wait(timeout=30)
    assert killed >= 4, "the run finished before it could be killed: the test must interrupt it"
    p = run_cli("run", "--corpus", str(corpus), "--out", str(out), "--quiet", "--batch-size", "4", "--skill", full_mix)
    assert p.returncode == 0, p.stderr
    ref, got = accepted(reference), accepted(out)
    assert [r[0] for r in got] == [r[0] for r in ref]
    assert got == ref
    run = RunFolder.open(ledger)
    counts = run.counts()["chunks"]
    assert counts["pending"] == counts["failed"] == 0
    # no chunk was generated twice: exactly one triage call per chunk, at most one generate call,
    # and one revisit_generate call per revisit the coverage loop planned for it
    per_chunk = run.calls_per_chunk()
    assert len(per_chunk) == total
    assert all(r["triage"] == 1 and r["generate"] <= 1 and r["revisit_generate"] == r["revisit_rounds"] for r in per_chunk)
    assert run.revisit_counts()["done"] == n_revisits
    assert max(r["attempts"] for r in run.chunk_rows()) == 1
    run.close()
    # exports match the reference byte for byte
    for name in ("sharegpt.jsonl", "alpaca.jsonl"):
        assert (out / "export" / name).read_bytes() == (reference / "export" / name).read_bytes()


def test_rerun_of_finished_run_processes_nothing(corpus, reference, full_mix):
    before = accepted(reference)
    calls = _n_calls(reference)
    p = run_cli("run", "--corpus", str(corpus), "--out", str(reference), "--quiet", "--batch-size", "4", "--skill", full_mix)
    assert p.returncode == 0, p.stderr
    p = run_cli("status", str(reference), "--json")
    assert p.returncode == 0
    status = json.loads(p.stdout)
    assert status["coverage"]["chunks"]["pending"] == 0
    assert accepted(reference) == before
    assert _n_calls(reference) == calls


def test_changed_corpus_or_skill_is_refused(corpus, tmp_path):
    work = tmp_path / "corpus"
    shutil.copytree(corpus, work)
    out = tmp_path / "run"
    p = run_cli("run", "--corpus", str(work), "--out", str(out), "--quiet", "--limit", "10")
    assert p.returncode == 0, p.stderr
    n_before = len(accepted(out))
    f = work / "07-time-value-of-money-i-single-payment-value.md"
    f.write_text(f.read_text(encoding="utf-8") + "\nOne more line.\n", encoding="utf-8")
    p = run_cli("run", "--corpus", str(work), "--out", str(out), "--quiet", "--limit", "10")
    assert p.returncode == 2
    lines = error_lines(p)
    assert len(lines) == 1 and "07-time-value-of-money-i-single-payment-value.md" in lines[0] and "--fresh" in lines[0]
    assert len(accepted(out)) == n_before, "a refused run must not touch the ledger"
    # a changed skill is named too
    skill = tmp_path / "finance"
    shutil.copytree(REPO / "skills" / "finance", skill)
    (skill / "SKILL.md").write_text((skill / "SKILL.md").read_text() + "\nOne more instruction.\n")
    f.write_text(f.read_text(encoding="utf-8").replace("\nOne more line.\n", ""), encoding="utf-8")
    p = run_cli("run", "--corpus", str(work), "--out", str(out), "--quiet", "--limit", "10", "--skill", str(skill))
    assert p.returncode == 2 and "skill" in error_lines(p)[0]
    # --fresh starts over
    p = run_cli("run", "--corpus", str(work), "--out", str(out), "--quiet", "--limit", "10", "--skill", str(skill), "--fresh")
    assert p.returncode == 0, p.stderr
    assert len(accepted(out)) == n_before
