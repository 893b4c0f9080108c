"""A local LLM server for tests: speaks the OpenAI and Anthropic wire protocols on 127.0.0.1.

No LLM is reachable on the test machines, so every real client path of prepbench
(``langchain-openai``, ``langchain-anthropic`` over HTTP) is exercised against this server.

Endpoints:

``POST /v1/chat/completions``  OpenAI chat completions: ``messages`` (system/user/assistant/tool,
                               ``tool_calls``), ``tools`` + ``tool_choice``, ``response_format``,
                               ``max_tokens``/``max_completion_tokens``, ``usage`` in the reply.
                               No streaming.
``POST /v1/messages``          Anthropic messages: ``system``, content blocks, ``tools``
                               (``tool_use``/``tool_result`` blocks), ``usage``, ``stop_reason``.
``GET  /health``               liveness.

Replies come from a *script*: a list of ``(match, reply)`` rules tried in order, where
``match`` is a regex (searched in the request's text) or a callable taking a
:class:`Request`, and ``reply`` is a string or a callable returning a :class:`Reply`. The
default :func:`smart_reply` answers the prompts of the finance skill (triage, generation per
sample type, repair, judge), prepbench's direct-agent prompt and the ReAct agent's tool loop
by quoting sentences of the chunk, so end-to-end runs accept samples.

Faults (:class:`Faults`) are injected per request, at random with a seeded RNG or forced
for the next requests: ``429`` with ``Retry-After``, ``500``, ``503``, ``reset`` (connection
dropped mid-response), ``slow`` (reply after ``slow_s``, past a client's timeout),
``malformed`` (broken JSON content), ``truncated`` (``finish_reason=length``), ``refusal``,
``think`` (a ``<think>`` block before the answer), ``400`` (bad request), plus a fixed
``latency_s``. ``Faults.rules`` force a fault on requests matching a pattern (e.g. a chunk
id); ``reject_guided=True`` answers 400 to ``response_format``/forced-tool requests, like a
server without guided decoding. The reply is
also cut to the request's ``max_tokens`` (≈ 4 characters per token) with
``finish_reason=length``, as a real server does. ``down=True`` drops every connection.

Use as a pytest fixture (``llm_server`` in ``tests/conftest.py``) or by hand::

    python tests/llm_server.py --port 8000 --latency 0.1
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import re
import socket
import threading
import time
import uuid
from dataclasses import dataclass, field
from typing import Any, Callable

import uvicorn
from fastapi import FastAPI, Request as HTTPRequest
from fastapi.responses import JSONResponse, Response

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


def _matches(match: Matcher, req: Request) -> bool:
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
    rate_reset: float = 0.0
    rate_slow: float = 0.0
    rate_malformed: float = 0.0
    rate_truncated: float = 0.0
    rate_refusal: float = 0.0
    rate_think: float = 0.0
    latency_s: float = 0.0
    slow_s: float = 5.0
    retry_after_s: float = 0.05
    seed: int = 0
    down: bool = False
    reject_guided: bool = False
    forced: list[str] = field(default_factory=list)
    rules: list[tuple[Matcher, str]] = field(default_factory=list)

    KINDS = ("429", "500", "503", "400", "reset", "slow", "malformed", "truncated", "refusal", "think")

    def draw(self, rng: random.Random, req: "Request | None" = None) -> str | None:
        """The fault for one request: forced queue, then fault rules, then the random rates."""
        if self.forced:
            return self.forced.pop(0)
        if req is not None:
            for match, kind in self.rules:
                if _matches(match, req):
                    return kind
        for kind in self.KINDS:
            rate = getattr(self, f"rate_{kind}")
            if rate and rng.random() < rate:
                return kind
        return None


def approx_tokens(text: str) -> int:
    """Token estimate used for usage fields and max_tokens cuts: ⌈chars / 4⌉."""
    return (len(text) + 3) // 4


# ---------------------------------------------------------------------------------------
# the smart script: valid finance-skill samples built from the chunk's own sentences
# ---------------------------------------------------------------------------------------

_BAD_SENTENCE = re.compile(
    r"\b(chapter|section|passage|text|figure|fig\.|table|exhibit|appendix|equation|example|exercise|problem|"
    r"according to|above|below|following|author|this|these|those|it|they)\b|https?://|\[|\]|\$\$|\|",
    re.I,
)
_SENT_SPLIT = re.compile(r"(?<=[.!?])\s+(?=[A-Z])")
_CHUNK_RE = re.compile(r"<chunk(?: id=\"(?P<id>[^\"]+)\")?>\n?(?P<text>.*?)\n?</chunk>", re.S)


def usable_sentences(text: str) -> list[str]:
    """Sentences of a chunk fit to quote as evidence (verbatim substrings of ``text``).

    Headings, tables, math blocks, list markers and sentences that point at the book
    ("this section", "Figure 3") are left out; 60–400 characters each.
    """
    out: list[str] = []
    for para in re.split(r"\n\s*\n", text):
        lines = [ln for ln in para.split("\n")]
        if not lines or lines[0].lstrip().startswith(("#", "|", "$$", ">", "![", "```")):
            continue
        if any(ln.lstrip().startswith(("- ", "* ", "|")) or re.match(r"\s*\d+\.\s", ln) for ln in lines):
            continue
        if len(lines) > 1:
            continue  # keep single-line paragraphs so sentences stay verbatim
        for s in _SENT_SPLIT.split(lines[0].strip()):
            s = s.strip()
            if 60 <= len(s) <= 400 and s.endswith(".") and not _BAD_SENTENCE.search(s) and "$" not in s and "\\" not in s:
                out.append(s)
    return out


def topic_of(heading_path: list[str] | str) -> str:
    """A short topic name from a heading (numbers and book-structure words removed)."""
    title = heading_path[-1] if isinstance(heading_path, list) and heading_path else str(heading_path or "")
    title = re.sub(r"[*_`#]", "", title)
    title = re.sub(r"\b(chapter|section|figure|table|example|appendix|unit|module|part)\b", " ", title, flags=re.I)
    title = re.sub(r"\d+(\.\d+)*", " ", title)
    title = re.sub(r"\s+", " ", title).strip(" :.-")
    return title or "finance"


def _heading_of(text: str) -> str:
    for ln in text.split("\n"):
        m = re.match(r"^#{1,6}\s+(.+)$", ln)
        if m:
            return m.group(1)
    return ""


def _body_chars(text: str) -> int:
    return len("\n".join(ln for ln in text.split("\n") if not ln.lstrip().startswith("#")).strip())


def smart_triage(chunk_text: str) -> dict:
    """Keep a chunk with quotable sentences; skip navigation and short chunks."""
    if re.search(r"learning outcomes|by the end of this section|in this chapter", chunk_text, re.I):
        return {"keep": False, "skip_reason": "navigation"}
    if _body_chars(chunk_text) < 200 or not usable_sentences(chunk_text):
        return {"keep": False, "skip_reason": "low_information"}
    return {"keep": True}


def smart_samples(chunk_id: str, chunk_text: str, sample_type: str, count: int, offset: int = 0) -> list[dict]:
    """Up to ``count`` samples of ``sample_type`` that pass the finance skill's validators.

    Types: ``concept_qa``, ``process_qa``, ``case_application``, ``term_definition``; any other
    type (e.g. ``calculation_qa``, whose result a filter re-computes) gets no samples.
    """
    sents = usable_sentences(chunk_text)
    if not sents:
        return []
    topic = topic_of(_heading_of(chunk_text))
    n = len(sents)
    out: list[dict] = []
    for i in range(count):
        k = offset + 3 * i
        a, b, c = sents[k % n], sents[(k + 1) % n], sents[(k + 2) % n]
        lead = " ".join(a.split()[:5]).rstrip(",;:")
        if sample_type == "concept_qa":
            out.append(
                {
                    "sample_type": "concept_qa",
                    "chunk_id": chunk_id,
                    "evidence": [a],
                    "question": f"What should an investor understand about {topic} regarding the statement beginning '{lead}'?",
                    "answer": a,
                    "question_type": "explanation",
                    "knowledge_point": topic[:120],
                }
            )
        elif sample_type == "term_definition":
            out.append(
                {
                    "sample_type": "term_definition",
                    "chunk_id": chunk_id,
                    "evidence": [a],
                    "question": f"What does an investor need to know about the meaning of {topic}, as in '{lead}'?",
                    "answer": a,
                    "term": topic[:120],
                    "term_kind": "measure",
                }
            )
        elif sample_type == "process_qa":
            if n < 2:
                break
            out.append(
                {
                    "sample_type": "process_qa",
                    "chunk_id": chunk_id,
                    "evidence": [a, b],
                    "question": f"How does the reasoning about {topic} proceed, starting from '{lead}'?",
                    "reasoning_steps": [a, b],
                    "answer": c if c not in (a, b) else b,
                    "reasoning_pattern": "causal_chain",
                }
            )
        elif sample_type == "case_application":
            if n < 2:
                break
            out.append(
                {
                    "sample_type": "case_application",
                    "chunk_id": chunk_id,
                    "evidence": [a, b],
                    "case": f"A financial analyst preparing a briefing on {topic} notes the following: {a}",
                    "question": f"What further point about {topic} should the analyst add to the briefing?",
                    "analysis_steps": [a],
                    "answer": b,
                }
            )
        if len(out) >= count:
            break
    # distinct samples only
    seen, uniq = set(), []
    for s in out:
        key = json.dumps(s, sort_keys=True)
        if key not in seen:
            seen.add(key)
            uniq.append(s)
    return uniq


def _json_blocks(text: str) -> list[Any]:
    out = []
    for m in re.finditer(r"```json\n(.*?)\n```", text, re.S):
        try:
            out.append(json.loads(m.group(1)))
        except json.JSONDecodeError:
            pass
    return out


def _wrap_structured(req: Request, value: Any) -> Reply:
    """Return ``value`` through the channel the request asked for (tool, schema'd JSON or text)."""
    tool = req.forced_tool()
    rf = req.response_format or {}
    if tool:
        args = value if isinstance(value, dict) else {"items": value}
        return Reply(tool_calls=[{"name": tool, "args": args}], finish_reason="tool_calls")
    if rf.get("type") == "json_schema":
        schema = (rf.get("json_schema") or {}).get("schema") or {}
        if schema.get("type") == "object" and not isinstance(value, dict):
            key = next(iter(schema.get("properties") or {"items": None}))
            value = {key: value}
    return Reply(content=json.dumps(value, ensure_ascii=False))


REACT_SYSTEM_MARK = "corpus tools"


def smart_react(req: Request) -> Reply:
    """A scripted ReAct loop over prepbench's corpus tools, decided from the conversation."""
    calls = [tc for m in req.messages if m.role == "assistant" for tc in m.tool_calls]
    last = req.messages[-1]
    used = {tc["name"] for tc in calls}
    if last.role != "tool":
        return Reply(tool_calls=[{"name": "list_pending_chunks", "args": {"limit": 5}}], finish_reason="tool_calls")
    try:
        result = json.loads(last.text)
    except json.JSONDecodeError:
        result = {"error": last.text}
    name = last.tool_name
    if name == "list_pending_chunks":
        chunks = result.get("chunks", []) if isinstance(result, dict) else result
        if not chunks:
            return Reply(content="All chunks are processed: nothing left to do.")
        return Reply(tool_calls=[{"name": "read_chunk", "args": {"chunk_id": chunks[0]["chunk_id"]}}], finish_reason="tool_calls")
    if name == "read_chunk":
        cid, text = result.get("chunk_id"), result.get("text", "")
        if "search_corpus" not in used:
            return Reply(
                tool_calls=[{"name": "search_corpus", "args": {"query": topic_of(result.get("heading_path") or ["finance"]), "limit": 3}}],
                finish_reason="tool_calls",
            )
        return _react_work(cid, text, result.get("heading_path"))
    if name == "search_corpus":
        # go back to the chunk read last
        for m in reversed(req.messages):
            if m.role == "tool" and m.tool_name == "read_chunk":
                r = json.loads(m.text)
                return _react_work(r.get("chunk_id"), r.get("text", ""), r.get("heading_path"))
    if name == "save_samples":
        cid = result.get("chunk_id")
        if result.get("accepted", 0) > 0:
            return Reply(tool_calls=[{"name": "mark_chunk", "args": {"chunk_id": cid, "status": "kept"}}], finish_reason="tool_calls")
        return Reply(
            tool_calls=[{"name": "mark_chunk", "args": {"chunk_id": cid, "status": "skipped", "skip_reason": "low_information"}}],
            finish_reason="tool_calls",
        )
    # after mark_chunk (or an error): look for more work
    return Reply(tool_calls=[{"name": "list_pending_chunks", "args": {"limit": 5}}], finish_reason="tool_calls")


def _react_work(cid: str, text: str, heading_path: Any) -> Reply:
    tri = smart_triage(text)
    if not tri["keep"]:
        return Reply(
            tool_calls=[{"name": "mark_chunk", "args": {"chunk_id": cid, "status": "skipped", "skip_reason": tri["skip_reason"]}}],
            finish_reason="tool_calls",
        )
    samples = smart_samples(cid, text, "concept_qa", 2) + smart_samples(cid, text, "process_qa", 1, offset=6)
    return Reply(tool_calls=[{"name": "save_samples", "args": {"chunk_id": cid, "samples": samples}}], finish_reason="tool_calls")


def smart_reply(req: Request) -> Reply:
    """The default script (see the module docstring)."""
    if any(t["name"] == "save_samples" for t in req.tools):
        return smart_react(req)
    text = req.text
    chunks = list(_CHUNK_RE.finditer(text))
    chunk_text = chunks[0].group("text") if chunks else ""
    if "Decide whether the chunk" in text:
        return _wrap_structured(req, smart_triage(chunk_text))
    m = re.search(r"Write (\d+) `(\w+)` sample", text)
    if m:
        cid = re.search(r'Set "chunk_id" to "([^"]+)"', text)
        count, st = int(m.group(1)), m.group(2)
        offset = {"concept_qa": 0, "process_qa": 1, "case_application": 2, "term_definition": 4}.get(st, 0)
        return _wrap_structured(req, smart_samples(cid.group(1) if cid else "", chunk_text, st, count, offset))
    if "You check training data for faithfulness" in text:
        blocks = _json_blocks(text)
        cand = blocks[0] if blocks else {}
        ev = cand.get("evidence") or []
        squash = lambda s: re.sub(r"\s+", " ", s).strip().lower()  # noqa: E731
        ok = bool(ev) and all(squash(e) in squash(chunk_text) for e in ev)
        return _wrap_structured(req, {"supported": True} if ok else {"supported": False, "reason": "evidence not in the chunk"})
    if "was rejected:" in text and "Rejected sample" in text:
        blocks = _json_blocks(text)
        cand = blocks[0] if blocks else {}
        st = cand.get("sample_type", "concept_qa")
        cid = cand.get("chunk_id", "")
        fixed = smart_samples(cid, chunk_text, st, 1, offset=7)
        return _wrap_structured(req, fixed[0] if fixed else {})
    if "Create question-answer training samples" in text:
        out: list[dict] = []
        for cm in chunks:
            cid, ct = cm.group("id") or "", cm.group("text")
            if not smart_triage(ct)["keep"]:
                continue
            out += smart_samples(cid, ct, "concept_qa", 2) + smart_samples(cid, ct, "process_qa", 1, offset=6)
        return _wrap_structured(req, out)
    return Reply(content="OK.")


# ---------------------------------------------------------------------------------------
# the server
# ---------------------------------------------------------------------------------------


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
        msgs.append(Msg(role, _content_text(m.get("content")), calls, id_to_name.get(m.get("tool_call_id")) if role == "tool" else None))
    tools = [
        {"name": t["function"]["name"], "description": t["function"].get("description", ""), "parameters": t["function"].get("parameters", {})}
        for t in body.get("tools") or []
        if t.get("type") == "function"
    ]
    max_tokens = body.get("max_completion_tokens") or body.get("max_tokens")
    return Request("openai", body.get("model", ""), msgs, tools, body.get("tool_choice"), body.get("response_format"), max_tokens, body)


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
            results = [b for b in content if isinstance(b, dict) and b.get("type") == "tool_result"] if isinstance(content, list) else []
            if results:
                for b in results:
                    msgs.append(Msg("tool", _content_text(b.get("content")), tool_name=id_to_name.get(b.get("tool_use_id"))))
            else:
                msgs.append(Msg("user", _content_text(content)))
    tools = [{"name": t["name"], "description": t.get("description", ""), "parameters": t.get("input_schema", {})} for t in body.get("tools") or []]
    return Request("anthropic", body.get("model", ""), msgs, tools, body.get("tool_choice"), None, body.get("max_tokens"), body)


class LLMServer:
    """The test server: FastAPI app + uvicorn in a background thread, bound to 127.0.0.1.

    Args:
        port: TCP port (0 = a free port).
        script: rules tried before the smart default, see :meth:`add_rule`.
        faults: fault injection settings (mutable while running).

    Attributes:
        url: ``http://127.0.0.1:<port>``; OpenAI clients use ``url + "/v1"``.
        requests: every request received: ``{"api", "path", "model", "body", "auth", "fault"}``.
    """

    def __init__(
        self,
        port: int = 0,
        script: list[tuple[Matcher, Responder]] | None = None,
        faults: Faults | None = None,
        log_level: str = "critical",
    ):
        self.port = port or _free_port()
        self.log_level = log_level
        self.script: list[tuple[Matcher, Responder]] = list(script or [])
        self.faults = faults or Faults()
        self.rng = random.Random(self.faults.seed)
        self.requests: list[dict] = []
        self.inflight = 0
        self.max_inflight = 0
        self._lock = threading.Lock()
        self._server: uvicorn.Server | None = None
        self._thread: threading.Thread | None = None
        self.app = self._build_app()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    # -- configuration ------------------------------------------------------------------
    def add_rule(self, match: Matcher, reply: Responder) -> None:
        """Answer requests matching ``match`` (regex on the text, or callable) with ``reply``."""
        self.script.append((match, reply))

    def reset(self, faults: Faults | None = None) -> None:
        """Clear rules, request log and faults (between tests)."""
        with self._lock:
            self.script.clear()
            self.requests.clear()
            self.max_inflight = 0
            self.faults = faults or Faults()
            self.rng = random.Random(self.faults.seed)

    def set_faults(self, faults: Faults) -> None:
        with self._lock:
            self.faults = faults
            self.rng = random.Random(faults.seed)

    def wait_idle(self, timeout: float = 10.0) -> None:
        """Block until no request is being handled (e.g. a slow reply a client gave up on)."""
        deadline = time.monotonic() + timeout
        while self.inflight and time.monotonic() < deadline:
            time.sleep(0.02)
        self.max_inflight = self.inflight

    def count(self, api: str | None = None, fault: str | None = "any") -> int:
        """Number of logged requests (optionally of one API, and with a given fault)."""
        return sum(
            1 for r in self.requests if (api is None or r["api"] == api) and (fault == "any" or r["fault"] == fault)
        )

    # -- replies ------------------------------------------------------------------------
    def respond(self, req: Request) -> Reply:
        for match, reply in list(self.script):
            if _matches(match, req):
                r = reply(req) if callable(reply) else reply
                return Reply(content=r) if isinstance(r, str) else r
        return smart_reply(req)

    def _build_app(self) -> FastAPI:
        app = FastAPI(title="prepbench test LLM server")

        @app.get("/health")
        async def health() -> dict:
            return {"ok": True}

        @app.post("/v1/chat/completions")
        async def chat(request: HTTPRequest) -> Response:
            return await self._handle(request, "openai")

        @app.post("/v1/messages")
        async def messages(request: HTTPRequest) -> Response:
            return await self._handle(request, "anthropic")

        return app

    async def _handle(self, request: HTTPRequest, api: str) -> Response:
        try:
            body = await request.json()
        except Exception:
            return JSONResponse({"error": {"message": "invalid JSON body", "type": "invalid_request_error"}}, status_code=400)
        req = parse_openai(body) if api == "openai" else parse_anthropic(body)
        with self._lock:
            self.inflight += 1
            self.max_inflight = max(self.max_inflight, self.inflight)
        try:
            return await self._reply(request, api, body, req)
        finally:
            with self._lock:
                self.inflight -= 1

    async def _reply(self, request: HTTPRequest, api: str, body: dict, req: Request) -> Response:
        with self._lock:
            faults = self.faults
            fault = "down" if faults.down else faults.draw(self.rng, req)
            if faults.reject_guided and fault is None and (req.response_format or req.forced_tool()):
                fault = "400"
            auth = request.headers.get("authorization") or request.headers.get("x-api-key")
            self.requests.append({"api": api, "path": request.url.path, "model": req.model, "body": body, "auth": auth, "fault": fault})
        if faults.latency_s:
            await asyncio.sleep(faults.latency_s)
        if fault in ("down", "reset"):
            return _DropConnection()
        if fault in ("400", "429", "500", "503"):
            return _error(api, int(fault), faults.retry_after_s)
        if fault == "slow":
            await asyncio.sleep(faults.slow_s)
        reply = self.respond(req)
        if fault == "malformed" and reply.content is not None:
            reply = Reply(content=reply.content[: max(1, len(reply.content) // 2)].rstrip("}] ") + ', "oops": tru')
        elif fault == "malformed" and reply.tool_calls:
            reply = Reply(content='{"broken": ')
        if fault == "truncated":
            text = reply.content if reply.content is not None else json.dumps([tc["args"] for tc in reply.tool_calls])
            reply = Reply(content=text[: max(1, len(text) // 2)], finish_reason="length")
        if fault == "refusal":
            reply = Reply(content=None, refusal="I'm sorry, but I can't help with that request.", finish_reason="stop")
        if fault == "think" and reply.content is not None:
            reply = Reply(content="<think>\nThe user wants JSON. Let me think about {the format} first.\n</think>\n" + reply.content,
                          tool_calls=reply.tool_calls, finish_reason=reply.finish_reason)
        # honour max_tokens like a real server: cut the text and say so
        if req.max_tokens and reply.content and approx_tokens(reply.content) > req.max_tokens:
            reply = Reply(content=reply.content[: req.max_tokens * 4], finish_reason="length")
        return JSONResponse(_render(api, req, reply))

    # -- lifecycle ----------------------------------------------------------------------
    def start(self, timeout: float = 10.0) -> "LLMServer":
        """Start uvicorn in a daemon thread; return once it accepts connections."""
        config = uvicorn.Config(
            self.app, host="127.0.0.1", port=self.port, log_level=self.log_level, access_log=False,
            timeout_graceful_shutdown=1, lifespan="off",
        )
        self._server = uvicorn.Server(config)
        self._thread = threading.Thread(target=self._server.run, name="llm-test-server", daemon=True)
        self._thread.start()
        deadline = time.monotonic() + timeout
        while not self._server.started:
            if time.monotonic() > deadline or not self._thread.is_alive():
                raise RuntimeError(f"test LLM server did not start on {self.url}")
            time.sleep(0.02)
        return self

    def stop(self) -> None:
        """Stop uvicorn and join its thread."""
        if self._server is not None:
            self._server.should_exit = True
        if self._thread is not None:
            self._thread.join(timeout=10)
        self._server = self._thread = None

    def __enter__(self) -> "LLMServer":
        return self.start()

    def __exit__(self, *exc: Any) -> None:
        self.stop()


class _DropConnection(Response):
    """A response that starts, then dies: the client sees the connection drop mid-reply.

    Raising after ``http.response.start`` makes uvicorn close the transport (what a crashed
    or restarted server looks like); the error is logged by uvicorn at ERROR level.
    """

    def __init__(self) -> None:
        super().__init__(content=b"", status_code=200)

    async def __call__(self, scope: dict, receive: Any, send: Any) -> None:
        await send({"type": "http.response.start", "status": 200, "headers": [(b"content-length", b"1000")]})
        await send({"type": "http.response.body", "body": b'{"id": "chatcmpl-', "more_body": True})
        raise ConnectionResetError("injected connection reset")


def _error(api: str, status: int, retry_after: float) -> JSONResponse:
    headers = {"retry-after": f"{retry_after:g}"} if status in (429, 503) else {}
    if api == "anthropic":
        kind = {400: "invalid_request_error", 429: "rate_limit_error", 500: "api_error", 503: "overloaded_error"}[status]
        body = {"type": "error", "error": {"type": kind, "message": f"injected {status}"}}
    else:
        kind = {400: "invalid_request_error", 429: "rate_limit_exceeded", 500: "server_error", 503: "server_error"}[status]
        body = {"error": {"message": f"injected {status}", "type": kind, "code": kind}}
    return JSONResponse(body, status_code=status, headers=headers)


def _render(api: str, req: Request, reply: Reply) -> dict:
    prompt_tokens = approx_tokens(req.text + json.dumps(req.tools))
    out_text = (reply.content or "") + "".join(json.dumps(tc["args"]) for tc in reply.tool_calls) + (reply.refusal or "")
    completion_tokens = max(1, approx_tokens(out_text))
    if api == "anthropic":
        content: list[dict] = []
        if reply.content is not None:
            content.append({"type": "text", "text": reply.content})
        if reply.refusal:
            content.append({"type": "text", "text": reply.refusal})
        for tc in reply.tool_calls:
            content.append({"type": "tool_use", "id": "toolu_" + uuid.uuid4().hex[:20], "name": tc["name"], "input": tc["args"]})
        stop = {"stop": "end_turn", "length": "max_tokens", "tool_calls": "tool_use"}.get(reply.finish_reason, "end_turn")
        if reply.refusal:
            stop = "refusal"
        return {
            "id": "msg_" + uuid.uuid4().hex[:24],
            "type": "message",
            "role": "assistant",
            "model": req.model,
            "content": content,
            "stop_reason": stop,
            "stop_sequence": None,
            "usage": {"input_tokens": prompt_tokens, "output_tokens": completion_tokens},
        }
    message: dict[str, Any] = {"role": "assistant", "content": reply.content, "refusal": reply.refusal}
    if reply.tool_calls:
        message["tool_calls"] = [
            {"id": "call_" + uuid.uuid4().hex[:20], "type": "function", "function": {"name": tc["name"], "arguments": json.dumps(tc["args"])}}
            for tc in reply.tool_calls
        ]
    return {
        "id": "chatcmpl-" + uuid.uuid4().hex[:24],
        "object": "chat.completion",
        "created": int(time.time()),
        "model": req.model,
        "choices": [{"index": 0, "message": message, "finish_reason": reply.finish_reason, "logprobs": None}],
        "usage": {"prompt_tokens": prompt_tokens, "completion_tokens": completion_tokens, "total_tokens": prompt_tokens + completion_tokens},
    }


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def main(argv: list[str] | None = None) -> None:
    """Run the server in the foreground: ``python tests/llm_server.py --port 8000``."""
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--port", type=int, default=8000)
    ap.add_argument("--latency", type=float, default=0.0, help="seconds added to every reply")
    for kind in Faults.KINDS:
        ap.add_argument(f"--rate-{kind}", type=float, default=0.0, help=f"probability of a '{kind}' fault per request")
    ap.add_argument("--seed", type=int, default=0)
    a = ap.parse_args(argv)
    faults = Faults(latency_s=a.latency, seed=a.seed, **{f"rate_{k}": getattr(a, f"rate_{k}") for k in Faults.KINDS})
    srv = LLMServer(port=a.port, faults=faults)
    print(f"test LLM server on {srv.url} (OpenAI base URL {srv.url}/v1); Ctrl-C stops it", flush=True)
    uvicorn.run(srv.app, host="127.0.0.1", port=srv.port, log_level="info", lifespan="off")


if __name__ == "__main__":
    main()
