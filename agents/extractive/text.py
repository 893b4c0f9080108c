"""Cleaning Markdown and simple LaTeX into readable text, and splitting it into sentences."""

from __future__ import annotations

import functools
import re

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
    r"\notin": "∉",
    r"\subset": "⊂",
    r"\supset": "⊃",
    r"\subseteq": "⊆",
    r"\supseteq": "⊇",
    r"\cap": "∩",
    r"\cup": "∪",
    r"\emptyset": "∅",
    r"\circ": "∘",
    r"\mid": "∣",
    r"\preceq": "⪯",
    r"\equiv": "≡",
    r"\cong": "≅",
    r"\phi": "φ",
    r"\tau": "τ",
    r"\omega": "ω",
    r"\Omega": "Ω",
    r"\Phi": "Φ",
    r"\Theta": "Θ",
    r"\eta": "η",
    r"\kappa": "κ",
    r"\nabla": "∇",
    r"\partial": "∂",
    r"\perp": "⊥",
    r"\parallel": "∥",
    r"\propto": "∝",
    r"\sim": "∼",
    r"\oint": "∮",
    r"\int": "∫",
    r"\ell": "ℓ",
    r"\prime": "'",
    r"\%": "%",
    r"\$": "$",
    r"\&": "&",
    r"\#": "#",
    r"\_": "_",
}
_LATEX_SYM_RE = re.compile("|".join(re.escape(k) + r"(?![A-Za-z])" for k in sorted(_LATEX_SYMBOLS, key=len, reverse=True)))
#: the number sets in blackboard bold: "{\mathbb Z}", "\mathbb{Q}"
_BLACKBOARD = {"N": "ℕ", "Z": "ℤ", "Q": "ℚ", "R": "ℝ", "C": "ℂ"}
_MATHBB_RE = re.compile(r"\{?\\mathbb\s*\{?([NZQRC])\}?\}?")
#: accents as Unicode combining marks: "\vec F" -> "F⃗" (U+20D7), "\hat r" -> "r̂" (U+0302)
_ACCENTS = {"vec": "\u20d7", "hat": "\u0302"}
_ACCENT_RE = re.compile(r"\\(vec|hat)\s*(?:\{\s*([^{}]*?)\s*\}|([A-Za-z]))")
#: operator names written as words: "\cos\theta" -> "cos θ"
_OPERATOR_RE = re.compile(r"\\(sin|cos|tan|ln|log|exp)(?![A-Za-z])\s*")
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
    s = _ACCENT_RE.sub(lambda m: (m.group(2) or m.group(3)) + _ACCENTS[m.group(1)], s)
    s = _OPERATOR_RE.sub(lambda m: m.group(1) + ("" if s[m.end() : m.end() + 1] in ("(", "") else " "), s)
    s = re.sub(r"\{\\rm\s+([^{}]*)\}", r"\1", s)  # "{\rm kg}" -> "kg"
    s = _MATHBB_RE.sub(lambda m: _BLACKBOARD[m.group(1)], s)  # "{\mathbb Z}" -> "ℤ", before "\subset {" is joined
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

#: LaTeX commands :func:`latex_to_text` renders or drops without loss (layout, text and fractions)
_LAYOUT_COMMANDS = frozenset(
    "text mathrm textit textbf mathit mathbf operatorname textrm mbox mathsf frac dfrac tfrac sqrt "
    "left right big bigl bigr Big Bigl Bigr begin end quad qquad mathbb vec hat rm sin cos tan ln log exp".split()
)


def lossy_math(raw: str) -> bool:
    """Whether the math in ``raw`` (``$...$`` or ``$$...$$``) holds a LaTeX command that
    :func:`latex_to_text` would drop (``\\circ``, ``\\ell``, ``\\supset``): its plain text would lose
    a symbol, so no sample may quote it."""
    spans = re.findall(r"\$\$(.+?)\$\$", raw, flags=re.S) + _INLINE_MATH_RE.findall(raw)
    for tex in spans:
        for cmd in re.findall(r"\\([A-Za-z]+)", tex):
            if cmd not in _LAYOUT_COMMANDS and "\\" + cmd not in _LATEX_SYMBOLS:
                return True
    return False


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
