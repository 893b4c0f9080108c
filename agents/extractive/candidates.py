"""Form-level candidates (concept, process, case) before they are mapped onto a skill's sample types."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from prepbench.agents.extractive.grammar import _words
from prepbench.tools.nlp import parse

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


def first_definition(answer: str) -> str:
    """A definition's answer without the definitions of other terms coordinated after it: "Preload
    is the amount of blood that returns to the heart (venous return), afterload is the resistance
    ..., and contractility is ..." -> "Preload is the amount of blood that returns to the heart
    (venous return)." (read weak, seed 1241: the answer defines three things); else ``answer``."""
    if "\n" in answer or len(re.findall(r"\b(?:is|are)\b", answer)) < 2:
        return answer  # a list (its lines are the answer's parts), or one copula: one definition
    doc = parse(answer)

    def subject(verb):  # the verb's subject phrase, lower-cased
        subj = next((c for c in verb.children if c.dep_ == "nsubj"), None)
        return subj, doc[subj.left_edge.i : subj.right_edge.i + 1].text.lower() if subj is not None else ""

    # the defining clause opens the sentence ("Preload is ..."), whichever clause the parse makes its root
    main = next((t for t in doc if t.lemma_ == "be" and (s := subject(t)[0]) is not None and s.left_edge.i == 0), None)
    if main is None:
        return answer
    # a clause beside the definition (its conjunct, or the root the parse hung it on), not one inside
    # it ("markets in which costs are minimal and prices are current")
    main_name = subject(main)[1]
    for verb in (t for t in doc[main.i + 1 :] if t.lemma_ == "be" and (t.head == main and t.dep_ == "conj" or main.head == t)):
        other, name = subject(verb)
        if other is None or other.pos_ == "PRON" or name == main_name:
            continue
        if any(c.dep_ == "det" and c.lower_ in ("this", "these", "those", "such") for c in other.children):
            continue  # "and these directors are then ...": the same thing again
        if other.left_edge.i == 0 or doc[other.left_edge.i - 1].lower_ not in (",", "and"):
            continue  # not a clause of its own after a comma or an "and" (after ";" comes a note on the term)
        cut = doc[: other.left_edge.i].text.rstrip(" ,;")
        cut = re.sub(r"(?:,\s*|\s+)(?:and|while|whereas|but)$", "", cut).rstrip(" ,;")
        return cut + "." if len(cut.split()) >= 4 else answer
    return answer


def _concept(question: str, answer: str, qtype: str, kp: str, evidence: list[str], score: float, key: str) -> Cand:
    if re.match(r"What (?:is|are) ", question):
        answer = first_definition(answer)
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
