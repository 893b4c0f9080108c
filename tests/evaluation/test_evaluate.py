"""Shipped lm-evaluation-harness tasks: real data mapped correctly, scoring sanity, evaluate -> records."""

from __future__ import annotations

import importlib.util
import json

import pytest

from prepbench.evaluation.evaluate import TASKS_DIR, list_benchmarks, materialise_tasks, resolve_benchmarks
from prepbench.evaluation.records import read_records
from prepbench.tools.errors import PrepbenchError

from cli_helpers import error_lines, run_cli
from training_fixtures import DATASETS, make_tiny_model

REQUIRED = {
    "gsm8k",
    "math500",
    "mmlu_medical",
    "mmlu_law",
    "mmlu_finance",
    "mmlu_science",
    "mmlu_math",
    "medqa",
    "pubmedqa",
    "arc_challenge",
    "legalbench",
}


def _raw(rel: str) -> list[dict]:
    text = (DATASETS / rel).read_text(encoding="utf-8")
    return [json.loads(line) for line in text.split("\n") if line.strip()]  # not splitlines(): U+2028 in text


@pytest.fixture(scope="module")
def tasks(tmp_path_factory):
    from lm_eval.tasks import TaskManager

    inc = materialise_tasks(DATASETS, tmp_path_factory.mktemp("tasks") / "t", sorted(REQUIRED))
    tm = TaskManager(include_path=str(inc), include_defaults=False)
    names = [
        "arc_challenge",
        "medqa",
        "pubmedqa",
        "gsm8k",
        "mmlu_medical",
        "mmlu_law",
        "mmlu_finance",
        "mmlu_science",
        "mmlu_math",
        "legalbench_hearsay",
        "legalbench_abercrombie",
    ]
    return dict(tm.load(names)["tasks"])


def _gold_texts(task) -> list[str]:
    docs = list(task.test_docs())
    return [task.doc_to_choice(d)[task.doc_to_target(d)] for d in docs]


def test_every_benchmark_is_shipped_and_its_data_exists():
    bench = list_benchmarks()
    assert REQUIRED <= set(bench)
    assert len(bench["legalbench"]["subtasks"]) == 11
    for name in REQUIRED:
        assert bench[name]["primary_metric"], name
        for rel in bench[name]["data_files"]:
            assert (DATASETS / rel).is_file(), rel
    assert resolve_benchmarks(" gsm8k, arc_challenge ") == ["gsm8k", "arc_challenge"]
    with pytest.raises(PrepbenchError, match="unknown benchmark 'gsm9k'"):
        resolve_benchmarks("gsm9k")
    with pytest.raises(PrepbenchError, match="data file .*gsm8k/test.jsonl not found"):
        materialise_tasks(DATASETS.parent / "nowhere", TASKS_DIR.parent / ".never-created", ["gsm8k"])


def test_multiple_choice_gold_answers_are_the_real_ones(tasks):
    arc = _raw("arc_challenge/test.jsonl")
    assert _gold_texts(tasks["arc_challenge"]) == [
        next(c["text"] for c in r["question"]["choices"] if c["label"] == r["answerKey"]) for r in arc
    ]
    med = _raw("medqa_usmle/test.jsonl")
    assert _gold_texts(tasks["medqa"]) == [r["answer_idx"] for r in med]
    first = next(iter(tasks["medqa"].test_docs()))
    assert f"{med[0]['answer_idx']}. {med[0]['answer']}" in first["query"]
    pub = _raw("pubmedqa/pqal_test.jsonl")
    assert _gold_texts(tasks["pubmedqa"]) == [r["final_decision"] for r in pub]
    lb = [r for r in _raw("legalbench/test.jsonl") if r["task"] == "hearsay"]
    assert _gold_texts(tasks["legalbench_hearsay"]) == [r["label"] for r in lb] and len(lb) == 95
    assert set(_gold_texts(tasks["legalbench_abercrombie"])) == {"generic", "descriptive", "suggestive", "arbitrary", "fanciful"}


def test_mmlu_domain_subsets_have_the_documented_sizes(tasks):
    # test-row counts per domain from mmlu/SOURCE.md
    sizes = {"medical": 1417, "law": 1763, "finance": 1024, "science": 1397, "math": 1064}
    domains = json.loads((DATASETS / "mmlu" / "domains.json").read_text())
    raw = _raw("mmlu/test.jsonl")
    for dom, n in sizes.items():
        golds = _gold_texts(tasks[f"mmlu_{dom}"])
        assert len(golds) == n
        assert golds == [r["answer"] for r in raw if r["subject"] in domains[dom]]


def test_gsm8k_scores_the_gold_answer_1_and_a_wrong_one_0(tasks):
    task = tasks["gsm8k"]
    docs = list(task.test_docs())[:20]
    for doc in docs:
        final = doc["answer"].split("####")[-1].strip()
        assert task.process_results(doc, [final])["exact_match"] == 1.0
        assert task.process_results(doc, [final + "1"])["exact_match"] == 0.0


def test_math500_answer_matching_on_real_rows():
    spec = importlib.util.spec_from_file_location("pb_task_utils", TASKS_DIR / "utils.py")
    utils = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(utils)
    rows = _raw("math/math500_test.jsonl")[:60]
    for r in rows:
        assert utils.math_process_results(r, [f"So the answer is $\\boxed{{{r['answer']}}}$."])["exact_match"] == 1.0
        # the reference solution's own last \boxed{} is the answer
        assert utils.math_process_results(r, [r["solution"]])["exact_match"] == 1.0, r["unique_id"]
    wrong = sum(utils.math_process_results(a, [f"\\boxed{{{b['answer']}}}"])["exact_match"] for a, b in zip(rows, rows[1:]))
    assert wrong <= 2  # neighbouring problems rarely share an answer
    assert utils.last_boxed("x \\boxed{\\frac{1}{2}} y") == "\\frac{1}{2}"
    assert utils.normalize_math_answer("\\dfrac{1}{2}") == utils.normalize_math_answer("\\frac{1}{2}")


def test_evaluate_tiny_model_writes_score_records(tmp_path):
    model = make_tiny_model(tmp_path)
    out = tmp_path / "scores.jsonl"
    p = run_cli(
        "evaluate",
        str(model),
        "--benchmarks",
        "arc_challenge,gsm8k",
        "--limit",
        "3",
        "--max-gen-toks",
        "8",
        "--label",
        "tiny-base",
        "--out",
        str(out),
    )
    assert p.returncode == 0, p.stderr[-2000:]
    recs = read_records(out)
    assert {r.benchmark for r in recs} == {"arc_challenge", "gsm8k"}
    assert {r.metric for r in recs if r.benchmark == "arc_challenge"} == {"acc", "acc_norm"}
    assert {r.metric for r in recs if r.benchmark == "gsm8k"} == {"exact_match,strict-match", "exact_match,flexible-extract"}
    for r in recs:
        assert r.model == "tiny-base" and r.n == 3 and r.limit == 3 and 0.0 <= r.score <= 1.0
        assert r.base_model == str(model) and r.candidate == ""
        assert r.score * 3 == pytest.approx(round(r.score * 3))  # a mean over 3 items
    assert sorted(r.benchmark for r in recs if r.primary) == ["arc_challenge", "gsm8k"]
    # a random tiny model cannot produce GSM8K's "#### <answer>" format
    assert next(r.score for r in recs if r.metric == "exact_match,strict-match") == 0.0


def test_evaluate_errors_are_one_line(tmp_path):
    p = run_cli("evaluate", str(tmp_path), "--benchmarks", "arc_challenge", "--backend", "vllm")
    assert p.returncode == 2 and error_lines(p)[-1].startswith("error: backend 'vllm' needs the vllm package")
    p = run_cli("evaluate", str(tmp_path), "--benchmarks", "arc_challenge,nope")
    assert p.returncode == 2 and "error: unknown benchmark 'nope'" in error_lines(p)[-1]
    assert "Traceback" not in p.stderr
