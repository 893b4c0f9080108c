"""No fault ends a work unit silently (issue 11's last gaps), against the local test server.

- a revisit of the coverage loop whose generation fails is recorded ``failed`` with its error
  and calls, and the next run plans it again and finishes it;
- a grounded-judge call that fails for good fails the chunk (retried), instead of leaving the
  validators' verdict standing;
- the rule counts of an ``all_rejected`` skip live in the chunk's own ``detail`` column, and a
  ledger made before that column existed is migrated when a run opens it (and read as it is by
  ``prepbench status``).
"""

from __future__ import annotations

import hashlib
import json
import sqlite3
from pathlib import Path

import pytest

from prepbench.agents.runner import run_pipeline
from prepbench.tools.ledger import RunFolder
from prepbench.tools.ledger.schema import ADDED_COLUMNS, CALLS, CHUNKS, DOCUMENTS, REVISITS, SAMPLES

from cli_helpers import book_chapter, chat_run_options, run_cli
from llm_server import Faults, Reply, smart_reply

KEY = "sk-retryable-outcomes-5d1e"
FAST = {"timeout": 5, "max_retries": 1, "backoff_base": 0.01, "backoff_max": 0.05, "concurrency": 4, "structured": "prompt"}


@pytest.fixture(scope="module")
def corpus(tmp_path_factory) -> Path:
    return book_chapter(tmp_path_factory.mktemp("finance_ch10"), "10-bonds-and-bond-valuation.md")


def test_a_failed_revisit_stays_retryable_and_the_next_run_finishes_it(llm_server, corpus, tmp_path):
    seen: set[str] = set()

    def case_reply(req):  # the main pass gets no case_application: the coverage loop must revisit
        key = hashlib.sha256(req.last_user_text.encode()).hexdigest()
        if key not in seen:
            seen.add(key)
            return Reply(content="[]")
        return smart_reply(req)

    llm_server.add_rule(r"Write \d+ `case_application` sample", case_reply)
    # every revisit request (the second one for the same prompt) is refused for good: 400
    llm_server.set_faults(Faults(rules=[(lambda req: hashlib.sha256(req.last_user_text.encode()).hexdigest() in seen, "400")]))
    out = tmp_path / "run"
    opts = chat_run_options(corpus, out, llm_server, "skill", KEY, FAST, limit=16, max_repairs=0)
    first = run_pipeline(opts)
    assert not first["stopped"]
    led = RunFolder(out)
    try:
        failed = led.revisit_rows(status="failed")
        assert failed and all(r["error"] and "400" in r["error"] and r["attempts"] == 1 for r in failed)
        assert led.revisit_rows(status="done") == [] and led.planned_revisits() == []
        # the failed revisits' calls are call rows, with the error body kept
        bad = [c for c in led.call_rows(ok=False) if c["node"] == "revisit_generate"]
        assert {c["chunk_id"] for c in bad} == {r["chunk_id"] for r in failed}
        assert all("injected 400" in (c["reply"] or "") for c in bad)
        assert len(led.call_rows()) == len(llm_server.requests)
        assert led.revisit_counts()["failed"] == len(failed)
    finally:
        led.close()
    # the server is well again: the same run plans the failed revisits again and finishes them
    llm_server.set_faults(Faults())
    second = run_pipeline(opts)
    assert not second["stopped"]
    led = RunFolder(out)
    try:
        again = {(r["chunk_id"], r["sample_type"]): r for r in led.revisit_rows()}
        assert all(again[(r["chunk_id"], r["sample_type"])]["status"] == "done" for r in failed)
        assert sum(again[(r["chunk_id"], r["sample_type"])]["n_accepted"] for r in failed) > 0
        assert led.type_counts().get("case_application", 0) > 0
    finally:
        led.close()


def test_a_failed_grounded_judge_fails_the_chunk_and_a_rerun_judges_it(llm_server, corpus, tmp_path):
    llm_server.set_faults(Faults(rules=[("You check training data for faithfulness", "400")]))
    out = tmp_path / "run"
    opts = chat_run_options(corpus, out, llm_server, "skill", KEY, {**FAST, "judge": True}, limit=4, revisit=False)
    run_pipeline(opts)
    led = RunFolder(out)
    try:
        rows = led.chunk_rows()
        judged = [r for r in rows if r["status"] != "skipped"]
        assert judged and all(r["status"] == "failed" and "judge" in r["error"] for r in judged), [
            (r["status"], r["error"]) for r in rows
        ]
        assert led.sample_rows(status="accepted") == []  # nothing kept unjudged
        assert any(c["node"] == "judge" and not c["ok"] for c in led.call_rows())
    finally:
        led.close()
    llm_server.set_faults(Faults())
    run_pipeline(opts)
    led = RunFolder(out)
    try:
        by_id = {r["chunk_id"]: r for r in led.chunk_rows()}
        assert all(by_id[r["chunk_id"]]["status"] == "kept" and by_id[r["chunk_id"]]["attempts"] == 2 for r in judged)
    finally:
        led.close()


def _schema1_ledger(run: Path) -> None:
    """A run folder as prepbench wrote it before the ``detail``/``reply``/revisit-error columns and events."""
    import sqlite_utils

    run.mkdir()
    db = sqlite_utils.Database(run / "ledger.sqlite")
    old = {
        t: {k: v for k, v in cols.items() if k not in ADDED_COLUMNS[t]}
        for t, cols in (("chunks", CHUNKS), ("calls", CALLS), ("revisits", REVISITS))
    }
    db["run"].insert_all(
        [
            {"key": "initialized", "value": "true"},
            {"key": "schema_version", "value": "1"},
            {"key": "skill_name", "value": '"finance"'},
        ],
        pk="key",
    )
    db["documents"].create(DOCUMENTS, pk="doc_id")
    db["documents"].insert({"doc_id": "d1", "rel_path": "a.md", "status": "ingested", "reason": None})
    db["chunks"].create(old["chunks"], pk="chunk_id")
    db["calls"].create(old["calls"], pk="id")
    db["revisits"].create(old["revisits"], pk=("chunk_id", "sample_type"))
    db["samples"].create(SAMPLES, pk="sample_id")
    base = {"doc_id": "d1", "doc_path": "a.md", "doc_index": 0, "heading_path": "[]", "start_line": 1, "end_line": 2}
    db["chunks"].insert_all(
        [
            {**base, "chunk_id": "c1", "idx": 0, "text": "x", "status": "skipped", "skip_reason": "all_rejected",
             "error": "all 2 candidates rejected: schema x2", "attempts": 1},
            {**base, "chunk_id": "c2", "idx": 1, "text": "y", "status": "failed", "skip_reason": None,
             "error": "GenerationError: generation failed (server)", "attempts": 1},
        ]
    )  # fmt: skip
    db.conn.close()


def test_an_old_ledger_is_read_as_is_and_migrated_when_opened_for_writing(tmp_path):
    run = tmp_path / "old-run"
    _schema1_ledger(run)
    # read-only (status): no migration, no error
    st = run_cli("status", str(run), "--json", "--show-failures", "3")
    assert st.returncode == 0, st.stderr
    payload = json.loads(st.stdout)
    assert payload["coverage"]["skip_reasons"] == {"all_rejected": 1} and payload["failures"] == []
    assert "detail" not in {r[1] for r in sqlite3.connect(run / "ledger.sqlite").execute("PRAGMA table_info(chunks)")}
    # a writer migrates: the rule counts move to detail, a real error stays where it is
    led = RunFolder(run)
    try:
        rows = {r["chunk_id"]: r for r in led.chunk_rows()}
        assert rows["c1"]["detail"] == "all 2 candidates rejected: schema x2" and rows["c1"]["error"] is None
        assert rows["c2"]["error"].startswith("GenerationError") and rows["c2"]["detail"] is None
        assert {"reply"} <= set(led.db["calls"].columns_dict) and {"error", "attempts"} <= set(led.db["revisits"].columns_dict)
        assert led.events() == [] and led.revisit_counts()["failed"] == 0
        led.record_event("finished", "ok")
        assert [e["kind"] for e in led.events()] == ["finished"]
    finally:
        led.close()
    led = RunFolder(run)  # a second open finds nothing to migrate
    try:
        assert led.chunk_rows()[0]["detail"] == "all 2 candidates rejected: schema x2"
    finally:
        led.close()
