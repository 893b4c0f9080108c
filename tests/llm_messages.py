"""The test server's request and reply types, fault injection, and request parsing (OpenAI and Anthropic)."""

from __future__ import annotations

import json
import random
import re
from dataclasses import dataclass, field
from typing import Any, Callable

# ---------------------------------------------------------------------------------------
# request / reply model
# ---------------------------------------------------------------------------------------


@dataclass
class Msg:
    """A message normalised from either wire format."""

    role: str  # system | user | assistant | tool
    text: str = ""
    tool_calls: list[dict] = field(default_factory=list)  # [{"id","name","args"}]
    tool_name: str | None = None  # for role == "tool": the tool that produced it


@dataclass
class Request:
    """A normalised chat request.

    Attributes:
        api: ``openai`` or ``anthropic``.
        model: requested model name.
        messages: the conversation, system prompt first when there is one.
        tools: ``[{"name", "description", "parameters"}]``.
        tool_choice: the requested tool choice (wire value), or None.
        response_format: OpenAI ``response_format`` (or None).
        max_tokens: requested output limit (None = unlimited).
        body: the raw JSON body.
    """

    api: str
    model: str
    messages: list[Msg]
    tools: list[dict]
    tool_choice: Any
    response_format: dict | None
    max_tokens: int | None
    body: dict

    @property
    def text(self) -> str:
        """All message text, joined (what regex rules search)."""
        return "\n".join(m.text for m in self.messages)

    @property
    def last_user_text(self) -> str:
        for m in reversed(self.messages):
            if m.role == "user":
                return m.text
        return ""

    def forced_tool(self) -> str | None:
        """Name of the tool the request forces, if any."""
        tc = self.tool_choice
        if isinstance(tc, dict):
            if tc.get("type") == "function":
                return (tc.get("function") or {}).get("name")
            if tc.get("type") == "tool":
                return tc.get("name")
            if tc.get("type") in ("any",) and len(self.tools) == 1:
                return self.tools[0]["name"]
        if tc in ("required", "any") and len(self.tools) == 1:
            return self.tools[0]["name"]
        return None


@dataclass
class Reply:
    """What the model "says": text and/or tool calls (``[{"name", "args"}]``)."""

    content: str | None = None
    tool_calls: list[dict] = field(default_factory=list)
    finish_reason: str = "stop"
    refusal: str | None = None


Matcher = str | re.Pattern | Callable[[Request], bool]


def matches(match: Matcher, req: Request) -> bool:
    """A rule matches: a regex searched in the request text, or a predicate of the request."""
    if isinstance(match, (str, re.Pattern)):
        return re.search(match, req.text) is not None
    return bool(match(req))


Responder = str | Callable[[Request], "Reply | str"]


@dataclass
class Faults:
    """Fault injection settings.

    Rates are probabilities per request (drawn from ``random.Random(seed)``); ``forced``
    is a queue of fault names applied to the next requests first. Times are seconds.
    """

    rate_429: float = 0.0
    rate_500: float = 0.0
    rate_503: float = 0.0
    rate_400: float = 0.0
    rate_401: float = 0.0
    rate_404: float = 0.0
    rate_context: float = 0.0
    context_tokens: int = 512  # the context a ``context`` fault names
    rate_reset: float = 0.0
    rate_slow: float = 0.0
    rate_malformed: float = 0.0
    rate_truncated: float = 0.0
    rate_refusal: float = 0.0
    rate_think: float = 0.0
    rate_truncated_body: float = 0.0
    rate_empty_choices: float = 0.0
    latency_s: float = 0.0
    slow_s: float = 5.0
    retry_after_s: float = 0.05
    seed: int = 0
    down: bool = False
    reject_guided: bool = False
    # server personalities the real llama.cpp server cannot show on demand (see llm_server's docstring)
    refuse_json_schema: bool = False
    ignore_tools: bool = False
    plain_qa: bool = False
    serial: bool = False  # one request at a time, the rest queue (llama-cpp-python); a client's give-up does not cancel
    forced: list[str] = field(default_factory=list)
    rules: list[tuple[Matcher, str]] = field(default_factory=list)

    KINDS = (
        "429",
        "500",
        "503",
        "400",
        "401",
        "404",
        "context",
        "reset",
        "slow",
        "malformed",
        "truncated",
        "refusal",
        "think",
        "truncated_body",
        "empty_choices",
    )

    def draw(self, rng: random.Random, req: "Request | None" = None) -> str | None:
        """The fault for one request: forced queue, then fault rules, then the random rates."""
        if self.forced:
            return self.forced.pop(0)
        if req is not None:
            for match, kind in self.rules:
                if matches(match, req):
                    return kind
        for kind in self.KINDS:
            rate = getattr(self, f"rate_{kind}")
            if rate and rng.random() < rate:
                return kind
        return None


def _content_text(content: Any) -> str:
    if content is None:
        return ""
    if isinstance(content, str):
        return content
    parts = []
    for block in content:
        if isinstance(block, dict):
            if block.get("type") == "text":
                parts.append(block.get("text", ""))
            elif block.get("type") == "tool_result":
                parts.append(_content_text(block.get("content")))
        elif isinstance(block, str):
            parts.append(block)
    return "\n".join(parts)


def parse_openai(body: dict) -> Request:
    msgs: list[Msg] = []
    id_to_name: dict[str, str] = {}
    for m in body.get("messages", []):
        role = m.get("role", "user")
        if role == "developer":
            role = "system"
        calls = []
        for tc in m.get("tool_calls") or []:
            fn = tc.get("function") or {}
            try:
                args = json.loads(fn.get("arguments") or "{}")
            except json.JSONDecodeError:
                args = {}
            calls.append({"id": tc.get("id"), "name": fn.get("name"), "args": args})
            id_to_name[tc.get("id")] = fn.get("name")
        msgs.append(
            Msg(role, _content_text(m.get("content")), calls, id_to_name.get(m.get("tool_call_id")) if role == "tool" else None)
        )
    tools = [
        {
            "name": t["function"]["name"],
            "description": t["function"].get("description", ""),
            "parameters": t["function"].get("parameters", {}),
        }
        for t in body.get("tools") or []
        if t.get("type") == "function"
    ]
    max_tokens = body.get("max_completion_tokens") or body.get("max_tokens")
    return Request(
        "openai", body.get("model", ""), msgs, tools, body.get("tool_choice"), body.get("response_format"), max_tokens, body
    )


def parse_anthropic(body: dict) -> Request:
    msgs: list[Msg] = []
    if body.get("system"):
        msgs.append(Msg("system", _content_text(body["system"])))
    id_to_name: dict[str, str] = {}
    for m in body.get("messages", []):
        content = m.get("content")
        if m.get("role") == "assistant":
            calls = []
            if isinstance(content, list):
                for b in content:
                    if isinstance(b, dict) and b.get("type") == "tool_use":
                        calls.append({"id": b.get("id"), "name": b.get("name"), "args": b.get("input") or {}})
                        id_to_name[b.get("id")] = b.get("name")
            msgs.append(Msg("assistant", _content_text(content), calls))
        else:
            results = (
                [b for b in content if isinstance(b, dict) and b.get("type") == "tool_result"]
                if isinstance(content, list)
                else []
            )
            if results:
                for b in results:
                    msgs.append(Msg("tool", _content_text(b.get("content")), tool_name=id_to_name.get(b.get("tool_use_id"))))
            else:
                msgs.append(Msg("user", _content_text(content)))
    tools = [
        {"name": t["name"], "description": t.get("description", ""), "parameters": t.get("input_schema", {})}
        for t in body.get("tools") or []
    ]
    return Request("anthropic", body.get("model", ""), msgs, tools, body.get("tool_choice"), None, body.get("max_tokens"), body)
