"""The offline ``extractive`` generator: rule-based samples from a chunk's own sentences.

No LLM and no model weights: pure-Python regular expressions over the chunk's Markdown.
The generator is the ``extractive`` model spec of the skill-guided agent
(:mod:`prepbench.agents.skill`) and implements the
:class:`~prepbench.agents.base.Generator` protocol.

What it reads (the text structures of OpenStax-style textbooks and long-form prose):

* definitions: ``**term**: definition`` glossary entries, "X is/are a ...", "X refers
  to ...", "X is defined as ...", "X is known as / called ...";
* enumerations: an intro sentence followed by a list ("... are as follows:", "the
  following ...", "There are three ...") and inline "divided into N ...: a, b and c";
* cause and effect: "because", "leads to", "results in", "causes";
* conditions: "If ..., ...", "When ..., ...", "As <quantity> increases, ...";
* question headings ("What Is a Fixed Asset?") answered by the section's first sentences;
* worked examples: block-quoted problems with a ``**Solution:**`` (calculator step tables,
  display math, solution sentences) and scenario paragraphs that ask a question and are
  followed by their computation;
* procedures: numbered lists under a "How to ..." title or a "steps"/"process" lead
  sentence, "To <goal>, <method>" sentences followed by a formula, and causal chains
  ("If ..., ... This then ... As a result ...").

Every candidate records its ``evidence``: verbatim substrings of ``chunk.text`` (the
``evidence_in_chunk`` rule of :mod:`prepbench.tools.validate`). Questions and answers are
the source sentences with Markdown cleaned (bold, links, ``\\$``, footnote markers, simple
LaTeX made readable); questions are built only from sentence parts without dangling
pronouns and never cite "Figure 4"/"Table 3.1" or "this section".

Triage uses the Data-Construction-Skill's nine skip reasons (navigation, non_knowledge,
pedagogy, heading_only, low_information, noisy, broken_ocr, duplicate_scope, index_like),
restricted to those the skill's ``coverage.yaml`` allows (fallback ``low_information``).

Sample types are mapped by their schema's ``x-prepbench-form`` (``concept_qa``,
``process_qa``, ``case_application``) so skills with their own sample types reuse the
three extractors; fields a type's schema requires but the extractor cannot fill make the
generator produce nothing for that type.
"""

from __future__ import annotations

import functools
import re
import time
from dataclasses import dataclass, field
from typing import Any, Iterable

from prepbench.agents.base import Triage
from prepbench.tools.chunking import Chunk
from prepbench.tools.ledger import CallRecord
from prepbench.tools.skills import Skill

# ---------------------------------------------------------------------------------------
# Markdown blocks
# ---------------------------------------------------------------------------------------

_HEADING_RE = re.compile(r"^(#{1,6})[ \t]+(.+?)[ \t#]*$")
_QUOTE_RE = re.compile(r"^\s{0,3}>[ \t]?")
_ITEM_RE = re.compile(r"^(\s*)([-*+]|\d{1,3}[.)])\s+(\S.*)$")
_CAPTION_RE = re.compile(r"^\*\s*(Figure|Fig\.|Image|Photo|Video)\b.*\*\s*$", re.I)
_TABLE_LABEL_RE = re.compile(r"^\*\*(Table|Figure|Exhibit)\s[^*]*\*\*\s*$", re.I)
_BOLD_LINE_RE = re.compile(r"^\*\*([^*]{2,200})\*\*\s*:?\s*$")
_SOLUTION_RE = re.compile(r"^\*\*\s*(Solution|Answer|Solutions)\s*:?\s*\*\*\s*:?", re.I)
_PROBLEM_NO_RE = re.compile(r"^\*\*\s*(\d{1,3})\s*\.?\s*\*\*\s*")
_URL_RE = re.compile(r"https?://|www\.", re.I)

_OUTCOME_HEAD_RE = re.compile(
    r"^(learning (outcomes|objectives)|objectives|chapter outline|outline|contents|table of contents|in this chapter|introduction to the chapter)$",
    re.I,
)
_REF_HEAD_RE = re.compile(
    r"^(footnotes?|notes|endnotes|references|bibliography|works cited|sources|further readings?|suggested readings?|citations|credits?|index)\b",
    re.I,
)
_GLOSSARY_HEAD_RE = re.compile(r"^(glossary|key terms|vocabulary|definitions)$", re.I)
_EXERCISE_HEAD_RE = re.compile(
    r"^(\d+(\.\d+)*\s+)?(exercises?|review questions?|questions|problems|practice( problems)?|homework|multiple choice|"
    r"critical thinking( questions)?|check your understanding|self[- ]check|discussion questions|video activity|"
    r"additional exercises|chapter review|quiz|reading questions|review|problem set|exercises?\b.*)$",
    re.I,
)
_NON_KNOWLEDGE_HEAD_RE = re.compile(
    r"^(acknowledg(e)?ments?|about the authors?|preface|dedication|colophon|imprint|uncopyright|.*\b(licen[cs]e|copyright)\b.*)$",
    re.I,
)
_OUTCOME_LINE_RE = re.compile(r"^by the end of this (section|chapter|module|unit)\b.*(able to|will)\b", re.I)


@dataclass
class Block:
    """One Markdown block of a chunk.

    ``raw`` is a verbatim substring of the chunk text (quote prefix and list marker
    removed); ``kind`` is heading, para, item, table, math, caption or label.
    """

    kind: str
    raw: str
    heading: str = ""
    section: str = ""  # outcomes | refs | glossary | exercises | non_knowledge | ""
    quote: int = -1  # quote group id, -1 outside block quotes
    ordered: bool = False
    indent: int = 0
    lines: list[str] = field(default_factory=list)  # table rows / math lines (verbatim)
    multiline: bool = False  # raw spans several source lines


def _strip_quote(line: str) -> tuple[bool, str]:
    m = _QUOTE_RE.match(line)
    if not m:
        return False, line
    rest = line[m.end() :]
    # nested quotes: strip repeatedly
    while True:
        m2 = _QUOTE_RE.match(rest)
        if not m2:
            break
        rest = rest[m2.end() :]
    return True, rest


def _dollar_count(s: str) -> int:
    return len(re.findall(r"(?<!\\)\$", s))


def _section_of(title: str) -> str:
    t = clean_inline(title).strip().rstrip(":").strip()
    t = re.sub(r"^\d+(\.\d+)*\s+", "", t)
    if _OUTCOME_HEAD_RE.match(t):
        return "outcomes"
    if _REF_HEAD_RE.match(t):
        return "refs"
    if _GLOSSARY_HEAD_RE.match(t):
        return "glossary"
    if _EXERCISE_HEAD_RE.match(t):
        return "exercises"
    if _NON_KNOWLEDGE_HEAD_RE.match(t):
        return "non_knowledge"
    return ""


def parse_blocks(text: str, heading: str = "") -> list[Block]:
    """Split a chunk's Markdown into :class:`Block` objects in document order.

    Args:
        text: the chunk text.
        heading: the heading in force at the chunk's start (its ``heading_path[-1]``).

    Returns:
        Blocks; every ``raw``/``lines`` string occurs verbatim in ``text``.
    """
    lines = text.split("\n")
    blocks: list[Block] = []
    section = _section_of(heading) if heading else ""
    qcount = 0
    in_quote = False
    i = 0
    n = len(lines)
    while i < n:
        line = lines[i]
        quoted, body = _strip_quote(line)
        if quoted:
            if not in_quote:
                qcount += 1
                in_quote = True
        elif line.strip():
            in_quote = False
        elif not line.strip():
            in_quote = False
            i += 1
            continue
        qid = qcount if quoted else -1
        s = body.strip()
        if not s:
            i += 1
            continue
        m = _HEADING_RE.match(body) if not quoted else None
        if m:
            heading = clean_inline(m.group(2))
            section = _section_of(m.group(2))
            blocks.append(Block("heading", m.group(2).strip(), heading=heading, section=section))
            i += 1
            continue
        if re.match(r"^\[\^[^\]]+\]:", s):
            blocks.append(Block("para", s, heading=heading, section="refs", quote=qid))
            i += 1
            continue
        if _OUTCOME_LINE_RE.match(clean_inline(s)):
            section = "outcomes"
            blocks.append(Block("para", s, heading=heading, section=section, quote=qid))
            i += 1
            continue
        if s.startswith("$$"):
            mlines = [s]
            closed = len(s) > 2 and s.endswith("$$") and s != "$$"
            j = i + 1
            while not closed and j < n:
                _, b2 = _strip_quote(lines[j])
                mlines.append(b2.rstrip())
                if b2.rstrip().endswith("$$"):
                    closed = True
                j += 1
            blocks.append(
                Block(
                    "math", "\n".join(mlines), heading=heading, section=section, quote=qid, lines=[x for x in mlines if x.strip()]
                )
            )
            i = j
            continue
        if s.startswith("|"):
            rows = []
            j = i
            while j < n:
                q2, b2 = _strip_quote(lines[j])
                if not b2.strip().startswith("|"):
                    break
                rows.append(b2.strip())
                j += 1
            blocks.append(Block("table", "\n".join(rows), heading=heading, section=section, quote=qid, lines=rows))
            i = j
            continue
        if _CAPTION_RE.match(s):
            blocks.append(Block("caption", s, heading=heading, section=section, quote=qid))
            i += 1
            continue
        if _TABLE_LABEL_RE.match(s):
            blocks.append(Block("label", s, heading=heading, section=section, quote=qid))
            i += 1
            continue
        kind = "para"
        ordered = False
        indent = len(body) - len(body.lstrip())
        mi = _ITEM_RE.match(body)
        content = s
        if mi:
            kind = "item"
            ordered = mi.group(2)[0].isdigit()
            content = mi.group(3).strip()
            indent = len(mi.group(1))
        # a paragraph whose inline math spans lines continues until the $ balance is even
        multiline = False
        j = i + 1
        while _dollar_count(content) % 2 == 1 and j < n and j - i < 40:
            q2, b2 = _strip_quote(lines[j])
            if not b2.strip() or q2 != quoted:
                break
            content = content + "\n" + b2
            multiline = True
            j += 1
        if section == "outcomes" and kind == "para" and blocks and blocks[-1].kind == "item" and blocks[-1].section == "outcomes":
            section = ""  # the outcomes list has ended
        blocks.append(
            Block(kind, content, heading=heading, section=section, quote=qid, ordered=ordered, indent=indent, multiline=multiline)
        )
        i = j
    return blocks


# ---------------------------------------------------------------------------------------
# Cleaning Markdown and LaTeX into readable text
# ---------------------------------------------------------------------------------------

_LATEX_SYMBOLS = {
    r"\times": "×",
    r"\div": "÷",
    r"\cdot": "·",
    r"\pm": "±",
    r"\leq": "≤",
    r"\le": "≤",
    r"\geq": "≥",
    r"\ge": "≥",
    r"\neq": "≠",
    r"\approx": "≈",
    r"\infty": "∞",
    r"\sigma": "σ",
    r"\mu": "μ",
    r"\beta": "β",
    r"\alpha": "α",
    r"\rho": "ρ",
    r"\Delta": "Δ",
    r"\delta": "δ",
    r"\sum": "Σ",
    r"\Sigma": "Σ",
    r"\pi": "π",
    r"\lambda": "λ",
    r"\theta": "θ",
    r"\epsilon": "ε",
    r"\gamma": "γ",
    r"\ldots": "...",
    r"\cdots": "...",
    r"\dots": "...",
    r"\rightarrow": "→",
    r"\to": "→",
    r"\in": "∈",
    r"\prime": "'",
    r"\%": "%",
    r"\$": "$",
    r"\&": "&",
    r"\#": "#",
    r"\_": "_",
}
_LATEX_SYM_RE = re.compile("|".join(re.escape(k) + r"(?![A-Za-z])" for k in sorted(_LATEX_SYMBOLS, key=len, reverse=True)))
_TEXT_CMD_RE = re.compile(r"\\(?:text|mathrm|textit|textbf|mathit|mathbf|operatorname|textrm|mbox|mathsf)\s*\{([^{}]*)\}")
_FRAC_RE = re.compile(r"\\[dt]?frac\s*\{([^{}]*)\}\s*\{([^{}]*)\}")
_SQRT_RE = re.compile(r"\\sqrt\s*\{([^{}]*)\}")


@functools.lru_cache(maxsize=32768)
def latex_to_text(tex: str) -> str:
    """Readable plain text for simple LaTeX (inline or display math).

    ``\\text{Interest\\ Earned} = \\$ 1,000 \\times 0.04`` -> ``Interest Earned = $1,000 × 0.04``;
    fractions become ``(a)/(b)``, powers ``^n``/``^(...)``, matrix rows are joined with ``; ``.
    """
    s = tex.strip().strip("$").strip()
    s = re.sub(r"\\begin\{(?:matrix|array|aligned|align\*?|pmatrix|bmatrix|cases|split)\}(\{[^}]*\})?", "", s)
    s = re.sub(r"\\end\{(?:matrix|array|aligned|align\*?|pmatrix|bmatrix|cases|split)\}", "", s)
    s = s.replace("\\\\", " ; ")
    s = s.replace("&", " ")
    s = re.sub(r"\\left\s*|\\right\s*|\\big[lr]?\s*|\\Big[lr]?\s*", "", s)
    s = re.sub(r"(\\[A-Za-z]+)\s+\{", r"\1{", s)  # "\frac {a}" -> "\frac{a}"
    for _ in range(8):
        # a bare group (not a command's argument, nor a power or index): "( {1 + r} )" -> "( 1 + r )"
        s2 = re.sub(r"(?<![\w}^_])\{([^{}]*)\}(?!\^)", r"\1", s)
        s2 = _TEXT_CMD_RE.sub(r"\1", s2)
        s2 = re.sub(r"\^\{([\w.]+)\}", r"^\1", s2)
        s2 = re.sub(r"_\{([\w.]+)\}", r"_\1", s2)
        s2 = re.sub(r"\{([^{}\\^_]*)\}(?=\^)", r"(\1)", s2)
        s2 = _FRAC_RE.sub(r"(\1)/(\2)", s2)
        s2 = _SQRT_RE.sub(r"√(\1)", s2)
        if s2 == s:
            break
        s = s2
    s = re.sub(r"\\left\s*|\\right\s*|\\big[lr]?\s*|\\Big[lr]?\s*", "", s)
    s = (
        s.replace("\\ ", " ")
        .replace("\\,", " ")
        .replace("\\;", " ")
        .replace("\\!", "")
        .replace("\\quad", " ")
        .replace("\\qquad", " ")
    )
    s = s.replace("~", " ")
    s = _LATEX_SYM_RE.sub(lambda m: _LATEX_SYMBOLS[m.group(0)], s)
    s = re.sub(
        r"\^\{([^{}]*)\}", lambda m: "^" + (m.group(1) if re.fullmatch(r"[\w.]+", m.group(1)) else "(" + m.group(1) + ")"), s
    )
    s = re.sub(
        r"_\{([^{}]*)\}", lambda m: "_" + (m.group(1) if re.fullmatch(r"[\w.]+", m.group(1)) else "(" + m.group(1) + ")"), s
    )
    s = re.sub(r"\\[A-Za-z]+", "", s)
    s = s.replace("{", "").replace("}", "")
    s = re.sub(r"\$\s+(?=\d)", "$", s)
    s = re.sub(r"\s*;\s*(;\s*)+", "; ", s)
    s = re.sub(r"\s+", " ", s).strip(" ;")
    return s


_INLINE_MATH_RE = re.compile(r"(?<!\\)\$(?!\$)((?:\\\$|[^$])+?)(?<!\\)\$")


@functools.lru_cache(maxsize=65536)
def clean_inline(raw: str) -> str:
    """Markdown/LaTeX markup of one block or sentence -> readable plain text.

    Bold/italic markers dropped, ``[text](url)`` -> text, ``\\$`` -> ``$``, footnote
    ``<sup>1</sup>`` markers dropped, ``<sub>x</sub>`` -> x, inline math made readable.
    """
    s = raw.replace("\n", " ")
    s = re.sub(r"\$\$(.+?)\$\$", lambda m: latex_to_text(m.group(1)), s)
    s = _INLINE_MATH_RE.sub(lambda m: latex_to_text(m.group(1)), s)
    s = re.sub(r"!\[([^\]]*)\]\([^)]*\)", r"\1", s)
    s = re.sub(r"\[([^\]]+)\]\((?:[^()]|\([^)]*\))*\)", r"\1", s)
    s = re.sub(r"(?<=[A-Za-z.,;:!?”’\")\]])<sup>\s*\d{1,3}\s*</sup>", "", s)
    s = re.sub(r"<sup>\s*([^<]*?)\s*</sup>", lambda m: "^" + m.group(1) if len(m.group(1)) <= 3 else "^(" + m.group(1) + ")", s)
    s = re.sub(r"<sub>\s*([^<]*?)\s*</sub>", r"\1", s)
    s = re.sub(r"</?(?:u|mark|em|strong|i|b|span|br|small|big)[^>]*>", "", s)
    s = re.sub(r"<!--.*?-->", "", s)
    s = re.sub(r"\*\*|__", "", s)
    s = re.sub(r"(?<![\w*\\])\*(?=\S)([^*]+?)(?<=\S)\*(?![\w*])", r"\1", s)
    s = re.sub(r"(?<![\w\\])_(?=\S)([^_]+?)(?<=\S)_(?![\w])", r"\1", s)
    s = s.replace("`", "")
    s = re.sub(r"\\([$|\[\]_*#&%{}<>~^\\-])", r"\1", s)
    s = re.sub(r"\s+", " ", s).strip()
    s = re.sub(r"\s+([,.;:?!)])", r"\1", s)
    s = re.sub(r"([(])\s+", r"\1", s)
    return s


# ---------------------------------------------------------------------------------------
# Sentences
# ---------------------------------------------------------------------------------------

_ABBREV = frozenset(
    "e.g i.e etc inc co corp ltd llc u.s u.k u.n mr mrs ms dr st vs no nos jr sr approx fig figs eq eqs "
    "p pp vol vols ed eds al jan feb mar apr jun jul aug sep sept oct nov dec dept est govt prof rev "
    "gen col capt lt sgt hon cf ca viz op cit ibid ch chap sec art arts".split()
)


def _mask(raw: str) -> str:
    """Same-length copy of ``raw`` with math and escaped dollars neutralised (for splitting)."""
    out = raw.replace("\\$", "SS")
    out = re.sub(r"\$\$.+?\$\$", lambda m: "x" * len(m.group(0)), out, flags=re.S)
    out = re.sub(r"\$[^$]+\$", lambda m: "x" * len(m.group(0)), out, flags=re.S)
    out = re.sub(
        r"\([^()]{0,200}\)", lambda m: "(" + m.group(0)[1:-1].replace(".", ",").replace("?", ",").replace("!", ",") + ")", out
    )
    return out


def split_sentences(raw: str) -> list[str]:
    """Verbatim sentences of a block's raw text (periods in math, abbreviations and
    parentheses do not end a sentence)."""
    return list(_split_sentences(raw))


@functools.lru_cache(maxsize=32768)
def _split_sentences(raw: str) -> tuple[str, ...]:
    mask = _mask(raw)
    out: list[str] = []
    start = 0
    for m in re.finditer(r"[.!?]+[\"”’')\]*_]*(?:<sup>[^<]{0,12}</sup>)?(?=\s|$)", mask):
        end = m.end()
        rest = mask[end:]
        nxt = re.match(r"\s+(\S)", rest)
        if nxt is not None:
            ch = nxt.group(1)
            if not (ch.isupper() or ch.isdigit() or ch in "\"“‘'(*[$\\_<"):
                continue
        tok = re.search(r"(\S+)$", mask[start : m.start() + 1])
        if tok and mask[m.start()] == ".":
            word = tok.group(1).strip("(\"“‘'*_").lower().rstrip(".")
            if word in _ABBREV or re.fullmatch(r"[a-z]", word) or re.fullmatch(r"([a-z]\.)+[a-z]", word):
                continue
        piece = raw[start:end].strip()
        if piece:
            out.append(piece)
        start = end
    tail = raw[start:].strip()
    if tail:
        out.append(tail)
    return tuple(out)


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
    return lv[:-1]


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
    if any(
        w
        in (
            "is",
            "are",
            "was",
            "were",
            "be",
            "been",
            "can",
            "could",
            "will",
            "would",
            "should",
            "must",
            "may",
            "might",
            "not",
            "if",
            "when",
            "because",
            "do",
            "does",
            "did",
            "has",
            "have",
            "had",
            "also",
            "often",
            "usually",
            "typically",
            "generally",
            "traditionally",
            "always",
            "still",
            "sometimes",
            "commonly",
            "simply",
            "actually",
            "really",
            "already",
        )
        for w in low
    ):
        return False
    if ("that" in low or "which" in low or "who" in low) and not _article_ok(subj):
        return False
    if (
        len(ws) > 1
        and low[0].endswith("ing")
        and low[0]
        not in (
            "working",
            "operating",
            "financing",
            "accounting",
            "marketing",
            "trading",
            "lending",
            "banking",
            "pricing",
            "underlying",
        )
    ):
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


# ---------------------------------------------------------------------------------------
# Candidates (form-level; mapped onto sample types later)
# ---------------------------------------------------------------------------------------


@dataclass
class Cand:
    form: str  # concept_qa | process_qa | case_application
    fields: dict[str, Any]
    evidence: list[str]
    kind: str  # definition, enumeration, ... (for the mix)
    score: float
    key: str  # dedup key within the chunk (sentence raw)


def _concept(question: str, answer: str, qtype: str, kp: str, evidence: list[str], score: float, key: str) -> Cand:
    kp = re.sub(r"^(?i:the|a|an)\s+", "", kp).strip()
    kp = kp[:117].rstrip() + "..." if len(kp) > 120 else kp
    return Cand(
        "concept_qa",
        {"question": question, "answer": answer, "question_type": qtype, "knowledge_point": kp or question[:60]},
        evidence,
        qtype,
        score,
        key,
    )


def _novel_enough(question: str, answer: str, min_novelty: float = 0.25) -> bool:
    """True when at least ``min_novelty`` of the answer's content words are not in the question."""
    stop = {
        "a",
        "an",
        "the",
        "of",
        "to",
        "in",
        "on",
        "for",
        "and",
        "or",
        "is",
        "are",
        "was",
        "were",
        "be",
        "by",
        "with",
        "as",
        "at",
        "from",
        "that",
        "this",
        "what",
        "which",
        "how",
        "why",
        "when",
        "does",
        "do",
        "it",
        "its",
    }
    qw = {w.lower() for w in _words(question)} - stop
    aw = [w.lower() for w in _words(answer) if w.lower() not in stop]
    if len(aw) < 4:
        return False
    return sum(1 for w in aw if w not in qw) / len(aw) >= min_novelty


class _Extractor:
    """Runs every extractor over one chunk."""

    def __init__(self, chunk: Chunk):
        self.chunk = chunk
        head = chunk.heading_path[-1] if chunk.heading_path else ""
        self.blocks = parse_blocks(chunk.text, head)
        self.chunk_lower = " " + re.sub(r"[^\w\s'’-]", " ", clean_inline(chunk.text)) + " "
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
        t = _CITE_PAREN_RE.sub("", s.text)
        t = _strip_discourse(t)
        if s.multiline and s.quote >= 0:
            return None
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
                q = f"How does {art + ' ' if art else ''}{tq} work?"
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
            definition = clean_inline(m.group("def")).strip()
            if not term or _has_pronoun(term) or len(_words(term)) > 10 or "\\" in definition or len(definition.split()) < 3:
                continue
            if re.match(r"(?i)(solution|answer|note|notes|example|step|steps|source|sources|table|figure|hint|tip)s?$", term):
                continue
            d0 = definition.split()[0].lower() if definition.split() else ""
            if definition[:1].isupper() and not re.match(r"[A-Z]{2,}", definition) or re.match(r"(?i)using\b", term):
                continue  # a label followed by prose, not a glossary entry
            if d0 in (
                "also",
                "see",
                "same",
                "synonym",
                "abbreviation",
                "in",
                "on",
                "at",
                "by",
                "for",
                "of",
                "with",
                "from",
                "as",
                "if",
                "used",
                "see",
            ):
                continue
            name = bool(re.match(r"[A-Z][a-z]+ (?:(?:of|and|for|the) )*[A-Z]", term))
            head = re.split(r" (?:of|for|in|on|to|from|with|under|between|per) ", term.split(" (")[0])[0].split()[-1]
            plural = bool(re.search(r"(?<![su])s$", head)) and not re.search(r"(?i)(ss|ics|sis|us|ness)$", head)
            verb = "are" if plural else "is"
            tq = _lc_first(term, self.chunk_lower)
            if name:
                question = f"What {verb} the {term}?"
                subj = f"The {term}"
            elif d0 in ("a", "an") and not plural:
                art = "an" if re.match(r"(?i)[aeio]|u[^n]", tq) else "a"
                question = f"What is {art} {tq}?"
                subj = f"{_cap_first(art)} {tq}"
            elif plural:
                question = f"What are {tq}?"
                subj = _cap_first(tq)
            else:
                question = f"What is meant by {tq}?"
                subj = _cap_first(tq)
            if plural and (d0 in _COMMON_VERBS_BASE or re.search(r"(ate|ize|ise|ify)$", d0)):
                answer = f"{subj} {definition}"
            elif d0 in ("a", "an", "the", "one", "any", "all", "each") or plural and not d0.endswith("ing"):
                answer = f"{subj} {verb} {definition}"
            elif d0.endswith("ing") or d0 in ("to", "when", "where", "how", "what", "whether", "why"):
                answer = f"{subj} refers to {definition}" if not plural else f"{subj} refer to {definition}"
            elif d0.endswith("s") and not d0.endswith("ss"):
                answer = f"{subj} {verb} {definition}"
            else:
                answer = f"{subj} {verb} the {definition}"
            answer = _finish(answer)
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
            # X is/are a/an/the ...
            m = re.match(
                r"^(?P<subj>[^,;:()]{2,90}?(?: \([A-Z][\w&./ -]{0,20}\))?) (?P<verb>is|are) (?P<adv>(?:often |also |commonly |typically |sometimes |usually |generally |simply )?)"
                r"(?P<rest>(?:defined as|known as|called|referred to as|termed|considered|one of|a|an|the)\b.*)$",
                t,
            )
            if m:
                subj, verb, adv, rest = m.group("subj").strip(), m.group("verb"), m.group("adv"), m.group("rest")
                if not _valid_subject(subj):
                    continue
                if re.match(r"(?i)the (most|case|same|following|answer|result|first|last|next|only|opposite|reverse)\b", rest):
                    continue
                if len(_words(rest)) < 4:
                    continue
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
                elif rest.startswith("considered"):
                    q = f"What {verb} {sq} {adv}considered?"
                    qt = "fact"
                else:
                    if adv.strip() in ("also",):
                        continue
                    q = f"What {verb} {sq}?"
                    qt = (
                        "comparison"
                        if re.search(r"(?i)\b(difference|differences|versus|vs\.?|compared)\b", subj)
                        else "definition"
                    )
                ev = [s.raw]
                if not _novel_enough(q, ans):
                    nxt = self.next_sentence(s, subj)
                    if nxt is None:
                        continue
                    ans = ans + " " + nxt[0]
                    ev.append(nxt[1])
                if not self.question_ok(q) or not _novel_enough(q, ans):
                    continue
                out.append(_concept(q, ans, qt, subj, ev, 2.0 + bonus, s.raw))
                continue
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
                    continue
                if _verb_is_a_noun(subj, verb, rest):
                    continue  # "The sample mean can be ...", "The arithmetic mean, median, ..."
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
                    continue
                if re.match(
                    r"(?i)((the|these|some|other) )?(topics?|advantages?|disadvantages?|benefits?|examples?|others?|things?|items?|uses?|reasons?|factors?|results?|answers?|steps?)$",
                    subj,
                ):
                    continue
                if not self.question_ok(q) or not _novel_enough(q, ans):
                    continue
                out.append(_concept(q, ans, qt, subj, [s.raw], 1.8 + bonus, s.raw))
                continue
            # Y is considered (a) **term** -> What is considered a term?
            m = re.match(
                r"^(?P<what>.{10,200}?) (?P<verb>is|are) (?P<how>considered|called|known as|referred to as|classified as|termed) (?P<term>(?:an? |the )?[^,;]{2,60}?)\.?$",
                t,
            )
            if m and s.bold_terms:
                term = m.group("term").strip()
                if any(clean_inline(bt).lower() in term.lower() for bt in s.bold_terms) and not _has_pronoun(term):
                    if not _has_pronoun(m.group("what")) and m.group("what").split()[0].lower() not in (
                        "this",
                        "that",
                        "such",
                        "it",
                    ):
                        q = f"What {m.group('verb')} {m.group('how')} {_lc_first(term, self.chunk_lower)}?"
                        if self.question_ok(q) and _novel_enough(q, ans):
                            out.append(_concept(q, ans, "definition", term, [s.raw], 2.5, s.raw))
        return out

    def _inverted_why(self, clause: str) -> str | None:
        """'Dealers increase liquidity' -> 'Why do dealers increase liquidity?' (None if unsure)."""
        clause = clause.strip().rstrip(".,;")
        if re.search(r"[,;:]", re.sub(r"\([^)]*\)", "", clause)):
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
                    if verb.startswith(("can ", "will ")):
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
                            q = f"What effect {'does' if base else 'do'} {subj} have?"
                        else:
                            q = f"What {'does' if base else 'do'} {subj} {base or v0}?"
                    kp = m.group("subj")
            if q is None:
                m = re.match(r"^(?:As a result of|Due to|Because of) (?P<cause>[^,]{8,150}), (?P<main>.{15,})$", t)
                if m and not _has_pronoun(m.group("cause")) and m.group("cause").split()[0].lower() not in _BAD_START:
                    q = f"What is a consequence of {_lc_first(m.group('cause'), self.chunk_lower)}?"
                    kp = m.group("cause")
            if q is None or not self.question_ok(q) or not _novel_enough(q, ans):
                continue
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
            q = f"What happens {conj.lower()} {_lc_first(cond, self.chunk_lower)}?"
            if not self.question_ok(q) or not _novel_enough(q, ans):
                continue
            out.append(_concept(q, ans, "condition", cond, [s.raw], 1.5, s.raw))
        return out

    def _items_after(self, bi: int) -> list[int]:
        """Indices of the list items that directly follow block ``bi`` (same quote, same level)."""
        items = []
        j = bi + 1
        base_indent = None
        while j < len(self.blocks):
            b = self.blocks[j]
            if b.kind == "item" and b.quote == self.blocks[bi].quote:
                if base_indent is None:
                    base_indent = b.indent
                if b.indent == base_indent:
                    items.append(j)
                j += 1
                continue
            if b.kind in ("caption",) or (b.kind == "para" and b.indent > 2 and items):
                j += 1
                continue
            break
        return items

    def _item_sentence(self, j: int) -> tuple[str, str] | None:
        b = self.blocks[j]
        ss = split_sentences(b.raw)
        if not ss:
            return None
        raw = ss[0]
        t = clean_inline(raw)
        t = _CITE_PAREN_RE.sub("", t)
        if "\\" in t or "{" in t or len(t) < 3 or _URL_RE.search(t):
            return None
        return raw, t.rstrip(".;,")

    def enumerations(self) -> list[Cand]:
        out = []
        for s in self.sents:
            t = _strip_discourse(self.qclean(s.text))
            q = None
            # inline: X is divided into three Y: a, b, and c
            m = re.match(
                rf"^(?P<subj>[^,;:]{{2,80}}?) (?P<be>is|are|can be) (?P<v>divided|classified|categorized|grouped|separated|broken down|split|organized) into (?P<n>{_NUMWORDS}) (?P<np>[^:]{{3,80}}?):\s*(?P<list>.+)$",
                t,
            )
            if m and _valid_subject(m.group("subj")) and not _has_pronoun(m.group("np")):
                sq = _lc_first(m.group("subj"), self.chunk_lower)
                be = m.group("be")
                q = f"Into what {m.group('n')} {m.group('np')} {be.split()[0]} {sq} {'be ' if be == 'can be' else ''}{m.group('v')}?"
                ans = self.answer_text(s)
                if ans and self.question_ok(q):
                    out.append(_concept(q, ans, "enumeration", m.group("subj"), [s.raw], 2.4, s.raw))
                continue
            m = re.match(rf"^The (?P<n>{_NUMWORDS}) (?P<np>[a-z][^,;:]{{3,90}}?) (?P<be>are|include)\b:? (?P<list>.{{10,}})$", t)
            if m and not _has_pronoun(m.group("np")) and not _no_head_noun(m.group("np")):
                q = f"What are the {m.group('n')} {m.group('np')}?"
                ans = self.answer_text(s)
                if ans and self.question_ok(q) and _novel_enough(q, ans):
                    out.append(_concept(q, ans, "enumeration", m.group("np"), [s.raw], 2.4, s.raw))
                continue
            # "There are two X. These are A and B."
            m = re.match(rf"^There (?:are|were) (?P<n>{_NUMWORDS}) (?P<np>[a-z][^,;:]{{3,90}}?)\.?$", t)
            if m and not _has_pronoun(m.group("np")):
                nxt = [x for x in self.block_sents.get(s.block, []) if x.pos == s.pos + 1]
                if nxt and re.match(r"^(These|They) (are|include)\b", nxt[0].text) and not nxt[0].multiline:
                    q = f"What are the {m.group('n')} {m.group('np')}?"
                    ans = _finish(t) + " " + _finish(re.sub(r"^(These|They)\b", lambda _m: "They", nxt[0].text))
                    if self.question_ok(q) and _novel_enough(q, ans) and "\\" not in ans:
                        out.append(_concept(q, ans, "enumeration", m.group("np"), [s.raw, nxt[0].raw], 2.6, s.raw))
                        continue
            # intro sentence + following list
            if not s.raw.rstrip().endswith((":", "：")) and not re.search(rf"(?i)\b({_NUMWORDS}) [a-z]", t):
                continue
            if s.pos != len(self.block_sents.get(s.block, [])) - 1:
                continue
            items = self._items_after(s.block)
            if len(items) < 2 or len(items) > 12:
                continue
            intro = t.rstrip(":. ")
            intro = re.sub(r"\s*\(see [^)]*\)", "", intro)
            m1 = re.match(
                r"^(?:The )?(?P<subj>[^,;:]{3,90}?) (?P<be>are|is|include|includes) (?:as follows|the following)$", intro
            )
            m2 = re.match(
                r"^(?P<subj>[^,;:]{2,80}?) (?P<verb>[a-z]+) the following(?: (?P<obj>[a-z][\w -]{2,60}?))?(?: as (?P<as>[^,;:]{3,80}))?$",
                intro,
            )
            m3 = re.match(
                rf"^There (?:are|were) (?P<n>{_NUMWORDS}) (?P<np>[a-z][^,;:]{{3,90}}?)(?:, (?:discussed|described|listed|shown|as follows)[^,;:]*)?$",
                intro,
            )
            m4 = re.match(
                rf"^(?:In (?P<ctx>[^,]{{3,60}}), )?(?P<subj>[^,;:]{{2,60}}?) (?P<verb>[a-z]+) (?P<prep>on |into |in |of |from |among |between )?(?P<n>{_NUMWORDS}) (?P<np>[a-z][^,;:()]{{3,70}}?)$",
                intro,
            )
            m5 = re.match(
                r"^(?:To|In order to) (?P<goal>[^,]{8,120}), (?:it is|it will (?:always )?be|you will|you) (?:need|necessary|important|essential|critical|required)?(?: to)? (?P<verb>know|consider|understand|have|follow|use|gather|determine|identify)? ?(?:the following )?(?P<np>[a-z][\w -]{2,60})$",
                intro,
            )
            if m1 and _valid_subject(m1.group("subj")):
                subj = m1.group("subj")
                sq = _lc_first(subj, self.chunk_lower)
                if not _article_ok(subj):
                    sq = "the " + sq
                verb = "are" if m1.group("be") in ("are", "include") else "is"
                q = (
                    f"What {verb} {sq}?"
                    if m1.group("be") in ("are", "is")
                    else f"What {'do' if m1.group('be') == 'include' else 'does'} {sq} include?"
                )
                kp = subj
            elif m2 and _valid_subject(m2.group("subj")) and (m2.group("obj") or m2.group("as")):
                base = _verb_base(m2.group("verb"))
                do = "does" if base else "do"
                base = base or m2.group("verb")
                sq = _lc_first(m2.group("subj"), self.chunk_lower)
                if m2.group("as"):
                    q = f"What {do} {sq} {base} as {m2.group('as')}?"
                else:
                    q = f"What {m2.group('obj')} {do} {sq} {base}?"
                kp = m2.group("as") or m2.group("obj")
            elif m3 and not _has_pronoun(m3.group("np")):
                q = f"What are the {m3.group('n')} {m3.group('np')}?"
                kp = m3.group("np")
            elif m4 and _valid_subject(m4.group("subj"), allow_you=False) and not _has_pronoun(m4.group("np")):
                base = _verb_base(m4.group("verb"))
                verb = m4.group("verb")
                if verb in ("are", "is", "were", "was", "have", "has") or not (base or verb.isalpha()):
                    continue
                do = "does" if base else "do"
                ctx = f" in {m4.group('ctx')}" if m4.group("ctx") else ""
                prep = (m4.group("prep") or "").strip()
                q = f"What {m4.group('n')} {m4.group('np')} {do} {_lc_first(m4.group('subj'), self.chunk_lower)} {base or verb}{(' ' + prep) if prep else ''}{ctx}?"
                kp = m4.group("np")
            elif m5 and not _has_pronoun(m5.group("goal")) and not _has_pronoun(m5.group("np")):
                verb = m5.group("verb") or "know"
                q = f"What {m5.group('np')} must you {verb} to {m5.group('goal')}?"
                kp = m5.group("goal")
            if not q or not self.question_ok(q):
                continue
            lines_ = []
            ev = [s.raw]
            for j in items:
                it = self._item_sentence(j)
                if it is None:
                    lines_ = []
                    break
                ev.append(it[0])
                lines_.append("- " + it[1])
            if len(lines_) < 2:
                continue
            answer = _finish(_cap_first(intro)) if not intro.endswith(":") else intro
            answer = re.sub(r"\.$", ":", answer) + "\n" + "\n".join(lines_)
            if len(answer) > 2400:
                continue
            out.append(_concept(q, answer, "enumeration", kp, ev, 2.6, s.raw))
        return out

    def heading_questions(self) -> list[Cand]:
        out = []
        seen = set()
        for bi, b in enumerate(self.blocks):
            if b.kind != "heading":
                continue
            h = clean_inline(b.raw)
            h = re.sub(r"^\d+(\.\d+)*\s+", "", h)
            if (
                not h.endswith("?")
                or not re.match(r"(?i)(what|why|how|when|who|which|where|is|are|does|do|can|should)\b", h)
                or h in seen
            ):
                continue
            if _has_pronoun(h) or _ANCHORED_RE.search(h):
                continue
            seen.add(h)
            hw = h.split(" ")
            q = " ".join(
                [hw[0]]
                + [
                    w
                    if (w.isupper() and len(w) > 1) or re.search(r"[a-z,;(] " + re.escape(w.strip("?")) + r"\b", self.chunk_lower)
                    else w.lower()
                    for w in hw[1:]
                ]
            )
            sents = [s for s in self.sents if s.block > bi and s.quote < 0 and not self.blocks[s.block].kind == "item"]
            sents = [s for s in sents if s.block == (sents[0].block if sents else -1)]
            if not sents:
                continue
            picked, ev = [], []
            for s in sents[:3]:
                a = self.answer_text(s)
                if a is None:
                    break
                picked.append(a)
                ev.append(s.raw)
                if sum(len(p) for p in picked) > 300:
                    break
            if not picked:
                continue
            ans = " ".join(picked)
            stop = {
                "what",
                "why",
                "how",
                "when",
                "who",
                "which",
                "where",
                "is",
                "are",
                "does",
                "do",
                "can",
                "should",
                "a",
                "an",
                "the",
                "of",
                "and",
                "or",
                "to",
                "in",
                "for",
                "we",
                "it",
            }
            topic = {w.lower()[:5] for w in _words(h) if w.lower() not in stop}
            if not topic & {w.lower()[:5] for w in _words(picked[0])}:
                continue  # the first sentences do not address the heading's question
            if re.match(r"(?i)(you|we|i)\b", picked[0]):
                continue
            if not self.question_ok(q) or not _novel_enough(q, ans):
                continue
            qt = "explanation" if q.lower().startswith(("why", "how")) else "fact"
            out.append(
                _concept(
                    q,
                    ans,
                    qt,
                    re.sub(r"(?i)^(what|why|how|when) (is|are|does|do|should|can) ", "", h).rstrip("?"),
                    ev,
                    2.2,
                    ev[0],
                )
            )
        return out

    # -- worked examples (case_application / process_qa) ------------------------------
    def _solution_steps(self, blocks: list[int]) -> tuple[list[str], list[str], str | None, str | None]:
        """Steps, their evidence, the answer and its evidence from solution blocks.

        Calculator tables give one step per row, display math one step per row (rows
        starting with ``=`` continue the previous one), sentences one step each. The
        answer is the last step with a number among the final three; later steps are
        dropped.
        """
        steps: list[tuple[str, list[str], bool]] = []  # text, evidence, is_math
        for j in blocks:
            b = self.blocks[j]
            if b.kind == "table":
                for txt, ev in _calculator_rows(b.lines):
                    steps.append((txt, [ev], False))
                continue
            if b.kind == "math":
                text = latex_to_text(b.raw)
                if not text or re.search(r"[\\{}]", text) or not re.search(r"[=×+÷/-]", text):
                    continue
                ev = [ln.strip() for ln in b.lines if len(ln.strip()) >= 3][:12]
                rows = [r.strip() for r in text.split(" ; ") if r.strip()]
                for r in rows:
                    if steps and steps[-1][2] and r.startswith("="):
                        steps[-1] = (steps[-1][0] + " " + r, steps[-1][1], True)
                    elif steps and not steps[-1][2] and re.search(r"(:|\b(is|are|equals|follows|be|was))\.?$", steps[-1][0]):
                        prev = re.sub(r"[:.]$", "", steps[-1][0])
                        steps[-1] = (f"{prev}: {r}", steps[-1][1] + ev, True)
                        ev = []
                    else:
                        steps.append((r, ev, True))
                        ev = []
                    if ev == [] and steps[-1][1] == []:
                        pass
                if ev and steps:
                    steps[-1] = (steps[-1][0], steps[-1][1] + ev, steps[-1][2])
                continue
            if b.kind in ("para", "item"):
                raw = b.raw
                while _SOLUTION_RE.match(raw):
                    raw = _SOLUTION_RE.sub("", raw, count=1).strip()
                if not raw:
                    continue
                for sraw in split_sentences(raw):
                    t = clean_inline(sraw)
                    t = _CITE_PAREN_RE.sub("", t).strip()
                    if not t or re.search(r"(?i)\b(table|figure|exhibit|section|chapter)\s*\d", t):
                        continue
                    if "\\" in t or "{" in t or ("\n" in sraw and b.quote >= 0):
                        continue
                    if re.search(r"(?i)\blet(’|')?s\b|\blet us\b|\bthis (section|chapter)\b", t):
                        continue
                    steps.append((_finish(t) if not t.endswith(":") else t, [sraw], False))
        # a short label step ("Assets:") joins the next step
        merged: list[tuple[str, list[str], bool]] = []
        for st in steps:
            if merged and merged[-1][0].endswith(":") and len(merged[-1][0]) < 30:
                lab = merged.pop()
                st = (f"{lab[0]} {st[0]}", lab[1] + st[1], st[2])
            merged.append(st)
        steps = [st for st in merged if len(st[0]) >= 8 and st[1]]
        if len(steps) < 2:
            return [], [], None, None
        ans_i = len(steps) - 1
        for k in range(len(steps) - 1, max(-1, len(steps) - 4), -1):
            if re.search(r"\d", steps[k][0]):
                ans_i = k
                break
        concl = [
            k
            for k, st in enumerate(steps)
            if k >= 1
            and re.search(r"\d", st[0])
            and re.search(
                r"(?i)\b(the result|therefore|thus|so,|is estimated|the answer|in conclusion|comes to|is approximately|we find|you will find|would be|will be|will cost|will have)\b",
                st[0],
            )
        ]
        if concl:
            ans_i = concl[-1]
        answer, answer_ev, _ = steps[ans_i]
        rest = steps[:ans_i]
        if answer.endswith(":"):
            return [], [], None, None
        return [r[0] for r in rest], [e for r in rest for e in r[1]], answer, answer_ev[0] if len(answer_ev) == 1 else answer_ev

    def worked_examples(self) -> list[dict]:
        """Block-quoted problems with a Solution: dicts with case, question, steps, answer, evidence."""
        out = []
        groups: dict[int, list[int]] = {}
        for bi, b in enumerate(self.blocks):
            if b.quote >= 0:
                groups.setdefault(b.quote, []).append(bi)
        for qid, idx in groups.items():
            sol_at = [k for k, bi in enumerate(idx) if self.blocks[bi].kind == "para" and _SOLUTION_RE.match(self.blocks[bi].raw)]
            if not sol_at:
                continue
            k0 = sol_at[0]
            title = None
            problem: list[int] = []
            for bi in idx[:k0]:
                b = self.blocks[bi]
                rs = b.raw.strip()
                is_title = (
                    b.kind == "para"
                    and rs.startswith("**")
                    and rs.endswith("**")
                    and len(clean_inline(rs)) < 150
                    and not _PROBLEM_NO_RE.match(rs)
                )
                if is_title and title is None and not problem:
                    title = clean_inline(rs)
                    continue
                problem.append(bi)
            ex = self._example(problem, idx[k0:], title)
            if ex:
                out.append(ex)
        return out

    def _example(self, problem: list[int], solution: list[int], title: str | None) -> dict | None:
        case_parts: list[str] = []
        case_ev: list[str] = []
        q_candidates: list[tuple[str, str]] = []
        for bi in problem:
            b = self.blocks[bi]
            if b.kind == "item":
                it = self._item_sentence(bi)
                if it:
                    case_parts.append("- " + it[1])
                    case_ev.append(it[0])
                continue
            if b.kind != "para":
                continue
            raw = b.raw
            mp = _PROBLEM_NO_RE.match(raw)
            if mp:
                raw = raw[mp.end() :]
            for sraw in split_sentences(raw):
                t = _CITE_PAREN_RE.sub("", clean_inline(sraw)).strip()
                if not t or ("\n" in sraw and b.quote >= 0):
                    continue
                if re.search(
                    r"(?i)\bexample\b|\bhere(’|')?s\b|\bhere is\b|\blet(’|')?s\b|\blet us\b|\bearlier\b|\bprevious\b|\babove\b|\bthis (section|chapter)\b",
                    t,
                ):
                    continue
                if re.search(r"(?i)\b(table|figure|exhibit)\s*\d", t) or "\\" in t or "{" in t:
                    continue
                if t.endswith("?") or re.match(
                    r"(?i)^(calculate|compute|determine|find|identify|classify|help|estimate|explain|prepare|what|how|which|should)\b",
                    t,
                ):
                    q_candidates.append((t, sraw))
                case_parts.append(t)
                case_ev.append(sraw)
        if not q_candidates:
            return None
        if re.search(
            r"(?i)\b(visit|download|go to|look up|search for|watch)\b|\b(shown|listed|given|presented) (below|above)\b|\bthe following (table|figure|graph|chart|data)\b",
            " ".join(case_parts),
        ):
            return None
        question, q_ev = q_candidates[-1]
        ci = case_ev.index(q_ev)
        del case_parts[ci]
        del case_ev[ci]
        case = " ".join(p if not p.startswith("- ") else "\n" + p for p in case_parts).replace(" \n", "\n").strip()
        if len(case) < 40 or len(question) < 15:
            return None
        steps, steps_ev, answer, answer_ev = self._solution_steps(solution)
        if not steps or answer is None:
            return None
        return {
            "title": title,
            "case": case,
            "question": question,
            "steps": steps,
            "answer": answer,
            "evidence": case_ev + [q_ev] + steps_ev + (answer_ev if isinstance(answer_ev, list) else [answer_ev]),
            "numeric": bool(re.search(r"\d", answer)),
            "key": q_ev,
        }

    def scenario_examples(self) -> list[dict]:
        """Unquoted scenarios: a paragraph with figures that asks a question, then its computation."""
        out = []
        nb = len(self.blocks)
        for bi, b in enumerate(self.blocks):
            if b.kind != "para" or b.quote >= 0 or b.section:
                continue
            ss = self.block_sents.get(bi, [])
            qs = [s for s in ss if s.text.endswith("?")]
            if not qs:
                continue
            qsent = qs[-1]
            scen = [s for s in ss if s.pos < qsent.pos]
            qtext = _resolve_person(qsent.text, " ".join(s.text for s in scen))
            if qtext is None:
                continue
            # the scenario starts at its first sentence with a figure or a name
            k0 = next((k for k, s in enumerate(scen) if re.search(r"\d|\$|(?<!^)(?<![.?!] )\b[A-Z][a-z]+", s.text[1:])), None)
            if k0 is None:
                continue
            scen = scen[k0:]
            if (
                not scen
                or _words(scen[0].text)[:1]
                and _words(scen[0].text)[0].lower() in _BAD_START - {"you", "assume", "suppose", "imagine", "consider"}
            ):
                continue
            scen_text = " ".join(s.text for s in scen)
            if not re.search(r"\d", scen_text + qsent.text) or len(scen_text) < 40:
                continue
            # solution: the following blocks, up to the conclusion after the computation
            sol: list[int] = []
            seen_calc = False
            j = bi + 1
            while j < nb and len(sol) < 8:
                bj = self.blocks[j]
                if bj.kind in ("heading", "label") or bj.quote >= 0:
                    break
                if bj.kind == "para" and any(s.text.endswith("?") for s in self.block_sents.get(j, [])):
                    break
                if bj.kind in ("math", "table"):
                    seen_calc = True
                    sol.append(j)
                elif bj.kind in ("para", "item"):
                    has_num = bool(re.search(r"\d", clean_inline(bj.raw)))
                    if seen_calc and not has_num:
                        break
                    sol.append(j)
                    if seen_calc and has_num:
                        break
                j += 1
            if not sol or not seen_calc:
                continue
            ex = self._example_from(scen, qsent, sol, qtext)
            if ex and ex["numeric"]:
                out.append(ex)
        return out

    def _example_from(self, scen: list[Sent], qsent: Sent, sol: list[int], qtext: str | None = None) -> dict | None:
        case_parts, case_ev = [], []
        for s in scen:
            t = _CITE_PAREN_RE.sub("", s.text).strip()
            if s.multiline or re.search(
                r"(?i)\bexample\b|\bhere(’|')?s\b|\bhere is\b|\blet(’|')?s\b|\blet us\b|\bearlier\b|\bprevious\b|\babove\b", t
            ):
                continue
            if re.search(r"(?i)\b(table|figure|exhibit|section|chapter)\s*\d", t) or "\\" in t or "{" in t:
                continue
            case_parts.append(t)
            case_ev.append(s.raw)
        case = " ".join(case_parts)
        question = _CITE_PAREN_RE.sub("", qtext or qsent.text).strip()
        if len(case) < 40 or len(question) < 15 or re.search(r"(?i)\b(table|figure)\s*\d", question):
            return None
        steps, steps_ev, answer, answer_ev = self._solution_steps(sol)
        if not steps or answer is None:
            return None
        return {
            "title": None,
            "case": case,
            "question": question,
            "steps": steps,
            "answer": answer,
            "evidence": case_ev + [qsent.raw] + steps_ev + (answer_ev if isinstance(answer_ev, list) else [answer_ev]),
            "numeric": bool(re.search(r"\d", answer)),
            "key": qsent.raw,
        }

    def procedures(self) -> list[dict]:
        """Numbered procedures: question, steps, answer, evidence."""
        out = []
        for s in self.sents:
            b = self.blocks[s.block]
            if b.kind != "para" or s.pos != len(self.block_sents.get(s.block, [])) - 1:
                continue
            items = self._items_after(s.block)
            if len(items) < 3 or not all(self.blocks[j].ordered for j in items):
                continue
            q = None
            t = _strip_discourse(self.qclean(s.text)).rstrip(":. ")
            title = clean_inline(self.blocks[s.block].heading or "")
            title = re.sub(r"^\d+(\.\d+)*\s+", "", title)
            m = re.match(r"(?i)^how to (.+)$", title)
            if m and not _has_pronoun(m.group(1)):
                q = f"How do you {m.group(1)[0].lower() + m.group(1)[1:]}?"
            if q is None:
                m = re.match(
                    r"^(?:The )?(?P<subj>[^,;:]{3,80}?) (?:consists of|involves|includes|follows|has) (?:the following|(?P<n>"
                    + _NUMWORDS
                    + r")) (?:steps|stages|phases)$",
                    t,
                )
                if m and _valid_subject(m.group("subj")):
                    sq = _lc_first(m.group("subj"), self.chunk_lower)
                    if not _article_ok(m.group("subj")):
                        sq = "the " + sq
                    q = f"What are the steps of {sq}?"
            if (
                q is None
                and re.search(r"(?i)\b(steps?|procedure|process)\b", t)
                and title
                and re.search(r"(?i)(process|procedure|steps|method|calculat|comput|estimat|determin|prepar|record|how)", title)
            ):
                if not _has_pronoun(title) and not title.endswith("?"):
                    q = (
                        f"What are the steps for {_lc_first(title, self.chunk_lower)}?"
                        if not re.match(r"(?i)(process|procedure|steps)\b", title)
                        else f"What is the {_lc_first(title, self.chunk_lower)}?"
                    )
            if q is None or not self.question_ok(q):
                continue
            steps, ev = [], []
            for j in items:
                it = self._item_sentence(j)
                if it is None:
                    steps = []
                    break
                steps.append(_finish(_cap_first(it[1])))
                ev.append(it[0])
            if len(steps) < 3:
                continue
            # answer: the paragraph after the list when it concludes, else the last step
            answer, answer_ev = steps[-1], ev[-1]
            steps, ev = steps[:-1], ev[:-1]
            last = items[-1]
            nxt = [
                x
                for x in self.sents
                if x.block > last
                and x.block <= last + 3
                and self.blocks[x.block].kind == "para"
                and self.blocks[x.block].indent == 0
            ]
            if nxt:
                a = self.answer_text(nxt[0])
                if a and re.search(r"(?i)\b(result|final|once|finally|will (then )?(appear|show|be)|answer)\b", a):
                    steps.append(answer)
                    ev.append(answer_ev)
                    answer, answer_ev = a, nxt[0].raw
            while len(steps) > 6:
                steps[-2:] = [steps[-2] + " " + steps[-1]]
            out.append(
                {
                    "question": q,
                    "steps": steps,
                    "answer": answer,
                    "evidence": [s.raw] + ev + [answer_ev],
                    "pattern": "procedure",
                    "key": s.raw,
                }
            )
        return out

    def calculator_procedures(self) -> list[dict]:
        """A titled calculator step table ("Calculator Steps for Finding X") outside a worked example."""
        out = []
        for bi, b in enumerate(self.blocks):
            if b.kind != "table" or bi == 0 or self.blocks[bi - 1].kind != "label":
                continue
            title = clean_inline(self.blocks[bi - 1].raw)
            m = re.match(
                r"(?i)^(?:table|exhibit)\s*[\d.]+\s*:\s*(?:financial )?calculator steps? (?:for|to) (?P<what>[^.:;]{5,120})$",
                title,
            )
            if not m:
                continue
            what = m.group("what").strip()
            w0, _, rest = what.partition(" ")
            base = _GERUND_BASE.get(w0.lower(), w0.lower() if w0.lower() in _GERUND_BASE.values() else None)
            if base is None or not rest:
                continue
            rest = " ".join(w if (w.isupper() and len(w) > 1) else w.lower() for w in rest.split(" "))
            rows = _calculator_rows(b.lines)
            if len(rows) < 3:
                continue
            q = f"How do you {base} {rest} with a financial calculator?"
            if not self.question_ok(q):
                continue
            steps = [r[0] for r in rows[:-1]]
            answer = rows[-1][0]
            out.append(
                {
                    "question": q,
                    "steps": steps,
                    "answer": answer,
                    "evidence": [r[1] for r in rows],
                    "pattern": "calculation",
                    "key": rows[0][1] + str(bi),
                }
            )
        return out

    def method_sentences(self) -> list[dict]:
        """'To <goal>, <method>.' followed (in its paragraph) by a display formula -> a procedure."""
        out = []
        for s in self.sents:
            t = _strip_discourse(self.qclean(s.text))
            m = re.match(r"^(?:To|In order to) (?P<goal>[^,]{10,150}), (?P<main>.{15,})$", t)
            if not m:
                continue
            goal = m.group("goal")
            if _has_pronoun(goal) or re.search(r"(?i)\b(we|us|our|answer|question|problem|example)\b", goal):
                continue
            if re.fullmatch(r"\w+ (the|a|an|this) \w+", goal) or len(_words(goal)) < 4:
                continue
            main = self.answer_text(s)
            if main is None:
                continue
            later = [x for x in self.block_sents.get(s.block, []) if x.pos > s.pos]
            steps, ev = [_finish(_cap_first(_strip_discourse(m.group("main"))))], [s.raw]
            for x in later:
                a = clean_inline(x.raw)
                if "\\" in a or "{" in a or _ANCHORED_RE.search(a) or re.search(r"(?i)\blet(’|')?s\b", a):
                    break
                steps.append(_finish(_strip_discourse(a)) if not a.endswith(":") else a)
                ev.append(x.raw)
            nb = s.block + 1
            if nb >= len(self.blocks) or self.blocks[nb].kind != "math":
                continue
            f = latex_to_text(self.blocks[nb].raw)
            if not f or re.search(r"[\\{}]", f) or "=" not in f or len(f) > 300:
                continue
            if steps[-1].endswith(":"):
                steps[-1] = steps[-1].rstrip(":") + "."
            answer = f"The formula is {f}."
            answer_ev = [ln.strip() for ln in self.blocks[nb].lines if len(ln.strip()) >= 3][:8]
            if len(steps) < 2:
                parts = [p.strip() for p in re.split(r";\s+|, and then |, then ", steps[0]) if p.strip()]
                steps = (
                    [_finish(_cap_first(p)) for p in parts]
                    if len(parts) >= 2
                    else steps + ["Write the relationship as a formula."]
                )
                if len(parts) < 2:
                    continue
            q = f"How do you {goal[0].lower() + goal[1:]}?"
            if not self.question_ok(q):
                continue
            out.append(
                {
                    "question": q,
                    "steps": steps[:6],
                    "answer": answer,
                    "evidence": ev[:7] + answer_ev,
                    "pattern": "calculation",
                    "key": s.raw,
                }
            )
        return out

    def causal_chains(self) -> list[dict]:
        """'If C, X.' then 1-4 sentences that carry the consequence on."""
        out = []
        for s in self.sents:
            t = _strip_discourse(self.qclean(s.text)).rstrip(".")
            m = re.match(r"^(?P<conj>If|When) (?P<cond>[^,;]{8,200}), (?:then )?(?P<main>.{15,})$", t)
            if not m:
                continue
            cond = m.group("cond")
            if _has_pronoun(cond, soft=True) or re.search(r"(?i)\b(we|us|our|I)\b|\d", cond) or len(_words(cond)) < 3:
                continue
            follow = [x for x in self.block_sents.get(s.block, []) if x.pos > s.pos][:4]
            if not follow and s.block + 1 < len(self.blocks):
                follow = self.block_sents.get(s.block + 1, [])[:3]
            chain = []
            for x in follow:
                xt = clean_inline(x.raw)
                if re.search(
                    r"(?i)\b(result|results|resulting|lead|leads|leading|cause|causes|consequen|then|therefore|thus|eventually|in the end|which would|would then|as a result|could|may)\b",
                    xt,
                ):
                    if (
                        "\\" in xt
                        or "{" in xt
                        or _ANCHORED_RE.search(xt)
                        or re.search(r"(?i)\b(we|us|our|you|your|I)\b|for example", xt)
                    ):
                        break
                    chain.append(x)
                else:
                    break
            if not chain:
                continue
            main = _finish(_cap_first(m.group("main")))
            steps = [main] + [_finish(_strip_discourse(_CITE_PAREN_RE.sub("", clean_inline(x.raw)))) for x in chain[:-1]]
            answer = _finish(_strip_discourse(_CITE_PAREN_RE.sub("", clean_inline(chain[-1].raw))))
            if len(steps) < 2:
                steps = [
                    f"{m.group('conj')} {cond}, the first consequence is: {main[0].lower() + main[1:]}",
                ]
                steps.append(answer)
                continue
            q = f"What chain of consequences can follow {m.group('conj').lower()} {_lc_first(cond, self.chunk_lower)}?"
            if not self.question_ok(q):
                continue
            out.append(
                {
                    "question": q,
                    "steps": steps,
                    "answer": answer,
                    "evidence": [s.raw] + [x.raw for x in chain],
                    "pattern": "causal_chain",
                    "key": s.raw,
                }
            )
        return out


_GERUND_BASE = {
    "finding": "find",
    "determining": "determine",
    "computing": "compute",
    "calculating": "calculate",
    "pricing": "price",
    "solving": "solve",
    "estimating": "estimate",
    "using": "use",
    "entering": "enter",
    "valuing": "value",
    "measuring": "measure",
    "converting": "convert",
    "graphing": "graph",
    "creating": "create",
    "preparing": "prepare",
    "recording": "record",
    "getting": "get",
    "setting": "set",
    "identifying": "identify",
}


def _resolve_person(question: str, scenario: str) -> str | None:
    """Replace a subject he/she in a scenario question with the person the scenario names.

    Returns the question unchanged when it has no dangling pronoun, the resolved question,
    or None when a pronoun cannot be resolved."""
    if not _has_pronoun(question):
        return question
    m = re.match(r"^([A-Z][a-z]+)\b", scenario.strip())
    names = re.findall(
        r"\b([A-Z][a-z]{2,})\b (?:is|has|wants|decides|plans|buys|invests|deposits|borrows|likes|thinks|found|begins|needs|will|would)",
        scenario,
    )
    name = (
        names[0]
        if names
        else (m.group(1) if m and m.group(1) not in ("The", "A", "An", "If", "In", "You", "Your", "Assume", "Suppose") else None)
    )
    if not name:
        return None
    q = re.sub(r"\b(he|she)\b", name, question, count=1)
    if _has_pronoun(re.sub(r"\b(his|her)\b", "", q)):
        return None
    return q


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


def _calculator_rows(rows: list[str]) -> list[tuple[str, str]]:
    """Steps from a calculator step table (``Step | Description | Enter | Display``)."""
    if len(rows) < 3:
        return []

    def cells(r: str) -> list[str]:
        r = r.strip()
        r = r[1:] if r.startswith("|") else r
        r = r[:-1] if r.endswith("|") else r
        return [c.strip() for c in re.split(r"(?<!\\)\|", r)]

    head = [c.lower() for c in cells(rows[0])]
    if not any("description" in h or "step" in h for h in head):
        return []
    out = []
    for r in rows[1:]:
        if re.fullmatch(r"[\s|:-]+", r):
            continue
        cs = cells(r)
        if len(cs) < 2:
            continue
        desc = clean_inline(cs[1]) if len(cs) > 1 else ""
        enter = clean_inline(cs[2]) if len(cs) > 2 else ""
        disp = " ".join(clean_inline(c) for c in cs[3:] if c.strip())
        if not desc:
            continue
        txt = desc
        if enter:
            txt += f": enter {enter}"
        if disp:
            txt += f" (display: {disp})"
        out.append((txt if txt.endswith((".", "!", "?")) else txt + ".", r.strip()))
    return out


# ---------------------------------------------------------------------------------------
# Triage
# ---------------------------------------------------------------------------------------


def _ocr_scores(text: str) -> tuple[float, float, int]:
    """(share of split-word fragments, share of garbage characters, count of bad glyphs)."""
    toks = re.findall(r"\S+", text)
    if not toks:
        return 0.0, 0.0, 0
    alpha = [t for t in toks if re.fullmatch(r"[A-Za-z]+[.,;:]?", t)]
    short_ok = {
        "a",
        "i",
        "an",
        "of",
        "to",
        "in",
        "is",
        "it",
        "on",
        "as",
        "at",
        "be",
        "by",
        "or",
        "we",
        "he",
        "if",
        "so",
        "no",
        "do",
        "up",
        "my",
        "us",
        "me",
        "go",
        "am",
        "vs",
        "tv",
        "us",
        "ok",
        "oh",
        "ad",
        "id",
        "pm",
        "pv",
        "fv",
        "n",
        "r",
        "x",
        "y",
    }
    frag = [t for t in alpha if len(t.strip(".,;:")) <= 2 and t.strip(".,;:").lower() not in short_ok]
    frag_share = len(frag) / max(1, len(alpha))
    chars = re.sub(r"\s", "", text)
    garbage = len(re.findall(r"[^\w.,;:!?'\"“”‘’()\[\]$%&/\-–—+=*<>|#@^~`{}\\]", chars))
    bad = text.count("\ufffd") + len(re.findall(r"\(cid:\d+\)", text))
    return frag_share, garbage / max(1, len(chars)), bad


def triage_chunk(chunk: Chunk, skill: Skill) -> Triage:
    """Keep or skip a chunk, with a reason from the skill's skip vocabulary.

    Rules (first match wins): heading_only (no text below the headings), broken_ocr /
    noisy (split words, replacement glyphs, symbol soup), navigation (learning outcomes,
    outlines), index_like (footnotes, references, link lists), non_knowledge (credits,
    licences), pedagogy (questions without answers), low_information (less than the
    skill's ``min_chunk_chars`` of content text).
    """
    allowed = set(skill.coverage.skip_reasons)

    def skip(reason: str, detail: str) -> Triage:
        if reason not in allowed:
            reason = "low_information" if "low_information" in allowed else sorted(allowed)[0]
        return Triage(keep=False, skip_reason=reason, detail=detail)

    head = chunk.heading_path[-1] if chunk.heading_path else ""
    blocks = parse_blocks(chunk.text, head)
    body = [b for b in blocks if b.kind != "heading"]
    if not body or sum(len(clean_inline(b.raw)) for b in body) < 30:
        return skip("heading_only", "only headings, no text below them")
    sec_chars: dict[str, int] = {}
    for b in body:
        sec_chars[b.section] = sec_chars.get(b.section, 0) + len(b.raw)
    if sec_chars.get("exercises", 0) >= 0.5 * max(1, sum(sec_chars.values())) and not any(
        _SOLUTION_RE.match(b.raw) for b in body
    ):
        return skip("pedagogy", "exercises or review questions without answers")
    if sec_chars.get("non_knowledge", 0) >= 0.5 * max(1, sum(sec_chars.values())):
        return skip("non_knowledge", "credits, licence or front matter")
    all_text = "\n".join(clean_inline(b.raw) for b in body if b.kind not in ("math", "table"))
    prose = "\n".join(
        clean_inline(re.sub(r"(?<!\\)\$[^$]*(?<!\\)\$", " ", b.raw)) for b in body if b.kind not in ("math", "table", "heading")
    )
    frag, garbage, bad = _ocr_scores(prose)
    if bad >= 3 or (frag > 0.2 and len(all_text) > 200):
        return skip("broken_ocr", f"broken conversion: {frag:.0%} split-word fragments, {bad} bad glyphs")
    if garbage > 0.2 and len(all_text) > 100:
        return skip("noisy", f"{garbage:.0%} of characters are symbols or markup debris")

    def chars(bs: Iterable[Block]) -> int:
        return sum(len(clean_inline(b.raw)) for b in bs)

    by_sec: dict[str, int] = {}
    for b in body:
        by_sec[b.section] = by_sec.get(b.section, 0) + len(clean_inline(b.raw))
    total = max(1, sum(by_sec.values()))
    content = [b for b in body if b.section in ("", "glossary") and b.kind != "caption"]
    sources = [b for b in content if not _usable_block(b) and b.kind in ("para", "item")]
    content_chars = chars(content) - chars(sources)
    urls = sum(len(_URL_RE.findall(b.raw)) for b in body)
    if by_sec.get("outcomes", 0) and content_chars < skill.coverage.min_chunk_chars:
        return skip("navigation", "learning outcomes / overview with no teaching text")
    nav_items = [
        b for b in content if b.kind == "item" and len(clean_inline(b.raw)) < 80 and not re.search(r"[.!?]$", clean_inline(b.raw))
    ]
    if content and len(nav_items) >= 3 and chars(nav_items) >= 0.8 * max(1, content_chars):
        return skip("navigation", "a list of section titles")
    if by_sec.get("refs", 0) + chars(sources) >= 0.6 * total or (urls >= 3 and content_chars < 0.5 * total):
        return skip("index_like", "footnotes, references or links")
    if (
        by_sec.get("non_knowledge", 0) >= 0.6 * total
        or re.search(
            r"(?i)\b(licen[cs]ed under|creative commons|gnu free documentation|permission is granted to copy|all rights reserved|©)",
            all_text,
        )
        and content_chars < 800
    ):
        return skip("non_knowledge", "credits, licence or front matter")
    qs = sum(1 for b in content if clean_inline(b.raw).rstrip().endswith("?") or _PROBLEM_NO_RE.match(b.raw))
    has_solution = any(_SOLUTION_RE.match(b.raw) for b in body) or re.search(r"(?i)\b(solution|answer)s?\s*:", all_text)
    if (by_sec.get("exercises", 0) >= 0.5 * total or (qs >= 3 and qs >= 0.5 * max(1, len(content)))) and not has_solution:
        return skip("pedagogy", "exercises or review questions without answers")
    if content_chars < skill.coverage.min_chunk_chars:
        return skip("low_information", f"{content_chars} chars of content (min {skill.coverage.min_chunk_chars})")
    n_sent = sum(
        len(split_sentences(b.raw)) for b in content if b.kind in ("para", "item") and len(_words(clean_inline(b.raw))) >= 8
    )
    if n_sent < 2 and content_chars < 600 and not any(b.kind in ("table", "math") for b in content):
        return skip("low_information", "no full sentences (a title page or a list of names)")
    return Triage(keep=True, detail=f"{content_chars} chars of content")


# ---------------------------------------------------------------------------------------
# Mapping form-level candidates onto a skill's sample types
# ---------------------------------------------------------------------------------------

_ENUM_FALLBACK = {
    "definition": ("definition", "concept", "fact", "factual", "recall"),
    "enumeration": ("enumeration", "list", "fact", "factual", "recall"),
    "cause_effect": ("cause_effect", "causal", "explanation", "reasoning", "why"),
    "condition": ("condition", "conditional", "explanation", "reasoning"),
    "comparison": ("comparison", "compare", "contrast", "explanation"),
    "explanation": ("explanation", "conceptual", "reasoning", "fact"),
    "fact": ("fact", "factual", "recall", "definition"),
    "procedure": ("procedure", "process", "steps", "calculation"),
    "calculation": ("calculation", "computation", "numeric", "procedure"),
    "causal_chain": ("causal_chain", "causal", "reasoning", "procedure"),
    "decision": ("decision", "judgement", "judgment", "analysis"),
}


def _fit_schema(sample_type: str, chunk_id: str, cand: Cand, schema: dict) -> dict | None:
    """Shape a form-level candidate to a sample type's JSON Schema (None when it cannot)."""
    props: dict = schema.get("properties", {}) or {}
    required = list(schema.get("required", []))
    closed = schema.get("additionalProperties", True) is False
    sample: dict[str, Any] = {"sample_type": sample_type, "chunk_id": chunk_id, "evidence": list(dict.fromkeys(cand.evidence))}
    aliases = {
        "reasoning_steps": ("analysis_steps", "steps"),
        "analysis_steps": ("reasoning_steps", "steps"),
        "steps": ("reasoning_steps", "analysis_steps"),
    }
    for k, v in cand.fields.items():
        if closed and k not in props:
            alt = next((a for a in aliases.get(k, ()) if a in props), None)
            if alt is None:
                continue
            k = alt
        sample[k] = v
    for k, spec in props.items():
        if k not in sample or not isinstance(spec, dict):
            continue
        enum = spec.get("enum")
        if enum and sample[k] not in enum:
            wanted = _ENUM_FALLBACK.get(str(sample[k]), (str(sample[k]),))
            sample[k] = next((e for e in wanted if e in enum), enum[0])
    if any(r not in sample for r in required):
        return None
    if isinstance(sample.get("answer"), str) and _FRAGMENT_END.search(sample["answer"]):
        return None  # the answer stops where a formula or list began
    for k in ("reasoning_steps", "analysis_steps", "steps"):
        if isinstance(sample.get(k), list):
            sample[k] = _clean_steps(sample[k])
            lo = ((props.get(k) or {}).get("minItems") if isinstance(props.get(k), dict) else None) or 1
            if len(sample[k]) < lo:
                return None
    return {
        k: sample[k]
        for k in (
            ["sample_type", "chunk_id", "evidence"] + [k for k in sample if k not in ("sample_type", "chunk_id", "evidence")]
        )
    }


# ---------------------------------------------------------------------------------------
# The generator
# ---------------------------------------------------------------------------------------


def _select(cands: list[Cand], n: int, used: set[str]) -> list[Cand]:
    """Up to ``n`` candidates, one per kind first (mix), then by score; one per source key."""
    pool = [c for c in cands if c.key not in used]
    pool.sort(key=lambda c: -c.score)  # stable: document order within a score
    picked: list[Cand] = []
    seen_q: set[str] = set()
    keys: set[str] = set()
    kinds: set[str] = set()
    for round_ in (0, 1):
        for c in pool:
            if len(picked) >= n:
                break
            q = (c.fields.get("question") or "").lower()
            if c.key in keys or q in seen_q:
                continue
            if round_ == 0 and c.kind in kinds:
                continue
            picked.append(c)
            keys.add(c.key)
            seen_q.add(q)
            kinds.add(c.kind)
    order = {id(c): i for i, c in enumerate(cands)}
    picked.sort(key=lambda c: order[id(c)])
    used |= keys
    return picked


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


#: a sentence cut where a formula or list followed it ("... grows to.", "... as follows:")
_FRAGMENT_END = re.compile(
    r"(?i)(?:\b(?:to|of|by|as|is|are|the|a|an|and|or|with|for|from|in|into|equals?|us|gives|yields|get|gets|becomes|follows)\.|:)\s*$"
)


def _clean_steps(steps: list[str]) -> list[str]:
    """Steps without fragments cut before a formula, and without a sentence repeated inside a step."""
    out = []
    for st in steps:
        sents = re.split(r"(?<=[.!?])\s+", st.strip())
        st = " ".join(dict.fromkeys(x for x in sents if x))
        if st and not _FRAGMENT_END.search(st):
            out.append(st)
    return out


def _merge_steps(steps: list[str], evidence: list[str], limit: int) -> list[str]:
    steps = list(steps)
    while len(steps) > limit:
        # merge the two shortest neighbours
        k = min(range(len(steps) - 1), key=lambda i: len(steps[i]) + len(steps[i + 1]))
        steps[k : k + 2] = [steps[k] + " " + steps[k + 1]]
    return steps


class ExtractiveGenerator:
    """Rule-based, offline generator (model spec ``extractive``).

    Implements :class:`prepbench.agents.base.Generator`. Deterministic: the same chunk
    and skill give the same candidates in the same order. No model calls: every
    :class:`CallRecord` has zero tokens and cost, and the real latency.
    """

    name = "extractive"
    version = "1.0"
    needs_chat_model = False

    # -- sync core -------------------------------------------------------------------
    def triage(self, chunk: Chunk, skill: Skill) -> Triage:
        """Keep or skip ``chunk`` (see :func:`triage_chunk`)."""
        return triage_chunk(chunk, skill)

    def generate(self, chunk: Chunk, skill: Skill, targets: dict[str, int]) -> list[dict]:
        """Candidate samples for ``chunk``: up to ``targets[t]`` of each sample type ``t``.

        Args:
            chunk: the chunk.
            skill: the skill (its schemas decide each type's form and fields).
            targets: sample type -> maximum count for this chunk.

        Returns:
            Candidate dicts with ``sample_type``, ``chunk_id``, ``evidence`` (verbatim spans
            of ``chunk.text``) and the fields of their type's schema; possibly empty.
        """
        ex = _Extractor(chunk)
        by_form: dict[str, list[str]] = {}
        for t in skill.sample_types:
            n = int(targets.get(t, 0) or 0)
            if n > 0 and t in skill.schemas:
                by_form.setdefault(skill.form(t), []).append(t)
        if not by_form:
            return []
        used: set[str] = set()
        out: list[dict] = []
        examples: list[dict] | None = None

        def get_examples() -> list[dict]:
            nonlocal examples
            if examples is None:
                examples = ex.worked_examples() + ex.scenario_examples()
            return examples

        # worked examples feed case_application and process_qa; a chunk with a single
        # example gives it to one of them (alternating by chunk id, deterministic)
        reserve: set[str] = set()
        other_process: list[dict] = []
        if by_form.get("process_qa"):
            other_process = ex.procedures() + ex.calculator_procedures() + ex.method_sentences() + ex.causal_chains()
        if by_form.get("case_application") and by_form.get("process_qa"):
            exs = get_examples()
            if len(exs) == 1 and not other_process and int(chunk.chunk_id[-1], 16) % 2 == 1:
                reserve.add(exs[0]["key"])
        for t in by_form.get("case_application", []):
            n = targets[t]
            for e in [e for e in get_examples() if e["key"] not in used and e["key"] not in reserve][:n]:
                steps = _merge_steps(e["steps"], e["evidence"], _max_items(skill.schemas[t], "analysis_steps", 8))
                cand = Cand(
                    "case_application",
                    {"case": e["case"], "question": e["question"], "analysis_steps": steps, "answer": e["answer"]},
                    e["evidence"],
                    "case",
                    1.0,
                    e["key"],
                )
                s = _fit_schema(t, chunk.chunk_id, cand, skill.schemas[t])
                if s:
                    out.append(s)
                    used.add(e["key"])
        for t in by_form.get("process_qa", []):
            n = targets[t]
            pool: list[dict] = []
            for e in get_examples():
                if e["key"] in used:
                    continue
                q = f"{e['case']} {e['question']}".replace("\n", " ")
                if len(q) > 590:
                    continue
                pool.append(
                    {
                        "question": q,
                        "steps": e["steps"],
                        "answer": e["answer"],
                        "evidence": e["evidence"],
                        "pattern": "calculation" if e["numeric"] else "decision",
                        "key": e["key"],
                    }
                )
            pool += other_process
            k = 0
            for p in pool:
                if k >= n:
                    break
                if p["key"] in used:
                    continue
                limit = _max_items(skill.schemas[t], "reasoning_steps", 6)
                steps = _merge_steps(p["steps"], p["evidence"], limit)
                if len(steps) < 2:
                    continue
                cand = Cand(
                    "process_qa",
                    {
                        "question": p["question"],
                        "reasoning_steps": steps,
                        "answer": p["answer"],
                        "reasoning_pattern": p["pattern"],
                    },
                    p["evidence"],
                    p["pattern"],
                    1.0,
                    p["key"],
                )
                s = _fit_schema(t, chunk.chunk_id, cand, skill.schemas[t])
                if s:
                    out.append(s)
                    used.add(p["key"])
                    k += 1
        concept_types = by_form.get("concept_qa", [])
        if concept_types:
            cands = (
                ex.glossary()
                + ex.definitions()
                + ex.bold_leads()
                + ex.enumerations()
                + ex.heading_questions()
                + ex.causes()
                + ex.conditions()
            )
            for t in concept_types:
                for c in _select(cands, targets[t], used):
                    s = _fit_schema(t, chunk.chunk_id, c, skill.schemas[t])
                    if s:
                        out.append(s)
        order = {t: i for i, t in enumerate(skill.sample_types)}
        out.sort(key=lambda s: order.get(s["sample_type"], 99))
        return out

    # -- async protocol ----------------------------------------------------------------
    async def atriage(self, chunk: Chunk, skill: Skill) -> tuple[Triage, list[CallRecord]]:
        """:meth:`triage` plus one zero-cost :class:`CallRecord` (node ``triage``)."""
        t0 = time.perf_counter()
        tri = self.triage(chunk, skill)
        return tri, [CallRecord(node="triage", model=self.name, latency_s=time.perf_counter() - t0)]

    async def agenerate(self, chunk: Chunk, skill: Skill, targets: dict[str, int]) -> tuple[list[dict], list[CallRecord]]:
        """:meth:`generate` plus one zero-cost :class:`CallRecord` (node ``generate``)."""
        t0 = time.perf_counter()
        cands = self.generate(chunk, skill, targets)
        return cands, [CallRecord(node="generate", model=self.name, latency_s=time.perf_counter() - t0)]

    async def arepair(self, chunk: Chunk, skill: Skill, candidate: dict, feedback: str) -> tuple[None, list[CallRecord]]:
        """The extractive generator cannot repair a candidate: always ``(None, [])``."""
        return None, []


def _max_items(schema: dict, fld: str, default: int) -> int:
    spec = (schema.get("properties", {}) or {}).get(fld, {})
    if not isinstance(spec, dict):
        return default
    return int(spec.get("maxItems", default))
