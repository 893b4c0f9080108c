"""The skill's completion rule for a run of the offline generator (``coverage.yaml``
``completion.offline``): it replaces the values it sets, and the report says which rule judged the
run and why, on a real offline run of the repository's slice of *Principles of Finance*."""

from __future__ import annotations

from prepbench.agents.runner import run_pipeline
from prepbench.tools.coverage import coverage_report, type_deficits
from prepbench.tools.ledger import RunFolder
from prepbench.tools.run import RunOptions
from prepbench.tools.skills import load_skill

from cli_helpers import SLICE


class _Ledger:
    """The two reads :func:`type_deficits` makes of a ledger."""

    def __init__(self, counts: dict, generator: str):
        self.counts, self.generator = counts, generator

    def type_counts(self) -> dict:
        return self.counts

    def get_config(self) -> dict:
        return {"generator": self.generator}


def test_offline_shares_replace_the_skills_for_the_extractive_generator_only():
    skill = load_skill("finance")
    counts = {"concept_qa": 123, "process_qa": 9, "case_application": 3}  # case_application 2.2 %
    assert type_deficits(_Ledger(counts, "openai"), skill) == {"case_application": 4}  # 5 % of 135 + n
    assert type_deficits(_Ledger(counts, "extractive"), skill) == {}  # 1.5 % offline
    counts["case_application"] = 0  # none: under the offline share (0.5 %) too
    assert type_deficits(_Ledger(counts, "extractive"), skill) == {"case_application": 1}


def test_every_domain_skill_says_why_its_offline_rule_differs():
    for name in ("finance", "law", "medical", "math", "science", "general"):
        comp = load_skill(name).coverage.completion
        assert comp.offline is not None and len(comp.offline.why.split()) >= 20, name
        assert comp.offline.min_kept_share is None or comp.offline.min_kept_share <= comp.min_kept_share, name


def test_an_offline_run_is_judged_by_the_offline_rule_and_says_why(tmp_path):
    corpus = SLICE  # the repository's own slice of the book: no ../shared needed
    out = tmp_path / "run"
    result = run_pipeline(RunOptions(corpus=[str(corpus)], skill="finance", out=str(out)))
    cov = result["coverage"]
    skill = load_skill("finance")
    assert cov["completion_rule"] == "offline" and cov["completion_why"] == skill.coverage.completion.offline.why
    kept_share = cov["kept_share"]
    led = RunFolder(out)
    try:
        led.set_config({"generator": "openai"})  # the same ledger judged as an LLM run's
        as_llm = coverage_report(led, skill)
    finally:
        led.close()
    assert as_llm["completion_rule"] == "skill" and "completion_why" not in as_llm
    if kept_share < skill.coverage.completion.min_kept_share:
        assert any(u.startswith("kept share") for u in as_llm["unmet"])
    offline_min = skill.coverage.completion.offline.min_kept_share
    assert any(u.startswith("kept share") for u in cov["unmet"]) == (kept_share < offline_min)
    what = lambda unmet: {u.split(" < required")[0] for u in unmet}  # noqa: E731
    assert what(cov["unmet"]) <= what(as_llm["unmet"])  # the offline rule only relaxes the skill's
