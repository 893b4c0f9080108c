"""The providers' batch protocols, spoken through their official SDKs.

``openai``     ``POST /v1/files`` (a JSONL of ``{"custom_id", "method", "url", "body"}``, purpose
               ``batch``), ``POST /v1/batches`` (``completion_window`` 24h), then
               ``GET /v1/batches/{id}`` until it ends and ``GET /v1/files/{id}/content`` of its
               output and error files; a line's ``response.body`` is a chat completion.
``anthropic``  ``POST /v1/messages/batches`` (``requests: [{"custom_id", "params"}]``), then
               ``GET /v1/messages/batches/{id}`` until ``processing_status`` is ``ended`` and its
               ``results`` (JSONL: ``succeeded`` with a message, ``errored``, ``canceled``, ``expired``).

A request body is built exactly as the online client builds it (langchain-openai's and
langchain-anthropic's ``_get_request_payload`` with the binding's keyword arguments), and a
result becomes the ``AIMessage`` the online client would return (``_create_chat_result``,
``_format_output``), so structured-output parsing, the gate and the recorder see the same.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

#: Requests one job may hold, by provider (OpenAI: 50,000 per batch; Anthropic: 100,000).
JOB_CAPS = {"openai": 50_000, "anthropic": 100_000}
#: The SDK's own call options: not part of the HTTP body.
_SDK_ONLY = ("extra_headers", "extra_query", "timeout")
#: Anthropic error types as the HTTP status the online API answers them with (for classify).
ANTHROPIC_STATUS = {
    "invalid_request_error": 400,
    "authentication_error": 401,
    "permission_error": 403,
    "not_found_error": 404,
    "request_too_large": 413,
    "rate_limit_error": 429,
    "api_error": 500,
    "overloaded_error": 529,
}


class BatchItemError(Exception):
    """A batch item the provider answered with an error (classified like an online error by its
    ``status_code``: 429 and 5xx are retried in a new job, 4xx are not); ``body`` is its error."""

    def __init__(self, message: str, status_code: int, body: Any = None):
        super().__init__(message)
        self.status_code = status_code
        self.body = body


@dataclass
class JobState:
    """A job as last seen: ``status`` (the provider's word), ``ended`` (it will not change),
    ``counts`` (``{"done", "failed", "total"}`` requests), ``problem`` (why a failed job failed)."""

    job_id: str
    status: str
    ended: bool
    counts: dict[str, int] = field(default_factory=dict)
    problem: str = ""
    raw: Any = None


def _body_of(payload: dict) -> dict:
    """The HTTP body of an SDK call's payload: ``extra_body`` merged in, SDK-only options dropped."""
    body = {k: v for k, v in payload.items() if k not in _SDK_ONLY and k != "extra_body" and v is not None}
    body.update(payload.get("extra_body") or {})
    return body


class OpenAIBatches:
    """OpenAI's Batch API (``/v1/files`` + ``/v1/batches``) for ``ChatOpenAI`` requests."""

    provider = "openai"
    endpoint = "/v1/chat/completions"

    def body(self, model: Any, messages: list, kwargs: dict) -> dict:
        """The chat-completions body ``model`` would send for ``messages`` with ``kwargs``.

        Raises:
            ValueError: the request would go to the Responses API (not batched here).
        """
        payload = model._get_request_payload(messages, **kwargs)
        if model._use_responses_api(payload):
            raise ValueError("--batch sends chat completions; this request would use the Responses API")
        payload.pop("stream", None)
        return _body_of(payload)

    def message(self, model: Any, reply: dict, kwargs: dict) -> Any:
        """The AIMessage of a chat-completion ``reply`` (as the online client makes it).

        Raises:
            BatchItemError: a reply with no choices (classified ``server``, retried).
        """
        if not reply.get("choices"):
            raise BatchItemError("the batch result holds no choices (an empty completion)", 502, reply)
        return model._create_chat_result(reply, {}).generations[0].message

    async def upload(self, model: Any, items: list[tuple[str, dict]]) -> str:
        """Upload the requests ``[(custom_id, body)]`` as the job's input file; its file id."""
        lines = "".join(
            json.dumps({"custom_id": c, "method": "POST", "url": self.endpoint, "body": b}, ensure_ascii=False) + "\n"
            for c, b in items
        )
        f = await model.root_async_client.files.create(file=("prepbench-batch.jsonl", lines.encode("utf-8")), purpose="batch")
        return f.id

    async def create(self, model: Any, items: list[tuple[str, dict]], input_file_id: str | None) -> JobState:
        """Create the job over the uploaded input file."""
        b = await model.root_async_client.batches.create(
            input_file_id=str(input_file_id), endpoint=self.endpoint, completion_window="24h"
        )
        return self._state(b)

    async def retrieve(self, model: Any, job_id: str) -> JobState:
        """The job's current state."""
        return self._state(await model.root_async_client.batches.retrieve(job_id))

    async def find(self, model: Any, input_file_id: str | None, since: float) -> JobState | None:
        """The job created over ``input_file_id`` (``GET /v1/batches``, newest first, back to
        ``since``, a Unix time), or None: how a job whose create call returned to a killed process is found."""
        if not input_file_id:
            return None
        async for b in model.root_async_client.batches.list(limit=100):
            if b.input_file_id == input_file_id:
                return self._state(b)
            if b.created_at < since - 3600:
                break
        return None

    def _state(self, b: Any) -> JobState:
        rc = b.request_counts
        counts = {"done": rc.completed, "failed": rc.failed, "total": rc.total} if rc is not None else {}
        errors = getattr(getattr(b, "errors", None), "data", None) or []
        problem = "; ".join(f"{e.code}: {e.message}" for e in errors[:3])
        ended = b.status in ("completed", "failed", "expired", "cancelled")
        return JobState(b.id, b.status, ended, counts, problem, b)

    async def results(self, model: Any, job: JobState) -> dict[str, tuple[dict | None, BatchItemError | None]]:
        """``custom_id -> (reply body, None)`` or ``(None, error)`` of an ended job (output and error files)."""
        out: dict[str, tuple[dict | None, BatchItemError | None]] = {}
        for file_id in (job.raw.output_file_id, job.raw.error_file_id):
            if not file_id:
                continue
            content = await model.root_async_client.files.content(file_id)
            for line in content.text.splitlines():
                if line.strip():
                    row = json.loads(line)
                    out[row["custom_id"]] = self._outcome(row)
        return out

    @staticmethod
    def _outcome(row: dict) -> tuple[dict | None, BatchItemError | None]:
        resp, err = row.get("response") or {}, row.get("error")
        status = int(resp.get("status_code") or 0)
        if status == 200 and not err:
            return resp.get("body") or {}, None
        body = resp.get("body") or err or {}
        msg = (body.get("error") or {}).get("message") if isinstance(body.get("error"), dict) else body.get("message")
        code = status if status >= 400 else (408 if (err or {}).get("code") == "batch_expired" else 500)
        return None, BatchItemError(f"batch item failed (HTTP {code}): {msg or body}", code, body)


class AnthropicBatches:
    """Anthropic's Message Batches API (``/v1/messages/batches``) for ``ChatAnthropic`` requests."""

    provider = "anthropic"

    def body(self, model: Any, messages: list, kwargs: dict) -> dict:
        """The Messages body ``model`` would send for ``messages`` with ``kwargs``.

        Raises:
            ValueError: a beta request (``betas``), which the batch API takes differently.
        """
        payload = model._get_request_payload(messages, **kwargs)
        if "betas" in payload:
            raise ValueError("--batch does not send Anthropic beta requests")
        payload.pop("stream", None)
        return _body_of(payload)

    def message(self, model: Any, reply: dict, kwargs: dict) -> Any:
        """The AIMessage of a Messages ``reply`` (as the online client makes it)."""
        from anthropic.types import Message

        return model._format_output(Message.model_validate(reply), **kwargs).generations[0].message

    async def upload(self, model: Any, items: list[tuple[str, dict]]) -> None:
        """Anthropic takes the requests in the create call: nothing to upload."""
        return None

    async def create(self, model: Any, items: list[tuple[str, dict]], input_file_id: str | None) -> JobState:
        """Create the job with the requests ``[(custom_id, params)]``."""
        b = await model._async_client.messages.batches.create(requests=[{"custom_id": c, "params": p} for c, p in items])
        return self._state(b)

    async def retrieve(self, model: Any, job_id: str) -> JobState:
        """The job's current state."""
        return self._state(await model._async_client.messages.batches.retrieve(job_id))

    async def find(self, model: Any, input_file_id: str | None, since: float) -> JobState | None:
        """None: a message batch names no input file, so a job whose create call returned to a killed
        process cannot be told from another (its requests are submitted again)."""
        return None

    @staticmethod
    def _state(b: Any) -> JobState:
        rc = b.request_counts
        done = rc.succeeded + rc.errored + rc.canceled + rc.expired
        counts = {"done": rc.succeeded, "failed": rc.errored + rc.canceled + rc.expired, "total": done + rc.processing}
        ended = b.processing_status == "ended"
        status = "ended" if ended else b.processing_status
        if ended and b.cancel_initiated_at is not None:
            status = "cancelled"
        return JobState(b.id, status, ended, counts, "", b)

    async def results(self, model: Any, job: JobState) -> dict[str, tuple[dict | None, BatchItemError | None]]:
        """``custom_id -> (message body, None)`` or ``(None, error)`` of an ended job."""
        out: dict[str, tuple[dict | None, BatchItemError | None]] = {}
        async for row in await model._async_client.messages.batches.results(job.job_id):
            r = row.result
            if r.type == "succeeded":
                out[row.custom_id] = (r.message.model_dump(mode="json"), None)
            elif r.type == "errored":
                e = r.error.error
                code = ANTHROPIC_STATUS.get(e.type, 500)
                out[row.custom_id] = (
                    None,
                    BatchItemError(f"batch item errored ({e.type}): {e.message}", code, r.error.model_dump()),
                )
            else:  # canceled or expired before it ran: retried in a new job
                out[row.custom_id] = (None, BatchItemError(f"batch item {r.type} before it ran", 408, {"type": r.type}))
        return out


def protocol_for(provider: str) -> Any:
    """The batch protocol of ``provider`` (``openai`` | ``anthropic``).

    Raises:
        KeyError: another provider.
    """
    return {"openai": OpenAIBatches, "anthropic": AnthropicBatches}[provider]()
