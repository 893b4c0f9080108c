"""``prepbench validate``: the run's gate over data made anywhere (issue 10, item 4)."""

from __future__ import annotations

import json

from prepbench.tools.ledger import RunFolder
from prepbench.tools.skills import load_skill
from prepbench.tools.validate import Gate

from cli_helpers import REPO, SHARED, SLICE, error_lines, run_cli

GSM8K = SHARED / "datasets" / "gsm8k" / "test.jsonl"
ALPACA = SHARED / "datasets" / "alpaca" / "alpaca_data_5000.jsonl"


def _lines(path, n):
    with open(path, encoding="utf-8") as f:
        return [json.loads(next(f)) for _ in range(n)]


def test_a_run_folder_passes_its_own_gate(tmp_path):
    out = tmp_path / "run"
    p = run_cli("run", "--corpus", str(SLICE), "--skill", "finance", "--out", str(out), "--limit", "12", "--quiet")
    assert p.returncode == 0, p.stderr
    run = RunFolder.open(out, readonly=True)
    accepted = run.sample_rows(status="accepted")
    run.close()
    assert accepted
    verdicts = tmp_path / "v.jsonl"
    p = run_cli("validate", str(out), "--skill", "finance", "--out", str(verdicts), "--json")
    assert p.returncode == 0, p.stderr
    rows = [json.loads(line) for line in verdicts.read_text().splitlines()]
    assert [r["where"] for r in rows] == [s["sample_id"] for s in accepted]
    assert {r["verdict"] for r in rows} == {"accepted"}, [r for r in rows if r["verdict"] != "accepted"][:3]
    assert all(r["schema"] == "checked" and r["sample_type"] for r in rows)
    assert json.loads(p.stdout) == {"records": len(accepted), "accepted": len(accepted), "rejected": {}}


def test_question_answer_pairs_without_a_source_get_a_verdict_each(tmp_path):
    rows = _lines(GSM8K, 30)
    anchored = {"question": "According to the passage, " + rows[3]["question"], "answer": rows[3]["answer"]}
    data = tmp_path / "sdk.jsonl"  # synthetic-data-kit's shape: question/answer pairs, no source
    data.write_text("".join(json.dumps(r) + "\n" for r in [*rows, rows[0], anchored]))
    verdicts = tmp_path / "v.jsonl"
    p = run_cli("validate", str(data), "--skill", "finance", "--out", str(verdicts), "--json")
    assert p.returncode == 0, p.stderr
    out = [json.loads(line) for line in verdicts.read_text().splitlines()]
    assert [r["where"] for r in out] == [f"{data}:{i}" for i in range(1, 33)]  # input order, one per record
    assert out[30]["verdict"] == "rejected" and out[30]["rule"] == "exact_duplicate"
    assert out[31]["verdict"] == "rejected" and out[31]["rule"] == "source_anchored_phrasing"
    assert all(r["schema"] == "not applicable" and r["rule"] is None for r in out if r["verdict"] == "accepted")
    summary = json.loads(p.stdout)
    assert summary["records"] == 32
    assert summary["accepted"] + sum(summary["rejected"].values()) == 32
    assert summary["accepted"] == sum(r["verdict"] == "accepted" for r in out)


def test_alpaca_rows_are_read_as_question_and_answer(tmp_path):
    rows = _lines(ALPACA, 12)
    # the instruction becomes the question and the output the answer: each is checked as such
    anchored = {**rows[5], "instruction": "According to the text, " + rows[5]["instruction"].lower()}
    refusal = {**rows[6], "output": "As an AI language model, I cannot answer that."}
    data = tmp_path / "alpaca.jsonl"
    data.write_text("".join(json.dumps(r) + "\n" for r in [*rows, anchored, refusal]))
    verdicts = tmp_path / "v.jsonl"
    p = run_cli("validate", str(data), "--skill", "general", "--out", str(verdicts))
    assert p.returncode == 0, p.stderr
    out = [json.loads(line) for line in verdicts.read_text().splitlines()]
    assert len(out) == 14
    assert (out[12]["verdict"], out[12]["rule"]) == ("rejected", "source_anchored_phrasing")
    assert (out[13]["verdict"], out[13]["rule"]) == ("rejected", "meta_answer")
    assert "gate over" in p.stderr and "source_anchored_phrasing" in p.stderr


def test_a_malformed_file_is_one_line_and_exit_2(tmp_path):
    rows = _lines(GSM8K, 4)
    data = tmp_path / "bad.jsonl"
    text = [json.dumps(r) for r in rows]
    text[2] = text[2][:-5]  # a cut line
    data.write_text("\n".join(text) + "\n")
    verdicts = tmp_path / "v.jsonl"
    p = run_cli("validate", str(data), "--skill", "finance", "--out", str(verdicts))
    assert p.returncode == 2
    lines = error_lines(p)
    assert len(lines) == 1 and f"{data}:3" in lines[0] and "Traceback" not in p.stderr
    assert not verdicts.exists()


def test_a_record_without_sample_type_takes_the_one_type_it_fits():
    gate = Gate(load_skill("finance"), dedup=False)
    examples = [
        json.loads(line) for line in (REPO / "skills" / "finance" / "examples" / "finance.jsonl").read_text().splitlines()
    ]
    for ex in examples:
        untyped = {k: v for k, v in ex.items() if k != "sample_type"}
        got = gate.infer_type(untyped)
        assert got in (ex["sample_type"], None)  # never a wrong type
    assert any(gate.infer_type({k: v for k, v in ex.items() if k != "sample_type"}) for ex in examples)
    assert gate.infer_type({"question": "What is a bond?", "answer": "A debt security."}) is None
