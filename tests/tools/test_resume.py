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

from cli_helpers import REPO, SLICE, error_lines, prepbench_cmd, run_cli


def accepted(out: Path) -> list[tuple]:
    db = sqlite3.connect(out / "ledger.sqlite")
    try:
        return db.execute(
            "SELECT sample_id, chunk_id, pos, data FROM samples WHERE status='accepted' ORDER BY chunk_idx, pos"
        ).fetchall()
    finally:
        db.close()


def done_count(ledger: Path, what: str = "chunks") -> int:
    """Chunks recorded, or (``what="revisits"``) revisits of the coverage loop done; -1 when unreadable."""
    sql = {
        "chunks": "SELECT COUNT(*) FROM chunks WHERE status != 'pending'",
        "revisits": "SELECT COUNT(*) FROM revisits WHERE status = 'done'",
    }[what]
    try:
        db = sqlite3.connect(f"file:{ledger}?mode=ro", uri=True, timeout=1)
        try:
            return db.execute(sql).fetchone()[0]
        finally:
            db.close()
    except sqlite3.Error:
        return -1


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    d = tmp_path_factory.mktemp("corpus")
    for f in SLICE.glob("*.md"):
        shutil.copy(f, d / f.name)
    return d


@pytest.fixture(scope="module")
def reference(corpus, tmp_path_factory):
    out = tmp_path_factory.mktemp("ref") / "run"
    p = run_cli("run", "--corpus", str(corpus), "--out", str(out), "--quiet", "--batch-size", "4")
    assert p.returncode == 0, p.stderr
    return out


def test_sigkill_at_several_points_then_resume(corpus, reference, tmp_path):
    out = tmp_path / "run"
    ledger = out / "ledger.sqlite"
    total = sqlite3.connect(reference / "ledger.sqlite").execute("SELECT COUNT(*) FROM chunks").fetchone()[0]
    n_revisits = sqlite3.connect(reference / "ledger.sqlite").execute("SELECT COUNT(*) FROM revisits").fetchone()[0]
    assert n_revisits >= 10  # the slice under-covers case_application: the coverage loop runs
    # kill points: chunks recorded, then revisits done in the coverage loop
    kill_points = [("chunks", 0), ("chunks", 5), ("chunks", total // 3), ("chunks", (2 * total) // 3), ("revisits", n_revisits // 2)]
    killed = 0
    for what, point in kill_points:
        proc = subprocess.Popen(
            prepbench_cmd("run", "--corpus", str(corpus), "--out", str(out), "--quiet", "--batch-size", "4"),
            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
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
    p = run_cli("run", "--corpus", str(corpus), "--out", str(out), "--quiet", "--batch-size", "4")
    assert p.returncode == 0, p.stderr
    ref, got = accepted(reference), accepted(out)
    assert [r[0] for r in got] == [r[0] for r in ref]
    assert got == ref
    db = sqlite3.connect(ledger)
    assert db.execute("SELECT COUNT(*) FROM chunks WHERE status IN ('pending', 'failed')").fetchone()[0] == 0
    # no chunk was generated twice: exactly one triage call per chunk, at most one generate call,
    # and one revisit_generate call per revisit the coverage loop planned for it
    per_chunk = db.execute(
        "SELECT chunk_id, SUM(node='triage'), SUM(node='generate'), SUM(node='revisit_generate'), "
        "(SELECT COUNT(DISTINCT round) FROM revisits r WHERE r.chunk_id = calls.chunk_id) FROM calls GROUP BY chunk_id"
    ).fetchall()
    assert len(per_chunk) == total
    assert all(t == 1 and g <= 1 and rg == rv for _, t, g, rg, rv in per_chunk)
    assert db.execute("SELECT COUNT(*) FROM revisits WHERE status = 'done'").fetchone()[0] == n_revisits
    assert db.execute("SELECT MAX(attempts) FROM chunks").fetchone()[0] == 1
    # exports match the reference byte for byte
    for name in ("sharegpt.jsonl", "alpaca.jsonl"):
        assert (out / "export" / name).read_bytes() == (reference / "export" / name).read_bytes()


def test_rerun_of_finished_run_processes_nothing(corpus, reference):
    before = accepted(reference)
    calls = sqlite3.connect(reference / "ledger.sqlite").execute("SELECT COUNT(*) FROM calls").fetchone()[0]
    p = run_cli("run", "--corpus", str(corpus), "--out", str(reference), "--quiet", "--batch-size", "4")
    assert p.returncode == 0, p.stderr
    p = run_cli("status", str(reference), "--json")
    assert p.returncode == 0
    status = json.loads(p.stdout)
    assert status["coverage"]["chunks"]["pending"] == 0
    assert accepted(reference) == before
    assert sqlite3.connect(reference / "ledger.sqlite").execute("SELECT COUNT(*) FROM calls").fetchone()[0] == calls


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
