"""Shared pytest fixtures.

``llm_server``: the local OpenAI/Anthropic-compatible test server (``tests/llm_server.py``),
started once per test session on 127.0.0.1 (a free port) and stopped at the end; each test
gets it with its rules, request log and faults cleared.
"""

from __future__ import annotations

import pytest

from llm_server import LLMServer


@pytest.fixture(scope="session")
def llm_server_session():
    srv = LLMServer().start()
    try:
        yield srv
    finally:
        srv.stop()


@pytest.fixture
def llm_server(llm_server_session):
    llm_server_session.reset()
    yield llm_server_session
    llm_server_session.reset()
