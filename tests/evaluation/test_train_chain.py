"""The whole construction-track chain on CPU: a prepbench run of the shipped finance slice mixed
with a Dolly-15k slice -> LlamaFactory configs -> tiny model trained (mix and Dolly-only reference)
-> lm-evaluation-harness on slices of two shipped benchmarks -> PGR."""

from __future__ import annotations

import json

import pytest
import yaml

from prepbench.evaluation import train as T
from prepbench.evaluation.evaluate import evaluate
from prepbench.evaluation.records import write_records

from cli_helpers import SLICE, run_cli
from training_fixtures import make_tiny_model

LIMIT = 6


def test_run_to_pgr_on_cpu(tmp_path):
    run = tmp_path / "fin"
    p = run_cli("run", "--skill", "finance", "--corpus", str(SLICE), "--out", str(run))
    assert p.returncode == 0, p.stderr[-2000:]
    accepted = [x for x in (run / "export" / "sharegpt.jsonl").read_text().split("\n") if x]
    assert len(accepted) > 20

    base = make_tiny_model(tmp_path)
    cfg_dir = tmp_path / "cfg"
    p = run_cli(
        "train", "config", str(run), "--base", str(base), "--template", "default", "--dolly-limit", "40", "--out", str(cfg_dir)
    )
    assert p.returncode == 0, p.stderr[-2000:]
    man = json.loads((cfg_dir / "manifest.json").read_text())
    assert man["runs"][0]["rows"] == len(accepted) and man["dolly"]["rows"] == 40
    # the finance run's dataset_info.json and YAMLs follow LlamaFactory's schema
    T.validate_dataset_info(json.loads((cfg_dir / "data" / "dataset_info.json").read_text()), "dataset_info.json")
    mix_cfg = yaml.safe_load((cfg_dir / "mix.yaml").read_text())
    assert set(mix_cfg) <= set(T.llamafactory_arg_names()) and mix_cfg["dataset"] == "prepbench_fin,dolly15k"

    smoke = [
        "--set",
        "learning_rate=3e-3",
        "--set",
        "cutoff_len=128",
        "--set",
        "lr_scheduler_type=constant",
        "--set",
        "warmup_ratio=0",
        "--set",
        "logging_steps=1",
    ]
    p = run_cli("train", "run", str(cfg_dir / "reference.yaml"), "--max-steps", "6", *smoke)
    assert p.returncode == 0, p.stderr[-2000:]
    assert "trained on CPU: 6 steps, 40 samples" in p.stdout
    mix = T.run_training(
        cfg_dir / "mix.yaml", max_steps=6, backend="cpu", overrides=T.parse_overrides([s for s in smoke if s != "--set"])
    )
    assert mix["samples"] == len(accepted) + 40 and mix["losses"][-1] < mix["losses"][0]

    paths = {}
    for label, model in (("base", base), ("reference", cfg_dir / "saves" / "reference"), ("mix", cfg_dir / "saves" / "mix")):
        recs = evaluate(str(model), ["arc_challenge", "gsm8k"], limit=LIMIT, max_gen_toks=8, label=label)
        assert {(r.benchmark, r.n) for r in recs if r.primary} == {("arc_challenge", LIMIT), ("gsm8k", LIMIT)}
        assert all(0.0 <= r.score <= 1.0 for r in recs)
        paths[label] = write_records(tmp_path / f"{label}.jsonl", recs)
    mix_rec = json.loads((tmp_path / "mix.jsonl").read_text().split("\n")[0])
    assert mix_rec["base_model"] == str(base) and mix_rec["candidate"] == "prepbench_fin,dolly15k"

    out = tmp_path / "pgr.json"
    p = run_cli(
        "pgr",
        "--base",
        str(paths["base"]),
        "--reference",
        str(paths["reference"]),
        "--trained",
        str(paths["mix"]),
        "--out",
        str(out),
    )
    assert p.returncode == 0, p.stderr[-2000:]
    res = json.loads(out.read_text())[0]
    rows = {r["benchmark"]: r for r in res["rows"]}
    assert set(rows) == {"arc_challenge", "gsm8k"}
    for r in rows.values():
        assert r["status"] in ("ok", "degenerate")
        if r["status"] == "ok":
            assert r["pgr"] == pytest.approx((r["trained"] - r["base"]) / (r["reference"] - r["base"]) * 100)
        else:
            assert r["pgr"] is None and abs(r["reference"] - r["base"]) < 1e-6
    ok = [r["pgr"] for r in rows.values() if r["status"] == "ok"]
    assert res["n_used"] == len(ok)
    assert res["average"] == (pytest.approx(sum(ok) / len(ok)) if ok else None)
