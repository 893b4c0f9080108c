"""The LLM judge of benchmark decontamination: is a flagged sample the same question as the test item?

Yang et al. 2023, "Rethinking Benchmark and Contamination for Language Models with Rephrased
Samples" (arXiv 2311.04850, §3, the "LLM decontaminator"): embedding retrieval finds the test
items closest to a training sample, then a strong LLM is shown the two and asked whether they
are the same question, disregarding names, numbers' formatting and word order; it answers True
or False. prepbench asks it about every flag of :mod:`prepbench.tools.decontaminate` (n-gram and
embedding): a flag the judge answers False to is kept in the ledger as ``clean`` and no longer
excludes its sample.

Requests go through the one model layer (:func:`~prepbench.agents.models.make_resilient_chat`:
concurrency, rate limits, retries, prices); every attempt is a
:class:`~prepbench.tools.ledger.CallRecord` (node ``decontamination_judge``). A reply that is
neither True nor False is asked once more; a pair whose calls fail for good gets ``None`` (the
flag stands, marked ``error``).
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import re
from typing import Any, Sequence

from prepbench.tools.ledger import CallRecord

NODE = "decontamination_judge"

SYSTEM_PROMPT = """You check training data for benchmark contamination.
You are given two questions, each between curly braces: part 1 comes from a training set, part 2 from a benchmark's test set.
Decide whether they are the same question: the same problem asked again, possibly reworded, reordered, translated or with different names.
Two questions on the same topic that ask for different things, or would have different answers, are not the same.
Answer with exactly one word: True if they are the same question, False otherwise."""

USER_TEMPLATE = "part 1: {{\n{sample}\n}}\npart 2: {{\n{item}\n}}"

_VERDICT = re.compile(r"\b(true|false)\b", re.IGNORECASE)


def parse_verdict(text: str) -> bool | None:
    """True/False from the judge's reply (the first of the two words in it), else None."""
    m = _VERDICT.search(text or "")
    return None if m is None else m.group(1).lower() == "true"


class ContaminationJudge:
    """Confirms flagged pairs with a chat model (the :class:`~prepbench.tools.decontaminate.Judge` protocol).

    Args:
        chat: a :class:`~prepbench.agents.models.ratelimit.ResilientChat`.
        max_chars: each question is cut to this many characters.
    """

    def __init__(self, chat: Any, max_chars: int = 4000):
        self.chat = chat
        self.max_chars = max_chars

    def __call__(self, pairs: Sequence[tuple[str, str]]) -> tuple[list[tuple[bool | None, str]], list[CallRecord]]:
        """``([(same, reply or error)], calls)`` for ``[(sample question, test item question)]``, in order."""
        try:
            asyncio.get_running_loop()
        except RuntimeError:
            return asyncio.run(self._all(pairs))
        with concurrent.futures.ThreadPoolExecutor(1) as pool:  # called from async code: its own loop
            return pool.submit(asyncio.run, self._all(pairs)).result()

    async def _all(self, pairs: Sequence[tuple[str, str]]) -> tuple[list[tuple[bool | None, str]], list[CallRecord]]:
        results = await asyncio.gather(*(self._one(a, b) for a, b in pairs))
        return [r for r, _ in results], [c for _, calls in results for c in calls]

    async def _one(self, sample: str, item: str) -> tuple[tuple[bool | None, str], list[CallRecord]]:
        from langchain_core.messages import HumanMessage, SystemMessage

        from prepbench.agents.models.ratelimit import ModelCallError

        messages = [
            SystemMessage(content=SYSTEM_PROMPT),
            HumanMessage(content=USER_TEMPLATE.format(sample=sample[: self.max_chars], item=item[: self.max_chars])),
        ]
        calls: list[CallRecord] = []
        reply = ""
        for _ in range(2):  # a reply that is neither True nor False is asked once more
            try:
                msg, got = await self.chat.ainvoke(messages, node=NODE)
            except ModelCallError as e:
                return (None, str(e)), calls + list(e.calls)
            calls += got
            reply = msg.content if isinstance(msg.content, str) else str(msg.content)
            verdict = parse_verdict(reply)
            if verdict is not None:
                return (verdict, reply.strip()[:300]), calls
        return (None, f"no True/False in the reply: {reply.strip()[:200]}"), calls


def make_contamination_judge(spec: str, **options: Any) -> ContaminationJudge:
    """A :class:`ContaminationJudge` on ``spec`` (``openai:<model>``, ``anthropic:<model>``, ...)
    through :func:`~prepbench.agents.models.make_resilient_chat` (temperature 0, short replies).

    Options are those of :func:`~prepbench.agents.models.make_resilient_chat` (``base_url``,
    ``concurrency``, ``rpm``, ``timeout``, ``max_retries``, ``prices``, ...).

    Raises:
        ModelSpecError: unknown spec, or a missing backend.
    """
    from prepbench.agents.models import make_resilient_chat

    return ContaminationJudge(make_resilient_chat(spec, **{"temperature": 0.0, "max_tokens": 256, **options}))
