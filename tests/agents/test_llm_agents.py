"""The three agent families end to end against the local LLM server, on a real book slice.

Each run uses the real ``langchain-openai`` / ``langchain-anthropic`` clients over HTTP to
``tests/llm_server.py`` (127.0.0.1), the real finance skill, and a chapter of OpenStax
*Principles of Finance* copied from ``../shared/corpora``. Accepted samples are re-checked
with a fresh validator; the API key must appear nowhere in the run folder.
"""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import pytest

from prepbench.agents.runner import run_pipeline
from prepbench.tools.ledger import RunFolder
from prepbench.tools.run import RunOptions
from prepbench.tools.skills import load_skill
from prepbench.tools.validate import Gate

from cli_helpers import book_chapter, chat_run_args, chat_run_options, run_cli
from llm_server import Reply

KEY = "sk-prepbench-test-key-5b1e0d77"


@pytest.fixture(scope="module")
def corpus(tmp_path_factory) -> Path:
    """Chapter 10 (bonds) of Principles of Finance, with its SOURCE.md."""
    return book_chapter(tmp_path_factory.mktemp("finance_slice"), "10-bonds-and-bond-valuation.md")


def check_run(out: Path, min_accepted: int = 1) -> dict:
    """Every chunk resolved; every accepted sample passes a fresh validator; returns counts."""
    ledger = RunFolder(out)
    try:
        counts = ledger.counts()
        assert counts["chunks"]["pending"] == 0, counts
        for row in ledger.chunk_rows():
            assert row["status"] in ("kept", "skipped", "failed")
            assert row["status"] != "skipped" or row["skip_reason"]
            assert row["status"] != "failed" or row["error"]
        skill = load_skill("finance")
        fresh = Gate(skill)
        accepted = list(ledger.accepted_samples())
        assert len(accepted) >= min_accepted
        for s in accepted:
            chunk = ledger.get_chunk(s["chunk_id"])
            sample = {k: v for k, v in s.items() if k != "sample_id"}
            v = fresh.check(sample, chunk.text)
            assert v.ok, (v.rule, v.detail, sample)
            fresh.add(sample)
        return {"counts": counts, "types": Counter(s["sample_type"] for s in accepted), "accepted": accepted}
    finally:
        ledger.close()


def assert_key_absent(out: Path, key: str = KEY) -> None:
    files = [p for p in out.rglob("*") if p.is_file()]
    assert files
    for p in files:
        assert key.encode() not in p.read_bytes(), f"API key leaked into {p}"


def test_skill_agent_through_the_cli_with_an_openai_server(llm_server, corpus, tmp_path):
    prices = tmp_path / "prices.yaml"
    prices.write_text("models:\n  test-model: {input: 0.5, output: 1.5}\n")
    out = tmp_path / "run"
    p = run_cli(
        *chat_run_args(corpus, out, llm_server, "skill"),
        "--concurrency",
        "8",
        "--limit",
        "14",
        "--prices",
        str(prices),
        "-q",
        env_extra={"OPENAI_API_KEY": KEY},
    )
    assert p.returncode == 0, p.stderr + p.stdout
    r = check_run(out, min_accepted=10)
    assert r["counts"]["chunks"]["kept"] >= 5
    assert {"concept_qa", "process_qa", "case_application"} <= set(r["types"])
    calls = r["counts"]["calls"]
    assert calls["input_tokens"] > 0 and calls["output_tokens"] > 0
    assert calls["cost_usd"] == pytest.approx((calls["input_tokens"] * 0.5 + calls["output_tokens"] * 1.5) / 1e6, rel=1e-3)
    # the key was sent to the server, and is nowhere in the run folder
    assert all(r_["auth"] == f"Bearer {KEY}" for r_ in llm_server.requests)
    assert_key_absent(out)
    # guided output: the skill's schemas reached the server as response_format
    gen_bodies = [r_["body"] for r_ in llm_server.requests if "Write 3 `concept_qa`" in json.dumps(r_["body"])]
    assert gen_bodies and gen_bodies[0]["response_format"]["type"] == "json_schema"
    # cost is shown by `prepbench status`
    st = run_cli("status", str(out), "--json")
    assert st.returncode == 0, st.stderr
    assert json.loads(st.stdout)["coverage"]["calls"]["cost_usd"] == pytest.approx(calls["cost_usd"], rel=1e-3)
    # a second run resumes with nothing to do: no new requests
    n = llm_server.count()
    p2 = run_cli(
        *chat_run_args(corpus, out, llm_server, "skill"),
        "--limit",
        "14",
        "-q",
        env_extra={"OPENAI_API_KEY": KEY},
    )
    assert p2.returncode == 0, p2.stderr
    assert llm_server.count() == n


def test_skill_agent_with_anthropic_and_the_grounded_judge(llm_server, corpus, tmp_path):
    # the judge rejects every case_application: they must be recorded as rejected, with the rule
    def judge(req):
        if '"sample_type": "case_application"' in req.text:
            return Reply(
                tool_calls=[{"name": req.forced_tool(), "args": {"supported": False, "reason": "the case adds facts"}}],
                finish_reason="tool_calls",
            )
        return Reply(tool_calls=[{"name": req.forced_tool(), "args": {"supported": True}}], finish_reason="tool_calls")

    llm_server.add_rule("You check training data for faithfulness", judge)
    out = tmp_path / "run"
    opts = RunOptions(
        corpus=[str(corpus)],
        skill="finance",
        out=str(out),
        agent="skill",
        model="anthropic:claude-test",
        limit=8,
        concurrency=6,
        max_repairs=0,
        model_options={"base_url": llm_server.url, "api_key": KEY, "concurrency": 6, "judge": True},
    )
    result = run_pipeline(opts)
    r = check_run(out)
    assert "case_application" not in r["types"] and r["types"]["concept_qa"] > 0
    assert {x["api"] for x in llm_server.requests} == {"anthropic"}
    assert all(x["auth"] in (KEY, f"Bearer {KEY}") for x in llm_server.requests)  # the key reached the server
    ledger = RunFolder(out)
    rejected = ledger.sample_rows(status="rejected")
    nodes = Counter(row["node"] for row in ledger.call_rows())
    ledger.close()
    assert any(x["rule"] == "grounded_judge" and x["sample_type"] == "case_application" for x in rejected)
    assert nodes["judge"] > 0 and nodes["triage"] == 8
    assert result["coverage"]["chunks"]["pending"] == 0
    assert_key_absent(out)


def test_repair_loop_fixes_rejected_samples(llm_server, corpus, tmp_path):
    # the first concept_qa generation of each chunk points at "the text": the filters reject it,
    # the repair prompt (with the rule as feedback) gets a fixed sample back from the server
    from llm_server import smart_reply

    def anchored(req):
        reply = smart_reply(req)
        items = json.loads(reply.content)
        items = items["items"] if isinstance(items, dict) else items
        for s in items:
            s["question"] = "According to the text, " + s["question"][0].lower() + s["question"][1:]
        return Reply(content=json.dumps(items))

    llm_server.add_rule(r"Write 3 `concept_qa`", anchored)
    out = tmp_path / "run"
    opts = chat_run_options(
        corpus,
        out,
        llm_server,
        "skill",
        KEY,
        model_options={"structured": "prompt"},
        limit=6,
        concurrency=4,
        max_repairs=1,
        revisit=False,  # only the main pass's (repaired) samples
    )
    run_pipeline(opts)
    r = check_run(out)
    repaired = [s for s in r["accepted"] if s["sample_type"] == "concept_qa"]
    assert repaired, "repaired concept_qa samples must be accepted"
    ledger = RunFolder(out)
    attempts = {row["attempts"] for row in ledger.sample_rows(status="accepted") if row["sample_type"] == "concept_qa"}
    ledger.close()
    assert attempts == {2}
    repair_prompts = [x for x in llm_server.requests if "was rejected: source_anchored_phrasing" in json.dumps(x["body"])]
    assert repair_prompts


@pytest.mark.parametrize("mode", ["chunk", "book"])
def test_direct_agent(llm_server, corpus, tmp_path, mode):
    out = tmp_path / "run"
    opts = chat_run_options(
        corpus,
        out,
        llm_server,
        "direct",
        KEY,
        model_options={"direct_mode": mode, "context_tokens": 12000},
        limit=12,
        concurrency=4,
    )
    run_pipeline(opts)
    r = check_run(out, min_accepted=5)
    n_chunks = r["counts"]["chunks"]["total"]
    prompts = [x for x in llm_server.requests if "Create question-answer training samples" in json.dumps(x["body"])]
    if mode == "chunk":
        assert len(prompts) == n_chunks  # one prompt per chunk, no triage, no repair
    else:
        assert 1 <= len(prompts) < n_chunks  # several chunks per prompt
        assert max(json.dumps(x["body"]).count("<chunk id=") for x in prompts) >= 2
    # the baseline prompt carries the output format but not the skill's instructions
    text = json.dumps(prompts[0]["body"])
    assert "concept_qa" in text and "Finance data-construction skill" not in text
    assert_key_absent(out)


def test_react_agent_uses_its_tools(llm_server, corpus, tmp_path):
    out = tmp_path / "run"
    opts = chat_run_options(
        corpus,
        out,
        llm_server,
        "react",
        KEY,
        model_options={"react_slice": 4},
        limit=10,
        concurrency=3,
    )
    run_pipeline(opts)
    r = check_run(out, min_accepted=5)
    trace = [json.loads(line) for line in (out / "react_trace.jsonl").read_text().splitlines()]
    tools = Counter(t["tool"] for t in trace)
    assert {"list_pending_chunks", "read_chunk", "search_corpus", "save_samples", "mark_chunk"} <= set(tools)
    assert tools["mark_chunk"] == r["counts"]["chunks"]["total"]  # every chunk marked through the tool
    # the model really called the tools: tool results went back to the server as tool messages
    roles = Counter(m["role"] for x in llm_server.requests for m in x["body"]["messages"])
    probes = [x for x in llm_server.requests if x["body"]["messages"][-1]["content"] == "Say hello." or "add_numbers" in str(x)]
    assert len(probes) == 2  # json_schema honoured, then tool calling (auto) asked for ReAct
    work = [x for x in llm_server.requests if x not in probes]
    assert roles["tool"] > 0 and all(x["body"].get("tools") for x in work)
    names = {t["function"]["name"] for t in work[0]["body"]["tools"]}
    assert names == {"list_pending_chunks", "read_chunk", "search_corpus", "save_samples", "mark_chunk"}  # no shell, no files
    # a generic prompt: no skill instructions
    system = [m for m in work[0]["body"]["messages"] if m["role"] == "system"][0]["content"]
    assert "question-answer training data" in system and "Finance data-construction skill" not in system
    assert_key_absent(out)


def test_react_tools_refuse_bad_actions(llm_server, corpus, tmp_path):
    # a model that tries to mark a chunk kept without samples, then with a bad reason, then does it right
    from llm_server import smart_reply

    def sloppy(req):
        last = req.messages[-1]

        def mark(cid, **args):
            return Reply(tool_calls=[{"name": "mark_chunk", "args": {"chunk_id": cid, **args}}], finish_reason="tool_calls")

        if last.role == "tool" and last.tool_name == "read_chunk":
            return mark(json.loads(last.text)["chunk_id"], status="kept")  # nothing saved yet
        if last.role == "tool" and last.tool_name == "mark_chunk" and '"ok": false' in last.text:
            cid = next(
                json.loads(m.text)["chunk_id"] for m in reversed(req.messages) if m.role == "tool" and m.tool_name == "read_chunk"
            )
            failed = sum(1 for m in req.messages if m.role == "tool" and m.tool_name == "mark_chunk" and '"ok": false' in m.text)
            if failed % 2 == 1:
                return mark(cid, status="skipped", skip_reason="boring")  # not in the skill's vocabulary
            return mark(cid, status="skipped", skip_reason="noisy")
        return smart_reply(req)

    llm_server.add_rule(lambda req: any(t["name"] == "save_samples" for t in req.tools), sloppy)
    out = tmp_path / "run"
    opts = chat_run_options(
        corpus,
        out,
        llm_server,
        "react",
        KEY,
        model_options={"react_slice": 2},
        limit=2,
        concurrency=1,
    )
    run_pipeline(opts)
    trace = [json.loads(line) for line in (out / "react_trace.jsonl").read_text().splitlines()]
    marks = [t for t in trace if t["tool"] == "mark_chunk"]
    assert "no accepted sample yet" in marks[0]["result"]
    assert "skip_reason must be one of" in marks[1]["result"]
    ledger = RunFolder(out)
    rows = ledger.chunk_rows()
    ledger.close()
    assert all(r["status"] == "skipped" and r["skip_reason"] == "noisy" for r in rows)


@pytest.mark.parametrize("agent", ["direct", "react"])
def test_agents_that_need_a_chat_model_refuse_extractive(corpus, tmp_path, agent):
    p = run_cli("run", "--corpus", str(corpus), "--out", str(tmp_path / "run"), "--agent", agent, "--model", "extractive", "-q")
    assert p.returncode == 2
    lines = [line for line in (p.stderr + p.stdout).splitlines() if line.strip()]
    assert len(lines) == 1 and "needs a chat model" in lines[0] and "Traceback" not in p.stderr
    assert not (tmp_path / "run" / "ledger.sqlite").exists()
