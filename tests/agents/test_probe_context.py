"""The probe reads a server's context size over plain HTTP (llama.cpp's ``/props``, then ``/v1/models``)."""

from __future__ import annotations

import asyncio
import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from prepbench.agents.models.probe import server_context


@pytest.fixture()
def server():
    """A plain-HTTP server: ``/props`` when ``answers["props"]``, else 404; ``/v1/models`` always."""
    answers = {
        "props": {"default_generation_settings": {"n_ctx": 4096}},
        "models": {"data": [{"id": "m", "meta": {"n_ctx_train": 8192}}]},
    }

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self):  # noqa: N802 - http.server's name
            body = answers["props"] if self.path == "/props" else answers["models"] if self.path == "/v1/models" else None
            self.send_response(200 if body else 404)
            self.send_header("Content-Type", "application/json")
            self.end_headers()
            self.wfile.write(json.dumps(body or {}).encode())

        def log_message(self, *args):
            return

    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    try:
        yield f"http://127.0.0.1:{httpd.server_address[1]}/v1", answers
    finally:
        httpd.shutdown()


def test_the_context_size_comes_from_props_over_plain_http(server):
    url, _ = server
    assert asyncio.run(server_context(url)) == (4096, "/props")


def test_without_props_the_models_list_is_read(server):
    url, answers = server
    answers["props"] = None
    assert asyncio.run(server_context(url)) == (8192, "/v1/models")
