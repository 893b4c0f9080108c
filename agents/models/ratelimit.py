"""Resilient model calls: bounded concurrency, RPM/TPM limits, retries, timeouts, a circuit.

Every chat-model request of prepbench goes through :class:`ResilientChat`:

- **Concurrency**: at most ``CallPolicy.concurrency`` requests in flight, adapted to the
  server (:class:`~prepbench.agents.models.concurrency.AdaptiveLimit`: halved on timeouts,
  429 and 503, grown back on success); a slot is held only while a request is on the wire,
  and its latency and timeout run from the send, not from the wait for a slot.
- **Rate limits**: optional requests-per-minute and tokens-per-minute budgets
  (:class:`RateLimiter`, a sliding 60 s window; a request's tokens are estimated from its
  prompt, then corrected with the usage the server reports).
- **Retries**: 429, 408/409, 5xx, timeouts, dropped connections and replies that are not a
  completion (a JSON body cut short, an OpenAI reply with no ``choices``) are retried up to
  ``max_retries`` times with exponential backoff and full jitter (the "Exponential Backoff
  And Jitter" scheme, AWS Architecture Blog, 2015), honouring the server's ``Retry-After``
  header on 429/503. Other 4xx errors fail at once; an answer that the request's shape
  is unsupported is a capability answer, not a fault (:mod:`prepbench.agents.models.faults`).
- **Timeouts**: every attempt has a deadline (the client's own timeout, plus an asyncio guard).
- **Circuit breaker**: after ``circuit_threshold`` consecutive failed attempts of the
  "server unreachable" kind (connection errors, timeouts, 5xx) with no success in between,
  the circuit opens and every call raises :class:`CircuitOpenError` — a
  :class:`~prepbench.agents.base.StopRun`, so the agent stops cleanly and leaves the chunks
  it has not recorded ``pending`` (not failed) for the next run. An answer that will be the
  same for every request (401/403, 404 for the model) opens it at once. The stop carries its
  cause and the advice that fits it (retry later, or change a flag).

**Batch mode** (``--batch``, :mod:`prepbench.agents.models.batch`): with ``batch`` set, an attempt
is not sent over HTTP but handed to the batch collector (no concurrency slot, no per-request
timeout: a job may take hours, its deadline is the collector's); its latency runs from the
hand-over to the result, and its cost is at the table's batch price.

Each attempt, failed or not, yields a :class:`~prepbench.tools.ledger.CallRecord` (tokens,
USD cost from the price table, latency from send, error, the raw reply or error body) so the
ledger accounts for retries too. API keys are redacted from every error text.
"""

from __future__ import annotations

import asyncio
import json
import random
import time
from collections import deque
from dataclasses import dataclass, field
from typing import Any, Sequence

from langchain_core.callbacks import BaseCallbackHandler
from langchain_core.messages import BaseMessage, convert_to_messages

from prepbench.agents.base import StopRun
from prepbench.agents.models.batch_protocols import BatchItemError
from prepbench.agents.models.concurrency import AdaptiveLimit
from prepbench.agents.models.faults import (  # noqa: F401 - classify, redact, retry_after_seconds: the layer's API
    FATAL_KINDS,
    UNREACHABLE_KINDS,
    classify,
    context_size,
    error_body,
    redact,
    retry_after_seconds,
    status_of,
    stop_advice,
)
from prepbench.agents.models.openai_direct import EMPTY, agenerate_direct
from prepbench.tools.errors import PrepbenchError
from prepbench.tools.ledger import REPLY_CHARS, CallRecord


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


def unbind(runnable: Any) -> tuple[Any, dict[str, Any]] | None:
    """``(chat model, call kwargs)`` of a chat model bound with ``.bind()`` / ``.bind_tools()`` (nested
    bindings merged, the outer one winning, as ``RunnableBinding`` does); None for anything else."""
    from langchain_core.language_models import BaseChatModel
    from langchain_core.runnables import RunnableBinding

    kwargs: dict[str, Any] = {}
    r = runnable
    while isinstance(r, RunnableBinding) and not r.config and not r.config_factories:
        kwargs = {**r.kwargs, **kwargs}
        r = r.bound
    return (r, kwargs) if isinstance(r, BaseChatModel) else None


async def _invoke_checked(runnable: Any, messages: Any) -> Any:
    """The reply (an ``AIMessage``) of ``runnable`` to ``messages``; an empty reply raises
    :class:`EmptyReplyError`, not LangChain's IndexError.

    A chat model (bound or not) is called through ``BaseChatModel.agenerate`` with the binding's
    keyword arguments, the documented call that ``ainvoke`` makes after building a
    ``RunnableBinding`` config and a callback handler per request: the same request and reply for
    about 0.2 ms less client CPU per request (``benchmarks/throughput.py``), and the result's
    generations show an empty reply without a callback. A plain ``ChatOpenAI`` skips
    ``agenerate``'s layers too (:mod:`prepbench.agents.models.openai_direct`).
    """
    target = unbind(runnable)
    if target is None:
        probe = _ReplyProbe()
        try:
            return await runnable.ainvoke(messages, config={"callbacks": [probe]})
        except IndexError:
            if probe.empty:
                raise EmptyReplyError("the server replied with no choices (an empty completion)") from None
            raise
    model, kwargs = target
    if isinstance(messages, str) or any(not isinstance(m, BaseMessage) for m in messages):
        messages = convert_to_messages([("human", messages)] if isinstance(messages, str) else messages)
    # a plain ChatOpenAI: the same request and reply without LangChain's per-request layers
    msg = await agenerate_direct(model, list(messages), kwargs)
    if msg is EMPTY:
        raise EmptyReplyError("the server replied with no choices (an empty completion)")
    if msg is not None:
        return msg
    result = await model.agenerate([list(messages)], **kwargs)
    if not result.generations or not result.generations[0]:
        raise EmptyReplyError("the server replied with no choices (an empty completion)")
    return result.generations[0][0].message


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
    """The model server looks down for good (or refuses every request the same way): stop the
    run, leave unrecorded chunks pending; ``cause`` and ``advice`` say why and what to do."""

    def __init__(self, message: str, calls: Sequence[CallRecord] = (), cause: str = "server", advice: str = ""):
        super().__init__(message, cause=cause, advice=advice, calls=calls)


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


@dataclass
class Circuit:
    """Consecutive unreachable-kind failures (open at ``threshold``), or one fatal one (auth, an
    unknown model: open at once); ``kind`` and ``reason`` are the verdict's cause and last error."""

    threshold: int
    failures: int = 0
    open: bool = False
    reason: str = ""
    kind: str = ""

    def success(self) -> None:
        self.failures = 0

    def failure(self, kind: str, detail: str) -> None:
        if kind in UNREACHABLE_KINDS:
            self.failures += 1
        if kind in FATAL_KINDS or (kind in UNREACHABLE_KINDS and self.failures >= self.threshold):
            self.open, self.reason, self.kind = True, detail, kind


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
        factory: rebuilds the model for a new event loop (remote clients).
        base_url: the server's URL (for the probe and the stop advice), when known.
        batch: a :class:`~prepbench.agents.models.batch.BatchCollector`: requests go into provider
            batch jobs instead of over HTTP (``--batch``); None: online.

    Attributes:
        capabilities: what the server is known to support, from the probe
            (:mod:`prepbench.agents.models.probe`) and from its answers: ``context_tokens``
            (int or None), ``structured`` (the mode chosen), ``tools_auto`` (bool or None).
        out_rate: output tokens per second of recent replies (an EWMA; None before the first),
            for the token cap of a retried cut reply.
        limit: the adaptive concurrency (:class:`~prepbench.agents.models.concurrency.AdaptiveLimit`).
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
        base_url: str | None = None,
        batch: Any = None,
    ):
        self._model = model
        self.batch = batch
        self.factory = factory
        self._loop: Any = None
        self.spec = spec
        self.provider = provider
        self.base_url = base_url
        self.policy = policy or CallPolicy()
        self.prices = prices
        self.secrets = [s for s in secrets if s]
        self.limit = AdaptiveLimit(self.policy.concurrency)
        self.limiter = RateLimiter(self.policy.rpm, self.policy.tpm)
        self.circuit = Circuit(self.policy.circuit_threshold)
        self.stats = Stats()
        self.model_name = spec.split(":", 1)[1] if ":" in spec else spec
        self.capabilities: dict[str, Any] = {"context_tokens": None, "structured": None, "tools_auto": None}
        self.out_rate: float | None = None

    @property
    def model(self) -> Any:
        """The chat model, bound to the running event loop.

        asyncio primitives and HTTP connection pools belong to one event loop; when a new
        loop uses this object (a second ``asyncio.run`` in the same process), the concurrency
        limit and rate limiter are renewed and the model is rebuilt with ``factory`` (if given).
        """
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            return self._model
        if loop is not self._loop:
            if self._loop is not None and self.factory is not None:
                self._model = self.factory()
            self._loop = loop
            self.limit = AdaptiveLimit(self.policy.concurrency)
            self.limiter = RateLimiter(self.policy.rpm, self.policy.tpm)
            if self.batch is not None:
                self.batch.renew()
        return self._model

    def _cost(self, tin: int, tout: int) -> float:
        if self.prices is None:
            return 0.0
        return float(self.prices.cost(self.model_name, tin, tout, batch=self.batch is not None))

    def _backoff(self, attempt: int, exc: BaseException, kind: str) -> float:
        """Seconds to wait before retrying: ``Retry-After`` where the server gives one, else full
        jitter; after a timeout at least the timeout (up to ``backoff_max_s``), since a server that
        does not cancel abandoned requests (llama.cpp's) is most likely still working on it, and a
        retry at once would only queue behind it."""
        if self.batch is not None and isinstance(exc, BatchItemError):
            return 0.0  # the job's own wait was the backoff; the retries of one job go into one new job
        ra = retry_after_seconds(exc) if kind in ("rate_limit", "server") else None
        if ra is not None:
            return min(ra, self.policy.backoff_max_s)
        ceiling = min(self.policy.backoff_max_s, self.policy.backoff_base_s * (2**attempt))
        wait = random.uniform(0, ceiling)  # full jitter
        return max(wait, min(self.policy.timeout_s, self.policy.backoff_max_s)) if kind == "timeout" else wait

    def stop(self, calls: list[CallRecord]) -> CircuitOpenError:
        """The stop of an open circuit, with its cause and the advice that fits it."""
        kind = self.circuit.kind or "server"
        what = (
            "refuses every request" if kind in FATAL_KINDS else f"unreachable after {self.circuit.failures} consecutive failures"
        )
        return CircuitOpenError(
            f"model server {self.spec} {what}: {self.circuit.reason}",
            calls,
            cause=kind,
            advice=stop_advice(kind, self.spec, self.base_url, self.policy.timeout_s),
        )

    async def _send(self, runnable: Any, messages: Any) -> tuple[Any, BaseException | None, float, float]:
        """One attempt in a concurrency slot: ``(message or None, exception or None, sent_at, seconds)``;
        the seconds run from the send, not from the wait for a slot."""
        async with self.limit.slot() as sent_at:
            self.stats.requests += 1
            t0 = time.perf_counter()
            try:
                # asyncio.timeout, not wait_for: Python 3.11's wait_for returns a reply that lands as the
                # task is cancelled and drops the cancellation (a Ctrl-C then went unheard for minutes)
                async with asyncio.timeout(self.policy.timeout_s + 5):
                    msg = await _invoke_checked(runnable, messages)
            except (asyncio.CancelledError, KeyboardInterrupt):
                raise
            except Exception as e:  # noqa: BLE001 - classified by the caller
                return None, e, sent_at, time.perf_counter() - t0
            return msg, None, sent_at, time.perf_counter() - t0

    async def _send_batch(self, runnable: Any, messages: Any, node: str) -> tuple[Any, BaseException | None, float, float]:
        """One attempt through the batch collector: the request body the online client would send,
        answered from a batch job (same return as :meth:`_send`; a :class:`StopRun` propagates)."""
        from langchain_core.language_models import BaseChatModel

        target = unbind(runnable) or ((runnable, {}) if isinstance(runnable, BaseChatModel) else None)
        if target is None:
            raise PrepbenchError("--batch: a request that is not a chat-model call cannot be batched")
        model, kwargs = target
        if isinstance(messages, str) or any(not isinstance(m, BaseMessage) for m in messages):
            messages = convert_to_messages([("human", messages)] if isinstance(messages, str) else messages)
        protocol = self.batch.protocol
        self.stats.requests += 1
        sent_at, t0 = time.monotonic(), time.perf_counter()
        try:
            body = protocol.body(model, list(messages), kwargs)
            msg = await self.batch.request(model, body, node, lambda reply: protocol.message(model, reply, kwargs))
        except (asyncio.CancelledError, KeyboardInterrupt, StopRun):
            raise
        except Exception as e:  # noqa: BLE001 - classified by the caller
            return None, e, sent_at, time.perf_counter() - t0
        return msg, None, sent_at, time.perf_counter() - t0

    def _failed(self, node: str, e: BaseException, sent_at: float, latency: float) -> tuple[str, bool, str, CallRecord]:
        """Account a failed attempt: ``(kind, retryable, detail, its call record)``."""
        kind, retryable = classify(e)
        detail = redact(f"{type(e).__name__}: {str(e).splitlines()[0] if str(e) else ''}"[:300], self.secrets)
        body = redact(error_body(e)[:REPLY_CHARS], self.secrets) if status_of(e) is not None else None
        self.stats.by_kind[kind] = self.stats.by_kind.get(kind, 0) + 1
        if kind in ("timeout", "rate_limit") or status_of(e) == 503:
            self.limit.overload(sent_at)
        if kind == "context":
            self.capabilities["context_tokens"] = context_size(e) or self.capabilities.get("context_tokens")
        self.circuit.failure(kind, detail)
        return (
            kind,
            retryable,
            detail,
            CallRecord(node=node, model=self.spec, latency_s=latency, ok=False, error=detail, reply=body),
        )

    def _succeeded(self, node: str, msg: Any, latency: float, est: int) -> CallRecord:
        """Account a reply: tokens, cost, the output rate and the adaptive limit."""
        self.circuit.success()
        self.limit.success()
        usage = getattr(msg, "usage_metadata", None) or {}
        tin, tout = int(usage.get("input_tokens", 0) or 0), int(usage.get("output_tokens", 0) or 0)
        self.limiter.correct(est, tin + tout)
        if tout >= 16 and latency > 0 and self.batch is None:  # a batch's latency says nothing of the speed
            rate = tout / latency
            self.out_rate = rate if self.out_rate is None else 0.7 * self.out_rate + 0.3 * rate
        cost = self._cost(tin, tout)
        self.stats.ok += 1
        self.stats.input_tokens += tin
        self.stats.output_tokens += tout
        self.stats.cost_usd += cost
        return CallRecord(
            node=node,
            model=self.spec,
            input_tokens=tin,
            output_tokens=tout,
            cost_usd=cost,
            latency_s=latency,
            reply=reply_text(msg)[:REPLY_CHARS],
        )

    async def ainvoke(self, messages: Any, *, node: str, runnable: Any = None) -> tuple[Any, list[CallRecord]]:
        """Send ``messages``; return ``(AIMessage, [CallRecord per attempt])``.

        Args:
            messages: LangChain input (list of messages or a string).
            node: the calling node (``triage``, ``generate``, ``repair``, ``judge``, ``react``...).
            runnable: the bound model to call (e.g. ``model.bind(max_tokens=...)``); default the model.

        Raises:
            CircuitOpenError: the server is down for good, or refuses every request (a StopRun).
            ModelCallError: the call failed after its retries, or with a non-retryable error.
        """
        model = self.model  # renews loop-bound state first (see the property)
        runnable = runnable or model
        calls: list[CallRecord] = []
        est = _estimate_tokens(messages)
        for attempt in range(self.policy.max_retries + 1):
            if self.circuit.open:
                raise self.stop(calls)
            await self.limiter.acquire(est)
            if self.batch is not None:
                msg, e, sent_at, latency = await self._send_batch(runnable, messages, node)
            else:
                msg, e, sent_at, latency = await self._send(runnable, messages)
            if e is None:
                calls.append(self._succeeded(node, msg, latency, est))
                return msg, calls
            kind, retryable, detail, record = self._failed(node, e, sent_at, latency)
            calls.append(record)
            if self.circuit.open:
                self.stats.failures += 1
                raise self.stop(calls) from None
            if not retryable or attempt == self.policy.max_retries:
                self.stats.failures += 1
                raise ModelCallError(
                    f"{node} call failed ({kind}) after {attempt + 1} attempt(s): {detail}", kind, calls
                ) from None
            self.stats.retries += 1
            await asyncio.sleep(self._backoff(attempt, e, kind))
        raise AssertionError("unreachable")  # the loop returns or raises


def reply_text(msg: Any) -> str:
    """A reply as text for the ledger: its text content, then its tool calls' arguments as JSON."""
    content = getattr(msg, "content", "")
    if isinstance(content, list):
        content = "".join(b.get("text", "") if isinstance(b, dict) else str(b) for b in content)
    calls = [{"name": c.get("name"), "args": c.get("args")} for c in getattr(msg, "tool_calls", None) or []]
    bad = [{"name": c.get("name"), "args": c.get("args")} for c in getattr(msg, "invalid_tool_calls", None) or []]
    tail = json.dumps(calls + bad, ensure_ascii=False) if calls or bad else ""
    return (str(content or "") + ("\n" if content and tail else "") + tail)[: REPLY_CHARS * 2]


def _estimate_tokens(messages: Any) -> int:
    """Prompt tokens estimate (≈ 4 characters per token) for the TPM budget."""
    if isinstance(messages, str):
        return len(messages) // 4 + 1
    total = 0
    for m in messages or []:
        content = getattr(m, "content", m if isinstance(m, str) else "")
        total += len(str(content)) // 4 + 4
    return total
