"""Referents a sample borrows from its source: what the ``self_contained`` and ``attributed`` rules
check beyond deixis and bare definites (:mod:`prepbench.tools.validate.language`).

Three ways a grammatical, faithful question-answer pair still leans on the page it came from,
each seen in blind readings of accepted samples (``tests/fixtures/quality/labelled.jsonl``):

* **a running example's entity**: "Why is the skater's centre of mass accelerating?", "the
  dumbbell", "the shell". A textbook introduces such a thing with an indefinite article ("a
  speed skater", "a neutral conducting shell") and then speaks of it as "the skater": the
  definite noun phrase is given only inside the chunk (discourse-given vs. discourse-new).
* **a position in the source's order or a relational adjective without its complement**: "the
  final financial statement" (final in which list?), "the opposite view" (opposite to what?).
* **a block quote credited to the Court**: an opinion quotes a lower court's findings or a
  brief in ``>`` lines; "the Court says that ..." of such a sentence puts the quoted words in
  the Court's mouth.

Questions and answers are parsed with spaCy (:func:`prepbench.tools.nlp.parse`, cached); the
chunk is only searched as text (a chunk parse would cost more than the rest of the gate).
"""

from __future__ import annotations

import re

from prepbench.tools.nlp import entities, parse, sentences
from prepbench.tools.validate.language import GENERIC_DEFINITES
from prepbench.tools.validate.text import OPTION_LINE

#: adjectives that place a thing in the source's order: without an owner ("of the chapter") the
#: order is the source's ("the final financial statement", "the next step")
POSITIONAL = frozenset("final first last next previous preceding following second third fourth fifth penultimate".split())
#: adjectives whose meaning needs a complement ("opposite to X", "contrary to X") ...
RELATIONAL_ADJECTIVES = frozenset("opposite contrary reverse converse".split())
#: ... on a stance, whose other side only the source stated ("the opposite view"; "the opposite
#: direction" of a force is physics' own phrase)
STANCES = frozenset("view position conclusion opinion approach result holding argument answer interpretation".split())
#: "in each case", "both examples": the cases the source just listed
_SOURCE_CASES = frozenset("case instance example situation scenario".split())
#: series whose order is the world's, not the source's ("the second trimester", "the first quarter")
ORDERED_SERIES = frozenset(
    """trimester quarter half century decade year month week day hour dose stage phase generation degree
    amendment term round line""".split()
)
#: roles an instructional text speaks of generically ("the nurse should assess the client"), not a story's characters
GENERIC_ROLES = frozenset("nurse client patient provider prescriber reader student user learner".split())
#: definites a reader takes generically whatever the chunk set up: roles and institutions ("the firm")
GENERIC_NOUNS = GENERIC_ROLES | GENERIC_DEFINITES
_OWNER_DEPS = frozenset(("prep", "relcl", "acl", "poss"))
#: words of a sentence that sets up an example's scene ("Consider a speed skater ...", "Suppose a firm ...")
_SETS_UP = re.compile(r"\b(?:consider|suppose|imagine|assume|example|let's|let us|say that)\b")


def _definite(head) -> bool:
    return any(c.dep_ == "det" and c.lower_ == "the" for c in head.children)


def order_problem(text: str, positional: bool = True) -> str | None:
    """A noun placed by the source's order ("the final financial statement") or an adjective
    missing its complement ("the opposite view"), or None.

    ``text``: a question or an answer; ``positional`` False checks only the relational adjectives
    (an answer may say "the last nonzero remainder" of the steps it gives). Returns a one-line reason."""
    for t in parse(text):
        if t.dep_ == "det" and t.lower_ in ("each", "both") and t.head.lemma_.lower() in _SOURCE_CASES:
            return f"'{t.text} {t.head.text}' points to the source's own cases"
        if t.dep_ != "amod" or t.head.pos_ != "NOUN":
            continue
        head, word = t.head, t.lower_
        plural_first = word == "first" and head.tag_ == "NNS"  # "the first mathematicians to study them": a time, not a place
        ordered = head.lemma_.lower() in ORDERED_SERIES
        owned = any(c.dep_ in _OWNER_DEPS for c in head.children)
        if positional and word in POSITIONAL and not plural_first and not ordered and _definite(head) and not owned:
            return f"'the {word} {head.text}' is placed by the source's order ({word} of what?)"
        if (
            word in RELATIONAL_ADJECTIVES
            and head.lemma_.lower() in STANCES
            and not any(c.dep_ == "prep" and c.lower_ in ("to", "of") for c in (*t.children, *head.children))
        ):
            return f"'{word} {head.text}' needs what it is {word} to, which the sample never says"
    return None


#: structures whose parts a text names as "the group operation" once it has fixed one structure
STRUCTURES = frozenset("group subgroup ring field set vector matrix function map code channel".split())
#: the parts, which belong to one structure: "the group operation" of which group?
STRUCTURE_PARTS = frozenset("operation identity element order argument inverse value domain range generator".split())


def named_instance_problem(text: str) -> str | None:
    """ "What is the code C?", "the encrypted letter R": a definite noun named by a one-letter label
    is the source's own instance (its example's code, its message's letter), or None. An indefinite
    ("a group G") introduces its own label and passes."""
    doc = parse(text)
    for t in doc[2:]:
        if not re.fullmatch(r"[A-Z](?:_?\d|')?", t.text) or doc[t.i - 1].pos_ != "NOUN":
            continue
        i = t.i - 1  # back over the noun phrase's words ("the encrypted letter R") to its determiner
        while i > 0 and doc[i - 1].tag_ in ("NN", "NNS", "JJ", "VBN", "HYPH"):
            i -= 1
        if i > 0 and doc[i - 1].lower_ == "the":
            return f"'{doc[i - 1 : t.i + 1].text}' is an instance the source labelled; the sample never defines it"
    return None


def structure_part_problem(text: str) -> str | None:
    """A part of an unnamed structure ("the group operation", "the function argument Rate"): the
    source fixed the group or the function before, the sample never names it; or None."""
    for t in parse(text):
        if t.pos_ != "NOUN" or t.lemma_.lower() not in STRUCTURE_PARTS or not _definite(t):
            continue
        kind = [c for c in t.children if c.dep_ == "compound" and c.lemma_.lower() in STRUCTURES]
        if kind and not any(c.dep_ in _OWNER_DEPS for c in t.children):
            return f"'the {kind[0].text} {t.text}' of which {kind[0].text}? The sample never names it"
    return None


#: what an exercise asks the reader to produce: "your prediction" exists only in the exercise
_EXERCISE_WORK = frozenset(
    "prediction answer result graph data measurement calculation observation guess hypothesis estimate sketch".split()
)


def exercise_problem(question: str) -> str | None:
    """A question about the reader's own work in an exercise ("Is your prediction correct?"), or None."""
    for t in parse(question):
        if t.lemma_.lower() in _EXERCISE_WORK and any(c.dep_ == "poss" and c.lower_ == "your" for c in t.children):
            return f"'your {t.text}' is the reader's work in the source's exercise"
    return None


#: verbs whose passive needs its purpose: "Why is less equity needed?" (needed for what?)
_PURPOSE_VERBS = frozenset("need require".split())


def purpose_problem(question: str) -> str | None:
    """A passive "needed"/"required" with no purpose or time ("for a levered firm", "to ...", "for a
    prolonged period"), or a choice that "depends on" something with no case it is made for ("the
    choice of diagnostic test"): what it is for was the source's context; or None."""
    for t in parse(question):
        if t.lemma_ in _PURPOSE_VERBS and t.tag_ == "VBN" and any(c.dep_ == "auxpass" for c in t.children):
            if not any(c.dep_ in ("prep", "xcomp", "advcl", "agent", "ccomp") for c in t.children):
                return f"'{t.text}' for what? The question never says"
        if t.lemma_ == "depend":
            # "What does the choice of diagnostic test depend on?": chosen for which condition (seed 1240)
            subj = next((c for c in t.children if c.dep_ == "nsubj" and c.lemma_ in _CHOSEN_FOR), None)
            if subj is not None and not any(c.dep_ == "prep" and c.lower_ != "of" for c in subj.subtree if c is not subj):
                return f"'{subj.text}' for what? The question never says"
    return None


#: what is chosen for a case the question must name: "the choice of diagnostic test" (for what?)
_CHOSEN_FOR = frozenset("choice selection decision timing duration route".split())


def example_referent_problem(question: str, answer: str, chunk_text: str) -> str | None:
    """A definite noun phrase of the question ("the skater", "the dumbbell") whose thing the chunk
    introduced with an indefinite article ("a speed skater"): the running example's entity, which a
    reader without the book cannot identify; or None.

    Args:
        question: the sample's question (one sentence; a scenario introduces its own things).
        answer: the sample's answer: a thing it calls "the X" that the question never names counts too.
        chunk_text: the source chunk.
    Returns: a one-line reason, or None.
    """
    scenes = [s.lower() for s in sentences(chunk_text) if _SETS_UP.search(s.lower())]
    if not scenes:
        return None
    asked = {t.lemma_.lower() for t in parse(question) if t.pos_ in ("NOUN", "PROPN")}
    for text, is_answer in ((question, False), (answer, True)):
        if not text:
            continue
        doc = parse(text)
        for t in doc:
            # "the dumbbell travel": a parse that hangs "the" on the next noun still makes it definite
            definite = _definite(t) or (t.dep_ == "compound" and t.i > 0 and doc[t.i - 1].lower_ == "the")
            if t.pos_ != "NOUN" or t.tag_ != "NN" or not definite or t.lemma_.lower() in GENERIC_NOUNS:
                continue
            if t.lemma_.lower() in {x.lemma_.lower() for x in doc[: t.i]}:
                continue  # "must a finite group have ... the order of the group?": introduced by the sample itself
            if is_answer and t.lemma_.lower() in asked:
                continue
            if any(c.dep_ in ("prep", "relcl", "acl") for c in t.children):
                continue  # "the centre of mass of ...": said which one
            intro = re.compile(rf"\b(?:a|an)\s+(?:[\w-]+\s+){{0,3}}{re.escape(t.lower_)}\b")
            if any(intro.search(s) and _SETS_UP.search(s) for s in scenes):
                where = "answer" if is_answer else "question"
                return f"'the {t.text}' in the {where} is the source's example, introduced there as 'a ... {t.text}'"
    return None


def running_character_problem(question: str) -> str | None:
    """A person called by one name who acts in the hypothetical the question restates ("What
    happens if Alice receives a message from Bob?", read defective twice, q198/J003): a running
    example's character, whose setting (here public-key signatures) only the book gives; or None.

    A word problem that sets up its own story ("If Maria invests $1,000 at 5% ...") is a longer
    question and is not asked "What happens ...?"; a case party ("In Roe v. Wade, ...") has two
    names around "v.", a justice a title: neither is one name acting in an "if" clause.
    """
    if not re.match(r"(?i)what happens (?:if|when)\b", question):
        return None
    doc = parse(question)
    for ent in entities(doc):
        names = [t for t in ent if t.pos_ == "PROPN"]
        if ent.label_ != "PERSON" or len(names) != 1:
            continue
        t = names[0]
        clause = t.head
        if t.dep_ in ("nsubj", "nsubjpass") and any(c.dep_ == "mark" and c.lower_ in ("if", "when") for c in clause.children):
            return f"'{t.text}' is a character of the source's running example, not named for a reader without the book"
    return None


#: kinds of illness: "the disease" names none ("the disease process": which disease, the heading said)
_ILLNESSES = frozenset("disease disorder illness infection syndrome".split())


def unnamed_illness_problem(question: str) -> str | None:
    """A bare "the disease" (or "the disease process") in the question: which disease, only the
    book's heading says ("What are the two major neurotransmitters implicated in the disease
    process?", Parkinson's, read defective, g028); or None."""
    doc = parse(question)
    for t in doc:
        if t.pos_ != "NOUN" or t.lemma_.lower() not in _ILLNESSES:
            continue
        head = t.head if t.dep_ == "compound" else t
        if not _definite(head) or any(
            c.dep_ in _OWNER_DEPS or c.dep_ in ("amod", "compound", "nmod") and c != t for c in head.children
        ):
            continue  # "the disease of the lungs", "the autoimmune disease", "Parkinson's disease"
        if head != t and any(c.dep_ in ("amod", "compound") for c in t.children):
            continue
        return f"'{doc[head.left_edge.i : head.i + 1].text}' names no illness: which one, the sample never says"
    return None


def owned_part_problem(question: str, answer: str, chunk_text: str) -> str | None:
    """A bare definite noun of the question ("the plates") that the chunk calls a part of something
    ("the two plates of a capacitor") the sample never names: which thing's part, a reader without
    the book cannot tell ("What happens when the dielectric material is placed between the plates?",
    read defective three times); or None."""
    doc = parse(question)
    said = {t.lemma_.lower() for text in (question, answer) for t in parse(text) if t.is_alpha}  # parses the gate has made
    for t in doc:
        if t.pos_ != "NOUN" or not _definite(t) or t.lemma_.lower() in GENERIC_NOUNS:
            continue
        if any(c.dep_ in _OWNER_DEPS or c.dep_ in ("amod", "compound", "nummod") for c in t.children):
            continue  # "the plates of the capacitor", "the parallel plates": said whose or which
        part = re.compile(rf"(?i)\bthe\s+(?:\w+\s+)?{re.escape(t.text)}\s+of\s+(?:a|an)\s+((?:[\w-]+\s+){{0,2}}[\w-]+)")
        for m in part.finditer(chunk_text):
            owner = m.group(1).split()
            if not any(w.lower() in said or w.lower().rstrip("s") in said for w in owner):
                return f"'the {t.text}' is, in the source, the {t.text} of a {' '.join(owner)}, which the sample never names"
    return None


#: things a text names once and then calls "the doctrine", "the statute": bare, the name is the source's
NAMED_THINGS = frozenset(
    """doctrine rule principle theory statute provision practice policy scheme program plan decision opinion
    holding ordinance regulation act treaty""".split()
)


def named_before_problem(answer: str, question: str = "") -> str | None:
    """A bare "the doctrine", "the statute" in the answer (no modifier, no "of ...", no clause after
    it) that the question does not name either: a thing the source named before ("American courts
    have since labored with the doctrine"), or None."""
    asked = {t.lemma_.lower() for t in parse(question)} if question else set()
    for t in parse(answer):
        if t.pos_ != "NOUN" or t.tag_ != "NN" or t.lemma_.lower() not in NAMED_THINGS or not _definite(t):
            continue
        if t.lemma_.lower() in asked or any(c.dep_ not in ("det", "punct") for c in t.children):
            continue
        return f"'the {t.text}' is one the source named before; the sample never says which"
    return None


#: the people a practice book speaks of in general: a question about them alone names no subject
ROLES = frozenset(
    "nurse client patient provider clinician physician doctor prescriber caregiver person people individual student reader user family member".split()
)
_REASON_MARKS = frozenset("because since as if when while".split())


def role_only_problem(question: str, answer: str) -> str | None:
    """A question that names only roles ("Why should the nurse assess the client frequently?")
    answered with a reason about a thing it never names ("Because lidocaine may cause ..."): the
    question stands for the source's drug or condition, and alone it asks about every client."""
    nouns = {t.lemma_.lower() for t in parse(question) if t.pos_ in ("NOUN", "PROPN")}
    if not nouns or not nouns <= ROLES:
        return None
    for t in parse(answer):
        if t.dep_ != "advcl" or not any(c.dep_ == "mark" and c.lower_ in _REASON_MARKS for c in t.children):
            continue
        for subj in (c for c in t.children if c.dep_ in ("nsubj", "nsubjpass")):
            if subj.pos_ in ("NOUN", "PROPN") and subj.lemma_.lower() not in ROLES | nouns:
                return (
                    f"the question names only {sorted(nouns)}; the answer's reason is about '{subj.text}', which it never names"
                )
    return None


#: a computed figure in an answer: "FV = 2,433.31", "PV = −12.97"
_COMPUTED = re.compile(r"=\s*[−-]?\$?\d[\d,]*\.\d+")


def unstated_inputs_problem(question: str, answer: str) -> str | None:
    """An answer that gives a computed figure ("display: FV = 2,433.31") to a question that states
    no number ("How do you determine future value with a financial calculator?"): the figure comes
    from the source's example, whose inputs the question never gives."""
    m = _COMPUTED.search(answer)
    if m is None or re.search(r"\d", question):
        return None
    return f"the answer's figure ('{m.group(0).lstrip('= ')}') comes from inputs the question never states"


def quiz_option_problem(answer: str, evidence: list[str], chunk_text: str) -> str | None:
    """An answer taken from an option of a multiple-choice question in the chunk (a numbered or
    lettered line after a line that ends with "?"): the source offers it as a choice, perhaps a
    wrong one ("4. Earth's magnetic North pole depends on the charge of the observer."); or None."""
    lines = chunk_text.splitlines()
    asked = False
    probes = [_norm(e) for e in evidence if e.strip()] or [_norm(answer)]
    for line in lines:
        bare = line.lstrip("> ").strip()
        if not bare:
            continue
        m = OPTION_LINE.match(line)
        if m and asked:
            option = _norm(m.group(1))
            if option and any(p.startswith(option[:60]) or option.startswith(p[:60]) for p in probes if p):
                return "taken from an option of a multiple-choice question in the source (it may be a wrong one)"
            continue
        asked = bare.endswith("?")
    return None


_COURT_SAYS = re.compile(r"\bthe Court (?:says|said|held|holds) that\s+(.+)", re.S)


def _norm(text: str) -> str:
    return re.sub(r"\W+", " ", text).strip().lower()


def quoted_as_court_problem(answer: str, evidence: list[str], chunk_text: str) -> str | None:
    """An answer that says "the Court says/held that S" where S comes from a block quote of the
    chunk (lines opening with ``>``: a lower court's findings, a statute, a brief): the Court
    quoted it, it did not say it; or None.

    Args:
        answer: the sample's answer.
        evidence: the sample's evidence sentences (may be empty: the answer's clause is looked up).
        chunk_text: the source chunk (Markdown, block quotes as ``>`` lines).
    """
    m = _COURT_SAYS.search(answer)
    if not m:
        return None
    quoted = [_norm(line.lstrip("> ")) for line in chunk_text.splitlines() if line.lstrip().startswith(">")]
    if not quoted:
        return None
    probes = [_norm(e) for e in evidence if e.strip()] or [_norm(m.group(1))]
    for probe in probes:
        key = " ".join(probe.split()[:12])
        if key and any(key in q for q in quoted):
            return "credits to the Court words its opinion quotes from another text (a block quote)"
    return None
