"""The gate's language rules (self_contained, complete, answers_question, faithful, attributed)
on samples read and labelled by a blind reader (tests/fixtures/quality/labelled.jsonl: real
offline samples of the six primary books, each with its source chunk), and the parser's
checksum guard."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from prepbench.tools import nlp
from prepbench.tools.errors import EnvironmentFault
from prepbench.tools.skills import load_skill
from prepbench.tools.validate import Gate

LABELS = Path(__file__).resolve().parents[1] / "fixtures" / "quality" / "labelled.jsonl"
ROWS = {r["id"]: r for r in (json.loads(line) for line in LABELS.read_text(encoding="utf-8").splitlines() if line.strip())}


def _verdict(sample_id: str):
    rec = ROWS[sample_id]
    return Gate(load_skill(rec["domain"]), dedup=False).screen(dict(rec["sample"]), rec["chunk"])


def _rule_verdict(sample_id: str, rule: str):
    """The verdict of the one rule named ``rule`` of the sample's domain skill."""
    rec = ROWS[sample_id]
    gate = Gate(load_skill(rec["domain"]), dedup=False)
    (check,) = [r.check for r in gate.rules if r.name == rule]
    return check(dict(rec["sample"]), rec["chunk"])


@pytest.mark.parametrize(
    "sample_id, rule, found",
    [
        ("q117", "self_contained", "no owner"),  # "What do side effects include?" (the drug is never named)
        ("M035", "self_contained", "for what"),  # "What does the choice of diagnostic test depend on?" (for which condition?)
        ("q221", "self_contained", "the observer"),  # "What is the only force on the observer?"
        ("q113", "self_contained", "person"),  # "What is Maria Vega?" (a case-study client)
        ("q103", "self_contained", "EHR"),  # "What is the EHR?" (never spelled out)
        ("q168", "self_contained", "'n'"),  # "What happens if p is a prime that divides n?"
        ("q046", "complete", "have"),  # "... at the end of one year, they will have."
        ("q099", "complete", "garbled"),  # "What is the parties disagree over whether RFRA?"
        ("q167", "complete", "relation between two variables"),  # "... an atom a in B such that a b."
        ("q194", "complete", "-function"),  # "the Euler -function" (phi lost)
        ("q157", "answers_question", "under a condition"),  # "What is a code?" -> "A code is a linear code if ..."
        ("q013", "answers_question", "does not say what it is"),  # "... are a critical part of ..."
        ("r010", "answers_question", "does not say what it is"),  # "Ethics is a huge issue in ..."
        ("r038", "answers_question", "under a condition"),  # "What is a polynomial called?" -> "... monic if ..."
        ("q005", "answers_question", "under a condition"),  # "What is an asset considered?" -> "... when ..."
        ("r054", "answers_question", "or a reason"),  # "What is a bowl?" -> "... an open surface because ..."
        ("r046", "answers_question", "never names"),  # "What happens if F is a field?" -> "every ideal in F[x] ..."
        ("q207", "answers_question", "never names"),  # "... mechanical energy ...?" -> "the rocket will have ..."
        ("q206", "answers_question", "no outcome"),  # "What happens when ...?" -> "it is easiest to start with ..."
        ("r025", "complete", "the responsible for"),  # "... pump is the responsible for the transport ..."
        ("q176", "self_contained", "'D'"),  # "What happens if p(x) is ...?" -> "... since D is a UFD"
        ("s035", "self_contained", "additional"),  # "What do additional diagnostic tests include?"
        ("s028", "self_contained", "miscellaneous"),  # "What can any of the miscellaneous antidepressants cause?"
        ("s039", "answers_question", "does not say what it is"),  # "The integers are the building blocks of ..."
        ("s047", "answers_question", "never names"),  # "... length of a composition series is 1?" -> "G must be ..."
        ("s051", "answers_question", "without its result"),  # "Calculate the flux ..." -> "Note that we used ..."
        ("s055", "answers_question", "a remark or a step"),  # "How does the velocity ...?" -> "We can find ..."
        ("s004", "complete", "is describes"),  # "Underinvested is describes an insufficient amount ..."
        ("t043", "complete", "names no subject"),  # "What happens if there is only one subgroup?"
        ("u025", "self_contained", "'also'"),  # "Why may a drug's absorption rate also be affected?"
        ("u056", "answers_question", "a remark or a step"),  # "Is this a violation ...?" -> "This can be seen by ..."
        (
            "q234",
            "answers_question",
            "without its result",
        ),  # "... what is the surface area ...?" -> "Thus, ... a contracted length"
        ("t021", "attributed", "author"),  # a quoted opinion credited to the casebook's editor (law: voices [court])
        ("q279", "attributed", "whose"),  # Walden: "Compassion is a very untenable ground."
        ("u057", "self_contained", "source's example"),  # "Why is the skater's ...?" (the chunk: "a speed skater")
        ("w004", "self_contained", "source's order"),  # "What is the final financial statement?"
        ("w012", "self_contained", "opposite to"),  # "... supports the opposite view, which is that ..."
        ("w044", "self_contained", "of which group"),  # "What is the group operation?"
        ("w013", "attributed", "block quote"),  # a District Court's findings, quoted in Casey, as the Court's words
        ("y046", "self_contained", "labelled"),  # "What does the encrypted letter R represent?"
        ("y044", "self_contained", "labelled"),  # "What is the code C?"
        ("y004", "self_contained", "for what"),  # "Why is less equity needed?"
        ("y041", "answers_question", "never names"),  # "What happens when a message is received?" -> "the recipient ..."
        ("y049", "answers_question", "kind of statement"),  # "Lenz's law is a statement about conservation of energy"
        ("z037", "answers_question", "states a result"),  # "The integers are a UFD by the Fundamental Theorem ..."
        ("z050", "faithful", "multiple-choice"),  # a checkpoint's wrong option: "... depends on the charge of the observer"
        ("X059", "complete", "TeX escape"),  # "... in order for it to appear 1\\% shorter?" (its key is wrong too)
        ("S010", "answers_question", "'typically' is"),  # "... investors are typically the initial purchasers of IPOs."
        ("Y026", "answers_question", "does not say what it is"),  # "The assessment ... is the primary focus: ..."
        ("AA006", "answers_question", "ranks it"),  # "The market itself is the best technical analyst out there."
        ("AB008", "answers_question", "does not say what it is"),  # "Corporations are the dominant form of ..."
        ("AC006", "self_contained", "no owner"),  # "What do practices and policies include?"
        ("i002", "self_contained", "which two"),  # "Why may a financial analyst prefer to calculate one ratio over the other?"
        ("j003", "answers_question", "does not say what it is"),  # "Preferred stock is a common example with ..."
        ("j028", "answers_question", "does not say what it is"),  # "CNS stimulants are the mainstay of ADHD therapy."
        ("j009", "open_discussion", "Would you have"),  # "... Would you have invested?" / "Answers will vary."
        ("l010", "elliptical_comparison", "than appears"),  # "Why is the true annual rate higher than appears?"
        ("l057", "answers_question", "reasons through"),  # "A force is a purely mathematical tool, so it is important to ..."
        ("m055", "source_anchored_phrasing", "Chapters describingmotionin1d"),  # "(Chapters describingmotionin1d and ...)"
        ("m002", "self_contained", "never spelled out"),  # "What does IR involve?" (the chunk: "investor relations (IR)")
        ("s027", "self_contained", "'lidocaine'"),  # "Why should the nurse assess the client frequently?"
        ("b030", "self_contained", "'lidocaine'"),  # the same sample, drawn again and read again
        ("z002", "self_contained", "2,433.31"),  # "How do you determine future value ...?" -> "... FV = 2,433.31"
        ("c005", "self_contained", "12.97"),  # "How do you find the price of stock ...?" -> "... PV = −12.97"
        ("p031", "answers_question", "does not say what it is"),  # "A change in behavior is the evidence of ..."
        ("p033", "self_contained", "of which drug"),  # "What is the therapeutic effect in dyslipidemia?" (niacin's)
        ("p048", "answers_question", "does not say what it is"),  # "The Work-Energy Theorem is the starting point for ..."
        ("A019", "complete", "abbreviation"),  # "... Skinner v. Oklahoma ex rel." (a cut citation)
        ("B010", "answers_question", "why something matters"),  # "Why is the yield curve important?" -> who studies it
        ("C033", "answers_question", "not what it is"),  # "What is fludarabine?" -> "Fludarabine causes severe ..."
        ("I035", "self_contained", "no owner"),  # "What do possible reactions include?" (of stopping intrathecal baclofen)
        ("J001", "complete", "display formula"),  # "... is a finite sequence of subgroups." (the chain and its condition lost)
        ("J015", "complete", "display formula"),  # "... the 128 ASCII characters have codes." (the codes lost)
        ("K031", "complete", "unbalanced"),  # "Chelsea's closet is a walk-in closet' with two double doors."
        ("g056", "self_contained", "of a capacitor"),  # "... placed between the plates?" (the two plates of a capacitor)
        ("O027", "answers_question", "not what it is"),  # "What is sodium oxybate?" -> "... has a risk of ..."
        ("P003", "answers_question", "does not say what it is"),  # "... is a simpler accounting system to use than ..."
        ("P025", "answers_question", "does not say what it is"),  # "Angle-closure glaucoma is a contraindication due to ..."
        ("Q034", "complete", "the determined by"),
        ("r053", "complete", "drops the symbol"),  # "Two resistors, of 2 and 4, respectively" (the source's 2 Ω and 4 Ω)
        ("q198", "self_contained", "running example"),  # "What happens if Alice receives a message from Bob?"
        ("q237", "self_contained", "concludes"),  # "Why are the last two terms in the sum thus identically zero?"
        ("g024", "answers_question", "does not say what it is"),  # "Safety is a fundamental element in the process of ..."
        ("U035", "answers_question", "does not say what it is"),  # "Automaticity ... is a result of a spontaneous current"
        ("q017", "answers_question", "purpose"),  # "What happens when investors buy stock?" -> "... they do so in order to ..."
        (
            "g028",
            "self_contained",
            "names no illness",
        ),  # "... implicated in the disease process?" (Parkinson's)  # "Peripheral vascular resistance is the determined by blood flow ..."
    ],
)
def test_defective_samples_are_rejected_by_the_rule_that_names_the_defect(sample_id, rule, found):
    assert ROWS[sample_id]["label"] == "defective"
    assert not _verdict(sample_id).ok  # the gate rejects it
    v = _rule_verdict(sample_id, rule)  # and the rule that names its defect does too
    assert not v.ok and v.rule == rule, v
    assert found in v.detail, v.detail


# q033: "What happens when more than one stock is held?" -> "the gains in one stock ..." (the subject's owner is named)
# s042: "What happens if traditional cryptosystems are used?" -> "anyone who knows enough to encode ..."
# t039: "What happens if there is only a single Sylow 7-subgroup?" (the existence names its subject)
# u041: "... the first mathematicians to study them" (a time, not the source's order); s010: "the business" is generic
@pytest.mark.parametrize(
    "sample_id",
    [
        "t013",
        "t039",
        "s042",
        "s000",
        "q000",
        "u041",
        "s010",
        "q033",
        "q106",
        "q114",
        "q131",
        "q145",
        "q160",
        "q189",
        "q232",
        "q240",
        "x025",  # "What are hypotonic solutions?" -> "Hypotonic solutions have a lower concentration ..." (what they are)
    ],
)
def test_good_samples_pass_every_rule(sample_id):
    assert ROWS[sample_id]["label"] == "good"
    v = _verdict(sample_id)
    assert v.ok, (ROWS[sample_id]["sample"]["question"], v)


def test_faithful_compares_negation_and_condition_with_the_source_sentence():
    gate = Gate(load_skill("finance"), dedup=False)
    rec = ROWS["q189"]  # "The order of a finite group is the number of elements that it contains."
    base = dict(rec["sample"])
    assert gate.screen(dict(base), rec["chunk"]).ok
    flipped = dict(base, answer="The order of a finite group is not the number of elements that it contains.")
    v = gate.screen(flipped, rec["chunk"])
    assert v.rule == "faithful" and "negation" in v.detail


def test_a_why_question_over_not_because_is_refused():
    # source (Gowder, law): the reason is denied, not the fact; the question turns it around
    rec = ROWS["q053"]
    assert rec["label"] == "defective"
    v = _verdict("q053")
    assert not v.ok and v.rule in ("faithful", "attributed"), v


GSM8K = Path(__file__).resolve().parents[3] / "shared" / "datasets" / "gsm8k" / "test.jsonl"


@pytest.mark.skipif(not GSM8K.is_file(), reason="the shared datasets folder (../shared/datasets) is not on this machine")
def test_word_problems_and_instructions_are_not_mistaken_for_extracted_questions():
    gate = Gate(load_skill("finance"), dedup=False)
    gsm8k = GSM8K
    rows = [json.loads(line) for line in gsm8k.read_text(encoding="utf-8").splitlines()[:20]]
    for r in rows:  # "She eats three for breakfast": a story introduces its own people and things
        v = gate.check_rules({"question": r["question"], "answer": r["answer"]}, None)
        assert v.ok, (r["question"][:80], v)
    instruction = {"question": 'Rewrite the following sentence: "This car runs very fast"', "answer": "This car moves swiftly."}
    assert gate.check_rules(instruction, None).ok
    assert gate.check_rules({"question": "Rewrite the following sentence.", "answer": "The car moves swiftly."}, None).rule == (
        "self_contained"
    )


def test_the_parser_refuses_changed_model_files(tmp_path):
    folder = nlp.pipeline_folder()
    copy = tmp_path / "pipeline"
    shutil.copytree(folder, copy)
    nlp.verify_folder(copy)  # the installed files are the pinned release
    (copy / "tagger" / "model").write_bytes((copy / "tagger" / "model").read_bytes() + b"\0")
    with pytest.raises(EnvironmentFault, match=r"tagger/model: SHA-256 .* differs from en_core_web_sm 3\.8\.0"):
        nlp.verify_folder(copy)
    (copy / "ner" / "model").unlink()
    with pytest.raises(EnvironmentFault, match=r"ner/model: missing"):
        nlp.verify_folder(copy)


def test_the_parser_loads_without_torch_and_torch_still_imports_after():
    """thinc would import torch (seconds of every start); the parser never needs it, a later encoder does."""
    import subprocess
    import sys

    code = (
        "import sys; from prepbench.tools import nlp; doc = nlp.parse('The Court held that the statute is void.'); "
        "print('torch' in sys.modules, [t.dep_ for t in doc][1]); import torch; print(torch.zeros(2).sum().item())"
    )
    p = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert p.returncode == 0, p.stderr
    assert p.stdout.split() == ["False", "nsubj", "0.0"], p.stdout


def test_attributed_voices_are_checked_up_front_and_a_court_only_skill_refuses_the_authors_voice():
    from prepbench.tools.errors import SkillError
    from prepbench.tools.validate.rules import RULE_KINDS

    with pytest.raises(SkillError, match="voices"):
        RULE_KINDS["attributed"]({"voices": ["judge"]}, "attributed")
    court_only = RULE_KINDS["attributed"]({"voices": ["court"]}, "attributed")
    both = RULE_KINDS["attributed"]({}, "attributed")
    author = dict(ROWS["t021"]["sample"])  # "In Constitutional Law Materials, Gowder writes that ..."
    court = dict(ROWS["t013"]["sample"])  # "In National Federation ... v. Sebelius, the Court says that ..."
    assert both(author, ROWS["t021"]["chunk"]).ok
    assert not court_only(author, ROWS["t021"]["chunk"]).ok
    assert court_only(court, ROWS["t013"]["chunk"]).ok


def test_a_named_quantity_asked_for_must_be_given_and_a_connective_is_no_answer():
    from prepbench.tools.validate.answering import mismatch_problem

    q = "A square painting of side 1 m moves past you at 0.85c. What is the surface area of the painting that you measure?"
    # q234's answer, without the "Thus," that now refuses it first
    why = mismatch_problem(q, "The horizontal side of the painting will have a contracted length of 0.53 m.")
    assert why is not None and "never gives it" in why
    assert "without its result" in mismatch_problem(
        q, "Also, the vertical side is 1 m long, as it is perpendicular to the motion."
    )
    assert mismatch_problem(q, "The surface area you measure is 0.53 m^2, since only the horizontal side contracts.") is None


def test_a_condition_with_no_subject_and_a_relational_plural_are_refused():
    from prepbench.tools.validate import language

    # x030 (weak): "What happens when giving a drug to someone who is pregnant?" (who gives it?)
    assert "names no subject" in language.conditional_question_problem(
        "What happens when giving a drug to someone who is pregnant?"
    )
    assert language.conditional_question_problem("What happens when a nurse gives a drug to someone who is pregnant?") is None
    # x005 (defective): the chunk's Treasury bonds are never named
    assert "no owner" in language.referent_problem("What do the total returns reflect?")
    assert language.referent_problem("What do the total returns of a bond reflect?") is None


def test_the_source_s_own_cases_are_pointed_at():
    from prepbench.tools.validate import referents

    # z023 (weak): "... what does the Court say about the judicial action in each case?"
    assert "source's own cases" in referents.order_problem("What does the Court say about the judicial action in each case?")
    assert referents.order_problem("What does the Court say about judicial enforcement of restrictive covenants?") is None


def test_a_rank_or_a_vague_genus_is_no_definition():
    from prepbench.tools.validate.answering import mismatch_problem

    # a035 and z055 (weak): "What is gonorrhea?", "What is momentum?"
    assert "does not say what it is" in mismatch_problem(
        "What is gonorrhea?", "Gonorrhea is the second most reported STI in the United States, with over 700,000 cases."
    )
    assert "does not say what it is" in mismatch_problem(
        "What is momentum?", "Momentum is a quantity that describes an object's motion."
    )
    assert mismatch_problem("What is momentum?", "Momentum is the product of an object's mass and its velocity.") is None


def test_an_answer_that_names_no_way_does_not_answer():
    from prepbench.tools.validate.answering import mismatch_problem

    # AB010 (weak): that something happens "in a number of ways", none of them named
    q = "What happens as exchange rates change?"
    assert "names none" in mismatch_problem(q, "As exchange rates change, a business can be impacted in a number of ways.")
    assert (
        mismatch_problem(q, "As exchange rates change, the value of a firm's foreign sales changes in its own currency.") is None
    )


def test_a_judged_genus_a_judged_rank_or_an_example_s_reasoning_is_no_definition():
    from prepbench.tools.validate.answering import mismatch_problem

    # read weak in blind readings (Pharmacology for Nurses; Judson; Modeling with Physics)
    assert "does not say what it is" in mismatch_problem(
        "What is the brain?",
        "The brain is a complex structure, and the overall neuronal degeneration recognized in AD has been theorized to result "
        "from a variety of changes.",
    )
    assert "does not say what it is" in mismatch_problem(  # e024 (defective): a property, not what the drug is
        "What is isoniazid?",
        "Isoniazid is a known hepatotoxin; serial liver function tests should be performed to determine whether therapy "
        "should be altered.",
    )
    assert "asks for a rank" in mismatch_problem(
        "What is the simplest permutation?", "The simplest permutation is a cycle of length 2."
    )
    assert "reasons through an example" in mismatch_problem(
        "What is the axis of rotation?",
        "The axis of rotation is the axis of the wheel, so we know that the vector describing the wheel's rotation must point "
        "either to the left or to the right.",
    )
    # a measured rank, a genus with its defining trait, and a term with a superlative in it stay
    assert mismatch_problem("What is the largest organ of the body?", "The largest organ of the body is the skin.") is None
    assert (
        mismatch_problem(
            "What is homeostasis?",
            "Homeostasis is a fundamental process that enables the body to maintain a stable internal environment.",
        )
        is None
    )
    assert (
        mismatch_problem(
            "What is the greatest common divisor of two integers?",
            "The greatest common divisor of two integers is the largest integer that divides both.",
        )
        is None
    )


def test_an_open_consequence_question_is_refused_a_definite_one_is_not():
    from prepbench.tools.validate.answering import mismatch_problem

    # d054 and f054 (defective): the answer is the one consequence the source's spherical wave gives
    assert "a consequence" in mismatch_problem(
        "What is a consequence of conservation of energy?",
        "Because of conservation of energy, when the energy is transferred from one shell to the next, the total energy stays the same.",
    )
    assert "a consequence" in mismatch_problem(
        "What are some results of separation of charge?", "Due to separation of charge, the outer surface acquires a charge."
    )
    # the consequence of a named thing, asked with "the", is a definite question
    assert (
        mismatch_problem(
            "What is the consequence of a negative growth rate of real GDP?",
            "A negative growth rate of real GDP means the economy is shrinking.",
        )
        is None
    )


def test_a_why_will_question_about_the_source_s_scene_is_refused():
    from prepbench.tools.validate.answering import mismatch_problem

    # z048 and g051 (defective): "the inner loop" is a loop of the chunk's figure
    assert "why will" in mismatch_problem(
        "Why will the circulation per unit length (the magnetic field) be larger at each point?",
        "Because the inner loop is smaller, the circulation per unit length (the magnetic field) will be larger at each point.",
    )
    assert (
        mismatch_problem(
            "Why do electric field lines point out from a positive charge?",
            "Electric field lines point out from a positive charge because they show the force on a positive test charge.",
        )
        is None
    )


def test_the_other_standing_alone_needs_the_two_things_named():
    from prepbench.tools.validate.language import other_problem

    assert "which two" in other_problem("Why do some firms prefer one method over the other?")
    # the two are named: coordinated, or "between"
    assert other_problem("Why is debt cheaper than equity, and why is one preferred over the other?") is None
    assert other_problem("What is the difference between a call and a put, and how does one hedge the other?") is None
    assert other_problem("What are the other costs of holding inventory than storage?") is None


def test_a_question_about_roles_alone_and_a_figure_without_its_inputs_are_refused():
    from prepbench.tools.validate import referents

    why = referents.role_only_problem(
        "Why should the nurse assess the client frequently?",
        "Because lidocaine may cause central nervous system toxicity, the nurse should assess the client frequently.",
    )
    assert why and "'lidocaine'" in why
    # roles alone, but the answer's reason is about them: a question of practice, not of a drug
    assert (
        referents.role_only_problem(
            "What happens when providers are not honest with clients?",
            "When providers are not honest with clients, it may cause fear.",
        )
        is None
    )
    assert (
        referents.role_only_problem(
            "Why should the nurse assess a client taking lidocaine frequently?",
            "Because lidocaine may cause central nervous system toxicity, the nurse should assess the client frequently.",
        )
        is None
    )
    why = referents.unstated_inputs_problem(
        "How do you determine future value with a financial calculator?",
        "Compute future value: enter CPT FV (display: FV = 2,433.31).",
    )
    assert why and "2,433.31" in why
    assert (
        referents.unstated_inputs_problem(
            "How do you determine future value with a financial calculator, given a present value of $2000, 4% and 5 periods?",
            "The result is FV = 2,433.31 (compute future value: enter CPT FV).",
        )
        is None
    )


def test_a_definition_by_how_a_thing_may_be_defined_and_an_ownerless_drug_effect_are_refused():
    from prepbench.tools.validate.answering import _definition_answer_problem
    from prepbench.tools.validate.language import referent_problem

    # seed 1228, read weak: how momentum can be defined, not what it is
    assert _definition_answer_problem(
        "Momentum is a quantity that, like energy, can be defined from Newton's Second Law, to facilitate building models."
    )
    assert _definition_answer_problem("Momentum is the product of an object's mass and its velocity.") is None
    assert "of which drug" in referent_problem("What is the therapeutic effect in dyslipidemia?")
    for named in (
        "What is the therapeutic effect of niacin in dyslipidemia?",
        "What is an adverse effect?",
        "What is the photoelectric effect?",
    ):
        assert referent_problem(named) is None, named


def test_an_answer_cut_at_a_citation_s_abbreviation_is_incomplete():
    from prepbench.tools.validate.language import ending_problem

    assert "abbreviation" in ending_problem("The rights to have children, Skinner v. Oklahoma ex rel.", False)
    for whole in ("The answer is no.", "This is the state of the art."):
        assert ending_problem(whole, False) is None, whole


def test_a_single_closing_quote_needs_an_opening_one_but_a_prime_or_a_plural_possessive_does_not():
    from prepbench.tools.validate.language import brackets_problem
    from prepbench.tools.validate.symbols import display_cut_problem

    assert "closet" in brackets_problem("Chelsea's closet is a walk-in closet' with two double doors.")
    assert brackets_problem("If g' and g'' are both inverses of g, then gg' = g'g = e.") is None  # primes
    assert brackets_problem("The shareholders' claims come after the creditors' claims.") is None
    assert brackets_problem("The so-called 'walk-in closet' has two doors.") is None  # opened, then closed
    # an answer that ends where its source sentence runs on into a display, and one whose sentence ended first
    chunk = "A **subnormal series** of a group $G$ is a finite sequence of subgroups\n\n$$\nG = H_n \\supset H_0\n$$\n"
    assert display_cut_problem("A subnormal series of a group G is a finite sequence of subgroups.", chunk)
    assert (
        display_cut_problem(
            "A subnormal series of a group G is a finite sequence of subgroups.", chunk.replace("subgroups\n", "subgroups.\n")
        )
        is None
    )


def test_a_number_whose_source_unit_is_dropped_is_incomplete_and_a_rendered_one_is_not():
    from prepbench.tools.validate.symbols import dropped_symbol_problem

    chunk = r"Two resistors, of $2 \mathrm{\Omega}$ and $4 \mathrm{\Omega}$, respectively, sit on a $12 \mathrm{V}$ battery."
    assert "of 2 and" in dropped_symbol_problem("Two resistors, of 2 and 4, respectively, ...", chunk)
    assert "and 4," in dropped_symbol_problem("... of 2 Ω and 4, respectively", chunk)
    assert dropped_symbol_problem("Two resistors, of 2 Ω and 4 Ω, respectively, sit on a 12 V battery.", chunk) is None
    assert dropped_symbol_problem("Costs of 2 and 4 dollars.", r"Costs of \$2 and \$4 dollars.") is None  # money, not math


def test_a_running_example_s_character_and_a_concluding_adverb_are_not_self_contained():
    from prepbench.tools.validate.language import pointing_problem
    from prepbench.tools.validate.referents import running_character_problem

    assert "Alice" in running_character_problem("What happens if Alice receives a message from Bob?")
    assert running_character_problem("What happens if the Court applies strict scrutiny?") is None
    assert running_character_problem("What did Einstein show about light?") is None  # not a hypothetical
    assert "thus" in pointing_problem("What does the integral ∮ dA thus mean?")
    assert pointing_problem("What are finite fields also called?") is None


def test_negation_and_condition_need_their_words_and_a_parse_decides_among_them():
    from prepbench.tools.validate.language import conditioned, negated

    assert negated("The drug does not cross the placenta.") and negated("Insulin can’t be taken orally.")
    assert not negated("Not only stocks but bonds carry risk.")  # the word is there, the parse says no
    assert not negated("The drug crosses the placenta.") and not negated("A map where $a \\neq b$ holds.")
    assert conditioned("If the rate rises, the price falls.") and not conditioned("The price falls as the rate rises.")
