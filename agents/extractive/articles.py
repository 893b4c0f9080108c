"""How a glossary entry reads as a sentence: the article its term takes, and its definition's form.

"What is an inflation?", "A pulmonary fibrosis is ...", "Dyslipidemia is the abnormal lipid levels ..."
and "...; used to determine a company's liquidity" were blind-read weak (seeds 1221, 1222): the
term's article is taken from how its own chapter writes it (:func:`term_articles`, computed once
per document by the run, :func:`~prepbench.agents.extractive.generator.document_context`), a
definition opening with a plural is "referred to" (:func:`plural_head`), and a usage note after a
semicolon becomes its own sentence (:func:`usage_note`), and a body's name written in lower case
with its acronym is capitalised (:func:`named_body`: "What is a financial industry regulatory
authority (FINRA)?", seed 1231). :func:`gloss_answer` makes the answer's sentence from the term and its
definition, and :func:`box_entry` reads an entry of a box of definitions ("> * **Power:** The rate ...").
"""

from __future__ import annotations

import re

from prepbench.agents.extractive.grammar import _COMMON_VERBS_BASE
from prepbench.agents.extractive.text import clean_inline
from prepbench.tools.nlp import parse

#: a glossary entry: "**term**: definition" (the colon inside or outside the bold), also as an item of a
#: quoted list ("> * **Power:** The rate ...": a box of definitions)
GLOSSARY_ENTRY = re.compile(r"(?m)^(?:>[ \t]*)*(?:[-*+][ \t]+)?\*\*(?P<term>[^*\n]{2,80}?)\s*(?::\s*\*\*|\*\*\s*:)\s*\S")


def article_key(term: str) -> str:
    """The glossary term as :func:`term_articles` keys it: lower case, a parenthesis ("(CPI)") dropped."""
    return re.sub(r"\s+", " ", re.sub(r"\s*\([^)]*\)", "", clean_inline(term))).strip().lower()


def term_articles(text: str) -> dict[str, str]:
    """How a document writes each of its glossary terms, from its own text (blind-read weak: "What is
    an inflation?"). Returns ``article_key(term) -> article``:

    - ``"a"``: it writes "a/an TERM" ending a noun phrase, or the plural ("receptors");
    - ``"the"``: a name of one thing (:data:`_UNIQUE_HEADS`) written "the TERM" at least twice and more
      often than bare ("the renin-angiotensin-aldosterone system");
    - ``""``: bare, a mass noun or a name ("inflation", "anaphylaxis", "homeostasis").

    Left out (the glossary guesses from the term): a compound whose head noun is counted ("a
    corporation": "a close corporation", but "prothrombin time"), and a term seen with "the" no more
    often than bare without being a name of one thing.
    """
    terms = {article_key(m.group("term")) for m in GLOSSARY_ENTRY.finditer(text)}
    terms.discard("")
    if not terms:
        return {}
    lower = " " + re.sub(r"\s+", " ", clean_inline(text)).lower() + " "
    out: dict[str, str] = {}

    def counted(phrase: str) -> bool:
        e = re.escape(phrase)
        plural = re.escape(phrase[:-1]) + "ies" if phrase.endswith("y") and phrase[-2:-1] not in "aeiou" else e + "(?:s|es)"
        # the term must end its noun phrase there: "the inflation rate" says nothing of "inflation"
        return bool(re.search(rf"\b(?:a|an|one|each|every|another)\s+{e}{_PHRASE_ENDS}|\b{plural}\b", lower))

    for t in sorted(terms):
        e = re.escape(t)
        if counted(t):
            out[t] = "a"
        elif " " in t and counted(t.split()[-1]):
            continue  # "close corporation" never counted, but "a corporation" is: left to the guess
        elif the := len(re.findall(rf"\bthe\s+{e}{_PHRASE_ENDS}", lower)):  # not "the X of Y": mass nouns take that too
            # "the immune system": a unique thing, written with "the" more often than bare ("with
            # myasthenia gravis", "net debt is"); one word after "the" ("the metabolism", "the
            # ligand") says too little to choose between a mass and a count noun: left to the guess
            bare = len(re.findall(rf"\b{e}{_PHRASE_ENDS}", lower)) - the
            if " " in t and the >= 2 and the > bare and t.split()[-1] in _UNIQUE_HEADS:
                out[t] = "the"
            elif bare > the:
                out[t] = ""
        else:
            out[t] = ""
    return out


#: heads of names of one thing in its field ("the renin-angiotensin-aldosterone system", "the accounting
#: equation"); "the useful life" is the life of something the question must name (seed 1223, weak)
_UNIQUE_HEADS = frozenset(
    "system equation method model index cascade act clause law principle theorem rule effect sheet statement pump".split()
)

#: what may follow a noun phrase that ends with the term (punctuation, a verb, a conjunction)
_PHRASE_ENDS = (
    r"(?=\s*(?:[.,;:()!?]|$)|\s+(?:is|are|was|were|has|have|had|can|could|may|might|will|would|must|should|does|"
    r"do|did|and|or|but|that|which|who|to|in|on|for|with|from|by|at|as|when|if|because)\b)"
)


def usage_note(definition: str, plural: bool = False) -> tuple[str, str | None]:
    """A glossary definition and the note after its ';', apart: a fragment after a semicolon read
    as a broken answer ("...; allows a business to buy goods ... on account", "...; often used by
    investors ...", AB001 and AB002, read weak). The note comes back as a predicate its own
    sentence takes after "It"/"They": "is used to determine a company's liquidity", "allows a
    business to ...". None: no such note (a note whose verb does not agree with ``plural`` too)."""
    m = re.search(
        r";\s+((?:(?:often|commonly|typically|usually|also|generally|mainly|primarily|widely)\s+)?used (?:to|for|in|as|by|when)\b.*)$",
        definition,
    )
    if m:
        return definition[: m.start()].rstrip(), ("are " if plural else "is ") + m.group(1)
    m = re.search(r";\s+([a-z][^;]{10,})$", definition)
    if m and not plural:
        verb = parse("It " + m.group(1))[1]
        if verb.tag_ == "VBZ" and verb.dep_ == "ROOT":  # "allows a business to ...": a second predicate of the term
            return definition[: m.start()].rstrip(), m.group(1)
    return definition, None


def plural_head(definition: str) -> bool:
    """The definition opens with a plural noun phrase ("abnormal lipid levels", "current assets divided by ...")."""
    doc = parse(definition)
    chunk = next(iter(doc.noun_chunks), None)
    return chunk is not None and chunk.start == 0 and chunk.root.tag_ in ("NNS", "NNPS")


#: heads of a named body's name: "financial industry regulatory authority (FINRA)" is one body
_BODY_HEADS = frozenset(
    "authority commission board agency administration bureau association corporation organization exchange institute council".split()
)
_SMALL_WORDS = frozenset("of and for the in on to".split())


def named_body(term: str, articles: dict[str, str]) -> str | None:
    """The capitalised name of a body a glossary writes in lower case with its acronym
    ("financial industry regulatory authority (FINRA)" -> "Financial Industry Regulatory Authority
    (FINRA)"), when the acronym is the words' initials and the head names a body; else None (seed
    1231). ``articles`` (:func:`term_articles`): a term the book writes with "a" ("a limited
    liability corporation (LLC)") is a kind, no body."""
    if articles.get(article_key(term)) == "a":
        return None
    m = re.fullmatch(r"(?P<words>[a-z][a-z -]+?) \((?P<acr>[A-Z]{2,8})\)", term)
    if not m or m.group("words").split()[-1] not in _BODY_HEADS:
        return None
    words = m.group("words").split()
    acr = iter(m.group("acr"))  # each word's initial in order ("FINRA": F-I(N)-R-A)
    if m.group("acr")[0] != words[0][0].upper() or not all(w[0].upper() in acr for w in words if w not in _SMALL_WORDS):
        return None
    return " ".join(w if w in _SMALL_WORDS else w.capitalize() for w in words) + f" ({m.group('acr')})"


#: the unit note of a definitions box: "SI units: [J]. Common variable(s): $K$."
_UNIT_NOTE = re.compile(r"\s*(?:SI units?|Common variables?(?:\(s\))?)\s*:.*$", re.S)
#: a box of definitions: "> **Important Definitions**", "> **Key Terms**"
DEFINITIONS_BOX = re.compile(r"(?i)^\*\*(?:important |key )?(?:definitions|terms)\*\*$")


def box_entry(term: str, definition: str) -> tuple[str, bool] | None:
    """``(definition, quantity)`` of an entry of a box of definitions, read as a glossary's ("a form
    of energy that ..."): without its unit note, its capital lowered; ``quantity`` when the note
    gives an SI unit (the term names a quantity, asked without an article). None when the entry
    restates its term as a sentence ("The electric field is defined to be ...")."""
    quantity = re.search(r"\bSI units?\s*:", definition) is not None
    definition = _UNIT_NOTE.sub("", definition).strip()
    if not definition or re.match(rf"(?i)(?:the |an? )?{re.escape(term)}\b", definition):
        return None
    first = definition.split()[0]
    if first == "A" or first[:1].isupper() and first[1:].islower():
        definition = first.lower() + definition[len(first) :]
    return definition, quantity


def _one_of_kind(definition: str) -> bool:
    """The definition opens with a bare singular noun of a kind ("class of compounds", "portion of
    the net worth", "probable future sacrifice of economic benefits"): it needs an article."""
    doc = parse(definition)
    head = next((t for t in doc if t.pos_ not in ("ADJ", "ADV", "PUNCT", "CCONJ")), None)
    return head is not None and head.tag_ == "NN" and head.i + 1 < len(doc) and doc[head.i + 1].lower_ == "of"


def gloss_answer(subj: str, verb: str, definition: str, plural: bool) -> str:
    """The sentence a glossary entry's definition makes after its subject ("Beta blockers" + "block
    ..."; "Inflation" + "is" + "a general rise ..."), before its full stop."""
    d0 = definition.split()[0].lower()
    # "mast cell stabilizers: prevent ...": the entry's own verb ("are prevent" read weak, seed 1240)
    if plural and (
        d0 in _COMMON_VERBS_BASE or re.search(r"(ate|ize|ise|ify)$", d0) or parse(definition)[0].tag_ in ("VB", "VBP")
    ):
        return f"{subj} {definition}"
    elif re.match(r"[a-z]+ed (?:by|from|as|with|in)\b", definition):
        # "peripheral vascular resistance: determined by blood flow ...": "is the determined by" (seed 1244)
        return f"{subj} {verb} {definition}"
    elif plural and _one_of_kind(definition):
        # "xanthines: class of compounds ...": "Xanthines are class of ..." read as broken grammar (seed 1243)
        return f"{subj} {verb} {'an' if d0[0] in 'aeiou' else 'a'} {definition}"
    elif d0 in ("a", "an", "the", "one", "any", "all", "each") or plural and not d0.endswith("ing"):
        return f"{subj} {verb} {definition}"
    elif d0.endswith("ing") or d0 in ("to", "when", "where", "how", "what", "whether", "why"):
        return f"{subj} refers to {definition}" if not plural else f"{subj} refer to {definition}"
    elif d0.endswith("s") and not d0.endswith("ss") and parse(definition)[0].tag_ == "VBZ":
        return f"{subj} {definition}"  # "describes an insufficient ...": the entry's own verb
    elif d0.endswith("s") and not d0.endswith("ss"):
        return f"{subj} {verb} {definition}"
    elif plural_head(definition):
        # "dyslipidemia: abnormal lipid levels ...": "is the abnormal lipid levels" read as broken grammar
        return f"{subj} refers to {definition}" if not plural else f"{subj} refer to {definition}"
    return f"{subj} {verb} the {definition}"


#: a glossary entry's second predicate after ";" ("...; include alpha and beta receptors")
_SECOND_PREDICATE = re.compile(r"; (is|are|includes?|serves?|has|have|can|may|acts?|causes?)\b")


def second_predicate(definition: str, plural: bool) -> str:
    """A glossary entry's second predicate after ';' ("... norepinephrine; include alpha and beta
    receptors") joined with "and" when its verb agrees with the term, cut off when it does not
    ("vitamins that dissolve in fat; includes ..." would read "fat and includes")."""
    m = _SECOND_PREDICATE.search(definition)
    if not m:
        return definition
    v = m.group(1)
    agrees = v in ("can", "may") or (v in ("is", "has") or v.endswith("s")) != plural
    return definition[: m.start()] + " and " + definition[m.end(1) - len(v) :] if agrees else definition[: m.start()]


def own_sentence(definition: str) -> bool:
    """The definition is a sentence with a subject of its own ("complementary and alternative
    medicine (CAM): alternative medicine refers to using ...", which "CAM is the ..." spliced into
    garbage, AC025): one plain noun phrase, then its finite verb. The parser reads many a noun
    phrase with a clause ("the price at which quantity demanded equals ...", "the date an option
    contract expires") as a sentence too; those have a verb or a wh-word in the subject, or two subjects."""
    doc = parse(definition.split(". ")[0])
    root = next((t for t in doc if t.dep_ == "ROOT"), None)
    # a participle ("the approach used to ...", "drug therapy focused on ...") parses as a past
    # tense, and a list's last noun as a verb ("a feeling of ..., and/or worry about ..."): only the
    # third person present, after a subject with no article, is taken for a sentence
    if root is None or root.tag_ not in ("VBZ", "MD") or doc[0].dep_ == "det":
        return False
    subjects = [c for c in root.children if c.dep_ == "nsubj"]
    if len(subjects) != 1:
        return False
    words = list(subjects[0].subtree)
    plain = not any(t.pos_ in ("VERB", "AUX") or t.tag_ in ("WDT", "WP", "WRB") for t in words)
    return plain and words[0].i == 0 and words[-1].i == root.i - 1
