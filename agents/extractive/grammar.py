"""Word lists and small grammar helpers for building questions from sentences; sentence records."""

from __future__ import annotations

import re
from dataclasses import dataclass

from prepbench.agents.extractive.blocks import _URL_RE, Block
from prepbench.agents.extractive.text import clean_inline
from prepbench.tools.nlp import parse

# ---------------------------------------------------------------------------------------
# Word lists and small grammar helpers
# ---------------------------------------------------------------------------------------

_PRONOUNS = frozenset(
    "it its it's this these those they them their theirs he she his her him hers we us our ours such "
    "former latter aforementioned above below here herein thereof said one's".split()
)
_SOFT_PRONOUNS = frozenset("you your yours yourself".split())
_BAD_START = frozenset(
    "it this these those that they there here what which who whom whose one another each both all some many most "
    "such other others every he she we our their his her its however also and but or so then thus hence yet still "
    "again likewise similarly conversely instead finally first second third next last further furthermore moreover "
    "additionally nevertheless nonetheless otherwise now today meanwhile indeed perhaps only even just either neither "
    "where whereas notice note remember consider recall assume suppose imagine see look keep think let use enter press "
    "click select type go take make find calculate compute determine i my me following below above to people while although "
    "though since unless until whether after before once during because if when".split()
)
_GENERIC_HEADS = frozenset(
    "result results answer reason reasons problem problems example examples difference goal key idea point question "
    "issue issues solution purpose benefit advantage disadvantage thing things way ways fact case figure table step "
    "steps process method approach part parts rest same first second third last concept concepts amount number value "
    "values information data term terms word words one type types kind kinds form forms item items situation story "
    "outcome option options choice reality truth effect impact scenario".split()
)
_AUX = (
    "is",
    "are",
    "was",
    "were",
    "will",
    "would",
    "can",
    "could",
    "should",
    "must",
    "may",
    "might",
    "has",
    "have",
    "does",
    "do",
    "did",
)
_NUMWORDS = "two|three|four|five|six|seven|eight|nine|ten|several|\\d{1,2}"
_DISCOURSE_RE = re.compile(
    r"^(?:also|however|again|so|thus|therefore|hence|in addition|additionally|moreover|furthermore|similarly|likewise|"
    r"conversely|instead|in short|in other words|in general|generally|in fact|in practice|of course|simply put|"
    r"in essence|at its essence|consequently|as such|in effect|put simply|to put it simply|essentially|importantly|"
    r"ultimately|indeed|first|second|third|finally|then|next|now|here|overall|typically|usually|often|in summary|"
    r"in the end|in reality|today)\s*,\s*",
    re.I,
)
_ANCHORED_RE = re.compile(
    r"\b(this|the|that|our|each|previous|next|following|preceding|earlier|later|current|present) "
    r"(chapter|section|book|text|textbook|passage|module|unit|excerpt|reading|lesson|course|example|exercise|table|figure|discussion)s?\b"
    r"|\b(as|was|were|is|are|been|we) (mentioned|discussed|described|shown|noted|covered|seen|stated|explained|learned|defined|introduced)\b"
    r"|\b(above|below|earlier|previously|later)\b"
    r"|\b(figure|fig\.|table|exhibit|appendix|equation|eq\.|chapter|section|example|exercise|problem)\s*\(?\d+(\.\d+)*"
    r"|\blet(’|')?s\b|\blet us\b|\bwe will\b|\bwe have\b|\bwe can see\b|\bthe reader\b|\bthe author\b|\bthe student\b",
    re.I,
)
#: an author-year citation: "(Varkey, 2021)", "(Smith et al., 2019)", "(Lee & Park 2020a)"
AUTHOR_YEAR_RE = re.compile(r"\s*\((?:[A-Z][\w'’-]+(?: et al\.)?(?:,? (?:&|and) [A-Z][\w'’-]+)?),? (?:19|20)\d\d[a-z]?\)")
_CITE_PAREN_RE = re.compile(
    r"\s*\((?:see |as shown in |as in |refer to |cf\. )?(?:figure|fig\.|table|exhibit|appendix|equation|chapter|section|example)s?\s[\d.,\s–-]+(?:and \d[\d.]*)?\)",
    re.I,
)


_UI_RE = re.compile(
    r"(?i)\b(cells? [A-Z]{1,2}\d+|dialog box|click|button|drop-down|menu bar|keystroke|press(ing)? the|the \w+ key\b|spreadsheet shown|screenshot|tab in the menu)"
)
_PRONOUN_USE = frozenset(
    "is was are were means can will may would could has have does allows makes results shows leads gives helps".split()
)


def _dangling_demonstrative(t: str) -> bool:
    """True when 'this/these/those/such (a) X' points at something outside the sentence."""
    low = t.lower()
    if re.search(r"\bsuch (a|an)\b", low):
        return True
    for m in re.finditer(r"\b(this|these|those)\s+([a-z][a-z-]*)", low):
        nxt = m.group(2)
        if nxt in _PRONOUN_USE or nxt in ("is", "in", "to", "of", "and", "or", "as", "by", "for", "with", "on", "at"):
            return True
        stem = nxt[:5]
        if stem not in low[: m.start()]:
            return True
    return False


def _words(s: str) -> list[str]:
    return re.findall(r"[A-Za-z][A-Za-z-]*", s)


def _has_pronoun(s: str, soft: bool = False) -> bool:
    ws = {w.lower().strip("'’") for w in _words(s)}
    if ws & _PRONOUNS:
        return True
    return soft and bool(ws & _SOFT_PRONOUNS)


def _lc_first(phrase: str, chunk_lower: str) -> str:
    """Lower-case the phrase's first letter unless its first word is a name or acronym."""
    m = re.match(r"([A-Za-z][\w'’-]*)", phrase)
    if not m:
        return phrase
    w = m.group(1)
    if w.isupper() and len(w) > 1 or (len(w) > 1 and any(c.isupper() for c in w[1:])):
        return phrase
    if w[0].isupper() and re.search(r"['’]s$", w):
        return phrase  # a possessive of a name: "Kirchhoff's rules", "Newton's laws"
    if w.lower() in (
        "the",
        "a",
        "an",
        "any",
        "most",
        "some",
        "all",
        "each",
        "every",
        "many",
        "when",
        "if",
        "as",
        "why",
        "how",
        "what",
    ):
        return phrase[0].lower() + phrase[1:]
    nxt = re.match(r"[A-Za-z][\w'’-]*\s+(?:of |and |for |de |the )?([A-Za-z])", phrase)
    if nxt and nxt.group(1).isupper():
        return phrase  # a multi-word name ("Federal Reserve", "Bureau of Labor Statistics")
    if re.search(r"[a-z,;(] " + re.escape(w) + r"\b", chunk_lower):
        return phrase  # written capitalised mid-sentence: a name
    return phrase[0].lower() + phrase[1:]


def _cap_first(s: str) -> str:
    return s[:1].upper() + s[1:] if s else s


def _finish(s: str) -> str:
    s = s.strip()
    if s and s[-1] not in '.?!:"”)':
        s += "."
    return s


def _strip_discourse(s: str) -> str:
    prev = None
    while prev != s:
        prev = s
        s = _DISCOURSE_RE.sub("", s, count=1)
    return _cap_first(s)


def _verb_base(v: str) -> str | None:
    """Base form of a 3rd-person-singular verb (``identifies`` -> ``identify``), else None."""
    lv = v.lower()
    irregular = {"has": "have", "does": "do", "goes": "go", "is": "be"}
    if lv in irregular:
        return irregular[lv]
    if not lv.endswith("s") or lv.endswith(("ss", "us", "is", "ous")) or len(lv) < 4:
        return None
    if lv.endswith("ies"):
        return lv[:-3] + "y"
    if lv.endswith(("sses", "shes", "ches", "xes", "zes", "oes")):
        return lv[:-2]
    if lv.endswith("uses"):  # "focuses" -> "focus" but "causes" -> "cause": spelling cannot tell, the lemmatizer can
        return parse(f"It {lv} them.")[1].lemma_.lower()
    return lv[:-1]


#: vowel letters that sound as a consonant ("a European option", "a unit", "a one-time fee") and a
#: silent h ("an hour")
_CONSONANT_SOUND = re.compile(r"(?i)(eu|ewe|one\b|one-|once|uni|us[eu]|uti|ur[aeiou]|ubiq|uk)")
_SILENT_H = re.compile(r"(?i)(hour|honest|honou?r|heir)")


def indefinite_article(phrase: str) -> str:
    """``a`` or ``an`` for ``phrase``, by its first sound as far as spelling tells it (an acronym
    is read by its letters: "an MRI", "a CT scan")."""
    first = phrase.split()[0] if phrase.split() else ""
    if re.fullmatch(r"[A-Z]{2,}\w*", first):
        return "an" if first[0] in "AEFHILMNORSX" else "a"
    if _SILENT_H.match(phrase):
        return "an"
    return "an" if re.match(r"(?i)[aeiou]", phrase) and not _CONSONANT_SOUND.match(phrase) else "a"


def _article_ok(subject: str) -> bool:
    return bool(re.match(r"(?i)(the|a|an)\s", subject))


_NOT_HEAD_NOUNS = frozenset(
    "common important main major popular basic significant first last next other same latter former one two three four "
    "five most least best largest biggest smallest highest lowest greatest latest".split()
)


def _no_head_noun(phrase: str) -> bool:
    """True when a noun phrase ends without its noun ("two most common", "the largest")."""
    ws = _words(phrase)
    return bool(ws) and ws[-1].lower() in _NOT_HEAD_NOUNS


#: words that mark a clause, not a noun phrase, when they stand in a subject
_NOT_IN_SUBJECT = frozenset(
    "is are was were be been can could will would should must may might not if when because do does did has have had also often usually typically generally traditionally always still sometimes commonly simply actually really already".split()
)
#: -ing words that head noun phrases ("working capital", "underlying asset")
_NOUN_GERUNDS = frozenset("working operating financing accounting marketing trading lending banking pricing underlying".split())


def _valid_subject(subj: str, max_words: int = 8, allow_you: bool = False) -> bool:
    """A noun phrase usable as the topic of a question: short, no dangling pronoun, not vague."""
    if not subj or len(subj) > 100 or any(c in subj for c in ',;:?!"“”'):
        return False
    ws = _words(subj)
    if not ws or len(ws) > max_words:
        return False
    if ws[0].lower() in _BAD_START:
        return False
    if _has_pronoun(subj, soft=not allow_you):
        return False
    low = [w.lower() for w in ws]
    if any(w in _NOT_IN_SUBJECT for w in low):
        return False
    if ("that" in low or "which" in low or "who" in low) and not _article_ok(subj):
        return False
    if len(ws) > 1 and low[0].endswith("ing") and low[0] not in _NOUN_GERUNDS:
        return False
    if low[-1] in ("that", "which", "who", "of", "the", "a", "an", "and", "or", "to", "in", "for", "with", "by", "on", "as"):
        return False
    if _no_head_noun(subj):
        return False  # "The two most common", "The first", "The largest"
    content = [w for w in low if w not in ("the", "a", "an")]
    if not content or content[0] in ("following", "foregoing", "above", "below", "latter", "former", "same"):
        return False  # "The following is ...": points at text outside the sentence
    if len(content) <= 2 and content[-1] in _GENERIC_HEADS:
        return False
    if re.search(r"\d+\.\d+", subj):
        return False
    if re.search(r"(?i)\b(figure|table|exhibit|example|section|chapter)\b", subj):
        return False
    return True


# ---------------------------------------------------------------------------------------
# Sentence records
# ---------------------------------------------------------------------------------------


@dataclass
class Sent:
    """A sentence of a content block: verbatim ``raw`` and readable ``text``."""

    raw: str
    text: str
    block: int
    pos: int  # index within the block
    heading: str
    quote: int
    bold_terms: list[str]
    multiline: bool


def _bold_terms(raw: str) -> list[str]:
    return [clean_inline(t).strip(" :") for t in re.findall(r"\*\*([^*]{2,80})\*\*", raw)]


def _usable_block(b: Block) -> bool:
    if b.kind not in ("para", "item"):
        return False
    if b.section in ("outcomes", "refs", "non_knowledge"):
        return False
    t = b.raw.lstrip()
    if re.match(r"(?i)^\(?\s*(sources?|credits?|photo credit|image credit)\s*:", clean_inline(t)):
        return False
    if _URL_RE.search(t) and len(_URL_RE.findall(t)) >= 1 and len(clean_inline(t)) < 400:
        return False
    return True


_COMMON_VERBS_BASE = frozenset(
    "increase decrease lead cause make require allow provide tend affect reduce generate create prefer use need rely earn pay "
    "receive want choose have charge offer issue follow depend rise fall grow decline change help seek hold buy sell invest "
    "borrow lend face bear demand expect prefer avoid keep lose gain benefit compete operate report record recognize".split()
)
_COMMON_VERBS_3SG = frozenset(
    w + ("es" if w.endswith(("s", "sh", "ch", "x", "z", "o")) else "s")
    if not (w.endswith("y") and w[-2] not in "aeiou")
    else w[:-1] + "ies"
    for w in _COMMON_VERBS_BASE
) | {"has"}


_AUX_START = re.compile(
    r"(?i)^\s*(?:[,;:)]|(?:can|could|is|are|was|were|will|would|may|might|must|should|shall|has|have|had|does|do|did)\b)"
)


def _verb_is_a_noun(subj: str, verb: str, rest: str) -> bool:
    """True when the matched 'verb' is the end of a noun phrase: it is followed by a modal,
    an auxiliary or punctuation, or it is a plural form after a singular subject
    ("The sample mean can be calculated", "The arithmetic mean, median, and mode are")."""
    if _AUX_START.match(rest):
        return True
    v0 = verb.split(" ")[0]
    head = subj.split(" (")[0].split()[-1].lower() if subj.split() else ""
    plural_subject = head.endswith("s") and not head.endswith(("ss", "us", "is")) or " and " in subj or head in ("data", "people")
    return not v0.endswith("s") and not plural_subject
