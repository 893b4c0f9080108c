"""The offline generator on real chapters of OpenStax *Pharmacology for Nurses*
(``../shared/corpora/medical``): a combination drug's table and a list of effects a chunk gives
over several sentences."""

from __future__ import annotations

from prepbench.agents.extractive import ExtractiveGenerator
from prepbench.agents.extractive.drug_tables import drug_table
from prepbench.tools.chunking import Chunk
from prepbench.tools.skills import load_skill

from cli_helpers import SHARED

MEDICAL = SHARED / "corpora" / "medical" / "openstax-pharmacology-for-nurses"


def _piece(name: str, start: str, end: str) -> Chunk:
    text = (MEDICAL / name).read_text(encoding="utf-8")
    i = text.index(start)
    piece = text[i : text.index(end, i + len(start))].strip()
    return Chunk("0123456789abcdef", "fedcba9876543210", name, 0, ["Adverse Effects"], 1, piece.count("\n") + 1, piece)


def test_a_combination_drug_s_table_is_about_the_pair():
    """Seed 1228, read weak: "What are the adverse effects of nirmatrelvir?" from the table of
    nirmatrelvir/ritonavir (bradycardia and pruritus are the pair's)."""
    chunk = _piece("07-anti-infective-drugs.md", "Table 7.6 is a drug prototype table", "\n\n#")
    drug, fields = drug_table(chunk.text)
    assert drug == "Nirmatrelvir/ritonavir" and "Adverse Effects" in fields
    questions = [s["question"] for s in ExtractiveGenerator().generate(chunk, load_skill("medical"), {"concept_qa": 3})]
    assert questions and all("nirmatrelvir/ritonavir" in q.lower() for q in questions), questions
    # the title names the pair and the text one drug of it: which cell is whose is unclear, no table
    assert (
        drug_table(
            "a drug prototype table featuring hydralazine.\n\n**Drug Prototype Table: Hydralazine/Isosorbide Dinitrate**\n\n"
            "| **Adverse Effects**: Headache |"
        )
        is None
    )


def test_effects_a_chunk_lists_over_several_sentences_are_not_asked_from_the_first():
    """Seed 1229, read weak: "What can calcium channel blockers cause?" -> bradycardia only, where
    the next sentences add hypotension ("They also ...") and edema ("Additionally, ...")."""
    name = "17-antidysrhythmic-drugs.md"
    text = (MEDICAL / name).read_text(encoding="utf-8")
    gen = ExtractiveGenerator()
    gen.read_documents([type("Doc", (), {"rel_path": name, "text": text})()])
    skill = load_skill("medical")
    chunk = _piece(name, "### Adverse Effects and Contraindications\n\nCalcium channel blockers", "\n\n### ")
    asked = "What can calcium channel blockers cause?"
    assert asked not in [s["question"] for s in gen.generate(chunk, skill, {t: 3 for t in skill.sample_types})]
    # the same chunk without the sentences that add to the list: the one sentence is the whole answer
    first = "Calcium channel blockers can cause bradycardia as an extension of their therapeutic effect."
    cut = chunk.text.replace(chunk.text[chunk.text.index(first) + len(first) : chunk.text.index("edema.") + 6], "")
    alone = Chunk(chunk.chunk_id, chunk.doc_id, name, 0, chunk.heading_path, 1, cut.count("\n") + 1, cut)
    assert asked in [s["question"] for s in gen.generate(alone, skill, {t: 3 for t in skill.sample_types})]


def test_a_mechanism_cell_that_opens_with_an_adverb_is_the_drug_s_own_verb():
    """Seed 1230, read weak: "The mechanism of action of Albuterol is directly stimulates ..."."""
    from prepbench.agents.extractive.drug_tables import _mechanism

    cell = "Directly stimulates beta receptors in the lungs, which causes smooth muscle dilation and opens airways"
    assert (
        _mechanism("Albuterol", cell)
        == "Albuterol directly stimulates beta receptors in the lungs, which causes smooth muscle dilation and opens airways."
    )
    assert (
        _mechanism("Aspirin", "Irreversible inhibition of COX enzymes")
        == "The mechanism of action of aspirin is irreversible inhibition of COX enzymes."
    )


def test_a_bold_drug_name_leading_an_effect_is_no_definition():
    """Seed 1232, defective: "What is fludarabine?" -> "Fludarabine causes severe central nervous
    system toxicity, ..." (a boxed warning's lead, not what the drug is)."""
    name = "08-introduction-to-cancer-therapy-and-cancer-drugs.md"
    chunk = _piece(name, "> **Fludarabine** causes severe", "\n\n")
    questions = [s["question"] for s in ExtractiveGenerator().generate(chunk, load_skill("medical"), {"concept_qa": 3})]
    assert "What is fludarabine?" not in questions, questions


def test_a_definition_stops_before_the_next_term_s_definition():
    """Seed 1241, read weak (N024): "What is preload?" answered with the definitions of preload,
    afterload and contractility, one sentence of the book."""
    from prepbench.agents.extractive.candidates import first_definition

    chunk = _piece("22-cardiac-emergency-and-shock-drugs.md", "#### Cardiogenic Shock", "\n\n#")
    samples = ExtractiveGenerator().generate(chunk, load_skill("medical"), {"concept_qa": 6})
    preload = [s for s in samples if s["question"] == "What is preload?"]
    assert [s["answer"] for s in preload] == ["Preload is the amount of blood that returns to the heart (venous return)."]
    assert "afterload" in preload[0]["evidence"][0]  # the whole sentence stays the evidence
    # a second clause about the same subject, or one that is no clause of its own, stays
    kept = "A bond is a debt security, and it is traded over the counter."
    assert first_definition(kept) == kept
    assert first_definition("The answer is that the price is high.") == "The answer is that the price is high."
    inside = "Efficient markets are markets in which costs are minimal and prices are current."  # one definition
    assert first_definition(inside) == inside
    noted = "Inflation is a general increase in prices; expected rate is a key component of interest rates."  # a note on it
    assert first_definition(noted) == noted
    assert (
        first_definition(
            "The primary market is the market for new securities, and the secondary market is the market for used ones."
        )
        == "The primary market is the market for new securities."
    )


def test_a_step_of_a_procedure_is_no_intro_to_the_steps_after_it():
    """Seed 1252, read defective (AA034): the last sentence of step 13 of the intramuscular
    injection ("Allow to air dry for 10 seconds.") was taken for the intro of steps 14 to 22:
    "What 10 seconds do allow to air dry for?" -> the later steps."""
    chunk = _piece("02-drug-administration.md", "##### Steps to administering an intramuscular medication:", "\n\n#")
    assert "Allow to air dry for 10 seconds." in chunk.text
    skill = load_skill("medical")
    questions = [s["question"] for s in ExtractiveGenerator().generate(chunk, skill, {t: 3 for t in skill.sample_types})]
    assert not [q for q in questions if "air dry" in q or "seconds do" in q], questions


def test_an_adjunctive_indication_reads_as_an_adjunct():
    """Seed 1253, read weak (AB028): "Entacapone is indicated for adjunctive to levodopa in the
    treatment of PD." (the table's cell "Adjunctive to levodopa ...")."""
    name = "11-drugs-to-treat-parkinson-s-disease-and-multiple-sclerosis.md"
    gen = ExtractiveGenerator()
    gen.read_documents([type("Doc", (), {"rel_path": name, "text": (MEDICAL / name).read_text(encoding="utf-8")})()])
    table = _piece(name, "| **Drug Class**: Selective and reversible COMT inhibitors", "\n\n").text
    caption = "***Drug Prototype Table: Entacapone** (source: https://dailymed.nlm.nih.gov/dailymed/)*"
    assert caption in (MEDICAL / name).read_text(encoding="utf-8")
    chunk = Chunk("0123456789abcdef", "fedcba9876543210", name, 0, ["Adverse Effects"], 1, 9, f"{table}\n\n{caption}")
    skill = load_skill("medical")
    answers = [s["answer"] for s in gen.generate(chunk, skill, {t: 10 for t in skill.sample_types})]
    indicated = [a for a in answers if " is indicated " in a]
    assert indicated == ["Entacapone is indicated as an adjunct to levodopa in the treatment of PD."], answers


def test_an_eponym_in_a_table_cell_keeps_its_capital():
    """Seed 1254, read weak (AC031): "The contraindications of spironolactone include hyperkalemia,
    addison’s disease, ..." (the cell: "Hyperkalemia; Addison’s disease; Pregnancy; ...")."""
    from prepbench.agents.extractive.drug_tables import _join

    assert _join(["Hyperkalemia", "Addison’s disease", "Pregnancy"]) == "hyperkalemia, Addison’s disease and pregnancy"
    assert _join(["Cushing's syndrome", "Hypotension"]) == "Cushing's syndrome and hypotension"
    assert _join(["Worsening renal function", "CNS depression"]) == "worsening renal function and CNS depression"
