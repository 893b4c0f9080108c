"""Conditional definitions: a term defined by when something is it, asked as "When is ...?".

Mathematics books define most terms by a condition: "A group $G$ is a **torsion group** if every
element of $G$ has finite order.", "A polynomial is called **monic** if the leading coefficient is
1." Asked "What is a torsion group?", such a sentence reads as a classification under a condition
(the gate's ``answers_question`` refuses it); asked by its condition it is a whole definition:
"When is a group G a torsion group?" -> "A group G is a torsion group if every element of G has
finite order."

A candidate needs the sentence to open with its subject ("A", "An", "Two"), the defined term in bold
right after "is"/"are" (or "is called", "is said to be"), at most a short phrase of the term ("of
$B$", "in $G$") and an aside ("written $A = B$", "or has finite order") before "if"/"whenever",
and the condition to end the sentence; a note after it ("; that is, ...", "; otherwise, ...") is
left out. The sentence is the evidence. Sentences whose symbols the offline answer would lose
(LaTeX commands) give none (:meth:`~prepbench.agents.extractive.extractor._Extractor.answer_text`).
"""

from __future__ import annotations

import re

from prepbench.agents.extractive.candidates import Cand, _concept

#: a note after the condition, left out of the answer
_NOTE = re.compile(r"\s*;\s*(?:that is|in other words|otherwise|i\.e\.)\b.*$", re.I)


def _pattern(term: str) -> re.Pattern:
    return re.compile(
        r"^(?P<subj>(?:A|An|Two) [^,;]{2,100}?) (?P<verb>is|are) (?P<how>(?:said to be |called )?)"
        rf"(?P<art>(?:an? |the )?)(?P<term>{re.escape(term)})"
        r"(?P<mid>(?: (?:of|in|on|over|for) [^,;]{1,40}?)?)(?P<aside>,? (?:or|written) [^,;]{1,60},)? "
        r"(?P<mark>if|whenever) (?P<cond>[^;]{5,})\.$"
    )


def conditional_definitions(ex) -> list[Cand]:
    """The chunk's conditional definitions (see the module docstring), in order; ``ex``: the
    chunk's :class:`~prepbench.agents.extractive.extractor._Extractor`."""
    out = []
    for s in ex.sents:
        if not s.bold_terms:
            continue
        answer = ex.answer_text(s)
        if answer is None:
            continue
        answer = _NOTE.sub(".", answer.rstrip()).rstrip()
        for term in s.bold_terms:
            m = _pattern(term).match(answer)
            if m is None or re.search(r"(?i)\b(following|below|above)\b", m.group("cond")):
                continue
            subj = m.group("subj")
            subj = subj[0].lower() + subj[1:]
            q = f"When {m.group('verb')} {subj} {m.group('how')}{m.group('art')}{term}{m.group('mid')}?"
            if ex.question_ok(q):
                out.append(_concept(q, answer, "condition", term, [s.raw], 2.2, s.raw))
            break
    return out
