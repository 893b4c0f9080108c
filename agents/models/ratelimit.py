"""Resilient model calls: bounded concurrency, RPM/TPM limits, retries, timeouts, a circuit.

Every chat-model request of prepbench goes through :class:`ResilientChat`:

- **Concurrency**: at most ``CallPolicy.concurrency`` requests in flight (an
  ``asyncio.Semaphore``; held only while a request is on the wire, not while backing off).
- **Rate limits**: optional requests-per-minute and tokens-per-minute budgets
  (:class:`RateLimiter`, a sliding 60 s window; a request's tokens are estimated from its
  prompt, then corrected with the usage the server reports).
- **Retries**: 429, 408/409, 5xx, timeouts, dropped connections and replies that are not a
  completion (a JSON body cut short, an OpenAI reply with no ``choices``) are retried up to
  ``max_retries`` times with exponential backoff and full jitter (the "Exponential Backoff
  And Jitter" scheme, AWS Architecture Blog, 2015), honouring the server's ``Retry-After``
  header on 429/503. Other 4xx errors (bad request, auth) fail at once.
- **Timeouts**: every attempt has a deadline (the client's own timeout, plus an asyncio guard).
- **Circuit breaker**: after ``circuit_threshold`` consecutive failed attempts of the
  "server unreachable" kind (connection errors, timeouts, 5xx) with no success in between,
  the circuit opens and every call raises :class:`CircuitOpenError` — a
  :class:`~prepbench.agents.base.StopRun`, so the agent stops cleanly and leaves the chunks
  it has not recorded ``pending`` (not failed) for the next run.

Each attempt, failed or not, yields a :class:`~prepbench.tools.ledger.CallRecord` (tokens,
USD cost from the price table, latency, error) so the ledger accounts for retries too. API
keys are redacted from every error text.
"""

from __future__ import annotations

import asyncio
import email.utils
import json
import random
import time
from collections import deque
from dataclasses import dataclass, field
from typing import Any, Sequence

from langchain_core.callbacks import BaseCallbackHandler

from prepbench.agents.base import StopRun
from prepbench.tools.errors import PrepbenchError
from prepbench.tools.ledger import CallRecord

RETRYABLE_STATUS = {408, 409, 425, 429, 500, 502, 503, 504, 529}


@dataclass
class CallPolicy:
    """How model calls are bounded and retried.

    Attributes:
        concurrency: requests in flight at most.
        rpm: requests per minute (None = unlimited).
        tpm: tokens (input + output) per minute (None = unlimited).
        max_retries: retries after the first attempt (so ``max_retries + 1`` attempts).
        backoff_base_s: first backoff ceiling in seconds; doubles per retry.
        backoff_max_s: largest backoff (and largest honoured ``Retry-After``), seconds.
        timeout_s: deadline of one attempt, seconds.
        circuit_threshold: consecutive unreachable-kind failures that open the circuit.
    """

    concurrency: int = 8
    rpm: float | None = None
    tpm: float | None = None
    max_retries: int = 5
    backoff_base_s: float = 0.5
    backoff_max_s: float = 30.0
    timeout_s: float = 120.0
    circuit_threshold: int = 10

    def __post_init__(self) -> None:
        if self.concurrency < 1:
            raise PrepbenchError(f"concurrency must be at least 1 (got {self.concurrency})")
        if self.max_retries < 0:
            raise PrepbenchError(f"max_retries must be >= 0 (got {self.max_retries})")
        for name in ("rpm", "tpm"):
            v = getattr(self, name)
            if v is not None and v <= 0:
                raise PrepbenchError(f"--{name} must be positive (got {v})")
        if self.timeout_s <= 0:
            raise PrepbenchError(f"timeout must be positive (got {self.timeout_s})")


class EmptyReplyError(Exception):
    """The server answered 200 with a well-formed body that holds no completion (``"choices": []``)."""


class _ReplyProbe(BaseCallbackHandler):
    """A LangChain callback handler that sees the raw result of one call (before LangChain
    indexes its first generation), so an empty reply is told apart from a bug."""

    run_inline = True

    def __init__(self) -> None:
        self.empty = False

    def on_llm_end(self, response: Any, **kwargs: Any) -> None:
        """Note a result without generations (the server sent no choices)."""
        gens = getattr(response, "generations", None)
        self.empty = not gens or not gens[0]


async def _invoke_checked(runnable: Any, messages: Any) -> Any:
    """``runnable.ainvoke(messages)``; an empty reply raises :class:`EmptyReplyError`, not LangChain's IndexError."""
    probe = _ReplyProbe()
    try:
        return await runnable.ainvoke(messages, config={"callbacks": [probe]})
    except IndexError:
        if probe.empty:
            raise EmptyReplyError("the server replied with no choices (an empty completion)") from None
        raise


class ModelCallError(Exception):
    """A model call that failed for good (after its retries, or not retryable).

    Attributes:
        kind: ``rate_limit`` | ``server`` | ``timeout`` | ``connection`` | ``bad_reply`` |
            ``client`` | ``refusal`` | ``parse`` | ``truncated``.
        calls: the :class:`CallRecord` of every attempt, for the ledger.
    """

    def __init__(self, message: str, kind: str = "server", calls: Sequence[CallRecord] = ()):
        super().__init__(message)
        self.kind = kind
        self.calls = list(calls)


class CircuitOpenError(StopRun):
    """The model server looks down for good: stop the run, leave unrecorded chunks pending."""

    def __init__(self, message: str, calls: Sequence[CallRecord] = ()):
        super().__init__(message)
        self.calls = list(calls)


class RateLimiter:
    """Requests-per-minute and tokens-per-minute budgets over a sliding 60 s window.

    Args:
        rpm: requests per minute, or None.
        tpm: tokens per minute, or None.
        window_s: window length in seconds (60; tests may shorten it).
    """

    def __init__(self, rpm: float | None = None, tpm: float | None = None, window_s: float = 60.0):
        self.rpm, self.tpm, self.window_s = rpm, tpm, window_s
        self._reqs: deque[float] = deque()
        self._toks: deque[tuple[float, int]] = deque()
        self._lock = asyncio.Lock()

    def _prune(self, now: float) -> None:
        while self._reqs and now - self._reqs[0] >= self.window_s:
            self._reqs.popleft()
        while self._toks and now - self._toks[0][0] >= self.window_s:
            self._toks.popleft()

    async def acquire(self, tokens: int = 0) -> None:
        """Wait until one more request of ``tokens`` estimated tokens fits both budgets."""
        if self.rpm is None and self.tpm is None:
            return
        async with self._lock:
            while True:
                now = time.monotonic()
                self._prune(now)
                waits = []
                if self.rpm is not None and len(self._reqs) >= self.rpm:
                    waits.append(self._reqs[0] + self.window_s - now)
                if self.tpm is not None and self._toks:
                    used = sum(t for _, t in self._toks)
                    if used + tokens > self.tpm:
                        waits.append(self._toks[0][0] + self.window_s - now)
                if not waits:
                    self._reqs.append(now)
                    self._toks.append((now, tokens))
                    return
                await asyncio.sleep(max(0.001, min(waits)))

    def correct(self, estimated: int, actual: int) -> None:
        """Replace the estimate of the latest matching request with the server-reported tokens."""
        if self.tpm is None:
            return
        for i in range(len(self._toks) - 1, -1, -1):
            ts, t = self._toks[i]
            if t == estimated:
                self._toks[i] = (ts, actual)
                return


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
    """``(kind, retryable)`` of an exception raised by a chat-model call.

    Uses langchain-core's unified ``Model*Error`` classes where the integration raises
    them, then the status code and the class names of the openai/anthropic/httpx errors.
    A reply that is not a completion is ``bad_reply`` and retryable: a body that is not
    JSON (``json.JSONDecodeError`` from the SDK's response parsing: cut short, garbled)
    or a completion with no choices (:class:`EmptyReplyError`).
    """
    if isinstance(exc, (json.JSONDecodeError, EmptyReplyError)):
        return "bad_reply", True
    names = {c.__name__ for c in type(exc).__mro__}
    status = getattr(exc, "status_code", None)
    if status is None:
        status = getattr(getattr(exc, "response", None), "status_code", None)
    if isinstance(exc, (asyncio.TimeoutError, TimeoutError)) or names & {
        "ModelTimeoutError",
        "APITimeoutError",
        "TimeoutException",
    }:
        return "timeout", True
    if "ModelRateLimitError" in names or "RateLimitError" in names or status == 429:
        return "rate_limit", True
    if names & {
        "ModelConnectionError",
        "APIConnectionError",
        "TransportError",
        "ConnectError",
        "RemoteProtocolError",
    } or isinstance(exc, (ConnectionError, OSError)):
        return "connection", True
    if isinstance(status, int):
        if status in RETRYABLE_STATUS:
            return "server", True
        return "client", False
    if names & {"InternalServerError", "OverloadedError", "ServiceUnavailableError"}:
        return "server", True
    return "client", False


def redact(text: str, secrets: Sequence[str]) -> str:
    """``text`` with every secret (API keys) replaced by ``***``."""
    for s in secrets:
        if s and len(s) >= 4:
            text = text.replace(s, "***")
    return text


@dataclass
class Circuit:
    """Consecutive unreachable-kind failures; open at ``threshold``."""

    threshold: int
    failures: int = 0
    open: bool = False
    reason: str = ""

    def success(self) -> None:
        self.failures = 0

    def failure(self, kind: str, detail: str) -> None:
        if kind in ("connection", "timeout", "server"):
            self.failures += 1
            if self.failures >= self.threshold:
                self.open = True
                self.reason = detail


@dataclass
class Stats:
    """Counters of a :class:`ResilientChat` (for progress bars and benchmarks)."""

    requests: int = 0
    ok: int = 0
    retries: int = 0
    failures: int = 0
    input_tokens: int = 0
    output_tokens: int = 0
    cost_usd: float = 0.0
    by_kind: dict[str, int] = field(default_factory=dict)


class ResilientChat:
    """A chat model behind the :class:`CallPolicy` (concurrency, limits, retries, circuit).

    Args:
        model: a LangChain chat model (``BaseChatModel``), created with its own retries off.
        spec: the model spec, recorded as ``CallRecord.model``.
        policy: limits and retry settings.
        prices: a :class:`~prepbench.agents.models.prices.PriceTable` (None = zero cost).
        secrets: strings to redact from error texts (API keys).
        provider: ``openai`` | ``anthropic`` | ``vllm`` | ``hf`` (structured-output strategy).
    """

    def __init__(
        self,
        model: Any,
        spec: str,
        policy: CallPolicy | None = None,
        prices: Any = None,
        secrets: Sequence[str] = (),
        provider: str = "openai",
        factory: Any = None,
    ):
        self._model = model
        self.factory = factory
        self._loop: Any = None
        self.spec = spec
        self.provider = provider
        self.policy = policy or CallPolicy()
        self.prices = prices
        self.secrets = [s for s in secrets if s]
        self.sem = asyncio.Semaphore(self.policy.concurrency)
        self.limiter = RateLimiter(self.policy.rpm, self.policy.tpm)
        self.circuit = Circuit(self.policy.circuit_threshold)
        self.stats = Stats()
        self.model_name = spec.split(":", 1)[1] if ":" in spec else spec

    @property
    def model(self) -> Any:
        """The chat model, bound to the running event loop.

        asyncio primitives and HTTP connection pools belong to one event loop; when a new
        loop uses this object (a second ``asyncio.run`` in the same process), the semaphore
        and rate limiter are renewed and the model is rebuilt with ``factory`` (if given).
        """
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            return self._model
        if loop is not self._loop:
            if self._loop is not None and self.factory is not None:
                self._model = self.factory()
            self._loop = loop
            self.sem = asyncio.Semaphore(self.policy.concurrency)
            self.limiter = RateLimiter(self.policy.rpm, self.policy.tpm)
        return self._model

    def _cost(self, tin: int, tout: int) -> float:
        return float(self.prices.cost(self.model_name, tin, tout)) if self.prices is not None else 0.0

    def _backoff(self, attempt: int, exc: BaseException, kind: str) -> float:
        ra = retry_after_seconds(exc) if kind in ("rate_limit", "server") else None
        if ra is not None:
            return min(ra, self.policy.backoff_max_s)
        ceiling = min(self.policy.backoff_max_s, self.policy.backoff_base_s * (2**attempt))
        return random.uniform(0, ceiling)  # full jitter

    async def ainvoke(self, messages: Any, *, node: str, runnable: Any = None) -> tuple[Any, list[CallRecord]]:
        """Send ``messages``; return ``(AIMessage, [CallRecord per attempt])``.

        Args:
            messages: LangChain input (list of messages or a string).
            node: the calling node (``triage``, ``generate``, ``repair``, ``judge``, ``react``...).
            runnable: the bound model to call (e.g. ``model.bind(max_tokens=...)``); default the model.

        Raises:
            CircuitOpenError: the server is down for good (a StopRun).
            ModelCallError: the call failed after its retries, or with a non-retryable error.
        """
        model = self.model  # renews loop-bound state first (see the property)
        runnable = runnable or model
        calls: list[CallRecord] = []
        est = _estimate_tokens(messages)
        for attempt in range(self.policy.max_retries + 1):
            if self.circuit.open:
                raise CircuitOpenError(f"model server {self.spec} unreachable: {self.circuit.reason}", calls)
            await self.limiter.acquire(est)
            t0 = time.perf_counter()
            try:
                async with self.sem:
                    self.stats.requests += 1
                    msg = await asyncio.wait_for(_invoke_checked(runnable, messages), timeout=self.policy.timeout_s + 5)
            except (asyncio.CancelledError, KeyboardInterrupt):
                raise
            except Exception as e:  # noqa: BLE001 - classified below
                latency = time.perf_counter() - t0
                kind, retryable = classify(e)
                detail = redact(f"{type(e).__name__}: {str(e).splitlines()[0] if str(e) else ''}"[:300], self.secrets)
                calls.append(CallRecord(node=node, model=self.spec, latency_s=latency, ok=False, error=detail))
                self.stats.by_kind[kind] = self.stats.by_kind.get(kind, 0) + 1
                self.circuit.failure(kind, detail)
                if self.circuit.open:
                    self.stats.failures += 1
                    raise CircuitOpenError(
                        f"model server {self.spec} unreachable after {self.circuit.failures} consecutive failures: {detail}",
                        calls,
                    ) from None
                if not retryable or attempt == self.policy.max_retries:
                    self.stats.failures += 1
                    raise ModelCallError(
                        f"{node} call failed ({kind}) after {attempt + 1} attempt(s): {detail}", kind, calls
                    ) from None
                self.stats.retries += 1
                await asyncio.sleep(self._backoff(attempt, e, kind))
                continue
            latency = time.perf_counter() - t0
            self.circuit.success()
            usage = getattr(msg, "usage_metadata", None) or {}
            tin, tout = int(usage.get("input_tokens", 0) or 0), int(usage.get("output_tokens", 0) or 0)
            self.limiter.correct(est, tin + tout)
            cost = self._cost(tin, tout)
            self.stats.ok += 1
            self.stats.input_tokens += tin
            self.stats.output_tokens += tout
            self.stats.cost_usd += cost
            calls.append(
                CallRecord(node=node, model=self.spec, input_tokens=tin, output_tokens=tout, cost_usd=cost, latency_s=latency)
            )
            return msg, calls
        raise AssertionError("unreachable")  # the loop returns or raises


def _estimate_tokens(messages: Any) -> int:
    """Prompt tokens estimate (≈ 4 characters per token) for the TPM budget."""
    if isinstance(messages, str):
        return len(messages) // 4 + 1
    total = 0
    for m in messages or []:
        content = getattr(m, "content", m if isinstance(m, str) else "")
        total += len(str(content)) // 4 + 4
    return total
