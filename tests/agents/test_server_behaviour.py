"""prepbench against servers as they really behave (issue 12), where the scripted test server can
show a behaviour on demand; ``tests/agents/test_real_server.py`` runs the real llama.cpp server.

Each test names the issue's item it covers: the capability probe (1-2), stops explained (3),
load that fits the server (4, 8), honest records (5), per-chunk commits of the direct agent (6),
ReAct on a server without tool calling (7), forgiving parsing of a plain server's replies (9),
and Ctrl-C. The chapter is a real one of OpenStax *Principles of Finance* (``../shared/corpora``).
"""

from __future__ import annotations

import asyncio
import json
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from langchain_core.messages import HumanMessage

from prepbench.agents.models import make_resilient_chat
from prepbench.agents.models.concurrency import AdaptiveLimit
from prepbench.agents.models.ratelimit import ModelCallError
from prepbench.agents.models.structured import StructuredConfig, StructuredOutputError, ainvoke_json, retry_token_cap
from prepbench.agents.runner import run_pipeline
from prepbench.tools.ledger import RunFolder

from cli_helpers import book_chapter, chat_run_args, chat_run_options, prepbench_cmd, run_cli
from llm_server import Faults, Reply

KEY = "sk-server-behaviour-0b7c"
FAST = {"timeout": 5, "max_retries": 2, "backoff_base": 0.01, "backoff_max": 0.05, "concurrency": 2}


@pytest.fixture(scope="module")
def corpus(tmp_path_factory) -> Path:
    return book_chapter(tmp_path_factory.mktemp("finance_ch7"), "07-time-value-of-money-i-single-payment-value.md")


def ledger_of(out: Path) -> RunFolder:
    return RunFolder.open(out, readonly=True)


def cli(corpus, out, server, agent="skill", *extra) -> subprocess.CompletedProcess:
    args = [*chat_run_args(corpus, out, server, agent), "--max-retries", "2", "--timeout", "5", "-q", *extra]
    return run_cli(*args, env_extra={"OPENAI_API_KEY": KEY})


def flat(proc: subprocess.CompletedProcess) -> str:
    return " ".join((proc.stdout + proc.stderr).split())


# -- items 1-2: the capability probe ------------------------------------------------------------
def test_the_probe_chooses_json_object_on_a_server_that_refuses_json_schema(llm_server, corpus, tmp_path):
    llm_server.set_faults(Faults(refuse_json_schema=True))  # llama-cpp-python's HTTP 500 to json_schema
    out = tmp_path / "run"
    p = cli(corpus, out, llm_server, "skill", "--limit", "3", "--no-revisit")
    assert p.returncode == 0, p.stderr + p.stdout
    text = flat(p)
    assert "json_schema unsupported (HTTP 500: Input should be 'text' or 'json_object')" in text, text
    assert "json_object+schema supported" in text and "structured output: json_object" in text
    # the 500 was a capability answer: asked once, never retried, never a chunk's fault
    assert sum(1 for r in llm_server.requests if (r["body"].get("response_format") or {}).get("type") == "json_schema") == 1
    work = [r["body"] for r in llm_server.requests if "Say hello." not in json.dumps(r["body"])]
    assert work and all(b["response_format"]["type"] == "json_object" and b["response_format"]["schema"] for b in work)
    led = ledger_of(out)
    try:
        (probe,) = led.events("probe")
        assert probe["data"]["structured"] == "json_object" and probe["data"]["json_schema"].startswith("unsupported")
        assert [c["node"] for c in led.call_rows()][:2] == ["probe", "probe"]
        assert len(led.call_rows()) == len(llm_server.requests)
        assert all(r["status"] in ("kept", "skipped") for r in led.chunk_rows())
    finally:
        led.close()


# -- item 3: every stop explained, advice that fits the cause ------------------------------------
@pytest.mark.parametrize(
    "fault, advice",
    [
        ("404", "does not serve model 'test-model' (HTTP 404): check --model"),
        ("401", "refused the credentials (HTTP 401/403): set OPENAI_API_KEY"),
    ],
)
def test_a_refusal_of_every_request_stops_at_once_with_advice_to_fix_a_flag(llm_server, corpus, tmp_path, fault, advice):
    llm_server.set_faults(Faults(rules=[(lambda req: True, fault)]))
    out = tmp_path / "run"
    p = cli(corpus, out, llm_server, "direct", "--limit", "3")
    assert p.returncode == 3, p.stderr + p.stdout
    assert advice in flat(p) and "Traceback" not in p.stderr
    assert len(llm_server.requests) == 1  # not retried, not tried again per chunk
    st = run_cli("status", str(out), "--json")
    stop = json.loads(st.stdout)["stop"]
    assert stop["kind"] == "stop" and advice in stop["data"]["advice"] and stop["data"]["pending"] == 3
    led = ledger_of(out)
    try:
        assert len(led.call_rows()) == 1 and not led.call_rows()[0]["ok"]
    finally:
        led.close()


# -- items 4 and 8: load that fits the server ---------------------------------------------------
def _chat(server, **opts):
    base = {"base_url": server.url + "/v1", "api_key": KEY, "backoff_base": 0.01, "backoff_max": 0.05}
    return make_resilient_chat("openai:test-model", **{**base, **opts})


def test_concurrency_shrinks_on_a_one_request_at_a_time_server(llm_server):
    # llama-cpp-python's server: one request at a time, the rest queue, and a request whose client
    # gave up still runs to its end; 4 in flight at 0.4 s each put the last ones past a 1 s timeout
    llm_server.set_faults(Faults(latency_s=0.4, serial=True))
    chat = _chat(llm_server, concurrency=4, timeout=1.0, max_retries=6, circuit_threshold=50, backoff_max=2)

    async def main():
        return await asyncio.gather(*(chat.ainvoke([HumanMessage(content=f"hi {i}")], node="t") for i in range(6)))

    results = asyncio.run(main())
    assert len(results) == 6  # every request answered in the end
    assert chat.stats.by_kind.get("timeout", 0) >= 1 and chat.limit.decreases >= 1 and chat.limit.lowest <= 2
    llm_server.wait_idle()


def test_a_freed_slot_goes_to_the_longest_waiter_not_back_to_the_task_that_freed_it():
    # the direct agent's two lanes at --concurrency 1: the lane that finishes a chunk asks again at
    # once; if it took the freed slot back, the other lane's earlier chunk (and every commit after
    # it) would wait to the end of the run, as it did against llama.cpp's server
    limit = AdaptiveLimit(1)
    order: list[str] = []

    async def lane(name: str) -> None:
        for _ in range(3):
            async with limit.slot():
                order.append(name)
                await asyncio.sleep(0)  # the request in flight

    async def main():
        await asyncio.gather(lane("a"), lane("b"))

    asyncio.run(main())
    assert order == ["a", "b", "a", "b", "a", "b"] and limit.inflight == 0

    async def cancelled_waiter():  # a waiter cancelled before its turn gives up its place, not a slot
        async with limit.slot():
            waiter = asyncio.create_task(lane("c"))
            await asyncio.sleep(0)
            waiter.cancel()
        await asyncio.gather(waiter, return_exceptions=True)
        async with limit.slot():
            return limit.inflight

    assert asyncio.run(cancelled_waiter()) == 1 and limit.inflight == 0


def test_latency_runs_from_the_send_not_from_the_wait_for_a_slot(llm_server):
    llm_server.set_faults(Faults(latency_s=0.15))
    chat = _chat(llm_server, concurrency=1, timeout=5)

    async def main():
        t0 = time.perf_counter()
        res = await asyncio.gather(*(chat.ainvoke([HumanMessage(content=f"q{i}")], node="t") for i in range(5)))
        return res, time.perf_counter() - t0

    results, wall = asyncio.run(main())
    latencies = [calls[0].latency_s for _, calls in results]
    # one at a time: the latencies add up to the wall time at most (counted from the queue they
    # would add up to 0.15 + 0.30 + ... = 2.25 s against a wall time of about 0.75 s)
    assert sum(latencies) <= wall


def test_a_cut_reply_is_retried_within_the_context_and_the_timeout(llm_server):
    llm_server.add_rule("write a lot", "word " * 20000)  # always cut at max_tokens
    chat = _chat(llm_server, timeout=5)
    chat.capabilities["context_tokens"] = 700
    cfg = StructuredConfig(mode="prompt", max_tokens=128, max_tokens_cap=16384)
    with pytest.raises(StructuredOutputError) as e:
        asyncio.run(ainvoke_json(chat, [HumanMessage(content="write a lot")], node="t", config=cfg))
    limits = [r["body"]["max_tokens"] for r in llm_server.requests]
    prompt = json.loads(json.dumps(llm_server.requests[0]["body"]))["messages"][0]["content"]
    assert limits[:3] == [128, 256, 512] and max(limits) <= 700 - len(prompt) // 4 - 8
    assert e.value.kind == "truncated" and "context 700" in str(e.value)
    assert all(not c.ok and c.error.startswith("truncated") and c.reply for c in e.value.calls)
    # at 10 tokens/s within a 5 s timeout, a retry asks for no more than 40 tokens (80% of what fits)
    chat.capabilities["context_tokens"], chat.out_rate = None, 10.0
    assert retry_token_cap(chat, StructuredConfig(max_tokens=32), 20) == (40, "10 tokens/s within the 5 s timeout")


def test_the_context_is_learnt_from_a_context_length_error(llm_server):
    llm_server.set_faults(Faults(forced=["context"], context_tokens=512))
    chat = _chat(llm_server)
    with pytest.raises(ModelCallError) as e:
        asyncio.run(chat.ainvoke([HumanMessage(content="hello")], node="t"))
    assert e.value.kind == "context" and chat.capabilities["context_tokens"] == 512 and len(llm_server.requests) == 1


# -- item 5: honest records ---------------------------------------------------------------------
def test_a_triage_reply_without_keep_is_asked_again_then_fails_the_chunk(llm_server, corpus, tmp_path):
    llm_server.add_rule("Decide whether the chunk", '{"sample_types": ["concept_qa"]}')
    out = tmp_path / "run"
    run_pipeline(
        chat_run_options(corpus, out, llm_server, "skill", KEY, {**FAST, "structured": "prompt"}, limit=2, revisit=False)
    )
    led = ledger_of(out)
    try:
        rows = led.chunk_rows()
        assert [r["status"] for r in rows] == ["failed", "failed"] and all('"keep"' in r["error"] for r in rows)
        triage = [c for c in led.call_rows() if c["node"] == "triage"]
        assert len(triage) == 2 * 3  # the first reply and two rounds of feedback per chunk
        assert all(not c["ok"] and c["error"].startswith("parse:") and '"sample_types"' in c["reply"] for c in triage)
    finally:
        led.close()


def test_garbage_replies_fail_the_chunk_and_an_empty_one_says_no_candidates(llm_server, corpus, tmp_path):
    llm_server.add_rule(r"Write \d+ `concept_qa` sample", "lorem ipsum dolor sit amet")
    llm_server.add_rule(r"Write \d+ `\w+` sample", "[]")
    out = tmp_path / "run"
    opts = {**FAST, "structured": "prompt", "parse_retries": 0}
    run_pipeline(chat_run_options(corpus, out, llm_server, "skill", KEY, opts, limit=4, revisit=False))
    led = ledger_of(out)
    try:
        rows = led.chunk_rows()
        generated = [r for r in rows if r["skip_reason"] not in ("navigation", "low_information")]
        assert generated and all(r["status"] == "failed" and "unusable reply after 1 attempt" in r["error"] for r in generated), (
            rows
        )
        assert "low_information" not in {r["skip_reason"] for r in generated}
        bad = [c for c in led.call_rows() if c["node"] == "generate" and not c["ok"]]
        assert bad and all(c["reply"] == "lorem ipsum dolor sit amet" for c in bad)
    finally:
        led.close()
    # a model that answers every generation with no sample: the chunk says so, not what it is about
    llm_server.reset()
    llm_server.add_rule(r"Write \d+ `\w+` sample", "[]")
    out2 = tmp_path / "run2"
    run_pipeline(
        chat_run_options(corpus, out2, llm_server, "skill", KEY, {**FAST, "structured": "prompt"}, limit=4, revisit=False)
    )
    led = ledger_of(out2)
    try:
        kept_by_triage = [r for r in led.chunk_rows() if r["skip_reason"] == "no_candidates"]
        assert kept_by_triage and all(r["detail"] for r in kept_by_triage)
        assert len(led.call_rows()) == len(llm_server.requests)
    finally:
        led.close()


# -- item 9 (and 5): a plain server's fenced arrays of question/answer -----------------------------
def test_a_plain_servers_question_answer_arrays_are_judged_honestly(llm_server, corpus, tmp_path):
    llm_server.set_faults(Faults(plain_qa=True))
    out = tmp_path / "run"
    p = cli(corpus, out, llm_server, "direct", "--limit", "4")
    assert p.returncode == 0, p.stderr + p.stdout
    assert "structured output: prompt" in flat(p)  # the server ignored every output format
    led = ledger_of(out)
    try:
        rows = led.chunk_rows()
        assert {r["skip_reason"] for r in rows} <= {"all_rejected", "no_candidates"} and all(
            r["status"] == "skipped" for r in rows
        )
        rejected = led.sample_rows(status="rejected")
        assert rejected and all(s["rule"] == "schema" and "closest" in s["detail"] for s in rejected), rejected[0]["detail"]
        assert all(r["detail"].startswith("all ") for r in rows if r["skip_reason"] == "all_rejected")
        assert len(led.call_rows()) == len(llm_server.requests)
    finally:
        led.close()
    st = run_cli("status", str(out), "--show-failures", "2")
    assert st.returncode == 0 and "reply: Here are some question-answer pairs" in st.stdout and "all_rejected" in st.stdout


# -- item 6: the direct agent commits chunk by chunk ----------------------------------------------
def test_the_direct_agent_commits_each_chunk_as_soon_as_it_is_answered(llm_server, corpus, tmp_path):
    llm_server.set_faults(Faults(latency_s=0.05))
    seen: list[int] = []

    def progress(ctx):
        ctx.on_recorded = lambda outcome: seen.append(len(llm_server.requests))
        return __import__("contextlib").nullcontext()

    out = tmp_path / "run"
    run_pipeline(chat_run_options(corpus, out, llm_server, "direct", KEY, {**FAST, "concurrency": 1}, limit=8), progress=progress)
    probes = 1  # json_schema honoured at once
    assert len(seen) == 8 and seen == sorted(seen)
    # at the k-th commit at most k + 2 chunk requests (1 in flight, 1 lane waiting) were sent
    assert all(n - probes <= k + 2 for k, n in enumerate(seen, start=1)), seen
    assert seen[0] < len(llm_server.requests)


# -- item 7: ReAct on a server without tool calling ------------------------------------------------
def test_react_on_a_server_that_ignores_tools_stops_with_one_line(llm_server, corpus, tmp_path):
    llm_server.set_faults(Faults(ignore_tools=True))
    out = tmp_path / "run"
    p = cli(corpus, out, llm_server, "react", "--limit", "3")
    assert p.returncode == 2, p.stderr + p.stdout
    errors = [line for line in p.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and errors[0].startswith("error: agent 'react' needs tool calling"), p.stderr
    assert "Use --agent skill, --agent direct (no tool calling needed)" in errors[0] and "Traceback" not in p.stderr
    assert "tool calling (auto) ignored" in flat(p)  # the probe's finding, printed before the error
    led = ledger_of(out)
    try:
        assert {r["status"] for r in led.chunk_rows()} == {"pending"}
        assert led.events("stop")[-1]["data"]["cause"] == "capability"
    finally:
        led.close()


def test_react_stops_when_the_model_never_calls_a_tool_though_the_probe_passed(llm_server, corpus, tmp_path):
    llm_server.add_rule(lambda req: any(t["name"] == "save_samples" for t in req.tools), Reply(content="Sure, I will do that."))
    out = tmp_path / "run"
    p = cli(corpus, out, llm_server, "react", "--limit", "3", "--concurrency", "1")
    assert p.returncode == 2, p.stderr + p.stdout
    assert "needs tool calling" in p.stderr and "2 replies to requests that offered the corpus tools called none" in flat(p)
    assert "the probe's tool call worked" in flat(p) and "chat template" not in p.stderr
    led = ledger_of(out)
    try:
        assert {r["status"] for r in led.chunk_rows()} == {"pending"}  # not the chunks' fault
        assert len(led.call_rows()) == len(llm_server.requests)
    finally:
        led.close()


# -- Ctrl-C --------------------------------------------------------------------------------------
def _sigint_default() -> None:
    signal.signal(signal.SIGINT, signal.SIG_DFL)
    signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGINT})


def _sigint_ignored_and_blocked() -> None:
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGINT})


def test_ctrl_c_says_what_was_recorded_and_exits_130_without_warnings(llm_server, corpus, tmp_path):
    """Also when the parent process ignored and blocked SIGINT, which a child inherits (seen in full
    test-suite runs, where a run then went on for over 60 s after Ctrl-C): the run starts that way."""
    llm_server.set_faults(Faults(latency_s=0.3))
    out = tmp_path / "run"
    args = [*chat_run_args(corpus, out, llm_server, "skill"), "--limit", "10", "--concurrency", "1", "--no-revisit", "-q"]
    proc = subprocess.Popen(
        prepbench_cmd(*args),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**__import__("os").environ, "OPENAI_API_KEY": KEY},
        preexec_fn=_sigint_ignored_and_blocked,
    )
    deadline = time.monotonic() + 120
    recorded = 0
    while time.monotonic() < deadline and recorded < 2:
        time.sleep(0.2)
        if (out / "ledger.sqlite").exists():
            led = ledger_of(out)
            try:
                recorded = sum(1 for r in led.chunk_rows() if r["status"] != "pending")
            except Exception:  # noqa: BLE001 - the ledger is still being created
                recorded = 0
            finally:
                led.close()
    # hold the next replies so the run cannot end on its own before the interrupt (under a loaded
    # machine the test's polling can lag the run); the interrupt lands with a request in flight
    llm_server.set_faults(Faults(latency_s=30.0))
    time.sleep(0.5)
    assert proc.poll() is None, "the run ended before it could be interrupted"
    proc.send_signal(signal.SIGINT)
    stdout, stderr = proc.communicate(timeout=60)
    assert proc.returncode == 130, stderr
    led = ledger_of(out)
    try:
        n = sum(1 for r in led.chunk_rows() if r["status"] != "pending")
        assert led.events()[-1]["kind"] == "interrupted"
    finally:
        led.close()
    assert f"interrupted: {n} chunks recorded; run the same command to resume" in stderr, stderr
    for noise in ("Warning", "Traceback", "never awaited", "Task was destroyed", "Exception ignored"):
        assert noise not in stderr + stdout, stderr
    llm_server.set_faults(Faults())
    again = run_cli(*args, env_extra={"OPENAI_API_KEY": KEY})
    assert again.returncode == 0, again.stderr


def test_a_run_that_does_not_stop_after_ctrl_c_is_stopped_hard_within_the_grace_time(tmp_path):
    """A task that ignores its cancellation cannot keep an interrupted run going: after the grace
    time the process says what was recorded and exits 130 (a child process, so its exit is real)."""
    script = tmp_path / "stubborn.py"
    script.write_text(
        "import asyncio, os, signal\n"
        "from prepbench.agents import interrupt\n"
        "async def stubborn():\n"
        "    os.kill(os.getpid(), signal.SIGINT)\n"
        "    for _ in range(100):\n"
        "        try:\n"
        "            await asyncio.sleep(0.1)\n"
        "        except asyncio.CancelledError:\n"
        "            pass  # swallowed: the run goes on\n"
        "asyncio.run(interrupt.guarded(stubborn(), lambda: 3, grace_s=1.0))\n"
        "print('not stopped')\n"
    )
    t0 = time.monotonic()
    # the child starts with SIGINT at its default whatever this process inherited (see _sigint_ignored_and_blocked)
    p = subprocess.run([sys.executable, str(script)], capture_output=True, text=True, timeout=60, preexec_fn=_sigint_default)
    assert p.returncode == 130 and "not stopped" not in p.stdout, (p.returncode, p.stdout, p.stderr)
    assert p.stderr.startswith("interrupted: 3 chunks recorded; the run did not stop within 1 s of Ctrl-C"), p.stderr
    assert time.monotonic() - t0 < 8


def test_a_run_that_ends_in_time_puts_the_handler_back_and_leaves_no_timer():
    from prepbench.agents import interrupt

    async def quick():
        return 7

    before = signal.getsignal(signal.SIGINT)
    assert asyncio.run(interrupt.guarded(quick(), lambda: 0, grace_s=0.2)) == 7
    assert signal.getsignal(signal.SIGINT) is before
    assert not [t for t in threading.enumerate() if isinstance(t, threading.Timer) and t.is_alive()]
