"""Every filter rule of the finance skill: an accepted and a rejected case each."""

import copy
from pathlib import Path

import pytest

from prepbench.tools.skills import load_skill
from prepbench.tools.validate import Gate

REPO = Path(__file__).resolve().parents[2]
CHUNK = (
    "A bond is a debt security that pays periodic interest and returns its face value at maturity. "
    "When market interest rates rise, the prices of existing bonds fall. "
    "The time value of money is the concept that an amount of money is worth more today than the same amount in the future."
)
GOOD = {
    "sample_type": "concept_qa",
    "chunk_id": "c1",
    "evidence": ["A bond is a debt security that pays periodic interest and returns its face value at maturity."],
    "question": "What is a bond?",
    "answer": "A bond is a debt security that pays periodic interest and returns its face value at maturity.",
    "question_type": "definition",
    "knowledge_point": "bond",
}


@pytest.fixture(scope="module")
def validator():
    return Gate(load_skill(REPO / "skills" / "finance"))


def variant(**changes):
    s = copy.deepcopy(GOOD)
    s.update(changes)
    return s


def test_good_sample_passes(validator):
    assert validator.check(GOOD, CHUNK).ok


@pytest.mark.parametrize(
    "changes, rule",
    [
        ({"question": "What is APR?"}, "question_length"),
        ({"question": "What is a bond " + "really " * 120 + "?"}, "question_length"),
        ({"answer": "A" * 2600}, "answer_length"),
        ({"question": "According to the text, what is a bond?"}, "source_anchored_phrasing"),
        ({"question": "What does a bond pay in this chapter?"}, "source_anchored_phrasing"),
        (
            {"answer": "Based on the above passage, a bond pays periodic interest and returns face value."},
            "source_anchored_phrasing",
        ),
        ({"question": "What does Figure 4 show about bond prices?"}, "citation_led_question"),
        ({"question": "In Section 3.2, what is a bond?"}, "citation_led_question"),
        ({"question": "What is Table 3.1 used for in bond pricing?"}, "citation_led_question"),
        ({"question": "What is this section about?"}, "placeholder_question"),
        ({"question": "What is [term] in corporate finance?"}, "placeholder_question"),
        ({"answer": "The text does not say what a bond is."}, "meta_answer"),
        ({"answer": "I cannot answer that question."}, "meta_answer"),
        ({"answer": "What is a bond?"}, "answer_repeats_question"),
        ({"answer": "A bond is a bond."}, "answer_repeats_question"),
        ({"evidence": ["A bond is an equity share that never matures."]}, "evidence_in_chunk"),
        ({"question": "What do side effects include?"}, "self_contained"),
        ({"question": "What is this security called?"}, "self_contained"),
        ({"answer": "A bond is a debt security that pays periodic interest and, at maturity, they will have."}, "complete"),
        ({"answer": "A bond is an example of a debt security that pays periodic interest."}, "answers_question"),
        (
            {"answer": "A bond is a debt security that does not pay periodic interest and returns its face value at maturity."},
            "faithful",
        ),
        (
            {"answer": "A bond is a debt security that pays 12 percent interest and returns its face value at maturity."},
            "faithful",
        ),
        ({"question_type": "opinion"}, "schema"),
        ({"evidence": []}, "schema"),
        ({"extra_field": 1}, "schema"),
    ],
)
def test_rule_rejects(validator, changes, rule):
    v = validator.check(variant(**changes), CHUNK)
    assert not v.ok
    assert v.rule == rule, v
    assert v.detail


@pytest.mark.parametrize(
    "changes",
    [
        {
            "question": "Why do the prices of existing bonds fall when market interest rates rise?",
            "answer": "Existing bonds pay fixed periodic interest, so when market interest rates rise, the prices of existing bonds fall.",
            "question_type": "cause_effect",
            "evidence": ["When market interest rates rise, the prices of existing bonds fall."],
        },
        {
            "question": "What is the time value of money?",
            "answer": "The time value of money is the concept that an amount of money is worth more today than the same amount in the future.",
            "evidence": [
                "The time value of money is the concept that an amount of money is worth more today than the same amount in the future."
            ],
        },
    ],
)
def test_rule_accepts(validator, changes):
    v = validator.check(variant(**changes), CHUNK)
    assert v.ok, v


def test_words_that_name_book_parts_are_fine_when_they_do_not_point_at_the_book(validator):
    # checked without a chunk: the answer is general knowledge, which the faithful rule would refuse
    s = variant(
        question="What is a bond covenant section of an indenture used for in a bond?",
        answer="It lists the promises the issuer makes to bondholders, such as limits on further debt.",
    )
    assert validator.check(s, None).ok
    assert validator.check(s, CHUNK).rule == "faithful"


def test_process_qa_step_bounds(validator):
    base = {
        "sample_type": "process_qa",
        "chunk_id": "c1",
        "evidence": ["When market interest rates rise, the prices of existing bonds fall."],
        "question": "How does a rise in market interest rates affect the price of an existing bond?",
        "reasoning_steps": ["Market interest rates rise above the bond's coupon rate.", "Buyers demand the new, higher yield."],
        "answer": "The price of the existing bond falls.",
        "reasoning_pattern": "causal_chain",
    }
    assert validator.check(base, CHUNK).ok
    assert validator.check({**base, "reasoning_steps": base["reasoning_steps"][:1]}, CHUNK).rule == "schema"
    assert validator.check({**base, "reasoning_steps": base["reasoning_steps"] * 4}, CHUNK).rule == "schema"
    assert validator.check(
        {**base, "reasoning_steps": ["Rates up.", "Prices down, as Figure 10.2 shows in this chapter."]}, CHUNK
    ).rule in ("step_length", "source_anchored_phrasing")


def test_exact_and_near_duplicates(validator):
    v = Gate(validator.skill)
    assert v.check(GOOD, CHUNK).ok
    v.add(GOOD, "a")
    exact = variant(question="What is a BOND?")
    assert v.check(exact, CHUNK).rule == "exact_duplicate"
    near = variant(answer=GOOD["answer"] + " Prices fall.")
    assert v.check(near, CHUNK).rule == "near_duplicate"
    other = variant(
        question="What is the time value of money?",
        answer="The time value of money is the concept that an amount of money is worth more today than the same amount in the future.",
        evidence=[
            "The time value of money is the concept that an amount of money is worth more today than the same amount in the future."
        ],
    )
    assert v.check(other, CHUNK).ok
