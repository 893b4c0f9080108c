"""The skill agent's coverage loop: sample types below their ``min_share`` get revisits.

The local test server answers the first ``case_application`` request about each chunk with
an empty list (a model that under-produces one sample type), and later ones normally. The
main pass then leaves case_application below the finance skill's 5 % share; the coverage
loop revisits kept chunks for it, through the real HTTP client, until the mix is met.
"""

from __future__ import annotations

import hashlib
import json
from collections import Counter
from pathlib import Path

import pytest

from prepbench.agents.runner import run_pipeline
from prepbench.tools.coverage import plan_revisit_round, type_deficits
from prepbench.tools.ledger import RunFolder
from prepbench.tools.run import RunOptions
from prepbench.tools.skills import load_skill
from prepbench.tools.validate import Gate

from cli_helpers import book_chapter
from llm_server import Faults, Reply, smart_reply

KEY = "sk-prepbench-coverage-loop-91c2"
CASE_PROMPT = r"Write \d+ `case_application` sample"


@pytest.fixture(scope="module")
def corpus(tmp_path_factory) -> Path:
    return book_chapter(tmp_path_factory.mktemp("finance_ch10"), "10-bonds-and-bond-valuation.md")


def first_case_request_is_empty(server):
    """A rule: the first case_application request per prompt gets ``[]``, later ones the default."""
    seen: set[str] = set()

    def reply(req):
        key = hashlib.sha256(req.last_user_text.encode()).hexdigest()
        if key not in seen:
            seen.add(key)
            return Reply(content="[]")
        return smart_reply(req)

    return reply


def options(corpus, out, server, **kw) -> RunOptions:
    return RunOptions(
        corpus=[str(corpus)],
        skill="finance",
        out=str(out),
        agent="skill",
        model="openai:test-model",
        limit=kw.pop("limit", 24),
        concurrency=4,
        batch_size=8,
        max_repairs=0,
        model_options={
            "base_url": server.url + "/v1",
            "api_key": KEY,
            "concurrency": 4,
            "structured": "prompt",
            **kw.pop("mo", {}),
        },
        **kw,
    )


def case_requests(server) -> int:
    return sum(1 for r in server.requests if "`case_application` sample" in json.dumps(r["body"]))


def test_coverage_loop_revisits_until_the_mix_is_met(llm_server, corpus, tmp_path):
    llm_server.add_rule(CASE_PROMPT, first_case_request_is_empty(llm_server))
    skill = load_skill("finance")
    # without the loop: the main pass leaves case_application under its share
    off = run_pipeline(options(corpus, tmp_path / "off", llm_server, revisit=False))
    assert off["coverage"]["sample_types"]["case_application"]["accepted"] == 0
    assert any("case_application" in u for u in off["coverage"]["unmet"])
    assert off["coverage"]["revisits"]["done"] == 0

    llm_server.reset()
    llm_server.add_rule(CASE_PROMPT, first_case_request_is_empty(llm_server))
    out = tmp_path / "on"
    result = run_pipeline(options(corpus, out, llm_server))
    cov = result["coverage"]
    share = cov["sample_types"]["case_application"]["share"]
    assert share >= skill.coverage.sample_types["case_application"].min_share, cov["sample_types"]
    assert not any("case_application" in u for u in cov["unmet"])
    assert cov["revisits"]["rounds"] >= 1 and cov["revisits"]["planned"] == 0
    led = RunFolder(out)
    try:
        rows = led.revisit_rows()
        assert rows and {r["sample_type"] for r in rows} == {"case_application"}
        assert all(r["status"] == "done" and r["chunk_status"] == "kept" for r in rows)
        # at most per_chunk (1) new case per revisit; the counts match the samples table
        assert all(r["n_accepted"] <= 1 for r in rows)
        n_case = led.type_counts().get("case_application", 0)
        assert n_case == sum(r["n_accepted"] for r in rows) == cov["sample_types"]["case_application"]["accepted"]
        # the loop stopped as soon as the mix was met: fewer revisits than kept chunks
        assert len(rows) < cov["chunks"]["kept"]
        # chunks' sample counters include the revisits'
        per_chunk = Counter(r["chunk_id"] for r in led.sample_rows(status="accepted"))
        for r in led.chunk_rows(status="kept"):
            assert per_chunk.get(r["chunk_id"], 0) == r["n_accepted"]
        # every accepted sample, revisits included, passes a fresh validator and no two are duplicates
        fresh = Gate(skill)
        for s in led.accepted_samples():
            sample = {k: v for k, v in s.items() if k != "sample_id"}
            v = fresh.check(sample, led.get_chunk(s["chunk_id"]).text)
            assert v.ok, (v.rule, sample)
            fresh.add(sample)
        assert plan_revisit_round(led, skill) == []
    finally:
        led.close()
    # a finished run does nothing more: no request
    n = llm_server.count()
    again = run_pipeline(options(corpus, out, llm_server))
    assert llm_server.count() == n
    assert again["coverage"]["samples"] == cov["samples"]


def test_a_stopped_round_is_finished_before_a_new_one_is_planned(llm_server, corpus, tmp_path):
    out = tmp_path / "run"
    mo = {"max_retries": 1, "timeout": 2, "backoff_base": 0.01, "backoff_max": 0.05, "circuit_threshold": 3}
    llm_server.add_rule(CASE_PROMPT, first_case_request_is_empty(llm_server))
    # the server dies for the revisits: every second request for the same case prompt resets
    calls: dict[str, int] = {}

    def dead_on_revisit(req):
        if "`case_application` sample" not in req.text:
            return False
        key = hashlib.sha256(req.last_user_text.encode()).hexdigest()
        calls[key] = calls.get(key, 0) + 1
        return calls[key] > 1

    llm_server.set_faults(Faults(rules=[(dead_on_revisit, "reset")]))
    first = run_pipeline(options(corpus, out, llm_server, mo=mo))
    assert first["stopped"]
    led = RunFolder(out)
    planned = led.planned_revisits()
    rounds = led.revisit_counts()["rounds"]
    led.close()
    assert planned and rounds == 1
    assert first["coverage"]["chunks"]["pending"] == 0  # the main pass was complete

    # the server is back: the resumed run first finishes round 1 exactly as planned
    llm_server.set_faults(Faults())
    second = run_pipeline(options(corpus, out, llm_server, mo=mo))
    assert not second["stopped"]
    led = RunFolder(out)
    try:
        done_r1 = {(r["chunk_id"], r["sample_type"]) for r in led.revisit_rows(round=1)}
        assert done_r1 == {(cid, t) for cid, types in planned for t in types}
        assert led.revisit_rows(status="planned") == []
    finally:
        led.close()


def test_type_deficits_formula(tmp_path):
    """deficit = ceil((s T - c) / (1 - s)): the least n with (c + n) / (T + n) >= s."""
    skill = load_skill("finance")

    class Counts:
        def __init__(self, counts):
            self.counts = counts

        def type_counts(self):
            return self.counts

        def get_config(self):
            return {"generator": "openai"}

    d = type_deficits(Counts({"concept_qa": 123, "process_qa": 9, "case_application": 5}), skill)
    # case: s = 0.05, T = 137, c = 5 -> ceil((6.85 - 5) / 0.95) = 2; (5 + 2) / 139 = 5.04 %
    assert d == {"case_application": 2}
    assert (5 + 2) / (137 + 2) >= 0.05 > (5 + 1) / (137 + 1)
    assert type_deficits(Counts({"concept_qa": 10, "process_qa": 1, "case_application": 1}), skill) == {}


def test_the_loop_stops_after_a_round_that_accepts_nothing(llm_server, corpus, tmp_path):
    """A model that never writes a case_application: round 1 revisits chunks for it and accepts
    nothing, so no round 2 is planned, though kept chunks not yet revisited remain."""
    llm_server.add_rule(CASE_PROMPT, lambda req: Reply(content="[]"))
    out = tmp_path / "run"
    result = run_pipeline(options(corpus, out, llm_server))
    cov = result["coverage"]
    assert cov["revisits"]["rounds"] == 1 and cov["revisits"]["accepted"] == 0 and cov["revisits"]["stopped_barren"]
    assert any("case_application" in u for u in cov["unmet"])
    led = RunFolder(out)
    try:
        round1 = led.revisit_rows(round=1)
        assert round1 and all(r["status"] == "done" and r["n_accepted"] == 0 for r in round1)
        assert led.last_round_barren()
        assert led.revisit_candidates("case_application", 100)  # chunks were left, the loop still ended
        assert plan_revisit_round(led, load_skill("finance")) == []
    finally:
        led.close()
    n = llm_server.count()
    run_pipeline(options(corpus, out, llm_server))  # a re-run asks nothing more
    assert llm_server.count() == n
