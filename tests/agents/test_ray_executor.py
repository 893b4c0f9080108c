"""``--executor ray``: chunks and generation slots generated in Ray workers, committed by the driver.

One local Ray instance (``num_cpus=2``) serves the module. Each check compares with the local
executor's export of the same run, byte for byte: the offline generator on real chapters
(coverage loop included), a chat model against the local test server, a generation run; then a
Ray worker SIGKILLed while it holds chunks, and the driver SIGKILLed mid-run and run again.
"""

from __future__ import annotations

import os
import shutil
import signal
import sqlite3
import subprocess
import sys
import threading
import time
from collections import Counter
from pathlib import Path

import pytest

from prepbench.agents.runner import run_pipeline
from prepbench.tools.errors import EnvironmentFault, LedgerError, PrepbenchError
from prepbench.tools.executors import ExecutorOptions
from prepbench.tools.executors.ray import RayPool
from prepbench.tools.ledger import RunFolder
from prepbench.tools.run import RunOptions

from cli_helpers import SHARED, book_chapter, chat_run_options, prepbench_cmd, run_cli

REPO = Path(__file__).resolve().parents[2]

ray = pytest.importorskip("ray")

EXPORTS = ("sharegpt.jsonl", "alpaca.jsonl", "openai.jsonl", "samples.jsonl", "dataset_info.json")
KEY = "sk-prepbench-ray-3c9f"
MEDICAL = SHARED / "corpora" / "medical" / "openstax-pharmacology-for-nurses"


@pytest.fixture(scope="module")
def cluster():
    """A local Ray instance with 2 CPUs for the module; its address (for a driver in a subprocess)."""
    ray.init(num_cpus=2, namespace="prepbench", include_dashboard=False, log_to_driver=False, configure_logging=False)
    try:
        yield ray.get_runtime_context().gcs_address
    finally:
        ray.shutdown()


@pytest.fixture(scope="module")
def chapters(tmp_path_factory) -> Path:
    """Two chapters of a real book: pharmacology (drug tables, vignettes) with its SOURCE.md."""
    d = book_chapter(tmp_path_factory.mktemp("pharm"), "07-anti-infective-drugs.md", MEDICAL)
    return book_chapter(d, "17-antidysrhythmic-drugs.md", MEDICAL)


@pytest.fixture(scope="module")
def medical_full(tmp_path_factory) -> Path:
    """The medical skill with the full sample-type mix for the offline generator too (its shipped
    ``completion.offline`` asks for no process or case questions), so the coverage loop runs."""
    dest = tmp_path_factory.mktemp("skill") / "medical"
    shutil.copytree(REPO / "skills" / "medical", dest)
    cov = dest / "coverage.yaml"
    text = cov.read_text(encoding="utf-8")
    assert "      process_qa: 0.0\n      case_application: 0.0" in text
    cov.write_text(
        text.replace("      process_qa: 0.0\n      case_application: 0.0", "      process_qa: 0.05\n      case_application: 0.05")
    )
    return dest


@pytest.fixture(autouse=True)
def _skill(medical_full, monkeypatch):
    monkeypatch.setattr(sys.modules[__name__], "SKILL", str(medical_full))


SKILL = "medical"


def offline(corpus: Path, out: Path, executor: dict | None = None, limit: int = 24) -> RunOptions:
    return RunOptions(corpus=[str(corpus)], skill=SKILL, out=str(out), limit=limit, executor=executor or {})


def same_export(a: Path, b: Path) -> None:
    for name in EXPORTS:
        assert (a / "export" / name).read_bytes() == (b / "export" / name).read_bytes(), name


def ledger_state(out: Path) -> tuple[list, Counter]:
    """Every chunk's (status, skip reason, accepted, rejected, attempts), and the revisits per round."""
    run = RunFolder.open(out, readonly=True)
    try:
        chunks = [(c["status"], c["skip_reason"], c["n_accepted"], c["n_rejected"], c["attempts"]) for c in run.chunk_rows()]
        rounds = Counter(r[0] for r in run.db.execute("SELECT round FROM revisits").fetchall())
        return chunks, rounds
    finally:
        run.close()


class Pools:
    """Records the pools a run opens (to reach their workers from the test)."""

    def __init__(self, monkeypatch):
        self.pools: list[RayPool] = []
        self.workers: list[int] = []
        serve = RayPool.serve

        def recording(pool, key, recipe):
            self.pools.append(pool)
            self.workers.append(pool.workers)
            return serve(pool, key, recipe)

        monkeypatch.setattr(RayPool, "serve", recording)


def test_ray_missing_is_one_line_with_the_pip_command(monkeypatch, tmp_path):
    monkeypatch.setitem(sys.modules, "ray", None)  # as if Ray were not installed
    with pytest.raises(EnvironmentFault, match=r"--executor ray needs Ray.*pip install 'prepbench\[ray\]'") as e:
        ExecutorOptions("ray").check()
    assert e.value.exit_code == 3 and "\n" not in str(e.value)
    with pytest.raises(PrepbenchError, match="need --executor ray"):
        ExecutorOptions("local", workers=2).check()
    with pytest.raises(PrepbenchError, match="unknown executor 'slurm'"):
        ExecutorOptions("slurm").check()
    # the CLI: one line, exit 3, nothing written
    env = {"PYTHONPATH": str(tmp_path)}  # a `ray` package that cannot be imported
    (tmp_path / "ray").mkdir()
    (tmp_path / "ray" / "__init__.py").write_text("raise ImportError('no ray here')\n")
    out = tmp_path / "run"
    p = run_cli("run", "--skill", "finance", "--corpus", str(MEDICAL), "--out", str(out), "--executor", "ray", env_extra=env)
    assert p.returncode == 3
    lines = [line for line in (p.stderr + p.stdout).splitlines() if line.strip()]
    assert len(lines) == 1 and "pip install 'prepbench[ray]'" in lines[0], lines
    assert not out.exists()


def test_offline_run_in_ray_workers_exports_what_the_local_executor_does(cluster, chapters, tmp_path, monkeypatch):
    local = tmp_path / "local" / "run"  # same folder name: dataset_info.json names the dataset after it
    run_pipeline(offline(chapters, local))
    pools = Pools(monkeypatch)
    remote = tmp_path / "ray" / "run"
    result = run_pipeline(offline(chapters, remote, {"kind": "ray", "workers": 2}))
    assert pools.workers == [2]
    assert result["export"]["count"] > 10 and not result["stopped"]
    same_export(local, remote)
    chunks, rounds = ledger_state(remote)
    assert (chunks, rounds) == ledger_state(local)
    assert rounds  # the coverage loop ran (its revisits planned by the driver, generated in workers)
    assert all(c[4] == 1 for c in chunks)  # every chunk recorded once


def test_a_worker_killed_while_it_holds_chunks_gets_them_reissued(cluster, chapters, tmp_path, monkeypatch):
    local = tmp_path / "local" / "run"
    run_pipeline(offline(chapters, local, limit=40))
    pools = Pools(monkeypatch)
    remote = tmp_path / "ray" / "run"
    killed: list[int] = []

    def kill_a_busy_worker() -> None:  # SIGKILL worker 0's process while it holds a batch
        deadline = time.time() + 120
        while time.time() < deadline and not pools.pools:
            time.sleep(0.01)
        pool = pools.pools[0]
        pid = pool.ray.get(pool.actors[0].call.remote(os.getpid))
        while time.time() < deadline and pool.inflight[0] == 0:
            time.sleep(0.005)
        os.kill(pid, signal.SIGKILL)
        killed.append(pid)

    t = threading.Thread(target=kill_a_busy_worker)
    t.start()
    result = run_pipeline(offline(chapters, remote, {"kind": "ray", "workers": 2}, limit=40))
    t.join()
    assert killed and pools.pools[0].reissued >= 1  # the batch it held was sent again
    assert not result["stopped"]
    same_export(local, remote)
    assert ledger_state(remote) == ledger_state(local)


def recorded(out: Path) -> int:
    try:
        run = RunFolder.open(out, readonly=True)
    except (sqlite3.Error, LedgerError):
        return 0
    try:
        return sum(1 for c in run.chunk_rows() if c["status"] != "pending")
    except sqlite3.Error:
        return 0
    finally:
        run.close()


def test_driver_killed_mid_run_resumes_to_the_local_export(cluster, chapters, tmp_path):
    # both chapters whole (136 chunks): with 40, the in-order committer, held by the first batches
    # while the workers built the run, once recorded all 40 between two polls, and the kill came after the run
    local = tmp_path / "local" / "run"
    run_pipeline(offline(chapters, local, limit=None))
    total = recorded(local)
    out = tmp_path / "ray" / "run"
    cmd = ["run", "--skill", SKILL, "--corpus", str(chapters), "--out", str(out), "-q"]
    cmd += ["--executor", "ray", "--workers", "2", "--ray-address", cluster]
    env = {**os.environ, "RAY_AUTH_MODE": os.environ.get("RAY_AUTH_MODE", "token")}
    try:
        proc = subprocess.Popen(prepbench_cmd(*cmd), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=env)
        deadline = time.time() + 180
        while time.time() < deadline and proc.poll() is None and recorded(out) < 8:
            time.sleep(0.01)
        assert proc.poll() is None, proc.stderr.read().decode() if proc.stderr else ""
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(timeout=30)
        assert 8 <= recorded(out) < total
        p = run_cli(*cmd, env_extra={"RAY_AUTH_MODE": env["RAY_AUTH_MODE"]})
        assert p.returncode == 0, p.stderr
    finally:  # the driver's warm workers (named, detached) hold the module cluster's CPUs: end them
        from ray.util import list_named_actors

        for name in list_named_actors():
            ray.kill(ray.get_actor(name), no_restart=True)
    same_export(local, out)
    assert ledger_state(out) == ledger_state(local)


def test_chat_model_run_in_ray_workers_equals_the_local_run(cluster, llm_server, tmp_path, monkeypatch):
    corpus = book_chapter(tmp_path / "bonds", "10-bonds-and-bond-valuation.md")
    kw = {"limit": 8, "concurrency": 4, "max_repairs": 1}
    local = tmp_path / "local" / "run"
    run_pipeline(chat_run_options(corpus, local, llm_server, "skill", KEY, {"concurrency": 4}, **kw))
    n_local = len(llm_server.requests)
    llm_server.reset()
    pools = Pools(monkeypatch)
    remote = tmp_path / "ray" / "run"
    opts = chat_run_options(corpus, remote, llm_server, "skill", KEY, {"concurrency": 4}, executor={"kind": "ray"}, **kw)
    result = run_pipeline(opts)
    assert not result["stopped"] and pools.workers == [2]
    same_export(local, remote)
    assert ledger_state(remote) == ledger_state(local)
    assert len(llm_server.requests) == n_local  # the probe ran once, in the driver; the workers asked the rest
    assert max(llm_server.max_inflight, 1) <= 4  # --concurrency is the total over the workers
    run = RunFolder.open(remote, readonly=True)
    try:
        assert run.events("probe") and run.counts()["calls"]["input_tokens"] > 0
    finally:
        run.close()


def test_other_families_refuse_ray(cluster, tmp_path, llm_server):
    corpus = book_chapter(tmp_path / "bonds", "10-bonds-and-bond-valuation.md")
    opts = chat_run_options(corpus, tmp_path / "run", llm_server, "direct", KEY, executor={"kind": "ray"}, limit=2)
    with pytest.raises(PrepbenchError, match="agent 'direct' runs in this process only"):
        run_pipeline(opts)
    assert not (tmp_path / "run").exists()


def test_generation_slots_in_ray_workers_screen_with_the_seeds_and_the_ngram_index(cluster, llm_server, tmp_path, monkeypatch):
    """Instance mode on GSM8K with --decontaminate gsm8k: slot 0's first reply copies a seed, slot 1's
    writes a GSM8K test item; the workers' screener rejects both (seed_duplicate, ngram_overlap) and
    asks again, as the local executor does, and the exports are the same."""
    from prepbench.agents.modes import run_generate
    from prepbench.evaluation.readers import read_seeds
    from prepbench.tools.decontaminate import DecontaminationSpec, TestSet
    from prepbench.tools.skills import load_skill
    from prepbench.tools.slots import GenerateOptions, plan_slots, slot_input

    from llm_modes import DEMO_RE
    from llm_replies import _wrap_structured
    from llm_server import smart_reply

    data = SHARED / "datasets" / "gsm8k"
    test_item = __import__("json").loads((data / "test.jsonl").read_text().splitlines()[5])
    spec = DecontaminationSpec({"gsm8k": TestSet(data / "test.jsonl")}, embed_threshold=None, cache=tmp_path / "c" / "e.sqlite")
    matcher = spec.build().ngram_match
    seeds = [s for s in read_seeds(data / "train.jsonl") if not matcher(f"{s.instruction} {s.response}")]
    slots = [slot_input(c) for c in plan_slots("instance", seeds, 6, 11, load_skill("math"), "d", "train.jsonl")]
    first = {s["demonstrations"][0]["instruction"]: i for i, s in enumerate(slots)}

    def reply(req):
        text = req.messages[0].text
        i = first.get(DEMO_RE.search(text).group("q"))
        if "was rejected:" not in text and i == 0:
            d = slots[0]["demonstrations"][0]  # its answer re-marked as the math skill wants: a near copy
            response = d["response"].replace("#### ", "\\boxed{") + "}"
            return _wrap_structured(req, {"instruction": d["instruction"], "response": response})
        if "was rejected:" not in text and i == 1:
            answer = test_item["answer"].split("####")[-1].strip()
            return _wrap_structured(req, {"instruction": test_item["question"], "response": f"It follows.\n\\boxed{{{answer}}}"})
        return smart_reply(req)

    def run(out: Path, executor: dict) -> None:
        llm_server.reset()
        llm_server.add_rule("<demonstration 1>", reply)
        opts = GenerateOptions(
            mode="instance",
            seeds=str(data / "train.jsonl"),
            skill="math",
            out=str(out),
            model="openai:test-model",
            n=6,
            run_seed=11,
            concurrency=2,
            decontamination=spec,
            model_options={"base_url": llm_server.url + "/v1", "api_key": KEY, "concurrency": 2},
            executor=executor,
        )
        assert not run_generate(opts, seeds)["stopped"]

    local, remote = tmp_path / "local" / "run", tmp_path / "ray" / "run"
    run(local, {})
    pools = Pools(monkeypatch)
    run(remote, {"kind": "ray", "workers": 2})
    assert pools.workers == [2]
    same_export(local, remote)
    run = RunFolder.open(remote, readonly=True)
    try:
        rules = {r["chunk_idx"]: r["rule"] for r in run.sample_rows(status="rejected")}
        assert rules == {0: "seed_duplicate", 1: "ngram_overlap"}
        assert all(c["status"] == "kept" for c in run.chunk_rows())
    finally:
        run.close()
