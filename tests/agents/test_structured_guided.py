"""Guided (``json_schema``) output on OpenAI-compatible servers: truncation, refusal, extra_body.

``response_format`` is sent through langchain-openai's ``extra_body`` (the SDK's
``completions.create``), so a reply cut at ``max_tokens`` comes back with
``finish_reason=length`` and is retried with a higher limit, still guided, instead of
raising the SDK's ``LengthFinishReasonError`` and switching the run to prompt mode.
"""

from __future__ import annotations

import asyncio
import json

import pytest
from langchain_core.messages import HumanMessage

from prepbench.agents.models.specs import make_resilient_chat
from prepbench.agents.models.structured import StructuredConfig, StructuredOutputError, ainvoke_json

from llm_server import Faults


def _chat(srv, **opts):
    return make_resilient_chat(
        "openai:test-model", base_url=srv.url + "/v1", api_key="sk-test-guided", backoff_base=0.01, timeout=5, **opts
    )


def test_truncated_guided_reply_is_retried_guided(llm_server):
    items = [{"question": f"What is point {i} about bonds?", "answer": "x" * 40} for i in range(8)]
    llm_server.add_rule("list them", json.dumps({"items": items}))
    chat = _chat(llm_server)
    cfg = StructuredConfig(mode="auto", max_tokens=32, max_tokens_cap=4096)
    value, calls = asyncio.run(
        ainvoke_json(chat, [HumanMessage(content="list them")], node="t", expect="array", schema={"type": "object"}, config=cfg)
    )
    assert value == items
    assert calls[-1].ok and all(not c.ok and c.error.startswith("truncated: ") and c.reply for c in calls[:-1])
    assert not chat.capabilities.get("refused")
    bodies = [r["body"] for r in llm_server.requests]
    limits = [b.get("max_completion_tokens") or b.get("max_tokens") for b in bodies]
    assert limits[:3] == [32, 64, 128] and limits == sorted(limits)
    assert all(b["response_format"]["type"] == "json_schema" for b in bodies)


def test_guided_refusal_fails_at_once(llm_server):
    llm_server.set_faults(Faults(forced=["refusal"]))
    chat = _chat(llm_server)
    with pytest.raises(StructuredOutputError) as e:
        asyncio.run(
            ainvoke_json(
                chat,
                [HumanMessage(content="anything")],
                node="t",
                schema={"type": "object"},
                config=StructuredConfig(mode="json_schema"),
            )
        )
    assert e.value.kind == "refusal" and llm_server.count() == 1


def test_guided_request_keeps_the_users_extra_body(llm_server):
    llm_server.add_rule("give me json", '{"answer": 42}')
    chat = _chat(llm_server, model_kwargs={"extra_body": {"top_k": 5}})
    schema = {"type": "object", "properties": {"answer": {"type": "integer"}}}
    value, _ = asyncio.run(
        ainvoke_json(
            chat, [HumanMessage(content="give me json")], node="t", schema=schema, config=StructuredConfig(mode="json_schema")
        )
    )
    assert value == {"answer": 42}
    body = llm_server.requests[-1]["body"]
    assert body["top_k"] == 5 and body["response_format"]["json_schema"]["schema"] == schema
