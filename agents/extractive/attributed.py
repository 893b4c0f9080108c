"""Attributed candidates: what a court held, or what an author says, never the claim as bare fact.

Essays, literature and judicial opinions state their authors' views. A skill that says so (an
enabled ``attributed`` rule in its ``filters.yaml``, as ``general`` and ``law`` have) gets its
concept samples from here only:

* **holdings** of a judicial opinion: a sentence where the Court speaks ("We hold that ...",
  "we conclude that ...") in a document whose title is a case name ("Marbury v. Madison").
  Question: "In <case>, what did the Court hold about <topic>?", where the topic is the subject
  of the held clause; answer: "In <case>, the Court held that <clause>." The sentence is the
  evidence and the ``quoted_text``.
* **an author's claims**: a general statement in the present tense with a named subject
  ("Man is an animal who ...") in a work whose ``SOURCE.md`` names one author. Question:
  "In <work>, what does <author> say about <subject>?"; answer: "In <work>, <author> writes
  that <sentence>."
* **a court's statements**: the same kind of general present-tense sentence in the majority
  opinion of a case ("In <case>, what does the Court say about <subject>?"), unless it reports a
  party's, a lower court's or a dissent's view; a separate opinion (a heading with "dissenting"
  or "concurring") gives no candidate at all.

Sentences are parsed with spaCy (:mod:`prepbench.tools.nlp`); a topic the gate would find not
self-contained ("the drug", "it") gives no candidate.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from prepbench.agents.extractive.candidates import Cand
from prepbench.agents.extractive.grammar import Sent
from prepbench.tools.chunking import Chunk
from prepbench.tools.nlp import entities, parse
from prepbench.tools.validate import language, referents

_CASE_NAME = re.compile(r"\bv\.\s")
_FIRST_PERSON = re.compile(r"(?i)\b(I|me|my|mine|we|us|our|you|your)\b")
_PRONOUNS = re.compile(r"(?i)\b(he|she|him|her|his|hers|they|them|their|it|its|this|these|those|such)\b")
_HOLD_LEMMAS = frozenset(("hold", "conclude"))
#: a held clause that points back ("may use this power to ..."): which power, the sample never says
_POINTING = re.compile(r"(?i)\b(?:this|these|those|such)\s+(\w+)")


def _points_back(clause: str) -> bool:
    """``clause`` names something with "this"/"such" that it has not named before ("may use this
    power"; "the right of personal privacy ... but that this right" names its own)."""
    return any(not re.search(rf"(?i)\b{re.escape(m.group(1))}\b", clause[: m.start()]) for m in _POINTING.finditer(clause))


#: what the Court has said before, in the present perfect only ("We have noted that ...")
_SAID_LEMMAS = frozenset(("recognize", "note", "say", "explain", "state"))
#: words of a holding's opening that hold it under a premise of the sentences before ("On that
#: assumption, we conclude ..."); "this case" and "the standard that is well established" do not
_PREMISES = frozenset("assumption assuming premise if unless".split())
#: links to the sentences around it ("also", "thus", "however"): the statement is a step of an argument
_CONTEXT_LINKS = re.compile(
    r"(?i)\b(also|thus|however|therefore|moreover|too|again|then|instead|likewise|similarly|even|contrast|different|here|furthermore|further|similar|first|second|third|latter|former|two)\b(?!\s+(?:amendment|circuit)\b)"
)
#: a subject opening with these counts or contrasts things named elsewhere ("both kinds of regulation")
_QUANTIFIERS = frozenset(
    "no neither none both either each all some many most other another such several various these those".split()
)
#: an author's sentence that leans on the one before it ("for example", "thus", "the latter")
_AUTHOR_LINKS = re.compile(
    r"(?i)\b(for example|for instance|e\.g\.|also|thus|therefore|however|instead|likewise|similarly|latter|former|above|below)\b"
)
#: words of a sentence that reports what a party, a lower court or a dissent says
_PARTY_ARGUMENT = re.compile(
    r"(?i)\b(argu\w*|conten\w*|claim\w*|assert\w*|urg\w*|suggest\w*|maintain\w*|insist\w*|petitioners?|respondents?|appellants?|appellees?|"
    r"plaintiffs?|defendants?|dissent\w*|court of appeals|district court)\b"
)
#: a court's statement teaches law when it speaks of law: a sentence without one of these words is
#: the case's facts or procedure ("the placement process begins with review of ...", "commerce
#: among the states in wheat is large and important"), which blind readers rated of little value
_LEGAL_TERMS = re.compile(
    r"(?i)\b(constitution\w*|amendments?|clauses?|rights?|powers?|congress\w*|statut\w+|laws?|lawful|unlawful|judicial|"
    r"courts?|due process|equal protection|liberty|liberties|unconstitutional\w*|jurisdiction\w*|authority|federal|"
    r"regulat\w+|doctrine|scrutiny|legislat\w+|sovereign\w*|government\w*|privilege\w*|protect\w*|discriminat\w+|"
    r"prohibit\w*|requires?|permits?|invalid|valid|violat\w+|standard|test|burden|obstacle|interest|economic|commercial|interstate)\b"
)
_HEDGES = frozenset(("would", "could", "might", "may", "need", "should"))
#: heads of a court statement's subject that make it background or a truism, not a rule of the case
_COURT_VAGUE_SUBJECTS = frozenset("pattern case cases law laws".split())
#: adverbs that make a court's statement a truism ("can sometimes have more than one meaning")
_TRUISM_HEDGES = frozenset("sometimes often usually generally occasionally".split())
#: heads that name a place in the argument, not a subject ("the big difference", "one way")
_VAGUE_HEADS = language.RELATIONAL_NOUNS | frozenset(
    "version case example exercise difference way thing point idea issue question matter one kind lot".split()
    # "the proper test", "the applicable standard": which test, only the sentences before say (read weak, seed 1236)
    + "test standard inquiry".split()
)
#: heads of a held clause's subject that name the test a case applied, not what it decided
_TEST_HEADS = frozenset("test standard inquiry analysis".split())
#: modifiers of a subject that is any one of its kind ("a particular burden": read weak twice, seeds 1235 and 1236)
_ANY_ONE = frozenset("particular certain given".split())


@dataclass(frozen=True)
class Voice:
    """Whose claims a chunk states: ``court`` (``name``: the case; ``speaker``: who speaks in it,
    "the Court" or, for an opinion the Court joins only in part, the author's opinion, see
    :func:`~prepbench.agents.extractive.opinions.opinion_speaker`) or ``author`` (``name``: the
    author's surname, ``work``: the title)."""

    kind: str
    name: str
    work: str = ""
    speaker: str = "the Court"


def voice_of(chunk: Chunk, source: dict | None, separate_from: int | None = None, speaker: str | None = None) -> Voice | None:
    """The chunk's voice: the case its document is titled after, else the single named author of
    its corpus's ``SOURCE.md`` (``source``: ``{"title", "authors"}``); None when neither is known,
    or when the chunk reaches a separate opinion (``separate_from``: its first line in the document,
    :func:`~prepbench.agents.extractive.opinions.separate_opinion_line`). ``speaker``: the case's
    main opinion when the Court joins only part of it (None: "the Court")."""
    title = chunk.heading_path[0] if chunk.heading_path else ""
    if re.match(r"(?i)\s*(notes?|hypos?|questions?)\b", title):
        title = ""  # the editor's notes on a case, not the Court's opinion
    separate = separate_from is not None and chunk.end_line >= separate_from
    if _CASE_NAME.search(title) and (separate or re.search(r"(?i)dissent|concurr", " ".join(chunk.heading_path))):
        return None  # a separate opinion: its claims are not the Court's
    if _CASE_NAME.search(title):
        return Voice("court", re.sub(r"\s+", " ", title).strip(), speaker=speaker or "the Court")
    if not source or not source.get("authors") or not source.get("title"):
        return None
    people = [e for e in entities(parse(source["authors"].split(";")[0])) if e.label_ == "PERSON"]
    if len(people) != 1:
        return None  # several authors, or none named: no one voice to attribute to
    work = re.sub(r"\s*\([^)]*\)", "", source["title"].split(" — ")[0]).strip()  # "Walden (Standard Ebooks edition)"
    return Voice("author", people[0].text.split()[-1], work)


def _topic(span_root) -> str | None:
    """The subject phrase of a clause, when it stands alone ("the Act", "it" do not)."""
    doc = span_root.doc
    span = doc[span_root.left_edge.i : span_root.right_edge.i + 1]
    phrase = span.text.strip(" ,")
    if any(t.ent_type_ == "PERSON" or t.lower_ == "justice" for t in span):
        return None  # what a Justice or a party argues, not a subject of law
    if "," in phrase:
        return None  # "second, violent crime", "X, like Y,": not one subject
    if not phrase or len(phrase.split()) > 12 or span_root.pos_ not in ("NOUN", "PROPN"):
        return None
    content = [t for t in span if t.pos_ in ("NOUN", "PROPN", "ADJ", "NUM") and not t.is_stop]
    if len(content) < 2 or span[0].pos_ in ("ADP", "SCONJ", "ADV") or span[0].lower_ in _QUANTIFIERS:
        return None  # "petitioners", "the States": too vague to ask about
    owned = any(c.dep_ == "prep" for c in span_root.children)
    if span_root.pos_ == "NOUN" and span_root.lemma_.lower() in _VAGUE_HEADS and not owned:
        return None  # "the short version", "a similar example", "the key case"
    if any(t.lower_ in _ANY_ONE for t in span):
        return None
    probe = f"What is {phrase}?"
    if language.referent_problem(probe) or language.pronoun_problem(probe) or language.pointing_problem(probe):
        return None
    return phrase


#: heads that need their document to say which one is meant ("the Act", "the statute", "the State")
_GENERIC_LEGAL_HEADS = frozenset(
    "act statute ordinance law court state states government regulation provision amendment clause section "
    "rule program plan policy board commission agency city county petitioner respondent".split()
)


def _names_itself(subj) -> bool:
    """The held clause's subject names one thing without its document: a phrase of two content
    words or more that is no pronoun, demonstrative or quantifier ("the doctrine of 'separate but
    equal'", "the Second Amendment right"), or a name of one thing ("the Constitution", "Congress",
    "Virginia"), not a generic head ("the Act", "the statute", "this provision", "it")."""
    span = subj.doc[subj.left_edge.i : subj.right_edge.i + 1]
    if subj.pos_ not in ("NOUN", "PROPN") or any(t.lower_ in _QUANTIFIERS or _PRONOUNS.fullmatch(t.text) for t in span):
        return False
    if any(t.ent_type_ == "PERSON" or t.lower_ == "here" for t in span):
        return False
    content = [t for t in span if t.pos_ in ("NOUN", "PROPN", "ADJ", "NUM") and not t.is_stop]
    if len(content) >= 2:
        return True
    return subj.pos_ == "PROPN" and subj.lemma_.lower() not in _GENERIC_LEGAL_HEADS


def _lower_first(phrase: str) -> str:
    """The phrase with its first letter lowered, unless it begins with a name ("Baker v. Carr")."""
    doc = parse(phrase)
    first = doc[0]
    named = first.pos_ != "DET" and any(e.start == 0 for e in entities(doc))  # "American courts": a nationality keeps its capital
    if first.pos_ == "PROPN" or named or not phrase[:1].isupper() or phrase[1:2].isupper():
        return phrase
    return phrase[0].lower() + phrase[1:]


def _held(s: Sent, question: str, answer: str, point: str, kind: str, authority: str, source: str, score: float) -> Cand:
    """A holding's candidate (``rule_question`` fields: its statement kind, its authority and the
    sentence quoted), with sentence ``s`` as its evidence; ``source``: which extractor made it."""
    fields = {
        "question": question,
        "answer": answer,
        "question_type": "fact",
        "knowledge_point": point[:120],
        "statement_kind": kind,
        "authority": authority,
        "quoted_text": s.raw.strip(),
    }
    return Cand("concept_qa", fields, [s.raw.strip()], source, score, s.raw)


def holding(s: Sent, case: str, speaker: str = "the Court") -> Cand | None:
    """A holding candidate from sentence ``s`` of an opinion of ``case``, or None. ``speaker``: who
    says "we" (:class:`Voice`); an opinion that is not the Court's "concluded" rather than "held",
    and its "we have held" is the Court's precedent."""
    hold, held_, has = ("hold", "held", "it has") if speaker == "the Court" else ("conclude", "concluded", "the Court has")
    text = s.text.strip()
    if len(text) > 400 or not re.search(r"\b(hold|held|conclude|recognized|noted|said|explained|stated)\b", text):
        return None  # "held": the Court's own precedent ("we have held that ...")
    doc = parse(text)
    for verb in doc:
        # "we hold/conclude that ...", or the Court's own precedent: "we have held that ..."
        perfect = verb.tag_ == "VBN" and any(c.lemma_ == "have" and c.dep_ == "aux" for c in verb.children)
        said = perfect and verb.lemma_ in _SAID_LEMMAS  # "we have noted that ..."
        if not said and (verb.lemma_ not in _HOLD_LEMMAS or (verb.tag_ not in ("VBP", "VB") and not perfect)):
            continue
        subj = [c for c in verb.children if c.dep_ == "nsubj"]
        if not subj or subj[0].lower_ != "we" or any(c.lower_ in _HEDGES or c.dep_ == "neg" for c in verb.children):
            continue
        clause = next((c for c in verb.children if c.dep_ == "ccomp"), None)
        held_subj = next((c for c in clause.children if c.dep_ in ("nsubj", "nsubjpass")), None) if clause else None
        if held_subj is None:
            continue
        topic = _topic(held_subj)
        if topic is None and said and held_subj.pos_ == "PROPN" and held_subj.left_edge == held_subj == held_subj.right_edge:
            topic = held_subj.text if _names_itself(held_subj) else None  # "We have said that Congress can ..."
        if topic is None and (perfect or not _names_itself(held_subj)):
            continue
        start = next((c.i + 1 for c in clause.children if c.dep_ == "mark" and c.lower_ == "that"), clause.left_edge.i)
        held = doc[start : clause.right_edge.i + 1].text.strip(" ,;")
        if doc[clause.right_edge.i].text == ";" or doc[clause.right_edge.i + 1 :].text.lstrip(" ,").startswith(";"):
            continue  # "includes a right to marry; a right to procreate; ...": the parse cut the list short
        if ";" in held or "§" in held:
            # "the rights to marry, Loving v. Virginia; to have children, Skinner v. Oklahoma ex rel." (a
            # list of citations, read defective: cut at "ex rel."), "sufficient to enact §4248" (a
            # statute by its number alone, read weak twice)
            continue
        if any(t.lower_ in _PREMISES or (t.dep_ == "det" and t.lower_ in ("that", "those", "such")) for t in doc[: subj[0].i]):
            continue  # "On that assumption, we conclude ...": held under a premise the sample cannot state
        if len(held.split()) < 5 or _PRONOUNS.search(held.split(" ", 1)[0]) or _FIRST_PERSON.search(held) or _points_back(held):
            continue
        if topic is None:
            # "We conclude that in the field of public education the doctrine of 'separate but equal'
            # has no place": the held clause names what it is about, but no short topic can be cut
            # from it; the case itself is the question's subject
            if language.referent_problem(held) or language.pronoun_problem(held) or language.pointing_problem(held):
                continue
            question = f"What did the Court hold in {case}?" if hold == "hold" else f"In {case}, what did {speaker} conclude?"
            if held_subj.lemma_.lower() in _TEST_HEADS:
                # "the proper test requires an analysis of ...": the test the case applied, not its
                # holding ("What did the Court hold in U.S. v. Lopez?" read weak twice, seeds 1237, 1240)
                obj = next((c for c in clause.children if c.dep_ == "dobj"), None)
                if obj is None:
                    continue
                question = f"In {case}, what did {speaker} {hold} {doc[held_subj.left_edge.i : obj.left_edge.i].text.strip()}?"
            answer = f"In {case}, {speaker} {held_} that {_lower_first(held).rstrip('.')}."
        elif perfect:
            question = f"In {case}, what does {speaker} say {has} {verb.lower_} about {_lower_first(topic)}?"
            answer = f"In {case}, {speaker} says {has} {verb.lower_} that {_lower_first(held).rstrip('.')}."
        else:
            question = f"In {case}, what did {speaker} {hold} about {_lower_first(topic)}?"
            answer = f"In {case}, {speaker} {held_} that {_lower_first(held).rstrip('.')}."
        point = f"{case}: {topic or 'holding'}"
        return _held(s, question, answer, point, "rule" if perfect else "holding", case, "holding", 1.0)
    return None


#: a case's name as opinions write it: capitalised words joined by "v." ("Califano v. Webster",
#: "Planned Parenthood of Central Mo. v. Danforth"); a word's "." is an abbreviation only before a
#: comma, a lower-case word or a bracket ("Mo. v.", "Co., "), so "... Roe v. Wade. The" stops at "Wade"
_NAME_WORD = r"(?:[A-Z][\w’'&-]*(?:\.(?=,|\s+[a-z(]))?|of|and|the|for|ex rel\.)"
_CASE_NAMES = re.compile(rf"[A-Z][\w’'&-]*(?:\.(?=\s+[a-z(]))?(?: {_NAME_WORD})*? v\. [A-Z][\w’'&-]*(?: {_NAME_WORD})*")
#: words a sentence opens with before a case's name ("In Roe v. Wade", "See Bowers v. Hardwick")
_NAME_LEADS = frozenset("In See Cf. But And Thus Like Under After Since As Unlike Both Compare Also Accord Following".split())


def case_names(text: str) -> frozenset[str]:
    """The full case names (":data:`_CASE_NAMES`) a document cites, without a leading "In"/"See" or
    a trailing connective: what a short name ("In Heller, we held ...") stands for."""
    out = set()
    for m in _CASE_NAMES.finditer(text):
        words = m.group(0).rstrip(".,").split()
        while words and words[0] in _NAME_LEADS:
            words = words[1:]
        while words and words[-1] in ("of", "and", "the", "for"):
            words = words[:-1]
        if "v." in words[1:-1]:
            out.add(" ".join(words))
    # "Lochner v. New York and Roe": two names joined by "and", not one party's name
    firsts = {c.split()[0] for c in out}
    return frozenset(re.sub(r" and ([A-Z][\w’'&-]*)$", lambda m: "" if m.group(1) in firsts else m.group(0), c) for c in out)


def _full_name(span: str, cases: frozenset[str]) -> str | None:
    """``span`` ("Califano v. Webster", "Heller", "Prince v. Massachusetts (1944)") as a full case
    name: itself when it is one, else the one name of ``cases`` that has it as a party's word; None
    when it is neither ("that decision", "the first") or when two names have it ("Akron")."""
    span = re.sub(r"\s*\([^)]*\)", "", span.replace("*", "")).strip(" ,")  # "(1944)", "(plurality opinion)", italics
    span = re.sub(r",\s*\d+\s+U\.?\s?S\.?\s+\d+$", "", span)  # "Wisconsin v. Yoder, 406 US 205": its report
    span = re.sub(r"\s+(?:the|this) Court$", "", span)  # "in Buchanan v. Warley the Court held": the subject, not the name
    if " v. " in span:
        return span if _CASE_NAMES.fullmatch(span) else None
    if not re.fullmatch(r"[A-Z][\w’'&-]*", span):
        return None  # "the License Tax Cases", "Cruzan itself", "that decision": not a party's name
    # a short name is the first party's ("Roe"), or the second's where the first is a government or
    # a group ("Heller" for District of Columbia v. Heller)
    for side in (lambda c: c.split(" v. ")[0].split()[:1], lambda c: c.split(" v. ")[1].split()):
        full = {c for c in cases if span in side(c)}
        if full:
            return full.pop() if len(full) == 1 else None
    return None


#: the verbs of a precedent's result, past tense: "we held that ...", "we upheld a statute ...",
#: "we struck down a regulation ..."
_PRECEDENT_VERBS = {"hold": "held", "uphold": "upheld", "strike": "struck down"}
_ASKED = {"hold": "hold", "uphold": "uphold", "strike": "strike down"}
#: a hedge on what a precedent did (read weak: "in effect, Bowers upheld state action that ...")
_HEDGED = re.compile(r"(?i)\b(in effect|effectively|essentially|in essence|in substance|arguably)\b")
#: the words of a subject that is the Court itself ("this Court", "a bare majority")
_COURT_WORDS = frozenset(("the", "this", "a", "bare", "unanimous"))
#: what a held law was held to be, without a clause ("we held unconstitutional a regulation ...")
_VERDICTS = frozenset(("unconstitutional", "invalid", "constitutional", "valid"))


def _precedent_result(doc, verb) -> tuple[str, str] | None:
    """``(said, what)`` of a precedent's verb: ``("held that ", "<clause>.")`` or ``("upheld ",
    "<what it upheld>.")``, or None when no part of the sentence states it alone."""
    clause = next((c for c in verb.children if c.dep_ == "ccomp"), None)
    result = next((c for c in verb.children if c.dep_ == "dobj"), None)
    verdict = next((c for c in verb.children if c.lower_ in _VERDICTS), None)
    if verb.dep_ == "advcl":  # "As we held in X, <the main clause>."
        if verb.lemma_ != "hold" or verb.head.dep_ != "ROOT" or clause is not None or result is not None:
            return None
        start = verb.right_edge.i + 1 + (doc[verb.right_edge.i + 1].text == ",")
        said, last = "held that ", len(doc) - 1
    elif verb.lemma_ == "hold" and clause is not None:
        start = next((c.i + 1 for c in clause.children if c.dep_ == "mark" and c.lower_ == "that"), clause.left_edge.i)
        said, last = "held that ", clause.right_edge.i
    elif result is not None and (verb.lemma_ != "hold" or verdict is not None):
        if result.lemma_.lower() in _GENERIC_LEGAL_HEADS and not any(t.dep_ in ("amod", "compound") for t in result.lefts):
            return None  # "the 1965 Act": which act, the sample never says
        # from the verb on ("upheld as a tax a 'surcharge' ...", "held unconstitutional a regulation ...")
        start = max([verb.i] + [c.i for c in verb.children if c.dep_ == "prt"]) + 1
        said, last = _PRECEDENT_VERBS[verb.lemma_] + " ", result.right_edge.i
    else:
        return None  # "we held it not permissible to ...": no clause the sample can state alone
    while doc[last].is_punct and last > start:
        last -= 1  # the clause's own trailing comma: "... exclude women, because ..."
    rest = doc[last + 1 :]
    if all(t.is_punct for t in rest):
        last = len(doc) - 1  # a closing quotation mark after the clause ends the sentence too
    elif rest[0].text != ",":
        return None  # "provisions 'that are ... privacy are permissible'": the parse cut the clause short
    what = re.sub(r"^that\s+", "", doc[start : last + 1].text.strip(" ,;"))
    if ";" in what or "§" in what or len(what.split()) < 5 or _FIRST_PERSON.search(what) or _points_back(what):
        return None  # a list of citations, a statute by number, or "our" cases
    if _PRONOUNS.search(what.split(" ", 1)[0]):
        return None
    if language.referent_problem(what) or language.pronoun_problem(what) or language.pointing_problem(what):
        return None
    what = what if what.endswith((".", ".”", '."')) else what.rstrip(".") + "."
    return said, what


def precedent(s: Sent, case: str | None, cases: frozenset[str], speaker: str = "the Court") -> Cand | None:
    """What an opinion of ``case`` says the Court held, upheld or struck down in an earlier case it
    names ("In Heller, we held that ...", "Thus, in Califano v. Webster, we upheld ..."), or None.
    ``cases``: the full names its document cites (:func:`case_names`), for a short name.

    Question: "In <case>, what does the Court say was held in <precedent>?"; answer: "In <case>, the
    Court says that in <precedent> the Court held that <clause>." The sentence is the evidence.
    ``case`` None: an editor's note reporting a case ("in *Wisconsin v. Yoder*, the Court held that
    ..."); "we" there is the editor and the class, so only "the Court" counts, and the sample is
    "What did the Court hold in <precedent>?" / "In <precedent>, the Court held that <clause>.".
    ``speaker``: who says "we" in ``case`` (:class:`Voice`)."""
    text = s.text.strip()
    if len(text) > 400 or not re.search(r"\b(held|upheld|struck down)\b", text) or _HEDGED.search(text):
        return None  # "Yet, in effect, Bowers upheld ...": the Court's reading of a case, not what it held
    doc = parse(text)
    for verb in doc:
        # "As this Court held in Lawrence, same-sex couples have ...": the main clause is what was held
        as_held = verb.dep_ == "advcl" and verb.left_edge.i == 0 and any(c.lower_ == "as" for c in verb.children)
        if (
            verb.tag_ not in ("VBD", "VBN")
            or verb.lemma_ not in _PRECEDENT_VERBS
            or verb.dep_ not in ("ROOT", "conj")
            and not as_held
        ):
            continue
        if verb.lemma_ == "strike" and not any(c.dep_ == "prt" and c.lower_ == "down" for c in verb.children):
            continue
        subj = [c for c in verb.children if c.dep_ == "nsubj"]
        if not subj or any(c.dep_ == "neg" for c in verb.children):
            continue
        named = _full_name(doc[subj[0].left_edge.i : subj[0].right_edge.i + 1].text, cases)  # "Smith held that ..."
        # "we", "the Court", "this Court", "a bare majority" (not "the District Court", "the Hunter Court")
        court = (
            subj[0].lower_ == "we"
            and case is not None
            or subj[0].lower_ in ("court", "majority")
            and all(c.lower_ in _COURT_WORDS for c in subj[0].children)
        )
        if not court and named is None:
            continue
        # "In Heller, we held", "Two years ago, in District of Columbia v. Heller, we held", "the Court held in Danforth that"
        where = [
            t
            for t in doc
            if t.dep_ == "prep" and t.lower_ == "in" and (t.head == verb or t.i < subj[0].i and verb in t.ancestors)
        ]
        name = named or (_full_name(doc[where[0].i + 1 : where[0].right_edge.i + 1].text, cases) if where else None)
        if name is None or name == case:
            continue
        found = _precedent_result(doc, verb)
        if found is None or any(t.lower_ in _PREMISES for t in doc[: subj[0].i]):
            continue
        said, what = found
        asked = "held" if verb.lemma_ == "hold" else _PRECEDENT_VERBS[verb.lemma_]
        if case is None:
            question, answer = f"What did the Court {_ASKED[verb.lemma_]} in {name}?", f"In {name}, the Court {said}{what}"
        else:
            question = f"In {case}, what does {speaker} say was {asked} in {name}?"
            answer = f"In {case}, {speaker} says that in {name} the Court {said}{what}"
        return _held(s, question, answer, f"{name}: holding", "holding", case or name, "precedent", 0.9)
    return None


#: verbs that report what someone held or said: the Court's own statements come through holding()
_REPORTING = frozenset("hold say find conclude note observe state recognize explain rule decide declare".split())
#: modals of a court's general statements of law ("the courts must decide", "a State may not ...")
_NORMATIVE_MODALS = frozenset(("must", "may", "can", "cannot", "shall"))


def _present(root, voice: Voice) -> bool:
    """The clause's verb states something as holding now: the present tense, and for a court also a
    normative modal ("must decide", "may not") or the present perfect and present passive
    ("has been termed", "are deemed"), the voice in which opinions state the law."""
    if root.tag_ in ("VBZ", "VBP"):
        return True
    if voice.kind != "court":
        return False
    aux = [c for c in root.children if c.dep_ in ("aux", "auxpass")]
    if root.tag_ == "VB" and any(c.lower_ in _NORMATIVE_MODALS for c in aux):
        return True
    return root.tag_ == "VBN" and bool(aux) and aux[0].tag_ in ("VBZ", "VBP") and aux[0].lower_ not in ("'s",)


#: nouns for people and for human concerns: an essayist's claim about these is a thesis a reader
#: can learn from ("the mass of men lead lives of quiet desperation", "moral reform is ..."); a
#: subject outside them is mostly an image of nature ("the feathers and wings of birds are still
#: drier and thinner leaves"), which blind readers rated weak in every reading of Walden
_PEOPLE = frozenset(
    """man men woman women person people mankind humanity human humans scholar thinker prince king nation
    society generation farmer laborer labourer philosopher poet child children youth friend neighbor neighbour
    citizen government state""".split()
)
_CONCERNS = frozenset(
    """life reform success failure anxiety repugnance luxury wealth poverty labor labour philosophy truth wisdom
    virtue goodness morality character freedom liberty education culture religion faith hope fear desire habit
    custom fashion opinion knowledge ignorance justice duty conscience love friendship charity economy simplicity
    enterprise trade commerce work leisure""".split()
)


def _about_people(subj) -> bool:
    """The subject phrase names people or a human concern (:data:`_PEOPLE`, :data:`_CONCERNS`)."""
    # the head itself, or what it is "of" ("the mass of men"); a person in a modifier ("the impression
    # made on a wise man", "the purity men love") leaves the claim about something else
    heads = [subj, *(p for c in subj.children if c.dep_ == "prep" and c.lower_ == "of" for p in c.children if p.dep_ == "pobj")]
    heads += [c for h in list(heads) for c in h.children if c.dep_ == "conj"]
    return any(h.lemma_.lower() in _PEOPLE | _CONCERNS for h in heads)


def _asked_of_name(doc, root, subj) -> str | None:
    """What to ask of a court's statement whose verb takes an object: its subject and verb up to the
    object, "the Constitution creates" in "what does the Court say the Constitution creates?".
    "What does the Court say about the text and structure of the Constitution?" hides what it asks
    (read weak, seed 1235), and a bare name ("about Congress") says even less; None when the verb
    says little ("is", "has") or a second clause follows."""
    if subj.left_edge.i != 0 or root.lemma_ in ("be", "have"):
        return None
    obj = next((c for c in root.children if c.dep_ == "dobj"), None)
    if obj is None or any(c.dep_ in ("conj", "ccomp", "advcl") for c in root.children):
        return None  # "..., and the Senate may not ...": two statements
    return _lower_first(doc[: obj.left_edge.i].text.strip(" ,"))


def author_claim(s: Sent, voice: Voice) -> Cand | None:
    """An attributed claim from a general present-tense sentence of ``voice``'s work, or None."""
    text = re.sub(r"^(But|And|Yet|So|Or|Nor|For)\s+", "", s.text.strip())
    words = text.split()
    if not (8 <= len(words) <= 35) or not text.endswith(".") or re.search(r"[;:|\"“”]", text):
        return None
    if _FIRST_PERSON.search(text) or _PRONOUNS.search(text):
        return None  # the author's own story, or a referent outside the sentence
    doc = parse(text)
    root = next((t for t in doc if t.dep_ == "ROOT"), None)
    if root is None or not _present(root, voice) or any(c.dep_ == "mark" for c in root.children):
        return None
    if voice.kind == "court" and root.lemma_ in _REPORTING:
        return None  # "courts sustaining state laws have held that ...": what others said, reported
    subjects = [c for c in root.children if c.dep_ == "nsubj"]
    if len(subjects) != 1:
        return None  # a misparse ("The stringent test RFRA demands ... reflects"): the topic would be cut short
    subj = subjects[0]
    topic = _topic(subj)
    named = len(doc[subj.left_edge.i : subj.right_edge.i + 1]) <= 3 and subj.pos_ == "PROPN" and _names_itself(subj)
    asked = _asked_of_name(doc, root, subj) if voice.kind == "court" and (topic or named) else None
    topic = topic or (asked and doc[: subj.right_edge.i + 1].text)
    if topic is None or subj.i != subj.left_edge.i and doc[0].i != subj.left_edge.i:
        return None  # the sentence must open with its subject ("Man is ...", not "Such is man")
    if voice.kind == "court":
        if _PARTY_ARGUMENT.search(text) or _CONTEXT_LINKS.search(text) or re.search(r"\d", text):
            return None  # a party's argument, a step of the argument, or the case's own figures
        if not _LEGAL_TERMS.search(text):
            return None  # the case's facts or procedure, not a statement of law
        head = subj.lemma_.lower()
        of_constitution = any(t.text == "Constitution" for t in subj.subtree)  # "the text and structure of the Constitution"
        vague = head in _COURT_VAGUE_SUBJECTS or head in ("text", "language") and not of_constitution
        if vague or any(t.lower_ in _TRUISM_HEDGES for t in doc):
            # "the text of a statute can sometimes have more than one possible meaning", "numerous cases
            # ... have reached the Courts of Appeals", "Pennsylvania law gives ...": read weak in every
            # blind reading of the law book (seeds 1221, 1223, 1224): a truism, background or a fact
            return None
        if referents.named_before_problem(text, topic):
            return None  # "... labored with the doctrine": which doctrine, the sample never says
        if any(c.dep_ in ("attr", "dobj") and c.lemma_.lower() in _VAGUE_HEADS for c in root.children):
            return None  # "... provides an even more revealing example"
        question = f"In {voice.name}, what does {voice.speaker} say {asked or 'about ' + _lower_first(topic)}?"
        answer = f"In {voice.name}, {voice.speaker} says that {_lower_first(text)}"
    else:
        if _AUTHOR_LINKS.search(text):
            return None  # an example of, or a step from, what came before
        if not _about_people(subj):
            return None  # "a field of water betrays the spirit ...": an image, not a claim about how people live
        question = f"In {voice.work}, what does {voice.name} say about {_lower_first(topic)}?"
        answer = f"In {voice.work}, {voice.name} writes that {_lower_first(text)}"
    fields = {"question": question, "answer": answer, "question_type": "explanation", "knowledge_point": topic[:120]}
    return Cand("concept_qa", fields, [s.raw.strip()], "claim", 0.8, s.raw)


#: how a sentence opens that limits the one before it
_QUALIFIED_BY = re.compile(r"(?:But|However|Nevertheless|Nonetheless|Yet|Still|Even so)\b")


def attributed_candidates(sents: list[Sent], voice: Voice, cases: frozenset[str] = frozenset()) -> list[Cand]:
    """Every attributed candidate of a chunk's sentences, in order (see the module docstring);
    ``cases``: the full case names the chunk's document cites (:func:`case_names`)."""
    out = []
    for i, s in enumerate(sents):
        if voice.kind == "court" and s.quote >= 0:
            continue  # a block quote in an opinion: a lower court's findings, a statute, a brief; not the Court's words
        after = sents[i + 1].text.lstrip() if i + 1 < len(sents) else ""
        if voice.kind == "court" and _QUALIFIED_BY.match(after):
            # "The interest in preserving confidentiality is weighty indeed ... However, ...": a point the
            # Court grants and then limits; alone it states the opposite of the holding (read weak, Nixon)
            continue
        court = voice.kind == "court"
        cand = (holding(s, voice.name, voice.speaker) or precedent(s, voice.name, cases, voice.speaker)) if court else None
        cand = cand or author_claim(s, voice)
        if cand is not None:
            out.append(cand)
    return out


def reported_holdings(sents: list[Sent], cases: frozenset[str]) -> list[Cand]:
    """What an editor's note says the Court held in a case it names (:func:`precedent` with no
    case of its own), in order: the one statement of a casebook's notes that is the Court's, not
    the editor's."""
    return [c for s in sents if s.quote < 0 for c in [precedent(s, None, cases)] if c is not None]
