"""Provider batch APIs (``run --batch``) against the local test server's batch protocols.

The skill agent runs on the first chunks of the shipped slice ``corpora/finance-openstax``,
online and in batch mode, with the same scripted replies (``tests/llm_server.py``); the export
files must be the same. A batch run killed (SIGKILL) while its job runs is re-run: it polls the
same job, and the server sees no request submitted twice. Costs are at the batch price; an
errored item is retried in a new job; ``--batch`` with a spec that has no batch API, or a server
without the batch endpoints, stops in one line.
"""

from __future__ import annotations

import contextlib
import os
import signal
import sqlite3
import subprocess
import time
from collections import Counter
from pathlib import Path

import pytest

from prepbench.agents.models.prices import PriceTable
from prepbench.agents.runner import run_pipeline
from prepbench.tools.errors import LedgerError, PrepbenchError
from prepbench.tools.ledger import RunFolder
from prepbench.tools.run import RunOptions

from cli_helpers import SLICE, error_lines, prepbench_cmd, run_cli
from llm_server import Faults

KEY = "sk-prepbench-batch-key-7c2e91"
LIMIT = 3
DATA_FILES = ("sharegpt.jsonl", "alpaca.jsonl", "openai.jsonl", "samples.jsonl", "dataset_info.json")


@pytest.fixture(scope="module")
def prices(tmp_path_factory) -> Path:
    """A price table for the test server's model (USD per 1M tokens)."""
    p = tmp_path_factory.mktemp("prices") / "prices.yaml"
    p.write_text("per_tokens: 1000000\nmodels:\n  test-model: {input: 2.0, output: 8.0}\n", encoding="utf-8")
    return p


def options(out: Path, server, provider: str, prices: Path, batch: bool, deadline: float | None = None) -> RunOptions:
    """A run of the skill agent on the first LIMIT chunks of the slice against the test server
    (``deadline``: seconds a batch job may run)."""
    base = server.url + "/v1" if provider == "openai" else server.url
    model_options = {"base_url": base, "api_key": KEY, "prices": str(prices)}
    if batch:
        model_options.update(batch=True, batch_poll=0.05, batch_deadline=deadline)
    return RunOptions(
        corpus=[str(SLICE)],
        skill="finance",
        out=str(out),
        model=f"{provider}:test-model",
        limit=LIMIT,
        model_options=model_options,
    )


@contextlib.contextmanager
def reading(out: Path):
    """The run's ledger opened read-only (beside a running run), closed on the way out."""
    run = RunFolder.open(out, readonly=True)
    try:
        yield run
    finally:
        run.close()


def same_export(a: Path, b: Path) -> None:
    for name in DATA_FILES:
        assert (a / "export" / name).read_bytes() == (b / "export" / name).read_bytes(), name


def model_calls(out: Path) -> list[tuple[str, int, int, float]]:
    """``(node, input tokens, output tokens, cost)`` of every successful model call but the probe's, sorted."""
    with reading(out) as run:
        rows = run.db.execute("SELECT node, input_tokens, output_tokens, cost_usd FROM calls WHERE ok = 1 AND node != 'probe'")
        return sorted(tuple(r) for r in rows.fetchall())


def batch_state(out: Path) -> tuple[list[dict], list[dict]]:
    with reading(out) as run:
        return run.batch_jobs(), run.batch_requests()


@pytest.fixture(scope="module")
def online(tmp_path_factory, llm_server_session, prices):
    """The online runs, one per provider, made once for the module."""
    done: dict[str, Path] = {}

    def get(provider: str) -> Path:
        if provider not in done:
            llm_server_session.reset()
            out = tmp_path_factory.mktemp(f"online-{provider}") / "run"
            result = run_pipeline(options(out, llm_server_session, provider, prices, batch=False))
            assert not result["stopped"] and result["export"]["count"] > 0
            done[provider] = out
        return done[provider]

    return get


@pytest.mark.parametrize("provider", ["openai", "anthropic"])
def test_batch_run_exports_as_online_at_half_the_cost(provider, online, llm_server, prices, tmp_path):
    reference = online(provider)
    llm_server.reset()
    out = tmp_path / "run"
    result = run_pipeline(options(out, llm_server, provider, prices, batch=True))
    assert not result["stopped"]
    same_export(reference, out)
    subs = llm_server.batches.submissions
    assert subs and all(s["api"] == provider for s in subs)
    assert max(Counter(llm_server.batches.custom_ids()).values()) == 1  # nothing paid twice
    assert len(subs[0]["custom_ids"]) == LIMIT  # the first step (triage) of every chunk is one job
    assert llm_server.count("openai" if provider == "openai" else "anthropic") == sum(len(s["custom_ids"]) for s in subs)
    assert all(r["path"].startswith("batch:") for r in llm_server.requests)  # nothing was sent online
    jobs, requests = batch_state(out)
    assert [j["job_id"] for j in jobs] == [s["id"] for s in subs]
    assert all(j["ended_at"] and j["status"] in ("completed", "ended") for j in jobs)
    assert {r["state"] for r in requests} == {"ok"}
    online_calls, batch_calls = model_calls(reference), model_calls(out)
    assert [c[:3] for c in batch_calls] == [c[:3] for c in online_calls]
    assert all(b[3] == pytest.approx(o[3] / 2) and o[3] > 0 for b, o in zip(batch_calls, online_calls))
    assert KEY.encode() not in (out / "ledger.sqlite").read_bytes()
    status = run_cli("status", str(out))
    assert status.returncode == 0, status.stderr
    n = sum(len(s["custom_ids"]) for s in subs)
    assert f"batch: {len(subs)} {provider} jobs ({len(subs)} ended, {n} requests); latest {subs[-1]['id']}" in status.stdout


def collecting(events: list[str]):
    """A progress factory that collects the run's event lines (the CLI prints them above its bar)."""

    def progress(ctx):
        ctx.on_event = lambda kind, message: events.append(message)
        return contextlib.nullcontext()

    return progress


def recorded_jobs(out: Path) -> list[str]:
    """Job ids the ledger of a running run holds (read beside the writer)."""
    try:
        with reading(out) as run:
            return [j["job_id"] for j in run.batch_jobs() if j["job_id"]]
    except (LedgerError, sqlite3.Error):  # not created yet
        return []


def test_killed_batch_run_polls_the_same_job(online, llm_server, prices, tmp_path):
    """A run SIGKILLed while its first job runs is run again: it polls that job."""
    reference = online("openai")
    llm_server.reset()
    llm_server.batches.delay_s = 60.0  # the first job stays in progress until the test shortens it
    out = tmp_path / "run"
    args = ["run", "--corpus", str(SLICE), "--skill", "finance", "--out", str(out), "--model", "openai:test-model"]
    args += [
        "--base-url",
        llm_server.url + "/v1",
        "--limit",
        str(LIMIT),
        "--prices",
        str(prices),
        "--batch",
        "--batch-poll",
        "0.05",
    ]
    env = {**os.environ, "OPENAI_API_KEY": KEY}
    proc = subprocess.Popen(prepbench_cmd(*args), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=env)
    try:
        deadline = time.time() + 120
        while time.time() < deadline and proc.poll() is None and not recorded_jobs(out):
            time.sleep(0.02)
        assert proc.poll() is None, proc.stderr.read().decode() if proc.stderr else ""
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
    first = recorded_jobs(out)
    assert first == [llm_server.batches.submissions[0]["id"]]  # recorded before the kill
    assert len(llm_server.batches.submissions) == 1
    llm_server.batches.delay_s = 0.3
    events: list[str] = []
    result = run_pipeline(options(out, llm_server, "openai", prices, batch=True), progress=collecting(events))
    assert result["resumed"] and not result["stopped"]
    assert f"batch job {first[0]} (openai): submitted by an earlier run, polling it" in events
    subs = llm_server.batches.submissions
    assert subs[0]["id"] == first[0] and len(subs) > 1
    assert max(Counter(llm_server.batches.custom_ids()).values()) == 1  # the server saw no second submission
    jobs, _ = batch_state(out)
    assert jobs[0]["job_id"] == first[0] and jobs[0]["status"] == "completed"
    same_export(reference, out)


def test_deadline_stops_and_a_job_whose_id_was_not_recorded_is_found(online, llm_server, prices, tmp_path):
    """A job still running at the batch deadline stops the run (chunks pending, advice to re-run);
    with its id then missing from the ledger (as after a kill between the create call's return and
    the transaction that records it), the re-run finds the job by its input file and polls it."""
    reference = online("openai")
    llm_server.reset()
    llm_server.batches.delay_s = 60.0
    out = tmp_path / "run"
    first = run_pipeline(options(out, llm_server, "openai", prices, batch=True, deadline=0.3))
    assert first["stopped"] and first["stop"]["pending"] == LIMIT
    job = llm_server.batches.submissions[0]["id"]
    assert first["stop"]["message"].startswith(f"stopped: batch job {job} still running after")
    assert first["stop"]["advice"] == "run the same command later: it polls the same job (nothing is submitted twice)"
    con = sqlite3.connect(out / "ledger.sqlite")
    con.execute("UPDATE batch_jobs SET job_id = NULL, status = 'submitting'")
    con.commit()
    con.close()
    llm_server.batches.delay_s = 0.3
    events: list[str] = []
    second = run_pipeline(options(out, llm_server, "openai", prices, batch=True), progress=collecting(events))
    assert not second["stopped"]
    assert any(e.startswith(f"batch job {job}: found by its input file") for e in events)
    assert max(Counter(llm_server.batches.custom_ids()).values()) == 1
    assert batch_state(out)[0][0]["job_id"] == job
    same_export(reference, out)


def test_errored_item_is_retried_in_a_new_job(online, llm_server, prices, tmp_path):
    reference = online("openai")
    llm_server.reset(Faults(forced=["500"]))  # the first item of the first job fails with HTTP 500
    out = tmp_path / "run"
    result = run_pipeline(options(out, llm_server, "openai", prices, batch=True))
    assert not result["stopped"]
    first = llm_server.batches.submissions[0]["custom_ids"][0]
    retried = [s for s in llm_server.batches.submissions if f"{first}-r1" in s["custom_ids"]]
    assert len(retried) == 1 and retried[0]["id"] != llm_server.batches.submissions[0]["id"]
    with reading(out) as run:
        failed = run.db.execute("SELECT node, error FROM calls WHERE ok = 0").fetchall()
    assert len(failed) == 1 and failed[0][0] == "triage" and "500" in failed[0][1]
    same_export(reference, out)


def test_server_without_batch_api_stops_with_advice(llm_server, prices, tmp_path):
    llm_server.batches.enabled = False
    result = run_pipeline(options(tmp_path / "run", llm_server, "openai", prices, batch=True))
    assert result["stopped"]
    assert "has no openai batch API (HTTP 404" in result["stop"]["message"]
    assert result["stop"]["advice"] == "run without --batch (online requests at the full price)"
    assert result["stop"]["pending"] == LIMIT


def test_batch_with_a_spec_without_batch_api_is_one_line(tmp_path):
    p = run_cli("run", "--corpus", str(SLICE), "--skill", "finance", "--out", str(tmp_path / "run"), "--batch")
    assert p.returncode == 2
    assert error_lines(p) == [
        "error: --batch: model 'extractive' has no batch API; use an openai:<model> or anthropic:<model> spec"
    ]
    assert not (tmp_path / "run").exists()


def test_batch_refuses_react_and_ray_in_one_line(tmp_path):
    base = {"corpus": [str(SLICE)], "skill": "finance", "out": str(tmp_path / "run"), "model": "openai:m"}
    base["model_options"] = {"batch": True}
    with pytest.raises(PrepbenchError, match=r"^--batch: the react agent waits for each reply"):
        RunOptions(**base, agent="react")
    with pytest.raises(PrepbenchError, match=r"^--batch runs in this process: leave out --executor ray$"):
        RunOptions(**base, executor={"kind": "ray"})
    assert RunOptions(**base, agent="direct").model_options.batch


def test_batch_price_is_a_share_of_the_price_from_the_yaml(tmp_path):
    shipped = PriceTable.load()
    assert shipped.batch_factor == 0.5
    assert shipped.cost("gpt-4o", 1000, 1000, batch=True) == pytest.approx(shipped.cost("gpt-4o", 1000, 1000) / 2)
    own = tmp_path / "prices.yaml"
    own.write_text("batch_factor: 0.25\nmodels:\n  m: {input: 4.0, output: 4.0}\n", encoding="utf-8")
    assert PriceTable.load(own).cost("m", 500_000, 0, batch=True) == pytest.approx(0.5)
    own.write_text("batch_factor: 2\nmodels: {}\n", encoding="utf-8")
    with pytest.raises(PrepbenchError, match="field 'batch_factor' must be a number from 0 to 1"):
        PriceTable.load(own)
