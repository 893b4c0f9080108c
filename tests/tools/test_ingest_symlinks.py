"""Symbolic links out of the corpus are not followed (unless ``--follow-symlinks``).

The corpus is a real chapter of OpenStax *Principles of Finance* (``../shared/corpora``) plus a
link ``p.md`` to a file outside the corpus that holds a secret string; the chat run goes to the
local test server, so every request can be searched for the secret.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from prepbench.tools.errors import CorpusError
from prepbench.tools.ingest import ingest_corpus
from prepbench.tools.ledger import RunFolder

from cli_helpers import book_chapter, chat_run_args, run_cli

SECRET = "root:x:0:0:TOP-SECRET-7f3e91:/root:/bin/bash"
KEY = "sk-symlink-test-31"


@pytest.fixture
def linked(tmp_path) -> tuple[Path, Path]:
    """``(corpus, outside file)``: a chapter, ``p.md`` -> a secret file, ``ext/`` -> a folder outside."""
    corpus = book_chapter(tmp_path / "C", "07-time-value-of-money-i-single-payment-value.md")
    outside = tmp_path / "outside"
    outside.mkdir()
    secret = outside / "passwd.md"
    secret.write_text(f"# Accounts\n\n{SECRET}\n" * 40, encoding="utf-8")
    (corpus / "p.md").symlink_to(secret)
    (corpus / "ext").symlink_to(outside, target_is_directory=True)
    (corpus / "inside.md").symlink_to(corpus / "07-time-value-of-money-i-single-payment-value.md")
    return corpus, secret


def test_ingest_skips_links_out_of_the_corpus_with_a_reason(linked):
    corpus, secret = linked
    c = ingest_corpus(corpus)
    assert [d.rel_path for d in c.documents] == ["07-time-value-of-money-i-single-payment-value.md"]  # inside link: read once
    assert all(SECRET not in d.text for d in c.documents)
    reasons = {s.rel_path: s.reason for s in c.skipped}
    assert set(reasons) == {"p.md", "ext"}
    assert "symbolic link to a file outside the corpus" in reasons["p.md"] and str(secret) in reasons["p.md"]
    assert "--follow-symlinks" in reasons["p.md"] and "folder outside the corpus" in reasons["ext"]
    followed = ingest_corpus(corpus, follow_symlinks=True)
    assert {d.rel_path for d in followed.documents} >= {"p.md", "ext/passwd.md"}
    assert any(SECRET in d.text for d in followed.documents)


def test_a_corpus_of_only_outside_links_is_an_error_naming_the_flag(tmp_path):
    secret = tmp_path / "secret.md"
    secret.write_text(SECRET + "\n", encoding="utf-8")
    corpus = tmp_path / "C"
    corpus.mkdir()
    (corpus / "p.md").symlink_to(secret)
    with pytest.raises(CorpusError, match="--follow-symlinks"):
        ingest_corpus(corpus)


def test_a_chat_run_never_sends_or_stores_a_file_out_of_the_corpus(llm_server, linked, tmp_path):
    corpus, _ = linked
    out = tmp_path / "run"
    p = run_cli(*chat_run_args(corpus, out, llm_server), "--limit", "6", "-q", env_extra={"OPENAI_API_KEY": KEY})
    assert p.returncode == 0, p.stderr + p.stdout
    assert "Traceback" not in p.stderr
    assert llm_server.requests and all(SECRET not in json.dumps(r["body"]) for r in llm_server.requests)
    for f in out.rglob("*"):
        if f.is_file():
            assert b"TOP-SECRET-7f3e91" not in f.read_bytes(), f
    rows = documents(out)
    assert rows["p.md"]["doc_status"] == "skipped" and "outside the corpus" in rows["p.md"]["reason"]
    assert rows["ext"]["doc_status"] == "skipped" and not rows["p.md"]["chunks"]


def test_follow_symlinks_flag_reads_them(linked, tmp_path):
    corpus, _ = linked
    out = tmp_path / "run"
    p = run_cli("run", "--corpus", str(corpus), "--out", str(out), "--limit", "3", "--follow-symlinks", "-q")
    assert p.returncode == 0, p.stderr + p.stdout
    rows = documents(out)
    assert rows["p.md"]["doc_status"] == "ingested" and rows["ext/passwd.md"]["doc_status"] == "ingested"


def documents(out: Path) -> dict[str, dict]:
    """The run's documents by path (``document``, ``doc_status``, ``reason``, ``chunks``...)."""
    ledger = RunFolder(out)
    try:
        return {r["document"]: r for r in ledger.document_rows()}
    finally:
        ledger.close()
