"""The model layer: model specs, chat clients, rate limits and retries, structured output, prices.

``specs``       model spec strings -> chat models and generators (:func:`make_generator`)
``ratelimit``   the call policy: concurrency, RPM/TPM, retries with backoff, the circuit
``structured``  JSON replies: guided decoding, tool calls or prompt-and-parse
``prices``      USD per 1M tokens (``prices.yaml``)
"""

from prepbench.agents.models.specs import describe_spec, make_chat_model, make_generator, make_resilient_chat, parse_spec

__all__ = ["describe_spec", "make_chat_model", "make_generator", "make_resilient_chat", "parse_spec"]
