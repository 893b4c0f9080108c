"""Concept extractors: bold lead terms, glossaries, definitions, causes and conditions."""

from __future__ import annotations

import re

from prepbench.agents.extractive.articles import (
    DEFINITIONS_BOX,
    article_key,
    box_entry,
    gloss_answer,
    named_body,
    own_sentence,
    second_predicate,
    usage_note,
)
from prepbench.agents.extractive.candidates import Cand, _concept, _novel_enough
from prepbench.agents.extractive.conditional import asked_outcome
from prepbench.agents.extractive.grammar import (
    _ANCHORED_RE,
    _AUX,
    _COMMON_VERBS_3SG,
    _COMMON_VERBS_BASE,
    AUTHOR_YEAR_RE,
    Sent,
    _article_ok,
    _cap_first,
    _finish,
    _has_pronoun,
    _lc_first,
    _strip_discourse,
    _valid_subject,
    _verb_base,
    _verb_is_a_noun,
    _words,
    indefinite_article,
)
from prepbench.agents.extractive.text import clean_inline
from prepbench.tools.nlp import parse

#: a glossary entry's note on the word's form ("; singular, artery", "; plural: atria", "(pl. foci)")
_FORM_NOTE = re.compile(
    r"(?:[;,]\s*(?:singular|plural|pl\.|sing\.)[,:]?\s+[\w-]+|\s*\((?:singular|plural|pl\.|sing\.)[,:]?\s+[\w-]+\))\s*\.?$", re.I
)
#: suffixes of abstract and mass nouns, which take no article ("What is veracity?", "cash-basis accounting")
_NAMED_STATEMENT = re.compile(
    r"[A-Z][a-z]+(?:'s|’s)? (?:effect|law|principle|theorem|rule|paradox|equation|hypothesis|constant|identity)$"
)
_MASS_NOUN = re.compile(r"(?i)(ing|ity|ness|ism|ence|ance|ice)$")
#: ... except these, countable despite the suffix ("an annuity", "a security", "a device")
_COUNT_NOUNS = frozenset(
    """annuity security commodity entity facility utility activity community opportunity liability authority
    university property quantity identity disability abnormality modality deformity city difference reference
    experience sequence instance allowance insurance device office service price practice notice invoice choice
    voice slice vice building holding offering listing filing ring thing being string ending meeting""".split()
)


#: a definition's genus that makes its term the name of a condition or a process, used without an
#: article ("What is depression?": "a disorder in which ...")
_CONDITION_GENERA = frozenset("disorder disease condition syndrome infection illness inflammation process".split())


def _genus(definition: str) -> str:
    """The lemma of the first noun of a definition ("a disorder in which ..." -> "disorder"), or ""."""
    return next((t.lemma_.lower() for t in parse(definition) if t.pos_ == "NOUN"), "")


_NOT_DEFINITION_STARTS = frozenset("also see same synonym abbreviation in on at by for of with from as if used".split())


def _glossary_entry(term: str, definition: str) -> bool:
    """A "**term**: definition" block is a glossary entry that can be asked: a short term without a
    pronoun, a worded definition of three words or more that does not open like prose or a pointer
    ("See ...", "Also ..."), and not a label ("Solution:", "Note:") or a verb ("metastasize: spread to
    other sites", which no "What is ...?" can ask)."""
    if not term or _has_pronoun(term) or len(_words(term)) > 10 or "\\" in definition or len(definition.split()) < 3:
        return False
    if re.match(r"(?i)(solution|answer|note|notes|example|step|steps|source|sources|table|figure|hint|tip)s?$", term):
        return False
    verb_like = len(term) > 6 and " " not in term and re.search(r"(?i)(ize|ify)$", term)
    if verb_like:  # "metastasize: spread to ...": no "What is X?" asks a verb
        return False
    if definition[:1].isupper() and not re.match(r"[A-Z]{2,}", definition) or re.match(r"(?i)using\b", term):
        return False  # a label followed by prose, not a glossary entry
    if definition.split()[0].lower() in _NOT_DEFINITION_STARTS:
        return False
    return not own_sentence(definition)


#: how a sentence opens that adds to the one before it ("They also ...", "Additionally, ...")
_ADDS_TO = re.compile(r"(?i)(?:additionally|in addition|also|furthermore|moreover)\b|(?:\w+ ){1,2}also\b")


def _term_and_name(term: str, articles: dict[str, str]) -> tuple[str, bool]:
    """A glossary term as a question writes it, and whether it is a name (asked with "the")."""
    body = named_body(term, articles)  # "financial industry regulatory authority (FINRA)"
    if body:
        return body, True
    # "Statement of Cash Flows", and a named effect or law ("Fisher effect": "the", not "a")
    return term, bool(re.match(r"[A-Z][a-z]+ (?:(?:of|and|for|the) )*[A-Z]", term)) or bool(_NAMED_STATEMENT.match(term))


class ConceptExtractors:
    """Concept-question extractors; mixed into :class:`~prepbench.agents.extractive.extractor.Extractor`."""

    def _in_definitions_box(self, block) -> bool:
        """``block`` is an entry of a block-quoted box of definitions ("> **Important Definitions**")."""
        return block.quote >= 0 and any(
            o.quote == block.quote and o.kind in ("label", "para") and DEFINITIONS_BOX.match(o.raw.strip()) for o in self.blocks
        )

    def bold_leads(self) -> list[Cand]:
        """Sentences that open with a bold term: 'With the **X**, ...' and '**X** <verb> ...'."""
        out = []
        for s in self.sents:
            if not s.bold_terms or self.blocks[s.block].section == "glossary":
                continue
            raw = s.raw.strip()
            ans = self.answer_text(s)
            if ans is None:
                continue
            m = re.match(r"^(?:With|Under|Using) (?P<art>the |a |an )?\*\*(?P<term>[^*]{2,60})\*\*,? ", raw)
            if m:
                term = clean_inline(m.group("term"))
                art = (m.group("art") or "").strip()
                tq = _lc_first(term, self.chunk_lower)
                does = "do" if parse(tq)[-1].tag_ in ("NNS", "NNPS") else "does"  # "How do transverse waves work?"
                q = f"How {does} {art + ' ' if art else ''}{tq} work?"
                if self.question_ok(q) and _novel_enough(q, ans) and not _has_pronoun(term):
                    out.append(_concept(q, ans, "explanation", term, [s.raw], 1.4, s.raw))
                continue
            m = re.match(r"^(?P<art>The |A |An )?\*\*(?P<term>[^*]{2,60})\*\*(?P<tail> \([^)]{1,20}\))? (?P<verb>[a-z]+)\b", raw)
            if not m or m.group("verb") in (
                "is",
                "are",
                "refers",
                "refer",
                "means",
                "was",
                "were",
                "and",
                "or",
                "of",
                "in",
                "for",
                "to",
            ):
                continue
            term = clean_inline(m.group("term") + (m.group("tail") or ""))
            if _has_pronoun(term) or len(_words(term)) > 7:
                continue
            if m.group("verb") in ("cause", "causes", "produce", "produces", "induce", "induces"):
                continue  # "**Fludarabine** causes severe CNS toxicity": an effect, not what it is (seed 1232)
            base = _verb_base(m.group("verb"))
            plural = base is None
            if plural and m.group("verb") not in _COMMON_VERBS_BASE:
                continue
            if (
                not plural
                and m.group("verb") not in _COMMON_VERBS_3SG
                and not re.search(r"(ates|izes|ifies|ides|ects|ows|ists|ains)$", m.group("verb"))
            ):
                continue
            tq = _lc_first(term, self.chunk_lower)
            art = (m.group("art") or "").strip().lower()
            if plural:
                q = f"What are {tq}?"
            elif art:
                q = f"What is {art} {tq}?"
            else:
                q = f"What is {tq}?"
            if self.question_ok(q) and _novel_enough(q, ans):
                out.append(_concept(q, ans, "definition", term, [s.raw], 1.3, s.raw))
        return out

    def glossary(self) -> list[Cand]:
        out = []
        for bi, b in enumerate(self.blocks):
            if b.kind not in ("para", "item") or b.section in ("refs", "outcomes"):
                continue
            m = re.match(r"^\*\*(?P<term>[^*]{2,80}?)\s*\*\*\s*:\s*(?P<def>\S.{10,})$", b.raw.strip())
            if not m:
                m = re.match(r"^\*\*(?P<term>[^*]{2,80}?)\s*:\s*\*\*\s*(?P<def>\S.{10,})$", b.raw.strip())
            if not m:
                continue
            term = clean_inline(m.group("term")).strip()
            definition = AUTHOR_YEAR_RE.sub("", clean_inline(m.group("def"))).strip()
            entry = box_entry(term, definition) if self._in_definitions_box(b) else (definition, False)
            if entry is None:
                continue
            definition, quantity = entry  # a quantity is asked bare: "What is torque?", not "a torque"
            # "...; singular, artery": the glossary's note on the word's form, not part of the definition
            definition = _FORM_NOTE.sub("", definition).strip()
            if not _glossary_entry(term, definition):
                continue
            d0 = definition.split()[0].lower()
            term, name = _term_and_name(term, self.articles or {})
            head = re.split(r" (?:of|for|in|on|to|from|with|under|between|per) ", term.split(" (")[0])[0].split()[-1]
            plural = bool(re.search(r"(?<![su])s$", head)) and not re.search(r"(?i)(ss|ics|is|us|ness)$", head)
            verb = "are" if plural else "is"
            if not plural and parse(definition)[0].tag_ == "NNS":
                continue  # "partial agonist: drugs that ...": "Partial agonist is drugs" is no sentence
            definition, use = usage_note(second_predicate(definition, plural), plural)
            tq = _lc_first(term, self.chunk_lower)
            # how the book itself writes the term: "a receptor", "the immune system", bare "inflation"
            usage = (self.articles or {}).get(article_key(term)) if d0 in ("a", "an") and not plural and not name else None
            usage = "" if quantity and not plural and not name else usage
            if name and re.match(r"[A-Z][\w-]*['’]s ", term):
                question = f"What {verb} {term}?"  # "Coulomb's constant": a possessive takes no article
                subj = term
            elif name:
                question = f"What {verb} the {term}?"
                subj = f"The {term}"
            elif usage == "the":
                question = f"What is the {tq}?"
                subj = f"The {tq}"
            elif usage == "" or (
                usage is None
                and d0 in ("a", "an")
                and not plural
                and (
                    _MASS_NOUN.search(head)
                    and head.lower() not in _COUNT_NOUNS
                    or _genus(definition) in _CONDITION_GENERA
                    or re.fullmatch(r"[IVX]+|\w*\d\w*", head)  # numbered: "angiotensin II", "cytochrome P450 2D6"
                )
            ):
                question = f"What is {tq}?"  # "cash-basis accounting": a mass noun takes no article
                subj = _cap_first(tq)
            elif d0 in ("a", "an") and not plural:
                art = indefinite_article(tq)
                question = f"What is {art} {tq}?"
                subj = f"{_cap_first(art)} {tq}"
            elif plural:
                question = f"What are {tq}?"
                subj = _cap_first(tq)
            else:
                question = f"What is meant by {tq}?"
                subj = _cap_first(tq)
            answer = gloss_answer(subj, verb, definition, plural)
            answer = _finish(answer)
            if use is not None:  # "current ratio: ...; used to determine ...": its own sentence
                answer = f"{answer} {'They' if plural else 'It'} {_finish(use)}"
            if not self.question_ok(question) or _ANCHORED_RE.search(answer):
                continue
            ev = b.raw.strip()
            out.append(_concept(question, answer, "definition", term, [ev], 3.0, ev))
        return out

    def definitions(self) -> list[Cand]:
        out = []
        for s in self.sents:
            if self.blocks[s.block].section == "glossary":
                continue
            t = _strip_discourse(self.qclean(s.text))
            ans = self.answer_text(s)
            if ans is None:
                continue
            bonus = 1.0 if s.bold_terms else 0.0
            for pattern in (self._def_is_a, self._def_verb, self._def_considered):
                matched, cand = pattern(s, t, ans, bonus)
                if matched:
                    if cand is not None:
                        out.append(cand)
                    break
        return out

    def _def_is_a(self, s: Sent, t: str, ans: str, bonus: float) -> tuple[bool, Cand | None]:
        """'X is/are a/an/the ...' definitions: ``(matched, candidate)``: a match ends the sentence's turn, with or without a candidate."""
        # X is/are a/an/the ...
        m = re.match(
            r"^(?P<subj>[^,;:()]{2,90}?(?: \([A-Z][\w&./ -]{0,20}\))?) (?P<verb>is|are) (?P<adv>(?:often |also |commonly |typically |sometimes |usually |generally |simply )?)"
            r"(?P<rest>(?:defined as|known as|called|referred to as|termed|considered|one of|a|an|the)\b.*)$",
            t,
        )
        if m:
            subj, verb, adv, rest = m.group("subj").strip(), m.group("verb"), m.group("adv"), m.group("rest")
            if not _valid_subject(subj) or any(w.pos_ in ("VERB", "AUX") or w.lower_ == "what" for w in parse(subj)):
                return True, None  # "Limited liability corporations require what": no noun phrase to ask about
            if re.match(r"(?i)the (most|case|same|following|answer|result|first|last|next|only|opposite|reverse)\b", rest):
                return True, None
            if len(_words(rest)) < 4:
                return True, None
            sq = _lc_first(subj, self.chunk_lower)
            if rest.startswith("defined as"):
                q = f"How {verb} {sq} defined?"
                qt = "definition"
            elif re.match(r"(known as|called|referred to as|termed)\b", rest):
                how = re.match(r"(known as|called|referred to as|termed)", rest).group(1)
                q = f"What {verb} {sq} {adv}{how}?"
                qt = "fact"
            elif rest.startswith("considered to be"):
                q = f"What {verb} {sq} {adv}considered to be?"
                qt = "fact"
            elif rest.startswith("considered") and not re.match(r"considered (an?|the) \w", rest):
                return True, None  # "considered different if ...": a judgement under a condition, not a name
            elif rest.startswith("considered") and re.search(r"\b(if|when|unless|because)\b", rest):
                return True, None
            elif rest.startswith("considered"):
                q = f"What {verb} {sq} {adv}considered to be?"  # "What is X considered?" lacks its complement
                qt = "fact"
            else:
                if adv.strip() in ("also",):
                    return True, None
                if self.names_a_person(subj, ("PERSON", "ORG")):
                    return True, None  # "What is Clear Lake Sporting Goods?": a company of an example
                q = f"What {verb} {sq}?"
                qt = "comparison" if re.search(r"(?i)\b(difference|differences|versus|vs\.?|compared)\b", subj) else "definition"
            ev = [s.raw]
            if not _novel_enough(q, ans):
                nxt = self.next_sentence(s, subj)
                if nxt is None:
                    return True, None
                ans = ans + " " + nxt[0]
                ev.append(nxt[1])
            if not self.question_ok(q) or not _novel_enough(q, ans):
                return True, None
            return True, _concept(q, ans, qt, subj, ev, 2.0 + bonus, s.raw)
        return False, None

    def _def_verb(self, s: Sent, t: str, ans: str, bonus: float) -> tuple[bool, Cand | None]:
        """'X refers to / means / consists of ...' definitions: ``(matched, candidate)``: a match ends the sentence's turn, with or without a candidate."""
        # X refers to / means / consists of ...
        m = re.match(
            r"^(?:The term )?(?P<subj>[^,;:()]{2,90}?(?: \([A-Z][\w&./ -]{0,20}\))?) (?P<verb>refers to|refer to|means|mean|consists of|consist of|"
            r"includes|include|involves|involve|measures|measure|represents|represent|describes|describe|looks at|look at|"
            r"focuses on|focus on|depends on|depend on|determines|determine|shows|show|indicates|indicate|reflects|reflect|"
            r"allows|allow|enables|enable|requires|require|provides|provide|compares|compare|captures|capture|tracks|track|"
            r"occurs when|occur when|arises when|arise when|happens when|happen when)\b(?P<rest>.+)$",
            t,
        )
        if m:
            subj, verb, rest = m.group("subj").strip(), m.group("verb"), m.group("rest")
            subj = re.sub(r"^(?i:the term )", "", subj)
            if not _valid_subject(subj) or len(_words(rest)) < 3:
                return True, None
            if _verb_is_a_noun(subj, verb, rest):
                return True, None  # "The sample mean can be ...", "The arithmetic mean, median, ..."
            if verb in ("means", "mean") and re.match(r"\s*that\b", rest):
                return True, None  # "Cash surpluses means that funds can be invested ...": an implication, not a meaning
            parts = verb.split(" ")
            v0 = parts[0]
            tail = " ".join(parts[1:])
            base = _verb_base(v0)
            do = "does" if base else "do"
            base = base or v0
            sq = _lc_first(subj, self.chunk_lower)
            if tail == "when":
                q = f"When {do} {sq} {base}?"
                qt = "condition"
            elif tail:
                q = f"What {do} {sq} {base} {tail}?"
                qt = "definition" if base in ("refer", "mean") else "fact"
            else:
                q = f"What {do} {sq} {base}?"
                qt = "definition" if base in ("mean",) else ("enumeration" if base in ("include",) else "fact")
            weak = (
                "show",
                "allow",
                "enable",
                "provide",
                "require",
                "determine",
                "indicate",
                "reflect",
                "compare",
                "capture",
                "track",
                "include",
                "describe",
            )
            listy = base in ("include", "consist") and rest.count(",") >= 1 and re.search(r",? (and|or) ", rest)
            if base in weak and not listy and not (s.bold_terms and any(bt.lower() in subj.lower() for bt in s.bold_terms)):
                return True, None
            if re.match(
                r"(?i)((the|these|some|other) )?(topics?|advantages?|disadvantages?|benefits?|examples?|others?|things?|items?|uses?|reasons?|factors?|results?|answers?|steps?)$",
                subj,
            ):
                return True, None
            if not self.question_ok(q) or not _novel_enough(q, ans):
                return True, None
            return True, _concept(q, ans, qt, subj, [s.raw], 1.8 + bonus, s.raw)
        return False, None

    def _def_considered(self, s: Sent, t: str, ans: str, bonus: float) -> tuple[bool, Cand | None]:
        """'Y is considered (a) **term**' -> 'What is considered a term?': ``(matched, candidate)``: a match ends the sentence's turn, with or without a candidate."""
        # Y is considered (a) **term** -> What is considered a term?
        m = re.match(
            r"^(?P<what>.{10,200}?) (?P<verb>is|are) (?P<how>considered|called|known as|referred to as|classified as|termed) (?P<term>(?:an? |the )?[^,;]{2,60}?)\.?$",
            t,
        )
        if m and s.bold_terms:
            term = m.group("term").strip()
            if any(clean_inline(bt).lower() in term.lower() for bt in s.bold_terms) and not _has_pronoun(term):
                what = m.group("what")
                if (
                    not _has_pronoun(what)
                    and what.split()[0].lower() not in ("this", "that", "such", "it", "when", "if", "in", "for")
                    and not re.search(r"(?i)\bthe (leftmost|rightmost|first|last|second|next|previous|other)\b", what)
                ):
                    tq = _lc_first(term, self.chunk_lower)
                    if not any(w.pos_ in ("NOUN", "PROPN") for w in parse(term)):
                        return True, None  # "... is called abelian or commutative": no thing to ask what it is
                    if m.group("how") in ("called", "known as", "referred to as", "termed"):
                        # "Systems that ... are called public key cryptosystems" defines the name:
                        # ask what the name means, not the inverted "What are called ...?"
                        verb = "is" if re.match(r"(?i)an? ", term) else m.group("verb")
                        q = f"What {verb} {tq}?"
                    else:
                        q = f"What {m.group('verb')} {m.group('how')} {tq}?"
                    if self.question_ok(q) and _novel_enough(q, ans):
                        return True, _concept(q, ans, "definition", term, [s.raw], 2.5, s.raw)
        return False, None

    def _inverted_why(self, clause: str) -> str | None:
        """'Dealers increase liquidity' -> 'Why do dealers increase liquidity?' (None if unsure)."""
        clause = clause.strip().rstrip(".,;")
        if re.search(r"[,;:]", re.sub(r"\([^)]*\)", "", clause)):
            return None
        # "the nurse should assess the client frequently": a role's action is about a drug or a case
        # the clause does not name (the reason does), so the question would not be self-contained
        if re.match(r"(?i)(the |a )?(nurses?|clients?|patients?|health ?care providers?|providers?|prescribers?)\b", clause):
            return None
        ws = clause.split(" ")
        for k in range(1, min(9, len(ws))):
            w = ws[k].lower()
            if w in _AUX or w in ("cannot", "isn't", "aren't", "won't", "can't", "doesn't", "don't"):
                subj = " ".join(ws[:k])
                if not _valid_subject(subj, allow_you=True):
                    return None
                rest = " ".join(ws[k + 1 :])
                aux = {"cannot": "can't"}.get(w, w)
                if aux in ("does", "do", "did") and not rest:
                    return None
                if not rest:
                    return None
                return f"Why {aux} {_lc_first(subj, self.chunk_lower)} {rest}?"
            base = _verb_base(ws[k])
            if base and k <= 5 and base not in ("be",):
                subj = " ".join(ws[:k])
                if _valid_subject(subj) and ws[k].islower() and re.fullmatch(r"[a-z]+", ws[k]) and ws[k] in _COMMON_VERBS_3SG:
                    rest = " ".join(ws[k + 1 :])
                    return f"Why does {_lc_first(subj, self.chunk_lower)} {base} {rest}?"
            if ws[k] in _COMMON_VERBS_BASE and k <= 5:
                subj = " ".join(ws[:k])
                if (
                    _valid_subject(subj, allow_you=True)
                    and re.search(r"s$", ws[k - 1])
                    or subj.lower() in ("you", "investors", "firms", "companies")
                ):
                    if _valid_subject(subj, allow_you=True):
                        rest = " ".join(ws[k + 1 :])
                        return f"Why do {_lc_first(subj, self.chunk_lower)} {ws[k]} {rest}?"
        return None

    def _continued(self, s) -> bool:
        """The next sentence of ``s``'s block adds to it ("They also ...", "Additionally, ..."):
        ``s`` alone gives only part of what the chunk says its subject does."""
        nxt = next((x for x in self.sents if x.block == s.block and x.pos == s.pos + 1), None)
        return nxt is not None and bool(_ADDS_TO.match(nxt.text.strip()))

    def causes(self) -> list[Cand]:
        out = []
        for s in self.sents:
            ans = self.answer_text(s)
            if ans is None:
                continue
            t = _strip_discourse(self.qclean(s.text)).rstrip(".")
            q = None
            qt = "cause_effect"
            m = re.match(r"^(?P<main>[^;]{15,250}?),? because (?P<why>.{10,})$", t)
            if m and "because" not in m.group("main").lower():
                q = self._inverted_why(m.group("main"))
                kp = m.group("main")
            else:
                m = re.match(r"^Because (?P<why>[^,]{10,200}), (?P<main>.{15,250})$", t)
                if m:
                    q = self._inverted_why(m.group("main"))
                    kp = m.group("main")
            if q is None:
                m = re.match(
                    r"^(?P<subj>[^,;:]{3,90}?) (?P<verb>leads to|lead to|results in|result in|causes|cause|contributes to|contribute to|"
                    r"can lead to|can result in|can cause|will lead to|will result in|increases|increase|decreases|decrease|reduces|reduce|raises|raise|lowers|lower)\b (?P<rest>.{8,})$",
                    t,
                )
                if (
                    m
                    and _valid_subject(m.group("subj"), max_words=10)
                    and (_article_ok(m.group("subj")) or " " in m.group("verb"))
                ):
                    verb = m.group("verb")
                    subj = _lc_first(m.group("subj"), self.chunk_lower)
                    if verb.startswith(("can ", "will ")) and len(_words(subj)) <= 2:
                        q = None  # "What can morphine cause?": a list of effects the sentence gives only in part
                    elif self._continued(s):
                        q = None  # "... can cause bradycardia. They also ... Additionally, they can cause edema." (seed 1229)
                    elif verb.startswith(("can ", "will ")):
                        aux, v = verb.split(" ", 1)
                        q = f"What {aux} {subj} {v}?"
                    else:
                        v0, _, tail = verb.partition(" ")
                        base = _verb_base(v0)
                        if base in ("tend",):
                            q = None
                        elif tail:
                            q = f"What {'does' if base else 'do'} {subj} {base or v0} {tail}?"
                        elif v0 in (
                            "increases",
                            "increase",
                            "decreases",
                            "decrease",
                            "reduces",
                            "reduce",
                            "raises",
                            "raise",
                            "lowers",
                            "lower",
                        ):
                            q = None  # "What effect does X have?" loses what X changes
                        else:
                            q = f"What {'does' if base else 'do'} {subj} {base or v0}?"
                    kp = m.group("subj")
            # no "What is a consequence of <cause>?" from "Because of <cause>, <main>": <main> is one
            # consequence among many, told of the chunk's own scene (blind-read: 1 good, 3 weak and
            # 4 defective in 8, "Because of conservation of energy, ... from one shell to the next")
            if q is None or not self.question_ok(q) or not _novel_enough(q, ans):
                continue
            if not self.anchored(kp) or self.names_a_person(kp):
                continue  # a cause of something only the chunk names
            out.append(_concept(q, ans, qt, kp, [s.raw], 1.6, s.raw))
        return out

    def conditions(self) -> list[Cand]:
        out = []
        for s in self.sents:
            ans = self.answer_text(s)
            if ans is None:
                continue
            t = _strip_discourse(self.qclean(s.text)).rstrip(".")
            m = re.match(r"^(?P<conj>If|When|Whenever|As|Once|Unless) (?P<cond>[^,;]{8,200}), (?:then )?(?P<main>.{15,})$", t)
            if not m:
                continue
            conj, cond = m.group("conj"), m.group("cond").strip()
            if conj == "As" and not re.search(
                r"(?i)\b(increase|increases|decrease|decreases|rise|rises|fall|falls|grow|grows|decline|declines|change|changes|goes up|goes down)\b",
                cond,
            ):
                continue
            if conj == "Once" or conj == "Unless":
                continue
            if _has_pronoun(cond) or re.search(r"(?i)\b(we|us|our)\b", cond):
                continue
            if _words(cond)[:1] and _words(cond)[0].lower() in ("it", "this", "that", "so", "such"):
                continue
            if re.match(r"(?i)(so|such|not|necessary|possible|needed|applicable|appropriate|desired|required)\b", cond):
                continue
            if len(_words(cond)) < 3:
                continue
            main = m.group("main")
            if re.search(r"(?i)\b(I|we|our|us|instead)\b", cond + " " + main):
                continue
            if re.search(r"\b(was|were|had|did)\b|\b\w+ed\b(?<!\bneeded)", cond) and not re.search(
                r"\b(is|are|be|been|being|gets?|get)\s+\w+ed\b", cond
            ):
                continue  # narrative past tense: a story, not a general condition
            nums_main = set(re.findall(r"\d[\d,.]*", main))
            if nums_main - set(re.findall(r"\d[\d,.]*", cond)):
                continue  # example-specific figures
            if re.search(r"(?i)\b(you|your)\b", cond) or not self.anchored(cond) or self.names_a_person(cond):
                continue  # a scene of the chunk ("when you squeeze the bulb", "if Alice receives"), not a rule
            # asked of the outcome when that question stands (the answer adds enough to it), else "What happens"
            asked = (asked_outcome(conj, cond, main), f"What happens {conj.lower()} {_lc_first(cond, self.chunk_lower)}?")
            q = next((q for q in asked if q and self.question_ok(q) and _novel_enough(q, ans)), None)
            if q is None:
                continue
            out.append(_concept(q, ans, "condition", cond, [s.raw], 1.5, s.raw))
        return out
