"""List extractors: enumerations after an intro sentence, and question headings answered by their section."""

from __future__ import annotations

import re

from prepbench.agents.extractive.blocks import _URL_RE
from prepbench.agents.extractive.candidates import Cand, _concept, _novel_enough
from prepbench.agents.extractive.grammar import (
    _ANCHORED_RE,
    _CITE_PAREN_RE,
    _NUMWORDS,
    Sent,
    _article_ok,
    _cap_first,
    _finish,
    _has_pronoun,
    _lc_first,
    _no_head_noun,
    _strip_discourse,
    _valid_subject,
    _verb_base,
    _words,
)
from prepbench.agents.extractive.text import clean_inline, split_sentences

#: question and function words left out when a heading's topic is compared with its answer
_HEADING_STOP = frozenset(
    "what why how when who which where is are does do can should a an the of and or to in for we it".split()
)


class ListExtractors:
    """Enumeration and heading-question extractors; mixed into the extractor."""

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
            handled, cand = self._inline_enumeration(s, t)
            if not handled:
                q, cand = self._there_are_these(s, t)
                if cand is None:
                    cand = self._intro_list(s, t, q)
            if cand is not None:
                out.append(cand)
        return out

    def _inline_enumeration(self, s: Sent, t: str) -> tuple[bool, Cand | None]:
        """'X is divided into three Y: a, b and c' and 'The three Y are ...': ``(matched, candidate)``."""
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
                return True, _concept(q, ans, "enumeration", m.group("subj"), [s.raw], 2.4, s.raw)
            return True, None
        m = re.match(rf"^The (?P<n>{_NUMWORDS}) (?P<np>[a-z][^,;:]{{3,90}}?) (?P<be>are|include)\b:? (?P<list>.{{10,}})$", t)
        if m and not _has_pronoun(m.group("np")) and not _no_head_noun(m.group("np")):
            q = f"What are the {m.group('n')} {m.group('np')}?"
            ans = self.answer_text(s)
            if ans and self.question_ok(q) and _novel_enough(q, ans):
                return True, _concept(q, ans, "enumeration", m.group("np"), [s.raw], 2.4, s.raw)
            return True, None
        return False, None

    def _there_are_these(self, s: Sent, t: str) -> tuple[str | None, Cand | None]:
        """'There are two X. These are A and B.': ``(question, candidate)``; a question without a
        candidate is carried to :meth:`_intro_list`."""
        q = None
        # "There are two X. These are A and B."
        m = re.match(rf"^There (?:are|were) (?P<n>{_NUMWORDS}) (?P<np>[a-z][^,;:]{{3,90}}?)\.?$", t)
        if m and not _has_pronoun(m.group("np")):
            nxt = [x for x in self.block_sents.get(s.block, []) if x.pos == s.pos + 1]
            if nxt and re.match(r"^(These|They) (are|include)\b", nxt[0].text) and not nxt[0].multiline:
                q = f"What are the {m.group('n')} {m.group('np')}?"
                ans = _finish(t) + " " + _finish(re.sub(r"^(These|They)\b", lambda _m: "They", nxt[0].text))
                if self.question_ok(q) and _novel_enough(q, ans) and "\\" not in ans:
                    return q, _concept(q, ans, "enumeration", m.group("np"), [s.raw, nxt[0].raw], 2.6, s.raw)
        return q, None

    def _intro_list(self, s: Sent, t: str, q: str | None) -> Cand | None:
        """An intro sentence followed by a list ('... are as follows:', 'There are three ...')."""
        # intro sentence + following list
        if not s.raw.rstrip().endswith((":", "：")) and not re.search(rf"(?i)\b({_NUMWORDS}) [a-z]", t):
            return None
        if s.pos != len(self.block_sents.get(s.block, [])) - 1:
            return None
        items = self._items_after(s.block)
        intro_block = self.blocks[s.block]
        if intro_block.kind == "item" and any(self.blocks[j].indent <= intro_block.indent for j in items):
            # a step of a procedure is no intro to the steps after it ("Allow to air dry for 10
            # seconds." -> "What 10 seconds do allow to air dry for?", AA034, read defective)
            return None
        if len(items) < 2 or len(items) > 12:
            return None
        intro = t.rstrip(":. ")
        intro = re.sub(r"\s*\(see [^)]*\)", "", intro)
        m1 = re.match(r"^(?:The )?(?P<subj>[^,;:]{3,90}?) (?P<be>are|is|include|includes) (?:as follows|the following)$", intro)
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
                return None
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
            return None
        built = self._list_answer(s, intro, items)
        if built is None:
            return None
        answer, ev = built
        return _concept(q, answer, "enumeration", kp, ev, 2.6, s.raw)

    def _list_answer(self, s: Sent, intro: str, items: list[int]) -> tuple[str, list[str]] | None:
        """The intro sentence and its list items as one answer, with the evidence; None when an
        item is unusable, fewer than two remain, or the answer is too long."""
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
            return None
        answer = _finish(_cap_first(intro)) if not intro.endswith(":") else intro
        answer = re.sub(r"\.$", ":", answer) + "\n" + "\n".join(lines_)
        if len(answer) > 2400:
            return None
        return answer, ev

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
            topic = {w.lower()[:5] for w in _words(h) if w.lower() not in _HEADING_STOP}
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
