"""The direct OpenAI call (:mod:`prepbench.agents.models.openai_direct`) against the local test server:
the same request body and the same reply as LangChain's ``agenerate``, and ``agenerate`` wherever
the model is configured with something the direct call would skip."""

from __future__ import annotations

import asyncio

from langchain_core.callbacks import BaseCallbackHandler
from langchain_core.messages import HumanMessage

from prepbench.agents.models import openai_direct, ratelimit
from prepbench.agents.models.specs import make_resilient_chat
from prepbench.agents.models.structured import bind_mode

SCHEMA = {"type": "object", "properties": {"keep": {"type": "boolean"}}, "required": ["keep"]}


def _ask(srv, monkeypatch, direct: bool, chat=None):
    """One guided request through ``ResilientChat.ainvoke``; ``(message, the body the server got, direct used)``."""
    chat = chat or make_resilient_chat("openai:test-model", base_url=srv.url + "/v1", api_key="sk-direct-1", timeout=5)
    used: list[bool] = []

    async def spy(model, messages, kwargs):
        reply = await openai_direct.agenerate_direct(model, messages, kwargs) if direct else None
        used.append(reply is not None)
        return reply

    monkeypatch.setattr(ratelimit, "agenerate_direct", spy)
    runnable = bind_mode(chat, "json_schema", SCHEMA, "triage", 64)
    msg, calls = asyncio.run(chat.ainvoke([HumanMessage(content="Keep this chunk?")], node="triage", runnable=runnable))
    assert len(calls) == 1 and calls[0].ok
    return msg, srv.requests[-1]["body"], used


def test_direct_call_sends_the_same_body_and_returns_the_same_reply(llm_server, monkeypatch):
    direct, body_direct, used_direct = _ask(llm_server, monkeypatch, direct=True)
    plain, body_plain, used_plain = _ask(llm_server, monkeypatch, direct=False)
    assert used_direct == [True] and used_plain == [False]
    assert body_direct == body_plain
    assert body_direct["response_format"]["type"] == "json_schema" and body_direct["max_tokens"] == 64
    assert direct.content == plain.content and direct.tool_calls == plain.tool_calls
    assert direct.usage_metadata == plain.usage_metadata and direct.usage_metadata["output_tokens"] > 0
    assert set(direct.response_metadata) == set(plain.response_metadata)
    assert direct.response_metadata["finish_reason"] == plain.response_metadata["finish_reason"] == "stop"


def test_a_model_with_callbacks_goes_through_agenerate(llm_server, monkeypatch):
    seen: list[str] = []

    class Listener(BaseCallbackHandler):
        def on_llm_end(self, response, **kwargs) -> None:
            seen.append(response.generations[0][0].text)

    chat = make_resilient_chat("openai:test-model", base_url=llm_server.url + "/v1", api_key="sk-direct-2", timeout=5)
    chat.model.callbacks = [Listener()]
    msg, _, used = _ask(llm_server, monkeypatch, direct=True, chat=chat)
    assert used == [False]  # the direct call stepped aside, so the listener heard the reply
    assert seen == [msg.content]
