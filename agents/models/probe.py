"""The capability probe: what an OpenAI-compatible server supports, asked at the start of a run.

Servers differ in what they accept: OpenAI, vLLM and llama.cpp's own server take
``response_format: json_schema``; llama-cpp-python's server refuses it (HTTP 500, "Input should
be 'text' or 'json_object'") but constrains ``{"type": "json_object", "schema": ...}`` with a
grammar; some chat templates drop the ``tools`` of a request. Rather than learn this from failed
chunks, :func:`probe_server` asks with a few tiny requests, in order of preference, and stops at
the first structured-output mode the server honours:

``json_schema``  ``response_format`` of type ``json_schema`` (prompt: "Say hello."; a server that
                 honours the schema answers ``{"answer": <integer>}``, one that ignores it says hello);
``json_object``  ``response_format`` of type ``json_object`` with the same schema;
``tools``        one forced tool whose parameters are the schema;
``tools_auto``   (only for the ReAct agent) a tool offered with ``tool_choice: auto`` and a prompt
                 that asks for it: a server whose template drops tools answers in text.

Each answer is ``supported``, ``ignored`` (accepted, but the reply did not follow), ``unsupported``
(a 4xx/5xx that says the request shape is not supported: a capability answer, not a fault) or
``error`` (anything else). The context size comes from llama.cpp's ``GET /props``
(``default_generation_settings.n_ctx``) or ``GET /v1/models`` (vLLM's ``max_model_len``, llama.cpp's
``meta.n_ctx_train``, ``context_length``); a server that names neither has it learnt from its first
context-length error. Every probe request is a call row (node ``probe``); the findings and the
choice are a ``probe`` run event, printed at the start of the run.
"""

from __future__ import annotations

import json
import re
import time
from typing import Any

from prepbench.agents.models.ratelimit import ModelCallError, ResilientChat
from prepbench.agents.models.structured import AUTO_ORDER, bind_mode, message_text, whole_json
from prepbench.tools.ledger import CallRecord

PROBE_SCHEMA = {"type": "object", "properties": {"answer": {"type": "integer"}}, "required": ["answer"]}
PROBE_PROMPT = "Say hello."
TOOLS_AUTO_PROMPT = "Call the tool add_numbers with a=2 and b=3. Do not answer in text."
ADD_TOOL = {
    "type": "function",
    "function": {
        "name": "add_numbers",
        "description": "Add two integers.",
        "parameters": {
            "type": "object",
            "properties": {"a": {"type": "integer"}, "b": {"type": "integer"}},
            "required": ["a", "b"],
        },
    },
}
PROBE_MAX_TOKENS = 48


def _follows_schema(msg: Any, mode: str) -> bool:
    """The probe reply follows :data:`PROBE_SCHEMA` (a tool call's arguments in ``tools`` mode)."""
    if mode == "tools":
        calls = getattr(msg, "tool_calls", None) or []
        return bool(calls) and isinstance(calls[0].get("args", {}).get("answer"), int)
    try:
        value = whole_json(message_text(msg))
    except ValueError:
        return (
            message_text(msg).lstrip().startswith("{")
            and (getattr(msg, "response_metadata", {}) or {}).get("finish_reason") == "length"
        )  # a guided reply cut at the probe's small limit still shows the guidance
    return isinstance(value, dict) and isinstance(value.get("answer"), int)


async def _ask(chat: ResilientChat, runnable: Any, prompt: str, calls: list[CallRecord]) -> tuple[Any, str]:
    """One probe request: ``(reply or None, verdict)``; the verdict is ``unsupported: ...`` or
    ``error: ...`` when the request failed."""
    from langchain_core.messages import HumanMessage

    try:
        msg, cs = await chat.ainvoke([HumanMessage(content=prompt)], node="probe", runnable=runnable)
    except ModelCallError as e:
        calls.extend(e.calls)
        last = e.calls[-1] if e.calls else None
        verdict = "unsupported" if e.kind in ("unsupported", "client") else "error"
        return None, f"{verdict} ({gist(last.error if last else str(e), last.reply if last else None)})"
    calls.extend(cs)
    return msg, ""


_STATUS = re.compile(r"(?:Error code|status(?: code)?)[: ]+(\d{3})", re.I)
_PYDANTIC_MSG = re.compile(r"""['"]msg['"]:\s*(["'])(.*?)\1\s*[,}]""")


def gist(error: str, body: str | None) -> str:
    """An error in a few words: ``HTTP 500: Input should be 'text' or 'json_object'`` (the status, then
    the body's ``msg``/``message``/``detail``), at most 160 characters."""
    status = _STATUS.search(error or "")
    text = body or error or ""
    try:
        parsed = json.loads(text)
        err = parsed.get("error", parsed) if isinstance(parsed, dict) else parsed
        text = str(err.get("message") or err.get("detail") or err) if isinstance(err, dict) else str(err)
    except (ValueError, AttributeError):
        pass
    m = _PYDANTIC_MSG.search(text)
    what = m.group(2) if m else text
    what = " ".join(str(what).split())
    return (f"HTTP {status.group(1)}: " if status else "") + what[:140]


async def probe_mode(chat: ResilientChat, mode: str, calls: list[CallRecord]) -> str:
    """Ask whether ``chat``'s server honours structured-output ``mode``: ``supported`` | ``ignored`` |
    ``unsupported: <why>`` | ``error: <why>``."""
    runnable = bind_mode(chat, mode, PROBE_SCHEMA, "probe_answer", PROBE_MAX_TOKENS)
    msg, verdict = await _ask(chat, runnable, PROBE_PROMPT, calls)
    if msg is None:
        return verdict
    return "supported" if _follows_schema(msg, mode) else "ignored"


async def probe_tools_auto(chat: ResilientChat, calls: list[CallRecord]) -> str:
    """Does the server pass tools to the model (``tool_choice: auto``)? ``supported`` when the reply
    calls the tool, ``ignored`` when it answers in text (a chat template without tools)."""
    runnable = chat.model.bind_tools([ADD_TOOL], tool_choice="auto").bind(max_tokens=PROBE_MAX_TOKENS)
    msg, verdict = await _ask(chat, runnable, TOOLS_AUTO_PROMPT, calls)
    if msg is None:
        return verdict
    return "supported" if getattr(msg, "tool_calls", None) else "ignored"


async def server_context(base_url: str | None, timeout: float = 5.0) -> tuple[int | None, str | None]:
    """The server's context size and where it was read: llama.cpp's ``/props``, then ``/v1/models``."""
    if not base_url:
        return None, None
    import httpx

    root = base_url.rstrip("/")
    root = root[: -len("/v1")] if root.endswith("/v1") else root
    # a plain-http server needs no TLS context (loading the CA bundle costs ~50 ms of every run's
    # start); redirects are not followed, so no https URL is fetched unverified
    plain = root.startswith("http://")
    async with httpx.AsyncClient(timeout=timeout, verify=not plain, follow_redirects=False) as client:
        for url, pick in ((f"{root}/props", _props_ctx), (f"{root}/v1/models", _models_ctx)):
            try:
                r = await client.get(url)
                n = pick(r.json()) if r.status_code == 200 else None
            except (httpx.HTTPError, ValueError):
                n = None
            if n:
                return n, url[len(root) :]
    return None, None


def _props_ctx(body: Any) -> int | None:
    if not isinstance(body, dict):
        return None
    n = (body.get("default_generation_settings") or {}).get("n_ctx") or body.get("n_ctx")
    return int(n) if isinstance(n, (int, float)) and n > 0 else None


def _models_ctx(body: Any) -> int | None:
    rows = body.get("data") if isinstance(body, dict) else None
    for row in rows or []:
        if not isinstance(row, dict):
            continue
        meta = row.get("meta") or {}
        for n in (row.get("max_model_len"), row.get("context_length"), row.get("context_window"), meta.get("n_ctx_train")):
            if isinstance(n, (int, float)) and n > 0:
                return int(n)
    return None


async def probe_server(
    chat: ResilientChat, mode: str = "auto", tools_auto: bool = False
) -> tuple[dict[str, Any], list[CallRecord]]:
    """Probe ``chat``'s server; return ``(findings, probe call records)`` and set ``chat.capabilities``.

    Args:
        chat: an ``openai:`` chat model behind its call policy.
        mode: the user's ``--structured``: ``auto`` probes the modes in order of preference and
            chooses the first supported one (``prompt`` when none is); another mode is probed alone.
        tools_auto: also probe tool calling with ``tool_choice: auto`` (the ReAct agent).

    Returns:
        ``{"server", "model", "<mode>": verdict..., "tools_auto", "context_tokens", "context_source",
        "structured", "seconds"}`` (only the modes probed have a verdict).

    Raises:
        CircuitOpenError: the server did not answer the probe at all (a StopRun).
    """
    t0 = time.perf_counter()
    calls: list[CallRecord] = []
    found: dict[str, Any] = {"server": chat.base_url, "model": chat.model_name}
    found["context_tokens"], found["context_source"] = await server_context(chat.base_url)
    chosen = "prompt"
    for m in AUTO_ORDER["openai"][:-1] if mode == "auto" else ((mode,) if mode != "prompt" else ()):
        found[m] = await probe_mode(chat, m, calls)
        if found[m] == "supported":
            chosen = m
            break
    if mode not in ("auto", "prompt"):
        chosen = mode
    if tools_auto:
        found["tools_auto"] = await probe_tools_auto(chat, calls)
    found["structured"] = chosen
    found["seconds"] = round(time.perf_counter() - t0, 3)
    chat.capabilities.update(
        context_tokens=found["context_tokens"] or chat.capabilities.get("context_tokens"),
        structured=chosen,
        tools_auto=None if not tools_auto else found["tools_auto"] == "supported",
    )
    return found, calls


def describe_probe(found: dict[str, Any]) -> str:
    """One line for a person: what the server answered and the mode chosen."""
    parts = []
    for m in ("json_schema", "json_object", "tools", "tools_auto"):
        if m in found:
            label = {"json_object": "json_object+schema", "tools": "forced tool", "tools_auto": "tool calling (auto)"}.get(m, m)
            parts.append(f"{label} {found[m]}")
    ctx = found.get("context_tokens")
    parts.append(f"context {ctx} tokens ({found.get('context_source')})" if ctx else "context unknown")
    return f"server {found.get('server') or 'api'}: " + "; ".join(parts) + f" -> structured output: {found['structured']}"
