"""Procedure extractors: numbered steps, calculator procedures, method sentences and causal chains."""

from __future__ import annotations

import re

from prepbench.agents.extractive.grammar import (
    _ANCHORED_RE,
    _CITE_PAREN_RE,
    _NUMWORDS,
    _article_ok,
    _cap_first,
    _finish,
    _has_pronoun,
    _lc_first,
    _strip_discourse,
    _valid_subject,
    _words,
)
from prepbench.agents.extractive.text import clean_inline, latex_to_text


class ProcedureExtractors:
    """Procedure (process) extractors; mixed into the extractor."""

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
            q = self._procedure_question(s.text, s.block)
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

    def _procedure_question(self, text: str, block: int) -> str | None:
        """The question a numbered procedure answers, from its heading ("How to X") or its lead-in sentence."""
        q = None
        t = _strip_discourse(self.qclean(text)).rstrip(":. ")
        title = clean_inline(self.blocks[block].heading or "")
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
        return q

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
            given = _calculator_inputs(b.lines)
            if not given:
                continue  # the steps enter numbers the question would not state (read defective)
            q = f"How do you {base} {rest} with a financial calculator, given {given}?"
            if not self.question_ok(q):
                continue
            steps = [r[0] for r in rows[:-1]]
            answer = rows[-1][0]
            last = re.match(r"^(?P<desc>.+?): enter (?P<enter>.+?) \(display: (?P<disp>.+)\)\.$", answer)
            if last:  # the result first: "The result is N = 8.7667 (compute time periods: enter CPT N)."
                answer = f"The result is {last['disp']} ({last['desc'][0].lower() + last['desc'][1:]}: enter {last['enter']})."
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


#: what a number entered on a financial calculator's key is, in words
_CALCULATOR_KEYS = {
    "PV": "a present value of ${}",
    "FV": "a future value of ${}",
    "PMT": "a payment of ${} per period",
    "I/Y": "an interest rate of {}% per period",
    "N": "{} periods",
}
_ENTERED = re.compile(r"^(?P<num>\d[\d,]*(?:\.\d+)?)\s*(?:\+(?:\\?\||/)-\s*)?(?P<key>PV|FV|PMT|I/Y|N)$")


def _calculator_inputs(rows: list[str]) -> str | None:
    """The values a calculator step table enters, in words ("a present value of $1000, an interest
    rate of 3% per period and 4 periods"), or None when a step enters anything else (a formula, a
    value computed earlier), so the question can state every number the steps use."""
    said = []
    for r in rows[1:]:
        cs = [c.strip() for c in re.split(r"(?<!\\)\|", r.strip().strip("|"))]
        if len(cs) < 3 or re.fullmatch(r"[\s:-]*", cs[2]) or not re.search(r"\d", cs[2]) or cs[2].startswith("CPT"):
            continue
        if re.search(r"=|×|\\times", cs[2]):
            continue  # arithmetic on a displayed result ("× 2 ="), which the steps show
        m = _ENTERED.match(cs[2])
        if m is None:
            return None
        if float(m.group("num").replace(",", "")) != 0 or m.group("key") not in ("PMT", "FV", "PV"):
            said.append(_CALCULATOR_KEYS[m.group("key")].format(m.group("num")))
    if not said:
        return None
    return said[0] if len(said) == 1 else ", ".join(said[:-1]) + " and " + said[-1]


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
