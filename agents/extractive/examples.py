"""Worked-example extractors: block-quoted problems with their solutions, and scenario paragraphs."""

from __future__ import annotations

import re

from prepbench.agents.extractive.blocks import _PROBLEM_NO_RE, _SOLUTION_RE, Block
from prepbench.agents.extractive.grammar import _BAD_START, _CITE_PAREN_RE, Sent, _finish, _words
from prepbench.agents.extractive.procedures import _calculator_rows, _resolve_person
from prepbench.agents.extractive.text import clean_inline, latex_to_text, split_sentences


def _add_math_steps(b: Block, steps: list[tuple[str, list[str], bool]]) -> None:
    """Append a display-math block's rows to ``steps`` (text, evidence, is_math), in place.

    A row starting with ``=`` continues the previous math step; a prose step ending in a
    copula or colon ("... is:") takes the first row as its completion.
    """
    text = latex_to_text(b.raw)
    if not text or re.search(r"[\\{}]", text) or not re.search(r"[=×+÷/-]", text):
        return
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
    if ev and steps:
        steps[-1] = (steps[-1][0], steps[-1][1] + ev, steps[-1][2])


class ExampleExtractors:
    """Worked-example (case) extractors; mixed into the extractor."""

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
                _add_math_steps(b, steps)
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
        return _whole_example(
            {
                "title": title,
                "case": case,
                "question": question,
                "steps": steps,
                "answer": answer,
                "evidence": case_ev + [q_ev] + steps_ev + (answer_ev if isinstance(answer_ev, list) else [answer_ev]),
                "numeric": bool(re.search(r"\d", answer)),
                "key": q_ev,
            }
        )

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
        return _whole_example(
            {
                "title": None,
                "case": case,
                "question": question,
                "steps": steps,
                "answer": answer,
                "evidence": case_ev + [qsent.raw] + steps_ev + (answer_ev if isinstance(answer_ev, list) else [answer_ev]),
                "numeric": bool(re.search(r"\d", answer)),
                "key": qsent.raw,
            }
        )


#: a case that opens mid-story ("The other end of the spring ...") or a step that points elsewhere
_LEANS_ON = re.compile(r"(?i)^(the (other|same|former|latter)|this|these|that|those|it|they|then|also)\b")
_POINTS_ELSEWHERE = re.compile(r"(?i)\b(example|equation|eq\.|figure|table|section|chapter)\s*\(?\d")


def _whole_example(ex: dict) -> dict | None:
    """``ex`` when it stands alone, else None: its case states facts (not only the exercise's
    prompts), opens with its own subject, no step or answer points to another example or
    equation, the answer is a sentence (not a "where ..." fragment), and every figure of the
    answer is in the case, the question or the steps (not read off a graph or a table left out)."""
    case_sents = [t for t in re.split(r"(?<=[.?!])\s+", ex["case"].replace("\n- ", " ")) if t.strip()]
    stated = [
        t
        for t in case_sents
        if not t.rstrip().endswith("?") and not re.match(r"(?i)(show|draw|graph|plot|sketch|label|explain)\b", t.strip())
    ]
    if not stated or _LEANS_ON.match(ex["case"].lstrip("- ").strip()):
        return None
    answer = ex["answer"].strip()
    if not answer[:1].isupper() and not answer[:1].isdigit() and not answer.startswith("$"):
        return None
    if any(_POINTS_ELSEWHERE.search(t) for t in [*ex["steps"], answer]):
        return None
    given = " ".join([ex["case"], ex["question"], *ex["steps"]])
    numbers = lambda t: {n.replace(",", "").rstrip(".") for n in re.findall(r"\d[\d,]*\.?\d*", t)}  # noqa: E731
    if numbers(answer) - numbers(given):
        return None
    return ex
