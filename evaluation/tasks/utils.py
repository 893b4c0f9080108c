"""Document processing and scoring helpers for prepbench's lm-evaluation-harness tasks.

The task YAMLs beside this file refer to these functions with ``!function utils.<name>``.
Each ``process_docs`` function maps the shared JSONL rows (original field names, see each
dataset's SOURCE.md) to the fields a YAML's ``doc_to_text``/``doc_to_choice``/``doc_to_target``
read: ``query`` (prompt text), ``choices`` (list of answer strings) and ``gold`` (index into
``choices``). Rows whose gold answer is not among the choices raise ``ValueError`` naming
the row, so a broken data file is never scored silently.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

LETTERS = ["A", "B", "C", "D", "E"]

# ---------------------------------------------------------------- ARC-Challenge


def arc_process_docs(dataset):
    """ARC rows ``{id, question: {stem, choices: [{text, label}]}, answerKey}`` -> query/choices/gold."""

    def _one(doc):
        labels = [c["label"] for c in doc["question"]["choices"]]
        if doc["answerKey"] not in labels:
            raise ValueError(f"ARC row {doc['id']}: answerKey {doc['answerKey']!r} not among labels {labels}")
        return {
            "query": f"Question: {doc['question']['stem']}\nAnswer:",
            "choices": [c["text"] for c in doc["question"]["choices"]],
            "gold": labels.index(doc["answerKey"]),
        }

    return dataset.map(_one, remove_columns=dataset.column_names)


# ---------------------------------------------------------------- MMLU domain subsets


def _mmlu_domains() -> dict[str, list[str]]:
    # written beside this file by prepbench.evaluation.benchmarks.materialise_tasks
    return json.loads((Path(__file__).parent / "mmlu_domains.json").read_text(encoding="utf-8"))


def _mmlu_text(doc) -> str:
    subject = doc["subject"].replace("_", " ")
    options = "\n".join(f"{k}. {doc[k]}" for k in LETTERS[:4])
    return (
        f"The following are multiple choice questions (with answers) about {subject}.\n\n"
        f"{doc['question'].strip()}\n{options}\nAnswer:"
    )


def _mmlu_domain(domain: str):
    def process(dataset):
        subjects = set(_mmlu_domains()[domain])

        def _one(doc):
            if doc["answer"] not in LETTERS[:4]:
                raise ValueError(f"MMLU row ({doc['subject']}): answer {doc['answer']!r} is not A-D")
            return {"query": _mmlu_text(doc), "choices": LETTERS[:4], "gold": LETTERS.index(doc["answer"])}

        kept = dataset.filter(lambda d: d["subject"] in subjects)
        return kept.map(_one, remove_columns=kept.column_names)

    process.__name__ = f"mmlu_{domain}"
    return process


mmlu_medical = _mmlu_domain("medical")
mmlu_law = _mmlu_domain("law")
mmlu_finance = _mmlu_domain("finance")
mmlu_science = _mmlu_domain("science")
mmlu_math = _mmlu_domain("math")

# ---------------------------------------------------------------- MedQA (USMLE, 4 options)


def medqa_process_docs(dataset):
    """MedQA rows ``{question, options: {A..D}, answer_idx}`` -> lettered prompt, letter choices."""

    def _one(doc):
        keys = [k for k in LETTERS if doc["options"].get(k) is not None]
        if doc["answer_idx"] not in keys:
            raise ValueError(f"MedQA row {doc.get('realidx')}: answer_idx {doc['answer_idx']!r} not in {keys}")
        options = "\n".join(f"{k}. {doc['options'][k]}" for k in keys)
        return {
            "query": f"Question: {doc['question'].strip()}\n{options}\nAnswer:",
            "choices": keys,
            "gold": keys.index(doc["answer_idx"]),
        }

    return dataset.map(_one, remove_columns=dataset.column_names)


# ---------------------------------------------------------------- PubMedQA (PQA-L)

PUBMEDQA_CHOICES = ["yes", "no", "maybe"]


def pubmedqa_process_docs(dataset):
    """PubMedQA rows ``{QUESTION, CONTEXTS, final_decision}`` -> abstract + question, yes/no/maybe."""

    def _one(doc):
        if doc["final_decision"] not in PUBMEDQA_CHOICES:
            raise ValueError(f"PubMedQA row {doc['pmid']}: final_decision {doc['final_decision']!r}")
        abstract = "\n".join(doc["CONTEXTS"])
        return {
            "query": f"Abstract: {abstract}\nQuestion: {doc['QUESTION']}\nAnswer:",
            "choices": PUBMEDQA_CHOICES,
            "gold": PUBMEDQA_CHOICES.index(doc["final_decision"]),
        }

    return dataset.map(_one, remove_columns=dataset.column_names)


# ---------------------------------------------------------------- LegalBench (Guha et al., 2023)

LEGALBENCH_CHOICES = {
    "abercrombie": ["generic", "descriptive", "suggestive", "arbitrary", "fanciful"],
}
LEGALBENCH_BINARY = [
    "hearsay",
    "personal_jurisdiction",
    "proa",
    "overruling",
    "diversity_1",
    "diversity_2",
    "diversity_3",
    "diversity_4",
    "diversity_5",
    "diversity_6",
]


def _legalbench(task: str):
    choices = LEGALBENCH_CHOICES.get(task, ["Yes", "No"])

    def process(dataset):
        kept = dataset.filter(lambda d: d["task"] == task)

        def _one(doc):
            if doc["label"] not in choices:
                raise ValueError(f"LegalBench {task} row: label {doc['label']!r} not in {choices}")
            return {"query": f"{doc['text'].strip()}\nAnswer:", "choices": choices, "gold": choices.index(doc["label"])}

        return kept.map(_one, remove_columns=kept.column_names)

    process.__name__ = f"legalbench_{task}"
    return process


for _task in ["abercrombie", *LEGALBENCH_BINARY]:
    globals()[f"legalbench_{_task}"] = _legalbench(_task)

# ---------------------------------------------------------------- MATH-500 (Lightman et al., 2023)


def last_boxed(text: str) -> str | None:
    r"""Content of the last ``\boxed{...}`` (or ``\fbox{...}``) in ``text``, braces balanced; None if absent."""
    idx = max(text.rfind("\\boxed"), text.rfind("\\fbox"))
    if idx < 0:
        return None
    i = text.find("{", idx)
    if i < 0:
        return None
    depth = 0
    for j in range(i, len(text)):
        if text[j] == "{":
            depth += 1
        elif text[j] == "}":
            depth -= 1
            if depth == 0:
                return text[i + 1 : j]
    return None


def normalize_math_answer(ans: str) -> str:
    r"""Normalise a final MATH answer for string comparison (Hendrycks et al., 2021, ``is_equiv``
    style): drop spaces, ``\left``/``\right``, ``\!``, dollar signs, ``^\circ``, trailing ``.``,
    ``\text{...}`` wrappers and a leading ``x=``; ``\dfrac``/``\tfrac`` -> ``\frac``."""
    s = ans.strip()
    s = re.sub(r"\\text\{\s*([^}]*)\}", r"\1", s)
    for a, b in [("\\left", ""), ("\\right", ""), ("\\!", ""), ("\\$", ""), ("$", ""), ("^\\circ", ""), ("^{\\circ}", ""),
                 ("\\dfrac", "\\frac"), ("\\tfrac", "\\frac"), ("\\%", ""), ("%", "")]:
        s = s.replace(a, b)
    s = re.sub(r"\s+", "", s)
    s = re.sub(r"^[a-zA-Z]=", "", s)
    s = s.rstrip(".")
    if re.fullmatch(r"-?\d+\.0+", s):
        s = s.split(".")[0]
    return s


def extract_math_answer(generation: str) -> str:
    """The final answer of a generation: the last ``\\boxed{}``, else the text after the last
    "answer is", else the last number, else the stripped generation."""
    boxed = last_boxed(generation)
    if boxed is not None:
        return boxed
    m = re.findall(r"answer is[:\s]*\$?([^\n$]+)", generation)
    if m:
        return m[-1].strip()
    nums = re.findall(r"-?\d+(?:\.\d+)?(?:/\d+)?", generation)
    return nums[-1] if nums else generation.strip()


def math_process_results(doc, results):
    """lm-eval ``process_results`` for MATH-500: exact match of normalised final answers."""
    pred = normalize_math_answer(extract_math_answer(results[0]))
    gold = normalize_math_answer(str(doc["answer"]))
    return {"exact_match": float(pred == gold and gold != "")}
