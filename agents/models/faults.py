"""What a failed model call means: its kind, whether to retry it, and what to tell the user.

:func:`classify` maps an exception of any client (langchain-core's ``Model*Error``, the
openai / anthropic SDKs, httpx) to ``(kind, retryable)``. Kinds:

``timeout`` ``rate_limit`` ``connection`` ``server``  retried; the first three and 503 also
    shrink the adaptive concurrency (:mod:`prepbench.agents.models.concurrency`);
``bad_reply``   an answer that is not a completion (a body cut short, no ``choices``): retried;
``unsupported`` a 4xx/5xx whose body says the *request shape* is not supported
    (``response_format`` of type ``json_schema``, ``tools``, ``tool_choice``): a capability
    answer, never retried, never counted against the circuit; the structured-output layer
    falls back to the next mode;
``context``     the prompt does not fit the server's context (its size is read from the body);
``auth`` ``not_found``  401/403 and 404 (an unknown model or path): the same for every
    request, so the run stops at once with advice to fix the flag;
``client``      any other 4xx: not retried.

:func:`stop_advice` turns the circuit's verdict into what to do, which differs by cause: retry
later (the server is down, overloaded or failing) or change a flag (key, model, base URL).
"""

from __future__ import annotations

import asyncio
import email.utils
import json
import re
import time
from typing import Sequence

RETRYABLE_STATUS = {408, 409, 425, 429, 500, 502, 503, 504, 529}
#: Kinds that end the run at once: every later request would fail the same way.
FATAL_KINDS = ("auth", "not_found")
#: Kinds that count toward the circuit (the server looks unreachable or broken).
UNREACHABLE_KINDS = ("connection", "timeout", "server")

_SHAPE = re.compile(r"response_format|json_schema|json_object|guided|tool_choice|\btools?\b|function", re.I)
_REFUSED = re.compile(
    r"not supported|unsupported|does not support|doesn't support|input should be|extra inputs are not permitted|"
    r"not permitted|unrecognized|unknown (field|parameter|argument)|not implemented|invalid (value|type)|"
    r"not allowed|cannot be used",
    re.I,
)
_CONTEXT = re.compile(r"(?:maximum context length is|context window of|context length of|n_ctx[ =:]+)\s*(\d{3,7})", re.I)


def status_of(exc: BaseException) -> int | None:
    """The HTTP status of a client error, else None."""
    status = getattr(exc, "status_code", None)
    if status is None:
        status = getattr(getattr(exc, "response", None), "status_code", None)
    return status if isinstance(status, int) else None


def error_body(exc: BaseException) -> str:
    """The server's answer behind a client error (the HTTP body), else the exception's text."""
    resp = getattr(exc, "response", None)
    text = None
    try:
        text = getattr(resp, "text", None)
    except Exception:  # noqa: BLE001 - an unread streaming body
        text = None
    if not text:
        body = getattr(exc, "body", None)
        text = json.dumps(body, ensure_ascii=False) if body is not None else str(exc)
    return str(text)


def unsupported_shape(exc: BaseException) -> bool:
    """True when a 4xx/5xx answer says the request's shape (structured output, tools) is not supported."""
    status = status_of(exc)
    if status is None or status < 400 or status in (401, 403, 404, 408, 429):
        return False
    text = f"{exc} {error_body(exc)}"
    return bool(_SHAPE.search(text) and _REFUSED.search(text))


def context_size(exc: BaseException | str) -> int | None:
    """The server's context size (tokens) named in a context-length error, else None."""
    text = exc if isinstance(exc, str) else f"{exc} {error_body(exc)}"
    m = _CONTEXT.search(text)
    return int(m.group(1)) if m else None


def retry_after_seconds(exc: BaseException) -> float | None:
    """The ``Retry-After`` of an HTTP error (seconds or an HTTP date), else None."""
    resp = getattr(exc, "response", None)
    headers = getattr(resp, "headers", None)
    if not headers:
        return None
    raw = headers.get("retry-after-ms")
    if raw:
        try:
            return float(raw) / 1000.0
        except ValueError:
            pass
    raw = headers.get("retry-after")
    if not raw:
        return None
    try:
        return max(0.0, float(raw))
    except ValueError:
        try:
            dt = email.utils.parsedate_to_datetime(raw)
            return max(0.0, dt.timestamp() - time.time())
        except (TypeError, ValueError):
            return None


def classify(exc: BaseException) -> tuple[str, bool]:
    """``(kind, retryable)`` of an exception raised by a chat-model call (kinds: module docstring).

    Uses langchain-core's unified ``Model*Error`` classes where the integration raises
    them, then the status code and body, and the class names of the openai/anthropic/httpx
    errors. A reply that is not a completion is ``bad_reply`` and retryable: a body that is
    not JSON (``json.JSONDecodeError`` from the SDK's response parsing) or a completion with
    no choices (``EmptyReplyError``).
    """
    names = {c.__name__ for c in type(exc).__mro__}
    if isinstance(exc, json.JSONDecodeError) or "EmptyReplyError" in names:
        return "bad_reply", True
    status = status_of(exc)
    if isinstance(exc, (asyncio.TimeoutError, TimeoutError)) or names & {
        "ModelTimeoutError",
        "APITimeoutError",
        "TimeoutException",
    }:
        return "timeout", True
    if "ModelRateLimitError" in names or "RateLimitError" in names or status == 429:
        return "rate_limit", True
    if names & {"ModelConnectionError", "APIConnectionError", "TransportError", "ConnectError", "RemoteProtocolError"} or (
        isinstance(exc, (ConnectionError, OSError))
    ):
        return "connection", True
    if unsupported_shape(exc):
        return "unsupported", False
    if status is not None and status >= 400 and context_size(exc):
        return "context", False
    if status in (401, 403):
        return "auth", False
    if status == 404:
        return "not_found", False
    if status is not None:
        return ("server", True) if status in RETRYABLE_STATUS else ("client", False)
    if names & {"InternalServerError", "OverloadedError", "ServiceUnavailableError"}:
        return "server", True
    return "client", False


def redact(text: str, secrets: Sequence[str]) -> str:
    """``text`` with every secret (API keys) replaced by ``***``."""
    for s in secrets:
        if s and len(s) >= 4:
            text = text.replace(s, "***")
    return text


def stop_advice(kind: str, spec: str, base_url: str | None = None, timeout_s: float | None = None) -> str:
    """What to do when the run stopped on failures of ``kind`` (the last one before the circuit opened).

    Args:
        kind: a :func:`classify` kind.
        spec: the model spec (``openai:<model>``).
        base_url: the server URL, when known.
        timeout_s: ``--timeout``, for the timeout advice.
    """
    where = base_url or "the model server"
    model = spec.split(":", 1)[-1]
    resume = "then run the same command again to resume (everything recorded is kept)"
    if kind == "connection":
        return f"nothing answers at {where}: start the server (or fix --base-url), {resume}"
    if kind == "timeout":
        t = f"{timeout_s:g} s" if timeout_s else "--timeout"
        return (
            f"{where} did not answer within {t}: it is overloaded or the replies are long; retry later, or raise "
            f"--timeout, lower --concurrency or --max-tokens, {resume}"
        )
    if kind == "server":
        return f"{where} keeps failing (HTTP 5xx): look at the server's log; once it is well, {resume}"
    if kind == "auth":
        return f"{where} refused the credentials (HTTP 401/403): set OPENAI_API_KEY or ANTHROPIC_API_KEY, {resume}"
    if kind == "not_found":
        return (
            f"{where} does not serve model '{model}' (HTTP 404): check --model against GET {where.rstrip('/')}/models "
            f"and --base-url, {resume}"
        )
    return f"see the last error above; {resume}"
