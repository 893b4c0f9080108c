"""Language rule kinds: is the sample self-contained, complete, on the question, and faithful?

These kinds read the sample's text with spaCy (:mod:`prepbench.tools.nlp`, through the
analyses of :mod:`.language`) and do not depend on which generator wrote the sample: the same
checks judge the offline generator, a chat model, or a dataset given to ``prepbench validate``.
Every rejection names what was found (the rule's ``detail``).

``self_contained``
    ``fields`` (default ``[question]``), ``answer_field`` (default ``answer``). The question
    names what it asks about: no deixis ("this method", "here", "the following", "in
    parentheses", "do so"), no third-person pronoun without a noun before it, no first-person
    "I", no bare definite noun that only the source introduces ("the observer", "the drug"), no
    ownerless plural of a relational noun ("side effects", "responsibilities"), and every
    variable of question and answer introduced ("a group G", "let n be", "p is a prime").
``complete``
    ``fields`` (default ``[question, answer]``). Whole sentences: balanced brackets and double
    quotes, no last word that needs more ("... the argument that?", "... they will have."), no
    verbless fragment, no garbled clause, no symbol lost in conversion ("a b." for "a ⪯ b"), and
    a "What is X?" whose X is a noun phrase.
``answers_question``
    ``question_field``, ``answer_field``. A "why" is answered with a reason; the answer contains
    at least half of the question's focus lemmas; "What is X?" is not answered by "an example
    of ...", "a critical part of ..." or a conditional definition of another term; "How do you
    ...?" is not answered by a bare formula.
``faithful``
    ``field`` (default ``answer``), ``min_support`` (default 0.6), ``numbers`` (default true).
    Against the chunk: every answer sentence's content words (Snowball stems) occur in the chunk
    (or the sample's own question, case or claim) at share ``min_support`` or more; numbers of the answer occur in the chunk; the chunk
    sentence it comes from does not have a negation the answer lacks (or the reverse), nor a
    condition ("if", "unless") the answer dropped; a "why" over "not ... because" is refused.
    Skipped when no chunk text is given.
``attributed``
    ``question_field``, ``answer_field``. For sources whose claims are their author's (essays,
    literature, judicial opinions): a sample must attribute what it states to someone, a
    named person, a court, a case or a work (an entity in question or answer, or a word of
    ``markers``), so that an opinion or a metaphor is not taught as fact.
"""

from __future__ import annotations

import re
from functools import lru_cache
from typing import Callable

import snowballstemmer

from prepbench.tools.errors import SkillError
from prepbench.tools.nlp import entities, parse, sentences
from prepbench.tools.validate import answering, symbols
from prepbench.tools.validate import language as lang
from prepbench.tools.validate import referents as refs
from prepbench.tools.validate.rules import PASS, RuleFn, Verdict, register_rule_kind
from prepbench.tools.validate.text import STOPWORDS, as_texts, choice_parts

#: the kinds this module registers
LANGUAGE_KINDS = frozenset(("self_contained", "complete", "answers_question", "faithful", "attributed"))
_STEM = snowballstemmer.stemmer("english")
_WORD = re.compile(r"[A-Za-z][A-Za-z'-]+|\d+(?:[.,]\d+)*")
_NUMBER = re.compile(r"\d+(?:[.,]\d+)*")
_ATTRIBUTION_ENTS = {"PERSON", "WORK_OF_ART"}


def _names(spec: dict, key: str, default: list[str], name: str) -> list[str]:
    value = spec.get(key, default)
    if isinstance(value, str):
        value = [value]
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise SkillError(f"filters.yaml: rule '{name}': field '{key}' must be a list of sample field names")
    return value


def _parsing(check: RuleFn, *fields: str | list[str], combined: Callable[[dict], list[str]] | None = None) -> RuleFn:
    """``check`` with ``check.parses(sample)``: the texts it parses (the ``fields``' texts, and
    ``combined(sample)``'s), which the gate parses in one batch before screening
    (:meth:`~prepbench.tools.validate.gate.Gate.screen_many`)."""
    names = tuple(f for group in fields for f in ([group] if isinstance(group, str) else group))

    def parses(sample: dict) -> list[str]:
        texts = [t for f in names for t in as_texts(sample.get(f))]
        return texts + (combined(sample) if combined is not None else [])

    check.parses = parses  # type: ignore[attr-defined]
    return check


def _question_problem(text: str, context: str, answer: str, sourced: bool) -> str | None:
    """What keeps one question from standing alone (see ``self_contained``), or None.

    A question of several sentences is a scenario (a word problem, a case): its story introduces
    its own people and things ("the store", "she", "I"), so only its first sentence is checked,
    for pointing into the source. An instruction (no question mark: "Write a story about the
    forest") asks for a task, not about the source: only pointing is checked. Checks that only a
    source makes meaningful ("the observer" that the source introduced, "your prediction") run
    when the sample came from one (``sourced``: a chunk is given)."""
    choice = choice_parts(text)
    if choice is not None:
        # a multiple-choice item: "which of these" and "the following" point at its options, which
        # may introduce its variables; a one-sentence stem must still name what it is about ("As the
        # skater goes down the ramp ..." of a simulation the book ran: read defective), a longer one
        # is a scenario that introduces its own things (see below)
        stem, options = choice
        why = lang.pointing_problem(text, demonstratives=False)
        if why is None and len(sentences(stem)) == 1:
            why = lang.referent_problem(stem, f"{context} {options}", sourced)
        return why
    sents = sentences(text)
    if len(sents) >= 2 and not context:
        return lang.pointing_problem(text, demonstratives=False)
    if not text.rstrip().endswith("?"):
        return lang.pointing_problem(text)  # an instruction ("Write a story about ..."), not a question
    # a case or claim before the question is its context: "this account", "your child" point into it
    return (
        lang.pointing_problem(text, demonstratives=not context)
        or lang.pronoun_problem(context + " " + text if context else text, sourced and not context)
        or lang.referent_problem(text, context, sourced)
        or lang.person_question_problem(text, answer)
        or lang.acronym_problem(text, answer)
        or lang.other_problem(text)
    )


@register_rule_kind("self_contained")
def _self_contained_rule(spec: dict, name: str) -> RuleFn:
    fields = _names(spec, "fields", ["question"], name)
    context_fields = _names(spec, "context_fields", ["case", "claim"], name)
    answer_field = spec.get("answer_field", "answer")

    def check(sample: dict, chunk_text: str | None) -> Verdict:
        context = " ".join(t for f in context_fields for t in as_texts(sample.get(f)))
        answer = " ".join(as_texts(sample.get(answer_field)))
        for f in fields:
            for text in as_texts(sample.get(f)):
                why = _question_problem(text, context, answer, bool(chunk_text))
                if why:
                    return Verdict(False, name, f"{f}: {why}")
        question = " ".join(t for f in [*context_fields, *fields] for t in as_texts(sample.get(f)))
        # a scenario's answer may name what its story set up; a one-sentence question's may not
        if not question or not question.rstrip().endswith("?"):
            return PASS  # an instruction sets its own task and terms
        if len(sentences(question)) >= 2:  # a scenario: its answer may name what its story set up
            why = lang.variable_problem(question)
        else:
            # the answer's variables count when the question is about mathematics at all
            why = lang.variable_problem(question, answer if lang.math_tokens(question) else "")
            why = (
                why
                or refs.role_only_problem(question, answer)
                or refs.unstated_inputs_problem(question, answer)
                or (
                    lang.voice_problem(answer)
                    or lang.source_example_problem(answer, question, chunk_text)
                    or refs.order_problem(question)
                    or refs.structure_part_problem(question)
                    or refs.exercise_problem(question)
                    or refs.named_instance_problem(question)
                    or refs.purpose_problem(question)
                    or refs.order_problem(answer, positional=False)
                    or refs.named_before_problem(answer, question)
                    or refs.example_referent_problem(question, answer, chunk_text)
                    or refs.owned_part_problem(question, answer, chunk_text)
                    or refs.unnamed_illness_problem(question)
                    or refs.running_character_problem(question)
                    or lang.source_acronym_problem(question, answer, chunk_text)
                    if chunk_text
                    else None
                )
            )
        return Verdict(False, name, why) if why else PASS

    def with_context(sample: dict) -> list[str]:  # the pronoun check reads a question after its case
        context = " ".join(t for f in context_fields for t in as_texts(sample.get(f)))
        return [f"{context} {t}" for f in fields for t in as_texts(sample.get(f))] if context else []

    return _parsing(check, fields, answer_field, context_fields, combined=with_context)


@register_rule_kind("complete")
def _complete_rule(spec: dict, name: str) -> RuleFn:
    fields = _names(spec, "fields", ["question", "answer"], name)

    def check(sample: dict, chunk_text: str | None) -> Verdict:
        for f in fields:
            is_question = f in ("question", "case")
            for text in as_texts(sample.get(f)):
                if len(text.strip()) <= 3:
                    continue  # an option letter or "No": a label, not a sentence
                why = (
                    lang.brackets_problem(text)
                    or symbols.lost_symbol_problem(text)
                    or symbols.stray_escape_problem(text)
                    or (symbols.dropped_symbol_problem(text, chunk_text) if chunk_text else None)
                    or lang.ending_problem(text, is_question)
                    or (lang.sentence_problem(text) if is_question or len(sentences(text)) == 1 else None)
                    or (
                        lang.copula_question_problem(text) or lang.conditional_question_problem(text) if f == "question" else None
                    )
                    or (symbols.display_cut_problem(text, chunk_text) if chunk_text and not is_question else None)
                )
                if why:
                    return Verdict(False, name, f"{f}: {why}")
        return PASS

    return _parsing(check, fields)


@register_rule_kind("answers_question")
def _answers_question_rule(spec: dict, name: str) -> RuleFn:
    qf = spec.get("question_field", "question")
    af = spec.get("answer_field", "answer")

    def check(sample: dict, chunk_text: str | None) -> Verdict:
        q, a = sample.get(qf), sample.get(af)
        if not isinstance(q, str) or not isinstance(a, str):
            return PASS
        why = answering.mismatch_problem(q, a)
        return Verdict(False, name, why) if why else PASS

    return _parsing(check, qf, af)


@lru_cache(maxsize=200_000)
def _stem(word: str) -> str:
    return _STEM.stemWord(word.lower())


def content_stems(text: str) -> list[str]:
    """Snowball stems of ``text``'s content words (stop words dropped), in order."""
    return [_stem(w) for w in _WORD.findall(text) if w.lower() not in STOPWORDS]


@lru_cache(maxsize=2_000)
def _chunk_index(chunk_text: str) -> tuple[frozenset, tuple[tuple[str, frozenset], ...], str]:
    # lines first: glossary entries and list items end without a full stop
    lines = [ln for ln in chunk_text.splitlines() if ln.strip()]
    sents = tuple((s, frozenset(content_stems(s))) for ln in lines for s in sentences(ln))
    every = frozenset(st for _, stems in sents for st in stems)
    digits = " ".join(_NUMBER.findall(chunk_text.replace(",", "")))
    return every, sents, f" {digits} "


def clear_caches() -> None:
    """Drop the chunk indexes the ``faithful`` rule made (:func:`_chunk_index`): what a long-lived
    screening process does before a new run, as :func:`prepbench.tools.nlp.clear_caches` for parses."""
    _chunk_index.cache_clear()


def _support_problem(sent: str, chunk_text: str, own: str, min_support: float, numbers: bool) -> str | None:
    stems = content_stems(sent)
    if len(stems) < 3:
        return None  # "No.", "Yes, it does.": nothing to look up
    every, sents, digits = _chunk_index(chunk_text)
    every = every | set(content_stems(own))  # the sample's own question and case may be quoted back
    share = sum(1 for s in stems if s in every) / len(stems)
    if share < min_support:
        return f"only {share:.0%} of '{sent[:50]}' is in the chunk"
    if numbers:
        for n in _NUMBER.findall(sent.replace(",", "")):
            if f" {n} " not in digits and len(n) > 1:
                return f"the number {n} is not in the chunk"
    mine = set(stems)
    # the source sentence covering most of the answer; among equals the one with least else in it
    scored = ((s, len(mine & st) / len(mine), len(mine & st) / len(mine | st)) for s, st in sents)
    best, overlap, _ = max(scored, key=lambda x: (x[1], x[2]), default=(None, 0.0, 0.0))
    if best is None or overlap < 0.75:
        return None  # a paraphrase: no one source sentence states the same thing to compare with
    best = _aligned_window(best, mine)
    if lang.negated(best) != lang.negated(sent):
        return f"negation differs from the source sentence '{best[:60]}'"
    if lang.conditioned(best) and not lang.conditioned(sent) and overlap >= 0.8:
        return f"drops the condition of the source sentence '{best[:60]}'"
    return None


def _aligned_window(source: str, stems: set[str], margin: int = 3) -> str:
    """The part of ``source`` from the first to the last word whose stem is in ``stems`` (plus
    ``margin`` words each side): where the answer came from, so a negation or an "if" elsewhere
    in a long source sentence is not compared with the answer."""
    words = source.split()
    hits = [i for i, w in enumerate(words) if any(_stem(x) in stems for x in _WORD.findall(w))]
    if not hits:
        return source
    return " ".join(words[max(0, hits[0] - margin) : hits[-1] + margin + 1])


@register_rule_kind("faithful")
def _faithful_rule(spec: dict, name: str) -> RuleFn:
    field = spec.get("field", "answer")
    min_support = spec.get("min_support", 0.6)
    numbers = spec.get("numbers", True)
    if not isinstance(min_support, (int, float)) or not 0 <= min_support <= 1:
        raise SkillError(f"filters.yaml: rule '{name}': field 'min_support' must be a number in [0, 1]")

    def check(sample: dict, chunk_text: str | None) -> Verdict:
        answer = " ".join(as_texts(sample.get(field)))
        question = sample.get("question")
        if isinstance(question, str) and answer:
            why = lang.negation_scope_problem(question, answer)
            if why:
                return Verdict(False, name, why)
        if not chunk_text or not answer:
            return PASS
        why = refs.quiz_option_problem(answer, as_texts(sample.get("evidence")), chunk_text)
        if why:
            return Verdict(False, name, why)
        own = " ".join(t for f in ("question", "case", "claim") for t in as_texts(sample.get(f)))
        for sent in sentences(answer):
            why = _support_problem(sent, chunk_text, own, float(min_support), bool(numbers))
            if why:
                return Verdict(False, name, why)
        return PASS

    return _parsing(check, field, "question")


_SAYING = frozenset(
    "say hold argue write define describe call claim believe think note observe conclude insist contend explain suggest "
    "maintain state compare see regard view warn propose reject urge".split()
)
#: "In Walden, ...", "Under Marbury v. Madison, ...", "According to Mill, ...": a question framed by a work or a person
_FRAMED = re.compile(r"^(In|Under|According to|For)\s+(?:[A-Z][\w.'’-]*\s*)+(?:v\.\s+(?:[A-Z][\w.'’-]*\s*)+)?,")
_VIEWS = frozenset("principle view argument theory account opinion claim definition test idea position reasoning".split())


def _speaker(t) -> bool:
    """A proper noun that says something: subject of a verb of saying, or owner of a view ("Mill's principle")."""
    if t.dep_ == "nsubj" and t.head.lemma_ in _SAYING:
        return True
    return t.dep_ == "poss" and t.head.lemma_ in _VIEWS


#: whose statements a sample may attribute: ``court`` (an opinion, named after its case) and
#: ``author`` (the book's single author, "In Walden, Thoreau writes that ...")
VOICES = ("court", "author")
_AUTHOR_VOICE = re.compile(r"\b[A-Z][\w’'-]+ (writes|wrote) that\b|\bwhat does [A-Z][\w’'-]+ (say|write)\b")


@register_rule_kind("attributed")
def _attributed_rule(spec: dict, name: str) -> RuleFn:
    qf = spec.get("question_field", "question")
    af = spec.get("answer_field", "answer")
    markers = [m.lower() for m in _names(spec, "markers", [], name)]
    voices = _names(spec, "voices", list(VOICES), name)
    if set(voices) - set(VOICES) or not voices:
        raise SkillError(f"rule '{name}': field 'voices': use one or more of {list(VOICES)}, not {voices}")

    def check(sample: dict, chunk_text: str | None) -> Verdict:
        text = " ".join(as_texts(sample.get(qf)) + as_texts(sample.get(af)))
        if not text:
            return PASS
        if chunk_text:
            evidence = as_texts(sample.get("evidence"))
            why = refs.quoted_as_court_problem(" ".join(as_texts(sample.get(af))), evidence, chunk_text)
            if why:
                return Verdict(False, name, why)
        if "author" not in voices and _AUTHOR_VOICE.search(text):
            # a casebook's editor quotes the courts: what it states is a court's, not the editor's own
            return Verdict(False, name, "attributes a statement to the book's author, where this skill's sources speak as courts")
        low = text.lower()
        if any(re.search(rf"\b{re.escape(m)}\b", low) for m in markers):
            return PASS
        # a name not at the start of a sentence (NER reads any capitalised first word as a name)
        doc = parse(text)
        if any(e.label_ in _ATTRIBUTION_ENTS and e.start > 0 and not doc[e.start - 1].is_sent_end for e in entities(doc)):
            return PASS
        if _FRAMED.match(text):
            return PASS
        # a named speaker: "Mill holds", "How does Thoreau define", "Mill's principle"
        if any(t.pos_ == "PROPN" and _speaker(t) for t in doc):
            return PASS
        return Verdict(False, name, "states the source's claim as fact without saying whose it is")

    return check
