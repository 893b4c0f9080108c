"""Named results of a mathematics text: a theorem, lemma, proposition or corollary the book names.

"**Theorem 2.9 (Division Algorithm).** Let $a$ and $b$ be integers, with $b > 0$. Then ..." gives a
``theorem_statement`` candidate: "What does the Division Algorithm state?", answered with the whole
statement as the book gives it (hypotheses first, formulas kept in LaTeX, a display formula or a
numbered list that belongs to it included), up to its "*Proof.*". A result named after a person is
asked by the name the field uses ("Lagrange" -> "Lagrange's Theorem"). The book's number of a result
("Theorem 2.9") never reaches the sample: the name says which result is meant.

No candidate when:

* the statement runs past the end of the chunk (its end is not in the text the sample comes from);
* the result has no name (a question could only cite its number);
* the book gives two different results the same name (the First Isomorphism Theorem for groups and
  for rings) and the statement names no structure to tell them apart.
"""

from __future__ import annotations

import re

from prepbench.agents.extractive.candidates import Cand

#: "**Theorem 2.9 (Division Algorithm).**", "**Lemma 22.3 (Freshman's Dream).**"
_HEADER = re.compile(r"^\*\*(Theorem|Lemma|Proposition|Corollary)\s+\d+(?:\.\d+)*\s*\(([^)\n]{2,80})\)\.\*\*[ \t]*", re.M)
#: words that make a name the result's own ("Division Algorithm", "De Morgan's Laws")
_NAMED = re.compile(r"\b(Theorem|Lemma|Laws?|Algorithm|Criterion|Dream|Principle|Formula|Identity|Inequality)\b")
#: a person's name alone ("Lagrange", "Jordan-Hölder")
_PERSON = re.compile(r"[A-Z][\w’'-]*")
#: the structures a result is about, for results the book names twice
_STRUCTURES = ("group", "ring", "field", "integral domain", "polynomial", "module", "vector space", "integer")
#: how a paragraph of the statement goes on after a formula or a sentence ("Furthermore, for any
#: integer $b$, ...", "If $p \mid a_i$ for ...")
_GOES_ON = re.compile(r"(Furthermore|Moreover|In particular|Conversely|If|Then|That is|In this case|Also)\b")
#: the most characters of a statement worth a sample
MAX_STATEMENT = 1200


def book_results(documents: list[tuple[str, str]]) -> dict[str, list[tuple[str, str | None]]]:
    """``called name -> [(doc_path, structure), ...]`` of every named result of a book's
    ``(doc_path, text)`` documents, in order (:func:`called`, the structure its statement is about):
    what :func:`named_results` needs to tell two results of one name apart."""
    out: dict[str, list[tuple[str, str | None]]] = {}
    for path, text in documents:
        for m in _HEADER.finditer(text):
            who = called(m.group(2), m.group(1))
            found = _statement(text[m.end() :])
            if who is not None and found is not None:
                out.setdefault(who, []).append((path, _structure(found[0])))
    return out


def called(name: str, kind: str) -> str | None:
    """How the field calls a result named ``name`` in a book's header of ``kind`` ("Theorem"):
    "the Division Algorithm", "De Morgan's Laws", "Lagrange's Theorem", "the Jordan-Hölder
    Theorem"; None for a name that is neither a result's name nor a person's."""
    name = " ".join(name.split())
    if _NAMED.search(name):
        if name.startswith("The "):
            return "the " + name[4:]
        return name if re.search(r"[’']s\b", name) and not name.startswith("Freshman") else "the " + name
    if _PERSON.fullmatch(name):
        return f"the {name} {kind}" if "-" in name else f"{name}’s {kind}"
    return None


def _statement(rest: str) -> tuple[str, int] | None:
    """The statement that follows a result's header (``rest``: the chunk's text after it) and where
    it ends in ``rest``: its paragraphs up to "*Proof.*", a heading, or a paragraph of running text
    after a complete sentence; None when the chunk ends first, or the statement is too long."""
    parts: list[str] = []
    end = pos = 0
    for m in re.finditer(r"\n[ \t]*\n|\Z", rest):
        block = rest[pos : m.start()].strip()
        pos = m.end()
        if not block:
            if m.end() == len(rest):
                break
            continue
        # a sentence ends the statement when the last part ends with "." (a display formula too: "... .\n$$")
        done = bool(parts) and re.search(r"\.\s*(\$\$)?$", parts[-1]) is not None
        running = done and re.match(r"[A-Z*]", block) and not _GOES_ON.match(block)
        if parts and (block.startswith(("*Proof", "#", "**")) or running):
            statement = "\n\n".join(parts)
            ends = re.search(r"\.\s*(\$\$)?$", statement) is not None
            return (statement, end) if ends and len(statement) <= MAX_STATEMENT else None
        parts.append(block)
        end = m.start()
    return None  # the chunk ends inside the statement, or before it is known to end


def _structure(statement: str) -> str | None:
    first = statement.split(". ")[0].lower()
    hits = [(first.find(s), s) for s in _STRUCTURES if re.search(rf"\b{s}s?\b", first)]
    return min(hits)[1] if hits else None


def named_results(text: str, path: str = "", book: dict[str, list[tuple[str, str | None]]] | None = None) -> list[Cand]:
    """``theorem_statement`` candidates of a chunk's named results (see the module docstring);
    ``path``: the chunk's document, ``book``: :func:`book_results` of its book.

    A name the book gives two results is asked with the structure each is about ("the First
    Isomorphism Theorem for rings"); where their structures do not tell them apart (two versions
    of Gauss's Lemma about polynomials), only the first is asked."""
    out = []
    for m in _HEADER.finditer(text):
        kind, name = m.group(1), " ".join(m.group(2).split())
        who = called(name, kind)
        found = _statement(text[m.end() :])
        if who is None or found is None:
            continue
        statement, end = found
        person = _PERSON.fullmatch(name) is not None
        structure = _structure(statement)
        if person and structure and len((book or {}).get(who, [])) < 2:
            # a person's name says less than a result's own: "Cauchy's Theorem" is also one about
            # integrals, "Burnside's Theorem" one about p^a q^b (read weak, seed 1238)
            who = f"{who} for {structure}s"
        seen = (book or {}).get(called(name, kind), [])
        if len(seen) > 1:
            structures = [st for _, st in seen]
            mine = (path, structure)
            if None not in structures and len(set(structures)) == len(structures):
                who = f"{called(name, kind)} for {structure}s"
            elif mine != seen[0]:
                continue  # which of the two results, the question could not say: the first is asked
        plural = name.endswith(" Laws")  # "What do De Morgan's Laws state?"
        fields = {
            "question": f"What {'do' if plural else 'does'} {who} state?",
            # the name again: the answer says which result it states ("Lagrange's Theorem states: Let ...")
            "answer": f"{who[0].upper()}{who[1:]} {'state' if plural else 'states'}: {statement}",
            "question_type": "fact",
            "knowledge_point": name[:120],
            "statement_kind": kind.lower(),
            "name": name,
        }
        evidence = text[m.start() : m.end() + end].strip()
        out.append(Cand("concept_qa", fields, [evidence], "theorem", 1.0, m.group(0)))
    return out
