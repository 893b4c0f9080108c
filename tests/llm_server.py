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

The batch protocols (OpenAI ``/v1/files`` + ``/v1/batches``, Anthropic ``/v1/messages/batches``)
are in ``tests/llm_batches.py`` (``LLMServer.batches``): the same replies, after a completion delay.

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
``think`` (a ``<think>`` block before the answer), ``400`` (bad request), ``truncated_body``
(a complete HTTP 200 whose JSON body stops halfway), ``empty_choices`` (a well-formed OpenAI
reply with ``"choices": []``), plus a fixed
``latency_s``. ``Faults.rules`` force a fault on requests matching a pattern (e.g. a chunk
id); ``reject_guided=True`` answers 400 to ``response_format``/forced-tool requests, like a
server without guided decoding. Server personalities: ``refuse_json_schema`` answers
``response_format`` of type ``json_schema`` with llama-cpp-python's HTTP 500 ("Input should be
'text' or 'json_object'"); ``ignore_tools`` drops the ``tools`` of every request, like a chat
template without tool calling; ``plain_qa`` ignores ``response_format`` and tools and answers
every chunk prompt with a fenced JSON array of ``{"question", "answer"}`` (the shape most models
reply in); ``serial`` serves one request at a time while the others queue, and a request
whose client gave up still runs to its end (llama-cpp-python's server). The probe's "Say hello." is answered with ``{"answer": 1}`` through whatever channel
the request asked for (the server honours guided output), else in text. The reply is
also cut to the request's ``max_tokens`` (≈ 4 characters per token) with
``finish_reason=length``, as a real server does. ``down=True`` drops every connection.

Use as a pytest fixture (``llm_server`` in ``tests/conftest.py``) or by hand::

    python tests/llm_server.py --port 8000 --latency 0.1
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import json
import random
import socket
import threading
import time
import uuid
from typing import Any

import uvicorn
from fastapi import FastAPI
from fastapi import Request as HTTPRequest
from fastapi.responses import JSONResponse, Response

# ---------------------------------------------------------------------------------------
# request / reply model
# ---------------------------------------------------------------------------------------
from llm_batches import BatchAPI  # noqa: E402
from llm_messages import Faults, Matcher, Msg, Reply, Request, Responder, matches, parse_anthropic, parse_openai  # noqa: E402,F401
from llm_replies import (  # noqa: E402,F401
    _CHUNK_RE,
    _heading_of,
    _wrap_structured,
    approx_tokens,
    smart_reply,
    topic_of,
    usable_sentences,
)


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
        self._slot: asyncio.Lock | None = None
        self._thread: threading.Thread | None = None
        self.batches = BatchAPI(self)
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
        self.batches.reset()

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
        return sum(1 for r in self.requests if (api is None or r["api"] == api) and (fault == "any" or r["fault"] == fault))

    # -- replies ------------------------------------------------------------------------
    def respond(self, req: Request) -> Reply:
        for match, reply in list(self.script):
            if matches(match, req):
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

        self.batches.add_routes(app)
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
            if self.faults.serial:  # a one-slot server: requests queue, an abandoned one still runs to its end
                self._slot = self._slot or asyncio.Lock()
                async with self._slot:
                    return await self._reply(request, api, body, req)
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
            self.requests.append(
                {"api": api, "path": request.url.path, "model": req.model, "body": body, "auth": auth, "fault": fault}
            )
        if faults.latency_s:
            await asyncio.sleep(faults.latency_s)
        rf_type = (req.response_format or {}).get("type")
        if faults.refuse_json_schema and rf_type == "json_schema" and fault is None:
            return JSONResponse(LLAMA_CPP_PYTHON_500, status_code=500)
        if faults.ignore_tools or faults.plain_qa:
            req = dataclasses.replace(req, tools=[], tool_choice=None)
        if faults.plain_qa:
            req = dataclasses.replace(req, response_format=None)
        if fault in ("down", "reset"):
            return _DropConnection()
        if fault in ("400", "401", "404", "429", "500", "503"):
            return _error(api, int(fault), faults.retry_after_s)
        if fault == "context":  # OpenAI's / vLLM's / llama-cpp-python's words for a prompt that does not fit
            msg = (
                f"This model's maximum context length is {faults.context_tokens} tokens. However, you requested "
                f"{faults.context_tokens + 100} tokens. Please reduce the length of the messages or completion."
            )
            body = {"error": {"message": msg, "type": "invalid_request_error", "code": "context_length_exceeded"}}
            return JSONResponse(body, status_code=400)
        if fault == "slow":
            await asyncio.sleep(faults.slow_s)
        reply = plain_qa_reply(req) if faults.plain_qa else self.respond(req)
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
            reply = Reply(
                content="<think>\nThe user wants JSON. Let me think about {the format} first.\n</think>\n" + reply.content,
                tool_calls=reply.tool_calls,
                finish_reason=reply.finish_reason,
            )
        # honour max_tokens like a real server: cut the text and say so
        if req.max_tokens and reply.content and approx_tokens(reply.content) > req.max_tokens:
            reply = Reply(content=reply.content[: req.max_tokens * 4], finish_reason="length")
        rendered = _render(api, req, reply)
        if fault == "empty_choices" and api == "openai":
            rendered["choices"] = []
        if fault == "truncated_body":  # a complete HTTP reply whose JSON body stops halfway
            raw = json.dumps(rendered).encode()
            return Response(raw[: len(raw) // 2], status_code=200, media_type="application/json")
        return JSONResponse(rendered)

    # -- lifecycle ----------------------------------------------------------------------
    def start(self, timeout: float = 10.0) -> "LLMServer":
        """Start uvicorn in a daemon thread; return once it accepts connections."""
        config = uvicorn.Config(
            self.app,
            host="127.0.0.1",
            port=self.port,
            log_level=self.log_level,
            access_log=False,
            timeout_graceful_shutdown=1,
            lifespan="off",
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


#: llama-cpp-python 0.3's answer to ``response_format: {"type": "json_schema"}`` (HTTP 500).
LLAMA_CPP_PYTHON_500 = {
    "error": {
        "message": "1 validation error:\n  {'type': 'literal_error', 'loc': ('body', 'response_format', 'type'), "
        "'msg': \"Input should be 'text' or 'json_object'\", 'input': 'json_schema'}",
        "type": "internal_server_error",
        "param": None,
        "code": None,
    }
}


def plain_qa_reply(req: Request) -> Reply:
    """A server that ignores every output format: a fenced JSON array of question/answer pairs per chunk prompt."""
    chunks = [m.group("text") for m in _CHUNK_RE.finditer(req.text)]
    if not chunks:
        return Reply(content="Hello! How can I help you today?")
    pairs = [
        {"question": f"What does the text say about {topic_of(_heading_of(t))}?", "answer": s}
        for t in chunks
        for s in usable_sentences(t)[:2]
    ]
    return Reply(content="Here are some question-answer pairs:\n\n```json\n" + json.dumps(pairs, indent=2) + "\n```\n")


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
        kind = {400: "invalid_request_error", 401: "authentication_error", 404: "not_found_error", 429: "rate_limit_error"}.get(
            status, "overloaded_error" if status == 503 else "api_error"
        )
        body = {"type": "error", "error": {"type": kind, "message": f"injected {status}"}}
    else:
        kind = {400: "invalid_request_error", 401: "invalid_api_key", 404: "model_not_found", 429: "rate_limit_exceeded"}.get(
            status, "server_error"
        )
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
            {
                "id": "call_" + uuid.uuid4().hex[:20],
                "type": "function",
                "function": {"name": tc["name"], "arguments": json.dumps(tc["args"])},
            }
            for tc in reply.tool_calls
        ]
    return {
        "id": "chatcmpl-" + uuid.uuid4().hex[:24],
        "object": "chat.completion",
        "created": int(time.time()),
        "model": req.model,
        "choices": [{"index": 0, "message": message, "finish_reason": reply.finish_reason, "logprobs": None}],
        "usage": {
            "prompt_tokens": prompt_tokens,
            "completion_tokens": completion_tokens,
            "total_tokens": prompt_tokens + completion_tokens,
        },
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
