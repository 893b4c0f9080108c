"""Named results of the math book (Judson's *Abstract Algebra*, ../shared/corpora/math) as
theorem_statement samples: asked by the name the field uses, answered with the whole statement."""

from __future__ import annotations

from pathlib import Path

import pytest

from prepbench.agents.extractive import ExtractiveGenerator
from prepbench.agents.extractive.theorems import book_results, called, named_results
from prepbench.tools.chunking import chunk_document
from prepbench.tools.ingest import load_document
from prepbench.tools.skills import load_skill
from prepbench.tools.validate.language import voice_problem

from cli_helpers import SHARED

JUDSON = SHARED / "corpora" / "math" / "abstract-algebra-judson"
needs_math = pytest.mark.skipif(not JUDSON.is_dir(), reason="needs ../shared/corpora/math")


def _book() -> list[tuple[str, str]]:
    return [(p.name, p.read_text(encoding="utf-8")) for p in sorted(Path(JUDSON).glob("[0-9]*.md"))]


@pytest.mark.parametrize(
    ("name", "kind", "expected"),
    [
        ("Division Algorithm", "Theorem", "the Division Algorithm"),
        ("De Morgan's Laws", "Theorem", "De Morgan's Laws"),
        ("Lagrange", "Theorem", "Lagrange’s Theorem"),
        ("Euclid", "Lemma", "Euclid’s Lemma"),
        ("Jordan-Hölder", "Theorem", "the Jordan-Hölder Theorem"),
        (
            "The Fundamental Theorem of Finitely Generated Abelian Groups",
            "Theorem",
            "the Fundamental Theorem of Finitely Generated Abelian Groups",
        ),
        ("Freshman's Dream", "Lemma", "the Freshman's Dream"),
        ("the converse is false", "Theorem", None),  # no result's name, no person's
    ],
)
def test_a_result_is_called_by_the_name_the_field_uses(name, kind, expected):
    assert called(name, kind) == expected


def test_the_statement_runs_to_its_proof_with_its_formula_and_its_second_part():
    text = (
        "**Theorem 6.19 (Fermat's Little Theorem).** Let $p$ be any prime number and suppose that $p \\nmid a$. Then\n\n"
        "$$\na^{p-1} \\equiv 1 \\pmod{ p }.\n$$\n\nFurthermore, for any integer $b$, $b^p \\equiv b \\pmod{ p}$.\n\n"
        "*Proof.* By Theorem 6.18, ...\n"
    )
    (cand,) = named_results(text)
    assert cand.fields["question"] == "What does Fermat's Little Theorem state?"
    assert cand.fields["answer"].startswith("Fermat's Little Theorem states: Let $p$ be any prime number")
    assert cand.fields["answer"].endswith("for any integer $b$, $b^p \\equiv b \\pmod{ p}$.")
    assert "Proof" not in cand.fields["answer"] and "6.19" not in cand.fields["question"] + cand.fields["answer"]
    assert cand.evidence[0] in text and cand.fields["statement_kind"] == "theorem"
    # the chunk ends inside the statement: no sample
    assert named_results(text.split("Furthermore")[0].rstrip() + "\n\nFurthermore, for any") == []
    # a result without a name: a question could only cite its number
    assert named_results("**Theorem 16.16.** Every finite integral domain is a field.\n\n*Proof.* ...") == []


@needs_math
def test_two_results_of_one_name_are_told_apart_by_their_structure_or_only_the_first_is_asked():
    book = book_results(_book())
    asked = [c.fields["question"] for path, text in _book() for c in named_results(text, path, book)]
    assert "What does the First Isomorphism Theorem for groups state?" in asked
    assert "What does the First Isomorphism Theorem for rings state?" in asked
    assert "What does the First Isomorphism Theorem state?" not in asked
    # both versions of Gauss's Lemma are about polynomials: the first is asked, once
    assert asked.count("What does Gauss's Lemma state?") == 1
    assert len(asked) == len(set(asked))


def _generated(name: str) -> list[dict]:
    """Every offline sample of one chapter of Judson, with that chapter as the book's context."""
    doc = load_document(JUDSON / name, name)
    gen = ExtractiveGenerator()
    gen.read_documents([doc])
    skill = load_skill("math")
    targets = {t: skill.target(t).per_chunk for t in skill.chunk_types}
    return [s for c in chunk_document(doc) for s in gen.generate(c, skill, targets)]


@needs_math
def test_the_offline_run_gives_theorem_statements_the_math_gate_accepts():
    samples = [s for s in _generated("15-the-sylow-theorems.md") if s["sample_type"] == "theorem_statement"]
    questions = {s["question"] for s in samples}
    assert {"What does the First Sylow Theorem state?", "What does the Third Sylow Theorem state?"} <= questions
    third = next(s for s in samples if s["question"] == "What does the Third Sylow Theorem state?")
    assert "the number of Sylow $p$-subgroups is congruent to $1 \\pmod{p}$" in third["answer"]


def test_a_formula_s_capital_i_is_an_ideal_not_the_author():
    assert voice_problem("Let $I$ be an ideal of a ring $R$. Then $R/I$ is a ring.") is None
    assert voice_problem("I think that every ring is a field.") is not None


@needs_math
def test_the_book_s_context_read_in_parts_equals_the_whole():
    """A Ray run reads the documents in parts on its workers (``start_each``): each part gets the
    whole book's named results, so every document's context is the one a local run computes once
    the run calls ``finish()`` (before it, the context is not there yet)."""
    from prepbench.agents.extractive.generator import document_context

    docs = [type("Doc", (), {"rel_path": name, "text": text})() for name, text in _book()[:8]]
    calls: list[int] = []

    def start_each(fn, args_list):
        calls.append(len(args_list))
        return lambda: [fn(*args) for args in args_list]

    whole, parted = ExtractiveGenerator(), ExtractiveGenerator()
    whole.read_documents(docs)
    finish = parted.read_documents(docs, start_each=start_each, parts=3)
    assert calls == [3] and parted.document_context == {}
    finish()
    assert parted.document_context == whole.document_context == document_context([(d.rel_path, d.text) for d in docs])
    assert list(parted.document_context) == [d.rel_path for d in docs]
    # a part alone would not know a result named in another part of the book
    assert (
        document_context([(docs[-1].rel_path, docs[-1].text)])[docs[-1].rel_path]["results"]
        != whole.document_context[docs[-1].rel_path]["results"]
    )


@needs_math
def test_a_term_defined_by_a_condition_is_asked_by_its_condition():
    # "What is an integral domain?" answered "A commutative ring ... is said to be an integral domain
    # if ..." is refused as a classification under a condition; "When is ...?" asks what it defines
    samples = {s["question"]: s for s in _generated("16-rings.md")}
    domain = samples["When is a commutative ring with identity said to be an integral domain?"]
    assert domain["answer"] == "A commutative ring with identity is said to be an integral domain if it has no zero divisors."
    assert (
        samples["When is an element a in R nilpotent?"]["answer"]
        == "An element a in R is nilpotent if a^n = 0 for some positive integer n."
    )
    # "A nonempty set $R$ is a **ring** if it has two closed binary operations ... satisfying the
    # following conditions.": the conditions are a list after it, no candidate
    assert not any("ring" in q and q.startswith("When is a nonempty set") for q in samples)


@needs_math
def test_set_notation_is_kept_as_its_symbols_and_an_adjective_is_not_asked_what_it_is():
    from prepbench.agents.extractive.text import latex_to_text, lossy_math

    assert latex_to_text(r"X \subset {\mathbb R}^n") == "X ⊂ ℝ^n"
    assert latex_to_text(r"a \notin S, d \mid a, a \preceq b") == "a ∉ S, d ∣ a, a ⪯ b"
    assert not lossy_math(r"a subset $S$ of ${\mathbb Z}$") and lossy_math(r"$\langle 2 \rangle$")  # no symbol for it
    integers = {s["question"]: s["answer"] for s in _generated("02-the-integers.md")}
    assert integers["When is a nonempty subset S of ℤ well-ordered?"] == (
        "A nonempty subset S of ℤ is well-ordered if S contains a least element."
    )
    # "A group G with the property that a ∘ b = b ∘ a ... is called abelian or commutative."
    assert not any(q.startswith("What is abelian") for q in {s["question"] for s in _generated("03-groups.md")})


def test_vectors_units_and_operator_names_are_rendered_not_dropped():
    from prepbench.agents.extractive.text import latex_to_text, lossy_math

    assert latex_to_text(r"d\vec l \times \vec r") == "dl\u20d7 × r\u20d7"  # combining arrows, not "d l"
    assert latex_to_text(r"2 \mathrm{\Omega}") == "2 Ω"
    assert latex_to_text(r"\cos\theta") == "cos θ" and latex_to_text(r"\sin(x)") == "sin(x)"
    assert latex_to_text(r"{\rm kg}") == "kg" and latex_to_text(r"\hat r") == "r\u0302"
    assert not lossy_math(r"wire, $d\vec l$, of $2\,\Omega$") and lossy_math(r"$\langle 2 \rangle$")


def test_a_rule_s_outcome_is_asked_by_its_subject_and_verb_not_what_happens():
    from prepbench.agents.extractive.conditional import asked_outcome

    assert (
        asked_outcome("If", "N is a normal subgroup of a group G", "the cosets of N in G form a group G/N")
        == "If N is a normal subgroup of a group G, what do the cosets of N in G form?"
    )
    assert asked_outcome("If", "F is a finite field", "the characteristic of F is p, where p is prime") == (
        "If F is a finite field, what is the characteristic of F?"
    )
    # a pronoun subject, a negation, an adjective: "What happens if ...?" is asked instead
    assert asked_outcome("If", "there is only a single Sylow 7-subgroup", "it must be normal") is None
    assert asked_outcome("If", "preload is reduced", "the heart does not have to work as hard") is None
    assert (
        asked_outcome("When", "the switch closes", "the electrons leave the zinc, cross the resistor, and end up on the plate")
        is None
    )
