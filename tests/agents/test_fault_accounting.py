"""Fault classes, call accounting and honest chunk outcomes, against the local test server.

- a JSON body cut short and an OpenAI reply with no ``choices`` are retried (not client errors);
- every attempt, failed ones included, is a call row, also when the run stops on a dead server;
- a chunk whose generation partly failed is ``failed`` (retried), never ``kept`` short of samples;
- a chunk whose candidates were all rejected is ``skipped: all_rejected`` with the rules counted.

The chapter is a real one of OpenStax *Principles of Finance* (``../shared/corpora``); the
clients are the real ``langchain-openai`` ones over HTTP.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from prepbench.agents.runner import run_pipeline
from prepbench.tools.ledger import RunFolder

from cli_helpers import book_chapter, chat_run_options
from llm_server import Faults, _wrap_structured

KEY = "sk-accounting-test-77a1"
FAST = {"timeout": 2.0, "max_retries": 3, "backoff_base": 0.01, "backoff_max": 0.05, "concurrency": 4}


@pytest.fixture(scope="module")
def corpus(tmp_path_factory) -> Path:
    return book_chapter(tmp_path_factory.mktemp("finance_accounting"), "07-time-value-of-money-i-single-payment-value.md")


def rows(out: Path) -> tuple[list[dict], list[dict]]:
    """``(chunk rows, call rows)`` of a run folder."""
    ledger = RunFolder(out)
    try:
        return ledger.chunk_rows(), ledger.call_rows()
    finally:
        ledger.close()


@pytest.mark.parametrize("fault", ["truncated_body", "empty_choices", "reset"])
def test_cut_body_empty_choices_and_reset_are_retried(llm_server, corpus, tmp_path, fault):
    llm_server.set_faults(Faults(forced=[fault, fault]))  # the first two requests
    out = tmp_path / "run"
    run_pipeline(chat_run_options(corpus, out, llm_server, "skill", KEY, FAST, limit=2, concurrency=1, revisit=False))
    chunks, calls = rows(out)
    assert [c["status"] for c in chunks] == ["kept", "skipped"], [(c["status"], c["error"]) for c in chunks]
    assert chunks[1]["skip_reason"]
    failed = [c for c in calls if not c["ok"]]
    assert len(failed) == 2  # the two faulty attempts are call rows, then retried
    if fault != "reset":
        want = "JSONDecodeError" if fault == "truncated_body" else "EmptyReplyError"
        assert all(want in c["error"] for c in failed), failed
    assert len(calls) == len(llm_server.requests)  # every attempt is a call row


def test_a_stop_on_a_dead_server_records_every_attempt(llm_server, corpus, tmp_path):
    # the server dies for good after its first 12 requests
    llm_server.set_faults(Faults(rules=[(lambda req: len(llm_server.requests) > 12, "reset")]))
    out = tmp_path / "run"
    opts = {**FAST, "circuit_threshold": 5}
    result = run_pipeline(chat_run_options(corpus, out, llm_server, "skill", KEY, opts, limit=8, concurrency=2))
    assert result["stopped"]
    chunks, calls = rows(out)
    assert any(c["status"] == "pending" for c in chunks)
    failed = [c for c in calls if not c["ok"]]
    assert len(failed) >= 5 and all("Connection" in c["error"] for c in failed)
    assert len(calls) == len(llm_server.requests)
    pending = {c["chunk_id"] for c in chunks if c["status"] == "pending"}
    assert any(c["chunk_id"] in pending for c in calls)  # the calls of chunks left pending are kept


def test_a_partly_failed_generation_fails_the_chunk_and_a_rerun_completes_it(llm_server, corpus, tmp_path):
    # every process_qa generation request fails with 500: the chunk's plan cannot finish
    llm_server.set_faults(Faults(rules=[(r"Write \d+ `process_qa` sample", "500")]))
    out = tmp_path / "run"
    opts = chat_run_options(corpus, out, llm_server, "skill", KEY, FAST, limit=4, concurrency=2, revisit=False)
    run_pipeline(opts)
    chunks, calls = rows(out)
    generated = [c for c in chunks if c["status"] != "skipped"]
    assert generated and all(c["status"] == "failed" for c in generated), [(c["status"], c["error"]) for c in chunks]
    assert all("500" in c["error"] or "server" in c["error"] for c in generated)
    ok_generate = [c for c in calls if c["ok"] and c["node"] == "generate"]
    assert ok_generate and {c["chunk_id"] for c in ok_generate} <= {c["chunk_id"] for c in generated}  # tokens kept
    llm_server.reset()
    run_pipeline(opts)  # the server is well again: the failed chunks are retried, and kept
    chunks2, _ = rows(out)
    by_id = {c["chunk_id"]: c for c in chunks2}
    assert all(by_id[c["chunk_id"]]["status"] == "kept" and by_id[c["chunk_id"]]["attempts"] == 2 for c in generated)


def test_a_chunk_whose_candidates_are_all_rejected_is_skipped_all_rejected(llm_server, corpus, tmp_path):
    def no_type(req):  # samples with no sample_type: the schema rule rejects each one
        return _wrap_structured(req, [{"question": "What is money?", "answer": "A thing."}] * 2 + [{"answer": "x"}])

    llm_server.add_rule("Create question-answer training samples", no_type)
    out = tmp_path / "run"
    run_pipeline(chat_run_options(corpus, out, llm_server, "direct", KEY, FAST, limit=3, concurrency=2))
    chunks, _ = rows(out)
    assert [c["skip_reason"] for c in chunks] == ["all_rejected"] * 3
    assert all(c["detail"] == "all 3 candidates rejected: schema x3" and c["error"] is None for c in chunks), chunks
    ledger = RunFolder(out)
    try:
        assert ledger.skip_reason_counts() == {"all_rejected": 3}
    finally:
        ledger.close()


def test_a_garbled_guided_reply_is_asked_again_not_mined_for_a_part():
    from prepbench.agents.models.structured import extract_json, whole_json

    full = '{"items": [{"question": "What is a bond?", "answer": "A loan."}, {"question": "Why?", "answer": "Yield."}]}'
    garbled = full[: full.index("Why?")] + ', "oops": tru'  # cut, then junk: the test server's malformed fault
    assert extract_json(garbled, "array") == {"question": "What is a bond?", "answer": "A loan."}  # prompt mode salvages
    with pytest.raises(ValueError, match="not one JSON document"):
        whole_json(garbled)
    assert whole_json("<think>hm</think>\n```json\n" + full + "\n```")["items"][1]["answer"] == "Yield."


def test_a_raw_newline_inside_a_json_string_is_the_model_s_text():
    """SmolLM2 under llama.cpp's JSON grammar writes line breaks inside strings unescaped: the
    reply was refused as 'Invalid control character' (seen on Pharmacology for Nurses chapter 7)."""
    from prepbench.agents.models.structured import extract_json, whole_json

    reply = '{"items": [{"question": "What is a bond?", "answer": "A loan\nto a firm."}]}'
    assert whole_json(reply)["items"][0]["answer"] == "A loan\nto a firm."
    assert extract_json(reply, "object")["items"][0]["answer"] == "A loan\nto a firm."
    with pytest.raises(ValueError, match="not one JSON document"):
        whole_json(reply[:-2])  # still one whole document or nothing
