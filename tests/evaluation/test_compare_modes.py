"""``prepbench compare --mode instance``: two generators (two model names on the local test
server, one priced higher) on the same GSM8K slots, an LLM judge, a reference LM for response
perplexity and score records for PGR; the report carries AgoraBench's table."""

from __future__ import annotations

import csv
import json
import re

import pytest

from prepbench.evaluation.readers import read_samples
from prepbench.tools.ledger import RunFolder

from cli_helpers import SHARED, error_lines, run_cli

GSM8K = SHARED / "datasets" / "gsm8k" / "train.jsonl"


@pytest.fixture(scope="module")
def tiny_lm(tmp_path_factory):
    from prepbench.evaluation.tiny import build_tiny_model

    texts = [s.text for s in read_samples(GSM8K)[:150]]
    return build_tiny_model(tmp_path_factory.mktemp("lm"), texts, vocab_size=300, hidden_size=16, num_layers=1, seed=1)


def records(path):
    rows = []
    for model, scores in {"base": (0.30, 0.20), "ref": (0.50, 0.40), "mix-small": (0.40, 0.25), "big": (0.45, 0.35)}.items():
        for bench, score in zip(("gsm8k", "math500"), scores):
            rows.append({"model": model, "benchmark": bench, "metric": "exact_match", "score": score, "n": 100, "primary": True})
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


def test_compare_mode_instance_with_two_priced_generators(llm_server, tmp_path, tiny_lm):
    llm_server.add_rule("### Aspect to grade", lambda req: f"Feedback: fine.\nScore: {2 + len(req.last_user_text) % 3}")
    prices = tmp_path / "prices.yaml"
    prices.write_text("models:\n  small-gen: {input: 0.15, output: 0.60}\n  big-gen: {input: 3.00, output: 15.00}\n")
    out = tmp_path / "cmp"
    args = ["compare", "--mode", "instance", "--generators", "small=openai:small-gen,big=openai:big-gen"]
    args += ["--seeds", str(GSM8K), "--n", "10", "--skill", "math", "--out", str(out), "--base-url", llm_server.url + "/v1"]
    args += ["--prices", str(prices), "--judge", "openai:judge", "--lm", str(tiny_lm), "--cache", str(tmp_path / "e.sqlite")]
    args += [
        "--records",
        str(records(tmp_path / "rec.jsonl")),
        "--base",
        "base",
        "--reference",
        "ref",
        "--trained",
        "small=mix-small",
    ]
    args += ["--concurrency", "4", "-q"]
    p = run_cli(*args, env_extra={"OPENAI_API_KEY": "sk-cmp"})
    assert p.returncode == 0, p.stderr + p.stdout
    rep = json.loads((out / "report.json").read_text())
    small, big = rep["families"]
    assert (small["family"], small["model"], big["model"]) == ("small", "openai:small-gen", "openai:big-gen")
    # the same slots for both generators, drawn from the run seed
    texts = []
    for g in (small, big):
        run = RunFolder.open(g["run"], readonly=True)
        texts.append([c["text"] for c in run.chunk_rows()])
        run.close()
    assert texts[0] == texts[1] and len(texts[0]) == 10
    for g, (pin, pout) in ((small, (0.15, 0.60)), (big, (3.0, 15.0))):
        calls = g["calls"]
        assert calls["cost_usd"] == pytest.approx((calls["input_tokens"] * pin + calls["output_tokens"] * pout) / 1e6, rel=1e-3)
        assert g["derived"]["cost_per_accepted_usd"] == pytest.approx(calls["cost_usd"] / g["samples"]["accepted"])
        assert g["samples"]["accepted"] == 10
        assert 2 <= g["intrinsic"]["judge_quality"]["mean"] <= 4 and g["intrinsic"]["judge_difficulty"]["n_scored"] == 10
        assert g["intrinsic"]["response_ppl"]["response_ppl"]["n_valid"] == 10
        assert 0 < g["intrinsic"]["diversity"]["instruction_diversity"] < 1
    assert big["calls"]["cost_usd"] > 10 * small["calls"]["cost_usd"]
    # PGR: small is labelled mix-small in the records, big by its own label
    assert small["pgr"] == pytest.approx(((0.40 - 0.30) / 0.20 * 100 + (0.25 - 0.20) / 0.20 * 100) / 2)
    assert big["pgr"] == pytest.approx(((0.45 - 0.30) / 0.20 * 100 + (0.35 - 0.20) / 0.20 * 100) / 2)
    md = (out / "report.md").read_text()
    assert md.startswith("# prepbench compare --mode instance: small, big") and "## AgoraBench: generators compared" in md
    header = next(line for line in md.splitlines() if line.startswith("| generator (model)"))
    for col in ("cost (USD)", "cost / accepted (USD)", "judge quality", "judge difficulty", "response PPL", "PGR (%)"):
        assert col in header
    html = (out / "report.html").read_text()
    assert (
        "<table id='construction'>" in html and "data:image/png;base64," in html and not re.search(r"(src|href)=['\"]http", html)
    )
    rows = list(csv.DictReader((out / "intrinsic.csv").open()))
    assert [r["candidate"] for r in rows] == ["small", "big"] and float(rows[1]["cost_per_accepted_usd"]) > 0
    # re-running resumes both runs and reuses the cached metrics: no new request at all
    n = llm_server.count()
    p = run_cli(*args, env_extra={"OPENAI_API_KEY": "sk-cmp"})
    assert p.returncode == 0 and llm_server.count() == n
    p = run_cli("compare", "--mode", "instance", "--seeds", str(GSM8K), "--out", str(tmp_path / "x"))
    assert p.returncode == 2 and "--generators" in error_lines(p)[0]
