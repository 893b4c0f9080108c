"""The science book's own checkpoints (Modeling with Physics, ../shared/corpora/science) as
concept_qa samples keyed by the book's answer, its definitions boxes as glossary entries, and
the gate's reading of a multiple-choice question (its stem checked, its options as context)."""

from __future__ import annotations

import re

import pytest

from prepbench.agents.extractive import ExtractiveGenerator
from prepbench.agents.extractive.checkpoints import checkpoint_candidates
from prepbench.tools.chunking import chunk_document
from prepbench.tools.ingest import load_document
from prepbench.tools.skills import load_skill
from prepbench.tools.validate import Gate
from prepbench.tools.validate.text import choice_parts

from cli_helpers import SHARED

BOOK = SHARED / "corpora" / "science" / "modeling-with-physics"
needs_science = pytest.mark.skipif(not BOOK.is_dir(), reason="needs ../shared/corpora/science")


def _block(doc: str, starts: str) -> str:
    """The block-quoted checkpoint of chapter ``doc`` whose question line starts with ``starts``."""
    text = (BOOK / doc).read_text(encoding="utf-8")
    for m in re.finditer(r"(?m)^> \*\*Checkpoint[^\n]*\n(?:>[^\n]*\n)+", text):
        if re.search(rf"(?m)^> {re.escape(starts)}", m.group(0)):
            return m.group(0)
    raise AssertionError(f"no checkpoint starting {starts!r} in {doc}")


@needs_science
def test_a_multiple_choice_checkpoint_is_asked_with_its_options_and_keyed_by_the_book():
    block = _block("09Gravity.md", "An object is in a circular orbit")
    (cand,) = checkpoint_candidates("Some text before.\n\n" + block)
    q, a = cand.fields["question"], cand.fields["answer"]
    assert q.startswith("An object is in a circular orbit with radius $r$ and has an orbital speed $v$.")
    # the conversion's stray "}" after the "?" is dropped; the options follow, one per line
    assert "?}" not in q and q.split("\n")[0].endswith("orbital speed?")
    assert q.split("\n")[1:] == ["1. $2v$", "2. $8v$", "3. $\\sqrt{8}v$.", "4. $\\frac{1}{\\sqrt{2}}v$"]
    assert a == "4. $\\frac{1}{\\sqrt{2}}v$"
    # the evidence is the whole block, its answer key included, verbatim
    assert cand.evidence == [block.strip()] and "> > **Answer**" in cand.evidence[0]


@needs_science
@pytest.mark.parametrize(
    ("doc", "starts"),
    [
        ("14FluidMechanics.md", "*Figure 14.8"),  # "the three glasses in Figure 14.8": needs the figure
        ("04NewMomentumAndCM.md", "Using the data from Table 4.1"),  # needs the table
        ("04NewMomentumAndCM.md", "If we were to graph"),  # "the graph" of the book's own discussion
        ("08PotentialECons.md", "Check the box for the Grid"),  # a simulation's steps, two sentences
    ],
)
def test_a_checkpoint_that_leans_on_the_book_gives_no_candidate(doc, starts):
    assert checkpoint_candidates(_block(doc, starts)) == []


@needs_science
def test_no_candidate_without_the_key_or_with_a_key_that_names_no_option():
    block = _block("23SpecialRelativity.md", "What speed, $v$, corresponds")
    question_only = block.split("> > **Answer**")[0]
    assert checkpoint_candidates(question_only) == []  # the key is in the next chunk
    assert checkpoint_candidates(re.sub(r"> > 2\.", "> > 7.", block)) == []
    (cand,) = checkpoint_candidates(block)
    assert cand.fields["answer"] == "2. $v=0.92c$"


@needs_science
def test_think_about_it_probes_are_never_read():
    # the chapter-opening probe whose key calls "a continuous force is needed for continuous motion" true
    text = (BOOK / "05NewtonsLaws.md").read_text(encoding="utf-8")
    probe = text[text.index("> **Think About It**") : text.index("## Newton's Three Laws")]
    assert "> > **Answer**" in probe and checkpoint_candidates(probe) == []


def test_choice_parts_splits_a_stem_from_two_or_more_options():
    assert choice_parts("What is the SI unit for impulse?\n1. kg m/s^2\n2. kg m/s") == (
        "What is the SI unit for impulse?",
        "1. kg m/s^2\n2. kg m/s",
    )
    assert choice_parts("What is work?") is None
    assert choice_parts("Name one:\n1. work") is None  # one option is a list item, not a choice
    assert choice_parts("1. first\n2. second") is None  # no stem


@needs_science
def test_the_gate_checks_a_multiple_choice_stem_and_lets_its_options_introduce_what_it_names():
    gate = Gate(load_skill("science"), dedup=False)
    block = _block("07WorkEnergy.md", "As the skater goes down the ramp")
    (cand,) = checkpoint_candidates(block)
    sample = {"sample_type": "concept_qa", "chunk_id": "c", "evidence": cand.evidence, **cand.fields}
    sample.pop("knowledge_point")
    sample["knowledge_point"] = "work"
    v = gate.screen(dict(sample), block)
    assert not v.ok and v.rule == "self_contained" and "the skater" in v.detail  # the simulation's skater
    # "which of these" points at the item's own options; the answer repeats its option and still
    # adds to the stem (answer_repeats_question reads the stem)
    block = _block("01Introduction.md", "Special relativity can be applied to which of these")
    (cand,) = checkpoint_candidates(block)
    sample = {"sample_type": "concept_qa", "chunk_id": "c", "evidence": cand.evidence, **cand.fields}
    assert gate.screen(dict(sample), block).ok
    for option in ("1", "2", "3"):
        assert f"\n{option}. " in sample["question"]


@needs_science
def test_a_definitions_box_gives_glossary_samples_its_quantities_asked_bare():
    doc = load_document(BOOK / "07WorkEnergy.md", "07WorkEnergy.md")
    gen = ExtractiveGenerator()
    gen.read_documents([doc])
    skill = load_skill("science")
    chunk = next(c for c in chunk_document(doc) if "**Important Definitions**" in c.text)
    out = gen.generate(chunk, skill, {"concept_qa": 3})
    pairs = {s["question"]: s["answer"] for s in out}
    # "SI units: [J]" makes kinetic energy a quantity: "What is kinetic energy?", not "a kinetic energy"
    assert pairs["What is kinetic energy?"] == (
        "Kinetic energy is a form of energy that an object with a mass has by virtue of having a non-zero speed."
    )
    assert all("SI units" not in a and "Common variable" not in a for a in pairs.values())


@needs_science
def test_a_stem_that_is_a_statement_gives_no_candidate():
    # "You are in an elevator accelerating upwards." then two options: no question (read weak, seed 1239)
    assert checkpoint_candidates(_block("05NewtonsLaws.md", "You are in an elevator")) == []
    # a sentence to complete is asked: "The gradient of a function of one variable, $f(x)$, is"
    (cand,) = checkpoint_candidates(_block("24Calculus.md", "The gradient of a function"))
    assert cand.fields["answer"] == "3. equal to its derivative"


def test_a_plural_glossary_term_defined_by_a_verb_takes_no_copula():
    from prepbench.agents.extractive.articles import gloss_answer as _gloss_answer

    # Pharmacology for Nurses' glossary: "**mast cell stabilizers**: prevent mast cell degranulation ..."
    # ("Mast cell stabilizers are prevent ...": read weak, seed 1240)
    definition = "prevent mast cell degranulation and mediator release"
    assert _gloss_answer("Mast cell stabilizers", "are", definition, True) == f"Mast cell stabilizers {definition}"
    assert _gloss_answer("Inflation", "is", "a general rise in prices", False) == "Inflation is a general rise in prices"
