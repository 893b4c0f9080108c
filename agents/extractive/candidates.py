"""Form-level candidates (concept, process, case) before they are mapped onto a skill's sample types."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from prepbench.agents.extractive.grammar import _words

# ---------------------------------------------------------------------------------------
# Candidates (form-level; mapped onto sample types later)
# ---------------------------------------------------------------------------------------


@dataclass
class Cand:
    form: str  # concept_qa | process_qa | case_application
    fields: dict[str, Any]
    evidence: list[str]
    kind: str  # definition, enumeration, ... (for the mix)
    score: float
    key: str  # dedup key within the chunk (sentence raw)


def _concept(question: str, answer: str, qtype: str, kp: str, evidence: list[str], score: float, key: str) -> Cand:
    kp = re.sub(r"^(?i:the|a|an)\s+", "", kp).strip()
    kp = kp[:117].rstrip() + "..." if len(kp) > 120 else kp
    return Cand(
        "concept_qa",
        {"question": question, "answer": answer, "question_type": qtype, "knowledge_point": kp or question[:60]},
        evidence,
        qtype,
        score,
        key,
    )


def _novel_enough(question: str, answer: str, min_novelty: float = 0.25) -> bool:
    """True when at least ``min_novelty`` of the answer's content words are not in the question."""
    stop = {
        "a",
        "an",
        "the",
        "of",
        "to",
        "in",
        "on",
        "for",
        "and",
        "or",
        "is",
        "are",
        "was",
        "were",
        "be",
        "by",
        "with",
        "as",
        "at",
        "from",
        "that",
        "this",
        "what",
        "which",
        "how",
        "why",
        "when",
        "does",
        "do",
        "it",
        "its",
    }
    qw = {w.lower() for w in _words(question)} - stop
    aw = [w.lower() for w in _words(answer) if w.lower() not in stop]
    if len(aw) < 4:
        return False
    return sum(1 for w in aw if w not in qw) / len(aw) >= min_novelty
