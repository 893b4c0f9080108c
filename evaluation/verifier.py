"""LLM data verifier with the DataChef rubric, and the Data Verifier Score (DVS).

A chat-model judge reads one SFT instance and the target task, and labels it:

====  ==============  =====  ==========================================================
label  meaning        score  when
====  ==============  =====  ==========================================================
A     invalid         0.0    empty, garbled, truncated, or not an instruction/response pair
B     format error    0.0    the response ignores the format the instruction asks for
C     incorrect       0.0    the response is factually or logically wrong / unsupported
D     task mismatch   0.4    correct, but not the kind of data the target task needs
E     pass            1.0    correct, well-formed and on task
====  ==============  =====  ==========================================================

DVS = mean score over a random subset of the dataset (``random.Random(seed)``), following the
data-verifier rubric of DataChef (scores 0 / 0 / 0 / 0.4 / 1.0 for A-E). Judge answers that
name no label are retried once, then reported as ``unparsed`` and left out of the mean.

The judge is any LangChain ``BaseChatModel`` (``prepbench.agents.models.specs.make_chat_model``
builds one from a model spec such as ``openai:<model>`` with a base URL).
"""

from __future__ import annotations

import random
import re
import time
from typing import Any, Sequence

from prepbench.tools.errors import PrepbenchError

from .readers import ScoredSample

LABELS = {
    "A": ("invalid", 0.0),
    "B": ("format error", 0.0),
    "C": ("incorrect", 0.0),
    "D": ("task mismatch", 0.4),
    "E": ("pass", 1.0),
}

SYSTEM_PROMPT = """You are a strict data verifier for supervised fine-tuning (SFT) data.
You receive the target task and one training instance (an instruction and its response).
Classify the instance with exactly one label:
A) Invalid: empty, garbled, truncated, self-contradictory, or not a usable instruction/response pair.
B) Format error: the response does not follow the output format the instruction asks for.
C) Incorrect: the response is factually or logically wrong, or its answer is not supported.
D) Task mismatch: the instance is correct and well-formed but does not serve the target task.
E) Pass: correct, well-formed and useful for the target task.
Check in the order A, B, C, D, E and choose the first that applies.
Answer with one line `Label: <A|B|C|D|E>` followed by one line `Reason: <one sentence>`."""

USER_TEMPLATE = """Target task: {task}

### Instruction
{instruction}

### Response
{response}"""

_LABEL_RE = re.compile(r"label\s*[:：]?\s*\**\s*\(?([A-E])\b", re.IGNORECASE)
_BARE_RE = re.compile(r"^\s*\**\(?([A-E])[\)\.:\s*]", re.MULTILINE)


def parse_label(text: str) -> str | None:
    """The A-E label in a judge answer (``Label: X`` first, else a line starting with the letter), or None."""
    m = _LABEL_RE.search(text or "")
    if m:
        return m.group(1).upper()
    m = _BARE_RE.search((text or "") + " ")
    return m.group(1).upper() if m else None


def _reason(text: str) -> str:
    m = re.search(r"reason\s*[:：]\s*(.+)", text or "", re.IGNORECASE)
    return (m.group(1) if m else (text or "")).strip()[:300]


def build_messages(sample: ScoredSample, task: str, max_chars: int = 8000) -> list:
    """The judge's messages for one sample (system rubric + the instance), LangChain message objects."""
    from langchain_core.messages import HumanMessage, SystemMessage

    return [
        SystemMessage(content=SYSTEM_PROMPT),
        HumanMessage(
            content=USER_TEMPLATE.format(
                task=task, instruction=sample.instruction[:max_chars], response=sample.response[:max_chars]
            )
        ),
    ]


def verify(
    samples: Sequence[ScoredSample],
    chat_model: Any,
    task: str,
    n: int | None = 200,
    seed: int = 42,
    max_concurrency: int = 4,
    progress: bool = True,
) -> dict:
    """Label a random subset with the judge and compute DVS.

    Args:
        samples: the dataset.
        chat_model: a LangChain ``BaseChatModel`` (anything with ``.batch(list_of_messages, config)``).
        task: one-line description of the target task (what the data should teach).
        n: subset size (``None`` = all), drawn with ``random.Random(seed)``.
        max_concurrency: parallel judge calls.

    Returns:
        ``{"dvs", "n", "n_scored", "n_unparsed", "counts": {A..E}, "shares", "labels": [{id, label,
        score, reason}], "seed", "seconds"}``.

    Raises:
        PrepbenchError: no samples, empty task, or every judge call failed.
    """
    if not samples:
        raise PrepbenchError("verify: no samples")
    if not task or not task.strip():
        raise PrepbenchError("verify: --task must describe the target task (e.g. 'finance textbook QA')")
    t0 = time.perf_counter()
    idx = list(range(len(samples)))
    if n is not None and n < len(samples):
        idx = sorted(random.Random(seed).sample(idx, n))
    subset = [samples[i] for i in idx]
    answers, errors = _judge_all(subset, chat_model, task, max_concurrency, progress)
    if all(a is None for a in answers):
        raise PrepbenchError(f"verify: every judge call failed ({errors[0] if errors else 'no answer'})")
    counts, labels, scores = _tally(subset, answers)
    scored = len(scores)
    return {
        "dvs": (sum(scores) / scored) if scored else None,
        "n": len(subset),
        "n_total": len(samples),
        "n_scored": scored,
        "n_unparsed": len(subset) - scored,
        "n_errors": len(errors),
        "counts": counts,
        "shares": {k: (v / scored if scored else None) for k, v in counts.items()},
        "label_names": {k: v[0] for k, v in LABELS.items()},
        "labels": labels,
        "task": task,
        "seed": seed,
        "seconds": round(time.perf_counter() - t0, 4),
    }


def _judge_all(
    subset: Sequence[ScoredSample], chat_model: Any, task: str, max_concurrency: int, progress: bool
) -> tuple[list[str | None], list[str]]:
    """The judge's answer per sample (None where the call failed) and the errors; answers naming no
    label are asked once more."""
    from .judge_metrics import ask_all

    reqs = [build_messages(s, task) for s in subset]
    answers, errors = ask_all(chat_model, reqs, max_concurrency, progress, "verifying samples")
    retry = [p for p, a in enumerate(answers) if parse_label(a or "") is None]
    if retry:
        more, errs = ask_all(chat_model, [reqs[p] for p in retry], max_concurrency, False, "verifying again")
        errors += errs
        for p, a in zip(retry, more):
            answers[p] = a
    return answers, errors


def _tally(subset: Sequence[ScoredSample], answers: list[str | None]) -> tuple[dict[str, int], list[dict], list[float]]:
    """``(label counts, per-sample labels, scores of the parsed ones)``."""
    counts = {k: 0 for k in LABELS}
    labels, scores = [], []
    for s, a in zip(subset, answers):
        lab = parse_label(a or "")
        if lab is None:
            labels.append({"id": s.id, "label": None, "score": None, "reason": (a or "")[:300]})
            continue
        counts[lab] += 1
        sc = LABELS[lab][1]
        scores.append(sc)
        labels.append({"id": s.id, "label": lab, "score": sc, "reason": _reason(a or "")})
    return counts, labels, scores
