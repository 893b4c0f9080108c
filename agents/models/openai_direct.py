"""An OpenAI chat completion without LangChain's per-request layers: the same request, the same reply.

``BaseChatModel.agenerate`` wraps every request of a ``ChatOpenAI`` in layers prepbench does not
use: a callback manager and a run (serialising the prompt for tracers nobody listens to), the LLM
cache lookup, the model's rate limiter, and ``_create_chat_result`` sent to a thread pool and back
(``run_in_executor``), which costs a thread hand-off per request. Measured with
``benchmarks/throughput.py`` (cProfile, concurrency 32), those layers took about a fifth of the
agent's request path besides the openai SDK itself.

:func:`agenerate_direct` makes the calls ``ChatOpenAI._agenerate`` makes, in its order: the
request payload from ``_get_request_payload`` (so the body is byte for byte the same, the
``max_tokens`` copy of :mod:`.specs` included), ``async_client.with_raw_response.create``, the raw
response parsed, langchain-openai's own error translation, ``_create_chat_result`` (here, inline),
and the response metadata merged the way ``_agenerate_with_cache`` merges it. It serves only the
plain case and answers None for anything else, which the caller then sends through ``agenerate``:
a model with callbacks, a cache, a rate limiter, streaming, response headers, or output version
``v1``; LangSmith tracing on; a payload with ``response_format`` (langchain-openai's ``parse`` path)
or one for the Responses API.
"""

from __future__ import annotations

import functools
from typing import Any


@functools.cache
def _chat_openai_class() -> Any:
    """langchain-openai's ``BaseChatOpenAI`` (looked up once: an import statement per request
    costs a lookup in ``sys.modules`` and the package's attributes), or None when not installed."""
    try:
        from langchain_openai.chat_models.base import BaseChatOpenAI
    except ImportError:
        return None
    return BaseChatOpenAI


def _plain_model(model: Any) -> bool:
    """The model is a ``ChatOpenAI`` configured with nothing the direct call would skip (read on
    every call: a few attribute reads, and a model's callbacks may be set after it was built)."""
    cls = _chat_openai_class()
    return (
        cls is not None
        and isinstance(model, cls)
        and not model.callbacks
        and model.cache in (None, False)
        and model.rate_limiter is None
        and not model.streaming
        and not model.include_response_headers
        and model.output_version in (None, "v0")
        and model.async_client is not None
    )


def _observed() -> bool:
    """A global LLM cache or LangSmith tracing is on: ``agenerate`` must see the request."""
    from langchain_core.globals import get_llm_cache
    from langchain_core.tracers.context import _tracing_v2_is_enabled

    return get_llm_cache() is not None or bool(_tracing_v2_is_enabled())


async def agenerate_direct(model: Any, messages: list, kwargs: dict[str, Any]) -> Any:
    """The ``AIMessage`` reply of ``model`` to ``messages`` (LangChain messages) with the call
    arguments ``kwargs`` (a binding's: ``max_tokens``, ``extra_body``, ``tools``...), or None when
    the request is not the plain case (see the module docstring) and must go through ``agenerate``.

    Returns:
        The first generation's message, or ``EMPTY`` (this module's marker) when the server sent
        no choices.

    Raises:
        openai.APIError and the errors langchain-openai translates it into, as ``agenerate`` would.
    """
    if not _plain_model(model) or _observed():
        return None
    payload = model._get_request_payload(messages, stop=None, **kwargs)
    if "response_format" in payload or payload.get("stream") or model._use_responses_api(payload):
        return None
    return await _send(model, payload)


EMPTY = object()


async def _send(model: Any, payload: dict[str, Any]) -> Any:
    import openai
    from langchain_core.language_models.chat_models import _gen_info_and_msg_metadata
    from langchain_openai.chat_models import base as lco

    raw_response = None
    try:
        raw_response = await model.async_client.with_raw_response.create(**payload)
        response = raw_response.parse()
    except openai.BadRequestError as e:
        lco._handle_openai_bad_request(e)
        raise  # the handler re-raises; this keeps a handler that returns from hiding the error
    except openai.APIError as e:
        lco._handle_openai_api_error(e)
        raise
    except Exception as e:
        if raw_response is not None and hasattr(raw_response, "http_response"):
            e.response = raw_response.http_response  # type: ignore[attr-defined]
        raise
    generation_info: dict[str, Any] = {}
    lco._add_gateway_metadata(generation_info, raw_response)
    result = model._create_chat_result(response, generation_info)
    for generation in result.generations:  # as _agenerate_with_cache leaves them
        generation.message.response_metadata = _gen_info_and_msg_metadata(generation)
    if len(result.generations) == 1 and result.llm_output is not None:
        message = result.generations[0].message
        message.response_metadata = {**result.llm_output, **message.response_metadata}
    if not result.generations:
        return EMPTY
    return result.generations[0].message
