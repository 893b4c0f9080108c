"""Model specs → chat models and generators.

A model spec is a string:

``extractive``         the offline rule-based generator (no LLM; :mod:`prepbench.agents.extractive`).
``openai:<model>``     any OpenAI-compatible server through ``langchain-openai`` (OpenAI, vLLM,
                       SGLang, Ollama, LM Studio); base URL from ``base_url=`` (``--base-url``)
                       or ``OPENAI_BASE_URL``; key from ``OPENAI_API_KEY`` (optional: local
                       servers get a placeholder).
``anthropic:<model>``  the Anthropic Messages API through ``langchain-anthropic``; base URL from
                       ``base_url=`` or ``ANTHROPIC_BASE_URL``; key from ``ANTHROPIC_API_KEY``.
``vllm:<path>``        in-process vLLM on a GPU (imported lazily; requests are micro-batched into
                       one ``LLM.chat`` call).
``hf:<path>``          a local transformers chat model (CPU or GPU), one request at a time.

:func:`make_chat_model` returns a LangChain chat model with its own retries switched off;
:func:`make_resilient_chat` puts it behind the call policy of :mod:`prepbench.agents.models.ratelimit`
(concurrency, RPM/TPM, retries, circuit) with the price table of :mod:`prepbench.agents.models.prices`;
:func:`make_generator` is what the pipeline calls.
"""

from __future__ import annotations

import os
import sys
from typing import Any

from prepbench.tools.errors import ModelSpecError, PrepbenchError

PROVIDERS = ("openai", "anthropic", "vllm", "hf")
LOCAL_PLACEHOLDER_KEY = "not-needed"


def parse_spec(spec: str) -> tuple[str, str]:
    """Split a model spec into ``(provider, model)``; ``extractive`` gives ``("extractive", "")``.

    Raises:
        ModelSpecError: empty, unknown provider, or no model after the colon.
    """
    s = (spec or "").strip()
    if s == "extractive":
        return "extractive", ""
    if ":" not in s:
        raise ModelSpecError(
            f"unknown model spec '{spec}': use extractive, openai:<model>, anthropic:<model>, vllm:<path> or hf:<path>"
        )
    provider, model = s.split(":", 1)
    if provider not in PROVIDERS:
        raise ModelSpecError(f"unknown model provider '{provider}' in '{spec}' (known: extractive, {', '.join(PROVIDERS)})")
    if not model.strip():
        raise ModelSpecError(f"model spec '{spec}' names no model after '{provider}:'")
    return provider, model.strip()


def _api_key(provider: str, api_key: str | None, api_key_env: str | None) -> str | None:
    if api_key:
        return api_key
    env = api_key_env or {"openai": "OPENAI_API_KEY", "anthropic": "ANTHROPIC_API_KEY"}[provider]
    return os.environ.get(env) or None


def make_chat_model(
    spec: str,
    *,
    base_url: str | None = None,
    api_key: str | None = None,
    api_key_env: str | None = None,
    timeout: float = 120.0,
    temperature: float | None = None,
    max_tokens: int = 2048,
    model_kwargs: dict[str, Any] | None = None,
) -> Any:
    """A LangChain chat model for ``spec`` (retries off: :class:`ResilientChat` retries).

    Args:
        spec: ``openai:<model>`` | ``anthropic:<model>`` | ``vllm:<path>`` | ``hf:<path>``.
        base_url: server URL (OpenAI: ``.../v1``); default from ``OPENAI_BASE_URL`` / ``ANTHROPIC_BASE_URL``.
        api_key: the key; default from ``api_key_env`` or the provider's environment variable.
        timeout: request timeout, seconds.
        temperature: sampling temperature (None = the server's default).
        max_tokens: default output limit, tokens.
        model_kwargs: extra keyword arguments for the LangChain class.

    Raises:
        ModelSpecError: bad spec, ``extractive`` (not a chat model), missing Anthropic key,
            missing vllm/transformers, or a local model path that does not exist.
    """
    provider, model = parse_spec(spec)
    extra = dict(model_kwargs or {})
    if temperature is not None:
        extra["temperature"] = temperature
    if provider == "extractive":
        raise ModelSpecError("'extractive' is the offline generator, not a chat model; use openai:<model> or anthropic:<model>")
    if provider == "openai":
        url = base_url or os.environ.get("OPENAI_BASE_URL") or None
        ChatOpenAI = _server_chat_class() if url and "api.openai.com" not in url else _openai_chat_class()
        key = _api_key("openai", api_key, api_key_env)
        if key is None:
            if url is None:
                raise ModelSpecError(
                    f"'{spec}': set OPENAI_API_KEY for api.openai.com, or --base-url / OPENAI_BASE_URL for a local OpenAI-compatible server"
                )
            key = LOCAL_PLACEHOLDER_KEY  # local servers (vLLM, SGLang, Ollama) ignore it
        return ChatOpenAI(
            model=model,
            base_url=url,
            api_key=key,
            max_retries=0,
            timeout=timeout,
            max_tokens=max_tokens,
            http_async_client=_fresh_async_http_client(timeout),
            **extra,
        )
    if provider == "anthropic":
        from langchain_anthropic import ChatAnthropic

        url = base_url or os.environ.get("ANTHROPIC_BASE_URL") or None
        key = _api_key("anthropic", api_key, api_key_env)
        if key is None:
            if url is None:
                raise ModelSpecError(f"'{spec}': set ANTHROPIC_API_KEY (or --base-url for an Anthropic-compatible local server)")
            key = LOCAL_PLACEHOLDER_KEY
        kw: dict[str, Any] = {"base_url": url} if url else {}
        m = ChatAnthropic(
            model=model, api_key=key, max_retries=0, default_request_timeout=timeout, max_tokens=max_tokens, **kw, **extra
        )
        _fresh_anthropic_client(m)
        return m
    if provider == "vllm":
        return VLLMChatModel.create(model, max_tokens=max_tokens, **extra)
    return HFChatModel.create(model, max_tokens=max_tokens, **extra)


def _openai_chat_class() -> Any:
    from langchain_openai import ChatOpenAI

    return ChatOpenAI


_SERVER_CHAT: list[Any] = []


def _server_chat_class() -> Any:
    """``ChatOpenAI`` for OpenAI-compatible servers other than OpenAI's: the request carries the
    output limit as ``max_tokens`` as well as ``max_completion_tokens``.

    langchain-openai sends only ``max_completion_tokens`` (OpenAI's name since 2024); llama-cpp-python's
    server (and other older servers) read only ``max_tokens`` and ignore the other, so a reply ran
    on to the end of the context (6,425 tokens in 573 s for a ``--max-tokens 256`` request, measured
    against SmolLM2-135M). Servers that know both (vLLM, SGLang) use the same value.
    """
    if not _SERVER_CHAT:
        from langchain_openai import ChatOpenAI

        class ServerChatOpenAI(ChatOpenAI):
            def _get_request_payload(self, input_: Any, *, stop: Any = None, **kwargs: Any) -> dict:
                payload = super()._get_request_payload(input_, stop=stop, **kwargs)
                if payload.get("max_completion_tokens") is not None:
                    payload["max_tokens"] = payload["max_completion_tokens"]
                return payload

        _SERVER_CHAT.append(ServerChatOpenAI)
    return _SERVER_CHAT[0]


def _fresh_async_http_client(timeout: float) -> Any:
    """A new async HTTP client for one OpenAI model object.

    langchain-openai and langchain-anthropic share one cached async httpx client per base
    URL across the process; its connections belong to the event loop that first used it,
    so a second ``asyncio.run`` (a second run in the same process) would fail with "Event
    loop is closed". Each model built here gets its own client instead.

    The client is the openai SDK's own class (``openai.DefaultAsyncHttpxClient``: httpx2 /
    httpcore2 in openai 3.x), not a plain ``httpx.AsyncClient``: the httpx 0.x connection
    pool spends milliseconds of CPU per request re-checking every pooled connection
    (``benchmarks/throughput.py`` measured about 3x the client CPU per request at
    concurrency 32), which caps the requests/s one event loop can keep in flight.
    """
    limits = {"max_connections": 512, "max_keepalive_connections": 256}
    try:
        from openai import DefaultAsyncHttpxClient
    except ImportError:  # an openai SDK without it: plain httpx
        DefaultAsyncHttpxClient = None
    if DefaultAsyncHttpxClient is not None:
        base = next((c for c in DefaultAsyncHttpxClient.__mro__ if c.__name__ == "AsyncClient"), None)
        mod = sys.modules.get(base.__module__.split(".")[0]) if base is not None else None
        if mod is not None and hasattr(mod, "Limits"):
            return DefaultAsyncHttpxClient(timeout=timeout, limits=mod.Limits(**limits))
    import httpx

    return httpx.AsyncClient(timeout=timeout, limits=httpx.Limits(**limits))


def _fresh_anthropic_client(model: Any) -> None:
    """Give a ChatAnthropic its own async client (see :func:`_fresh_async_http_client`)."""
    try:
        from langchain_anthropic import _client_utils

        _client_utils._get_default_async_httpx_client.cache_clear()
        model._async_client  # noqa: B018 - builds the (cached_property) client on this fresh httpx client
    except (ImportError, AttributeError):  # a future langchain-anthropic without the cache
        pass


def make_resilient_chat(spec: str, **opts: Any) -> Any:
    """``make_chat_model(spec)`` behind a :class:`~prepbench.agents.models.ratelimit.CallPolicy`.

    Options (all optional): ``base_url``, ``api_key``, ``api_key_env``, ``timeout`` (s),
    ``temperature``, ``max_tokens``, ``concurrency``, ``rpm``, ``tpm``, ``max_retries``,
    ``backoff_base`` (s), ``backoff_max`` (s), ``circuit_threshold``, ``prices`` (a YAML
    file merged over the shipped table), ``model_kwargs``; ``batch`` (True: requests go into the
    provider's batch jobs, :mod:`prepbench.agents.models.batch`; ``openai:`` and ``anthropic:``
    only), ``batch_poll`` (s between looks at a job), ``batch_deadline`` (s a job may run).

    Raises:
        ModelSpecError, PrepbenchError: bad spec or option (``batch`` with another provider).
    """
    from prepbench.agents.models.batch_protocols import JOB_CAPS
    from prepbench.agents.models.prices import PriceTable
    from prepbench.agents.models.ratelimit import CallPolicy, ResilientChat

    provider, _ = parse_spec(spec)
    timeout = float(opts.get("timeout") or 120.0)
    api_key = opts.get("api_key")
    batch = bool(opts.get("batch"))
    if batch and provider not in ("openai", "anthropic"):
        raise ModelSpecError(f"--batch: '{spec}' has no batch API; use an openai:<model> or anthropic:<model> spec")

    def factory() -> Any:
        return make_chat_model(
            spec,
            base_url=opts.get("base_url"),
            api_key=api_key,
            api_key_env=opts.get("api_key_env"),
            timeout=timeout,
            temperature=opts.get("temperature"),
            max_tokens=int(opts.get("max_tokens") or 2048),
            model_kwargs=opts.get("model_kwargs"),
        )

    chat = factory()
    policy = CallPolicy(
        concurrency=JOB_CAPS[provider] if batch else int(opts.get("concurrency") or 8),
        rpm=opts.get("rpm"),
        tpm=opts.get("tpm"),
        max_retries=int(opts["max_retries"]) if opts.get("max_retries") is not None else 5,
        backoff_base_s=float(opts.get("backoff_base") or 0.5),
        backoff_max_s=float(opts.get("backoff_max") or 30.0),
        timeout_s=timeout,
        circuit_threshold=int(opts.get("circuit_threshold") or 10),
    )
    secrets = [s for s in (api_key, os.environ.get("OPENAI_API_KEY"), os.environ.get("ANTHROPIC_API_KEY")) if s]
    # remote clients are rebuilt for a new event loop; local models (hf, vllm) are kept
    rebuild = factory if provider in ("openai", "anthropic") else None
    base_url = opts.get("base_url") or os.environ.get(
        {"openai": "OPENAI_BASE_URL", "anthropic": "ANTHROPIC_BASE_URL"}.get(provider, "")
    )
    return ResilientChat(
        chat,
        spec,
        policy,
        PriceTable.load(opts.get("prices")),
        secrets=secrets,
        provider=provider,
        factory=rebuild,
        base_url=base_url or None,
        batch=_batch_collector(provider, opts, base_url or None, secrets) if batch else None,
    )


def _batch_collector(provider: str, opts: dict[str, Any], base_url: str | None, secrets: list[str]) -> Any:
    """The :class:`~prepbench.agents.models.batch.BatchCollector` of a ``--batch`` run.

    Raises:
        PrepbenchError: a poll interval or deadline that is not positive.
    """
    from prepbench.agents.models.batch import BatchCollector, BatchSettings
    from prepbench.agents.models.batch_protocols import protocol_for

    settings = BatchSettings()
    for name, attr in (("batch_poll", "poll_s"), ("batch_deadline", "deadline_s")):
        value = opts.get(name)
        if value is not None:
            if float(value) <= 0:
                raise PrepbenchError(f"--{name.replace('_', '-')} must be positive seconds (got {value})")
            setattr(settings, attr, float(value))
    return BatchCollector(protocol_for(provider), settings, base_url=base_url, secrets=tuple(secrets))


#: Options of make_generator consumed by the LLM generator itself (the rest go to the chat layer).
GENERATOR_OPTIONS = ("structured", "judge", "parse_retries", "max_tokens_cap", "examples_per_prompt")


def make_generator(spec: str, **opts: Any) -> Any:
    """Resolve a model spec to a :class:`~prepbench.agents.base.Generator`.

    ``extractive`` gives the offline :class:`~prepbench.agents.extractive.ExtractiveGenerator`;
    any other spec an :class:`~prepbench.agents.llm.LLMGenerator` over
    :func:`make_resilient_chat` (options as there, plus ``structured`` (mode), ``judge``
    (bool), ``parse_retries``, ``max_tokens_cap``, ``examples_per_prompt``).

    Raises:
        ModelSpecError: unknown spec or a missing backend.
    """
    provider, _ = parse_spec(spec)
    if provider == "extractive":
        from prepbench.agents.extractive import ExtractiveGenerator

        return ExtractiveGenerator()
    from prepbench.agents.llm import LLMGenerator
    from prepbench.agents.models.structured import StructuredConfig

    gen_opts = {k: opts.pop(k) for k in GENERATOR_OPTIONS if k in opts}
    chat = make_resilient_chat(spec, **opts)
    cfg = StructuredConfig(
        mode=gen_opts.get("structured") or "auto",
        max_tokens=int(opts.get("max_tokens") or 2048),
        max_tokens_cap=int(gen_opts["max_tokens_cap"]) if gen_opts.get("max_tokens_cap") else None,
        parse_retries=int(gen_opts["parse_retries"]) if gen_opts.get("parse_retries") is not None else 2,
    )
    return LLMGenerator(
        chat,
        structured=cfg,
        judge=bool(gen_opts.get("judge")),
        examples_per_prompt=int(gen_opts["examples_per_prompt"]) if gen_opts.get("examples_per_prompt") is not None else 2,
    )


class _LazyClass:
    """Defers importing the local-model classes (:mod:`prepbench.agents.models.local`) until one is used."""

    def __init__(self, name: str):
        self.name = name

    def __getattr__(self, attr: str) -> Any:
        from prepbench.agents.models import local

        return getattr(getattr(local, self.name), attr)


HFChatModel = _LazyClass("HFChatModel")
VLLMChatModel = _LazyClass("VLLMChatModel")


def describe_spec(spec: str) -> dict[str, str]:
    """A printable description of a spec without secrets: ``{"provider", "model"}``."""
    try:
        provider, model = parse_spec(spec)
    except PrepbenchError:
        return {"provider": "?", "model": spec}
    return {"provider": provider, "model": model}
