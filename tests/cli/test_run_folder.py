"""One writer per run folder, and environment faults as one-line errors.

A second ``run``/``export``/``compare`` on a folder another process writes is refused in one
line naming the holder's pid (exit 2); the lock of a killed process is taken over. Disk full
(SQLite's own SQLITE_FULL, and ENOSPC in the export), an ``--out`` that is a file and an export
folder that is not one give one line naming the path (exit 2 or 3), and the next run resumes
with nothing lost or duplicated. Messages keep their brackets (``prepbench[pdf]``)."""

from __future__ import annotations

import errno
import hashlib
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from prepbench.tools.cli import main
from prepbench.tools.ledger import RunFolder

from cli_helpers import FINANCE_BOOK, SHARED, SLICE, error_lines, prepbench_cmd, run_cli

LIMIT = "40"


def one_line(proc_or_text, rc: int | None = None, code: int = 2) -> str:
    if isinstance(proc_or_text, str):
        text, lines = proc_or_text, [x for x in proc_or_text.splitlines() if x.strip()]
    else:
        text, lines = proc_or_text.stderr + proc_or_text.stdout, error_lines(proc_or_text)
        assert proc_or_text.returncode == code, text
    assert "Traceback" not in text, text
    assert len(lines) == 1 and lines[0].startswith("error:"), lines
    return lines[0]


def run_args(out: Path, *extra: str) -> list[str]:
    return ["run", "--corpus", str(SLICE), "--skill", "finance", "--out", str(out), "--quiet", "--limit", LIMIT, *extra]


def hashes(folder: Path) -> dict[str, str]:
    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(folder.iterdir())}


def data_hashes(folder: Path) -> dict[str, str]:
    """:func:`hashes` of the data files: the card (and so the manifest) of another run names its own dates."""
    return {k: v for k, v in hashes(folder).items() if k not in ("README.md", "manifest.json")}


@pytest.fixture(scope="module")
def done_run(tmp_path_factory) -> Path:
    """A finished run of the first 40 chunks of the shipped slice."""
    out = tmp_path_factory.mktemp("lock") / "run"
    p = run_cli(*run_args(out))
    assert p.returncode == 0, p.stderr
    return out


def hold_lock(folder: Path) -> subprocess.Popen:
    """Another process that holds ``folder``'s lock until killed."""
    code = "import sys, time; from prepbench.tools.ledger import RunLock; RunLock(sys.argv[1]).acquire(); print('held', flush=True); time.sleep(120)"
    proc = subprocess.Popen([sys.executable, "-c", code, str(folder)], stdout=subprocess.PIPE, text=True)
    assert proc.stdout.readline().strip() == "held"
    return proc


def test_second_writer_refused_with_the_holders_pid_then_stale_lock_taken_over(done_run, tmp_path):
    before = hashes(done_run / "export")
    holder = hold_lock(done_run)
    try:
        for args in (run_args(done_run), ["export", str(done_run)]):
            line = one_line(run_cli(*args))
            assert f"in use by pid {holder.pid}" in line and str(done_run) in line, line
        status = run_cli("status", str(done_run))  # a monitor is not a writer
        assert status.returncode == 0 and "coverage" in status.stdout, status.stderr
        cmp_dir = tmp_path / "cmp"
        holder2 = hold_lock(cmp_dir)
        try:
            line = one_line(
                run_cli(
                    "compare",
                    "--agents",
                    "skill",
                    "--corpus",
                    str(SLICE),
                    "--skill",
                    "finance",
                    "--out",
                    str(cmp_dir),
                    "--limit",
                    "3",
                    "--metrics",
                    "none",
                    "--quiet",
                )
            )
            assert f"in use by pid {holder2.pid}" in line, line
        finally:
            holder2.kill()
            holder2.wait()
    finally:
        holder.send_signal(signal.SIGKILL)  # dies holding the lock: its pid stays in run.lock
        holder.wait()
    assert (done_run / "run.lock").read_text().strip() == str(holder.pid)
    assert hashes(done_run / "export") == before  # nothing was written while it was held
    p = run_cli("export", str(done_run), "--format", "sharegpt,alpaca,openai,samples")
    assert p.returncode == 0, p.stderr  # the dead process's lock is taken over
    assert hashes(done_run / "export") == before


def test_two_real_runs_on_one_folder(tmp_path):
    out = tmp_path / "run"
    corpus = tmp_path / "book"
    shutil.copytree(FINANCE_BOOK, corpus)
    args = ["run", "--corpus", str(corpus), "--skill", "finance", "--out", str(out), "--quiet"]
    first = subprocess.Popen(prepbench_cmd(*args), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline and first.poll() is None:
            lock = out / "run.lock"
            if lock.exists() and lock.read_text().strip() == str(first.pid):
                break
            time.sleep(0.05)
        assert first.poll() is None, "the first run ended before the second started"
        second = run_cli(*args)
        assert first.poll() is None, "the first run ended before the second was refused"
        line = one_line(second)
        assert f"in use by pid {first.pid}" in line, line
    finally:
        first.send_signal(signal.SIGKILL)
        first.wait()
    led = RunFolder.open(out, readonly=True)
    try:
        counts = led.counts()
        assert counts["chunks"]["total"] > 0
    finally:
        led.close()


def test_out_is_a_file(tmp_path):
    f = tmp_path / "taken.txt"
    f.write_text("not a run folder\n")
    line = one_line(run_cli(*run_args(f)))
    assert str(f) in line and "is a file" in line, line
    assert f.read_text() == "not a run folder\n"


def test_export_into_a_file_or_a_foreign_folder(done_run, tmp_path):
    f = tmp_path / "data.jsonl"
    f.write_text("x\n")
    line = one_line(run_cli("export", str(done_run), "--out", str(f)))
    assert str(f) in line and "is a file" in line, line
    line = one_line(run_cli("export", str(done_run), "--out", str(f / "sub")))
    assert str(f / "sub") in line and "is a file" in line, line
    assert f.read_text() == "x\n"
    mine = tmp_path / "mine"
    mine.mkdir()
    (mine / "notes.txt").write_text("keep me\n")
    line = one_line(run_cli("export", str(done_run), "--out", str(mine)))
    assert "notes.txt" in line and "new or empty" in line, line
    assert sorted(p.name for p in mine.iterdir()) == ["notes.txt"]


def _in_process(capsys, args: list[str]) -> tuple[int, str]:
    with pytest.raises(SystemExit) as e:
        main(args)
        raise SystemExit(0)
    cap = capsys.readouterr()
    return e.value.code, cap.err + cap.out


def test_disk_full_ledger_then_resume(tmp_path, capsys, monkeypatch):
    """SQLITE_FULL from SQLite itself (max_page_count caps the ledger after 10 chunks)."""
    out = tmp_path / "run"
    original = RunFolder.record_chunk
    seen = {"n": 0}

    def filling(self, outcome):
        seen["n"] += 1
        if seen["n"] == 10:
            pages = self.db.execute("PRAGMA page_count").fetchone()[0]
            self.db.execute(f"PRAGMA max_page_count = {pages}")
        return original(self, outcome)

    monkeypatch.setattr(RunFolder, "record_chunk", filling)
    rc, text = _in_process(capsys, run_args(out))
    assert rc == 3, text
    line = one_line(text)
    assert str(out / "ledger.sqlite") in line and "disk full" in line and "resume" in line, line
    led = RunFolder.open(out, readonly=True)
    try:  # consistent: every recorded chunk's samples are there, the rest is pending
        acc = led.counts()["samples"]["accepted"]
        assert acc == sum(r["n_accepted"] for r in led.chunk_rows())
        assert led.counts()["chunks"]["pending"] > 0
    finally:
        led.close()
    monkeypatch.setattr(RunFolder, "record_chunk", original)
    rc, text = _in_process(capsys, run_args(out))
    assert rc == 0, text
    clean = tmp_path / "clean" / "run"  # the same folder name: the same dataset_info.json names
    rc, text = _in_process(capsys, run_args(clean))
    assert rc == 0, text
    assert data_hashes(out / "export") == data_hashes(clean / "export")  # nothing lost, nothing duplicated


def test_disk_full_export_keeps_the_previous_set(done_run, capsys, monkeypatch):
    from prepbench.tools import export

    before = hashes(done_run / "export")
    real = export._open_lines

    def full_disk(path):
        if path.name == "openai.jsonl":
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(path))
        return real(path)

    monkeypatch.setattr(export, "_open_lines", full_disk)
    rc, text = _in_process(capsys, ["export", str(done_run), "--format", "sharegpt,alpaca,openai,samples"])
    assert rc == 3, text
    line = one_line(text)
    assert "openai.jsonl" in line and "No space left on device" in line and "previous export is kept" in line, line
    assert hashes(done_run / "export") == before
    assert not [p for p in done_run.iterdir() if ".tmp" in p.name]


def test_pdf_hint_keeps_its_brackets(tmp_path):
    """Without PyMuPDF the message says `pip install 'prepbench[pdf]'` (rich markup ate `[pdf]`)."""
    corpus = tmp_path / "pdfs"
    corpus.mkdir()
    shutil.copy(SHARED / "corpora" / "pdf" / "aata-ch03-groups-excerpt.pdf", corpus)
    block = tmp_path / "block"
    block.mkdir()
    (block / "pymupdf4llm.py").write_text("raise ImportError('PyMuPDF is not installed here')\n")
    env = {"PYTHONPATH": os.pathsep.join(filter(None, [str(block), os.environ.get("PYTHONPATH")]))}
    p = run_cli("run", "--corpus", str(corpus), "--skill", "finance", "--out", str(tmp_path / "out"), "--quiet", env_extra=env)
    line = one_line(p)
    assert "pip install 'prepbench[pdf]'" in line and "aata-ch03-groups-excerpt.pdf" in line, line
