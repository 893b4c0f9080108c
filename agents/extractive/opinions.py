"""Who speaks in a judicial opinion: where its separate opinions begin, and whose opinion it is
when the Court's majority covers only some of its parts.

An opinion that announces the judgment "and delivered the opinion of the Court with respect to
Parts I, II, and III–C, ... and an opinion with respect to Parts III–A, III–B, and III–D" (NFIB v.
Sebelius, McDonald v. City of Chicago, Planned Parenthood v. Casey) speaks for the Court in some
parts and for fewer Justices in others. A casebook's editor rarely keeps the part numbers, so no
chunk can tell which of its statements are the Court's: they are all attributed to the author's
opinion ("Chief Justice Roberts's opinion", "the joint opinion"), which is true of every part.
"""

from __future__ import annotations

import re
from collections import Counter
from difflib import SequenceMatcher

#: the line that opens a separate opinion ("**Mr. Justice Murphy, dissenting.**", "JUSTICE
#: THOMAS, concurring in the judgment.", "# Dissent")
_SEPARATE_OPINION = re.compile(
    r"(?im)^[#* \t]*(?:(?:mr\.\s+)?(?:chief\s+)?justice\b[^\n]{0,240}?,\s*(?:dissenting|concurring)|dissent\b|concurrence\b)"
)
#: the opinion's header when the Court's majority joins only some parts of it
_MIXED_OPINION = re.compile(
    r"(?im)^[#* \t]*(?P<who>[^\n]{1,160}?),?\s+announced the judgment of the Court and delivered the opinion of the Court"
    r" with respect to Parts?\b[^\n]*?\ban opinion with respect to Parts?\b"
)
#: a Justice in an opinion's header: "CHIEF JUSTICE ROBERTS", "Justice Alito", "ROBERTS, C. J."
_JUSTICE = re.compile(
    r"(?i)\b(?P<rank>chief justice|justice)\s+(?P<name>[A-Z][\w’'-]+)|\b(?P<short>[A-Z][A-Z’'-]+),\s*(?P<cj>C\.\s?)?J\."
)


def separate_opinion_line(text: str) -> int | None:
    """The 1-based line where a document's first separate opinion (a dissent or a concurrence)
    begins, or None: everything from there on is not the Court's opinion."""
    m = _SEPARATE_OPINION.search(text)
    return text.count("\n", 0, m.start()) + 1 if m else None


def _surname(name: str) -> str:
    """ "ROBERTS" -> "Roberts", "O’CONNOR" -> "O’Connor"; a name already in mixed case is kept."""
    return re.sub(r"[A-Za-z]+", lambda m: m.group().capitalize(), name.lower()) if name.isupper() else name


def opinion_speaker(text: str) -> str | None:
    """Whose opinion a case document's main opinion is when the Court joins only some of its parts
    (:data:`_MIXED_OPINION`): "Chief Justice Roberts's opinion", "Justice Alito's opinion", or
    "the joint opinion of Justices O’Connor, Kennedy, and Souter" for several authors (Casey); None when the
    document has no such header (the whole opinion is the Court's, or it is no opinion at all)."""
    m = _MIXED_OPINION.search(text)
    if m is None:
        return None
    found = list(_JUSTICE.finditer(m.group("who")))
    if not found:
        return None  # a header that names no Justice: no one to attribute to, so the Court's voice stays
    names = [_surname(j.group("name") or j.group("short")) for j in found]
    if len(names) > 1:
        # "the joint opinion" alone names nothing the sample introduces (the gate's self_contained)
        return f"the joint opinion of Justices {', '.join(names[:-1])}{',' if len(names) > 2 else ''} and {names[-1]}"
    chief = (found[0].group("rank") or "").lower() == "chief justice" or bool(found[0].group("cj"))
    return f"{'Chief Justice' if chief else 'Justice'} {names[0]}'s opinion"


def misspelled_case_names(names_per_document: list[frozenset[str]]) -> frozenset[str]:
    """The case names a book spells two ways, in their rarer spelling: "Sherbet v. Verner" in one
    document of Gowder's casebook, "Sherbert v. Verner" in six (a sample naming the rarer one taught
    a wrong citation, read defective twice, O021/S019).

    Two names are spellings of one case when they have the same words but one, and that word differs
    by a letter or two inside it (same first three letters, five letters or more, similarity at least
    0.85): "Roe v. Wade" and "Doe v. Wade" are two cases. The rarer spelling must be in at most half as
    many documents as the other.

    Args:
        names_per_document: each document's full case names (:func:`~.attributed.case_names`).
    Returns: the rarer spellings.
    """
    count = Counter(name for names in names_per_document for name in names)
    out = set()
    for rare, n in count.items():
        words = rare.split()
        for other, m in count.items():
            if m < 2 * n or other == rare or len(other.split()) != len(words):
                continue
            diff = [(a, b) for a, b in zip(words, other.split()) if a != b]
            if len(diff) != 1:
                continue
            a, b = diff[0]
            if min(len(a), len(b)) >= 5 and a[:3] == b[:3] and SequenceMatcher(None, a, b).ratio() >= 0.85:
                out.add(rare)
    return frozenset(out)
