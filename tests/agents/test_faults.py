"""Runs under injected server faults: every chunk ends resolved, nothing is duplicated,
a second run retries only the failed chunks, and a dead server stops the run cleanly.

The faults come from the test server (``tests/llm_server.py``); the clients are the real
``langchain-openai`` ones over HTTP.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from prepbench.agents.runner import run_pipeline
from prepbench.tools.chunking import chunk_corpus
from prepbench.tools.ingest import ingest_corpus
from prepbench.tools.ledger import RunFolder
from prepbench.tools.run import RunOptions
from prepbench.tools.validate import normalize_text

from cli_helpers import book_chapter, chat_run_args, run_cli
from llm_server import Faults

KEY = "sk-faults-test-0c4f21"
CHUNK_ID_RE = re.compile(r"\b[0-9a-f]{16}\b")


@pytest.fixture(scope="module")
def corpus(tmp_path_factory) -> Path:
    return book_chapter(tmp_path_factory.mktemp("finance_faults"), "07-time-value-of-money-i-single-payment-value.md")


def chunk_ids(corpus: Path, limit: int) -> list[str]:
    docs = ingest_corpus([str(corpus)]).documents
    return [c.chunk_id for c in chunk_corpus(docs)][:limit]


def ledger_state(out: Path) -> tuple[dict, dict, list]:
    """``({chunk_id: (status, skip_reason, error, attempts)}, {chunk_id: [sample ids]}, accepted samples)``."""
    ledger = RunFolder(out)
    try:
        chunks = {r["chunk_id"]: (r["status"], r["skip_reason"], r["error"], r["attempts"]) for r in ledger.chunk_rows()}
        samples: dict[str, list] = {}
        for r in ledger.sample_rows():
            samples.setdefault(r["chunk_id"], []).append(r["sample_id"])
        return chunks, samples, list(ledger.accepted_samples())
    finally:
        ledger.close()


def requested_chunks(srv, known: set[str]) -> set[str]:
    return {cid for r in srv.requests for cid in CHUNK_ID_RE.findall(json.dumps(r["body"])) if cid in known}


def test_faulty_server_run_resolves_every_chunk_and_rerun_retries_only_failed(llm_server, corpus, tmp_path):
    limit = 24
    ids = chunk_ids(corpus, limit)
    doomed = ids[5], ids[11]  # every request about these chunks fails with 500
    faults = Faults(
        rate_429=0.10,
        rate_500=0.05,
        rate_malformed=0.05,
        rate_slow=0.02,
        slow_s=2.0,
        retry_after_s=0.02,
        seed=11,
        rules=[(doomed[0], "500"), (doomed[1], "500")],
    )
    llm_server.set_faults(faults)
    out = tmp_path / "run"
    model_options = {
        "base_url": llm_server.url + "/v1",
        "api_key": KEY,
        "concurrency": 8,
        "timeout": 0.6,
        "max_retries": 2,
        "backoff_base": 0.01,
        "backoff_max": 0.2,
        "circuit_threshold": 60,
    }
    opts = RunOptions(
        corpus=[str(corpus)],
        skill="finance",
        out=str(out),
        agent="skill",
        model="openai:test-model",
        limit=limit,
        concurrency=8,
        batch_size=8,
        model_options=model_options,
    )
    result = run_pipeline(opts)
    assert not result["stopped"]
    chunks, samples, accepted = ledger_state(out)
    assert len(chunks) == limit
    # every chunk kept, skipped with a reason, or failed with the error
    for cid, (status, reason, error, attempts) in chunks.items():
        assert status in ("kept", "skipped", "failed"), (cid, status)
        assert status != "skipped" or reason
        assert status != "failed" or (error and len(error) > 10)
        assert attempts == 1
    failed = {cid for cid, st in chunks.items() if st[0] == "failed"}
    assert set(doomed) <= failed
    assert "500" in chunks[doomed[0]][2] or "server" in chunks[doomed[0]][2]
    assert sum(1 for st in chunks.values() if st[0] == "kept") >= 8
    # the faults really happened, and were absorbed by retries
    seen = [r["fault"] for r in llm_server.requests]
    assert seen.count("429") >= 3 and seen.count("malformed") >= 1 and seen.count("slow") >= 1
    ledger = RunFolder(out)
    errors = [r["error"] for r in ledger.call_rows(ok=False)]
    ledger.close()
    assert any("RateLimit" in e for e in errors) and any("Timeout" in e for e in errors)
    # no duplicate samples: unique ids and unique question+answer among accepted samples
    all_ids = [s for ss in samples.values() for s in ss]
    assert len(all_ids) == len(set(all_ids))
    qa = [normalize_text(s.get("question", "") + " " + s.get("answer", "")) for s in accepted]
    assert len(qa) == len(set(qa))

    # second run, faults off: only the failed chunks are sent to the model again
    llm_server.reset()
    result2 = run_pipeline(opts)  # the same command again
    assert result2["resumed"]
    assert requested_chunks(llm_server, set(ids)) == failed
    chunks2, samples2, accepted2 = ledger_state(out)
    for cid in set(ids) - failed:  # committed chunks untouched
        assert chunks2[cid] == chunks[cid] and samples2.get(cid) == samples.get(cid)
    for cid in failed:
        assert chunks2[cid][0] in ("kept", "skipped") and chunks2[cid][3] == 2
    ids2 = [s["sample_id"] for s in accepted2]
    assert len(ids2) == len(set(ids2)) and len(accepted2) >= len(accepted)
    for p in out.rglob("*"):
        if p.is_file():
            assert KEY.encode() not in p.read_bytes()


def test_dead_server_stops_the_run_cleanly_and_the_next_run_finishes(llm_server, corpus, tmp_path):
    limit = 16
    ids = chunk_ids(corpus, limit)
    # the server dies for good after its first 20 requests
    llm_server.set_faults(Faults(rules=[(lambda req: len(llm_server.requests) > 20, "reset")]))
    out = tmp_path / "run"
    args = [
        *chat_run_args(corpus, out, llm_server, "skill"),
        "--concurrency",
        "4",
        "--batch-size",
        "4",
        "--limit",
        str(limit),
        "--max-retries",
        "2",
        "--timeout",
        "2",
        # the coverage loop asks recorded chunks for more samples by design; this test is about resume
        "--no-revisit",
        "-q",
    ]
    p = run_cli(*args, env_extra={"OPENAI_API_KEY": KEY})
    assert p.returncode == 3, p.stderr + p.stdout
    text = " ".join(p.stdout.split())
    assert "stopped: model server openai:test-model unreachable after" in text and "Traceback" not in p.stderr
    # the advice fits the cause (nothing answers: start the server), and status shows the same
    assert f"what to do: nothing answers at {llm_server.url}/v1" in text, text
    st = run_cli("status", str(out))
    assert "what to do: nothing answers at" in " ".join(st.stdout.split()), st.stdout
    chunks, _, _ = ledger_state(out)
    statuses = [st[0] for st in chunks.values()]
    assert "failed" not in statuses  # a dead server is not the chunks' fault
    assert statuses.count("pending") >= limit // 2
    done1 = {cid for cid, st in chunks.items() if st[0] != "pending"}
    # the server is back: the same command finishes the run, without redoing recorded chunks
    llm_server.reset()
    p2 = run_cli(*args, env_extra={"OPENAI_API_KEY": KEY})
    assert p2.returncode == 0, p2.stderr + p2.stdout
    chunks2, _, _ = ledger_state(out)
    assert all(st[0] in ("kept", "skipped") for st in chunks2.values())
    assert requested_chunks(llm_server, set(ids)).isdisjoint(done1)
    for cid in done1:
        assert chunks2[cid] == chunks[cid]
