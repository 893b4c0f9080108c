"""The batch protocols of the test LLM server (``tests/llm_server.py``): OpenAI's Batch API and
Anthropic's Message Batches, answered with the same scripted replies as the online endpoints.

Endpoints (added to the server's app by :meth:`BatchAPI.add_routes`):

``POST /v1/files``                     multipart upload (``file``, ``purpose=batch``): a JSONL of requests
``GET  /v1/files/{id}/content``        a file's bytes (input, output or error file)
``POST /v1/batches``                   ``{input_file_id, endpoint, completion_window}``: a job
``GET  /v1/batches`` / ``/{id}``       the jobs / one job (``status``, ``request_counts``, output and error files)
``POST /v1/messages/batches``          ``{requests: [{custom_id, params}]}``: a job
``GET  /v1/messages/batches/{id}``     a job (``processing_status``, ``request_counts``, ``results_url``)
``GET  /v1/messages/batches/{id}/results``  JSONL of ``{custom_id, result}``

A job ends ``delay_s`` seconds after its creation (0.3 s by default; a running job reads it as it waits): each item is answered
by the server's online reply logic (script, smart replies and faults, so ``Faults.forced`` and
``Faults.rules`` error items), in input order; an item the online endpoint answers with an HTTP
error is an errored item (OpenAI: a line of the error file; Anthropic: ``errored``).
``submissions`` counts every job created (``{"api", "id", "custom_ids"}``), so a test can assert
that no request was submitted twice; ``enabled = False`` answers every batch endpoint 404
(a server without the batch APIs).
"""

from __future__ import annotations

import asyncio
import datetime
import email.parser
import email.policy
import json
import threading
import time
import uuid
from typing import Any

from fastapi import FastAPI
from fastapi import Request as HTTPRequest
from fastapi.responses import JSONResponse, Response

from llm_messages import parse_anthropic, parse_openai


class _ItemRequest:
    """What the server's reply logic reads of an HTTP request, for one batch item."""

    class _URL:
        def __init__(self, path: str):
            self.path = path

    def __init__(self, path: str, auth: str | None):
        self.url = self._URL(path)
        self.headers = {"authorization": auth} if auth else {}


def _iso(t: float | None) -> str | None:
    return None if t is None else datetime.datetime.fromtimestamp(t, datetime.timezone.utc).isoformat()


class BatchAPI:
    """The batch endpoints of an :class:`~llm_server.LLMServer` and their jobs.

    Args:
        server: the test server (its ``_reply`` answers each item; its ``url`` names result URLs).
        delay_s: seconds from a job's creation to its end.
    """

    def __init__(self, server: Any, delay_s: float = 0.3):
        self.server = server
        self.delay_s = delay_s
        self.enabled = True
        self.lock = threading.Lock()
        self.reset()

    def reset(self) -> None:
        """Forget files, jobs and submissions; default delay; endpoints on."""
        with self.lock:
            self.files: dict[str, bytes] = {}
            self.jobs: dict[str, dict] = {}
            self.submissions: list[dict] = []
            self.delay_s = 0.3
            self.enabled = True

    def custom_ids(self) -> list[str]:
        """Every custom_id submitted, in submission order (repeats included)."""
        return [c for s in self.submissions for c in s["custom_ids"]]

    # -- routes ---------------------------------------------------------------------------
    def add_routes(self, app: FastAPI) -> None:
        """Register the batch endpoints on ``app``."""
        app.post("/v1/files")(self.upload)
        app.get("/v1/files/{file_id}/content")(self.file_content)
        app.post("/v1/batches")(self.openai_create)
        app.get("/v1/batches")(self.openai_list)
        app.get("/v1/batches/{batch_id}")(self.openai_retrieve)
        app.post("/v1/messages/batches")(self.anthropic_create)
        app.get("/v1/messages/batches/{batch_id}")(self.anthropic_retrieve)
        app.get("/v1/messages/batches/{batch_id}/results")(self.anthropic_results)

    def _missing(self, what: str) -> JSONResponse:
        return JSONResponse({"error": {"message": f"{what} not found", "type": "not_found_error"}}, status_code=404)

    async def upload(self, request: HTTPRequest) -> Response:
        if not self.enabled:
            return self._missing("/v1/files")
        raw = await request.body()
        head = f"Content-Type: {request.headers.get('content-type', '')}\r\n\r\n".encode()
        msg = email.parser.BytesParser(policy=email.policy.HTTP).parsebytes(head + raw)
        fields = {p.get_param("name", header="content-disposition"): p for p in msg.iter_parts()}
        if "file" not in fields or fields.get("purpose") is None or fields["purpose"].get_content().strip() != "batch":
            return JSONResponse({"error": {"message": "need file and purpose=batch", "type": "invalid_request_error"}}, 400)
        data = fields["file"].get_payload(decode=True)
        fid = "file-" + uuid.uuid4().hex[:24]
        with self.lock:
            self.files[fid] = data
        return JSONResponse(
            {
                "id": fid,
                "object": "file",
                "bytes": len(data),
                "created_at": int(time.time()),
                "filename": fields["file"].get_filename() or "batch.jsonl",
                "purpose": "batch",
                "status": "processed",
            }
        )

    async def file_content(self, file_id: str) -> Response:
        if not self.enabled or file_id not in self.files:
            return self._missing(f"file {file_id}")
        return Response(self.files[file_id], media_type="application/octet-stream")

    async def openai_create(self, request: HTTPRequest) -> Response:
        if not self.enabled:
            return self._missing("/v1/batches")
        body = await request.json()
        data = self.files.get(body.get("input_file_id", ""))
        if data is None:
            return self._missing(f"file {body.get('input_file_id')}")
        items = [json.loads(line) for line in data.decode().splitlines() if line.strip()]
        job = self._new_job("openai", "batch_", [(i["custom_id"], i["body"]) for i in items], request)
        job["input_file_id"] = body["input_file_id"]
        return JSONResponse(self._openai_view(job))

    async def openai_list(self) -> Response:
        if not self.enabled:
            return self._missing("/v1/batches")
        data = [self._openai_view(j) for j in self.jobs.values() if j["api"] == "openai"]
        return JSONResponse({"object": "list", "data": data, "has_more": False})

    async def openai_retrieve(self, batch_id: str) -> Response:
        job = self.jobs.get(batch_id)
        if not self.enabled or job is None or job["api"] != "openai":
            return self._missing(f"batch {batch_id}")
        return JSONResponse(self._openai_view(job))

    async def anthropic_create(self, request: HTTPRequest) -> Response:
        if not self.enabled:
            return self._missing("/v1/messages/batches")
        body = await request.json()
        job = self._new_job("anthropic", "msgbatch_", [(r["custom_id"], r["params"]) for r in body["requests"]], request)
        return JSONResponse(self._anthropic_view(job))

    async def anthropic_retrieve(self, batch_id: str) -> Response:
        job = self.jobs.get(batch_id)
        if not self.enabled or job is None or job["api"] != "anthropic":
            return self._missing(f"batch {batch_id}")
        return JSONResponse(self._anthropic_view(job))

    async def anthropic_results(self, batch_id: str) -> Response:
        job = self.jobs.get(batch_id)
        if not self.enabled or job is None or job["ended_at"] is None:
            return self._missing(f"results of {batch_id}")
        lines = "".join(json.dumps({"custom_id": c, "result": r}) + "\n" for c, r in job["results"].items())
        return Response(lines.encode(), media_type="application/binary")

    # -- jobs -----------------------------------------------------------------------------
    def _new_job(self, api: str, prefix: str, items: list[tuple[str, dict]], request: HTTPRequest) -> dict:
        """A job over ``items`` ``[(custom_id, body)]``, answered after ``delay_s``."""
        auth = request.headers.get("authorization") or request.headers.get("x-api-key")
        job = {"id": prefix + uuid.uuid4().hex[:24], "api": api, "items": items, "created_at": time.time()}
        job.update({"ended_at": None, "results": {}, "output_file_id": None, "error_file_id": None, "failed": 0})
        with self.lock:
            self.jobs[job["id"]] = job
            self.submissions.append({"api": api, "id": job["id"], "custom_ids": [c for c, _ in items]})
        asyncio.get_running_loop().create_task(self._process(job, auth))
        return job

    async def _process(self, job: dict, auth: str | None) -> None:
        """Answer each item with the online reply logic once ``delay_s`` has passed since the job's
        creation (read as it waits, so a test may shorten the wait of a running job); then end it."""
        while time.time() < job["created_at"] + self.delay_s:
            await asyncio.sleep(0.02)
        path = "/v1/chat/completions" if job["api"] == "openai" else "/v1/messages"
        out, errors = [], []
        for cid, body in job["items"]:
            req = parse_openai(body) if job["api"] == "openai" else parse_anthropic(body)
            resp = await self.server._reply(_ItemRequest("batch:" + path, auth), job["api"], body, req)
            status, payload = resp.status_code, None
            try:
                payload = json.loads(bytes(resp.body)) if status == 200 or isinstance(resp, JSONResponse) else None
            except (ValueError, AttributeError):
                status, payload = 500, None  # a reply cut short or a dropped connection: an errored item
            if payload is None:
                status = 500
                payload = {"error": {"message": "the server failed this request", "type": "server_error"}}
            if job["api"] == "anthropic":
                job["results"][cid] = self._anthropic_result(status, payload)
            else:
                line = {"id": "batch_req_" + uuid.uuid4().hex[:16], "custom_id": cid, "error": None}
                line["response"] = {"status_code": status, "request_id": uuid.uuid4().hex[:16], "body": payload}
                (out if status == 200 else errors).append(line)
            job["failed"] += int(status != 200)
        if job["api"] == "openai":
            with self.lock:
                for key, rows in (("output_file_id", out), ("error_file_id", errors)):
                    if rows:
                        fid = "file-" + uuid.uuid4().hex[:24]
                        self.files[fid] = "".join(json.dumps(r) + "\n" for r in rows).encode()
                        job[key] = fid
        job["ended_at"] = time.time()

    @staticmethod
    def _anthropic_result(status: int, payload: dict) -> dict:
        if status == 200:
            return {"type": "succeeded", "message": payload}
        err = payload.get("error") or {}
        kind = err.get("type") if status != 500 else "api_error"
        return {
            "type": "errored",
            "error": {"type": "error", "error": {"type": kind or "api_error", "message": err.get("message", "")}},
        }

    def _openai_view(self, job: dict) -> dict:
        ended, n = job["ended_at"] is not None, len(job["items"])
        return {
            "id": job["id"],
            "object": "batch",
            "endpoint": "/v1/chat/completions",
            "errors": None,
            "input_file_id": job.get("input_file_id", ""),
            "completion_window": "24h",
            "status": "completed" if ended else "in_progress",
            "output_file_id": job["output_file_id"],
            "error_file_id": job["error_file_id"],
            "created_at": int(job["created_at"]),
            "in_progress_at": int(job["created_at"]),
            "expires_at": int(job["created_at"]) + 86400,
            "completed_at": int(job["ended_at"]) if ended else None,
            "request_counts": {
                "total": n,
                "completed": n - job["failed"] if ended else 0,
                "failed": job["failed"] if ended else 0,
            },
            "metadata": None,
        }

    def _anthropic_view(self, job: dict) -> dict:
        ended, n = job["ended_at"] is not None, len(job["items"])
        errored = job["failed"] if ended else 0
        return {
            "id": job["id"],
            "type": "message_batch",
            "processing_status": "ended" if ended else "in_progress",
            "request_counts": {
                "processing": 0 if ended else n,
                "succeeded": n - errored if ended else 0,
                "errored": errored,
                "canceled": 0,
                "expired": 0,
            },
            "created_at": _iso(job["created_at"]),
            "expires_at": _iso(job["created_at"] + 86400),
            "ended_at": _iso(job["ended_at"]),
            "archived_at": None,
            "cancel_initiated_at": None,
            "results_url": f"{self.server.url}/v1/messages/batches/{job['id']}/results" if ended else None,
        }
