"""Shared helpers for the training/evaluation tests: real data slices, never invented text.

- :func:`make_run` writes a prepbench-style run folder (``export/sharegpt.jsonl``,
  ``export/alpaca.jsonl``, ``export/dataset_info.json``) from GSM8K train rows (question ->
  human, worked answer -> gpt), the shape the exporter writes for accepted samples.
- :func:`make_tiny_model` builds a tiny random Llama + BPE tokenizer trained on GSM8K text.
"""

from __future__ import annotations

import json
from pathlib import Path

from cli_helpers import SHARED

DATASETS = SHARED / "datasets"
GSM8K_TRAIN = DATASETS / "gsm8k" / "train.jsonl"
DOLLY = DATASETS / "dolly" / "databricks-dolly-15k-nocategory.jsonl"


def gsm8k_rows(n: int, offset: int = 0) -> list[dict]:
    with open(GSM8K_TRAIN, encoding="utf-8") as f:
        lines = f.readlines()[offset : offset + n]
    return [json.loads(line) for line in lines]


def make_run(root: Path, n: int = 200, name: str = "gsm8k_run") -> Path:
    run = root / name
    exp = run / "export"
    exp.mkdir(parents=True, exist_ok=True)
    rows = gsm8k_rows(n)
    with open(exp / "sharegpt.jsonl", "w", encoding="utf-8") as f:
        for r in rows:
            conv = [{"from": "human", "value": r["question"]}, {"from": "gpt", "value": r["answer"]}]
            f.write(json.dumps({"conversations": conv}) + "\n")
    with open(exp / "alpaca.jsonl", "w", encoding="utf-8") as f:
        for r in rows:
            f.write(json.dumps({"instruction": r["question"], "input": "", "output": r["answer"]}) + "\n")
    info = {
        f"{name}_sharegpt": {
            "file_name": "sharegpt.jsonl",
            "formatting": "sharegpt",
            "columns": {"messages": "conversations"},
            "tags": {"role_tag": "from", "content_tag": "value", "user_tag": "human", "assistant_tag": "gpt"},
        }
    }
    (exp / "dataset_info.json").write_text(json.dumps(info), encoding="utf-8")
    return run


def make_tiny_model(root: Path, name: str = "tiny") -> Path:
    from prepbench.evaluation.tiny import build_tiny_model

    texts = [f"{r['question']} {r['answer']}" for r in gsm8k_rows(300, offset=1000)]
    return build_tiny_model(root / name, texts)
