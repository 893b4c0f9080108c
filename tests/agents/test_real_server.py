"""prepbench against a real model server: llama-cpp-python's OpenAI-compatible server serving
SmolLM2-135M-Instruct (``tests/llama_server.py``), on real chunks of *Principles of Finance*
chapter 7 (``../shared/corpora``).

The model is far too small for good data, so these tests assert behaviour, never content:

- the capability probe finds what this server really does (``json_schema`` refused with HTTP 500,
  ``json_object`` with a schema honoured through a grammar; tools dropped by the GGUF's template)
  and the run uses grammar-constrained output: no candidate fails the JSON Schema;
- every chunk ends kept, skipped or failed, with a reason that matches the raw replies the
  ledger kept (an ``all_rejected`` chunk's rejections are the reply's candidates, a
  ``no_candidates`` chunk's replies hold an empty array, a failed chunk's error is its last call's);
- the call rows equal the requests the server answered, counted from the server's own log;
- ReAct on the plain template stops with one line; on the tool-calling template it either runs
  or stops the same way, never with chunks failed for the server's sake.

How many candidates pass the gate is printed (``-s``), not asserted.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from prepbench.agents.runner import run_pipeline
from prepbench.tools.ledger import RunFolder
from prepbench.tools.run import RunOptions

from cli_helpers import REPO, book_chapter, run_cli
from llama_server import PLAIN, TOOLS, LlamaServer

SKILL = str(REPO / "tests" / "fixtures" / "skills" / "tiny_qa")
CHAPTER = "07-time-value-of-money-i-single-payment-value.md"
LIMIT = 8
MODEL_OPTIONS = {"max_tokens": 192, "max_tokens_cap": 384, "timeout": 300, "max_retries": 2, "examples_per_prompt": 1}


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    srv = LlamaServer(
        tmp_path_factory.mktemp("llama"), n_ctx=4096, threads=2
    ).start()  # the agent mostly waits: both cores to llama.cpp
    try:
        yield srv
    finally:
        srv.stop()


@pytest.fixture(scope="module")
def corpus(tmp_path_factory) -> Path:
    return book_chapter(tmp_path_factory.mktemp("finance_ch7_real"), CHAPTER)


def run(server, corpus, out, agent, model=PLAIN, concurrency=1, limit=LIMIT, model_options=None, **fields):
    opts = RunOptions(
        corpus=[str(corpus)],
        skill=SKILL,
        out=str(out),
        agent=agent,
        model=f"openai:{model}",
        limit=limit,
        concurrency=concurrency,
        max_repairs=0,
        revisit=False,
        min_chars=400,  # chunks of at most 1,200 characters: prompt evaluation is most of a request's time
        max_chars=1200,
        model_options={"base_url": server.url + "/v1", "concurrency": concurrency, **(model_options or MODEL_OPTIONS)},
        **fields,
    )
    return run_pipeline(opts)


def items_of(reply: str | None) -> list | None:
    """The candidates of a generation reply (the ``items`` of the grammar-constrained object), or None."""
    try:
        value = json.loads(reply or "", strict=False)  # as the agent reads it (a raw newline in a string)
    except ValueError:
        return None
    if isinstance(value, dict) and isinstance(value.get("items"), list):
        return value["items"]
    return value if isinstance(value, list) else None


def check_reasons(led: RunFolder, gen_node: str) -> dict[str, int]:
    """Every chunk ended with a reason the ledger's raw replies bear out; returns the outcome counts."""
    calls_by_chunk: dict[str, list[dict]] = {}
    for c in led.call_rows():
        calls_by_chunk.setdefault(c["chunk_id"], []).append(c)
    outcome: dict[str, int] = {}
    for row in led.chunk_rows():
        cid, status, reason = row["chunk_id"], row["status"], row["skip_reason"]
        calls = calls_by_chunk.get(cid, [])
        key = reason or status
        outcome[key] = outcome.get(key, 0) + 1
        assert status in ("kept", "skipped", "failed"), row
        assert calls, f"chunk {cid} has no call rows"
        gen = [c for c in calls if c["node"] == gen_node and c["ok"]]
        if status == "failed":
            assert row["error"] and not calls[-1]["ok"] and calls[-1]["error"], (row["error"], calls[-1])
            assert calls[-1]["reply"] is not None  # what the model said is kept
            kind = calls[-1]["error"].split(":")[0]
            said = {"truncated": "still cut at max_tokens", "parse": "unusable reply", "refusal": "refused"}.get(
                kind, "call failed"
            )
            assert said in row["error"], (row["error"], calls[-1]["error"])
        elif reason == "all_rejected":
            rejected = led.sample_rows(chunk_id=cid, status="rejected")
            candidates = sum(min(len(items_of(c["reply"]) or []), 1 if gen_node == "generate" else 99) for c in gen)
            assert len(rejected) == candidates > 0 and row["detail"].startswith(f"all {len(rejected)} candidate")
        elif reason == "no_candidates":
            assert gen and all(items_of(c["reply"]) == [] for c in gen), [c["reply"] for c in gen]
        elif status == "skipped":  # triage skipped it: the reply says keep false with this reason
            (tri,) = [c for c in calls if c["node"] == "triage" and c["ok"]]
            value = json.loads(tri["reply"])
            assert value["keep"] is False, value
        else:
            assert row["n_accepted"] >= 1
    return outcome


def check_accounting(server, offset: int, led: RunFolder) -> list[int]:
    """Call rows == the chat-completion requests in the server's log, HTTP failures included."""
    statuses = server.requests(offset)
    calls = led.call_rows()
    assert len(calls) == len(statuses), (len(calls), statuses)
    unusable = ("truncated:", "parse:", "refusal:")  # answered (HTTP 200), but not usable
    http_failed = [c for c in calls if not c["ok"] and not (c["error"] or "").startswith(unusable)]
    assert sum(1 for s in statuses if s != 200) == len(http_failed), (statuses, [c["error"] for c in http_failed])
    return statuses


def check_probe(led: RunFolder) -> dict:
    (probe,) = led.events("probe")
    found = probe["data"]
    assert found["json_schema"].startswith("unsupported (HTTP 500: Input should be 'text' or 'json_object')"), found
    assert found["json_object"] == "supported" and found["structured"] == "json_object"
    return found


def test_skill_agent_on_the_real_server(server, corpus, tmp_path):
    offset = server.offset()
    out = tmp_path / "skill"
    # one request per generation: no worked examples in the prompt, a cut reply is not asked again
    result = run(
        server,
        corpus,
        out,
        "skill",
        model_options={**MODEL_OPTIONS, "max_tokens": 256, "max_tokens_cap": 256, "examples_per_prompt": 0},
    )
    assert not result["stopped"]
    led = RunFolder.open(out, readonly=True)
    try:
        check_probe(led)
        check_accounting(server, offset, led)
        outcome = check_reasons(led, "generate")
        samples = led.sample_rows()
        # grammar-constrained output: every candidate the model finished is schema-valid
        assert samples, [r["error"] for r in led.chunk_rows() if r["error"]]
        assert not [s for s in samples if s["rule"] == "schema"], [s["detail"] for s in samples if s["rule"] == "schema"]
        accepted = sum(1 for s in samples if s["status"] == "accepted")
        print(f"\nskill on SmolLM2-135M: {outcome}; candidates {len(samples)}, accepted by the gate {accepted}")
    finally:
        led.close()


def test_direct_agent_on_the_real_server(server, corpus, tmp_path):
    offset = server.offset()
    out = tmp_path / "direct"
    result = run(server, corpus, out, "direct", concurrency=2)
    assert not result["stopped"]
    led = RunFolder.open(out, readonly=True)
    try:
        check_probe(led)
        check_accounting(server, offset, led)
        outcome = check_reasons(led, "direct")
        assert "low_information" not in outcome  # a model's reply is never taken for a judgement of the chunk
        samples = led.sample_rows()
        accepted = sum(1 for s in samples if s["status"] == "accepted")
        print(f"\ndirect on SmolLM2-135M: {outcome}; candidates {len(samples)}, accepted by the gate {accepted}")
    finally:
        led.close()
    st = run_cli("status", str(out), "--show-failures", "3")
    assert st.returncode == 0 and ("reply:" in st.stdout or "no failed or rejected model call" in st.stdout)


def test_react_on_the_plain_template_stops_with_one_line(server, corpus, tmp_path):
    offset = server.offset()
    out = tmp_path / "react"
    p = run_cli(
        "run", "--corpus", str(corpus), "--skill", SKILL, "--out", str(out), "--agent", "react",
        "--model", f"openai:{PLAIN}", "--base-url", server.url + "/v1", "--limit", str(LIMIT), "--max-tokens", "64",
        "--min-chars", "400", "--max-chars", "1200", "-q",
    )  # fmt: skip
    assert p.returncode == 2, p.stderr + p.stdout
    errors = [line for line in p.stderr.splitlines() if line.startswith("error:")]
    assert (
        len(errors) == 1 and "its chat template has no tool calling" in errors[0] and "--agent skill, --agent direct" in errors[0]
    )
    led = RunFolder.open(out, readonly=True)
    try:
        assert {r["status"] for r in led.chunk_rows()} == {"pending"}
        assert led.events("probe")[-1]["data"]["tools_auto"] == "ignored"
        statuses = check_accounting(server, offset, led)
        assert len(statuses) == 3  # json_schema (500), json_object, tool calling: and nothing more
    finally:
        led.close()


def test_react_on_the_tool_calling_template(server, corpus, tmp_path):
    offset = server.offset()
    out = tmp_path / "react_tools"
    try:
        opts = RunOptions(
            corpus=[str(corpus)],
            skill=SKILL,
            out=str(out),
            agent="react",
            model=f"openai:{TOOLS}",
            limit=3,
            concurrency=1,
            min_chars=400,
            max_chars=1200,
            model_options={"base_url": server.url + "/v1", **MODEL_OPTIONS, "react_slice": 3, "react_steps_per_chunk": 4},
        )
        run_pipeline(opts)
        stopped_for_tools = None
    except Exception as e:  # noqa: BLE001 - the one way it may end early is checked below
        stopped_for_tools = e
    led = RunFolder.open(out, readonly=True)
    try:
        assert led.events("probe")[-1]["data"]["tools_auto"] == "supported"
        check_accounting(server, offset, led)
        rows = led.chunk_rows()
        if stopped_for_tools is not None:  # the model never called a tool: one line, the chunks untouched
            assert "does not call the tools it is offered" in str(stopped_for_tools), stopped_for_tools
            assert {r["status"] for r in rows} == {"pending"}
        else:  # it drove the loop: every chunk ended with a reason
            assert all(
                r["status"] in ("kept", "skipped", "failed") and (r["skip_reason"] or r["error"] or r["n_accepted"]) for r in rows
            )
        print(
            f"\nreact on SmolLM2-135M (tools): {'stopped: ' + str(stopped_for_tools)[:80] if stopped_for_tools else [r['status'] for r in rows]}"
        )
    finally:
        led.close()
