"""LLM-judged intrinsic metrics: ``judge_quality`` (of the response) and ``judge_difficulty`` (of the instruction).

AgoraBench (Kim et al., ACL 2025, "Evaluating Language Models as Synthetic Data Generators", §4)
scores generated data with an LLM judge that grades, on an absolute 1-5 scale against a rubric
of its domain, the quality of each response and the difficulty of each instruction. Here the
judge is any chat model; it sees the instruction and the response, the aspect's criterion and
its five score descriptions (``rubrics.yaml``, prepbench's own wording, per domain), and answers
with a line of feedback and ``Score: N``.

A reply that names no score is asked once more, then recorded as unparsed (its text kept, its
score None) and left out of the mean, never dropped silently: ``n_unparsed`` counts them.
"""

from __future__ import annotations

import random
import re
import time
from functools import lru_cache
from pathlib import Path
from typing import Any, Sequence

from prepbench.tools.errors import PrepbenchError

from .readers import ScoredSample

JUDGE_SETS = ("judge_quality", "judge_difficulty")
_ASPECT = {"judge_quality": "quality", "judge_difficulty": "difficulty"}

SYSTEM_PROMPT = """You grade supervised fine-tuning data. You read one instruction and its response and grade a
single aspect on a scale of 1 to 5, using the rubric you are given and nothing else.
Write one or two sentences of feedback, then a last line `Score: N` with N from 1 to 5."""

USER_TEMPLATE = """### Aspect to grade
{aspect}: {criteria}

### Rubric
{rubric}

### Instruction
{instruction}

### Response
{response}

Grade the {aspect}{focus}. End with `Score: N`."""

_SCORE_RE = re.compile(r"score\s*[:：=]?\s*\**\s*\[?([1-5])\]?\b", re.IGNORECASE)
_RESULT_RE = re.compile(r"\[RESULT\]\s*([1-5])\b")


@lru_cache(maxsize=1)
def rubrics() -> dict[str, dict]:
    """The shipped rubrics (``rubrics.yaml``): domain -> aspect -> ``{"criteria", "scores": {1..5: text}}``."""
    import yaml

    return yaml.safe_load((Path(__file__).parent / "rubrics.yaml").read_text(encoding="utf-8"))


def rubric(domain: str, aspect: str) -> dict:
    """The rubric of ``aspect`` (``quality`` | ``difficulty``) for ``domain`` (general's when the domain has none)."""
    table = rubrics()
    return (table.get(domain) or table["general"])[aspect]


def parse_score(text: str) -> int | None:
    """The 1-5 score of a judge reply (the last ``Score: N``, else ``[RESULT] N``), or None."""
    hits = _SCORE_RE.findall(text or "") or _RESULT_RE.findall(text or "")
    return int(hits[-1]) if hits else None


def build_messages(sample: ScoredSample, aspect: str, domain: str, max_chars: int = 8000) -> list:
    """The judge's messages for one sample and aspect (LangChain message objects)."""
    from langchain_core.messages import HumanMessage, SystemMessage

    r = rubric(domain, aspect)
    lines = "\n".join(f"{k}: {v}" for k, v in sorted(r["scores"].items()))
    focus = " of the instruction (how hard it is to answer perfectly)" if aspect == "difficulty" else " of the response"
    text = USER_TEMPLATE.format(
        aspect=aspect,
        criteria=r["criteria"],
        rubric=lines,
        instruction=sample.instruction[:max_chars],
        response=sample.response[:max_chars],
        focus=focus,
    )
    return [SystemMessage(content=SYSTEM_PROMPT), HumanMessage(content=text)]


def ask_all(
    chat_model: Any, requests: list[list], max_concurrency: int, progress: bool, description: str
) -> tuple[list, list[str]]:
    """Send every message list to a LangChain chat model (``.batch``, bounded concurrency).

    Returns:
        ``(answers, errors)``: the reply text per request (None where the call failed) and the errors.
    """
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

    answers: list[str | None] = [None] * len(requests)
    errors: list[str] = []
    step = max(1, max_concurrency * 2)
    columns = (TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn())
    with Progress(*columns, disable=not progress, transient=True) as bar:
        task = bar.add_task(description, total=len(requests))
        for b in range(0, len(requests), step):
            outs = chat_model.batch(requests[b : b + step], config={"max_concurrency": max_concurrency}, return_exceptions=True)
            for i, o in enumerate(outs, b):
                if isinstance(o, Exception):
                    errors.append(f"{type(o).__name__}: {o}")
                else:
                    answers[i] = o.content if isinstance(o.content, str) else str(o.content)
            bar.advance(task, len(outs))
    return answers, errors


def judge(
    samples: Sequence[ScoredSample],
    chat_model: Any,
    metric: str,
    domain: str = "general",
    n: int | None = 200,
    seed: int = 42,
    max_concurrency: int = 4,
    progress: bool = True,
) -> dict:
    """One LLM-judged metric (``judge_quality`` or ``judge_difficulty``) over a seeded subset.

    Returns:
        ``{"mean", "n", "n_scored", "n_unparsed", "n_errors", "counts": {1..5}, "domain", "criteria",
        "per_sample": [{"id", "score", "feedback"}], "seed", "seconds"}``; ``mean`` over the parsed scores.

    Raises:
        PrepbenchError: unknown metric, no samples, or every judge call failed.
    """
    if metric not in JUDGE_SETS:
        raise PrepbenchError(f"unknown judge metric {metric!r} (choose {', '.join(JUDGE_SETS)})")
    if not samples:
        raise PrepbenchError(f"{metric}: no samples")
    t0 = time.perf_counter()
    aspect = _ASPECT[metric]
    idx = list(range(len(samples)))
    if n is not None and n < len(samples):
        idx = sorted(random.Random(seed).sample(idx, n))
    subset = [samples[i] for i in idx]
    reqs = [build_messages(s, aspect, domain) for s in subset]
    answers, errors = ask_all(chat_model, reqs, max_concurrency, progress, f"judging {aspect}")
    if all(a is None for a in answers):
        raise PrepbenchError(f"{metric}: every judge call failed ({errors[0] if errors else 'no answer'})")
    again = [i for i, a in enumerate(answers) if a is not None and parse_score(a) is None]
    if again:  # one more try for replies that named no score
        more, errs = ask_all(chat_model, [reqs[i] for i in again], max_concurrency, False, "judging again")
        errors += errs
        for i, a in zip(again, more):
            answers[i] = a if a is not None else answers[i]
    per = [{"id": s.id, "score": parse_score(a or ""), "feedback": (a or "")[:300]} for s, a in zip(subset, answers)]
    scores = [p["score"] for p in per if p["score"] is not None]
    return {
        "mean": sum(scores) / len(scores) if scores else None,
        "n": len(subset),
        "n_scored": len(scores),
        "n_unparsed": sum(1 for p, a in zip(per, answers) if a is not None and p["score"] is None),
        "n_errors": sum(1 for a in answers if a is None),
        "counts": {k: scores.count(k) for k in range(1, 6)},
        "domain": domain if domain in rubrics() else "general",
        "criteria": rubric(domain, aspect)["criteria"],
        "per_sample": per,
        "seed": seed,
        "seconds": round(time.perf_counter() - t0, 4),
    }
