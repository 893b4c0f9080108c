"""The offline generator's glossary sentences (:mod:`prepbench.agents.extractive.articles`) on real
chapters of OpenStax *Principles of Finance* and *Pharmacology for Nurses* from ``../shared/corpora``."""

from __future__ import annotations

from pathlib import Path

from prepbench.agents.extractive import ExtractiveGenerator
from prepbench.tools.chunking import Chunk
from prepbench.tools.skills import load_skill

from cli_helpers import SHARED

SHARED_FINANCE = SHARED / "corpora" / "finance" / "openstax-principles-of-finance"


def _piece(path: Path, start: str, end: str, heading: list[str]) -> Chunk:
    """A chunk holding the verbatim piece of a real file from ``start`` to ``end``."""
    text = path.read_text(encoding="utf-8")
    i = text.index(start)
    piece = text[i : text.index(end, i + len(start))].strip()
    return Chunk("0123456789abcdef", "fedcba9876543210", path.name, 0, heading, 1, piece.count("\n") + 1, piece)


def test_the_book_s_own_usage_picks_a_glossary_term_s_article():
    """The glossary asks "What is an inflation?" and "What is an anaphylaxis?" no more (blind-read
    weak): the chapter's own text writes those terms bare, and "a receptor", "the
    renin-angiotensin-aldosterone system" (:func:`~prepbench.agents.extractive.concepts.term_articles`)."""
    from prepbench.agents.extractive.articles import term_articles
    from prepbench.agents.extractive.generator import document_context

    medical = SHARED / "corpora" / "medical" / "openstax-pharmacology-for-nurses"
    usage = term_articles((medical / "04-introduction-to-homeostasis.md").read_text(encoding="utf-8"))
    assert (usage["homeostasis"], usage["receptor"], usage["adenosine 5-triphosphate"]) == ("", "a", "")
    usage = term_articles((medical / "19-heart-failure-drugs.md").read_text(encoding="utf-8"))
    assert usage["renin-angiotensin-aldosterone system"] == "the" and usage["diuretic"] == "a"
    # "with myasthenia gravis" more often than "the myasthenia gravis": bare
    usage = term_articles(
        (medical / "10-drugs-to-treat-myasthenia-gravis-and-alzheimer-s-disease.md").read_text(encoding="utf-8")
    )
    assert usage["myasthenia gravis"] == ""
    # "the inflation rate" is no evidence for "the inflation": the noun phrase must end with the term
    path = SHARED_FINANCE / "03-economic-foundations-money-and-rates.md"
    assert term_articles(path.read_text(encoding="utf-8"))["inflation"] == ""

    gen = ExtractiveGenerator()
    gen.read_documents([type("Doc", (), {"rel_path": path.name, "text": path.read_text(encoding="utf-8")})()])
    assert gen.document_context == document_context([(path.name, path.read_text(encoding="utf-8"))])
    chunk = _piece(path, "\n**inflation**:", end="\n\n", heading=["Glossary"])
    qs = {s["question"]: s["answer"] for s in gen.generate(chunk, load_skill("finance"), {"concept_qa": 1})}
    assert qs == {"What is inflation?": "Inflation is a general increase in prices."}, qs
    # without the document's usage the old guess stands (a chunk alone)
    alone = {s["question"] for s in ExtractiveGenerator().generate(chunk, load_skill("finance"), {"concept_qa": 1})}
    assert alone == {"What is an inflation?"}


def test_a_glossary_entry_glossed_with_a_plural_or_a_usage_note_reads_as_sentences():
    """Seed 1222 weak: "Dyslipidemia is the abnormal lipid levels ..." and "Current ratio is the current
    assets divided by current liabilities; used to determine a company's liquidity" (a fragment)."""
    path = SHARED / "corpora" / "medical" / "openstax-pharmacology-for-nurses" / "21-lipid-lowering-drugs.md"
    chunk = _piece(path, "**dyslipidemia**", end="\n", heading=["Glossary"])
    answers = [s["answer"] for s in ExtractiveGenerator().generate(chunk, load_skill("medical"), {"concept_qa": 1})]
    assert answers == ["Dyslipidemia refers to abnormal lipid levels or an imbalance of lipids in the blood."], answers
    path = SHARED_FINANCE / "06-measures-of-financial-health.md"
    chunk = _piece(path, "\n**current ratio**:", end="\n\n", heading=["Glossary"])
    answers = [s["answer"] for s in ExtractiveGenerator().generate(chunk, load_skill("finance"), {"concept_qa": 1})]
    assert len(answers) == 1 and answers[0].startswith("Current ratio refers to current assets divided by current liabilities.")
    assert " It is used to determine a company’s liquidity" in answers[0], answers


def test_a_glossary_note_after_a_semicolon_is_its_own_sentence():
    """Seed 1253, read weak (AB001, AB002): "...; allows a business to buy goods ..." and "...;
    often used by investors ..." pasted after the definition read as a fragment; each is now its
    own sentence about the term."""
    path = SHARED_FINANCE / "19-the-importance-of-trade-credit-and-working-capital-in-planni.md"
    chunk = _piece(path, "\n**trade credit**:", end="\n", heading=["Glossary"])
    answers = [s["answer"] for s in ExtractiveGenerator().generate(chunk, load_skill("finance"), {"concept_qa": 1})]
    assert len(answers) == 1 and ";" not in answers[0], answers
    assert answers[0].endswith(
        "also called accounts payable. It allows a business to buy goods and services on account and pay the cash at some point in the future."
    ), answers
    path = SHARED_FINANCE / "06-measures-of-financial-health.md"
    chunk = _piece(path, "\n**cash ratio**:", end="\n", heading=["Glossary"])
    answers = [s["answer"] for s in ExtractiveGenerator().generate(chunk, load_skill("finance"), {"concept_qa": 1})]
    assert len(answers) == 1 and ";" not in answers[0], answers
    assert " It is often used by investors and lender to assess an organization’s liquidity." in answers[0], answers


def test_a_glossary_entry_that_is_a_sentence_of_its_own_is_not_spliced():
    """Seed 1254, read defective (AC025): "complementary and alternative medicine (CAM): alternative
    medicine refers to using ..." became "... (CAM) is the alternative medicine refers to using ..."."""
    path = SHARED / "corpora" / "medical" / "openstax-pharmacology-for-nurses" / "01-introduction-to-pharmacology.md"
    chunk = _piece(path, "\n**complementary and alternative medicine (CAM)**:", end="\n\n", heading=["Glossary"])
    answers = [s["answer"] for s in ExtractiveGenerator().generate(chunk, load_skill("medical"), {"concept_qa": 1})]
    assert not [a for a in answers if "refers to" in a and " is the " in a], answers
    # an entry that is a definition still is one
    path = SHARED_FINANCE / "06-measures-of-financial-health.md"
    chunk = _piece(path, "\n**cash ratio**:", end="\n", heading=["Glossary"])
    assert ExtractiveGenerator().generate(chunk, load_skill("finance"), {"concept_qa": 1})


def test_a_body_s_name_written_in_lower_case_is_asked_as_its_name():
    """Seed 1231, read weak: "What is a financial industry regulatory authority (FINRA)?" (a named
    body, written in lower case by the glossary) is asked as the body's name."""
    from prepbench.agents.extractive.articles import named_body

    path = SHARED_FINANCE / "01-introduction-to-finance.md"
    chunk = _piece(path, "\n**financial industry regulatory authority (FINRA)**:", end="\n\n", heading=["Glossary"])
    qs = [s["question"] for s in ExtractiveGenerator().generate(chunk, load_skill("finance"), {"concept_qa": 1})]
    assert qs == ["What is the Financial Industry Regulatory Authority (FINRA)?"], qs
    # a kind the book writes "a limited liability corporation" is no body, its acronym notwithstanding
    path = SHARED_FINANCE / "02-corporate-structure-and-governance.md"
    text = path.read_text(encoding="utf-8")
    gen = ExtractiveGenerator()
    gen.read_documents([type("Doc", (), {"rel_path": path.name, "text": text})()])
    start = next(line for line in text.splitlines() if line.startswith("**limited liability corporation (LLC)**"))
    chunk = _piece(path, start, end="\n", heading=["Glossary"])
    qs = [s["question"] for s in gen.generate(chunk, load_skill("finance"), {"concept_qa": 1})]
    assert qs and qs[0].startswith("What is a limited liability corporation"), qs
    # a concept's acronym is no body's: "net present value (NPV)" keeps its own form
    assert named_body("net present value (NPV)", {}) is None and named_body("board of directors (BOD)", {}) is None


def test_a_plural_term_defined_by_one_of_a_kind_gets_its_article():
    """Pharmacology for Nurses' "xanthines: class of compounds derived from purine ..." and Principles
    of Finance's "dividends: portion of the net worth ...": "are class of" read as broken grammar."""
    from prepbench.agents.extractive.articles import gloss_answer

    assert gloss_answer("Xanthines", "are", "class of compounds derived from purine", True) == (
        "Xanthines are a class of compounds derived from purine"
    )
    assert (
        gloss_answer("Dividends", "are", "portion of the net worth (equity)", True)
        == "Dividends are a portion of the net worth (equity)"
    )
    # a mass noun, an article already there, a singular term: as before
    assert gloss_answer("Retained earnings", "are", "cumulative, undistributed net income", True) == (
        "Retained earnings are cumulative, undistributed net income"
    )
    assert gloss_answer("Boards", "are", "a group of people", True) == "Boards are a group of people"
    assert gloss_answer("Inflation", "is", "general increase in prices", False) == "Inflation is the general increase in prices"
    # a participle takes no article: "is the determined by" read defective (seed 1244, Q034)
    assert gloss_answer("Peripheral vascular resistance", "is", "determined by blood flow", False) == (
        "Peripheral vascular resistance is determined by blood flow"
    )
