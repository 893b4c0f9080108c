"""A book's own checkpoint questions, answered by the book's own answer key.

Some textbooks stop the reader after a concept with a block-quoted question and its answer
nested under it::

    > **Checkpoint**
    >
    > What speed, $v$, corresponds to a gamma factor of $2.5$?
    > 1.  $v=2.5c$
    > 2.  $v=0.92c$
    >
    > > **Answer**
    > >
    > > 2.

That gives a ``concept_qa`` candidate in the book's own words: the question with its options
("What speed, $v$, corresponds to a gamma factor of $2.5$?\\n1. $v=2.5c$\\n2. $v=0.92c$") and the
keyed option as the answer ("2. $v=0.92c$"), or, for an open checkpoint, its worded answer. The
evidence is the whole block, answer key included.

No candidate when:

* the question leans on what the block does not hold: a figure or table it shows or cites beyond a
  parenthesis ("the three glasses in Figure 14.8", "Using the data from Table 4.1"), the text
  "above"/"below", an example or the chapter's overview, or the book's own discussion ("If we were
  to graph the velocity vs. time, the graph is"); a "(Figure 7.2)" aside is dropped, and so is a
  figure's caption line;
* the stem of a multiple-choice checkpoint ends with a full stop: a statement, neither a question nor
  a sentence to complete ("You are in an elevator accelerating upwards.");
* the key names no option of the block, or several ("2. and 3."); an open checkpoint asks more than
  one sentence (a simulation's steps: "Turn off the friction, and ... Release the skater ...") or its
  answer is no worded sentence (a display formula, a table);
* the block is a "Think About It" probe: those open a chapter and ask for the reader's intuition
  before the material, and their keys are not always the physics the chapter then teaches
  (Modeling with Physics, chapter 5, keys "a continuous force is needed for continuous motion" as
  true), so they are never read.

The book's key is taken as given: a checkpoint whose key is wrong in the source gives a wrong
sample (the gate checks that a sample is faithful to its source, not that the source is right).
"""

from __future__ import annotations

import re

from prepbench.agents.extractive.candidates import Cand, _concept

#: "> **Checkpoint**", "> **Checkpoint 3.2**"
_HEADER = re.compile(r"^>[ \t]*\*\*Checkpoint(?:\s+\d+(?:\.\d+)*)?\*\*[ \t]*$")
#: "> > **Answer**"
_ANSWER = re.compile(r"^>[ \t]*>[ \t]*\*\*Answers?\*\*[ \t]*$")
#: an option line of the question: "1.  $2v$"
_OPTION = re.compile(r"^(\d{1,2})\.\s+(\S.*)$")
#: a key: "4.", "4", "4. Because ..."
_KEY = re.compile(r"^(\d{1,2})\.?(?:\s+(.*))?$", re.S)
#: a figure's caption line inside the block
_CAPTION = re.compile(r"^\*(?:Figure|Table)\s+[\d.]+:.*\*$")
#: a parenthesis that only cites a figure or table: "(Figure 7.2)"
_CITE = re.compile(r"\s*\((?:see\s+)?(?:Figure|Fig\.|Table)\s+\d+(?:\.\d+)*\)")
#: what a question cannot do without the book around it
_LEANS = re.compile(
    r"(?i)\b(?:figure|fig\.|table|shown|above|below|previous|preceding|overview|example|exercise"
    r"|section|chapter|equation|graph(?:ed)? (?:above|below)|this (?:model|example|situation|case|problem))\b"
)
#: the book's own discussion: "If we were to graph the velocity vs. time, the graph is" (of which motion?)
_OURS = re.compile(r"(?i)\b(?:we|our|us)\b")
#: a second sentence before the question: a simulation's steps ("Check the box for the Grid to show. How ...")
_TWO_SENTENCES = re.compile(r"[.?!]\s+\S")
#: the most characters of a question, options included (general's ``question_length`` rule)
MAX_QUESTION = 600


def _unquote(lines: list[str], depth: int) -> list[str]:
    """``lines`` without ``depth`` levels of ``>`` quoting."""
    out = []
    for ln in lines:
        for _ in range(depth):
            ln = re.sub(r"^[ \t]*>[ \t]?", "", ln, count=1)
        out.append(ln.rstrip())
    return out


def _tidy(text: str) -> str:
    """One line of the book, spacing normalised; a stray closing brace after the final "?" (a
    conversion leftover: "what will be the value of the orbital speed?}") dropped."""
    text = " ".join(text.split())
    if text.count("}") > text.count("{"):
        text = re.sub(r"([?.])\}$", r"\1", text)
    return text


def checkpoint_candidates(text: str) -> list[Cand]:
    """``concept_qa`` candidates of the checkpoints in a chunk's ``text`` (see the module docstring),
    in document order; empty when the chunk has none or none stands alone."""
    lines = text.split("\n")
    out: list[Cand] = []
    i = 0
    while i < len(lines):
        if not _HEADER.match(lines[i]):
            i += 1
            continue
        j = i + 1
        while j < len(lines) and lines[j].lstrip().startswith(">"):
            j += 1
        cand = _checkpoint(lines[i:j])
        if cand is not None:
            out.append(cand)
        i = j
    return out


def _checkpoint(block: list[str]) -> Cand | None:
    """The candidate of one checkpoint ``block`` (its ``>`` lines, header first), or None."""
    at = next((k for k, ln in enumerate(block) if _ANSWER.match(ln)), None)
    if at is None:
        return None  # the key is in another chunk, or the book gives none
    asked = [ln.strip() for ln in _unquote(block[1:at], 1)]
    key = " ".join(ln.strip() for ln in _unquote(block[at + 1 :], 2) if ln.strip())
    stem_lines: list[str] = []
    options: list[tuple[str, str]] = []
    for ln in asked:
        if not ln or _CAPTION.match(ln):
            continue
        m = _OPTION.match(ln)
        if m:
            options.append((m.group(1), _tidy(m.group(2))))
        elif options:
            return None  # text after the options: a layout this reader does not know
        else:
            stem_lines.append(ln)
    stem = _tidy(_CITE.sub("", " ".join(stem_lines)))
    if not stem or _LEANS.search(stem) or _OURS.search(stem) or "|" in stem or "$$" in stem:
        return None
    if options:
        if stem.endswith("."):
            # a statement, not a question or a sentence to complete: "You are in an elevator
            # accelerating upwards.", "If both objects have the same acceleration vector." (read weak)
            return None
        m = _KEY.match(key)
        numbers = [n for n, _ in options]
        if m is None or m.group(1) not in numbers or len(set(numbers)) != len(numbers):
            return None
        if m.group(2) and re.match(r"(?i)(?:and|or|&|,)\b", m.group(2)):
            return None  # several options keyed
        chosen = dict(options)[m.group(1)]
        if any(_LEANS.search(o) for _, o in options):
            return None
        question = stem + "\n" + "\n".join(f"{n}. {o}" for n, o in options)
        answer = f"{m.group(1)}. {chosen}"
        if m.group(2):
            answer += " " + _tidy(m.group(2))
    else:
        # an open checkpoint: a worded answer, not a formula or a table
        if (
            not stem.endswith("?")
            or _TWO_SENTENCES.search(stem)
            or "$$" in key
            or "|" in key
            or not re.search(r"[.!]$", key)
            or len(key) > 600
        ):
            return None
        question, answer = stem, _tidy(key)
    if len(question) > MAX_QUESTION:
        return None
    evidence = "\n".join(block).strip()
    cand = _concept(question, answer, "fact", stem, [evidence], 0.9, block[0] + stem)
    cand.kind = "checkpoint"
    return cand
