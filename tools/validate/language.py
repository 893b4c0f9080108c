"""What a parse says about a question or an answer: the evidence behind the language rules.

Each ``*_problem`` function takes text (and, where it needs one, the other side of the sample)
and returns ``None`` when it finds nothing, else a short reason that names what it found
(``"bare plural 'side effects' with no owner"``). They use spaCy's parse
(:func:`prepbench.tools.nlp.parse`): part-of-speech tags, dependencies, noun chunks and
entities, not patterns over strings, wherever a parse is what the check needs; a few surface
checks (brackets, lost symbols) are plain character tests because no parse sees them.

The rule kinds of :mod:`.rules_language` combine them; whether an answer addresses its question is
:mod:`.answering`, which reads the lexicons here.
"""

from __future__ import annotations

import re

from prepbench.tools.nlp import entities, parse

#: nouns that name a part, property or consequence of something else: a bare plural of one of
#: these ("side effects", "responsibilities") leaves the reader asking "of what?".
RELATIONAL_NOUNS = frozenset(
    """effect side-effect responsibility manifestation report example step component feature type factor
    symptom sign risk use goal function role duty right property characteristic cause consequence result
    benefit advantage disadvantage limitation requirement option alternative theory argument reason part
    element member category kind form stage phase method approach strategy source purpose principle rule
    criterion outcome implication interaction contraindication indication precaution instruction concept
    problem issue question answer value term parameter variable condition assumption difference similarity
    change finding recommendation guideline concern priority objective measure term return reaction response
    practice policy procedure""".split()
)
#: relational nouns a modifier makes a concept of its own ("monetary policies", "clinical practices"):
#: only bare ("What do practices and policies include?", AC006) do they ask "of what?"
_BARE_ONLY = frozenset("practice policy procedure".split())
#: nouns whose definite singular names a role, an institution or a unique thing known to every
#: reader of the field ("the nurse", "the law", "the economy"), not a referent of the source
GENERIC_DEFINITES = frozenset(
    """wheel internet moon weather business customer employer employee owner manager user individual person organization nurse client patient physician prescriber provider pharmacist law court constitution government state
    economy market public body heart brain liver kidney skin blood environment world universe earth sun equator
    president congress legislature judiciary firm company investor borrower lender buyer seller consumer
    reader speaker author""".split()
)
_OWNED_ACTIONS = frozenset(
    "treatment management assessment therapy diagnosis dosage dose administration evaluation monitoring prognosis".split()
)
_OWNER_PREPS = frozenset("of for to in on with from against among between".split())
#: nouns that, capitalised after "the", shorten a name given in full earlier ("the Act", "the State")
TITLE_NOUNS = frozenset(
    """act state court government company corporation bank board commission agency department plan program
    amendment clause treaty committee council party union statute code rule regulation fund trust authority
    office bureau administration service institute association district city county republic""".split()
)
#: adverbs and phrases that point into the surrounding text
_POINTING_ADVERBS = frozenset("here above below hereafter herein thereafter aforementioned".split())
_DEMONSTRATIVES = frozenset("this these those".split())
#: adverbs that make a question a step of the source's argument ("Why are the last two terms thus zero?")
_CONCLUDING = frozenset("thus hence therefore consequently".split())
#: modifiers that relate a noun to what the source said before it
_ANAPHORIC_MODIFIERS = frozenset("additional further remaining miscellaneous aforementioned latter former".split())
_THIRD_PERSON = frozenset("it its they them their theirs he him his she her hers itself themselves".split())
_FIRST_SINGULAR = frozenset("i me my mine myself".split())
#: verbs that need an object; one that ends a sentence without it was cut ("... they will have.")
_NEEDS_OBJECT = frozenset(
    "have give get equal yield include become make take find show obtain reach satisfy contain want do need consider".split()
)
_DANGLING_LAST = frozenset("that which whose than since as the a an of to and or but because whereas while".split())
_PARTICLES = frozenset("down up out off over away back around".split())
_STRANDABLE = frozenset("of for to with from on in about at into by like as".split())
_CONDITION_MARKERS = frozenset("if unless whenever provided".split())
_NEGATIONS = frozenset("not n't no never neither nor none cannot without".split())
_GREEK = "αβγδεζηθικλμνξοπρστυφχψωΓΔΘΛΞΠΣΥΦΨΩ"
MATH_TOKEN = re.compile(rf"^(?:[A-Za-z{_GREEK}](?:[_^]\S*|\(\S*\))?|[A-Za-z]{{1,2}}\([^)\s]*\)?|[A-Za-z]_\w+)$")
_QUOTE_PAIRS = (("(", ")"), ("[", "]"), ("{", "}"), ("“", "”"))


def word_tokens(tokens) -> list:
    return [t for t in tokens if not t.is_punct and not t.is_space]


# -- self-contained -----------------------------------------------------------------------------
def pointing_problem(text: str, demonstratives: bool = True) -> str | None:
    """Deixis: a demonstrative, a pointing adverb, "the following", "in parentheses", "do so".

    ``demonstratives`` False: a scenario's "This" may point back at its own earlier sentence."""
    doc = parse(text)
    low = text.lower()
    for phrase in ("the following", "as follows", "in parentheses", "in parenthesis", "the former", "the latter"):
        at = low.find(phrase)
        if at >= 0 and not _material_follows(text, at + len(phrase)):
            nxt = [t for t in doc if t.idx >= at + len(phrase)][:1]
            if phrase in ("the former", "the latter") and nxt and nxt[0].pos_ in ("NOUN", "PROPN", "ADJ"):
                continue  # "the former Chairman": an adjective, not a pointer
            return f"points into the source ('{phrase}')"
    quoted = [m.span() for m in re.finditer(r"\"[^\"]*\"|“[^”]*”", text)]
    for t in doc:
        w = t.lower_
        if any(a <= t.idx < b for a, b in quoted):
            continue  # a quoted sentence is material, not a pointer
        if (w in _DEMONSTRATIVES or (w == "that" and t.dep_ == "det")) and _material_follows(text, t.idx + len(t.text)):
            continue  # "Rewrite this sentence: ...": the sample holds what it points at
        if (w in _DEMONSTRATIVES or (w == "that" and t.dep_ == "det")) and demonstratives:
            named_before = t.dep_ == "det" and t.head.lemma_ in {x.lemma_ for x in doc[: t.i]}
            if t.dep_ in ("det", "nsubj", "nsubjpass", "dobj", "pobj", "attr") and not named_before:
                return f"demonstrative '{t.text}' with no referent in the sample"
        if w in _POINTING_ADVERBS and t.pos_ in ("ADV", "ADJ"):
            return f"points into the source ('{t.text}')"
        if demonstratives and w in ("also", "either") and t.dep_ in ("advmod", "preconj") and text.rstrip().endswith("?"):
            named = t.i + 1 < len(doc) and doc[t.i + 1].lower_ in ("called", "known", "termed", "referred")
            if (w == "also" and not named) or (w == "either" and t.i + 2 >= len(doc)):  # "... also be affected?"
                return f"'{t.text}' points back to what the source said before"
        if w in _CONCLUDING and t.dep_ == "advmod" and text.rstrip().endswith("?"):  # "What does ∮ dA thus mean?"
            return f"'{t.text}' concludes from what the source said before"
        if w == "there" and t.dep_ != "expl" and t.pos_ == "ADV":
            return "points into the source ('there')"
        if w == "so" and t.head.lemma_ == "do" and t.dep_ in ("advmod", "dobj"):
            return "'do so' refers to an action outside the sample"
    return None


def _material_follows(text: str, at: int) -> bool:
    """After position ``at``, the text itself holds what a pointer names (after ':' or a quote)."""
    rest = text[at:]
    return bool(re.search(r"[:\"“\n?]\s*\S", rest))


_OPINION_VERBS = frozenset("hold believe think agree disagree dissent conclude decline reject".split())


def voice_problem(answer: str) -> str | None:
    """The answer speaks in the source's voice: "I", or "we" with a verb of holding ("we held")."""
    formulas = [m.span() for m in re.finditer(r"\$\$?[^$]+\$\$?", answer)]  # "$I$": an ideal, not the author
    for t in parse(answer):
        if any(a <= t.idx < b for a, b in formulas):
            continue
        if t.pos_ == "PRON" and t.lower_ in _FIRST_SINGULAR:
            return f"first-person '{t.text}' (the source's voice)"
        if t.lower_ == "we" and t.dep_ == "nsubj" and t.head.lemma_ in _OPINION_VERBS:
            return f"'we {t.head.text}' (the source's voice)"
    return None


def pronoun_problem(text: str, sourced: bool = True) -> str | None:
    """A personal pronoun (third person, or the author's "I") with no noun before it in the text, or
    "your X" (the reader's own situation in the source)."""
    doc = parse(text)
    seen_noun = False
    for t in doc:
        if sourced and t.lower_ == "your" and t.dep_ == "poss":
            return f"'your {t.head.text}' is the reader's own situation in the source"
        if t.pos_ in ("NOUN", "PROPN") or (t.pos_ == "PRON" and t.tag_ == "WP" and False):
            seen_noun = True
        w = t.lower_
        extraposed = w == "it" and any(c.dep_ in ("xcomp", "ccomp", "csubj") for c in t.head.children)  # "it helps to"
        if w in _THIRD_PERSON and t.pos_ == "PRON" and not seen_noun and not extraposed:
            return f"pronoun '{t.text}' with no antecedent in the sample"
    return None


#: adjectives that point at a reference point in the source ("the contrary view", "the third category")
ANAPHORIC_ADJECTIVES = frozenset(
    """other same contrary joint only remaining respective particular given such latter former previous
    above following next last first second third fourth fifth final aforementioned said""".split()
)


def _has_modifier(head) -> bool:
    """``head`` has a modifier that says which one it is (an anaphoric adjective does not count)."""
    mods = {"amod", "compound", "nummod", "poss", "prep", "acl", "relcl", "appos", "nmod", "npadvmod", "quantmod"}
    return any(c.dep_ in mods and c.lower_ not in ANAPHORIC_ADJECTIVES for c in head.children)


def _short_form_name(doc) -> str | None:
    """A short form of a name ("the Act", "the State", "the Court's ..."): one capitalised word after "the", mid-sentence, the
    short form of a name the source gave in full earlier."""
    if re.search(r"\bv\.\s", doc.text):
        return None  # a case named in full ("In Marbury v. Madison, ... the Court ...") resolves the short forms
    for t in doc[2:]:
        prev = doc[t.i - 1]
        head_noun = t.pos_ in ("NOUN", "PROPN") and t.dep_ not in ("amod", "compound")
        if prev.lower_ == "the" and head_noun and t.text[:1].isupper() and t.is_alpha and not t.text.isupper():
            nxt = doc[t.i + 1] if t.i + 1 < len(doc) else None
            if nxt is not None and nxt.text[:1].isupper() and nxt.is_alpha:
                continue  # "the Federal Reserve": a full name
            if t.lower_ in TITLE_NOUNS and not any(e.start <= t.i < e.end for e in entities(doc) if len(e) >= 2):
                return f"'the {t.text}' is a short form of a name the sample never gives"
    return None


#: adjectives of a drug's effect or dose: without "of <drug>" the drug is the source's
_DRUG_EFFECT_ADJECTIVES = frozenset("therapeutic adverse desired intended expected usual maximum initial recommended".split())


def referent_problem(text: str, context: str = "", sourced: bool = True) -> str | None:
    """A noun phrase whose referent lives only in the source: a bare definite singular ("the
    observer", "the drug") or an ownerless plural of a relational noun ("side effects"). A noun
    that ``context`` (e.g. the sample's case) or the text before it already names is resolved."""
    doc = parse(text)
    before = lemmas(context) if context else set()
    short = _short_form_name(doc) if sourced else None
    if short and not context:
        return short
    for nc in doc.noun_chunks:
        head = nc.root
        if head.pos_ != "NOUN" or head.like_num:
            continue
        back = next((c for c in head.children if c.dep_ == "amod" and c.lower_ in _ANAPHORIC_MODIFIERS), None)
        if sourced and back is not None and head.lemma_.lower() not in before:
            # "additional diagnostic tests", "the miscellaneous antidepressants": added to, or
            # grouped with, what the source listed before
            return f"'{nc.text}' points back into the source ({back.text} to what?)"
        earlier = before | {t.lemma_.lower() for t in doc[: nc.start]}
        dets = [c for c in head.children if c.dep_ == "det"]
        named_next = head.i + 1 < len(doc) and doc[head.i + 1].pos_ == "PROPN"  # "the series A Song of Ice and Fire"
        bare = len(dets) == 1 and dets[0].lower_ == "the" and head.tag_ == "NN" and not _has_modifier(head)
        if sourced and bare and not named_next:
            if head.dep_ in ("poss", "appos") or head.lemma_.lower() in earlier or head.lemma_.lower() in GENERIC_DEFINITES:
                continue
            return f"'{nc.text}' refers to something the sample never introduces"
        lemma = head.lemma_.lower()
        drug_word = next((c.lower_ for c in head.children if c.dep_ == "amod" and c.lower_ in _DRUG_EFFECT_ADJECTIVES), None)
        definite = any(d.lower_ == "the" for d in dets)  # "an adverse effect" is the general term
        if sourced and drug_word and definite and lemma in ("effect", "action", "dose", "dosage") and lemma not in earlier:
            if not any(c.dep_ == "poss" or (c.dep_ == "prep" and c.lower_ == "of") for c in head.children):
                # "What is the therapeutic effect in dyslipidemia?": of niacin, which only the source names (seed 1229)
                return f"'{nc.text}' has no owner (of which drug?)"
        action = head.tag_ == "NN" and not dets and lemma in _OWNED_ACTIONS  # "What does treatment include?"
        modified = lemma in _BARE_ONLY and any(c.dep_ in ("amod", "compound", "nmod") for c in head.children)
        if (head.tag_ == "NNS" and lemma in RELATIONAL_NOUNS or action) and lemma not in earlier and not modified:
            owned = any(
                c.dep_ in ("poss", "relcl", "acl") or c.tag_ == "VBG" or (c.dep_ == "compound" and c.pos_ == "PROPN")
                for c in head.children
            ) or any(c.dep_ == "prep" and c.lower_ in _OWNER_PREPS for c in head.children)
            owned = owned or (head.i > 0 and doc[head.i - 1].tag_ == "VBG")  # "clotting factors", parsed as a verb
            if not owned:
                return f"'{nc.text}' has no owner (of what?)"
    return None


def acronym_problem(question: str, answer: str = "") -> str | None:
    """A definite acronym that neither question nor answer spells out ("the EHR", "the HCP")."""
    doc = parse(question)
    both = f"{question} {answer}"
    for t in doc[1:]:
        s = t.text
        if 2 <= len(s) <= 6 and s.isupper() and s.isalpha() and doc[t.i - 1].lower_ == "the":
            entities(doc)  # the entity types, for this document only
            if t.ent_type_ in ("GPE", "LOC", "NORP"):  # "the US", "the UK"
                continue
            if f"({s})" in both or _spelled_out(s, both):
                continue
            return f"'the {s}' is never spelled out"
    return None


def source_acronym_problem(question: str, answer: str, chunk_text: str) -> str | None:
    """An acronym the source introduces ("investor relations (IR)") used bare in the question and
    spelled out by neither side ("What does IR involve?", seed 1226, defective): the reader of the
    sample never saw it introduced."""
    both = f"{question} {answer}"
    for s in dict.fromkeys(re.findall(r"\b[A-Z]{2,6}\b", question)):
        if f"({s})" in chunk_text and f"({s})" not in both and not _spelled_out(s, both):
            return f"'{s}' is introduced by the source and never spelled out"
    return None


def _spelled_out(acronym: str, text: str) -> bool:
    initials = "".join(w[0] for w in re.findall(r"[A-Za-z][A-Za-z-]*", text) if w[0].isalpha()).upper()
    return acronym in initials


_PEOPLE = frozenset("client patient man woman person child boy girl student nurse resident customer employee".split())


def person_question_problem(question: str, answer: str = "") -> str | None:
    """A "What is X?" whose answer says X is a person, a case-study character ("What is Maria
    Vega?" -> "Maria Vega is a 63-year-old client who ...")."""
    if question_kind(question) != "definition" or not answer:
        return None
    root = next((t for t in parse(answer) if t.dep_ == "ROOT"), None)
    attr = next((c for c in root.children if c.dep_ == "attr"), None) if root is not None and root.lemma_ == "be" else None
    if attr is not None and attr.lemma_.lower() in _PEOPLE:
        return f"asks what a person is ('{attr.text}' in the source's case)"
    return None


def source_example_problem(answer: str, question: str, chunk_text: str) -> str | None:
    """The answer speaks of the source's own example: "the rocket", which the chunk introduced
    earlier as "a rocket" and the question never names."""
    asked = lemmas(question)
    low = " " + " ".join(chunk_text.lower().split()) + " "
    doc = parse(answer)
    for nc in doc.noun_chunks:
        head = nc.root
        if any(t.lemma_.lower() == head.lemma_.lower() for t in doc[: nc.start]):
            continue  # the answer introduced it itself ("rejects that objection ... the contrary objection")
        dets = [c for c in head.children if c.dep_ == "det"]
        if head.pos_ != "NOUN" or head.tag_ != "NN" or len(dets) != 1 or dets[0].lower_ != "the" or _has_modifier(head):
            continue
        word = head.lower_
        if head.lemma_.lower() in asked or word in GENERIC_DEFINITES:
            continue
        if f" a {word} " in low or f" an {word} " in low:
            return f"'{nc.text}' is the source's own example, which the question never introduces"
    return None


def other_problem(text: str) -> str | None:
    """A bare "other X" with no "than" ("other birds"): other than what the source mentioned; or
    "the other" standing alone ("prefer one ratio over the other") in a question that names no two
    things (no coordination, no "between"): which two, only the source says (seed 1222, defective)."""
    doc = parse(text)
    for t in doc:
        if t.lower_ == "other" and t.dep_ != "amod" and t.i > 0 and doc[t.i - 1].lower_ == "the":
            if not any(w.dep_ == "conj" or w.lower_ == "between" for w in doc):
                return "'the other': the other of which two?"
        if t.lower_ == "other" and t.dep_ == "amod" and not any(w.lower_ == "than" for w in doc[t.i :]):
            before = {w.lemma_.lower() for w in doc[: t.i]}
            related = {t.head.lemma_.lower()} | {
                g.lemma_.lower() for c in t.head.children if c.dep_ == "prep" for g in c.children
            }
            quantified = t.i > 0 and doc[t.i - 1].lower_ in ("all", "any", "no", "every", "each", "the")
            if not quantified and not related & before:
                return f"'other {t.head.text}': other than what?"
    return None


def math_tokens(text: str) -> list[str]:
    """Tokens that read as mathematical variables or expressions (``G``, ``p(x)``, ``G_x``, ``α``)."""
    out = []
    for t in parse(text):
        s = t.text
        if s in ("a", "A", "I") and (t.dep_ == "det" or s == "I" or t.pos_ == "DET"):
            continue
        times = s in ("x", "X") and t.i > 0 and (t.nbor(-1).like_num or (t.i + 1 < len(t.doc) and t.nbor(1).like_num))
        if MATH_TOKEN.match(s) and not times and not (len(s) == 1 and s.isalpha() and t.pos_ == "DET"):
            out.append(s)
    return out


def _introduced(doc, i: int, premise: bool = True) -> bool:
    """Token ``i`` (a variable) is introduced: "a group G", "let G be", "G denote", and in a
    ``premise`` (the question) also "G is a group"; in an answer that is a claim about G."""
    t = doc[i]
    prev = doc[i - 1] if i > 0 else None
    if prev is not None and prev.pos_ in ("NOUN", "ADJ") and prev.lower_ not in ("element",):
        # "a group G" introduces G; "the constant α" points back to where the source did
        det = next((c for c in prev.children if c.dep_ == "det"), None) if prev.pos_ == "NOUN" else None
        named_kind = any(c.dep_ in ("amod", "compound") for c in prev.children)  # "the alternating group A_4"
        return det is None or det.lower_ != "the" or named_kind
    if t.dep_ in ("appos", "compound") and t.head.pos_ == "NOUN":
        return True
    if prev is not None and prev.lower_ == "let":
        return True
    if i + 1 < len(doc) and doc[i + 1].text == "=" and (i == 0 or doc[i - 1].is_sent_start or doc[i - 1].text in "\n,;:"):
        return True  # an assignment that opens a line or clause: "b = [4, 5, 6]"
    j = i + 1 if i + 1 < len(doc) and doc[i + 1].text == ")" and "(" in t.text else i  # "p(x" ")": one name
    nxt = doc[j + 1 : j + 3]
    if premise and len(nxt) >= 2 and nxt[0].lemma_ == "be" and nxt[1].pos_ == "DET":
        return True
    return any(n.lower_ in ("denote", "denotes", "be") for n in nxt[:1])


def _unmath(text: str) -> str:
    """LaTeX math delimiters and grouping dropped, so ``$G$`` is the token ``G``."""
    return " ".join(re.sub(r"\$+|\\[()\[\]]", " ", text).split())


def variable_problem(question: str, answer: str = "") -> str | None:
    """A variable the sample uses but never introduces ("if p is a prime that divides n", "G")."""
    question, answer = _unmath(question), _unmath(answer if len(answer) > 3 else "")
    names: set[str] = set()
    for text, premise in ((question, True), (answer, False)):
        doc = parse(text)
        for t in doc:
            if MATH_TOKEN.match(t.text) and _introduced(doc, t.i, premise):
                names.add(t.text.split("(")[0].split("_")[0])
    for text in (question, answer):
        for tok in math_tokens(text):
            base = re.split(r"[(_^]", tok)[0]
            if base and base not in names:
                return f"variable '{tok}' is never introduced"
    return None


def lemmas(text: str) -> set[str]:
    """Lowercased lemmas and word forms of ``text`` (both, so a tagging slip does not hide a match)."""
    doc = parse(text)
    return {t.lemma_.lower() for t in doc} | {t.lower_ for t in doc}


def question_kind(question: str) -> str:
    """``why``, ``definition`` ("What is X?"), ``effect``, ``condition`` ("What happens if/when ...?"),
    ``procedure`` ("How do you ...?") or ``other``."""
    doc = parse(question)
    low = question.strip().lower()
    if low.startswith("why"):
        return "why"
    if low.startswith(("how do you", "how can you", "how would you", "how should you")):
        return "procedure"
    if low.startswith("what effect") or low.startswith("what is the effect"):
        return "effect"
    if re.match(r"what happens (if|when)\b", low):
        return "condition"
    words = [t for t in word_tokens(doc) if t.lower_ not in ("itself", "themselves")]  # "What is the market itself?"
    if len(doc) > 2 and doc[0].lower_ == "what" and doc[1].lemma_ == "be" and words and words[-1].pos_ in ("NOUN", "PROPN", "X"):
        return "definition"
    return "other"


# -- complete -----------------------------------------------------------------------------------
def brackets_problem(text: str) -> str | None:
    """Unbalanced brackets or double quotes, or a single quote that closes a word ("a walk-in
    closet' with") when none opens; a plural's possessive ("students'") and a prime ("g'") are not quotes."""
    text = re.sub(r"(?m)^\s*\(?\w{1,3}\)", "", text)  # list markers "1)", "a)", "(iv)"
    for o, c in _QUOTE_PAIRS:
        if text.count(o) != text.count(c):
            return f"unbalanced '{o}{c}'"
    if text.count('"') % 2:
        return "unbalanced '\"'"
    closing = re.search(r"\b[A-Za-z]{2,}[A-Za-rt-z]'(?=[\s.,;:!?]|$)", text)
    if closing and not re.search(r"(?:^|[\s(\[])['‘][A-Za-z]", text[: closing.start()]):
        return f"unbalanced \"'\" after '{closing.group(0)[:-1]}'"
    return None


def ending_problem(text: str, question: bool) -> str | None:
    """The last sentence stops on a word that needs more ("... the argument that?", "... will have.")."""
    doc = parse(text)
    words = word_tokens(doc)
    if not words:
        return "no words"
    last = words[-1]
    w = last.lower_
    wh_only = all(any(g.tag_ in ("WP", "WDT", "WRB") for g in c.subtree) for c in last.children)
    if question and w in _STRANDABLE and last.pos_ in ("ADP", "PART") and wh_only:
        return None  # a stranded preposition: "What does it refer to?"
    if question and last.tag_ == "WRB":
        return None  # "..., and why?"
    if last.dep_ == "prt" or (last.lower_ in _PARTICLES and not list(last.children)):
        return None  # a particle: "... when the sun goes down?"
    if w in _DANGLING_LAST or last.pos_ in ("DET", "CCONJ", "SCONJ", "ADP"):
        return f"ends on '{last.text}'"
    # "... they will have.", "... begin to do?", "if the branches want?": a verb that needs its object
    helped = any(c.dep_ in ("aux", "mark") for c in last.children) or last.tag_ == "VB"
    has_object = any(
        c.dep_ in ("dobj", "attr", "acomp", "oprd") or (c.dep_ in ("ccomp", "xcomp") and c.i > last.i) for c in last.children
    )
    if last.pos_ == "VERB" and last.lemma_ in _NEEDS_OBJECT and helped and not has_object:
        if not (last.dep_ in ("relcl", "acl") and last.head.i < last.i):  # "the amount it will have"
            return f"ends on '{last.text}' with no object"
    low = text.rstrip(" .?!").lower()
    if re.search(r"(?i)\b(ex rel|v|et al|cf|e\.g|i\.e)\.{1,2}\s*$", text.rstrip()):
        # "... to have children, Skinner v. Oklahoma ex rel.": the splitter took a citation's
        # abbreviation for a sentence's end (seed 1230, defective)
        return f"ends on an abbreviation ('{text.rstrip()[-12:].strip()}'): the sentence was cut"
    for cut in ("of the form", "as follows", "given by", "defined by", "such that", "the following", "at least", "satisfying"):
        if low.endswith(cut):
            return f"ends on '{cut}' (what followed was lost)"
    if text.rstrip().endswith(":"):
        return "ends on ':' (a list or formula followed)"
    return None


def sentence_problem(text: str) -> str | None:
    """A sentence without a verb ("A. What is the flux ...") or a garbled clause (two subjects of
    one verb, a finite verb as an object, a "be" auxiliary on a bare verb)."""
    doc = parse(text)
    if len(doc) > 3 and doc[0].lower_ == "what" and doc[1].lemma_ == "do" and doc[2].tag_ == "VB":
        return f"garbled clause at 'What {doc[1].text} {doc[2].text}' (a verb where its subject should be)"
    for t in doc:
        nxt = doc[t.i + 1] if t.i + 1 < len(doc) else None
        if t.lemma_ == "be" and nxt is not None and nxt.tag_ == "NNS" and nxt.dep_ in ("amod", "compound"):
            return f"garbled clause at '{t.text} {nxt.text}'"  # "... of Atorvastatin is inhibits HMG-CoA reductase"
        if t.pos_ == "DET" and nxt is not None and nxt.pos_ == "VERB" and nxt.dep_ not in ("amod", "compound"):
            if nxt.tag_ in ("VBD", "VBZ", "VBP") or (nxt.tag_ == "VBN" and nxt.dep_ in ("attr", "nsubj", "dobj", "pobj")):
                return f"garbled clause at '{t.text} {nxt.text}'"
        if t.lower_ in ("the", "a", "an") and nxt is not None and nxt.pos_ == "ADJ" and nxt.dep_ in ("attr", "nsubj", "dobj"):
            after = doc[nxt.i + 1] if nxt.i + 1 < len(doc) else None
            # "is the responsible for", "is the determined by" (seed 1244): a noun is missing
            if after is not None and after.lower_ in ("for", "of", "to", "by"):
                return f"garbled clause at '{t.text} {nxt.text} {after.text}'"
        if t.lemma_ == "be" and nxt is not None and nxt.tag_ == "VBZ" and nxt.lemma_ not in ("be", "have"):
            return f"garbled clause at '{t.text} {t.head.text}'"  # "Underinvested is describes ..."
        if t.dep_ in ("aux", "auxpass") and t.lemma_ == "be" and t.head.tag_ in ("VB", "VBP"):
            # "is disagree", or "is the parties disagree": the bare verb has its own subject after "is"
            own_subject = t.head.tag_ == "VBP" and any(c.dep_ == "nsubj" and t.i < c.i < t.head.i for c in t.head.children)
            if t.head.i == t.i + 1 or own_subject:
                return f"garbled clause at '{t.text} {t.head.text}'"
    return None


def conditional_question_problem(question: str) -> str | None:
    """A "What happens if/when X?" whose X has no finite verb ("What happens if two functions of 1 variable?")."""
    m = re.match(r"(?i)\s*what happens (if|when)\b(.*)\?\s*$", question)
    if not m:
        return None
    clause = parse(m.group(2))
    first = next((t for t in clause if not t.is_space), None)
    if first is not None and first.tag_ == "VBG":
        return f"'{m.group(1)} {m.group(2).strip()[:40]}' names no subject (who is doing it?)"
    noun = next((t for t in clause if t.dep_ in ("attr", "nsubj") and t.pos_ in ("NOUN", "PROPN")), None)
    if any(t.dep_ == "expl" for t in clause[:2]) and noun is not None:
        # "What happens if there is only one subgroup?": an existence of a thing the question does
        # not specify ("a single Sylow 7-subgroup" it does)
        named = [c for c in noun.children if c.dep_ in ("amod", "compound", "prep", "relcl", "acl", "nmod")]
        if not [c for c in named if c.lower_ not in ("single", "only", "one", "more", "other", "such")]:
            return f"'{m.group(1)} {m.group(2).strip()[:40]}' names no subject"
    if any(t.tag_ in ("VBZ", "VBP", "VBD", "MD") for t in clause):
        return None
    return f"'{m.group(1)} {m.group(2).strip()[:40]}' is not a clause"


def copula_question_problem(question: str) -> str | None:
    """A "What is/are X?" whose X is not a noun phrase ("What is Within ...", "What is Certainly K?")."""
    doc = parse(question)
    if len(doc) > 2 and doc[0].lower_ == "what" and doc[1].lemma_ == "be":
        nxt = doc[2]
        participle = nxt.tag_ == "VBN"  # "What is meant by ...", "What is called ..."
        gerund = nxt.tag_ == "VBG" and len(doc) > 3 and doc[3].pos_ in ("NOUN", "PROPN")  # "What are clotting factors?"
        participle = participle or gerund
        subj = next((t for t in doc[2:] if t.dep_ in ("nsubj", "attr") and t.pos_ == "NOUN"), None)
        plural = subj is not None and (subj.tag_ == "NNS" or any(c.dep_ == "conj" for c in subj.children))
        if doc[1].lower_ == "are" and subj is not None and not plural and subj.lemma_ == subj.lower_:
            return f"'What are {subj.text}?': the verb does not agree with a singular noun"
        if (
            nxt.pos_ in ("ADP", "ADV", "VERB", "SCONJ", "AUX", "PART")
            and not participle
            and nxt.lower_ not in ("more", "most", "not")
        ):
            return f"'What {doc[1].text} {nxt.text} ...' does not ask about a thing"
    return None


# -- faithful -------------------------------------------------------------------------------------
#: the words a negation or a condition is made of: a text without one needs no parse to say it has none
_NEGATION_WORD = re.compile(rf"(?i)\b(?:{'|'.join(sorted(w for w in _NEGATIONS if w.isalpha()))})\b|n[’']t\b")
_CONDITION_WORD = re.compile(rf"(?i)\b(?:{'|'.join(sorted(_CONDITION_MARKERS))}|only when)\b")


def negated(text: str) -> bool:
    """The text has a negation word ("not only ... but" is not one). A text with none of the words
    is not parsed (the gate asks this of a source sentence for every answer: a parse each)."""
    if not _NEGATION_WORD.search(text):
        return False
    doc = parse(text)
    return any(
        (t.lower_ in _NEGATIONS or t.dep_ == "neg") and not (t.i + 1 < len(doc) and doc[t.i + 1].lower_ == "only") for t in doc
    )


def conditioned(text: str) -> bool:
    """The text states a condition ("if", "unless", "whenever", "only when", "provided")."""
    if not _CONDITION_WORD.search(text):
        return False
    low = text.lower()
    return any(t.lower_ in _CONDITION_MARKERS and t.dep_ == "mark" for t in parse(text)) or "only when" in low


def negation_scope_problem(question: str, answer: str) -> str | None:
    """A 'why' question over "X was not done because Y": the source may deny the reason, not the act."""
    if not question.lstrip().lower().startswith("why"):
        return None
    for t in parse(answer):
        if t.dep_ == "neg" and any(
            c.dep_ in ("advcl", "prep") and c.i > t.i and any(m.lower_ in ("because", "since") for m in c.subtree)
            for c in t.head.children
        ):
            return "'not ... because': the negation may deny the reason, not the fact"
    return None
