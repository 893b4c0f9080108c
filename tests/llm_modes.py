"""The test server's replies to the generation modes' prompts (``prepbench generate``).

Deterministic functions of the prompt, built from the seed text the prompt carries, so a run
and its resumed twin get the same replies:

- instance: the first demonstration's problem with its numbers scaled and the theme named
  (math: a short solution ending in ``\\boxed{}``; general: an answer stitched from the other
  demonstrations' responses);
- response: a short answer built from the instruction (math: ends in ``\\boxed{}``);
- enhance: the seed instance tidied: GSM8K's ``<<...>>`` calculator notes removed and its
  ``#### N`` line turned into ``\\boxed{N}``, bracketed placeholders left as they are unless the
  prompt says the previous reply was rejected (then they are filled in);
- the intrinsic-metric judge (``score metrics --judge``, ``compare --mode --judge``): a line of
  feedback and ``Score: N``, N from the graded text's length (quality: the response's words,
  difficulty: the instruction's), so a hand-run server grades too.
"""

from __future__ import annotations

import hashlib
import re

from llm_messages import Reply, Request
from llm_replies import _wrap_structured

DEMO_RE = re.compile(
    r"<demonstration \d+>\n(?:Instruction|Problem):\n(?P<q>.*?)\n\n(?:Response|Solution):\n(?P<a>.*?)\n</demonstration>", re.S
)
THEME_RE = re.compile(r"- Its topic: (?P<t>.+?)\.\n")
NUMBER_RE = re.compile(r"(?<![\w.])(\d+(?:\.\d+)?)")
PLACEHOLDER_RE = re.compile(
    r"\[[^\]\n]{0,40}\b(?:name|insert|placeholder|your|address|date|company|topic)\b[^\]\n]{0,40}\]", re.I
)


def block(text: str, tag: str) -> str | None:
    """The text between ``<tag>`` and ``</tag>`` lines, or None."""
    m = re.search(rf"<{tag}>\n(.*?)\n</{tag}>", text, re.S)
    return m.group(1) if m else None


def is_mode_prompt(text: str) -> bool:
    """A generation-mode prompt of the shipped skills."""
    return "Reply with one JSON object and nothing else" in text and any(
        f"<{t}" in text for t in ("demonstration 1>", "instruction>", "problem>")
    )


def _k(*parts: str) -> int:
    return int(hashlib.sha256("\x00".join(parts).encode()).hexdigest()[:8], 16)


def final_number(solution: str) -> float | None:
    """A seed solution's final answer: GSM8K's ``#### N`` or MATH's ``\\boxed{N}``, when numeric."""
    m = re.search(r"####\s*(-?[\d,]+(?:\.\d+)?)", solution) or re.search(r"\\boxed\{(-?[\d,]+(?:\.\d+)?)\}", solution)
    return float(m.group(1).replace(",", "")) if m else None


def _fmt(x: float) -> str:
    return str(int(x)) if float(x).is_integer() else f"{x:.2f}"


def new_instance(demos: list[tuple[str, str]], theme: str, math: bool, retry: bool) -> dict:
    """A new instance from the demonstrations (see the module docstring); ``retry`` takes the second one."""
    q, a = demos[1 if retry and len(demos) > 1 else 0]
    k = 2 + _k(q, theme) % 5
    scaled = NUMBER_RE.sub(lambda m: _fmt(float(m.group(1)) * k), q)
    topic = theme or "a new setting"
    if math:
        ans = final_number(a)
        result = _fmt(ans * k) if ans is not None else str(len(q.split()) * k)
        steps = f"Every given quantity is {k} times the one in the simpler version of this problem.\n"
        steps += f"The same steps therefore give {k} times its answer, which is {result}.\n\\boxed{{{result}}}"
        return {"instruction": f"In a problem about {topic}: {scaled}", "response": steps}
    others = [x[1].split(". ")[0].strip().rstrip(".") for x in demos[1:]] or [a]
    resp = f"Looking at this through {topic}, two points matter. First, {others[0]}."
    if len(others) > 1:
        resp += f" Second, {others[1]}."
    return {"instruction": f"With {topic} in mind: {scaled} Explain your answer in two points.", "response": resp}


def answer(instruction: str, math: bool) -> str:
    """A short response to a seed instruction."""
    words = re.findall(r"[A-Za-z]+", instruction)
    gist = " ".join(words[:12])
    if math:
        total = sum(float(x) for x in re.findall(r"\d+(?:\.\d+)?", instruction)[:6]) or len(words)
        return f"We collect the quantities given in the problem.\nCombining them step by step gives {_fmt(total)}.\n\\boxed{{{_fmt(total)}}}"
    lines = [ln for ln in instruction.split("\n\n")[1:] if ln.strip()]
    context = lines[0].split(". ")[0].strip().rstrip(".") + "." if lines else ""
    return f"In short: the question is about {gist.lower()}. {context}".strip()


def enhanced(instruction: str, response: str, math: bool, retry: bool) -> dict:
    """The seed instance tidied (see the module docstring)."""
    resp = re.sub(r"<<[^>]*>>", "", response).strip()
    if math:
        resp = re.sub(r"\n?####\s*(.+)$", lambda m: f"\n\\boxed{{{m.group(1).strip()}}}", resp)
        if "\\boxed" not in resp:
            resp += f"\n\\boxed{{{_fmt(final_number(response) or 0)}}}"
    if retry:
        resp, instruction = PLACEHOLDER_RE.sub("Alex", resp), PLACEHOLDER_RE.sub("Alex", instruction)
    return {"instruction": " ".join(instruction.split()) if not math else instruction.strip(), "response": resp}


def is_judge_prompt(text: str) -> bool:
    """A grading prompt of the intrinsic-metric judge (``evaluation/judge_metrics.py``)."""
    return text.startswith("### Aspect to grade") and "\n### Instruction\n" in text


def judge_reply(req: Request) -> Reply:
    """The judge's grade (see the module docstring), in text as the judge asks."""
    text = req.last_user_text
    aspect = "difficulty" if text.startswith("### Aspect to grade\ndifficulty") else "quality"
    graded = block_after(text, "### Instruction" if aspect == "difficulty" else "### Response")
    score = 1 + len(graded.split()) % 5
    return Reply(content=f"The {aspect} fits level {score} of the rubric.\nScore: {score}")


def block_after(text: str, heading: str) -> str:
    """The text under a ``### heading`` of a prompt, up to the next ``###`` heading."""
    m = re.search(rf"{re.escape(heading)}\n(.*?)(?:\n### |\Z)", text, re.S)
    return m.group(1) if m else ""


def mode_reply(req: Request) -> Reply:
    """The reply to a generation-mode prompt, through the channel the request asked for."""
    text = next((m.text for m in req.messages if m.role == "user"), "")  # the slot's prompt (not a parse-repair turn)
    math = "\\boxed{" in text
    retry = "was rejected:" in text
    demos = [(m.group("q"), m.group("a")) for m in DEMO_RE.finditer(text)]
    if demos:
        m = THEME_RE.search(text)
        value = new_instance(demos, m.group("t") if m else "", math, retry)
    else:
        instruction = block(text, "problem") or block(text, "instruction") or ""
        response = block(text, "solution") or block(text, "response")
        if response is not None:
            value = enhanced(instruction, response, math, retry)
        else:
            value = {"response": answer(instruction, math)}
    return _wrap_structured(req, value)
