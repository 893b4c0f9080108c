"""A large export renders in forked worker processes that read the ledger themselves, writes each
file a block at a time on a thread that hashes it: the files are the bytes a serial export of the
same samples writes, the manifest's checksums are those of the files, no sample sees another's
variables through the reused template context, and a template error in a worker is the same
one-line error."""

from __future__ import annotations

import hashlib
import json
import threading
from pathlib import Path

import pytest

from prepbench.tools import export_pool
from prepbench.tools.chunking import Chunk
from prepbench.tools.errors import PrepbenchError
from prepbench.tools.export import export_samples
from prepbench.tools.export_set import verify_manifest, write_manifest
from prepbench.tools.hashed_files import BlockWriter, HashedFile
from prepbench.tools.ledger import ChunkOutcome, RunFolder, SampleRecord
from prepbench.tools.skills import load_skill
from prepbench.tools.skills.templates import BlockRenderer

from cli_helpers import REPO

FORMATS = ("sharegpt", "alpaca", "openai", "samples")
SKILLS = ("general", "finance", "law", "medical", "math", "science")


def _examples() -> tuple[list[dict], dict[str, str]]:
    """Every worked example of the shipped skills, with every skill's render templates."""
    samples, renders = [], {}
    for name in SKILLS:
        skill = load_skill(name)
        renders.update(skill.renders)
        samples += [{"sample_id": f"{name}-{i}", **ex} for i, ex in enumerate(skill.examples)]
    return samples, renders


def _files(folder: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(folder.iterdir()) if p.is_file()}


@pytest.fixture
def forks(monkeypatch) -> list[int]:
    """Counts the exports rendered in worker processes (forking allowed: pytest may run a thread)."""
    used: list[int] = []
    real = export_pool._in_workers

    def counted(tasks, fn, job, workers):
        used.append(workers)
        return real(tasks, fn, job, workers)

    monkeypatch.setattr(export_pool, "_fork_is_safe", lambda: True)
    monkeypatch.setattr(export_pool, "_in_workers", counted)
    return used


@pytest.fixture(scope="module")
def ledger_run(tmp_path_factory) -> Path:
    """A run folder of 300 chunks with up to four samples each (some none, some rejected, some
    accepted but excluded by a decontamination flag)."""
    run = tmp_path_factory.mktemp("parallel") / "run"
    led = RunFolder(run)
    chunks = [
        Chunk(chunk_id=f"{i:016x}", doc_id="doc", doc_path="book.md", index=i, heading_path=[f"S{i}"], start_line=1, end_line=2, text=f"Section {i}.")
        for i in range(300)
    ]  # fmt: skip
    config = {"skill_name": "finance", "skill_path": str(REPO / "skills" / "finance"), "agent": "skill", "model": "extractive"}
    led.initialize(config, [{"doc_id": "doc", "rel_path": "book.md", "status": "ingested"}], chunks)
    for i in range(300):
        samples = [
            SampleRecord(
                "calculation_qa" if j % 2 else "term_definition",
                {
                    "question": f"What is ratio {i}.{j} — «ünïcode»?",
                    "answer": f"It is {i * j}.\n\n\n\nFinal.",
                    "formula": "a / b",
                    "reasoning_steps": [f"Divide {i} by {j + 1}.", "Round."],
                    "evidence": [f"Section {i}."],
                },
                "rejected" if (i + j) % 7 == 0 else "accepted",
                rule="near_duplicate" if (i + j) % 7 == 0 else None,
                contamination=[{"benchmark": "gsm8k", "rule": "ngram", "item": "x", "excluded": 1}] if i % 50 == 3 else [],
            )
            for j in range(i % 5)
        ]
        led.record_chunk(
            ChunkOutcome(
                chunk_id=f"{i:016x}",
                status="kept" if samples else "skipped",
                samples=samples,
                skip_reason=None if samples else "low_information",
            )
        )
    led.close()
    return run


def test_workers_write_the_bytes_of_a_serial_export(tmp_path, forks):
    samples, renders = _examples()
    samples = samples * 40  # many blocks of the pool, each skill's templates in each
    serial = export_samples(samples, renders, tmp_path / "serial", FORMATS, workers=0)
    parallel = export_samples(iter(samples), renders, tmp_path / "parallel", FORMATS, workers=2)
    assert forks == [2]
    assert serial["count"] == parallel["count"] == len(samples)
    assert _files(tmp_path / "serial") == _files(tmp_path / "parallel")
    assert verify_manifest(tmp_path / "parallel") == []
    lines = (tmp_path / "parallel" / "samples.jsonl").read_text(encoding="utf-8").splitlines()
    assert [json.loads(line)["sample_id"] for line in lines] == [s["sample_id"] for s in samples]


def test_workers_reading_the_ledger_give_the_rows_of_one_reader(ledger_run, tmp_path, forks):
    led = RunFolder.open(ledger_run, readonly=True)
    try:
        rows, accepted = list(led.accepted_sample_rows(exported=True)), list(led.accepted_sample_rows())
        assert len(rows) < len(accepted)  # the flagged samples are left out
        blocks = led.accepted_sample_blocks(exported=True, per_block=16)
        assert len(blocks.keys) > 20 and blocks.count == len(accepted)
        assert [r for key in blocks.keys for r in blocks.read_block(key)] == rows
        renders = load_skill("finance").renders
        by_rows = export_samples(iter(rows), renders, tmp_path / "rows", FORMATS, workers=0)
        by_blocks = export_samples(blocks, renders, tmp_path / "blocks", FORMATS, workers=2)
        blocks.close()
    finally:
        led.close()
    assert forks == [2]
    assert by_rows["count"] == by_blocks["count"] == len(rows) > 400
    assert _files(tmp_path / "rows") == _files(tmp_path / "blocks")
    dicts = export_samples(led_samples(ledger_run), renders, tmp_path / "dicts", FORMATS, workers=0)
    assert dicts["count"] == len(rows) and _files(tmp_path / "dicts") == _files(tmp_path / "rows")


def led_samples(run: Path) -> list[dict]:
    led = RunFolder.open(run, readonly=True)
    try:
        return list(led.accepted_samples(exported=True))
    finally:
        led.close()


def test_a_template_error_in_a_worker_is_the_one_line_error(tmp_path, forks):
    samples, renders = _examples()
    broken = {
        **renders,
        "concept_qa": "{% block instruction %}{{ no_such_field }}{% endblock %}{% block output %}x{% endblock %}",
    }
    with pytest.raises(PrepbenchError, match=r"render/concept_qa\.md: 'no_such_field' is undefined \(sample general-"):
        export_samples(samples * 20, broken, tmp_path / "out", FORMATS, workers=2)
    assert forks == [2]
    assert not (tmp_path / "out").exists() and not list(tmp_path.glob("out.tmp-*"))


def test_a_reused_template_context_keeps_no_sample_of_the_last():
    r = BlockRenderer(
        "{% block instruction %}{% set q = question %}{{ q }}{% endblock %}{% block output %}{{ answer }}{% endblock %}"
    )
    assert r.render({"question": "Q1", "answer": "A1"}) == ("Q1", "A1")
    with pytest.raises(Exception, match="'answer' is undefined"):
        r.render({"question": "Q2"})  # not the previous sample's answer
    assert r.render({"question": "Q3", "answer": "A3", "range": "a field named like a global"}) == ("Q3", "A3")
    seen: dict[int, tuple[str, str]] = {}

    def render_in_thread(i: int) -> None:
        for _ in range(200):
            got = r.render({"question": f"Q{i}", "answer": f"A{i}"})
            if got != (f"Q{i}", f"A{i}"):
                seen[i] = got

    threads = [threading.Thread(target=render_in_thread, args=(i,)) for i in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert seen == {}


def test_hashed_files_give_the_manifest_the_digest_of_their_bytes(tmp_path):
    f = HashedFile(tmp_path / "a.jsonl")
    with BlockWriter(depth=2) as writer:
        for i in range(50):
            writer.write(f, f"line {i} ✓\n".encode())
    digest = f.close()
    data = (tmp_path / "a.jsonl").read_bytes()
    assert digest == hashlib.sha256(data).hexdigest() and f.size == len(data)
    (tmp_path / "b.txt").write_text("b")
    manifest = write_manifest(tmp_path, {"a.jsonl": (digest, f.size), "b.txt": ("0" * 64, 99)})  # b: a stale size
    assert manifest["files"]["a.jsonl"]["sha256"] == digest
    assert manifest["files"]["b.txt"]["sha256"] == hashlib.sha256(b"b").hexdigest()
    assert verify_manifest(tmp_path) == []


def test_a_failed_block_write_is_raised_to_the_exporter(tmp_path):
    f = HashedFile(tmp_path / "a.jsonl")
    f.discard()  # closed: the next write fails on the writer thread
    with pytest.raises(ValueError, match="closed file"):
        with BlockWriter() as writer:
            writer.write(f, b"x" * 10_000)
