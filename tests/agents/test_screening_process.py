"""The gate's screening in a child process (``prepbench.tools.validate.screening``, issue 15).

The child's verdicts must be the in-process gate's on real labelled samples; a run that screens
there must export exactly what a run screening in process exports; a child that dies or cannot
screen leaves the driver screening in process, with the same verdicts.
"""

from __future__ import annotations

import asyncio
import json
import os
import pickle
from pathlib import Path
from types import SimpleNamespace

import pytest

from prepbench.agents.runner import run_pipeline
from prepbench.tools.skills import load_skill
from prepbench.tools.validate import Gate, screening
from prepbench.tools.validate.screening import ScreeningProcess

from cli_helpers import book_chapter, chat_run_options

LABELLED = Path(__file__).resolve().parents[1] / "fixtures" / "quality" / "labelled.jsonl"
KEY = "sk-prepbench-test-key-screening"


def _items(domain: str, n: int) -> list[tuple[dict, str]]:
    rows = [json.loads(line) for line in LABELLED.read_text(encoding="utf-8").splitlines()]
    return [(r["sample"], r["chunk"]) for r in rows if r["domain"] == domain][:n]


async def _screen_in_batches(proc: ScreeningProcess, items: list, size: int = 3) -> list:
    # several lanes at once, as the skill agent sends them: answers must come back to their own caller
    parts = [items[i : i + size] for i in range(0, len(items), size)]
    out = await asyncio.gather(*(proc.screen_many(p) for p in parts))
    try:
        return [v for part in out for v in part]
    finally:
        proc.release()


def test_the_child_gives_the_in_process_verdicts():
    gate = Gate(load_skill("law"), dedup=False)
    items = _items("law", 60)
    want = gate.screen_many(items)
    assert {v.ok for v in want} == {True, False}  # the labelled rows hold kept and rejected samples
    proc = ScreeningProcess(gate)
    try:
        got = asyncio.run(_screen_in_batches(proc, items))
        assert proc.cpu_s > 0  # the child, not this process, screened
    finally:
        proc.close()
    assert got == want


def test_a_pool_screens_each_chunk_in_one_child_and_answers_in_order():
    gate = Gate(load_skill("law"), dedup=False)
    items = _items("law", 40)
    want = gate.screen_many(items)
    pool = screening.ScreeningPool(gate, 2)

    async def lanes() -> list:
        parts = [items[i : i + 5] for i in range(0, len(items), 5)]
        out = await asyncio.gather(*(pool.screen_many(p) for p in parts))
        pool.release()
        return [v for part in out for v in part]

    try:
        got = asyncio.run(lanes())
        assert all(c.cpu_s > 0 for c in pool.children)  # the chunks were shared out, and each child screened
    finally:
        pool.close()
    assert got == want
    texts = sorted({t for _, t in items})
    assert len(pool._home) == len(texts)  # each chunk has one child
    assert set(pool._home.values()) == {0, 1}  # and both children have chunks of these
    assert pool._waiting == [0, 0]  # every answer came back


def test_a_new_chunk_goes_to_the_child_with_fewest_candidates_waiting_and_stays_there():
    pool = screening.ScreeningPool(Gate(load_skill("law"), dedup=False), 2)
    try:
        pool._waiting[:] = [5, 1]
        assert pool._child_of("chunk A") == 1
        pool._waiting[:] = [0, 9]
        assert pool._child_of("chunk B") == 0
        assert pool._child_of("chunk A") == 1  # its first candidates' child, however busy now
    finally:
        pool.close()


def test_children_per_run_follow_the_cores():
    assert [screening.processes_for(n) for n in (1, 2, 3, 4, 8, 64)] == [2, 2, 2, 3, 4, 4]


def test_a_child_reads_the_frames_already_waiting_as_one_batch_and_leaves_a_partial_one():
    read_fd, write_fd = os.pipe()
    reader = screening.FrameReader(read_fd)
    try:
        with os.fdopen(write_fd, "wb", buffering=0) as w:
            for k in range(3):
                screening._write_frame(w, [k])
            body = pickle.dumps([3])
            w.write(screening._HEADER.pack(len(body)) + body[:2])  # a frame still being written
            assert reader.batch() == [[0], [1], [2]]
            w.write(body[2:])
            screening._write_frame(w, [4])
            assert reader.batch(most=1) == [[3]]  # at most ``most``: the next stays in the pipe
            assert reader.batch() == [[4]]
        assert reader.batch() == []  # the writer closed: the end
    finally:
        os.close(read_fd)


def test_frames_screened_together_get_their_own_verdicts_and_only_a_failing_frame_its_error(monkeypatch):
    gate = Gate(load_skill("law"), dedup=False)
    items = _items("law", 9)
    frames = [items[0:2], items[2:7], items[7:9]]
    assert screening._screen_frames(gate, frames) == [(True, gate.screen_many(f)) for f in frames]
    bad = items[3][0]
    screen_many = gate.screen_many

    def failing(batch):  # screening that raises on one candidate, as an environment fault would
        if any(s is bad for s, _ in batch):
            raise RuntimeError("parser gone")
        return screen_many(batch)

    monkeypatch.setattr(gate, "screen_many", failing)
    answers = screening._screen_frames(gate, frames)
    assert [a[0] for a in answers] == [True, False, True]
    assert str(answers[1][1]) == "parser gone"
    assert answers[0][1] == screen_many(frames[0]) and answers[2][1] == screen_many(frames[2])


def _kill(proc: ScreeningProcess, gate: Gate) -> ScreeningProcess:
    proc._proc.kill()
    proc._proc.wait()
    return proc


def _unbuildable(proc: ScreeningProcess, gate: Gate) -> ScreeningProcess:
    proc.close()
    skill, gate.skill = gate.skill, "not a skill"  # what the child gets: its Gate(...) fails
    proc = ScreeningProcess(gate)
    gate.skill = skill
    return proc


@pytest.mark.parametrize("breaks", [_kill, _unbuildable], ids=["killed", "no_gate"])
def test_a_child_that_is_gone_or_cannot_build_its_gate_leaves_screening_in_process(breaks):
    gate = Gate(load_skill("finance"), dedup=False)
    items = _items("finance", 12)
    want = gate.screen_many(items)
    proc = breaks(ScreeningProcess(gate), gate)
    try:
        got = asyncio.run(_screen_in_batches(proc, items))
        assert proc.broken and proc.cpu_s == 0
    finally:
        proc.close()
    assert got == want


def test_a_run_screening_in_a_child_exports_what_an_in_process_run_exports(llm_server, tmp_path, monkeypatch):
    corpus = book_chapter(tmp_path / "corpus", "10-bonds-and-bond-valuation.md")
    used: list[list[float]] = []
    park = screening.park

    def recording_park(pool):  # the end of a run's use of its children
        used.append([c.cpu_s for c in pool.children])
        park(pool)

    monkeypatch.setattr(screening, "park", recording_park)
    exports = {}
    for name, start_from in (("child", 16), ("in_process", 10**6)):
        monkeypatch.setattr(screening, "SCREEN_PROCESS_FROM", start_from)
        out = tmp_path / name
        opts = chat_run_options(corpus, out, llm_server, "skill", KEY, {"concurrency": 16}, concurrency=16, limit=10)
        result = run_pipeline(opts)
        assert not result["stopped"]
        exports[name] = {p.name: p.read_bytes() for p in (out / "export").glob("*.jsonl")}
    # only the first run had children (one pool), and each screened
    assert len(used) == 1 and len(used[0]) == screening.processes_for() and min(used[0]) > 0
    assert exports["child"] and exports["child"] == exports["in_process"]


def test_a_later_run_of_the_same_skill_takes_the_children_an_earlier_run_left():
    options = SimpleNamespace(executor=SimpleNamespace(remote=False), concurrency=screening.SCREEN_PROCESS_FROM)
    chat_model = SimpleNamespace(chat=object())
    items = _items("law", 12)
    want = Gate(load_skill("law"), dedup=False).screen_many(items)

    async def screen(pool) -> list:
        try:
            return await pool.screen_many(items)
        finally:
            pool.release()  # as the agent does before its event loop ends

    first = screening.start(load_skill("law"), options, chat_model)
    try:
        pids = [c._proc.pid for c in first.children]
        assert asyncio.run(screen(first)) == want
        screening.park(first)
        second = screening.start(load_skill("law"), options, chat_model)
        assert second is first and [c._proc.pid for c in second.children] == pids
        assert second.cpu_s == 0 and asyncio.run(screen(second)) == want  # a new event loop, the same children
        assert second.cpu_s > 0
        screening.park(second)
        other = screening.start(load_skill("finance"), options, chat_model)  # another skill: new children
        try:
            assert other is not first and all(c._proc is None for c in first.children)
        finally:
            other.close()
    finally:
        first.close()


def test_children_that_still_owe_answers_are_not_kept():
    pool = screening.ScreeningPool(Gate(load_skill("law"), dedup=False), 2)
    items = _items("law", 6)

    async def cut_short() -> None:
        task = asyncio.ensure_future(pool.screen_many(items))
        await asyncio.sleep(0)
        while not any(c._waiting for c in pool.children):
            await asyncio.sleep(0.001)
        task.cancel()  # Ctrl-C: the run ends with answers on their way
        pool.release()

    try:
        asyncio.run(cut_short())
        assert not pool.idle()
        screening.park(pool)
        assert screening._PARKED is None and all(c._proc is None for c in pool.children)
    finally:
        pool.close()
