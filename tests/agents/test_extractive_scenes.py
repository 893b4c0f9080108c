"""The offline generator asks nothing about a numbered example's or a solution's own object, on real
chapters of Judson's *Abstract Algebra* and *Modeling with Physics* (``../shared/corpora``)."""

from __future__ import annotations

from prepbench.agents.extractive import ExtractiveGenerator
from prepbench.tools.chunking import Chunk
from prepbench.tools.skills import load_skill

from cli_helpers import SHARED


def _questions(path, start: str, end: str, skill: str, drop: str = "") -> list[str]:
    """The questions the generator makes of the piece of ``path`` from ``start`` to ``end`` (with
    ``drop`` cut out of it), read with its document's context."""
    text = path.read_text(encoding="utf-8")
    i = text.index(start)
    piece = text[i : text.index(end, i + len(start))].strip().replace(drop, "")
    gen = ExtractiveGenerator()
    gen.read_documents([type("Doc", (), {"rel_path": path.name, "text": text})()])
    chunk = Chunk("0123456789abcdef", "fedcba9876543210", path.name, 0, ["Examples"], 1, piece.count("\n") + 1, piece)
    sk = load_skill(skill)
    return [s["question"] for s in gen.generate(chunk, sk, {t: 5 for t in sk.sample_types})]


def test_a_step_of_a_numbered_example_or_of_a_solution_gives_no_question():
    """Seeds 1228 and 1230, read weak: "What happens if there is only a single Sylow 7-subgroup?"
    (a step of Example 15.17, on groups of order 56) and "What happens when a satellite orbits the
    Earth?" (the first line of Solution 9.1)."""
    judson = SHARED / "corpora" / "math" / "abstract-algebra-judson" / "15-the-sylow-theorems.md"
    asked = "What happens if there is only a single Sylow 7-subgroup?"
    assert asked not in _questions(judson, "**Example 15.17.**", "\n\n", "math")
    # without the example's label the same paragraph reads as the book's own statement
    assert asked in _questions(judson, "**Example 15.17.**", "\n\n", "math", drop="**Example 15.17.**")
    physics = SHARED / "corpora" / "science" / "modeling-with-physics" / "09Gravity.md"
    asked = "What happens when a satellite orbits the Earth?"
    assert asked not in _questions(physics, "> **Solution 9.1**", "\n\n", "science")
    assert asked in _questions(physics, "> **Solution 9.1**", "\n\n", "science", drop="**Solution 9.1**")
