"""The skill family's graph nodes with a fake generator (no HTTP), and the lane scheduler."""

from __future__ import annotations

import asyncio

from prepbench.agents.base import Triage, get_family
from prepbench.agents.extractive import ExtractiveGenerator
from prepbench.agents.runner import run_pipeline
from prepbench.agents.scheduler import Scheduler
from prepbench.tools.ledger import CallRecord, RunFolder
from prepbench.tools.run import RunOptions

from cli_helpers import SLICE


class BreakThenRepair:
    """A fake chat model: the offline generator's samples, each handed over with its answer
    removed (a schema rejection), then repaired to the original on request."""

    name = "fake-chat"
    version = "1"
    needs_chat_model = True
    judge = False

    def __init__(self):
        self.inner = ExtractiveGenerator()
        self.originals: dict[str, dict] = {}
        self.repairs = 0

    async def atriage(self, chunk, skill):
        decision, _ = await self.inner.atriage(chunk, skill)
        return decision, [CallRecord("triage", self.name, 10, 2)]

    async def agenerate(self, chunk, skill, targets):
        samples, _ = await self.inner.agenerate(chunk, skill, targets)
        broken = []
        for i, s in enumerate(samples):
            key = f"{chunk.chunk_id}:{i}"
            self.originals[key] = s
            broken.append({k: v for k, v in s.items() if k != "answer"} | {"_key": key})
        return broken, [CallRecord("generate", self.name, 100, 50)]

    async def arepair(self, chunk, skill, candidate, feedback):
        self.repairs += 1
        assert feedback.startswith("schema:")
        return self.originals[candidate["_key"]], [CallRecord("repair", self.name, 80, 40)]


def test_repair_node_fixes_schema_rejections_and_calls_are_recorded(tmp_path):
    gen = BreakThenRepair()
    opts = RunOptions(corpus=[str(SLICE)], skill="finance", out=str(tmp_path / "run"), limit=12, concurrency=2, revisit=False)
    res = run_pipeline(opts, generator=gen)
    run = RunFolder.open(tmp_path / "run")
    try:
        accepted = run.sample_rows(status="accepted")
        assert accepted and gen.repairs >= len(accepted)
        assert {s["attempts"] for s in accepted} == {2}  # every accepted sample went through one repair
        assert all("answer" in s["data"] and "_key" not in s["data"] for s in accepted)
        nodes = {r["node"] for r in run.call_rows()}
        assert {"triage", "generate", "repair"} <= nodes
        assert run.counts()["chunks"]["pending"] == 0
    finally:
        run.close()
    assert res["export"]["count"] == len(accepted)


def test_unknown_skip_reason_becomes_the_fallback_with_detail(tmp_path):
    class BadReason(BreakThenRepair):
        async def atriage(self, chunk, skill):
            return Triage(keep=False, skip_reason="not-a-reason", detail="x"), []

    run_pipeline(RunOptions(corpus=[str(SLICE)], skill="finance", out=str(tmp_path / "r"), limit=3), generator=BadReason())
    run = RunFolder.open(tmp_path / "r")
    try:
        assert run.skip_reason_counts() == {"low_information": 3}
    finally:
        run.close()


def test_families_come_from_the_registry():
    assert get_family("skill").coverage_loop and not get_family("skill").needs_chat_model
    assert get_family("direct").needs_chat_model and get_family("react").needs_chat_model


def test_scheduler_commits_in_the_order_batches_were_taken():
    committed = []

    async def main():
        s = Scheduler(lanes=3, batch_size=2, commit=lambda state: committed.append(state))
        s.start(list(range(7)))
        batches = [await s.next_batch(False) for _ in range(4)]
        assert [b for b, _ in batches] == [[0, 1], [2, 3], [4, 5], [6]]
        assert (await s.next_batch(False))[0] == []  # nothing left
        assert await s.finish(2, "c") == 0 and await s.finish(1, "b") == 0  # not their turn yet
        assert await s.finish(0, "a") == 3
        await s.finish(3, "d")

    asyncio.run(main())
    assert committed == ["a", "b", "c", "d"]


def test_scheduler_window_holds_lanes_back():
    async def main():
        s = Scheduler(lanes=1, batch_size=1, commit=lambda state: None, window=2)
        s.start(list(range(5)))
        await s.next_batch(False)
        await s.next_batch(False)
        third = asyncio.create_task(s.next_batch(False))
        await asyncio.sleep(0.05)
        assert not third.done()  # two batches uncommitted: the window is full
        await s.finish(0, "a")
        batch, number = await asyncio.wait_for(third, 1)
        assert batch == [2] and number == 2

    asyncio.run(main())


def test_chat_lanes_keep_more_chunks_than_slots_in_flight_in_small_batches():
    from prepbench.agents.skill import CHAT_BATCH_MAX, chat_lanes

    for c in (1, 2, 4, 7, 8, 16, 32, 64, 100):
        lanes, size = chat_lanes(c)
        assert 1 <= size <= CHAT_BATCH_MAX
        in_flight = 2 * c if size == 1 else 4 * c  # a batch waits for its slowest chunk: more in flight
        assert in_flight - size < lanes * size <= in_flight
    assert chat_lanes(4) == (8, 1)  # few slots: every chunk is a lane
    assert chat_lanes(32) == (16, 8)


def test_batched_chat_lanes_accept_what_one_chunk_lanes_accept(tmp_path):
    """--concurrency 32 (16 lanes of 8 chunks) and --concurrency 2 (4 lanes of 1 chunk) commit the
    same samples: batches commit in corpus order, so the dedup state is a single lane's."""
    got = {}
    for c in (2, 32):
        gen = BreakThenRepair()
        out = tmp_path / f"run{c}"
        opts = RunOptions(corpus=[str(SLICE)], skill="finance", out=str(out), limit=24, concurrency=c, revisit=False)
        run_pipeline(opts, generator=gen)
        run = RunFolder.open(out)
        try:
            got[c] = [(s["chunk_id"], s["sample_id"], s["status"], s["rule"]) for s in run.sample_rows()]
            assert run.counts()["chunks"]["pending"] == 0
        finally:
            run.close()
    assert got[2] and any(status == "accepted" for _, _, status, _ in got[2])
    assert got[32] == got[2]
