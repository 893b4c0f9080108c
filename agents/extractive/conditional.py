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
from prepbench.tools.nlp import parse

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


#: subjects that name nothing without the sentence before ("it", "this", "they")
_VAGUE_SUBJECTS = frozenset("it this that these those they he she we one there".split())


def asked_outcome(conj: str, cond: str, main: str) -> str | None:
    """The question a rule "If C, then S V O." answers, asked of its outcome's subject and verb:
    "If N is a normal subgroup of a group G, what do the cosets of N in G form?", "If F is a finite
    field, what is the characteristic of F?"; None when the outcome has no such subject and object
    (a pronoun subject, a negation, a passive or an adjective: "then it must be normal"), and the
    caller asks "What happens if C?". "What happens if N is a normal subgroup of a group G?" was
    read weak three times: many things follow, and the question does not say which (H033, I046, P045).

    Args:
        conj: "If", "When", "Whenever" or "As"; cond: the condition as the question gives it;
        main: the outcome clause (plain text, no final full stop).
    """
    doc = parse(main)
    root = next((t for t in doc if t.dep_ == "ROOT"), None)
    subj = next((c for c in root.children if c.dep_ == "nsubj"), None) if root is not None else None
    if subj is None or subj.left_edge.i != 0 or subj.lower_ in _VAGUE_SUBJECTS or subj.pos_ == "PRON":
        return None
    if any(c.dep_ in ("neg", "prt", "auxpass", "nsubjpass") for c in root.children):
        return None
    # "financial managers must examine the assumptions made for both approaches": which two, only the
    # book said (read defective, V025); "both resistors" of a condition on resistors names them
    pointed = [t.head for t in doc if t.lower_ in ("both", "these", "those", "this") and t.dep_ == "det"]  # not "both A and B"
    if pointed and any(h.lemma_.lower() not in {t.lemma_.lower() for t in parse(cond)} for h in pointed):
        return None
    span = doc[0 : subj.right_edge.i + 1].text
    if len(span.split()) > 12 or "," in span:
        return None
    aux = [c for c in root.children if c.dep_ == "aux" and c.i < root.i]
    if root.lemma_ == "be" and any(c.dep_ == "attr" for c in root.children):
        asked = f"what {aux[0].text} {span} be" if aux else f"what {root.text} {span}"
    elif root.pos_ == "VERB" and any(
        c.dep_ == "dobj" and c.pos_ in ("NOUN", "PROPN") and c.left_edge.i == root.i + 1 for c in root.children
    ):
        # the object right after the verb: "consumers move along the demand curve to a point with a
        # combination ..." has none there, and "what do consumers move?" was read garbled (V030)
        if any(c.dep_ == "conj" and c.pos_ == "VERB" for c in root.children):
            return None  # "leave the zinc electrode, cross the resistor, and end up ...": one object of several acts
        if aux:
            asked = f"what {aux[0].text} {span} {root.lemma_}"
        elif root.tag_ in ("VBZ", "VBP", "VB"):  # "the cosets ... form": a plural present the tagger may call VB
            asked = f"what {'does' if root.tag_ == 'VBZ' else 'do'} {span} {root.lemma_}"
        else:
            return None  # a past tense: what happened once, not a rule
    else:
        return None
    return f"{conj} {cond}, {asked}?"
