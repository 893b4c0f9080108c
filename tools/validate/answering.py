"""Does the answer address what the question asks? The evidence behind the ``answers_question``
rule (:mod:`.rules_language`): the question's kind (why, definition, condition, effect,
procedure) from its parse, its focus (the subject and object heads), and what the answer's parse
says of them. Each ``*_problem`` function returns None, or a short reason naming what it found.
"""

from __future__ import annotations

import re

from prepbench.tools.nlp import parse
from prepbench.tools.validate.language import (
    GENERIC_DEFINITES,
    MATH_TOKEN,
    RELATIONAL_NOUNS,
    lemmas,
    question_kind,
)

_REASON_MARKERS = re.compile(
    r"(?i)\b(because|since|due to|owing to|as a result|so that|in order to|therefore|thus|hence|the reason|"
    r"results? from|caused by|leads? to|allows?|enables?|prevents?|so as to|given that|as it|as they|as the)\b|(?:^|[.,;:])\s*so\b"
)
#: "What is fludarabine?": a term of one to four words asked bare
_BARE_WHAT = re.compile(r"(?i)\s*what (?:is|are) (?:an? )?[\w-]+(?: [\w-]+){0,3}\?\s*")
#: "Why is X important?": a question of what X does, tells or decides
_WHY_IT_MATTERS = re.compile(
    r"(?i)^\s*why (?:is|are|was|were|does|do|would|should) .+ (?:important|useful|significant|valuable|essential|critical|necessary|matter)\?\s*$"
)
#: verbs by which an answer says what a thing does for someone
_DOES_SOMETHING = re.compile(
    r"(?i)\b(helps?|determines?|indicates?|shows?|reveals?|tells?|predicts?|measures?|reflects?|provides?|affects?|"
    r"influences?|signals?|guides?|protects?|ensures?|reduces?|increases?|decides?|is used|are used|used to)\b"
)
_PRONOUNS = frozenset(
    "it they he she we you i one there that this these those anyone everyone someone anybody everybody nobody "
    "everything something nothing".split()
)
_QUALIFIERS = frozenset("if when whenever unless because since".split())
#: "What is X called?", "What are Y considered?": asks for the name a condition gives
_NAMING_VERBS = frozenset("be call consider term name".split())
#: adverbs on a definition's copula that make it a tendency ("X is typically ..."), not what X is
_HEDGES = frozenset("typically usually often generally probably commonly frequently sometimes mostly normally largely".split())
_NAMING_QUESTION = re.compile(r"(?i)\b(called|considered|termed|known as)\?\s*$")
_META_NOUNS = frozenset("mechanism action definition meaning significance importance nature basis".split())


def subject_heads(question: str) -> list[tuple[str, str]]:
    """Lemmas of the question's subject and object heads that are not wh-words ("side effects of
    albuterol" -> ``effect``, ``albuterol``): what the answer must talk about."""
    doc = parse(question)
    out = []
    for t in doc:
        if t.dep_ in ("nsubj", "nsubjpass", "attr", "dobj") and t.pos_ in ("NOUN", "PROPN") and t.tag_ not in ("WP", "WDT"):
            # "the mechanism of action of penicillins": the answer must name penicillins, not "mechanism"
            while t.lemma_.lower() in RELATIONAL_NOUNS | _META_NOUNS:
                pobj = next(
                    (g for c in t.children if c.dep_ == "prep" and c.lower_ == "of" for g in c.children if g.dep_ == "pobj"), None
                )
                if pobj is None:
                    break
                t = pobj
            out.append((t.lemma_.lower(), t.lower_))
            out += [(c.lemma_.lower(), c.lower_) for c in t.children if c.dep_ == "prep" for c in c.children if c.dep_ == "pobj"]
    return out


_KNOWING = frozenset("know understand learn remember consider note need".split())


def _asks_what_to_know(question: str) -> bool:
    """A question about what someone should know ("What should an investor know about X?"): its subject is the learner."""
    return any(t.dep_ == "ROOT" and t.lemma_ in _KNOWING for t in parse(question))


def _novelty(question: str, answer: str) -> float:
    """Share of the answer's content lemmas that the question does not have (0 for an empty answer)."""
    asked = lemmas(question)
    said = [t.lemma_.lower() for t in parse(answer) if t.is_alpha and not t.is_stop]
    return sum(1 for w in said if w not in asked) / len(said) if said else 0.0


def _answer_refers_back(answer: str) -> bool:
    """The answer's subject is a pronoun for what the question named ("It lists the promises ...")."""
    doc = parse(answer)
    return any(t.dep_ in ("nsubj", "nsubjpass") and t.lower_ in ("it", "they", "this", "these") and t.i <= 1 for t in doc)


def _short_what(question: str) -> bool:
    """A one-clause "What ...?" question of at most 14 words: its subject is what the answer must name."""
    words = question.split()
    return len(words) <= 14 and words[0].lower() == "what" and question.count("?") == 1 and "," not in question


#: what a thing has that is no part of what it is ("has a risk of ...")
_RISKS = frozenset("risk danger hazard potential chance likelihood".split())


def mismatch_problem(question: str, answer: str) -> str | None:
    """The answer does not address what the question asks (see :func:`question_kind`)."""
    kind = question_kind(question)
    if kind == "why" and not _REASON_MARKERS.search(answer) and _novelty(question, answer) < 0.5:
        return "a 'why' question answered without a reason"
    if _BARE_WHAT.fullmatch(question):
        # "What is fludarabine?" -> "Fludarabine causes severe central nervous system toxicity" (seed
        # 1232, defective): an effect of the thing, not what it is
        subj = next((t for t in parse(answer) if t.dep_ in ("nsubj", "nsubjpass")), None)
        # "What is sodium oxybate?" -> "Sodium oxybate has a risk of causing ..." (seed 1242, defective): a risk it
        # carries; "Hypotonic solutions have a lower concentration ..." is what they are
        verb = subj.head if subj is not None else None
        risky = verb is not None and any(c.dep_ == "dobj" and c.lemma_.lower() in _RISKS for c in verb.children)
        if (
            verb is not None
            and (verb.lemma_ in ("cause", "produce", "induce") or verb.lemma_ in ("have", "carry", "pose") and risky)
            and verb.i < 6
        ):
            return f"answers with what it {subj.head.text}, not what it is"
    if _SOME_WAYS.search(answer):
        # "As exchange rates change, a business can be impacted in a number of ways." (AB010, read
        # weak): that it happens, not how
        return "says it happens 'in a number of ways' and names none"
    if _WHY_IT_MATTERS.match(question) and not _REASON_MARKERS.search(answer) and not _DOES_SOMETHING.search(answer):
        # "Why is the yield curve important?" -> "Market technicians ... will study the yield curve in
        # great detail ..." (seed 1231, defective): who attends to it, not what it tells them
        return "asks why something matters; the answer never says what it does or tells"
    heads = subject_heads(question) if _short_what(question) and not _asks_what_to_know(question) else []
    if heads and not _answer_refers_back(answer):
        have = lemmas(answer)
        missing = [h for h, form in heads if h not in have and form not in have]
        if len(missing) * 2 > len(heads):
            return f"the answer does not mention what the question asks about ({', '.join(missing)[:60]})"
    if kind == "procedure" and re.match(r"(?i)\s*the formula is\b", answer):
        return "a 'how do you' question answered with a bare formula"
    calculation = _CALCULATION.search(question)
    # "What is the field of all constructible numbers?" is a definition: a value is asked with numbers given
    quantity = calculation and (calculation.group(1).lower() in _CALCULATE_VERBS or re.search(r"\d", question))
    if quantity and (_NOT_A_RESULT.match(answer) or not re.search(r"\d|=", answer)):
        return "a calculation answered without its result (a remark or an intermediate step)"
    asked = calculation.group("quantity") if quantity else None
    # "What is the value of x?" -> "x = 5" names no "value": only a named quantity must be named
    if asked and asked.lower() not in ("value", "magnitude") and asked.lower() not in answer.lower():
        return f"asks for the {asked.lower()} and the answer never gives it"
    if _NOT_A_RESULT.match(answer) and kind != "procedure":
        return f"the answer is a remark or a step ('{answer.strip()[:30]}'), not an answer"
    if re.match(r"(?i)\s*why will\b", question):
        # "Why will the circulation per unit length be larger at each point?": the future asks why a
        # scene of the source will turn out so (its loops, surfaces, dumbbell); blind readers rated
        # 6 of 7 weak or defective, where a law is asked in the present ("Why do field lines ...")
        return "a 'why will' question asks about an outcome of the source's own scene"
    if _OPEN_CONSEQUENCE.match(question):
        # "What is a consequence of conservation of energy?" -> "Because of conservation of energy, when
        # the energy is transferred from one shell to the next, ...": blind readers rated 7 of 8 weak
        # or defective; the answer is the one consequence the source's own scene gives
        return "asks for 'a consequence' of something: an open question answered with one scene of the source"
    if kind == "definition" or _NAMING_QUESTION.search(question):
        doc = parse(question)
        rank = next((t for t in doc if t.tag_ in ("JJS", "JJ") and t.lemma_.lower() in _JUDGED_RANKS and _superlative(t)), None)
        if rank is not None:  # "What is the simplest permutation?": a judgement the source argues, not a definition
            return f"asks for a rank ('{rank.text} ...'), not what something is"
        if _EXAMPLE_REASONING.search(answer):  # "... is the axis of the wheel, so we know that ..."
            return "the answer reasons through an example ('so we ...'), not a definition"
        return _definition_answer_problem(answer)
    if kind == "condition":
        return _condition_answer_problem(question, answer)
    if kind == "effect" and not any(t.pos_ == "VERB" and any(c.dep_ == "dobj" for c in t.children) for t in parse(answer)):
        return "a question about an effect answered without one"
    return None


#: an answer that ends by saying there are ways, and names none
_SOME_WAYS = re.compile(r"(?i)\bin (?:a (?:number|variety) of|many|several|various|numerous|different) ways\s*[.!]?\s*$")
_NOT_A_DEFINITION = re.compile(
    # "a common example with a preestablished dividend formula": an example of what, it never says (seed 1223)
    r"(?i)^\s*(an? (?:\w+ )?(?:example|instance)\b|"
    r"an? (?:(?:very|highly|extremely|particularly|really|most) )?(example|instance|case|part|kind of thing|"
    r"good|great|critical|important|significant|key|useful|strange|huge|big|major|vital|crucial|serious)\b|"
    r"one example\b|also\b|not\b|often\b|sometimes\b|usually\b|thus\b|therefore\b|"
    # a role or a metaphor in place of a definition: "the building blocks of mathematics"
    # "CNS stimulants are the mainstay of ADHD therapy" (seed 1223): a role, not what they are;
    # "The assessment of the neurological system is the primary focus: ..." (Y026, read mismatch)
    r"the (building blocks?|foundation|cornerstone|backbone|model|basis|simplest|heart|lubricant|mainstay|hallmark|"
    r"centerpiece|linchpin|workhorse|pillar|evidence|starting point|(?:primary |main |chief |major )?(?:focus|priority))\b|"
    # a standing among others, not what it is: "Corporations are the dominant form of business
    # enterprise in the United States because of ..." (AB008, read mismatch)
    r"the (?:dominant|predominant|prevailing|leading|most popular)\b|"
    # a rank or a vague genus: "the second most reported STI ...", "a quantity that describes an object's motion"
    r"(?:the|one of the) (?:second |third |fourth |fifth )?most (?:common(?:ly)?|frequent(?:ly)?|reported|prevalent)\b|"
    # "a quantity that, like energy, can be defined from Newton's Second Law" (seed 1228): how it may be
    # defined, not what it is
    r"an? (?:\w+ )?(?:quantity|concept|term|thing|idea) that(?:, [^,]{1,40},)? (?:describes|can be (?:measured|defined|derived)|is used)\b|"
    # a place in the field, not what it is: "a concept central to physics"
    r"an? (?:concept|idea|notion|topic|subject) (?:central|important|key|fundamental|basic|essential) (?:to|in|for)\b|"
    # a cause, not what it is: "Automaticity in the pacemaker cells is a result of a spontaneous current"
    # (U035, read defective); "the result of subtracting expenses from revenues" may define, "a result of" does not
    r"an? (?:direct |natural )?(?:result|consequence) of\b|"
    # a place in a process, not what it is: "Safety is a fundamental element in the process of medication
    # administration" (g024, read defective)
    r"an? (?:fundamental|essential|integral|central|basic|vital|crucial) (?:element|component|aspect|piece|factor|consideration)s? (?:in|of|to)\b|"
    # a role with no owner: "Angle-closure glaucoma is a contraindication due to ..." (seed 1243): of which drug?
    r"an? (?:contraindication|indication|complication|risk factor|side effect|adverse effect|precaution)\b(?! (?:for|of|to|in|with)\b)|"
    # a comparison in place of a genus: "a simpler accounting system to use than an accrual-basis ..." (seed 1243)
    r"an? (?:\w+er|more \w+|less \w+) (?:[\w-]+ ){1,4}(?:to \w+ )?than\b)"
)
#: a calculation's request: "Calculate the flux ...", "Determine the field ...", "How fast ...?"
_CALCULATION = re.compile(
    r"(?i)(?:^|[.?!,;]\s+)(calculate|compute|determine|find|estimate|how (much|many|fast|far|long|large|high)|"
    r"what (is|are|was|were) the (?:\w+ )?(?P<quantity>value|magnitude|speed|velocity|current|voltage|force|energy|field|flux|"
    r"potential|rate|area|length|distance|time|mass|pressure|power|acceleration|momentum|temperature|resistance|charge))\b"
)
_CALCULATE_VERBS = frozenset("calculate compute determine find estimate".split())
#: how an example's discussion or an intermediate step opens, not its result
_NOT_A_RESULT = re.compile(
    r"(?i)^\s*(note that|this (was|is|can|shows|means)|we (can|could|will|used|use|need|start|first|now)|recall|"
    # a connective that continues what came before ("Also, about once every six years ...")
    r"also|however|thus|therefore|hence|moreover|furthermore|in addition)\b"
)


def _definition_answer_problem(answer: str) -> str | None:
    """A "What is X?" answered by "X is an example of ...", "X is a critical part of ...", or by a
    conditional definition of another term ("A code is a linear code if ...")."""
    doc = parse(answer)
    # the verb of the first subject: a dash or a second clause can take the parse's ROOT elsewhere
    subj = next((t for t in doc if t.dep_ in ("nsubj", "nsubjpass")), None)
    root = subj.head if subj is not None else None
    if root is None or root.lemma_ not in _NAMING_VERBS:
        return None
    attr = next((c for c in root.children if c.dep_ in ("attr", "acomp", "oprd", "xcomp")), None)
    if attr is None:
        return None
    hedge = next((c for c in root.children if c.dep_ == "advmod" and c.lower_ in _HEDGES and c.i < attr.i), None)
    if hedge is not None and not any(t.dep_ in ("relcl", "acl") for t in attr.subtree):
        # "Institutional and preferred individual investors are typically the initial purchasers of
        # IPOs" (S010, Y000 and q263, all read defective): what it usually is or does, not what it
        # is; a genus with its differentia still defines ("Bonds are typically a basic form of
        # investment that entails a ... agreement between issuer and purchaser")
        return f"says what it '{hedge.text}' is, not what it is"
    judged = next((t for t in attr.subtree if t.i < attr.i and _superlative(t) and t.lemma_.lower() in _JUDGING_RANKS), None)
    if judged is not None:
        # "The market itself is the best technical analyst out there" (AA006, read defective): a
        # rank the author gives it, not what it is
        return f"ranks it ('{judged.text} {attr.text}'), not what it is"
    tail = doc[attr.left_edge.i :].text
    if _NOT_A_DEFINITION.match(tail):
        return f"'{tail[:40]}' does not say what it is"
    # "The brain is a complex structure, and ...": a judging adjective and nothing that restricts the genus
    mods = [c for c in attr.children if c.dep_ not in ("det", "punct", "cc", "conj")]
    if attr.pos_ == "NOUN" and mods and all(c.dep_ == "amod" and c.lower_ in _JUDGING for c in mods):
        return f"'{doc[attr.left_edge.i : attr.i + 1].text}' does not say what it is (a judgement, no defining trait)"
    circular = _circular(subj, doc[attr.left_edge.i : attr.left_edge.i + 8])
    if circular:
        return f"circular: defines '{doc[subj.left_edge.i : subj.i + 1].text}' by '{circular}'"
    why = _unstated_law_problem(subj, attr) or _result_not_definition_problem(attr)
    if why:
        return why
    # "A code is a linear code if ...", "A bowl is an open surface because ...": the clause on the
    # copula makes it a classification under a condition, or an argument, not what the term means
    clauses = [c for h in (root, attr) for c in h.children if c.dep_ == "advcl"]
    mark = next((m.lower_ for c in clauses for m in c.children if m.dep_ in ("mark", "advmod") and m.lower_ in _QUALIFIERS), None)
    if mark:
        what = doc[attr.left_edge.i : attr.i + 1].text
        return f"defines '{what}' under a condition or a reason ('{mark} ...'), not what the question's term means"
    return None


#: superlatives that judge ("the simplest permutation"), unlike those that measure ("the largest organ")
_OPEN_CONSEQUENCE = re.compile(r"(?i)\s*what (?:is|are) (?:a|an|one|some) (?:\w+ )?(?:consequences?|results?|outcomes?) of\b")
_JUDGED_RANKS = frozenset("simple easy important useful powerful interesting natural elegant basic obvious".split())
#: ranks that judge what a thing is worth ("the best technical analyst"), in a definition's genus
_JUDGING_RANKS = _JUDGED_RANKS | frozenset("good bad great effective efficient valuable reliable accurate".split())


def _superlative(t) -> bool:
    """``t`` is a superlative: "simplest" (JJS) or "most useful"."""
    return t.tag_ == "JJS" or any(c.lower_ == "most" for c in t.children)


def _circular(subj, definiens) -> str | None:
    """The word of ``definiens`` (a span: the first words after "is") that repeats the defined term:
    every content word of a term of two or more recurs there, or shares its first five letters
    ("Sensitivity analysis is analysis of the sensitivity ..."); a genus repeating the head alone
    is the usual form ("A call option is an option that ...")."""
    term = [t for t in subj.subtree if t.is_alpha and not t.is_stop and t.pos_ in ("NOUN", "PROPN", "ADJ")]
    said = [t for t in definiens if t.is_alpha and not t.is_stop]
    if len(term) < 2:  # "A call option is an option that ...": the genus may repeat a one-word head
        return None
    hits = [next((d.text for d in said if d.lower_[:5] == w.lower_[:5] and len(w) >= 5), None) for w in term]
    return hits[-1] if all(hits) else None


#: a definition that turns into an example's reasoning
#: a definition that goes on to reason or advise ("... a purely mathematical tool, so it is important to
#: fight your intuition ...", seed 1225): the book's argument, not a definition
_EXAMPLE_REASONING = re.compile(r"(?i)[,;] so (?:we|you|it is)\b|\bso we know\b")
#: adjectives that judge a genus without restricting it ("a complex structure", "a known hepatotoxin")
_JUDGING = frozenset(
    """complex complicated fundamental essential interesting powerful remarkable unique fascinating amazing
    difficult vast known""".split()
)
#: names of statements: "Newton's Second Law", "the Chinese Remainder Theorem"
_STATEMENT_NAMES = frozenset("law theorem principle lemma rule postulate axiom equation".split())
#: what a law is called when its answer says only what kind of statement it is
_KINDS_OF_STATEMENT = frozenset(
    """result statement equation law theorem analogue analog consequence generalization version form relation
    relationship expression""".split()
)


def _unstated_law_problem(subj, attr) -> str | None:
    """ "Newton's Second Law is a vector equation that relates ...", "Lenz's law is a statement about
    conservation of energy": a named law or theorem answered with what kind of statement it is,
    not what it states ("... is the statement that ..." states it)."""
    named = any(t.lemma_.lower() in _STATEMENT_NAMES for t in subj.subtree)
    if not named or attr.lemma_.lower() not in _KINDS_OF_STATEMENT:
        return None
    states = any(
        c.dep_ in ("acl", "ccomp") and any(m.dep_ == "mark" and m.lower_ == "that" for m in c.children) for c in attr.children
    )
    return None if states else f"says what kind of statement '{subj.text}' is ('{attr.text}'), not what it states"


def _result_not_definition_problem(attr) -> str | None:
    """ "The integers are a unique factorization domain by the Fundamental Theorem of Arithmetic": a
    property proved by a named result answers "What are X?" with a theorem about X, not what X is."""
    for prep in (c for c in attr.children if c.dep_ == "prep" and c.lower_ == "by"):
        if any(t.lemma_.lower() in _STATEMENT_NAMES for t in prep.subtree):
            return f"states a result about it ('{attr.text} by ...'), not what it is"
    return None


def _condition_answer_problem(question: str, answer: str) -> str | None:
    """A "What happens if/when C?" whose answer is about something the question never names
    ("What happens if F is a field?" -> "... every ideal in F[x] is principal"): the question
    does not say what it asks about. The answer's main subject must be in the question, or be a
    pronoun for it; an answer with no subject (an instruction) or "there is" states no outcome of C."""
    # the outcome is the first clause: what follows a ';' ("; that is, that it has not been sent ...")
    # can take the parse's ROOT away from it
    doc = parse(answer.split(";", 1)[0])
    root = next((t for t in doc if t.dep_ == "ROOT"), None)
    if root is None:
        return None
    subj = next((c for c in root.children if c.dep_ in ("nsubj", "nsubjpass", "expl", "csubj")), None)
    if subj is None:
        return "the answer states no outcome (it has no subject)"
    if root.lemma_ == "do" and any(c.lower_ == "so" and c.dep_ == "advmod" for c in root.children):
        # "When investors buy stock, they do so in order to receive cash inflows" (q017): why, not what happens
        return "'do so' restates the condition: the answer gives a purpose, not an outcome"
    if subj.lower_ in _PRONOUNS:  # not "G" (tagged PRON): a variable names nothing
        # "it is easiest to start with ...": an expletive "it" gives advice, not an outcome
        expletive = subj.lower_ == "it" and root.lemma_ == "be" and any(c.dep_ in ("xcomp", "ccomp") for c in root.children)
        return (
            f"'{subj.text} ...': the answer states no outcome of the condition"
            if subj.lower_ in ("there", "that") or expletive
            else None
        )
    asked = lemmas(question)
    # "the gains in one stock" answers a question about stocks; a variable ("every ideal in F[x]") is no name
    names = [t for t in subj.subtree if t.pos_ in ("NOUN", "PROPN") and not MATH_TOKEN.match(t.text)]
    # "the consumer will lose purchasing power": a role every reader knows needs no introduction
    if subj.lemma_.lower() not in GENERIC_DEFINITES and not any(t.lemma_.lower() in asked or t.lower_ in asked for t in names):
        return f"the answer is about '{doc[subj.left_edge.i : subj.i + 1].text[:40]}', which the question never names"
    return None
