"""The model layer against the local test server: specs, call policy, structured output, cost.

Every chat call goes through the real ``langchain-openai`` / ``langchain-anthropic`` clients
over HTTP to ``tests/llm_server.py`` on 127.0.0.1 (no client library is mocked).
"""

from __future__ import annotations

import asyncio
import json
import sys
import time
from pathlib import Path

import pytest
from langchain_core.messages import HumanMessage

from prepbench.agents.base import StopRun
from prepbench.agents.models.prices import PriceTable
from prepbench.agents.models.ratelimit import CircuitOpenError, ModelCallError, RateLimiter, classify, redact, retry_after_seconds
from prepbench.agents.models.specs import make_chat_model, make_generator, make_resilient_chat, parse_spec
from prepbench.agents.models.structured import StructuredConfig, StructuredOutputError, ainvoke_json, extract_json, strip_think
from prepbench.tools.errors import ModelSpecError, PrepbenchError

from cli_helpers import SHARED
from llm_server import Faults

KEY = "sk-test-models-7f3a9c"


def chat_for(srv, api="openai", **opts):
    spec = "openai:test-model" if api == "openai" else "anthropic:claude-test"
    url = srv.url + "/v1" if api == "openai" else srv.url
    base = dict(base_url=url, api_key=KEY, backoff_base=0.01, backoff_max=1.0, timeout=5)
    base.update(opts)
    return make_resilient_chat(spec, **base)


# -- specs ----------------------------------------------------------------------------------


def test_parse_spec_accepts_the_documented_forms():
    assert parse_spec("extractive") == ("extractive", "")
    assert parse_spec("openai:gpt-4o-mini") == ("openai", "gpt-4o-mini")
    assert parse_spec("anthropic:claude-sonnet-4-5") == ("anthropic", "claude-sonnet-4-5")
    assert parse_spec("vllm:/models/qwen") == ("vllm", "/models/qwen")
    assert parse_spec("hf:./tiny") == ("hf", "./tiny")


@pytest.mark.parametrize(
    "spec, fragment",
    [
        ("gpt-4o", "unknown model spec"),
        ("azure:gpt", "unknown model provider 'azure'"),
        ("openai:", "names no model"),
        ("", "unknown model spec"),
    ],
)
def test_parse_spec_rejects_bad_specs_in_one_line(spec, fragment):
    with pytest.raises(ModelSpecError) as e:
        parse_spec(spec)
    assert fragment in str(e.value) and "\n" not in str(e.value)


def test_openai_without_key_or_url_is_a_clear_error(monkeypatch):
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    monkeypatch.delenv("OPENAI_BASE_URL", raising=False)
    with pytest.raises(ModelSpecError, match="OPENAI_API_KEY"):
        make_chat_model("openai:gpt-4o-mini")
    # a local server needs no key: a placeholder is sent
    m = make_chat_model("openai:qwen", base_url="http://127.0.0.1:9/v1")
    assert m.openai_api_key.get_secret_value() == "not-needed"
    assert m.max_retries == 0  # prepbench's own policy retries


def test_extractive_is_not_a_chat_model():
    with pytest.raises(ModelSpecError, match="offline generator"):
        make_chat_model("extractive")


def test_vllm_missing_is_a_one_line_error(monkeypatch):
    # a None entry in sys.modules makes `import vllm` raise ImportError, installed or not
    monkeypatch.setitem(sys.modules, "vllm", None)
    with pytest.raises(ModelSpecError, match="vllm is not installed") as e:
        make_chat_model("vllm:/models/none")
    assert "\n" not in str(e.value) and "vllm:/models/none" in str(e.value)


def test_openai_key_and_base_url_come_from_the_environment(llm_server, monkeypatch):
    monkeypatch.setenv("OPENAI_API_KEY", KEY)
    monkeypatch.setenv("OPENAI_BASE_URL", llm_server.url + "/v1")
    chat = make_resilient_chat("openai:env-model")
    msg, calls = asyncio.run(chat.ainvoke([HumanMessage(content="hello")], node="test"))
    assert msg.content == "OK."
    assert llm_server.requests[-1]["auth"] == f"Bearer {KEY}"
    assert llm_server.requests[-1]["model"] == "env-model"
    assert calls[0].ok and calls[0].input_tokens > 0 and calls[0].output_tokens > 0


# -- the call policy ----------------------------------------------------------------------------


@pytest.mark.parametrize("api", ["openai", "anthropic"])
def test_429_is_retried_after_the_retry_after_header(llm_server, api):
    llm_server.set_faults(Faults(forced=["429", "429"], retry_after_s=0.4))
    chat = chat_for(llm_server, api)
    t0 = time.perf_counter()
    msg, calls = asyncio.run(chat.ainvoke([HumanMessage(content="hi")], node="test"))
    elapsed = time.perf_counter() - t0
    assert elapsed >= 0.8  # two waits of Retry-After 0.4 s (the backoff ceiling alone is 0.01-0.02 s)
    assert [c.ok for c in calls] == [False, False, True]
    assert "RateLimit" in calls[0].error
    assert chat.stats.retries == 2 and llm_server.count(api) == 3


def test_retry_after_parsing():
    class R:
        def __init__(self, headers):
            self.headers = headers

    class E(Exception):
        def __init__(self, headers):
            self.response = R(headers)

    assert retry_after_seconds(E({"retry-after": "2"})) == 2.0
    assert retry_after_seconds(E({"retry-after-ms": "250"})) == 0.25
    assert retry_after_seconds(E({})) is None
    assert 0 <= retry_after_seconds(E({"retry-after": "Wed, 21 Oct 2015 07:28:00 GMT"})) < 1


@pytest.mark.parametrize("fault", ["500", "503", "reset", "slow"])
def test_transient_faults_are_retried(llm_server, fault):
    # a 2 s timeout: the retried, normal reply must fit in it on a loaded machine (two xdist workers
    # on 2 cores took a 0.5 s one past it), the slow fault's 6 s never does
    llm_server.set_faults(Faults(forced=[fault], slow_s=6.0, retry_after_s=0.01))
    chat = chat_for(llm_server, timeout=2.0)
    msg, calls = asyncio.run(chat.ainvoke([HumanMessage(content="hi")], node="test"))
    assert msg.content == "OK."
    assert len(calls) == 2 and not calls[0].ok and calls[1].ok
    expected = {"500": "server", "503": "server", "reset": "connection", "slow": "timeout"}[fault]
    assert chat.stats.by_kind == {expected: 1}


def test_bad_request_is_not_retried(llm_server):
    llm_server.set_faults(Faults(forced=["400"]))
    chat = chat_for(llm_server)
    with pytest.raises(ModelCallError) as e:
        asyncio.run(chat.ainvoke([HumanMessage(content="hi")], node="test"))
    assert e.value.kind == "client" and len(e.value.calls) == 1 and llm_server.count() == 1


def test_retries_run_out(llm_server):
    llm_server.set_faults(Faults(rate_500=1.0))
    chat = chat_for(llm_server, max_retries=2, circuit_threshold=100)
    with pytest.raises(ModelCallError) as e:
        asyncio.run(chat.ainvoke([HumanMessage(content="hi")], node="test"))
    assert e.value.kind == "server" and len(e.value.calls) == 3 and "after 3 attempt(s)" in str(e.value)


def test_circuit_opens_when_the_server_is_down(llm_server):
    llm_server.set_faults(Faults(down=True))
    chat = chat_for(llm_server, max_retries=3, circuit_threshold=6)

    async def many():
        return await asyncio.gather(
            *(chat.ainvoke([HumanMessage(content=f"q{i}")], node="t") for i in range(4)), return_exceptions=True
        )

    results = asyncio.run(many())
    assert all(isinstance(r, CircuitOpenError) for r in results), results
    assert isinstance(results[0], StopRun)  # the agents stop cleanly on it
    assert chat.circuit.open
    assert llm_server.count() <= 6 + 4  # no request storm once open
    # once open, calls fail fast without touching the server
    n = llm_server.count()
    with pytest.raises(CircuitOpenError):
        asyncio.run(chat.ainvoke([HumanMessage(content="again")], node="t"))
    assert llm_server.count() == n


def test_concurrency_is_bounded(llm_server):
    llm_server.wait_idle()  # a slow reply of an earlier test may still be sleeping
    llm_server.set_faults(Faults(latency_s=0.15))
    chat = chat_for(llm_server, concurrency=3)

    async def many():
        return await asyncio.gather(*(chat.ainvoke([HumanMessage(content=f"q{i}")], node="t") for i in range(9)))

    t0 = time.perf_counter()
    asyncio.run(many())
    elapsed = time.perf_counter() - t0
    assert llm_server.max_inflight == 3
    assert elapsed >= 3 * 0.15  # 9 requests, 3 at a time


def test_rpm_limiter_spaces_requests():
    limiter = RateLimiter(rpm=3, window_s=0.3)

    async def go():
        t0 = time.monotonic()
        stamps = []
        for _ in range(6):
            await limiter.acquire()
            stamps.append(time.monotonic() - t0)
        return stamps

    stamps = asyncio.run(go())
    assert stamps[2] < 0.1 and stamps[3] >= 0.29  # the 4th waits for the window


def test_tpm_limiter_waits_for_token_budget():
    limiter = RateLimiter(tpm=100, window_s=0.25)

    async def go():
        t0 = time.monotonic()
        await limiter.acquire(80)
        await limiter.acquire(80)
        return time.monotonic() - t0

    assert asyncio.run(go()) >= 0.24


def test_classify_and_redact():
    assert classify(asyncio.TimeoutError()) == ("timeout", True)
    assert classify(ConnectionResetError()) == ("connection", True)
    assert classify(ValueError("x")) == ("client", False)
    assert redact(f"bad key {KEY} here", [KEY]) == "bad key *** here"


# -- structured output ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    "text, expect, value",
    [
        ('{"keep": true}', "object", {"keep": True}),
        ('```json\n[{"a": 1}]\n```', "array", [{"a": 1}]),
        (
            'Sure! Here it is:\n{"keep": false, "skip_reason": "navigation"}\nHope this helps.',
            "object",
            {"keep": False, "skip_reason": "navigation"},
        ),
        ('<think>maybe {"keep": false}? no.</think>\n{"keep": true}', "object", {"keep": True}),
        ('Note [1] below.\n[{"q": "x"}]', "array", [{"q": "x"}]),
    ],
)
def test_extract_json_repairs_common_wrappings(text, expect, value):
    assert extract_json(text, expect) == value


def test_extract_json_errors():
    with pytest.raises(ValueError, match="no JSON"):
        extract_json("I cannot do that.")
    with pytest.raises(ValueError, match="invalid JSON"):
        extract_json('{"keep": tru')
    assert strip_think("<think>unfinished reasoning") == ""


@pytest.mark.parametrize(
    "api, mode, wire",
    [
        ("openai", "auto", "response_format"),
        ("anthropic", "auto", "tools"),
        ("openai", "tools", "tools"),
        ("openai", "prompt", None),
    ],
)
def test_guided_output_modes_reach_the_server(llm_server, api, mode, wire):
    llm_server.add_rule("give me json", '{"answer": 42}')
    # a forced-tool reply: the smart path wraps objects in tool calls; use a callable rule
    from llm_server import Reply

    def reply(req):
        if req.forced_tool():
            return Reply(tool_calls=[{"name": req.forced_tool(), "args": {"answer": 42}}], finish_reason="tool_calls")
        return Reply(content='```json\n{"answer": 42}\n```')

    llm_server.reset()
    llm_server.add_rule("give me json", reply)
    chat = chat_for(llm_server, api)
    schema = {"type": "object", "properties": {"answer": {"type": "integer"}}, "required": ["answer"]}
    value, calls = asyncio.run(
        ainvoke_json(
            chat,
            [HumanMessage(content="give me json")],
            node="t",
            expect="object",
            schema=schema,
            config=StructuredConfig(mode=mode),
        )
    )
    assert value == {"answer": 42}
    body = llm_server.requests[-1]["body"]
    if wire == "response_format":
        assert body["response_format"]["type"] == "json_schema"
        assert body["response_format"]["json_schema"]["schema"] == schema
    elif wire == "tools":
        assert body["tools"] and "response_format" not in body
    else:
        assert "tools" not in body and "response_format" not in body


def test_truncated_reply_is_retried_with_a_higher_limit(llm_server):
    long_json = json.dumps([{"question": f"What is point {i} about bonds and yields?", "answer": "x" * 40} for i in range(8)])
    llm_server.add_rule("list them", long_json)
    chat = chat_for(llm_server)
    cfg = StructuredConfig(mode="prompt", max_tokens=32, max_tokens_cap=4096)
    value, calls = asyncio.run(ainvoke_json(chat, [HumanMessage(content="list them")], node="t", expect="array", config=cfg))
    assert len(value) == 8
    limits = [r["body"].get("max_completion_tokens") or r["body"].get("max_tokens") for r in llm_server.requests]
    assert limits[:3] == [32, 64, 128] and limits == sorted(limits)
    assert len(calls) == len(limits)


def test_truncation_cap_gives_up(llm_server):
    llm_server.add_rule("list them", json.dumps([{"q": "y" * 400}]))
    chat = chat_for(llm_server)
    with pytest.raises(StructuredOutputError) as e:
        asyncio.run(
            ainvoke_json(
                chat,
                [HumanMessage(content="list them")],
                node="t",
                expect="array",
                config=StructuredConfig(mode="prompt", max_tokens=8, max_tokens_cap=16),
            )
        )
    assert e.value.kind == "truncated"


@pytest.mark.parametrize("api", ["openai", "anthropic"])
def test_malformed_then_think_then_valid(llm_server, api):
    llm_server.add_rule("triage me", '{"keep": true, "sample_types": ["concept_qa"]}')
    llm_server.set_faults(Faults(forced=["malformed", "think"]))
    chat = chat_for(llm_server, api)
    value, calls = asyncio.run(
        ainvoke_json(chat, [HumanMessage(content="triage me")], node="t", expect="object", config=StructuredConfig(mode="prompt"))
    )
    assert value == {"keep": True, "sample_types": ["concept_qa"]}
    assert len(calls) == 2  # malformed, then the parse-feedback round (which had a <think> block)
    assert "could not be used" in json.dumps(llm_server.requests[-1]["body"])


@pytest.mark.parametrize("api", ["openai", "anthropic"])
def test_refusal_fails_at_once(llm_server, api):
    llm_server.set_faults(Faults(forced=["refusal"]))
    chat = chat_for(llm_server, api)
    with pytest.raises(StructuredOutputError) as e:
        asyncio.run(ainvoke_json(chat, [HumanMessage(content="anything")], node="t", config=StructuredConfig(mode="prompt")))
    assert e.value.kind == "refusal" and "refused" in str(e.value)


def test_auto_mode_falls_back_to_prompting_when_the_server_rejects_guided_output(llm_server):
    llm_server.add_rule("give", '{"ok": true}')
    llm_server.set_faults(Faults(reject_guided=True))
    chat = chat_for(llm_server)
    value, _ = asyncio.run(ainvoke_json(chat, [HumanMessage(content="give")], node="t", config=StructuredConfig(mode="auto")))
    assert value == {"ok": True}
    assert "response_format" in llm_server.requests[0]["body"] and "response_format" not in llm_server.requests[-1]["body"]


# -- cost ----------------------------------------------------------------------------------------


def test_price_table_exact_glob_and_unknown():
    t = PriceTable.load()
    assert t.cost("gpt-4o-mini", 1_000_000, 1_000_000) == pytest.approx(0.15 + 0.60)
    assert t.cost("claude-sonnet-4-5-20250929", 2_000_000, 0) == pytest.approx(6.0)
    assert t.cost("my-local-qwen", 10_000, 10_000) == 0.0


def test_user_prices_override_and_bad_files(tmp_path):
    f = tmp_path / "p.yaml"
    f.write_text(
        "per_tokens: 1000\nmodels:\n  test-model: {input: 0.002, output: 0.004}\n  gpt-4o-mini: {input: 0.001, output: 0.001}\n"
    )
    t = PriceTable.load(f)
    assert t.cost("test-model", 1000, 500) == pytest.approx(0.002 + 0.002)  # USD per 1000 tokens, rescaled
    assert t.cost("gpt-4o-mini", 1_000_000, 0) == pytest.approx(1.0)
    bad = tmp_path / "bad.yaml"
    bad.write_text("models:\n  m: {input: -1, output: 2}\n")
    with pytest.raises(PrepbenchError, match=r"bad\.yaml: model 'm'"):
        PriceTable.load(bad)
    with pytest.raises(PrepbenchError, match="price file not found"):
        PriceTable.load(tmp_path / "missing.yaml")


def test_call_cost_comes_from_usage_and_prices(llm_server, tmp_path):
    f = tmp_path / "p.yaml"
    f.write_text("models:\n  test-model: {input: 1000000, output: 2000000}\n")  # $1 / $2 per token
    chat = chat_for(llm_server, prices=str(f))
    msg, calls = asyncio.run(chat.ainvoke([HumanMessage(content="hello there")], node="t"))
    usage = llm_server.requests[-1]  # the server's own count is what the client reports
    c = calls[-1]
    assert c.input_tokens == msg.usage_metadata["input_tokens"] > 0
    assert c.cost_usd == pytest.approx(c.input_tokens * 1.0 + c.output_tokens * 2.0)
    assert chat.stats.cost_usd == pytest.approx(c.cost_usd)
    assert usage["model"] == "test-model"


# -- local transformers model ------------------------------------------------------------------


def _tiny_hf_model(path: Path) -> None:
    """A randomly initialised 2-layer Llama with a BPE tokenizer trained on a real book slice."""
    torch = pytest.importorskip("torch")
    transformers = pytest.importorskip("transformers")
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers

    corpus = SHARED / "corpora" / "finance" / "openstax-principles-of-finance"
    text = next(p for p in sorted(corpus.glob("*.md")) if p.name != "SOURCE.md").read_text(encoding="utf-8")[:20000]
    tok = Tokenizer(models.BPE(unk_token=None))
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    tok.train_from_iterator(
        text.splitlines(),
        trainers.BpeTrainer(
            vocab_size=400, special_tokens=["<eos>", "<pad>"], initial_alphabet=pre_tokenizers.ByteLevel.alphabet()
        ),
    )
    fast = transformers.PreTrainedTokenizerFast(tokenizer_object=tok, eos_token="<eos>", pad_token="<pad>")
    fast.chat_template = "{% for m in messages %}<{{ m['role'] }}>{{ m['content'] }}{% endfor %}<assistant>"
    fast.save_pretrained(path)
    torch.manual_seed(0)
    cfg = transformers.LlamaConfig(
        vocab_size=len(fast),
        hidden_size=32,
        intermediate_size=64,
        num_hidden_layers=2,
        num_attention_heads=2,
        num_key_value_heads=2,
        max_position_embeddings=512,
        eos_token_id=fast.eos_token_id,
        pad_token_id=fast.pad_token_id,
    )
    transformers.LlamaForCausalLM(cfg).save_pretrained(path)


def test_hf_local_model_end_to_end(tmp_path):
    _tiny_hf_model(tmp_path / "tiny")
    chat = make_resilient_chat(f"hf:{tmp_path / 'tiny'}", max_tokens=12)
    msg, calls = asyncio.run(chat.ainvoke([HumanMessage(content="What is a bond?")], node="t"))
    assert isinstance(msg.content, str)
    assert calls[0].input_tokens > 5 and 1 <= calls[0].output_tokens <= 12 and calls[0].cost_usd == 0.0
    assert msg.response_metadata["finish_reason"] in ("length", "stop")
    # the generator path: random weights cannot produce JSON, so triage fails with a parse error
    gen = make_generator(f"hf:{tmp_path / 'tiny'}", max_tokens=8, max_tokens_cap=8, parse_retries=0)
    assert gen.needs_chat_model and gen.name.startswith("hf:")
    with pytest.raises(ModelCallError) as e:
        asyncio.run(ainvoke_json(gen.chat, [HumanMessage(content="Reply with JSON")], node="t", config=gen.structured))
    assert e.value.kind in ("parse", "truncated")


def test_hf_missing_path_is_a_clear_error(tmp_path):
    with pytest.raises(ModelSpecError, match="model path not found"):
        make_chat_model(f"hf:{tmp_path / 'nope'}")


def test_a_reply_that_lands_as_the_run_is_cancelled_does_not_swallow_the_cancellation():
    """Ctrl-C cancels the run's tasks; a request whose reply arrives in the same loop step must still
    end cancelled (Python 3.11's ``asyncio.wait_for`` returned the reply and dropped the cancellation,
    so an interrupted run went on for minutes)."""
    from prepbench.agents.models.ratelimit import ResilientChat

    async def scenario() -> None:
        chat = ResilientChat(object(), "openai:test-model")
        reply = asyncio.get_running_loop().create_future()

        class Runnable:  # neither a chat model nor a binding: called through ainvoke
            async def ainvoke(self, messages, config=None):
                return await reply

        task = asyncio.create_task(chat._send(Runnable(), "hello"))
        for _ in range(5):
            await asyncio.sleep(0)  # the request is in flight
        reply.set_result("the reply")
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task

    asyncio.run(scenario())
