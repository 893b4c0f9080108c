"""Structured (JSON) output that survives real models.

:func:`ainvoke_json` asks a chat model for a JSON value and gets it back, whatever the
server supports:

``json_schema``  OpenAI-compatible ``response_format={"type": "json_schema", ...}``
                 (OpenAI, vLLM, SGLang, Ollama, llama.cpp's server); the root is wrapped in an
                 object when the value is an array, since servers require an object root.
``json_object``  ``response_format={"type": "json_object", "schema": ...}``: grammar-constrained
                 output on llama-cpp-python's server, which refuses ``json_schema``.
``tools``        a single forced tool whose parameters are the schema (Anthropic, and any
                 server with tool calling); the value is the tool call's arguments.
``prompt``       plain text, parsed by :func:`extract_json`.
``auto``         the mode the capability probe chose (:mod:`prepbench.agents.models.probe`),
                 else the first of :data:`AUTO_ORDER` for the provider that the server has not
                 refused; a request shape the server refuses (HTTP 4xx/5xx saying it is
                 unsupported) moves the run to the next mode.

Whatever the mode, the reply is repaired before it is parsed: ``<think>...</think>``
blocks of reasoning models are dropped, Markdown code fences are cut, and (``prompt`` mode)
prose around the JSON too; a guided (``json_schema``) reply must be one whole JSON document,
so a garbled one is asked again rather than mined for the first value that parses. A reply cut
at the output limit (``finish_reason=length`` / ``stop_reason=max_tokens``, or as many output
tokens as the limit allowed) is asked again with twice the limit, within a cap
(:func:`retry_token_cap`: ``max_tokens_cap``, the server's context less the prompt, and what the
server can write within the timeout at its measured speed); a reply that still does not parse
(or that ``check`` refuses) is sent back with the error for a bounded number of rounds; a refusal
fails at once. Every unusable reply's call record is marked failed with the reason, its raw text kept.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any, Callable

from prepbench.agents.models.ratelimit import CircuitOpenError, ModelCallError, ResilientChat
from prepbench.tools.ledger import CallRecord

THINK_RE = re.compile(r"<think(?:ing)?>.*?</think(?:ing)?>", re.S | re.I)
OPEN_THINK_RE = re.compile(r"^\s*<think(?:ing)?>.*", re.S | re.I)
FENCE_RE = re.compile(r"```(?:json|JSON)?\s*\n?(.*?)```", re.S)
WRAP_KEY = "items"
MODES = ("auto", "json_schema", "json_object", "tools", "prompt")
#: ``auto``'s order of preference per provider (the probe's choice comes first).
AUTO_ORDER = {"openai": ("json_schema", "json_object", "tools", "prompt"), "anthropic": ("tools", "prompt")}
GUIDED_MODES = ("json_schema", "json_object", "tools")


class StructuredOutputError(ModelCallError):
    """A reply that could not be turned into the expected JSON value (after its repair rounds)."""


def strip_think(text: str) -> str:
    """Drop ``<think>...</think>`` blocks (and an unclosed one running to the end)."""
    text = THINK_RE.sub("", text)
    if "</think>" not in text.lower():
        text = OPEN_THINK_RE.sub("", text) if text.lstrip().lower().startswith("<think") else text
    return text.strip()


def extract_json(text: str, expect: str | None = None) -> Any:
    """The first JSON value in a model reply.

    Args:
        text: the reply (may hold ``<think>`` blocks, code fences, prose before/after).
        expect: ``"array"`` or ``"object"`` to prefer a value of that kind, or None.

    Returns:
        The parsed value.

    Raises:
        ValueError: no parseable JSON value (the message says what was found).
    """
    if not isinstance(text, str):
        raise ValueError(f"reply is {type(text).__name__}, not text")
    text = strip_think(text)
    candidates = [m.group(1) for m in FENCE_RE.finditer(text)] + [text]
    decoder = json.JSONDecoder(strict=False)  # a raw newline or tab inside a string: what models write
    first_error = None
    found: list[tuple[tuple, Any]] = []
    for ci, cand in enumerate(candidates):
        i, tries = 0, 0
        while tries < 200:
            starts = [j for j in (cand.find("[", i), cand.find("{", i)) if j >= 0]
            if not starts:
                break
            j = min(starts)
            tries += 1
            try:
                value, end = decoder.raw_decode(cand, j)
            except json.JSONDecodeError as e:
                first_error = first_error or e
                i = j + 1
                continue
            found.append((_score(value, end - j, expect, ci), value))
            i = end
        if found and ci < len(candidates) - 1:
            break  # a fenced block parsed: prefer it over the surrounding prose
    if found:
        return max(found, key=lambda f: f[0])[1]
    if first_error is not None:
        raise ValueError(f"invalid JSON: {first_error.msg} at char {first_error.pos}")
    raise ValueError("no JSON value in the reply")


def whole_json(text: str) -> Any:
    """The reply of a guided (``json_schema``) request: one JSON document, the whole text
    (``<think>`` blocks and one code fence around it allowed). Unlike :func:`extract_json`, a
    value found *inside* a broken reply (the first object of a cut array) is not taken: that
    would keep part of the reply as if it were all of it.

    Raises:
        ValueError: the text is not one JSON document.
    """
    if not isinstance(text, str):
        raise ValueError(f"reply is {type(text).__name__}, not text")
    text = strip_think(text)
    fenced = FENCE_RE.fullmatch(text.strip())
    try:
        # strict=False: a raw newline or tab inside a string (llama.cpp's JSON grammar lets them
        # through) is the model's text, not a broken document
        return json.loads(fenced.group(1) if fenced else text, strict=False)
    except json.JSONDecodeError as e:
        raise ValueError(f"the reply is not one JSON document: {e.msg} at char {e.pos}") from None


def _score(value: Any, span: int, expect: str | None, order: int) -> tuple:
    """Rank decoded values: the expected kind, made of objects, then the longest span."""
    kind_ok = (
        expect is None or (expect == "array" and isinstance(value, list)) or (expect == "object" and isinstance(value, dict))
    )
    structured = isinstance(value, dict) or (isinstance(value, list) and bool(value) and all(isinstance(v, dict) for v in value))
    return (kind_ok, structured, span, -order)


def wrap_schema(schema: dict | None, expect: str, max_items: int | None = None) -> dict:
    """A JSON Schema with an object root (what guided-decoding servers accept); an array asked for
    ``max_items`` values at most says so (``maxItems``), so a grammar-constrained reply ends there."""
    if expect == "array":
        array: dict[str, Any] = {"type": "array", "items": schema or {"type": "object"}}
        if max_items:
            array["maxItems"] = max_items
        return {"type": "object", "properties": {WRAP_KEY: array}, "required": [WRAP_KEY]}
    return schema or {"type": "object"}


def unwrap(value: Any, expect: str | None) -> Any:
    """Undo :func:`wrap_schema` and coerce common near-misses to the expected kind."""
    if expect == "array":
        if isinstance(value, dict):
            if isinstance(value.get(WRAP_KEY), list):
                return value[WRAP_KEY]
            lists = [v for v in value.values() if isinstance(v, list) and all(isinstance(x, dict) for x in v)]
            if len(value) == 1 and lists:
                return lists[0]
            return [value]  # a single object where an array was asked
        return value
    if expect == "object" and isinstance(value, list) and len(value) == 1 and isinstance(value[0], dict):
        return value[0]
    return value


def finish_reason(msg: Any) -> str:
    """``stop`` | ``length`` | ``tool_calls`` | ``refusal`` from a LangChain AIMessage of any provider."""
    meta = getattr(msg, "response_metadata", None) or {}
    reason = meta.get("finish_reason") or meta.get("stop_reason") or "stop"
    if (getattr(msg, "additional_kwargs", None) or {}).get("refusal"):
        return "refusal"
    return {"max_tokens": "length", "end_turn": "stop", "tool_use": "tool_calls", "content_filter": "refusal"}.get(reason, reason)


def message_text(msg: Any) -> str:
    """The text of an AIMessage (string content or text blocks)."""
    content = getattr(msg, "content", msg)
    if isinstance(content, str):
        return content
    parts = []
    for block in content or []:
        if isinstance(block, str):
            parts.append(block)
        elif isinstance(block, dict) and block.get("type") == "text":
            parts.append(block.get("text", ""))
    return "".join(parts)


@dataclass
class StructuredConfig:
    """Settings of :func:`ainvoke_json`.

    Attributes:
        mode: one of :data:`MODES`.
        max_tokens: first output limit (tokens).
        max_tokens_cap: largest limit a truncated reply is retried with (default: four times
            ``max_tokens``, at most 16,384).
        parse_retries: rounds of "your JSON did not parse" feedback.
    """

    mode: str = "auto"
    max_tokens: int = 2048
    max_tokens_cap: int | None = None
    parse_retries: int = 2

    def __post_init__(self) -> None:
        from prepbench.tools.errors import PrepbenchError

        if self.mode not in MODES:
            raise PrepbenchError(f"unknown structured-output mode '{self.mode}' ({', '.join(MODES)})")
        if self.max_tokens_cap is None:
            self.max_tokens_cap = max(self.max_tokens, min(16384, 4 * self.max_tokens))
        if self.max_tokens < 1 or self.max_tokens_cap < self.max_tokens:
            raise PrepbenchError("max_tokens must be >= 1 and max_tokens_cap >= max_tokens")


def resolve_mode(chat: ResilientChat, mode: str) -> str:
    """The concrete mode for a chat model (see the module docstring)."""
    if mode != "auto":
        return mode
    caps = getattr(chat, "capabilities", None) or {}
    refused = caps.get("refused") or ()
    chosen = caps.get("structured")
    if chosen and chosen not in refused:
        return chosen
    return next((m for m in AUTO_ORDER.get(chat.provider, ("prompt",)) if m not in refused), "prompt")


def refuse_mode(chat: ResilientChat, mode: str) -> None:
    """Note that the server refused ``mode`` (``auto`` moves on to the next one)."""
    caps = chat.capabilities
    caps["refused"] = sorted({*(caps.get("refused") or ()), mode})
    if caps.get("structured") == mode:
        caps["structured"] = None


def retry_token_cap(chat: ResilientChat, cfg: "StructuredConfig", prompt_tokens: int) -> tuple[int, str]:
    """The largest output limit a cut reply may be asked again with, and what bounds it.

    The smallest of ``cfg.max_tokens_cap``, the server's context less the prompt (when the
    context is known) and the tokens the server writes in 80% of the timeout at its measured
    speed (:attr:`ResilientChat.out_rate`, when measured).
    """
    bounds = [(int(cfg.max_tokens_cap or cfg.max_tokens), f"cap {cfg.max_tokens_cap}")]
    ctx = (getattr(chat, "capabilities", None) or {}).get("context_tokens")
    if ctx:
        bounds.append((int(ctx) - prompt_tokens - 8, f"context {ctx} less a {prompt_tokens}-token prompt"))
    rate = getattr(chat, "out_rate", None)
    if rate:
        t = chat.policy.timeout_s
        bounds.append((int(rate * t * 0.8), f"{rate:.0f} tokens/s within the {t:g} s timeout"))
    return min(bounds)


def bind_mode(chat: ResilientChat, mode: str, schema: dict, name: str, max_tokens: int) -> Any:
    """``chat``'s model bound for a structured-output ``mode`` (request shape of the module docstring),
    with the output limit ``max_tokens``; ``name`` names the tool or JSON Schema."""
    model = chat.model
    if mode == "tools":
        tool = {
            "type": "function",
            "function": {"name": name, "description": f"Return the {name} as structured data.", "parameters": schema},
        }
        bound = model.bind_tools([tool], tool_choice=name)
        return bound.bind(max_tokens=max_tokens)
    if mode in ("json_schema", "json_object"):
        rf: dict[str, Any] = {"type": "json_schema", "json_schema": {"name": name, "schema": schema, "strict": False}}
        if mode == "json_object":
            rf = {"type": "json_object", "schema": schema}
        if chat.provider == "openai":
            # Same request body, sent as extra_body: given ``response_format`` itself,
            # langchain-openai calls the SDK's ``completions.parse``, which raises on a reply
            # cut at max_tokens (so the truncation retry below never ran and the run fell
            # back to prompt mode for good) and costs about twice the client CPU per request.
            extra = dict(getattr(model, "extra_body", None) or {})
            return model.bind(extra_body={**extra, "response_format": rf}, max_tokens=max_tokens)
        return model.bind(response_format=rf, max_tokens=max_tokens)
    return model.bind(max_tokens=max_tokens)


def _reply_value(msg: Any, mode: str, expect: str) -> Any:
    """The JSON value of a reply: the first tool call's arguments in tools mode, else the JSON in
    its text; unwrapped from the guided-output wrapper.

    Raises:
        ValueError: no JSON value, or not the expected kind (object or array).
    """
    if mode == "tools" and getattr(msg, "tool_calls", None):
        value = msg.tool_calls[0]["args"]
    elif mode in ("json_schema", "json_object"):
        value = whole_json(message_text(msg))
    else:
        value = extract_json(message_text(msg), expect)
    value = unwrap(value, expect)
    if expect == "array" and not isinstance(value, list):
        raise ValueError(f"expected a JSON array, got {type(value).__name__}")
    if expect == "object" and not isinstance(value, dict):
        raise ValueError(f"expected a JSON object, got {type(value).__name__}")
    return value


def _unusable(calls: list[CallRecord], why: str) -> None:
    """Mark the last call of ``calls`` as failed with ``why`` (its reply came, but cannot be used)."""
    if calls:
        calls[-1].ok, calls[-1].error = False, why[:300]


def _cut(msg: Any, max_tokens: int) -> bool:
    """The reply stopped at the output limit: said so, or wrote as many tokens as allowed (llama-cpp-python
    reports a forced tool call cut at the limit as ``tool_calls``)."""
    out = int((getattr(msg, "usage_metadata", None) or {}).get("output_tokens", 0) or 0)
    return finish_reason(msg) == "length" or out >= max_tokens


def _feedback(messages: list, msg: Any, error: str, expect: str) -> list:
    """The prompt again, with the unusable reply and what was wrong with it."""
    from langchain_core.messages import AIMessage, HumanMessage

    bad = message_text(msg)[:4000]
    return list(messages) + [
        AIMessage(content=bad or "(empty reply)"),
        HumanMessage(
            content=f"Your reply could not be used: {error}. Reply again with only the JSON "
            f"{'array' if expect == 'array' else 'object'}, no prose and no code fences."
        ),
    ]


async def ainvoke_json(
    chat: ResilientChat,
    messages: list,
    *,
    node: str,
    expect: str = "object",
    schema: dict | None = None,
    name: str = "result",
    config: StructuredConfig | None = None,
    check: Callable[[Any], None] | None = None,
    max_items: int | None = None,
) -> tuple[Any, list[CallRecord]]:
    """Ask ``chat`` for a JSON value; return ``(value, call records)``.

    Args:
        chat: the model behind its call policy.
        messages: the prompt (LangChain messages).
        node: the calling node, for the call records.
        expect: ``"object"`` or ``"array"``.
        schema: JSON Schema of the object, or of the array's items.
        name: name of the guided-output tool/schema.
        config: modes and limits.
        check: raises ``ValueError`` for a parsed value that cannot be used (e.g. a triage
            object without ``keep``): it is asked again with the error, like a parse failure.
        max_items: the most values an array may hold (the guided schema's ``maxItems``).

    Raises:
        StructuredOutputError: no usable value after the truncation and parse rounds
            (``kind`` is ``parse``, ``truncated`` or ``refusal``), with every call's record.
        ModelCallError, CircuitOpenError: from the call layer.
    """
    cfg = config or StructuredConfig()
    calls: list[CallRecord] = []
    max_tokens = cfg.max_tokens
    msgs = list(messages)
    parse_rounds = 0
    wrapped = wrap_schema(schema, expect, max_items)
    while True:
        mode = resolve_mode(chat, cfg.mode)
        try:
            msg, cs = await chat.ainvoke(msgs, node=node, runnable=bind_mode(chat, mode, wrapped, name, max_tokens))
        except ModelCallError as e:
            calls.extend(e.calls)
            if e.kind in ("client", "unsupported") and mode in GUIDED_MODES and cfg.mode == "auto":
                refuse_mode(chat, mode)  # the server refuses this request shape: the next mode
                continue
            e.calls = calls
            raise
        except CircuitOpenError as e:  # the stop carries every attempt of this value, earlier rounds included
            e.calls = calls + e.calls
            raise
        calls.extend(cs)
        if finish_reason(msg) == "refusal":
            refusal = (msg.additional_kwargs or {}).get("refusal") or message_text(msg)
            _unusable(calls, f"refusal: {refusal[:200]}")
            raise StructuredOutputError(f"{node}: the model refused: {refusal[:200]}", "refusal", calls)
        if _cut(msg, max_tokens):
            _unusable(calls, f"truncated: the reply was cut at max_tokens={max_tokens}")
            prompt_tokens = int((getattr(msg, "usage_metadata", None) or {}).get("input_tokens", 0) or 0)
            cap, bound = retry_token_cap(chat, cfg, prompt_tokens)
            if min(cap, max_tokens * 2) <= max_tokens:
                raise StructuredOutputError(
                    f"{node}: reply still cut at max_tokens={max_tokens}, and no larger limit fits ({bound})", "truncated", calls
                )
            max_tokens = min(cap, max_tokens * 2)
            continue
        try:
            value = _reply_value(msg, mode, expect)
            if check is not None:
                check(value)
            return value, calls
        except ValueError as e:
            parse_rounds += 1
            _unusable(calls, f"parse: {e}")
            if parse_rounds > cfg.parse_retries:
                raise StructuredOutputError(
                    f"{node}: unusable reply after {parse_rounds} attempt(s): {e}", "parse", calls
                ) from None
            msgs = _feedback(messages, msg, str(e), expect)
