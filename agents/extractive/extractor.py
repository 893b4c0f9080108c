"""The per-chunk extractor: shared sentence state and checks, with every extractor family mixed in."""

from __future__ import annotations

import functools
import re

from prepbench.agents.extractive.blocks import _PROBLEM_NO_RE, parse_blocks
from prepbench.agents.extractive.concepts import ConceptExtractors
from prepbench.agents.extractive.examples import ExampleExtractors
from prepbench.agents.extractive.grammar import (
    _ANCHORED_RE,
    _CITE_PAREN_RE,
    _UI_RE,
    AUTHOR_YEAR_RE,
    Sent,
    _bold_terms,
    _dangling_demonstrative,
    _finish,
    _strip_discourse,
    _usable_block,
    _words,
)
from prepbench.agents.extractive.lists import ListExtractors
from prepbench.agents.extractive.procedures import ProcedureExtractors
from prepbench.agents.extractive.text import clean_inline, lossy_math, split_sentences
from prepbench.tools.chunking import Chunk
from prepbench.tools.nlp import entities, parse

#: heading words that name a part of a book, not a subject ("Summary", "Key Terms", "Chapter 3")
_PART_WORDS = frozenset(
    "summary introduction glossary key term chapter section review question overview conclusion example "
    "exercise problem note appendix part unit lesson what why how".split()
)
#: a sentence that concludes from, or restates, the one before it
# a quoted block that opens with one of these labels sets an exercise: its sentences describe the
# exercise's scene ("A baby bouncer consists of a seat suspended ..."), not what the book teaches
_EXERCISE_LABEL = re.compile(r"(?i)^\W*(checkpoint|exercise|problem|try it|practice|your turn|solution)\b")
#: a paragraph that opens a numbered example ("**Example 15.17.** No group of order 56 is simple."):
#: its sentences are steps about the example's own object ("If there is only a single Sylow
#: 7-subgroup, then it must be normal": of the group of order 56, read weak in seeds 1228 and 1230)
_EXAMPLE_LEAD = re.compile(r"(?i)^\W*example\s+\d+(?:\.\d+)*\b")
_CONCLUDES = re.compile(r"(?i)(thus|hence|therefore|consequently|so|similarly|likewise|in other words|in (this|that) case)\b")


def key_terms(text: str) -> frozenset[str]:
    """The lemmas (lower case) of a document's key terms: the content words of its headings and of
    its bold terms, part names ("Summary", "Chapter") aside. A condition or a cause names what the
    book is about when it holds one of them ("when interest rates fall"), and depends on its chunk
    when it does not ("when you squeeze the bulb")."""
    spans = re.findall(r"(?m)^#{1,6}\s+(.+)$", text) + _bold_terms(text)
    if not spans:
        return frozenset()
    doc = parse(" ; ".join(clean_inline(x) for x in spans))
    return frozenset(t.lemma_.lower() for t in doc if t.is_alpha and not t.is_stop and t.lemma_.lower() not in _PART_WORDS)


class _Extractor(ConceptExtractors, ListExtractors, ExampleExtractors, ProcedureExtractors):
    """Runs every extractor over one chunk; ``key_lemmas``: its document's :func:`key_terms`;
    ``articles``: its document's :func:`term_articles` (None: not known, guessed from the term)."""

    def __init__(self, chunk: Chunk, key_lemmas: frozenset[str] = frozenset(), articles: dict[str, str] | None = None):
        self.chunk = chunk
        self.key_lemmas = key_lemmas
        self.articles = articles
        head = chunk.heading_path[-1] if chunk.heading_path else ""
        self.blocks = parse_blocks(chunk.text, head)
        self.exercise_quotes = {b.quote for b in self.blocks if b.quote >= 0 and _EXERCISE_LABEL.match(b.raw)}
        self.example_paras = {bi for bi, b in enumerate(self.blocks) if b.kind == "para" and _EXAMPLE_LEAD.match(b.raw)}
        # the running text, for "is this word written capitalised mid-sentence (a name)?": heading
        # lines are title case ("Stock and Bond Markets") and would make "Bond markets" a name
        prose = "\n".join(line for line in chunk.text.splitlines() if not line.lstrip().startswith("#"))
        self.chunk_lower = " " + re.sub(r"[^\w\s'’-]", " ", clean_inline(prose)) + " "
        self.sents: list[Sent] = []
        self.block_sents: dict[int, list[Sent]] = {}
        for bi, b in enumerate(self.blocks):
            if not _usable_block(b):
                continue
            raw = b.raw
            if b.kind == "para" and _PROBLEM_NO_RE.match(raw):
                raw = raw[_PROBLEM_NO_RE.match(raw).end() :]
            for k, sraw in enumerate(split_sentences(raw)):
                text = clean_inline(sraw)
                s = Sent(sraw, text, bi, k, b.heading, b.quote, _bold_terms(sraw), "\n" in sraw)
                self.sents.append(s)
                self.block_sents.setdefault(bi, []).append(s)
        self.used: set[str] = set()

    # -- helpers ---------------------------------------------------------------------
    def answer_text(self, s: Sent) -> str | None:
        """Readable answer from a sentence, or None when it cannot stand alone."""
        t = AUTHOR_YEAR_RE.sub("", _CITE_PAREN_RE.sub("", s.text))
        t = _strip_discourse(t)
        if s.multiline and s.quote >= 0:
            return None
        if s.quote in self.exercise_quotes:
            return None  # the setting of an exercise or checkpoint, or a step of its solution
        if s.block in self.example_paras:
            return None  # a step about a numbered example's own object
        if s.quote >= 0 and self.blocks[s.block].kind == "item":
            return None  # an option of a quoted checkpoint's list ("4. Earth's magnetic North pole depends on ..."): maybe a wrong one
        if len(t) < 25 or len(t) > 900:
            return None
        if _ANCHORED_RE.search(t):
            return None
        first = _words(t)[:1]
        if first and first[0].lower() in (
            "it",
            "this",
            "these",
            "those",
            "they",
            "such",
            "he",
            "she",
            "his",
            "her",
            "their",
            "its",
            "that",
            "here",
            "there",
        ):
            if not (first[0].lower() == "there" and re.match(r"(?i)there (is|are)\b", t)):
                return None
        if t.count("$") and re.search(r"\\[a-z]+", t):
            return None
        if lossy_math(s.raw) or _CONCLUDES.match(s.text.strip()):
            return None  # a symbol would be lost, or the sentence concludes from one the sample lacks
        if re.search(r"(?i)\b(the following|as follows)\b", t) or s.raw.rstrip().endswith(":"):
            return None  # announces a list or an equation that is not part of the sentence
        if self.blocks[s.block].kind == "para" and not re.search(r"[.!?][*_\"”’)\]]*$", s.raw.rstrip()):
            return None  # runs on into a display equation or a list: the sentence is not whole
        if "\\" in t or "{" in t or "|" in t:
            return None
        if (
            _dangling_demonstrative(t)
            or _UI_RE.search(t)
            or re.search(r"(?i)\bfor (example|instance)\b|\be\.g\.", t)
            or t.endswith("?")
        ):
            return None
        return _finish(t)

    def next_sentence(self, s: Sent, subject: str) -> tuple[str, str] | None:
        """The sentence after ``s`` in its block when it elaborates ``subject`` (text, raw)."""
        later = [x for x in self.block_sents.get(s.block, []) if x.pos == s.pos + 1]
        if not later:
            return None
        x = later[0]
        t = _CITE_PAREN_RE.sub("", x.text).strip()
        if x.multiline or len(t) < 20 or len(t) > 500 or _ANCHORED_RE.search(t) or "\\" in t or "{" in t or "|" in t:
            return None
        head = (_words(subject) or [""])[-1].lower()
        starts = re.match(r"(?i)(this|it|that|in other words|that is|for example|for instance|these|they)\b", t)
        if not (starts or (head and head in t.lower())):
            return None
        if re.search(r"(?i)\b(we|our|us|I)\b", t) or _UI_RE.search(t):
            return None
        return _finish(t), x.raw

    @functools.cached_property
    def vocabulary(self) -> frozenset[str]:
        """The key-term lemmas of the chunk's heading path and of its document (:func:`key_terms`)."""
        return key_terms("\n".join("# " + h for h in self.chunk.heading_path)) | self.key_lemmas

    def anchored(self, phrase: str) -> bool:
        """Whether ``phrase`` names what the book is about: one of its nouns is in :attr:`vocabulary`."""
        return any(t.pos_ in ("NOUN", "PROPN") and t.lemma_.lower() in self.vocabulary for t in parse(phrase))

    def names_a_person(self, phrase: str, labels: tuple[str, ...] = ("PERSON",)) -> bool:
        """Whether ``phrase`` names a person (an entity of ``labels``) who is not a key term ("Alice",
        "Bob", not "Jensen's alpha"): a story's character, not a subject."""
        return any(e.label_ in labels and e.root.lemma_.lower() not in self.vocabulary for e in entities(parse(phrase)))

    def qclean(self, s: str) -> str:
        s = _CITE_PAREN_RE.sub("", s)
        s = re.sub(r"\s+", " ", s).strip(" ,;:")
        return s

    def question_ok(self, q: str) -> bool:
        if len(q) < 15 or len(q) > 300:
            return False
        if _ANCHORED_RE.search(q):
            return False
        if "\\" in q or "{" in q or "|" in q or "_" in q:
            return False
        if re.search(
            r"(?i)\b(for example|for instance|e\.g\.|instead|in this case|in our case|in the case above)\b", q
        ) or _UI_RE.search(q):
            return False
        if _dangling_demonstrative(q):
            return False
        if re.search(r"(?i)\b(it|its|they|them|their|he|she|his|her|him)\b", q):
            return False  # a personal pronoun whose referent is outside the question
        return True

    # -- concept_qa ------------------------------------------------------------------
